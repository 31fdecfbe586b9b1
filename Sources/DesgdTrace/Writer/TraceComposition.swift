/// What a trace's bytes are made of, by record type: the honest answer to "why is my `decisions`
/// trace 300 MB?" (state checkpoints), and the like-for-like base of the compression ratio (round
/// records that hold vectors against the raw float32 bytes of those vectors, not the whole file).
/// Sizes are whole records: header, payload and digest.
public struct TraceComposition: Sendable, Codable, Equatable {
    public var roundRecords = 0
    public var roundBytes: UInt64 = 0
    /// The part of `roundBytes` in round records that hold their vectors.
    public var vectorRoundBytes: UInt64 = 0
    public var keyframes = 0
    public var keyframeBytes: UInt64 = 0
    public var checkpoints = 0
    public var checkpointBytes: UInt64 = 0
    /// Header, signature, index and footer records (and records of later minor versions).
    public var otherBytes: UInt64 = 0

    public init() {}

    /// The composition of the records `entries` of a trace recorded in `mode`.
    public init(entries: [IndexEntry], mode: RecordingMode) {
        for e in entries {
            switch e.type {
            case .round:
                roundRecords += 1
                roundBytes += e.size
                if mode.storesVectors(round: e.round) { vectorRoundBytes += e.size }
            case .keyframe:
                keyframes += 1
                keyframeBytes += e.size
            case .checkpoint:
                checkpoints += 1
                checkpointBytes += e.size
            default:
                otherBytes += e.size
            }
        }
    }

    public var totalBytes: UInt64 { roundBytes + keyframeBytes + checkpointBytes + otherBytes }
}
