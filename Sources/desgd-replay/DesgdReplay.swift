import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-replay`: counterfactual aggregation on recorded rounds, verification, export.
@main
struct DesgdReplayCommand: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-replay",
        abstract: "Re-execute recorded rounds with another aggregator and measure its deviation from the honest mean.",
        discussion: """
        Every rule runs on the exact messages of each recorded round, told the trace's f (or --f), with the round's \
        random-stream keys. A stateful rule (cclip) starts each round from the recorded state when it is the recorded \
        rule; another one carries its own state per class from its initial state (with --no-rebuild, rows after a \
        round of their class recorded without vectors say "state not carried"; CSV/JSON: state = not-carried).

        Per aggregation it reports (docs/design.md §6): gap = ‖F(R) − honest mean‖, the honest diameter Δ_S, \
        λ̂ = gap/Δ_S against the rule's proven bound, κ̂ = gap²/σ²_S, the cosine to the honest mean, the \
        weight or coordinate share given to Byzantine inputs, and the distance to the recorded aggregate; a NaN or \
        infinite metric is flagged "non-finite" and left out of the summary's statistics.

        Rounds run in parallel; the output does not depend on --threads. Several rules (a list, or all) are evaluated \
        in one pass, each round read once.

        Drift (traces/FORMAT.md §5.4): per rule, open loop along the recorded inputs, how its deviations add up \
        (window persistence, cumulative drift) and how far its steps move the model from the honest shadow; reported \
        while every replayed round has vectors (rebuilt ones included).

        Vectors on demand: on a sampled:K or decisions trace, the rounds recorded without vectors are rebuilt by \
        re-simulating the run from the last state checkpoint at or before them (desgd-record --checkpoint-every; from \
        round 0 in a trace without checkpoints), and each re-simulated round is encoded as the recorder would and \
        compared byte for byte with its record before it is used; a difference exits 1 naming the round. This needs \
        what --reexecute needs (the data set, --data, and the same arithmetic); otherwise it exits 2 saying why. With \
        --rounds A:B the rounds from the checkpoint to A are re-simulated and checked, not replayed; the progress bar \
        counts the re-simulated rounds. --no-rebuild skips the rounds without vectors instead (the behaviour \
        before 0.9).

        The worst case (--adversary worst): on every replayed aggregation, the recorded honest messages are kept, the \
        recorded Byzantine ones dropped, and a search looks for the f inputs that push each rule farthest from the \
        honest mean: the optimal attacks' own line searches (ipm-opt, alie-opt, ByzFL's ALIE sign), identical copies \
        along the IPM, ALIE, recorded-attack, mimic, principal, single-coordinate and seeded random directions (each \
        bracketed in both directions, then golden-section refined), split placements, and a final compass search, \
        within --budget rule evaluations. Each row gets the worst λ̂ and κ̂ found, the family that found it and \
        its ratio to the rule's proven bound; the summary gives their distribution, the rounds within 10 % of the \
        bound, and loudly any round above it (a bug in the rule or in its bound). Same seed, same result, for \
        any --threads.

        Re-execution (--reexecute) re-simulates the recorded run with the header's configuration from the trace's \
        state checkpoints (desgd-record --checkpoint-every) and compares every record bit for bit: each sender's \
        message, the attack's and the rule's decisions, carried states, aggregates, metrics, model diffs, evaluations, \
        keyframes and the next checkpoint. It checks what --verify cannot: that the honest messages are what honest \
        workers compute. It starts from the last checkpoint at or before the start of --rounds (a trace without \
        checkpoints: from round 0 only) and takes that checkpoint on trust: the output (text and --json) names the \
        checkpoint it started from unverified, and --from-start re-executes from round 0 instead (a fork: from its \
        first round), verifying every checkpoint on the way. It needs the data set the run was recorded on (--data; \
        its digest must be the header's) and the same arithmetic (engine numerics and backend kernel), and exits 1 \
        naming the first round, class and worker that differ.

        The segments between checkpoints are independent: --threads runs several at once (one run in memory per \
        thread), and --segment K/N re-executes part K of N of them, so that a Slurm job array of N tasks covers a long \
        trace exactly once; each part names the checkpoints it started from unverified, which the parts holding the \
        segments before them verify: only every part passing verifies the chain back to round 0.

        Forks (desgd-record --fork): a fork starts from its first checkpoint, which --verify and --reexecute take on \
        trust unless --parent PARENT.trace is given: its descent is then proven as desgd-audit PARENT FORK proves it \
        (the fork's configuration is the parent's with exactly the declared changes, and its first checkpoint is byte \
        for byte the parent's state at the fork round, re-simulated, with them applied). A difference, or a parent \
        that cannot be re-simulated here (no data set, other arithmetic: "descent not verified"), exits 1.

        Examples:
          desgd-replay traces/run.trace --agg geomed
          desgd-replay traces/run.trace --agg all --rounds 100:200 --csv > rows.csv
          desgd-replay traces/run.trace --agg trmean,krum:q=n-f-1 --f 2 --json
          desgd-replay traces/run.trace --agg krum,trmean --adversary worst
          desgd-replay traces/run.trace --verify
          desgd-replay traces/run.trace --export out/ --round 42
          desgd-replay traces/decisions.trace --agg geomed --rounds 120:121 --data /usr/share/datasets/fashion-mnist
          desgd-replay traces/run.trace --reexecute --rounds 1000:1500
          desgd-replay traces/run.trace --reexecute --segment "$SLURM_ARRAY_TASK_ID/12"

        Exit codes: 0 done (or verified), 1 a check failed (--verify or --reexecute found a difference, a round \
        re-simulated to rebuild its vectors differs from its record, or --fail-on-flag and some λ̂ exceeded its \
        bound or was non-finite), 2 bad usage or bad input (a value outside its range, an unknown rule, a \
        damaged trace).

        \(CatalogueHelp.rules)
        """,
        version: "desgd \(DesgdVersion.current), trace format \(TraceFormat.major).\(TraceFormat.minor)")

    @Argument(help: "The trace file.") var trace: String
    @Option(name: .customLong("agg"), parsing: .singleValue,
            help: ArgumentHelp("Rule(s) to replay: a spec, a comma-separated list, or all. Repeatable. Each"
                + " spec: \(SpecLimits.summary)."))
    var rules: [String] = []
    @Option(name: .customLong("pre"),
        help: "Pre-aggregators applied before each rule, e.g. bucketing:s=2 or nnm (\(SpecLimits.summary)).")
    var pre = ""
    @Option(name: .customLong("f"),
        help: ArgumentHelp("The f the rules are told, 0...the trace's number of workers (default: the"
        + " trace's f).")) var declaredF: Int?
    @Option(help: ArgumentHelp(RoundSelection.help)) var rounds: RoundSelection?
    @Flag(help: "Rows as CSV.") var csv = false
    @Flag(help: "Rows and summary as JSON.") var json = false
    @Flag(help: ArgumentHelp("Re-run the recorded rule on every round and check aggregates and model diffs bit"
        + " for bit.")) var verify = false
    @Flag(help: ArgumentHelp("Re-simulate the run from its state checkpoints and compare every record bit for bit (with"
        + " --rounds, --segment, --data)."))
    var reexecute = false
    @Option(help: ArgumentHelp("With --reexecute: part K of N of the segments between checkpoints, N in "
        + "\(rangeText(SegmentShare.partsRange)), K in 1...N."))
    var segment: SegmentShare?
    @Flag(help: ArgumentHelp("With --reexecute --rounds A:B: re-execute from round 0 (a fork: from its first round)"
        + " instead of the checkpoint before A, so that every checkpoint up to B is verified, the"
        + " one A starts from included."))
    var fromStart = false
    @Option(help: ArgumentHelp("With --verify or --reexecute of a fork: its parent trace, to prove the fork's descent"
        + " (its header and starting checkpoint re-derived from the parent re-simulated).",
                               valueName: "parent.trace"))
    var parent: String?
    @Option(help: ArgumentHelp("With --reexecute, or to rebuild vectors a trace lacks: the Fashion-MNIST directory the"
        + " run was recorded on (default: the recorded one, $DESGD_DATA, then /usr/share/datasets/fashion-mnist)."))
    var data: String?
    @Flag(help: ArgumentHelp("With --agg or --export: skip the rounds recorded without vectors instead of"
        + " rebuilding them by re-simulation."))
    var noRebuild = false
    @Option(help: "Write one round's messages, honest mask, aggregate and model diff as .npy files (with --round).")
    var export: String?
    @Option(help: "The round to export, 0...the trace's last round.") var round: Int?
    @Option(help: ArgumentHelp("recorded (default): the recorded Byzantine inputs; worst: also search, on every"
        + " replayed aggregation, the f Byzantine inputs that push each rule farthest from the honest mean, and report"
        + " the worst λ̂ and κ̂ found, how, and their ratio to the rule's proven bound.",
                               valueName: "recorded|worst"))
    var adversary: AdversaryChoice = .recorded
    @Option(help: ArgumentHelp("With --adversary worst: rule evaluations per aggregation, "
        + "\(rangeText(WorstCaseSearch.budgetRange)) (default \(WorstCaseSearch.defaultBudget))."))
    var budget: Int?
    @Flag(help: ArgumentHelp("Exit 1 when some λ̂ (or, with --adversary worst, some worst λ̂) exceeds its rule's"
        + " proven bound or some metric is non-finite (NaN, ±∞).")) var failOnFlag = false
    @Option(help: ArgumentHelp("Threads, \(rangeText(SimulationConfig.threadsRange)) (the output does not depend on it;"
        + " default: every core).")) var threads = SimulationConfig.defaultThreads
    @OptionGroup var memory: MemoryLimitOption

    /// The modes (`--agg`, `--verify`, `--reexecute`, `--export`) and the options that go with each,
    /// checked from the command line alone, before any file is opened.
    func validate() throws {
        let program = "desgd-replay"
        if csv && json { throw CommandFailure.exit(program, "--csv and --json exclude each other: choose one") }
        try CommandFailure.check(program, "--threads", threads, in: SimulationConfig.threadsRange)
        if !reexecute && segment != nil { throw CommandFailure.exit(program, "--segment goes with --reexecute") }
        if !reexecute && fromStart { throw CommandFailure.exit(program, "--from-start goes with --reexecute") }
        if fromStart && segment != nil {
            throw CommandFailure.exit(
                program,
                "--from-start re-executes every segment up to the range's end: drop --segment (the parts of a "
                    + "job array together verify every checkpoint)")
        }
        if parent != nil && !(reexecute || verify) {
            throw CommandFailure.exit(program, "--parent goes with --verify or --reexecute of a fork")
        }
        if (reexecute || verify) && noRebuild {
            throw CommandFailure.exit(program, "--no-rebuild goes with --agg or --export")
        }
        if verify && !reexecute && data != nil && parent == nil {
            throw CommandFailure.exit(program, "--data goes with --reexecute, --agg or --export")
        }
        try adversary.check(budget: budget, program: program)
        if adversary == .worst && (reexecute || verify || export != nil) {
            throw CommandFailure.exit(
                program, "--adversary worst goes with --agg: it searches the worst case of the replayed rules")
        }
        if reexecute {
            try segment?.check(program)
            return
        }
        if export != nil, round == nil {
            throw CommandFailure.exit(program, "--export needs --round T: the round to export")
        }
        if export == nil, round != nil {
            throw CommandFailure.exit(program, "--round goes with --export; to replay some rounds use --rounds A:B")
        }
        if export == nil, !verify, rules.isEmpty {
            throw CommandFailure.exit(
                program,
                "pass --agg RULE (e.g. --agg geomed, --agg trmean,krum, --agg all), or --verify, or --export DIR "
                    + "--round T")
        }
    }

    func run() throws {
        let program = "desgd-replay"
        try memory.apply(program: program)
        let reader = try TraceOpening.open(trace, program: program)
        let descent = try checkDescent(reader, program: program)
        if reexecute {
            try runReexecution(reader, descent: descent, program: program)
            return
        }
        if let export, let round {
            guard reader.roundCount > 0 else {
                throw CommandFailure.exit(program, "--round: \(trace) holds no complete round to export")
            }
            try CommandFailure.check(program, "--round", round,
                in: reader.rounds.lowerBound...(reader.rounds.upperBound - 1))
            if noRebuild && !reader.header.recording.storesVectors(round: round) {
                throw CommandFailure.exit(program,
                    "round \(round) of \(trace) was recorded without vectors: export a round recorded in full, or"
                    + " drop --no-rebuild to rebuild it")
            }
            let rebuilder = try VectorRebuilding.rebuilder(reader, rounds: [round], data: data, noRebuild: noRebuild,
                threads: threads, program: program)
            do {
                try reader.checkMemory(RoundExport.memoryEstimate(reader, rebuilder: rebuilder),
                    operation: "exporting round \(round)") } catch {
                throw CommandFailure.exit(program, error)
            }
            if let note = VectorRebuilding.note(rebuilder, rounds: [round], program: program) {
                FileHandle.standardError.write(Data(note.utf8))
            }
            let bar = ProgressBar(total: rebuilder?.simulatedRounds(for: [round]) ?? 0, label: "rebuild")
            do {
                let files = try RoundExport.export(reader, round: round, to: export, rebuilder: rebuilder) {
                    bar.update($0)
                }
                print("wrote round \(round) to \(export)"
                    + "\(rebuilder == nil ? "" : " (vectors rebuilt by re-simulation)"): "
                    + "\(files.joined(separator: ", "))")
            } catch { throw VectorRebuilding.failure(error, program: program) }
            return
        }
        if verify {
            let bar = ProgressBar(total: reader.roundCount, label: "verify")
            let report: VerificationReport
            do { report = try Verification.verify(reader, threads: threads) { bar.update($0) } } catch {
                throw CommandFailure.exit(program, error)
            }
            for note in report.notes {
                FileHandle.standardError.write(Data("\(program): note: \(DisplayText.escaped(note))\n".utf8))
            }
            if let m = report.mismatch {
                print("verification FAILED: \(DisplayText.escaped(m))")
                throw ExitCode(1)
            }
            print("verified \(report.roundsChecked) rounds of \(trace): every aggregate, decision and carried state of "
                + "\(DisplayText.escaped(reader.header.aggregator)) matches bit for bit"
                  + (report.diffsChecked > 0
                      ? ", and every model diff (\(report.diffsChecked)) and keyframe (\(report.keyframesChecked))"
                      : ""))
            if let descent { print(DisplayText.escaped(descent.summary)) }
            return
        }
        let specs = rules.flatMap { AggregatorCatalogue.splitList($0) }
        let range = try RoundSelection.resolve(rounds, in: reader, trace: trace, program: program)
        let adversarySearch = adversary.search(budget: budget)
        let replayer: Replayer
        do {
            replayer = try Replayer(reader: reader, rules: specs, pre: pre, f: declaredF, threads: threads,
                                    skipUnrunnable: specs.contains { $0.lowercased() == "all" },
                                    adversary: adversarySearch)
        } catch { throw CommandFailure.exit(program, error) }
        let rebuilder = try VectorRebuilding.rebuilder(reader, rounds: range, data: data, noRebuild: noRebuild,
            threads: threads, program: program)
        // The rules were checked above, before the data set was loaded for the rebuilder.
        replayer.rebuilder = rebuilder
        // Within the memory limit before anything is written (docs/bad-input.md).
        do { try replayer.checkMemory(rounds: range) } catch { throw CommandFailure.exit(program, error) }
        if let note = VectorRebuilding.note(rebuilder, rounds: range, program: program) {
            FileHandle.standardError.write(Data(note.utf8))
        }
        let format: ReplayOutput.Format = csv ? .csv : json ? .json : .table
        let bar = ProgressBar(total: replayer.work(rounds: range), label: "replay")
        var summary = ReplaySummaryBuilder()
        var first = true
        let worst = adversary == .worst
        let labels = RuleLabels(replayer.rules.map(\.spec))
        emit(ReplayOutput.begin(format, trace: trace, rules: replayer.rules.map(\.spec), worstCase: worst))
        let counts: (replayed: Int, skipped: Int)
        do {
            counts = try replayer.run(rounds: range, progress: { bar.update($0) }) { rows in
                summary.add(rows)
                emit(ReplayOutput.rows(rows, format: format, first: first, worstCase: worst, labels: labels))
                first = first && rows.isEmpty
            }
        } catch { throw VectorRebuilding.failure(error, program: program) }
        let summaries = summary.summaries()
        emit(ReplayOutput.end(format, summaries: summaries, replayed: counts.replayed, skippedRounds: counts.skipped,
                              skippedRules: replayer.skipped, labels: labels, fileText: [reader.header.aggregator]))
        if let note = replayer.driftNote { FileHandle.standardError.write(Data("desgd-replay: \(note)\n".utf8)) }
        for s in summaries {
            guard let w = s.worstCase, !w.exceededRounds.isEmpty else { continue }
            FileHandle.standardError.write(Data(("desgd-replay: WORST CASE ABOVE THE PROVEN BOUND: \(s.rule) in "
                + "\(w.exceededRounds.count) aggregation\(w.exceededRounds.count == 1 ? "" : "s") (first: round "
                + "\(w.exceededRounds[0])): a bug in the rule or in its bound\n").utf8))
        }
        if failOnFlag
            && summaries.contains(where: {
                !$0.flaggedRounds.isEmpty || !$0.nonFiniteRounds.isEmpty
                    || !($0.worstCase?.exceededRounds.isEmpty ?? true) }) {
            throw ExitCode(1)
        }
    }

    /// Writes table or CSV text (JSON passes unchanged: the encoder escaped it), every non-printing
    /// character from the trace shown escaped (DisplayText).
    func emit(_ text: String) {
        guard !text.isEmpty else { return }
        FileHandle.standardOutput.write(Data((json ? DisplayText.jsonEscaped(text) : DisplayText.escapedLines(text))
            .utf8))
    }
}
