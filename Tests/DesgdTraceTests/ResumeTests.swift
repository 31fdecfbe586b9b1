import DesgdFuzzing
import DesgdNumerics
import DesgdResimulation
import DesgdSimulation
@testable import DesgdTrace
import Foundation
import Testing

/// `desgd-record --resume` (ResumeRun): an interrupted recording continued from its last state
/// checkpoint is byte-identical to an uninterrupted one, and the original survives any failure.
@Suite struct ResumeTests {
    static let config = tinyConfig { $0.rounds = 9 }

    func contents(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    func resume(_ path: String, key: TraceSigningKey? = nil) throws(TraceError) -> ResumeRun.Outcome {
        try ResumeRun.resume(path: path, threads: 2, dataDirectory: nil, compressionLevel: TraceRecorder.defaultCompressionLevel, signingKey: key)
    }

    /// A recorder killed at every record (at its start, or inside it, alternately): each copy resumed
    /// gives the uninterrupted file, byte for byte, and no temporary file is left.
    @Test func killedRecordingsResumeToTheUninterruptedFile() throws {
        let (full, _, _) = try record(Self.config, keyframes: 4, checkpoints: 3)
        defer { try? FileManager.default.removeItem(atPath: full) }
        let original = contents(full)
        let records = try TraceReader(path: full).records
        let lastRound = records.lastIndex { $0.type == .round }!
        var starts: Set<Int> = []
        for (k, e) in records.enumerated() where k >= 1 && k <= lastRound {
            for cut in [Int(e.offset) + (k % 2 == 0 ? 0 : Int(e.size) / 2)] {
                let path = temporaryPath("killed")
                defer { try? FileManager.default.removeItem(atPath: path) }
                FileManager.default.createFile(atPath: path, contents: Data(original[..<cut]))
                let outcome = try resume(path)
                guard case .resumed(let start, _, let rounds) = outcome else { Issue.record("cut at \(cut): \(outcome)"); continue }
                starts.insert(start)
                #expect(rounds == 9)
                #expect(contents(path) == original, "cut at byte \(cut) (record \(k), \(e.type.name)) resumed from round \(start)")
                #expect(!FileManager.default.fileExists(atPath: ResumeRun.temporaryPath(for: path)))
            }
        }
        #expect(starts == [0, 3, 6])
        #expect(try resume(full) == .alreadyComplete(rounds: 9))
    }

    /// A recording stopped cleanly (Ctrl-C: index, footer and a closing keyframe written) resumes
    /// too, and a signed one with its key (and is refused without it).
    @Test func stoppedAndSignedRecordingsResume() throws {
        let (full, _, _) = try record(Self.config, keyframes: 4, checkpoints: 3)
        let (stopped, _, _) = try record(Self.config, keyframes: 4, stopAfter: 5, checkpoints: 3)
        defer { for p in [full, stopped] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(try TraceReader(path: stopped).completeness == .complete(interrupted: true))
        #expect(try resume(stopped) == .resumed(from: 3, checked: 2, rounds: 9))
        #expect(contents(stopped) == contents(full))

        func signed(stopAfter: Int?) throws -> String {
            let path = temporaryPath("signed")
            let recorder = try TraceRecorder(path: path, keyframeInterval: 4, signingKey: keyA, checkpointInterval: 3)
            let tee = Tee(recorder)
            tee.stopAfter = stopAfter
            _ = try Simulation(config: Self.config, dataset: tinyData).run(observer: tee)
            return path
        }
        let whole = try signed(stopAfter: nil), cut = try signed(stopAfter: 7)
        defer { for p in [whole, cut] { try? FileManager.default.removeItem(atPath: p) } }
        #expect(throws: TraceError.self) { try resume(cut) }
        #expect(throws: TraceError.self) { try resume(cut, key: keyB) }
        #expect(try resume(cut, key: keyA) == .resumed(from: 6, checked: 1, rounds: 9))
        #expect(contents(cut) == contents(whole))
        #expect(try TraceReader(path: cut).verifySignatures().status == .whole)
    }

    /// A round after the checkpoint that is not what the configuration records (edited, digests
    /// recomputed): the resumption fails naming it, and the original file is left as it was.
    @Test func aDifferentRecordedRoundFailsAndKeepsTheOriginal() throws {
        let (full, _, _) = try record(Self.config, keyframes: 4, stopAfter: 8, checkpoints: 3)
        defer { try? FileManager.default.removeItem(atPath: full) }
        let edited = try #require(TraceMutator.editingJSON(of: contents(full), type: .round, round: 7) { json in
            json["evaluation"] = ["accuracy": 0.5, "loss": 1.0]
        })
        FileManager.default.createFile(atPath: full, contents: Data(edited))
        do {
            _ = try resume(full)
            Issue.record("an edited round was resumed over")
        } catch {
            #expect(error.kind == .mismatch && error.message.contains("round 7 differs from the recorded one"), "\(error.message)")
        }
        #expect(contents(full) == edited)
        #expect(!FileManager.default.fileExists(atPath: ResumeRun.temporaryPath(for: full)))
    }
}
