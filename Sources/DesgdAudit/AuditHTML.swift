import DesgdNumerics
import DesgdReplay
/// The audit report as one self-contained HTML page (`desgd-audit --html FILE`): inline CSS and
/// inline SVG, no script and no external resource, so it opens offline in any browser.
///
/// The page shows the run in brief and the integrity verdict, five plots (gap and λ̂ over rounds
/// per rule, the λ̂ distribution per rule, test accuracy, Byzantine share), a summary table per rule
/// and the worst rows. Every string from the report is HTML-escaped; numbers have four significant
/// digits; the same report gives the same bytes.
public enum AuditHTML {
    /// The most points a line has: longer runs are cut into this many buckets of rounds and each
    /// bucket drawn as its maximum.
    public static let maxPointsPerSeries = 1000

    /// The plots' titles, in page order.
    public static let plotTitles = [
        "Gap over rounds",
        "λ̂ over rounds",
        "Distribution of λ̂ per rule",
        "Test accuracy over rounds",
        "Byzantine share over rounds",
    ]

    /// The title of the sixth plot, drawn with `--adversary worst`.
    public static let worstCaseTitle = "Recorded and worst-case λ̂ over rounds"

    public static func render(_ report: AuditReport) -> String {
        let report = report.forDisplay
        var page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        page += "<title>desgd audit: \(e(report.run.trace))</title>\n<style>\n\(css)</style>\n</head>\n<body>\n"
        page += header(report)
        page += "<main>\n"
        page += plots(report)
        page += driftSection(report)
        page += summaryTable(report)
        page += worstRowsTable(report)
        page += "</main>\n"
        page += "<footer>desgd-audit report of <code>\(e(report.run.trace))</code>, trace format "
            + "\(e(report.run.formatVersion)), recorded by \(e(report.run.program)).</footer>\n"
        page += "</body>\n</html>\n"
        return page
    }

    // MARK: Header

