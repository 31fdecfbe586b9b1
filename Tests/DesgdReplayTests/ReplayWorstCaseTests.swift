import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing
@testable import DesgdReplay

/// `desgd-replay --adversary worst` on a recorded trace (issue 14, item 1).
@Suite struct ReplayWorstCaseTests {
    static let trace = try! recordTrace(smallRun { $0.aggregator = "trmean"; $0.mode = .sgd })

    func rows(_ reader: TraceReader, _ rules: [String], threads: Int, budget: Int = 100) throws -> [ReplayRow] {
        var rows: [ReplayRow] = []
        try Replayer(reader: reader, rules: rules, threads: threads, adversary: WorstCaseSearch(budget: budget)).run(rounds: 0..<6) { rows += $0 }
        return rows
    }

    /// Every row gets a worst case at least as large as the recorded attack's gap (the recorded
    /// inputs are the search's first point), within the budget; a proven bound is never exceeded.
    @Test func atLeastTheRecordedAttackOnEveryRound() throws {
        let reader = try TraceReader(path: Self.trace)
        let all = try rows(reader, ["trmean", "krum", "median", "geomed", "mean"], threads: 2)
        #expect(all.count == 6 * 5)
        for r in all {
            let w = try #require(r.worstCase)
            #expect(w.gap >= r.metrics.gap, "\(r.rule) round \(r.round): worst \(w.gap) below recorded \(r.metrics.gap)")
            #expect(w.evaluations <= 100)
            #expect(!w.exceedsBound, "\(r.rule) round \(r.round): λ̂ \(w.lambda ?? .nan) above \(w.bound ?? .nan)")
            if r.rule == "mean" { #expect(w.atReach) }
        }
        var summary = ReplaySummaryBuilder()
        summary.add(all)
        let trmean = try #require(summary.summaries().first { $0.rule.hasPrefix("trmean") }?.worstCase)
        #expect(trmean.lambda.count == 6 && trmean.exceededRounds.isEmpty)
        #expect(trmean.families.values.reduce(0, +) == 6)
    }

    /// Same trace, same worst cases, on 1 or 3 threads; the CSV carries the worst-case columns.
    @Test func threadCountChangesNothing() throws {
        let reader = try TraceReader(path: Self.trace)
        let one = try rows(reader, ["cclip", "krum"], threads: 1), three = try rows(reader, ["cclip", "krum"], threads: 3)
        #expect(one == three)
        let csv = ReplayOutput.begin(.csv, trace: "t", rules: [], worstCase: true) + ReplayOutput.rows(one, format: .csv, first: true, worstCase: true)
        let lines = csv.split(separator: "\n")
        #expect(lines[0].hasSuffix("worst_family,worst_evaluations"))
        // Every row ends with its worst case: family, then the evaluations spent.
        #expect(lines.count == one.count + 1)
        for (line, row) in zip(lines.dropFirst(), one) {
            #expect(line.hasSuffix(",\(row.worstCase!.family),\(row.worstCase!.evaluations)"))
        }
        let table = ReplayOutput.begin(.table, trace: "t", rules: [], worstCase: true) + ReplayOutput.rows(one, format: .table, first: true, worstCase: true)
        #expect(table.contains("worst λ̂") && table.contains("found by"))
    }
}
