@testable import DesgdAudit
@testable import DesgdReplay
import Foundation
import Testing

/// The HTML rendering of an audit report, on a report built by hand: structure, escaping, gaps for
/// undefined values, determinism and the size bound on long runs.
@Suite struct AuditHTMLTests {
    static let oddRule = "a<b&\"c\""
    static let rules = ["cclip:tau=10,iters=3", "geomed", oddRule]

    /// `rows` aggregations, one per round, of three rules:
    /// - cclip (recorded): λ̂ defined everywhere, flagged at round 20 (bound 1.5);
    /// - geomed: λ̂ undefined every tenth round from round 5 (5, 15, 25, …), a zero gap at round 2;
    /// - the odd rule: no vectors at round 30, Byzantine share undefined.
    static func report(rows: Int = 50, spikeAt: Int? = nil) -> AuditReport {
        var out: [AuditReport.Row] = []
        for t in 0..<rows {
            let base = 0.01 * (1 + Double(t % 17)) * (t == spikeAt ? 1000 : 1)
            let recorded = AuditReport.Cell(
                gap: base, lambda: t == 20 ? 2.5 : base * 10, kappa: base * 3, cosine: 0.99, byzantineShare: 0.1
                    + 0.001 * Double(t % 5),
                distanceToRecorded: 0, exceedsBound: t == 20)
            let geomed = AuditReport.Cell(
                gap: t == 2 ? 0 : base * 2, lambda: t % 10 == 5 ? nil : base * 20, kappa: t % 10 == 5 ? nil : base * 7,
                cosine: 0.98,
                byzantineShare: 0.05, distanceToRecorded: base, exceedsBound: false)
            let odd = AuditReport.Cell(
                gap: base * 50, lambda: base * 400, kappa: base * 900, cosine: nil, byzantineShare: nil,
                distanceToRecorded: base * 49, exceedsBound: false)
            out.append(AuditReport.Row(round: t, classIndex: t % 3, honestDiameter: 0.1, honestVariance: 0.01,
                                       cells: [recorded, geomed, t == 30 ? nil : odd]))
        }
        func summary(_ i: Int, bound: Double?) -> AuditReport.RuleSummary {
            let cells = out.map { $0.cells[i] }
            return AuditReport.RuleSummary(
                rule: rules[i], bound: bound, gap: SeriesStatistics(cells.map { $0?.gap }),
                lambda: SeriesStatistics(cells.map { $0?.lambda }), kappa: SeriesStatistics(cells.map { $0?.kappa }),
                byzantineShare: SeriesStatistics(cells.map { $0?.byzantineShare }),
                flaggedRounds: out.filter { $0.cells[i]?.exceedsBound == true }.map(\.round))
        }
        let worst = out.indices.sorted { (out[$0].cells[0]!.lambda!, $1) > (out[$1].cells[0]!.lambda!, $0) }.prefix(10)
        return AuditReport(
            run: .init(trace: "runs/<odd> & \"name\".trace", program: "desgd 0.5.0", formatVersion: "1.0",
                       mode: "desgd",
                       aggregator: rules[0], attack: "ipm:eps=0.1", model: "cnn-small", parameterCount: 19_670,
                       honestWorkers: 10, byzantineWorkers: 2, declaredF: 2, configuredRounds: rows + 10, seed: 42,
                       backend: "portable", numerics: 1, recording: "full", datasetDigest: "ab12cd34"),
            integrity: .init(chainHolds: false, verifiedRecords: 31, totalRecords: 52,
                             failure: "Record 32 (round 30) does not match its digest <sha256>.", failedRound: 30,
                             lastDigest: "52064e38723f5781", finished: false, interrupted: true,
                             note: "scan stopped at a truncated record", recordedRounds: rows, missingRounds: 10),
            accuracy: stride(from: 0, to: rows, by: 5).map {
                .init(round: $0, accuracy: 0.1 + 0.8 * Double($0) / Double(rows), loss: 2.3) },
            rules: rules, rows: out,
            summaries: [summary(0, bound: 1.5), summary(1, bound: 3.0), summary(2, bound: nil)],
            worstRows: Array(worst), skipped: ["krum: needs n > 2f + 2"])
    }

    static func count(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }

    /// The SVG element with this id.
    static func svg(_ id: String, in page: String) -> String? {
        guard let start = page.range(of: "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\""),
              let end = page.range(of: "</svg>", range: start.upperBound..<page.endIndex) else { return nil }
        return String(page[start.lowerBound..<end.upperBound])
    }

    /// The `d` of the line of series `name` (escaped as in the page) in `svg`.
    static func path(_ name: String, in svg: String) -> String? {
        guard let start = svg.range(of: "data-series=\"\(name)\" d=\""),
              let end = svg.range(of: "\"", range: start.upperBound..<svg.endIndex) else { return nil }
        return String(svg[start.upperBound..<end.lowerBound])
    }