    static func header(_ r: AuditReport) -> String {
        let run = r.run
        var out = "<header>\n<h1>desgd audit <span class=\"trace\">\(e(run.trace))</span></h1>\n"
        out += "<p class=\"lead\">\(e(run.mode)) run, rule <code>\(e(run.aggregator))</code> against "
            + "<code>\(e(run.attack))</code>; "
        out += "\(run.honestWorkers) honest and \(run.byzantineWorkers) Byzantine workers; "
            + "\(run.configuredRounds) rounds configured"
        if let last = r.accuracy.max(by: { $0.round < $1.round }) {
            out += "; test accuracy \(AuditFormat.percent(last.accuracy)) at round \(last.round)"
        }
        out += ".</p>\n"

        var brief: [(String, String)] = [
            ("mode", e(run.mode)),
            ("rule", "<code>\(e(run.aggregator))</code>"),
            ("attack", "<code>\(e(run.attack))</code>"),
            ("model", "\(e(run.model)) (\(run.parameterCount) parameters)"),
            ("workers", "\(run.honestWorkers) honest + \(run.byzantineWorkers) Byzantine"),
            ("f (declared)", "\(run.declaredF)"),
            ("rounds", "\(run.configuredRounds) configured"),
            ("seed", "\(run.seed)"),
            ("backend", e(run.backend)),
            ("numerics", String(run.numerics)),
            ("program", e(run.program)),
            ("recording", e(run.recording)),
            ("trace format", e(run.formatVersion)),
            run.model == ModelArchitecture.external.rawValue
                ? ("data", "the clients' own (see the live run)")
                : ("data set digest", "<code class=\"digest\">\(e(run.datasetDigest))</code>"),
        ]
        if let f = run.fork {
            let changes = f.changes.isEmpty ? "nothing changed" : f.changes.map {
                "\(e($0.option)) \(e($0.parent)) → \(e($0.fork))" }.joined(separator: ", ")
            brief.append(("fork", "of <code>\(e(f.parentFile))</code> at round \(f.at): \(changes)"))
        }
        out += "<section class=\"run\">\n<h2>Run</h2>\n<dl class=\"brief\">\n"
        for (k, v) in brief {
            out += "<div\(k == "data set digest" ? " class=\"wide\"" : "")><dt>\(k)</dt><dd>\(v)</dd></div>\n"
        }
        out += "</dl>\n</section>\n"
        out += integrity(r)
        if !r.skipped.isEmpty {
            out += "<section class=\"skipped\">\n<h2>Rules not compared</h2>\n<ul>\n"
            for s in r.skipped { out += "<li>\(e(s))</li>\n" }
            out += "</ul>\n</section>\n"
        }
        return out + "</header>\n"
    }

    static func integrity(_ r: AuditReport) -> String {
        let i = r.integrity
        let complete = i.finished && !i.interrupted && i.missingRounds == 0
        let signature = i.signatures?.status
        var (verdictClass, verdict): (String, String) =
            !i.chainHolds ? ("bad", "Digest chain broken")
            : complete ? ("ok", "Digest chain holds; the trace is complete")
            : ("warn", "Digest chain holds; the trace is incomplete")
        switch signature {
        case .invalid?: (verdictClass, verdict) = ("bad", verdict + "; signature invalid")
        case .prefix?: (verdictClass, verdict) = (verdictClass == "bad" ? "bad" : "warn", verdict
            + "; signed only in part")
        case .whole?: verdict += "; signed"
        case .unsigned?, nil: break
        }
        if let c = i.clientMessages {
            if c.passed { verdict += "; every client message verified" } else {
                (verdictClass, verdict) = ("bad", verdict + "; client messages fail their signatures")
            }
        }
        var out = "<section class=\"integrity \(verdictClass)\" id=\"integrity\">\n<h2>Integrity</h2>\n"
        out += "<p class=\"verdict\">\(verdict)</p>\n<ul>\n"
        if i.chainHolds {
            out += "<li>Digest chain: \(i.verifiedRecords) of \(i.totalRecords) records verified.</li>\n"
        } else {
            out += "<li class=\"failure\">\(e(i.failure ?? "The digest chain does not hold."))"
            if let round = i.failedRound, !(i.failure ?? "").contains("round \(round)") { out += " (round \(round))" }
            out += "</li>\n<li>\(i.verifiedRecords) of \(i.totalRecords) records verified before the failure.</li>\n"
        }
        switch (i.finished, i.interrupted) {
        case (true, false): out += "<li>Finished: index and footer present.</li>\n"
        case (true, true): out += "<li>Interrupted before its \(r.run.configuredRounds) configured rounds;"
            + " index and footer present.</li>\n"
        case (false, true): out += "<li>Interrupted before its \(r.run.configuredRounds) configured"
            + " rounds; no valid footer.</li>\n"
        case (false, false): out += "<li>Unfinished: no valid index and footer.</li>\n"
        }
        if let note = i.note { out += "<li>Note: \(e(note))</li>\n" }
        if let skipped = i.skippedRecords {
            out += "<li>Skipped \(skipped.count) record\(skipped.count == 1 ? "" : "s") "
                + "of types this reader does not know (a later format version): "
                    + "\(e(skipped.map(\.description).joined(separator: "; ")))</li>\n"
        }
        out += "<li>Rounds recorded: \(i.recordedRounds) of \(r.run.configuredRounds) configured; "
        out += i.missingRounds == 0 ? "none missing.</li>\n" : "<strong>\(i.missingRounds) missing</strong>.</li>\n"
        if let covered = r.rounds, covered.isSelection {
            out += "<li>This report covers rounds \(e(covered.description)) (a selection): the integrity checks "
                + "above and here cover the whole file, every other part only these rounds.</li>\n"
        }
        out += "<li>Last digest: <code class=\"digest\">\(e(i.lastDigest))</code></li>\n"
        if let s = i.signatures {
            out += "<li\(s.status == .invalid ? " class=\"failure\"" : "")>Signatures: \(e(s.summary))</li>\n"
        }
        if let c = i.clientMessages {
            out += "<li\(c.passed ? "" : " class=\"failure\"")>Client messages: \(e(c.summary)).</li>\n"
            out += "<li>Registered clients: " + c.clients.map { "worker \($0.worker) (node \(e($0.node)), "
                + "<code>\(e($0.fingerprint))</code>)" }.joined(separator: ", ") + "</li>\n"
        }
        return out + "</ul>\n</section>\n"
    }

    // MARK: Plots

    /// Rule column `i` as shown in legends and tables.
    static func ruleLabel(_ r: AuditReport, _ i: Int) -> String {
        i == 0 ? r.rules[i] + " (recorded)" : r.rules[i]
    }

    static func summary(_ r: AuditReport, _ i: Int) -> AuditReport.RuleSummary? {
        if i < r.summaries.count, r.summaries[i].rule == r.rules[i] { return r.summaries[i] }
        return r.summaries.first { $0.rule == r.rules[i] }
    }

    /// Column `i` of every row through `value` (nil where the row has no cell).
    static func column(_ r: AuditReport, _ i: Int, _ value: (AuditReport.Cell) -> Double?) -> [Double?] {
        r.rows.map { row in i < row.cells.count ? row.cells[i].flatMap(value) : nil }
    }

    static func plots(_ r: AuditReport) -> String {
        let rounds = r.rows.map(\.round)
        let buckets = RoundBuckets(rounds: rounds, limit: maxPointsPerSeries)
        let bucketNote = buckets.caption(unit: "aggregations")
        let columns = Array(r.rules.indices)
        func series(_ i: Int, _ value: (AuditReport.Cell) -> Double?) -> LineChart.Series {
            LineChart.Series(name: ruleLabel(r, i), colour: ChartPalette.colour(i), dash: ChartPalette.dash(i),
                             width: i == 0 ? 2.2 : 1.5,
                             points: buckets.maxima(rounds: rounds, values: column(r, i, value)))
        }
        var out = "<section class=\"plots\">\n<h2>Plots</h2>\n"

        // 1. Gap.
        let gap = LineChart(id: "plot-gap", title: plotTitles[0], xLabel: "round", yLabel: "gap",
                            yScale: .log, series: columns.map { series($0) { $0.gap } })
        out += figure(gap.svg(),
            "Gap ‖F(R) − x̄<sub>S</sub>‖ between each rule's aggregate and the honest mean, per rule ("
            + "\(gap.yAxis.caption)). \(bucketNote)")

        // 2. λ̂ with bounds and flags.
        var lambdaSeries = columns.map { series($0, \.lambda) }
        var references: [LineChart.Reference] = []
        var flagged = 0
        for i in columns {
            let flags = buckets.maxima(rounds: rounds, values: column(r, i) { $0.exceedsBound ? $0.lambda : nil })
            lambdaSeries[i].markers = flags.compactMap { p in p.y.map { (x: p.x, y: $0) } }
            flagged += lambdaSeries[i].markers.count
            if let b = summary(r, i)?.bound, b.isFinite {
                references.append(.init(value: b, colour: ChartPalette.colour(i),
                    label: "\(ruleLabel(r, i)): proven bound λ = \(AuditFormat.sig4(b))"))
            }
        }
        var lambdaLegend: [LegendItem] = []
        if !references.isEmpty {
            lambdaLegend.append(LegendItem(swatch: .line(colour: "#777777", dash: "7 4", width: 1.5),
                label: "proven bound λ (rule's colour)"))
        }
        if flagged > 0 {
            lambdaLegend.append(LegendItem(swatch: .marker(colour: "#777777"), label: "flagged: λ̂ above the bound"))
        }
        let lambda = LineChart(id: "plot-lambda", title: plotTitles[1], xLabel: "round", yLabel: "λ̂ = gap / Δ"
            + SVGKit.sub("S"),
                               yScale: nil, series: lambdaSeries, references: references, extraLegend: lambdaLegend)
        let boundNote = references.isEmpty ? "No rule here has a proven bound."
            : "Dashed lines: each rule's proven bound λ (for the first group), in the rule's colour."
        out += figure(lambda.svg(),
            "λ̂ = gap / Δ<sub>S</sub> per rule (\(lambda.yAxis.caption)); undefined where Δ"
            + "<sub>S</sub> = 0. \(boundNote) "
            + "Diamonds: flagged rounds, λ̂ above the bound (\(flagged) marked). \(bucketNote)")

        // 3. λ̂ distribution.
        let boxRows = columns.map { i -> BoxPlot.Row in
            let values = column(r, i, \.lambda)
            let defined = values.compactMap { $0 }.filter(\.isFinite)
            return BoxPlot.Row(name: ruleLabel(r, i), colour: ChartPalette.colour(i), values: defined,
                               undefined: values.count - defined.count, bound: summary(r, i)?.bound)
        }
        let box = BoxPlot(id: "plot-lambda-distribution", title: plotTitles[2], xLabel: "λ̂", rows: boxRows)
        out += figure(box.svg(),
            "Distribution of λ̂ over all \(r.rows.count) aggregations, one box per rule (\(box.xAxis.caption)): "
            + "box from the first to the third quartile, bar at the median, whiskers at the minimum"
                + " and maximum, dot at the mean, "
            + "dashed tick at the rule's proven bound. n counts defined values; undefined ones are left out.")

        // 4. Accuracy.
        let accRounds = r.accuracy.map(\.round)
        let accBuckets = RoundBuckets(rounds: accRounds, limit: maxPointsPerSeries)
        let accuracy = LineChart(
            id: "plot-accuracy", title: plotTitles[3], xLabel: "round", yLabel: "test accuracy (%)", yScale: .linear,
            yFixed: (0, 100),
            series: [LineChart.Series(name: "test accuracy", colour: "#222222", dash: nil, width: 2,
                                      points: accBuckets.maxima(rounds: accRounds,
                                          values: r.accuracy.map { 100 * $0.accuracy }))])
        let accNote = r.accuracy.isEmpty ? "The trace has no evaluations."
            : accBuckets.isDownsampled || accBuckets.maxPerRound > 1 ? accBuckets.caption(unit: "evaluations")
                : "One point per evaluation."
        out += figure(accuracy.svg(),
            "Test accuracy of the recorded run at each evaluation (\(r.accuracy.count) evaluations). \(accNote)")

        // 5. Byzantine share.
        let shareColumns = columns.filter { i in column(r, i, \.byzantineShare).contains { $0 != nil } }
        let undefinedShare = columns.filter { !shareColumns.contains($0) }.map { ruleLabel(r, $0) }
        let share = LineChart(id: "plot-byzantine-share", title: plotTitles[4], xLabel: "round",
                              yLabel: "Byzantine share",
                              yScale: .linear, series: shareColumns.map { series($0, \.byzantineShare) })
        var shareNote = "Weight the rule gave to Byzantine inputs (weighted averages) or share of coordinates taken"
            + " from them (coordinate-wise rules) (\(share.yAxis.caption)). \(bucketNote)"
        if !undefinedShare.isEmpty {
            shareNote += " Not defined for: " + undefinedShare.map { "<code>\(e($0))</code>" }.joined(separator: ", ")
                + "."
        }
        out += figure(share.svg(), shareNote)

        // 6. With `--adversary worst`: per rule, recorded λ̂ (solid), worst λ̂ found (dashed) and bound.
        let worstColumns = columns.filter { i in column(r, i) { $0.worstCase?.lambda }.contains { $0 != nil } }
        if !worstColumns.isEmpty {
            var worstSeries: [LineChart.Series] = []
            var worstReferences: [LineChart.Reference] = []
            for i in worstColumns {
                worstSeries.append(LineChart.Series(name: ruleLabel(r, i) + ": recorded λ̂",
                                                    colour: ChartPalette.colour(i), dash: nil, width: 1.5,
                                                    points: buckets.maxima(rounds: rounds,
                                                        values: column(r, i, \.lambda))))
                worstSeries.append(LineChart.Series(name: ruleLabel(r, i) + ": worst λ̂ found",
                                                    colour: ChartPalette.colour(i), dash: "1.5 2.5", width: 2.4,
                                                    points: buckets.maxima(rounds: rounds,
                                                        values: column(r, i) { $0.worstCase?.lambda })))
                if let b = summary(r, i)?.bound, b.isFinite {
                    worstReferences.append(.init(value: b, colour: ChartPalette.colour(i),
                        label: "\(ruleLabel(r, i)): proven bound λ = \(AuditFormat.sig4(b))"))
                }
            }
            let boundLegend = worstReferences.isEmpty ? []
                : [LegendItem(swatch: .line(colour: "#777777", dash: "7 4", width: 1.5),
                    label: "proven bound λ (rule's colour)")]
            let worstChart = LineChart(id: "plot-worst-case", title: worstCaseTitle, xLabel: "round", yLabel: "λ̂",
                                       yScale: .log,
                                       series: worstSeries, references: worstReferences, extraLegend: boundLegend)
            out += figure(worstChart.svg(),
                "Per rule: the recorded λ̂ (solid), the worst λ̂ that f Byzantine inputs reached in the search on"
                + " the same honest messages (dotted) and the proven bound where there is one (dashed; "
                + "\(worstChart.yAxis.caption)). \(bucketNote)")
        }
        return out + "</section>\n"
    }

    static func figure(_ svg: String, _ caption: String) -> String {
        "<figure>\n\(svg)\n<figcaption>\(caption)</figcaption>\n</figure>\n"
    }

    // MARK: Tables

    static func summaryTable(_ r: AuditReport) -> String {
        var out = "<section class=\"summary\">\n<h2>Summary per rule</h2>\n<div class=\"scroll\">\n<table"
            + " class=\"numbers\" id=\"summary\">\n<thead>\n"
        out += "<tr><th>rule</th><th>bound λ</th><th>metric</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th>"
            + "<th>max</th><th>undefined</th><th>Byzantine share, mean</th><th>flagged rounds</th></tr>\n</thead>\n"
        for i in r.rules.indices {
            let s = summary(r, i)
            let metrics: [(String, SeriesStatistics?)] = [("gap", s?.gap), ("λ̂", s?.lambda), ("κ̂", s?.kappa)]
            out += "<tbody class=\"rule\">\n"
            for (k, (name, stats)) in metrics.enumerated() {
                out += "<tr>"
                if k == 0 {
                    out += "<th rowspan=\"3\" class=\"rule\" scope=\"rowgroup\">\(swatch(i))<code>"
                        + "\(e(ruleLabel(r, i)))</code></th>"
                    out += "<td rowspan=\"3\">\(AuditFormat.sig4(s?.bound))</td>"
                }
                out += "<td class=\"metric\">\(name)</td>"
                for v in [stats?.mean, stats?.p50, stats?.p90, stats?.p99, stats?.max] {
                    out += "<td>\(AuditFormat.sig4(v))</td>"
                }
                let undefinedCell = stats.map {
                    String($0.undefined) + ($0.nonFinite > 0 ? " + <strong>\($0.nonFinite) non-finite</strong>" : "")
                } ?? "—"
                out += "<td>\(undefinedCell)</td>"
                if k == 0 {
                    out += "<td rowspan=\"3\">\(AuditFormat.sig4(s?.byzantineShare.mean))</td>"
                    out += "<td rowspan=\"3\" class=\"flagged\">\(flaggedText(s?.flaggedRounds))</td>"
                }
                out += "</tr>\n"
            }
            out += "</tbody>\n"
        }
        out += "</table>\n</div>\n<p class=\"note\">Percentiles are nearest-rank over the rule's defined values;"
            + " undefined counts aggregations with Δ<sub>S</sub> = 0 or σ²<sub>S</sub> = 0 or without vectors. "
        out += "A flagged round has λ̂ above the rule's proven bound: with exact arithmetic this never happens. "
        out += "Non-finite values (NaN or ±∞, e.g. a NaN aggregate) are counted beside the undefined ones and left"
            + " out of the statistics.</p>\n"
        for s in r.summaries where s.stateNotCarried > 0 {
            out += "<p class=\"note\"><code>\(e(s.rule))</code>: state not carried in \(s.stateNotCarried) aggregations"
                + " (gap marked †): a round of their class was recorded without vectors, so this rule's"
                + " counterfactual state skips it.</p>\n"
        }
        return out + "</section>\n"
    }

    static func flaggedText(_ rounds: [Int]?) -> String {
        guard let rounds else { return "—" }
        if rounds.isEmpty { return "0" }
        let shown = rounds.prefix(5).map(String.init).joined(separator: ", ")
        return "<strong>\(rounds.count)</strong> (round\(rounds.count == 1 ? "" : "s") \(shown)"
            + "\(rounds.count > 5 ? ", …" : ""))"
    }

    static func worstRowsTable(_ r: AuditReport) -> String {
        var out = "<section class=\"worst\">\n<h2>Worst rounds</h2>\n"
        let rows = r.worstRows.filter { r.rows.indices.contains($0) }
        if rows.isEmpty { return out + "<p>No rows.</p>\n</section>\n" }
        out += "<p class=\"note\">The recorded rule's non-finite metrics first, then its largest λ̂ (then largest"
            + " gap); every rule's gap and λ̂ on the same aggregation. "
        out += "<span class=\"flagcell\">Tinted</span> cells are flagged (λ̂ above the bound, or a non-finite"
            + " metric); — is undefined; † a counterfactual state not carried.</p>\n"
        out += "<div class=\"scroll\">\n<table class=\"numbers\" id=\"worst\">\n<thead>\n<tr><th rowspan=\"2\">round"
            + "</th><th rowspan=\"2\">class</th><th rowspan=\"2\">Δ<sub>S</sub></th><th"
            + " rowspan=\"2\">σ²<sub>S</sub></th>"
        for i in r.rules.indices {
            out += "<th colspan=\"2\" class=\"rule\">\(swatch(i))<code>\(e(ruleLabel(r, i)))</code></th>"
        }
        out += "</tr>\n<tr>"
        for _ in r.rules.indices { out += "<th>gap</th><th>λ̂</th>" }
        out += "</tr>\n</thead>\n<tbody>\n"
        for index in rows {
            let row = r.rows[index]
            out += "<tr><td>\(row.round)</td><td>\(row.classIndex < 0 ? "—" : String(row.classIndex))</td>"
            out += "<td>\(AuditFormat.sig4(row.honestDiameter))</td><td>\(AuditFormat.sig4(row.honestVariance))</td>"
            for i in r.rules.indices {
                guard i < row.cells.count, let cell = row.cells[i] else {
                    out += "<td colspan=\"2\" class=\"none\">no vectors</td>"
                    continue
                }
                let flag = cell.exceedsBound || cell.nonFinite ? " class=\"flagcell\"" : ""
                let mark = cell.state == .notCarried ? " †" : ""
                out += "<td\(flag)>\(AuditFormat.sig4(cell.gap))\(mark)</td><td\(flag)>"
                    + "\(AuditFormat.sig4(cell.lambda))</td>"
            }
            out += "</tr>\n"
        }
        return out + "</tbody>\n</table>\n</div>\n</section>\n"
    }

    static func swatch(_ i: Int) -> String {
        "<span class=\"swatch\" style=\"background:\(ChartPalette.colour(i))\"></span>"
    }

    static func e(_ s: String) -> String { AuditFormat.escape(s) }

    static let css = """
    body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px; color: #1a1a1a; \
    background: #ffffff;
           max-width: 1000px; margin: 0 auto; padding: 16px 20px 40px; line-height: 1.4; }
    h1 { font-size: 22px; margin: 8px 0 4px; }
    h1 .trace { font-weight: normal; color: #444444; font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; \
    font-size: 18px; word-break: break-all; }
    h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #dddddd; padding-bottom: 3px; }
    .lead { margin: 4px 0 10px; color: #333333; }
    code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; }
    code.digest { word-break: break-all; }
    dl.brief { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 4px 16px; margin: 0; }
    dl.brief div { border-left: 3px solid #e4e4e4; padding: 1px 8px; }
    dl.brief dt { font-size: 11.5px; color: #666666; text-transform: uppercase; letter-spacing: 0.03em; }
    dl.brief dd { margin: 0; overflow-wrap: anywhere; }
    dl.brief div.wide { grid-column: 1 / -1; }
    section.integrity { border: 1px solid; border-left-width: 6px; border-radius: 3px; padding: 2px 14px \
    8px; margin-top: 16px; }
    section.integrity h2 { border: none; margin-top: 10px; }
    section.integrity ul { margin: 4px 0; padding-left: 20px; }
    .integrity .verdict { font-weight: bold; font-size: 15px; margin: 4px 0; }
    .integrity.ok { border-color: #2e7d32; background: #f1f8f1; }
    .integrity.warn { border-color: #c77700; background: #fff8ec; }
    .integrity.bad { border-color: #c62828; background: #fdf0f0; }
    .integrity .failure { color: #a51c1c; font-weight: bold; }
    figure { margin: 18px 0 26px; }
    svg.chart { max-width: 100%; height: auto; display: block; border: 1px solid #e4e4e4; }
    figcaption { font-size: 12.5px; color: #444444; margin-top: 6px; }
    .scroll { overflow-x: auto; }
    table.numbers { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
    table.numbers th, table.numbers td { border: 1px solid #d6d6d6; padding: 3px 7px; text-align: right; \
    white-space: nowrap; }
    table.numbers thead th { background: #f3f3f3; text-align: center; white-space: normal; }
    table.numbers th.rule { text-align: left; background: #fafafa; white-space: normal; min-width: 120px; \
    max-width: 230px; }
    table.numbers th.rule code { overflow-wrap: anywhere; }
    table.numbers td.metric { text-align: left; }
    table.numbers td.flagged, table.numbers td.none { text-align: left; color: #555555; }
    table.numbers tbody.rule { border-top: 2px solid #999999; }
    .flagcell { background: #fbd5d5; }
    .swatch { display: inline-block; width: 11px; height: 11px; margin-right: 6px; vertical-align: \
    -1px; border-radius: 2px; }
    .note { font-size: 12.5px; color: #444444; }
    footer { margin-top: 30px; font-size: 12px; color: #666666; border-top: 1px solid #dddddd; padding-top: 6px; }

    """
}
