import DesgdNumerics
import DesgdRecording
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// The summary's size breakdown (`desgd-record`'s trace line): each part is the sum of that type's
/// records as a reader finds them in the file, the parts add up to the file's size, and the ratio
/// counts the round records that hold vectors against the raw bytes of those vectors only.
@Suite struct TraceCompositionTests {
    func summary(_ mode: RecordingMode, checkpoints: Int, keyframes: Int) throws -> (RecordingSummary, TraceReader,
        String) {
        let path = temporaryPath()
        let config = tinyConfig { $0.rounds = 6 }
        let recorder = try TraceRecorder(path: path, mode: mode, keyframeInterval: keyframes,
            checkpointInterval: checkpoints)
        let (_, summary) = try RecordingRun.run(config: config, dataset: tinyData, recorder: recorder,
            shouldStop: { false }) { _, _ in }
        return (summary, try TraceReader(path: path), path)
    }

    @Test(arguments: [RecordingMode.full, .sampled(every: 4), .decisions])
    func thePartsAreTheFilesRecordsAndAddUp(_ mode: RecordingMode) throws {
        let (s, reader, path) = try summary(mode, checkpoints: 3, keyframes: mode == .decisions ? 6 : 2)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = s.composition
        func bytes(_ type: RecordType, where keep: (IndexEntry) -> Bool = { _ in true }) -> UInt64 {
            reader.records.filter { $0.type == type && keep($0) }.reduce(0) { $0 + $1.size }
        }
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64)
        #expect(c.totalBytes == fileSize && s.traceBytes == fileSize)
        #expect(c.roundRecords == 6 && c.roundBytes == bytes(.round))
        #expect(c.checkpoints == 2 && c.checkpointBytes == bytes(.checkpoint) && c.checkpointBytes > 0)
        #expect(c.keyframes == reader.records.filter { $0.type == .keyframe }.count
            && c.keyframeBytes == bytes(.keyframe))
        #expect(c.vectorRoundBytes == bytes(.round) { mode.storesVectors(round: $0.round) })
        if mode == .decisions {
            #expect(s.rawVectorBytes == 0 && s.compressionRatio == 0 && c.keyframes == 2)
            #expect(s.traceLine.contains("6 rounds") && s.traceLine.contains("(no vectors)"))
        } else {
            // Like against like: the checkpoints' bytes are not in the ratio.
            #expect(abs(s.compressionRatio - Double(c.vectorRoundBytes) / Double(s.rawVectorBytes)) < 1e-12)
            #expect(Double(s.traceBytes) / Double(s.rawVectorBytes) > s.compressionRatio)
            #expect(s.traceLine.contains(String(format: "%.3f of the", s.compressionRatio)))
        }
        #expect(s.traceLine.contains("2 checkpoints") && s.traceLine.hasPrefix("trace \(path): "))
    }

    /// `decisions` with checkpoints: keyframes before the first round and after the last only.
    @Test func decisionsWithCheckpointsKeepOnlyTheFirstAndLastKeyframe() {
        #expect(TraceRecorder.defaultKeyframeInterval(mode: .decisions, checkpointInterval: 500, rounds: 3000) == 3000)
        #expect(TraceRecorder.defaultKeyframeInterval(mode: .decisions, checkpointInterval: 0, rounds: 3000) == 100)
        #expect(TraceRecorder.defaultKeyframeInterval(mode: .full, checkpointInterval: 50, rounds: 300) == 100)
        #expect(TraceRecorder.defaultKeyframeInterval(mode: .sampled(every: 10), checkpointInterval: 50, rounds: 300)
            == 100)
    }

    /// `desgd-bench checkpoint`: every stored vector of a checkpoint is in exactly one part, and the
    /// parts compressed alone come to about the record's payload (one frame over all of them).
    @Test func aCheckpointsPartsCoverItsVectors() throws {
        let (_, reader, path) = try summary(.decisions, checkpoints: 3, keyframes: 6)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let checkpoint = try reader.checkpoint(1)
        let parts = checkpoint.composition()
        #expect(parts.reduce(0) { $0 + $1.vectors } == checkpoint.content.vectors.count)
        #expect(parts.reduce(0) { $0 + $1.rawBytes } == checkpoint.content.vectors.reduce(0) { $0 + 4 * $1.count })
        let drift = try #require(parts.first { $0.name == "drift: group recent sums" })
        #expect(drift.vectors == checkpoint.content.drift?.groups.count && drift.vectors > 0)
        let compressed = Double(parts.reduce(0) { $0 + $1.compressedBytes }),
            record = Double(reader.checkpointRecords[1].size)
        #expect(compressed > 0.8 * record && compressed < 1.2 * record)
    }
}
