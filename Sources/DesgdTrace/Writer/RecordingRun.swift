import DesgdNumerics
import DesgdSimulation
import Foundation

/// What `desgd-record` prints at the end (and as `--json`).
public struct RecordingSummary: Sendable, Codable, Equatable {
    public var trace: String
    public var mode: String
    public var aggregator: String
    public var attack: String
    public var model: String
    public var seed: UInt64
    public var rounds: Int
    public var plannedRounds: Int
    public var interrupted: Bool
    public var bestAccuracy: Double
    public var finalAccuracy: Double
    public var traceBytes: UInt64
    /// What the trace's bytes are made of, by record type.
    public var composition: TraceComposition
    public var rawVectorBytes: UInt64
    /// The round records that hold vectors over the raw float32 bytes of the messages, aggregates
    /// and diffs they hold (``RecordingStatistics/compressionRatio``).
    public var compressionRatio: Double
    public var seconds: Double
    /// Seconds the recorder's background queue was busy (overlapping the training).
    public var recordingSeconds: Double
}

extension RecordingSummary {
    /// The trace line of `desgd-record`'s summary: the size and what it is made of, e.g.
    /// `trace T: 222.0 MB = 300 rounds 180.1 MB (0.581 of the 310.0 MB of raw float32 vectors they hold)
    /// + 6 checkpoints 38.2 MB + 7 keyframes 3.1 MB + header, signatures, index 0.1 MB`.
    public var traceLine: String {
        let c = composition
        let mb = { (b: UInt64) in b < 1_000_000 ? String(format: "%.0f KB", Double(b) / 1e3) : String(format: "%.1f MB", Double(b) / 1e6) }
        let plural = { (n: Int, word: String) in "\(n) \(word)\(n == 1 ? "" : "s")" }
        let vectors = rawVectorBytes == 0 ? "no vectors"
            : (c.vectorRoundBytes == c.roundBytes ? "" : "\(mb(c.vectorRoundBytes)) of them with vectors: ")
                + "\(String(format: "%.3f", compressionRatio)) of the \(mb(rawVectorBytes)) of raw float32 vectors they hold"
        return "trace \(DisplayText.escaped(trace)): \(mb(traceBytes)) = \(plural(c.roundRecords, "round")) \(mb(c.roundBytes)) (\(vectors))"
            + " + \(plural(c.checkpoints, "checkpoint")) \(mb(c.checkpointBytes)) + \(plural(c.keyframes, "keyframe")) \(mb(c.keyframeBytes))"
            + " + header, signatures, index \(mb(c.otherBytes))"
    }
}

/// Where traces go by default, and their descriptive names.
public enum TracePaths {
    /// The default directory, relative to the working directory.
    public static let directory = "traces"

    /// `text` with every character outside `[A-Za-z0-9._-]` (and `extra`) replaced by `_`: a file
    /// name part that needs no quoting in a shell.
    public static func fileSafe(_ text: String, keeping extra: Set<Character> = []) -> String {
        String(text.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "-" || extra.contains($0) ? $0 : "_" })
    }

    /// `traces/<mode>-<rule>-<attack>-<model>-seed<s>-<rounds>r.trace`, with characters outside
    /// `[A-Za-z0-9._-]` of the specs replaced by `_`, and `-2`, `-3`, … appended when a file of
    /// that name exists: a default name never overwrites.
    public static func defaultPath(for config: SimulationConfig, in directory: String = directory) -> String {
        let rule = config.preAggregators.isEmpty ? config.aggregator : config.preAggregators + "+" + config.aggregator
        let stem = [config.mode.rawValue, fileSafe(rule), fileSafe(config.attack), config.model.rawValue, "seed\(config.seed)",
                    "\(config.rounds)r"].joined(separator: "-")
        return unusedPath(stem: stem, in: directory)
    }

    /// `directory/stem.trace`, or with `-2`, `-3`, … appended when that file exists.
    static func unusedPath(stem: String, in directory: String) -> String {
        var path = "\(directory)/\(stem).trace"
        var k = 2
        while FileManager.default.fileExists(atPath: path) {
            path = "\(directory)/\(stem)-\(k).trace"
            k += 1
        }
        return path
    }
}

/// A simulation recorded into a trace: the body of `desgd-record` (whose front end adds a progress
/// bar), of the recording benchmark and of every grid cell, so that each writes the same bytes.
public enum RecordingRun {
    /// Runs `config` into `recorder`: `progress(t, evaluation)` after every round, and the run
    /// ends cleanly after the round in which `shouldStop()` first returns true (the grid runner's
    /// Ctrl-C). Throws a ``SimulationError`` when the run cannot start, and the recorder's first
    /// failure as the ``TraceError`` it is (a disk error is an I/O failure, not bad input).
    public static func run(config: SimulationConfig, dataset: Dataset, recorder: TraceRecorder, shouldStop: () -> Bool,
                           progress: (Int, Evaluation?) -> Void) throws -> (SimulationResult, RecordingSummary) {
        let simulation = try Simulation(config: config, dataset: dataset)
        let result = try simulation.run(observer: recorder) { t, evaluation in
            if shouldStop() { recorder.stopRequested = true }
            progress(t, evaluation)
        }
        if let failure = recorder.failure { throw failure }
        let s = recorder.statistics
        let summary = RecordingSummary(
            trace: recorder.path, mode: config.mode.rawValue, aggregator: simulation.pipeline.spec, attack: simulation.attack.spec,
            model: config.model.rawValue, seed: config.seed, rounds: result.rounds, plannedRounds: config.rounds,
            interrupted: result.rounds < config.rounds, bestAccuracy: result.bestAccuracy, finalAccuracy: result.finalAccuracy,
            traceBytes: s.traceBytes, composition: s.composition, rawVectorBytes: s.rawVectorBytes, compressionRatio: s.compressionRatio,
            seconds: result.seconds, recordingSeconds: s.seconds)
        return (result, summary)
    }
}

extension TracePaths {
    /// `traces/<parent's name>-fork<T>-<option>=<value>….trace` (e.g.
    /// `desgd-mean-ipm-small-seed1-300r-fork120-agg=cclip.trace`, `-unchanged` when nothing
    /// changed), with `-2`, `-3`, … when taken: a default name never overwrites.
    public static func forkPath(parent: String, fork: TraceHeader.ForkInfo, in directory: String = directory) -> String {
        var stem = (parent as NSString).lastPathComponent
        if stem.hasSuffix(".trace") { stem.removeLast(6) }
        let changes = fork.changes.isEmpty ? "unchanged" : fork.changes.map { "\($0.option.drop { $0 == "-" })=\($0.fork)" }.joined(separator: "-")
        return unusedPath(stem: fileSafe("\(stem)-fork\(fork.at)-\(changes)", keeping: ["="]), in: directory)
    }
}