    @Test func wellFormedWithFivePlots() throws {
        let page = AuditHTML.render(Self.report())
        #expect(page.hasPrefix("<!DOCTYPE html>"))
        #expect(Self.count("<html", in: page) == 1 && Self.count("</html>", in: page) == 1)
        #expect(Self.count("<body>", in: page) == 1 && Self.count("</body>", in: page) == 1)
        #expect(Self.count("<svg", in: page) == 5 && Self.count("</svg>", in: page) == 5)
        for title in AuditHTML.plotTitles { #expect(page.contains("<title>\(title)</title>"), "plot \(title)") }
        for id in ["plot-gap", "plot-lambda", "plot-lambda-distribution", "plot-accuracy", "plot-byzantine-share"] {
            #expect(Self.svg(id, in: page) != nil, "svg \(id)")
        }
        // Self-contained: no script, no external resource.
        #expect(!page.contains("<script") && !page.contains("src=") && !page.contains("href=")
            && !page.contains("url("))
        #expect(Self.count("http", in: page) == Self.count("http://www.w3.org/2000/svg", in: page))
        // Tags of the tables balance.
        for tag in ["table", "tr", "td", "th", "tbody", "thead", "section", "figure", "g", "text", "title", "svg"] {
            #expect(Self.count("<\(tag)>", in: page)
                + Self.count("<\(tag) ", in: page) == Self.count("</\(tag)>", in: page), "tag \(tag)")
        }
    }

    @Test func stringsAreEscaped() throws {
        let page = AuditHTML.render(Self.report())
        #expect(!page.contains(Self.oddRule))
        #expect(page.contains("a&lt;b&amp;&quot;c&quot;"))
        #expect(!page.contains("<odd>") && page.contains("runs/&lt;odd&gt; &amp; &quot;name&quot;.trace"))
        #expect(page.contains("does not match its digest &lt;sha256&gt;."))
        // The odd rule names its line, its box and its columns, always escaped.
        let lambda = try #require(Self.svg("plot-lambda", in: page))
        #expect(Self.path("a&lt;b&amp;&quot;c&quot;", in: lambda) != nil)
    }

    @Test func integrityFailureAndTables() {
        let page = AuditHTML.render(Self.report())
        #expect(page.contains("<section class=\"integrity bad\""))
        #expect(page.contains("Digest chain broken"))
        #expect(page.contains("31 of 52 records verified"))
        #expect(page.contains("<strong>10 missing</strong>"))
        #expect(page.contains("Note: scan stopped at a truncated record"))
        #expect(page.contains("krum: needs n &gt; 2f + 2"))
        // cclip is flagged once (round 20); the worst row is that round, with its flagged cells tinted.
        #expect(page.contains("<strong>1</strong> (round 20)"))
        let worst = String(page[page.range(of: "id=\"worst\"")!.lowerBound...])
        #expect(worst.contains("<tr><td>20</td><td>2</td>"))
        #expect(Self.count("class=\"flagcell\"", in: worst) == 2)
        #expect(Self.count("<tr><td>", in: worst) == 10)
        #expect(worst.contains("no vectors") == false)  // round 30 is not among the worst
        // Four significant digits, fixed.
        #expect(page.contains("<td>2.5</td>"))
    }

    /// An undefined value breaks the line: a new move-to after it, and no point drawn for it.
    @Test func undefinedValuesAreGapsNotZeros() throws {
        let page = AuditHTML.render(Self.report())
        let lambda = try #require(Self.svg("plot-lambda", in: page))
        let geomed = try #require(Self.path("geomed", in: lambda))
        // λ̂ undefined at rounds 5, 15, 25, 35, 45: six runs, 45 points.
        #expect(Self.count("M", in: geomed) == 6)
        #expect(Self.count("M", in: geomed) + Self.count("L", in: geomed) == 45)
        let recorded = try #require(Self.path("cclip:tau=10,iters=3 (recorded)", in: lambda))
        #expect(Self.count("M", in: recorded) == 1 && Self.count("L", in: recorded) == 49)

        // The odd rule has no vectors at round 30: its gap line breaks there.
        let gap = try #require(Self.svg("plot-gap", in: page))
        let odd = try #require(Self.path("a&lt;b&amp;&quot;c&quot;", in: gap))
        #expect(Self.count("M", in: odd) == 2 && Self.count("L", in: odd) == 47)
        // A zero gap on the log axis is drawn on the zero band, labelled 0.
        #expect(gap.contains(">0</text>"))

        // The Byzantine share is not defined for the odd rule: no line, named in the caption.
        let share = try #require(Self.svg("plot-byzantine-share", in: page))
        #expect(Self.path("a&lt;b&amp;&quot;c&quot;", in: share) == nil)
        #expect(Self.path("geomed", in: share) != nil)
        #expect(page.contains("Not defined for: <code>a&lt;b&amp;&quot;c&quot;</code>"))

        // The flagged round is marked; bounds are dashed lines.
        #expect(Self.count("class=\"flag\"", in: lambda) == 1)
        #expect(Self.count("<g class=\"reference\">", in: lambda) == 2)
    }

    @Test func pathDataBreaksAndDots() {
        let x = ChartAxis(values: [], scale: .linear, fixed: (0, 4))
        var y = ChartAxis(values: [], scale: .linear, fixed: (0, 1))
        y.start = 100
        y.end = 0
        let points = [ChartPoint(x: 0, y: 0.5), ChartPoint(x: 1, y: 0.5), ChartPoint(x: 2, y: nil),
                      ChartPoint(x: 3, y: 0), ChartPoint(x: 4, y: nil)]
        // x maps 0…4 to 0…1: coordinates round to one decimal.
        #expect(LineChart.pathData(points, x: x, y: y) == "M0 50L0.3 50M0.8 100h0")
    }

    @Test func deterministic() {
        let a = AuditHTML.render(Self.report())
        let b = AuditHTML.render(Self.report())
        #expect(a == b)
        let big = Self.report(rows: 2000, spikeAt: 777)
        #expect(AuditHTML.render(big) == AuditHTML.render(big))
    }

    /// 5 000 rounds: every line has at most 1 000 points, and a one-round spike survives.
    @Test func downsamplingBound() throws {
        let report = Self.report(rows: 5000, spikeAt: 1234)
        let page = AuditHTML.render(report)
        for id in ["plot-gap", "plot-lambda", "plot-byzantine-share", "plot-accuracy"] {
            let svg = try #require(Self.svg(id, in: page))
            let lines = svg.components(separatedBy: "<path class=\"series\"").dropFirst()
            for line in lines {
                let d = line.components(separatedBy: " d=\"")[1].prefix { $0 != "\"" }
                let points = Self.count("M", in: String(d)) + Self.count("L", in: String(d))
                #expect(points <= AuditHTML.maxPointsPerSeries, "\(id): \(points) points")
            }
            let series = lines.count
            #expect(series >= 1, "\(id)")
        }
        #expect(page.contains("Lines are downsampled: 5000 rounds in 1000 buckets of 5 rounds"))
        #expect(page.utf8.count < 600_000)

        let rounds = report.rows.map(\.round)
        let buckets = RoundBuckets(rounds: rounds, limit: 1000)
        let maxima = buckets.maxima(rounds: rounds, values: report.rows.map { $0.cells[0]?.gap })
        #expect(maxima.count == 1000)
        #expect(maxima.contains(ChartPoint(x: 1234, y: report.rows[1234].cells[0]!.gap)))
        // Undefined everywhere in a bucket: a gap, at the bucket's first round.
        let holes = buckets.maxima(rounds: rounds, values: rounds.map { $0 / 5 == 7 ? nil : 1.0 })
        #expect(holes[7] == ChartPoint(x: 35, y: nil) && holes[6].y == 1 && holes[8].y == 1)
    }

    /// A trace with no rounds and no evaluations still gives a whole page.
    @Test func emptyReport() {
        var report = Self.report(rows: 0)
        report.rules = []
        report.summaries = []
        report.accuracy = []
        let page = AuditHTML.render(report)
        #expect(Self.count("<svg", in: page) == 5 && Self.count("</svg>", in: page) == 5)
        #expect(Self.count("no defined values", in: page) == 4)
        #expect(page.contains("The trace has no evaluations.") && page.contains("<p>No rows.</p>"))
    }

    @Test func axes() {
        let log = ChartAxis(values: [0, 0.003, 42], scale: nil)
        #expect(log.scale == .log && log.lo == -3 && log.hi == 2 && log.hasZeroBand)
        #expect(log.ticks().major.map(\.1) == ["0", "0.001", "0.01", "0.1", "1", "10", "100"])
        let linear = ChartAxis(values: [0.2, 0.7], scale: nil)
        #expect(linear.scale == .linear && linear.lo == 0 && linear.hi == 0.8)
        #expect(linear.ticks().major.map(\.1) == ["0", "0.2", "0.4", "0.6", "0.8"])
        #expect(AuditFormat.sig4(123_456) == "1.235e+05" && AuditFormat.sig4(0.000123456) == "0.0001235"
            && AuditFormat.sig4(nil) == "—")
        #expect(AuditFormat.coord(-0.04) == "0" && AuditFormat.coord(12.25) == "12.3"
            && AuditFormat.coord(-3.5) == "-3.5")
    }
}
