@testable import DesgdAudit
import DesgdFuzzing
import DesgdNumerics
@testable import DesgdReplay
@testable import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// Vectors on demand (docs/complete-record.md): rounds a trace recorded without vectors are rebuilt by
/// re-simulating from its state checkpoints, checked against their records, and then replayed,
/// audited and exported exactly as the same rounds of a trace recorded in full.
@Suite struct RebuildTests {
    /// One run (cclip under IPM, 12 rounds, 2 threads) recorded three ways.
    static let config = smallRun()
    static let full: [UInt8] = try! checkpointedTrace(config, checkpoints: 0)
    static let decisions: [UInt8] = try! checkpointedTrace(config, checkpoints: 4, mode: .decisions)
    /// A stateful counterfactual (centered clipping with another radius), the recorded rule
    /// (whose state is re-synchronised from the record), and stateless ones.
    static let rules = ["cclip:tau=5", "cclip", "geomed", "trmean"]

    func rows(_ bytes: [UInt8], rebuild: Bool, threads: Int = 2, range: Range<Int>? = nil) throws -> (rows: [ReplayRow],
        counts: (replayed: Int, skipped: Int), simulated: Int) {
        let reader = try openTrace(bytes)
        let rebuilder = rebuild ? try RoundRebuilder(reader: reader, dataset: replayData, threads: threads) : nil
        var rows: [ReplayRow] = []
        let counts = try Replayer(reader: reader, rules: Self.rules, threads: threads, rebuilder: rebuilder)
            .run(rounds: range) { rows += $0 }
        return (rows, counts, rebuilder?.roundsSimulated ?? 0)
    }

    /// The replay rows of several rules, the stateful counterfactual and the drift included, are
    /// those of the trace recorded in full: state carried (no "not carried" row), drift continued,
    /// on one thread and on three.
    @Test func rebuiltRoundsReplayAsRecordedInFull() throws {
        let expected = try rows(Self.full, rebuild: false)
        #expect(expected.counts.replayed == 12 && expected.rows.count == 12 * Self.rules.count)
        #expect(expected.rows.allSatisfy { $0.modelDrift != nil })
        for threads in [1, 3] {
            let rebuilt = try rows(Self.decisions, rebuild: true, threads: threads)
            #expect(rebuilt.counts.replayed == 12 && rebuilt.counts.skipped == 0 && rebuilt.simulated == 12)
            #expect(rebuilt.rows == expected.rows, "threads \(threads)")
            #expect(!rebuilt.rows.contains { $0.state == .notCarried })
        }
        // Without a rebuilder, the old behaviour: every round skipped.
        let skipped = try rows(Self.decisions, rebuild: false)
        #expect(skipped.rows.isEmpty && skipped.counts.skipped == 12)
    }

    /// `--rounds A:B` inside a segment: the run starts from the checkpoint at or before A (round 4),
    /// re-simulates and checks rounds 4…6, replays 5 and 6 only, and the rows are the full trace's
    /// for the same range (the counterfactual state carried from round 5 in both).
    @Test func aRangeInsideASegment() throws {
        let expected = try rows(Self.full, rebuild: false, range: 5..<7)
        let reader = try openTrace(Self.decisions)
        let rebuilder = try RoundRebuilder(reader: reader, dataset: replayData, threads: 2)
        #expect(rebuilder.simulatedRounds(for: 5..<7) == 3)
        let replayer = try Replayer(reader: reader, rules: Self.rules, threads: 2, rebuilder: rebuilder)
        #expect(replayer.work(rounds: 5..<7) == 2 + 3)
        var got: [ReplayRow] = [], progress: [Int] = []
        try replayer.run(rounds: 5..<7, progress: { progress.append($0) }) { got += $0 }
        #expect(got == expected.rows && !got.isEmpty)
        #expect(rebuilder.roundsSimulated == 3 && progress.last == 5 && progress == progress.sorted())
        // Past a checkpoint the run restarts from it (rounds 8…9), not from where it was.
        #expect(rebuilder.simulatedRounds(for: 9..<10) == 2)
        _ = try rebuilder.round(9)
        #expect(rebuilder.roundsSimulated == 5)
    }

    /// A trace without checkpoints is rebuilt from round 0 (its initial state is the header's).
    @Test func withoutCheckpointsFromRoundZero() throws {
        let bytes = try checkpointedTrace(Self.config, checkpoints: 0, mode: .sampled(every: 5))
        let rebuilt = try rows(bytes, rebuild: true, range: 6..<9)
        #expect(rebuilt.rows == (try rows(Self.full, rebuild: false, range: 6..<9)).rows)
        // Rounds 0…8 re-simulated (round 5, stored in full, checked with its vectors on the way).
        #expect(rebuilt.simulated == 9)
    }

