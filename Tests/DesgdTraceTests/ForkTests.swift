import DesgdFuzzing
import DesgdNumerics
import DesgdReplay
import DesgdResimulation
import DesgdSimulation
@testable import DesgdTrace
import Foundation
import Testing

/// `desgd-record --fork TRACE --at T` (TraceFork): a fork starts from the parent's verified state at
/// round T, keeps the round numbers, and is a self-contained trace.
@Suite struct ForkTests {
    /// 12 rounds of the smoke setup, centered clipping (carried state) against IPM, evaluated every
    /// 4 rounds; a state checkpoint every 4 rounds, a keyframe every 5.
    static let config = tinyConfig { $0.rounds = 12; $0.evaluationInterval = 4 }

    static func parent(_ edit: (inout SimulationConfig) -> Void = { _ in }) throws -> String {
        var c = config
        edit(&c)
        let (path, _, _) = try record(c, keyframes: 5, checkpoints: 4)
        return path
    }

    /// Forks `parent` at `at` with `edit` applied to its configuration, recording with the parent's
    /// options; returns the fork's path and the outcome.
    static func fork(_ parent: String, at: Int, _ edit: (inout SimulationConfig) -> Void = { _ in }) throws -> (String,
        TraceFork.Outcome) {
        let h = try TraceReader(path: parent).header
        var c = h.config
        edit(&c)
        let fork = try TraceFork(parentPath: parent, at: at, config: c, dataDirectory: nil)
        let path = temporaryPath("fork")
        let outcome = try fork.run { info, drift throws(TraceError) in
            try TraceRecorder(path: path, mode: h.recording, keyframeInterval: h.keyframeInterval,
                              driftWindow: h.driftWindow!,
                              checkpointInterval: h.checkpointInterval ?? 0, fork: info, forkDrift: drift)
        }
        return (path, outcome)
    }

    func roundBody(_ reader: TraceReader, _ t: Int) throws -> [UInt8] {
        try reader.bodyBytes(ofRecord: reader.records.firstIndex { $0.type == .round && $0.round == t }!)
    }

    /// Nothing changed: from T on, the fork's round records are the parent's, byte for byte (between
    /// two checkpoints, at a checkpoint, and at round 0); the fork starts with a checkpoint and a
    /// keyframe of round T and names the parent's digest of round T − 1.
    @Test func anUnchangedForkRecordsTheParentsRounds() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let parent = try TraceReader(path: parentPath)
        for at in [6, 8, 0] {
            let (path, outcome) = try Self.fork(parentPath, at: at)
            defer { try? FileManager.default.removeItem(atPath: path) }
            guard case .forked(let end, _, _) = outcome else { Issue.record("at \(at): \(outcome)"); continue }
            #expect(end == 12)
            let fork = try TraceReader(path: path)
            #expect(fork.firstRound == at && fork.rounds == at..<12)
            #expect(fork.records[1].type == .checkpoint && fork.checkpointRounds.first == at)
            #expect(fork.records[2].type == .keyframe && fork.records[2].round == at)
            #expect(fork.header.fork?.changes == [])
            let anchor = at == 0 ? 0 : parent.records.firstIndex { $0.type == .round && $0.round == at - 1 }!
            #expect(fork.header.fork?.parentDigest == (try parent.storedDigest(ofRecord: anchor)))
            for t in at..<12 { #expect(try roundBody(fork, t) == roundBody(parent, t), "at \(at): round \(t)") }
            #expect(fork.verifyChain().holds)
        }
    }

