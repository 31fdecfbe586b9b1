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
        try ResumeRun.resume(path: path, threads: 2, dataDirectory: nil,
            compressionLevel: TraceRecorder.defaultCompressionLevel, signingKey: key)
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
                guard case .resumed(let start, _, let rounds) = outcome else {
                    Issue.record("cut at \(cut): \(outcome)"); continue
                }
                starts.insert(start)
                #expect(rounds == 9)
                #expect(contents(path) == original,
                    "cut at byte \(cut) (record \(k), \(e.type.name)) resumed from round \(start)")
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

    /// A resumption cut short after a state checkpoint later than its start keeps what it wrote.
    /// Stopped, its file replaces the trace: the very bytes of a recording stopped at that round.
    /// Killed, its leftover is taken over by the next resumption when it holds the trace byte for
    /// byte; a leftover of another run is left alone and the resumption refused. Each time the next
    /// resumption ends at the uninterrupted file.
    @Test func aResumptionCutShortAfterALaterCheckpointKeepsWhatItWrote() throws {
        let (full, _, _) = try record(Self.config, keyframes: 4, checkpoints: 3)  // checkpoints 0, 3, 6
        let (stoppedAt5, _, _) = try record(Self.config, keyframes: 4, stopAfter: 5, checkpoints: 3)
        let path = temporaryPath("cut-short"), leftover = ResumeRun.temporaryPath(for: path)
        defer { for p in [full, stoppedAt5, path, leftover] { try? FileManager.default.removeItem(atPath: p) } }
        let original = contents(full)
        let records = try TraceReader(path: full).records
        func cut(insideRound t: Int) -> Data {
            let e = records.first { $0.type == .round && $0.round == t }!
            return Data(original[..<Int(e.offset + e.size / 2)])
        }
        FileManager.default.createFile(atPath: path, contents: cut(insideRound: 1))  // resumes from round 0
        var calls = 0
        let stopped = try ResumeRun.resume(
            path: path, threads: 2, dataDirectory: nil, compressionLevel: TraceRecorder.defaultCompressionLevel,
            signingKey: nil, shouldStop: { calls += 1; return calls == 5 })  // asked in round 4's callback
        #expect(stopped == .interrupted(at: 5, resumesFrom: 3))
        #expect(contents(path) == contents(stoppedAt5) && !FileManager.default.fileExists(atPath: leftover))
        #expect(try resume(path) == .resumed(from: 3, checked: 2, rounds: 9) && contents(path) == original)

        // Killed inside round 7: its leftover is the uninterrupted file cut there. While a process
        // holds a lock on it (a resumption still writing it) it is not taken.
        FileManager.default.createFile(atPath: path, contents: cut(insideRound: 1))
        FileManager.default.createFile(atPath: leftover, contents: cut(insideRound: 7))
        let writer = open(leftover, O_RDONLY)
        #expect(writer >= 0 && flock(writer, LOCK_EX | LOCK_NB) == 0)
        #expect(try ResumeRun.adoptLeftover(of: path) == nil)
        close(writer)
        #expect(try resume(path) == .resumed(from: 6, checked: 1, rounds: 9) && contents(path) == original)
        #expect(!FileManager.default.fileExists(atPath: leftover))

        // A leftover of another run (seed 2) holds later checkpoints but not the trace: not taken.
        let (other, _, _) = try record(tinyConfig { $0.rounds = 9; $0.seed = 2 }, keyframes: 4, checkpoints: 3)
        defer { try? FileManager.default.removeItem(atPath: other) }
        FileManager.default.createFile(atPath: path, contents: cut(insideRound: 1))
        FileManager.default.createFile(atPath: leftover, contents: Data(contents(other).dropLast(100)))
        #expect(try ResumeRun.adoptLeftover(of: path) == nil)
        #expect(throws: TraceError.self) { try resume(path) }
        #expect(contents(path) == [UInt8](cut(insideRound: 1)) && FileManager.default.fileExists(atPath: leftover))
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
            #expect(error.kind == .mismatch && error.message.contains("round 7 differs from the recorded one"),
                "\(error.message)")
        }
        #expect(contents(full) == edited)
        #expect(!FileManager.default.fileExists(atPath: ResumeRun.temporaryPath(for: full)))
    }
}
