@testable import DesgdAudit
import DesgdNumerics
@testable import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// `desgd-replay --adversary worst` on a recorded trace (docs/worst-case.md).
@Suite struct ReplayWorstCaseTests {
    static let trace = try! recordTrace(smallRun { $0.aggregator = "trmean"; $0.mode = .sgd })

    func rows(_ reader: TraceReader, _ rules: [String], threads: Int, budget: Int = 100) throws -> [ReplayRow] {
        var rows: [ReplayRow] = []
        try Replayer(reader: reader, rules: rules, threads: threads, adversary: WorstCaseSearch(budget: budget))
            .run(rounds: 0..<6) { rows += $0 }
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
            #expect(w.gap >= r.metrics.gap,
                "\(r.rule) round \(r.round): worst \(w.gap) below recorded \(r.metrics.gap)")
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
        let one = try rows(reader, ["cclip", "krum"], threads: 1),
            three = try rows(reader, ["cclip", "krum"], threads: 3)
        #expect(one == three)
        let csv = ReplayOutput.begin(.csv, trace: "t", rules: [], worstCase: true)
            + ReplayOutput.rows(one, format: .csv, first: true, worstCase: true)
        let lines = csv.split(separator: "\n")
        #expect(lines[0].hasSuffix("worst_family,worst_evaluations"))
        // Every row ends with its worst case: family, then the evaluations spent.
        #expect(lines.count == one.count + 1)
        for (line, row) in zip(lines.dropFirst(), one) {
            #expect(line.hasSuffix(",\(row.worstCase!.family),\(row.worstCase!.evaluations)"))
        }
        let table = ReplayOutput.begin(.table, trace: "t", rules: [], worstCase: true)
            + ReplayOutput.rows(one, format: .table, first: true, worstCase: true)
        #expect(table.contains("worst λ̂") && table.contains("found by"))
    }
}

/// `desgd-audit --adversary worst`: the recorded rule's column and every compared
/// rule's carry the worst case, the text and CSV show it, and the page draws its plot.
@Suite struct AuditWorstCaseTests {
    static let report: AuditReport = {
        let reader = try! TraceReader(path: ReplayWorstCaseTests.trace)
        return try! Audit.report(reader, compare: ["geomed"], threads: 2, adversary: WorstCaseSearch(budget: 80))
    }()

    @Test func everyCellHasItsWorstCase() throws {
        let r = Self.report
        #expect(r.rules.count == 2)
        for row in r.rows {
            for c in row.cells {
                let cell = try #require(c)
                let w = try #require(cell.worstCase)
                #expect(w.gap >= cell.gap, "round \(row.round): worst \(w.gap) below the recorded \(cell.gap)")
            }
        }
        #expect(r.summaries.allSatisfy { $0.worstCase?.lambda.count == r.rows.count })
        #expect(AuditText.render(r).contains("Worst case: on the recorded"))
        let csv = AuditText.csv(r).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(csv[0]
            .hasSuffix("worst_lambda\",\"geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean"
                + " worst_bound_ratio\",\"geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean worst_family\""), "\(csv[0])")
        /// Fields of a CSV line, commas inside quotes not counted.
        func fields(_ line: Substring) -> Int {
            var quoted = false, n = 1
            for ch in line { if ch == "\"" { quoted.toggle() } else if ch == "," && !quoted { n += 1 } }
            return n
        }
        #expect(csv.count == r.rows.count + 1 && csv.dropFirst().allSatisfy { fields($0) == fields(csv[0]) })
        // Without the adversary the report has no worst-case column.
        let plain = try Audit.report(try TraceReader(path: ReplayWorstCaseTests.trace), compare: ["geomed"], threads: 2)
        #expect(plain.summaries.allSatisfy { $0.worstCase == nil } && !AuditText.csv(plain).contains("worst"))
        #expect(!AuditHTML.render(plain).contains("plot-worst-case"))
    }

    @Test(.enabled(if: AuditHTMLBrowserTests.browser != nil || AuditHTMLBrowserTests.required,
        "needs Debian's chromium (CI=true makes its absence a failure)"))
    func theWorstCasePlotIsDrawn() throws {
        try #require(AuditHTMLBrowserTests.browser != nil, "chromium is not installed: apt-get install -y chromium")
        let page = AuditHTML.render(Self.report)
        for width in [1100, 700] {
            let lines = try AuditHTMLBrowserTests.measure(page, width: width)
            let line = try #require(lines.first { $0.hasPrefix("svg plot-worst-case ") }, "width \(width): \(lines)")
            // Two lines per rule (recorded and worst λ̂), every one drawn.
            #expect(line.contains("paths=4 drawn=4"), "\(line)")
            let scroll = lines.first { $0.hasPrefix("scrollWidth=") }.flatMap { Int($0.dropFirst(12)) }
            let client = lines.first { $0.hasPrefix("clientWidth=") }.flatMap { Int($0.dropFirst(12)) }
            #expect(scroll != nil && client != nil && scroll! <= client!, "width \(width): \(lines)")
        }
    }
}