    /// A fork trace is self-contained: --verify, --reexecute (from its first checkpoint) and a resume
    /// of a killed fork (byte-identical to the whole fork) work on it.
    @Test func aForkVerifiesReexecutesAndResumes() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let (path, _) = try Self.fork(parentPath, at: 6) { $0.aggregator = "trmean"; $0.learningRate = 0.05 }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fork = try TraceReader(path: path)
        #expect(fork.header.fork?.changes.map(\.option) == ["--lr", "--agg"])
        #expect(fork.header.fork?.label == "lr=0.05, agg=trmean")
        let verification = try Verification.verify(fork, threads: 2)
        #expect(verification.passed && verification.roundsChecked == 6)
        let segments = try Reexecution.segments(of: fork, rounds: fork.rounds)
        #expect(segments.first?.start == 6)
        let report = try Reexecution.run(fork, dataset: tinyData, segments: segments, threads: 2)
        #expect(report.passed && report.roundsChecked == 6, "\(report.mismatch ?? "")")

        // Killed inside round 9's record: resumed from the checkpoint of round 8, byte-identical.
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        let r9 = fork.records.first { $0.type == .round && $0.round == 9 }!
        let killed = temporaryPath("killed-fork")
        defer { try? FileManager.default.removeItem(atPath: killed) }
        FileManager.default.createFile(atPath: killed, contents: Data(bytes[..<Int(r9.offset + r9.size / 2)]))
        let outcome = try ResumeRun.resume(path: killed, threads: 2, dataDirectory: nil,
                                           compressionLevel: TraceRecorder.defaultCompressionLevel,
                                           signingKey: nil)
        #expect(outcome == .resumed(from: 8, checked: 1, rounds: 6))
        #expect([UInt8](FileManager.default.contents(atPath: killed)!) == bytes)
    }

    /// The Python reader (written from FORMAT.md) reads a fork: rounds from T, the checkpoint of
    /// round T as record 1, the model rebuilt from keyframe T, a cut and a flipped byte.
    @Test(.enabled(if: PythonReaderTests.python,
        "python3 with zstandard and numpy")) func thePythonReaderChecksAFork() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let (path, _) = try Self.fork(parentPath, at: 5) { $0.attack = "alie" }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, text) = try PythonReaderTests.check(path)
        #expect(status == 0, "\(text)")
        #expect(text.contains("rounds 5..<12") && text.contains("checkpoint 5: model and buffer equal keyframe 5"),
            "\(text)")
    }

    /// A changed rule starts from its initial state (mean → cclip: no carried centre at round 10,
    /// whose class was aggregated at round 0), while an unchanged cclip carries the parent's.
    @Test func aChangedRuleStartsFromItsInitialState() throws {
        let meanParent = try Self.parent { $0.aggregator = "mean" }, cclipParent = try Self.parent()
        defer { for p in [meanParent, cclipParent] { try? FileManager.default.removeItem(atPath: p) } }
        let (changed, _) = try Self.fork(meanParent, at: 10) { $0.aggregator = "cclip" }
        let (kept, _) = try Self.fork(cclipParent, at: 10)
        defer { for p in [changed, kept] { try? FileManager.default.removeItem(atPath: p) } }
        let fresh = try TraceReader(path: changed).round(10).content.aggregations[0].stateBefore
        let carried = try TraceReader(path: kept).round(10).content.aggregations[0].stateBefore
        #expect(fresh.scalars.isEmpty && (fresh.vectors ?? [:]).isEmpty)
        #expect(!(carried.vectors ?? [:]).isEmpty)
        #expect(carried == (try TraceReader(path: cclipParent).round(10).content.aggregations[0].stateBefore))
        #expect(try TraceReader(path: changed).header.fork?.changes
            == [.init(option: "--agg", parent: "mean", fork: "cclip")])
    }

    /// Refused with a usage error (exit 2) before anything is written: a change of the state's shape
    /// (naming the option), a round beyond the parent's, rounds that do not go past T.
    @Test func shapeChangesAndRoundsOutOfRangeAreRefused() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let c = Self.config
        func refusal(at: Int, _ edit: (inout SimulationConfig) -> Void) -> String? {
            var f = c
            edit(&f)
            do {
                _ = try TraceFork(parentPath: parentPath, at: at, config: f, dataDirectory: nil)
                return nil
            } catch {
                // Settings as values, tagged: the library names none by its option.
                let text = error.explanation.rendered { "<\($0.rawValue)>" }
                return error.kind == .usage ? text : "not a usage error: \(text)"
            }
        }
        #expect(refusal(at: 6) { $0.honestWorkers += 1 }?.hasPrefix("<honestWorkers>:") == true)
        #expect(refusal(at: 6) { $0.model = .lenet }?.hasPrefix("<model>:") == true)
        #expect(refusal(at: 6) { $0.mode = .sgd }?.hasPrefix("<mode>:") == true)
        #expect(refusal(at: 6) { $0.seed = 2 }?.hasPrefix("<seed>:") == true)
        #expect(refusal(at: 6) { $0.classesPerRound = 2 }?.hasPrefix("<classesPerRound>:") == true)
        #expect(refusal(at: 13) { _ in }?.hasPrefix("<forkRound> 13:") == true)
        #expect(refusal(at: 12) { _ in }?.hasPrefix("<rounds> 12:") == true)
        #expect(refusal(at: 6) { $0.attack = "alie" } == nil)
    }

    /// A parent whose rounds between its checkpoint and T are not what its configuration records
    /// (an evaluation edited, digests recomputed) is an outcome naming the round; nothing is written
    /// and the parent is unchanged.
    @Test func aParentThatDiffersIsNotForked() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let original = [UInt8](FileManager.default.contents(atPath: parentPath)!)
        let edited = try #require(TraceMutator.editingJSON(of: original, type: .round, round: 5) { json in
            json["evaluation"] = ["accuracy": 0.5, "loss": 1.0]
        })
        let bad = temporaryPath("bad-parent")
        defer { try? FileManager.default.removeItem(atPath: bad) }
        FileManager.default.createFile(atPath: bad, contents: Data(edited))
        let fork = try TraceFork(parentPath: bad, at: 7, config: Self.config, dataDirectory: nil)
        var made = false
        let outcome = try fork.run { _, _ throws(TraceError) in
            made = true
            return try TraceRecorder(path: temporaryPath())
        }
        guard case .parentDiffers(let message) = outcome else { Issue.record("\(outcome)"); return }
        #expect(message.contains("round 5") && !made)
        #expect([UInt8](FileManager.default.contents(atPath: bad)!) == edited)
    }

    /// The header key is hostile input: a malformed digest, `at` outside the configured rounds, and
    /// an `at` that is not the fork's first round are refused when the trace is opened; a fork key
    /// in a file of format 1.2 too.
    @Test func aHostileForkKeyIsRefused() throws {
        let parentPath = try Self.parent()
        defer { try? FileManager.default.removeItem(atPath: parentPath) }
        let (path, _) = try Self.fork(parentPath, at: 6)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        func opened(_ edit: (inout [String: Any]) -> Void) throws -> String? {
            let edited = try #require(TraceMutator.editingJSON(of: bytes, type: .header) { json in
                var fork = json["fork"] as! [String: Any]
                edit(&fork)
                json["fork"] = fork
            })
            do {
                _ = try TraceReader(source: MemorySource(edited, name: "f.trace"))
                return nil
            } catch { return error.message }
        }
        #expect(try opened { _ in } == nil)
        #expect(try opened { $0["parentDigest"] = "xyz" }?.contains("parentDigest") == true)
        #expect(try opened { $0["parentDigest"] = String(repeating: "A", count: 64) }?.contains("parentDigest") == true)
        #expect(try opened { $0["at"] = 12 }?.contains("fork.at 12") == true)
        #expect(try opened { $0["at"] = -1 }?.contains("fork.at -1") == true)
        #expect(try opened { $0["at"] = 7 }?.contains("first keyframe record is of round 6") == true)
        #expect(try opened { $0["at"] = 5 }?.contains("round 6") == true)
        #expect(try opened {
            $0["changes"] = Array(repeating: ["option": "--lr", "parent": "1", "fork": "2"],
                count: 65) }?.contains("fork.changes") == true)
    }
}
