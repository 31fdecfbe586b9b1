import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdRecording
import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-record`: run a training and write every round into a trace (traces/FORMAT.md).
@main
struct DesgdRecord: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-record",
        abstract: "Simulate DeSGD or SGD with a robust aggregator and an attack, and record every round into a trace.",
        discussion: """
        The default is the quick preset (small model, 300 rounds, about a minute on 2 cores) on real Fashion-MNIST; \
        --preset paper is the paper's setup (lenet, 3 000 rounds). Every option not given keeps the preset's value \
        (the options below show both presets' defaults where they differ). The trace holds the configuration, the \
        partition, the data digests, keyframes of the model, and per round the messages, decisions, states, aggregate, \
        model diff and metrics; desgd-replay and desgd-audit open it.

        State checkpoints (--checkpoint-every) hold the complete state of the run at the start of a round; \
        desgd-replay --reexecute re-simulates the run from them and checks every recorded message bit for bit, and \
        --resume TRACE continues an interrupted trace from its last one: the rounds recorded after it are re-simulated \
        and checked byte for byte, the rest recorded, into TRACE.resuming, which replaces the trace once complete \
        (byte-identical to an uninterrupted recording), or when stopped or killed after writing a later state \
        checkpoint (it then holds every kept record of the trace, checked byte for byte), so that the next \
        --resume starts there.

        --fork TRACE --at T starts a new trace from the exact state of TRACE at the start of round T, with the options \
        given changed (--agg, --pre, --attack, --f, --lr, --gamma, --beta, --buffer-decay, --weight-decay, --batch, \
        --schedule, --eval-every, --rounds; the others would change the shape of the state and are refused): TRACE is \
        re-simulated with its own configuration from its last checkpoint at or before T and checked byte for byte up \
        to T, then the fork records from round T on, its rounds keeping their numbers. A changed rule or attack starts \
        from its initial state, unchanged ones keep their state. The fork's header names its parent (desgd-audit \
        PARENT FORK… puts them side by side); --record, --keyframe-every, --checkpoint-every and --drift-window \
        default to the parent's. The parent is only read.

        Every numeric option has a range (shown with the option); a value outside it, an unknown rule or attack, a \
        spec parameter out of its range or a missing data set is one line on standard error and exit code 2, \
        before any training.

        Examples:
          desgd-record --attack ipm
          desgd-record --preset paper --agg krum:q=n-f-1 --attack signflip
          desgd-record --mode sgd --agg trmean --attack alie --seed 2 --out alie.trace
          desgd-record --attack ipm --record sampled:10
          desgd-record --attack ipm --sign lab.key
          desgd-record --resume traces/desgd-mean-ipm-small-seed1-300r.trace
          desgd-record --fork traces/desgd-mean-ipm-small-seed1-300r.trace --at 120 --agg cclip

        Exit codes: 0 done, 1 --resume or --fork found a recorded round that differs from its re-simulation (the trace \
        is left as it was) or writing the trace failed (a disk error; the rounds before it are kept), 2 bad usage or \
        bad input (the message says what to change), 130 stopped by Ctrl-C (the trace is complete up to the last \
        finished round; after --resume, unchanged, or replaced by the resumed file up to its last state \
        checkpoint when it got past one).

        \(SimulationOptions.catalogue)
        """,
        version: "desgd \(DesgdVersion.current), trace format \(TraceFormat.major).\(TraceFormat.minor)")

    @OptionGroup var options: SimulationOptions
    @OptionGroup var memory: MemoryLimitOption

    @Option(help: "Trace file (default: a descriptive name under traces/ that never overwrites).")
    var out: String?
    @Flag(help: "Overwrite --out if it exists.") var force = false
    @Option(help: ArgumentHelp("What to store per round: full, sampled:K (full every K-th round, decisions otherwise)"
        + " or decisions (no vectors). Default: full (with --fork: the parent's)."))
    var record: String?
    @Option(help: ArgumentHelp("A keyframe of the model and server state every this many rounds, "
        + "\(rangeText(TraceRecorder.keyframeIntervalRange)); ~15 MB each on the paper setup. Default: 100; with"
        + " --record decisions and checkpoints, only before the first round and after the last"
        + " (with --fork: the parent's)."))
    var keyframeEvery: Int?
    @Option(help: ArgumentHelp("A state checkpoint (everything a run needs to continue: model, every momentum, carried"
        + " states, drift) every this many rounds, \(rangeText(TraceRecorder.checkpointIntervalRange)); 0: none; ~130"
        + " MB each on the paper setup once training is under way. Default: "
        + "\(SimulationOptions.Preset.quick.checkpointInterval) (quick), "
        + "\(SimulationOptions.Preset.paper.checkpointInterval) (paper: ~0.26 MB a round, a 3 000-round decisions run"
        + " ~0.7 GB, any round rebuilt within \(SimulationOptions.Preset.paper.checkpointInterval - 1) rounds, ~2.5"
        + " min)."))
    var checkpointEvery: Int?
    @Option(help: ArgumentHelp("zstd level, \(rangeText(TraceRecorder.compressionLevelRange)) (1 is 0.3 points larger"
        + " than 3 and much faster; higher levels buy almost nothing on float"
        + " data).")) var zstdLevel: Int32 = TraceRecorder.defaultCompressionLevel
    @Option(help: ArgumentHelp("Sign the trace with this private key (desgd-key generate, ssh-keygen -t ed25519 -N ''"
        + " or openssl genpkey -algorithm ed25519): an Ed25519 signature of the digest chain after every keyframe and"
        + " at the end, so a killed run still leaves a signed prefix.",
                               valueName: "key"))
    var sign: String?
    @Option(help: ArgumentHelp("Drift metrics: the horizon W of each class's recent drift, each aggregation weighted by"
        + " λ = 1 − 1/W per later one (1...\(DriftTracker.maxWindow); 10 is about the last 100 rounds of the paper's"
        + " cyclic schedule). Default: \(DriftTracker.defaultWindow) (with --fork: the parent's)."))
    var driftWindow: Int?
    @Option(help: ArgumentHelp("Continue an interrupted trace from its last state checkpoint: the rounds after it are"
        + " re-simulated and checked byte for byte, the rest recorded; the configuration and recording options are the"
        + " trace's (give --threads, --data, and the --zstd-level and --sign key it was recorded with).",
                               valueName: "trace"))
    var resume: String?
    @Option(help: ArgumentHelp("Start a new trace from the state of this trace at the start of round --at, re-simulated"
        + " and checked byte for byte, with the options given changed.",
                               valueName: "trace"))
    var fork: String?
    @Option(help: ArgumentHelp("With --fork: the round the fork starts at (its first round record is this round's).",
        valueName: "T"))
    var at: Int?
    @Flag(help: "Print the summary as JSON.") var json = false

    /// What can be checked before any file is opened: options that exclude or need each other, the
    /// recording options' values and ranges.
    func validate() throws {
        let program = "desgd-record"
        if resume != nil && fork != nil {
            throw CommandFailure.exit(program, "--resume and --fork exclude each other: choose one")
        }
        if at != nil && fork == nil {
            throw CommandFailure.exit(program, "--at goes with --fork TRACE: the trace to fork")
        }
        if fork != nil && at == nil {
            throw CommandFailure.exit(program, "--fork needs --at T: the round the fork starts at")
        }
        if let record {
            do { _ = try RecordingMode.parse(record) } catch {
                throw CommandFailure.exit(program, "--record: \(error.commandLineMessage)")
            }
        }
        do {
            try TraceRecorder.checkOptions(keyframeInterval: keyframeEvery ?? 1, compressionLevel: zstdLevel,
                                           checkpointInterval: checkpointEvery ?? 0,
                                           driftWindow: driftWindow ?? DriftTracker.defaultWindow)
        } catch { throw CommandFailure.exit(program, error) }
    }

    func run() throws {
        let program = "desgd-record"
        try memory.apply(program: program)
        if let resume {
            try runResume(resume, program: program)
            return
        }
        if let fork {
            try runFork(fork, program: program)
            return
        }
        let config: SimulationConfig
        let recorder: TraceRecorder
        let dataset: Dataset
        let simulation: Simulation
        do {
            config = try options.configuration()
            // What the run will hold, before the data set is loaded or anything allocated.
            try config.checkMemory(driftWindow: driftWindow ?? DriftTracker.defaultWindow)
            let mode: RecordingMode
            do { mode = try RecordingMode.parse(record ?? "full") } catch {
                throw TraceError.usage("--record: \(error.explanation)")
            }
            let checkpointInterval = checkpointEvery ?? options.preset.checkpointInterval
            let keyframeInterval = keyframeEvery
                ?? TraceRecorder.defaultKeyframeInterval(mode: mode, checkpointInterval: checkpointInterval,
                    rounds: config.rounds)
            try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: zstdLevel,
                checkpointInterval: checkpointInterval)
            let signingKey: TraceSigningKey?
            do { signingKey = try sign.map { path throws(TraceError) in try TraceSigningKey.read(path: path) } } catch {
                throw TraceError.usage("--sign: \(error.explanation)")
            }
            dataset = try config.data.load()
            let path: String
            if let out {
                path = out
            } else {
                try FileManager.default.createDirectory(atPath: TracePaths.directory, withIntermediateDirectories: true)
                path = TracePaths.defaultPath(for: config)
            }
            // Checks the configuration against the data before creating the file.
            simulation = try Simulation(config: config, dataset: dataset)
            recorder = try TraceRecorder(path: path, mode: mode, keyframeInterval: keyframeInterval, overwrite: force,
                                         compressionLevel: zstdLevel, signingKey: signingKey, driftWindow: driftWindow
                                             ?? DriftTracker.defaultWindow,
                                         checkpointInterval: checkpointInterval)
        } catch let e as SimulationError { throw CommandFailure.exit(program, e) } catch let e as TraceError {
            throw CommandFailure.exit(program, e)
        } catch let e as DataError { throw CommandFailure.exit(program, e.commandLineMessage) } catch {
            throw CommandFailure.exit(program, "\(error.localizedDescription)")
        }
        InterruptFlag.install()
        let summary: RecordingSummary
        do {
            (_, summary) = try RecordingRun.run(config: config, dataset: dataset, simulation: simulation,
                                                recorder: recorder,
                                                program: program, showProgress: !json)
        } catch let e as TraceError where e.kind == .io {
            // The disk failed, not the input: exit 1 (the trace holds the rounds written before).
            FileHandle.standardError.write(Data("\(program): \(DisplayText.escaped(e.commandLineMessage))\n".utf8))
            throw ExitCode(1)
        } catch let e as TraceError {
            throw CommandFailure.exit(program, e)
        } catch let e as SimulationError {
            throw CommandFailure.exit(program, e)
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(summary), as: UTF8.self))
        } else {
            print("\(summary.mode) \(summary.aggregator) vs \(summary.attack), \(summary.model), seed "
                + "\(summary.seed): \(summary.rounds) rounds"
                  + (summary.interrupted ? " (interrupted; \(summary.plannedRounds) planned)" : ""))
            print("  best test accuracy \(String(format: "%.2f", 100 * summary.bestAccuracy))%, final "
                + "\(String(format: "%.2f", 100 * summary.finalAccuracy))%, "
                + "\(String(format: "%.1f", summary.seconds)) s")
            print("  \(summary.traceLine)")
            print("  recorder busy \(String(format: "%.1f", summary.recordingSeconds)) s in the background")
        }
        if summary.interrupted { throw ExitCode(130) }
    }

    func runResume(_ path: String, program: String) throws {
        let own: [(String, Bool)] = [("out", out != nil), ("force", force),
                                     ("checkpoint-every", checkpointEvery != nil), ("record", record != nil),
                                     ("keyframe-every", keyframeEvery != nil), ("drift-window", driftWindow != nil),
                                     ("at", at != nil)]
        if let (name, _) = own.first(where: \.1) {
            throw CommandFailure.exit(program,
                "--resume continues the trace in place with its own options: drop --\(name)")
        }
        let threads = options.threads ?? SimulationConfig.defaultThreads
        try CommandFailure.check(program, "--threads", threads, in: SimulationConfig.threadsRange)
        try CommandFailure.check(program, "--zstd-level", zstdLevel, in: TraceRecorder.compressionLevelRange)
        let signingKey: TraceSigningKey?
        do { signingKey = try sign.map { p throws(TraceError) in try TraceSigningKey.read(path: p) } } catch {
            throw CommandFailure.exit(program, "--sign: " + error.commandLineMessage)
        }
        InterruptFlag.install()
        let bar = ProgressBar(total: (try? TraceReader(path: path))?.header.config.rounds ?? 0, label: "resume")
        let outcome: ResumeRun.Outcome
        do {
            outcome = try ResumeRun.resume(path: path, threads: threads, dataDirectory: options.data,
                                           compressionLevel: zstdLevel,
                                           signingKey: signingKey, shouldStop: { InterruptFlag.isRaised }) {
                                               bar.update($0)
                                           }
        } catch {
            if error.kind == .mismatch {
                print("resume FAILED: \(error.commandLineMessage)")
                throw ExitCode(1)
            }
            throw CommandFailure.exit(program, error)
        }
        switch outcome {
        case .alreadyComplete(let rounds):
            print("\(path) is complete (\(rounds) rounds): nothing to resume")
        case .resumed(let start, let checked, let rounds):
            print("resumed \(path) from the state of round \(start): the \(checked) rounds already recorded after it"
                + " re-simulated byte for byte, the trace now holds all \(rounds) rounds")
        case .interrupted(let at, nil):
            print("interrupted at round \(at): \(path) is unchanged (resume it again)")
            throw ExitCode(130)
        case .interrupted(let at, let from?):
            print("interrupted at round \(at): \(path) now holds its rounds up to the state checkpoint of round \(from)"
                + " (resume it again to go on from there)")
            throw ExitCode(130)
        }
    }
}