    /// `--export` of a rebuilt round writes the .npy files the full trace gives.
    @Test func exportOfARebuiltRound() throws {
        let t = 6
        let dirs = ["full", "rebuilt"].map { NSTemporaryDirectory() + "desgd-export-\($0)-\(UUID().uuidString)" }
        defer { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
        let names = try RoundExport.export(try openTrace(Self.full), round: t, to: dirs[0])
        let reader = try openTrace(Self.decisions)
        #expect(throws: TraceError.self) { try RoundExport.export(reader, round: t, to: dirs[1]) }
        let rebuilder = try RoundRebuilder(reader: reader, dataset: replayData, threads: 2)
        #expect(try RoundExport.export(reader, round: t, to: dirs[1], rebuilder: rebuilder) == names)
        for name in names where name.hasSuffix(".npy") {
            let a = FileManager.default.contents(atPath: dirs[0] + "/" + name),
                b = FileManager.default.contents(atPath: dirs[1] + "/" + name)
            #expect(a != nil && a == b, "\(name)")
        }
        let sidecar = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: dirs[1]
            + "/round.json"))) as? [String: Any]
        #expect(sidecar?["vectorsRebuilt"] as? Bool == true)
    }

    /// The audit's compare columns on the decisions trace are the full trace's: no † cell.
    @Test func auditCompareOnRebuiltRounds() throws {
        let expected = try Audit.report(try openTrace(Self.full), compare: ["cclip:tau=5", "trmean"], threads: 2)
        let reader = try openTrace(Self.decisions)
        let report = try Audit.report(reader, compare: ["cclip:tau=5", "trmean"], threads: 2,
                                      rebuilder: try RoundRebuilder(reader: reader, dataset: replayData, threads: 2))
        #expect(report.rows == expected.rows && report.rows.allSatisfy { $0.cells.allSatisfy { $0 != nil } })
        #expect(report.summaries.allSatisfy { $0.stateNotCarried == 0 })
        #expect(report.drift == expected.drift)
    }

    /// One round record altered (its gap raised, every digest recomputed): the chain holds, but the
    /// rebuild of any later round in its segment fails at that round, as a mismatch (exit 1).
    @Test func anAlteredRecordFailsTheRebuildAtItsRound() throws {
        let t = 5
        let tampered = try #require(TraceMutator.editingJSON(of: Self.decisions, type: .round, round: t) { json in
            var aggregations = json["aggregations"] as! [[String: Any]]
            var metrics = aggregations[0]["metrics"] as! [String: Any]
            metrics["gap"] = (metrics["gap"] as! Double) * 1.5
            aggregations[0]["metrics"] = metrics
            json["aggregations"] = aggregations
        })
        let reader = try openTrace(tampered)
        #expect(reader.verifyChain().holds)
        // Rounds before it (and in other segments) rebuild.
        #expect(try rows(tampered, rebuild: true, range: 0..<5).counts.replayed == 5)
        #expect(try rows(tampered, rebuild: true, range: 8..<12).counts.replayed == 4)
        for range in [5..<6, 4..<8, 6..<7] {
            #expect { _ = try rows(tampered, rebuild: true, range: range) } throws: { error in
                guard let e = error as? TraceError else { return false }
                return e.kind == .mismatch && e.message.contains("round \(t)") && e.message.contains("metrics")
            }
        }
        let rebuilder = try RoundRebuilder(reader: reader, dataset: replayData, threads: 2)
        #expect {
            try RoundExport.export(reader, round: 7, to: NSTemporaryDirectory() + "desgd-never-\(UUID().uuidString)",
                rebuilder: rebuilder) } throws: {
            ($0 as? TraceError)?.kind == .mismatch
        }
    }

    /// Rebuilding needs the same arithmetic: a trace of other numerics is refused (a usage error).
    @Test func otherArithmeticIsRefused() throws {
        let later = try openTrace(try #require(TraceMutator.editingJSON(of: Self.decisions, type: .header) {
            $0["numerics"] = SimulationNumerics.current + 1 }))
        #expect { _ = try RoundRebuilder(reader: later, dataset: replayData, threads: 2) } throws: {
            ($0 as? TraceError)?.kind == .usage && ($0 as? TraceError)?.message.contains("numerics") == true
        }
        #expect(RoundRebuilder.isNeeded(try openTrace(Self.decisions), rounds: 3..<4))
        #expect(!RoundRebuilder.isNeeded(try openTrace(Self.full), rounds: 0..<12))
    }
}
