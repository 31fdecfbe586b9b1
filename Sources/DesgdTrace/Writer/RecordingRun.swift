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
    public var rawVectorBytes: UInt64
    /// Trace bytes over the raw float32 bytes of the messages, aggregates and diffs it holds.
    public var compressionRatio: Double
    public var seconds: Double
    /// Seconds the recorder's background queue was busy (overlapping the training).
    public var recordingSeconds: Double
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
    /// Ctrl-C). Throws the recorder's first write error.
    public static func run(config: SimulationConfig, dataset: Dataset, recorder: TraceRecorder, shouldStop: () -> Bool,
                           progress: (Int, Evaluation?) -> Void) throws(SimulationError) -> (SimulationResult, RecordingSummary) {
        let simulation = try Simulation(config: config, dataset: dataset)
        let result = try simulation.run(observer: recorder) { t, evaluation in
            if shouldStop() { recorder.stopRequested = true }
            progress(t, evaluation)
        }
        if let failure = recorder.failure { throw SimulationError(failure.message) }
        let s = recorder.statistics
        let summary = RecordingSummary(
            trace: recorder.path, mode: config.mode.rawValue, aggregator: simulation.pipeline.spec, attack: simulation.attack.spec,
            model: config.model.rawValue, seed: config.seed, rounds: result.rounds, plannedRounds: config.rounds,
            interrupted: result.rounds < config.rounds, bestAccuracy: result.bestAccuracy, finalAccuracy: result.finalAccuracy,
            traceBytes: s.traceBytes, rawVectorBytes: s.rawVectorBytes, compressionRatio: s.compressionRatio,
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
