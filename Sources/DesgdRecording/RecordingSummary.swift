import DesgdNumerics
import DesgdSimulation
import DesgdTrace
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
        let mb = { (b: UInt64) in
            b < 1_000_000 ? String(format: "%.0f KB", Double(b) / 1e3) : String(format: "%.1f MB", Double(b) / 1e6) }
        let plural = { (n: Int, word: String) in "\(n) \(word)\(n == 1 ? "" : "s")" }
        let vectors = rawVectorBytes == 0 ? "no vectors"
            : (c.vectorRoundBytes == c.roundBytes ? "" : "\(mb(c.vectorRoundBytes)) of them with vectors: ")
                + "\(String(format: "%.3f", compressionRatio)) of the \(mb(rawVectorBytes)) of"
                    + " raw float32 vectors they hold"
        return "trace \(DisplayText.escaped(trace)): \(mb(traceBytes)) = \(plural(c.roundRecords, "round")) "
            + "\(mb(c.roundBytes)) (\(vectors))"
            + " + \(plural(c.checkpoints, "checkpoint")) \(mb(c.checkpointBytes)) + "
                + "\(plural(c.keyframes, "keyframe")) \(mb(c.keyframeBytes))"
            + " + header, signatures, index \(mb(c.otherBytes))"
    }
}
