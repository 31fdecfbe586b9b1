@testable import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// Drift of replayed rules (open loop along the recorded inputs).
@Suite struct ReplayDriftTests {
    /// Every row of a full trace has drift; the recorded rule's replayed drift is the recorded one
    /// (model drift included), the mean's differs; the mean with no Byzantine worker has none.
    @Test func replayedDriftOnAFullTrace() throws {
        let path = try recordTrace(smallRun { $0.aggregator = "trmean"; $0.attack = "alie" })
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TraceReader(path: path)
        let rows = try replayRows(r, ["trmean", "mean"])
        #expect(rows.count == 24 && rows.allSatisfy { $0.metrics.drift != nil && $0.modelDrift != nil })
        for row in rows where row.rule.hasPrefix("trmean") {
            let round = try r.round(row.round)
            #expect(row.metrics.drift == round.aggregations[0].metrics.drift)
            #expect(row.modelDrift == round.content.drift)
        }
        // Another rule on the same inputs deviates otherwise, so its drift differs.
        let mean = rows.filter { $0.rule == "mean" }
        #expect(mean.last!.modelDrift!.displacement > 0)
        #expect(mean.last!.modelDrift != rows.filter { $0.rule.hasPrefix("trmean") }.last!.modelDrift)

        let clean = try recordTrace(smallRun { $0.aggregator = "mean"; $0.attack = "none"; $0.byzantineWorkers = 0 })
        defer { try? FileManager.default.removeItem(atPath: clean) }
        let meanRows = try replayRows(try TraceReader(path: clean), ["mean"])
        #expect(meanRows.allSatisfy { $0.modelDrift?.displacement == 0 && $0.metrics.drift?.cumulative == 0 })
    }

    /// Drift needs 5·d floats per group and rule with exponential weights ((W + 3)·d with a window):
    /// beyond the budget replay leaves it out and says why.
    @Test func driftBeyondTheMemoryBudgetIsLeftOut() throws {
        let path = try recordTrace(smallRun())
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TraceReader(path: path)
        let perRule = 4 * 10 * 5 * r.parameterCount
        #expect(r.header.driftRecent == .exponential)
        guard case .success = ReplayDrift.make(reader: r, rules: 3, budget: 3 * perRule) else {
            Issue.record("within the budget"); return
        }
        guard case .failure(let why) = ReplayDrift.make(reader: r, rules: 3, budget: 3 * perRule - 1) else {
            Issue.record("over the budget"); return
        }
        #expect(why.reason.contains("3 rules") && why.reason.contains("budget"))
        #expect(try Replayer(reader: r, rules: ["mean"], threads: 1).driftNote == nil)
    }

    /// Drift accumulates over consecutive rounds: on a sampled trace it stops at the first replayed
    /// round without vectors.
    @Test func driftStopsAtTheFirstRoundWithoutVectors() throws {
        let path = try recordTrace(smallRun { $0.aggregator = "trmean"; $0.attack = "alie" }, mode: .sampled(every: 3))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let rows = try replayRows(try TraceReader(path: path), ["trmean"], range: 0..<7)
        #expect(rows.map(\.round) == [0, 3, 6])
        #expect(rows[0].modelDrift != nil && rows[0].metrics.drift != nil)
        #expect(rows.dropFirst().allSatisfy { $0.modelDrift == nil && $0.metrics.drift == nil })
    }
}
