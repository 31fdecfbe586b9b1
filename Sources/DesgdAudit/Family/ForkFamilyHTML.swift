import Foundation

/// The fork family page (`desgd-audit PARENT FORK… --html FILE`): one self-contained page, with
/// the audit page's style, a table of the branches and one plot per metric (test accuracy, gap,
/// λ̂), every branch a line named by what it changed, the fork rounds marked by vertical lines.
public enum ForkFamilyHTML {
    public static let titles = (accuracy: "Test accuracy per branch", gap: "Gap per branch", lambda: "λ̂ per branch")

    static func e(_ s: String) -> String { AuditFormat.escape(s) }

    public static func render(_ r: ForkFamilyReport) -> String {
        let r = r.forDisplay
        var page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        page += "<title>desgd fork family: \(e(r.parent))</title>\n<style>\n\(AuditHTML.css)</style>\n</head>\n<body>\n"
        page += "<header>\n<h1>desgd fork family <span class=\"trace\">\(e(r.parent))</span></h1>\n"
        page += "<p class=\"lead\">The parent and \(r.branches.count - 1) fork"
            + "\(r.branches.count == 2 ? "" : "s") made of it at round"
            + "\(r.forkRounds.count == 1 ? "" : "s") \(r.forkRounds.map(String.init).joined(separator: ", ")), side by"
                + " side from round \(r.start). "
        if let to = r.recoverTo {
            page += "Recovery: the first evaluation from a branch's fork round on at or above "
                + "\(AuditFormat.sig4(to))% test accuracy.</p>\n"
        } else if let reference = r.reference, let round = r.referenceRound {
            page += "Recovery: the first evaluation from a branch's fork round on within "
                + "\(AuditFormat.sig4(r.recoverWithin)) points of the parent's best before round \(r.start), "
                + "\(AuditFormat.percent(reference)) at round \(round).</p>\n"
        } else {
            page += "Recovery is not measured: the parent has no evaluation before round \(r.start).</p>\n"
        }
        for b in r.branches where !b.chainHolds {
            page += "<p class=\"note\"><strong>The digest chain of <code>\(e(b.trace))</code> is broken"
                + "</strong>: audit it alone.</p>\n"
        }
        for b in r.branches {
            guard let descent = b.descent, let summary = b.descentSummary, !descent.isVerified else { continue }
            page += "<p class=\"note\"><strong><code>\(e(b.trace))</code>: \(e(summary))</strong></p>\n"
        }
        page += "</header>\n<main>\n"
        page += table(r)
        page += plots(r)
        page += "</main>\n<footer>desgd-audit fork family of <code>\(e(r.parent))</code>.</footer>\n</body>\n</html>\n"
        return page
    }

    static func table(_ r: ForkFamilyReport) -> String {
        var out = "<h2>Branches</h2>\n<div class=\"scroll\"><table class=\"numbers\">\n<thead><tr><th>branch</th>"
            + "<th>trace</th><th>fork at</th>"
            + "<th>accuracy at fork (round)</th><th>best after (round)</th><th>final (round)"
                + "</th><th>rounds to recover</th>"
            + "<th>mean gap</th><th>mean λ̂</th><th>descent</th></tr></thead>\n<tbody>\n"
        for (i, b) in r.branches.enumerated() {
            let s = b.summary
            func at(_ v: Double?, _ round: Int?) -> String {
                v.map { "\(AuditFormat.percent($0)) (\(round ?? 0))" } ?? "—"
            }
            out += "<tr><th class=\"rule\"><span class=\"swatch\" style=\"background:\(ChartPalette.colour(slot(i)))\">"
                + "</span><code>\(e(b.name))</code></th>"
                + "<td class=\"metric\"><code>\(e(AuditFormat.shortened(b.trace, 60)))</code></td><td>"
                    + "\(b.forkRound.map(String.init) ?? "—")</td>"
                + "<td>\(at(s.accuracyAtFork, s.accuracyAtForkRound))</td><td>\(at(s.bestAfter, s.bestAfterRound))</td>"
                + "<td>\(at(s.finalAfter, s.finalAfterRound))</td>"
                + "<td>\(s.roundsToRecover.map { "\($0) (round \(s.recoveredAtRound ?? 0))" } ?? "no")</td>"
                + "<td>\(AuditFormat.sig4(s.meanGap))</td><td>\(AuditFormat.sig4(s.meanLambda))</td>"
                + "<td class=\"metric\">\(e(b.descentSummary ?? "—"))</td></tr>\n"
        }
        return out + "</tbody></table></div>\n"
    }

    /// Branch i's palette slot: the palette's fourth colour is a red close to the fork line's, so
    /// branches skip it.
    static func slot(_ i: Int) -> Int { i < 3 ? i : i + 1 }

    /// One chart per metric: a single-panel ``DriftChart`` (its vertical lines are the fork rounds).
    static func plots(_ r: ForkFamilyReport) -> String {
        func series(_ values: (ForkFamilyReport.Branch) -> [ForkFamilyReport.Point],
            scale: Double = 1) -> [LineChart.Series] {
            r.branches.enumerated().map { i, b in
                let points = values(b)
                let rounds = points.map(\.round)
                let buckets = RoundBuckets(rounds: rounds, limit: AuditHTML.maxPointsPerSeries)
                return LineChart.Series(name: b.name, colour: ChartPalette.colour(slot(i)),
                                        dash: ChartPalette.dash(slot(i)), width: i == 0 ? 2.2 : 1.6,
                                        points: buckets.maxima(rounds: rounds,
                                            values: points.map { $0.value.map { scale * $0 } }))
            }
        }
        let legend = r.branches.indices.map {
            LegendItem(swatch: .line(colour: ChartPalette.colour(slot($0)), dash: ChartPalette.dash(slot($0)),
                width: 2), label: r.branches[$0].name)
        } + [LegendItem(swatch: .line(colour: "#c62828", dash: "5 3", width: 1.5), label: "fork round")]
        func chart(_ id: String, _ title: String, _ label: String, _ lines: [LineChart.Series],
            fixed: (Double, Double)? = nil) -> DriftChart {
            let values = lines.flatMap { $0.points.compactMap(\.y) }
            return DriftChart(id: id, title: title,
                              panels: [.init(label: label, axis: ChartAxis(values: values, scale: nil, fixed: fixed),
                                  series: lines)],
                              onsets: r.forkRounds, legend: legend, markLabel: "fork at round")
        }
        let accuracy = chart("plot-family-accuracy", titles.accuracy, "accuracy (%)", series(\.accuracy, scale: 100),
            fixed: (0, 100))
        let gap = chart("plot-family-gap", titles.gap,
            "gap ‖F(R) − x̄<tspan baseline-shift=\"sub\" font-size=\"9\">S</tspan>‖", series(\.gap))
        let lambda = chart("plot-family-lambda", titles.lambda, "λ̂", series(\.lambda))
        var out = "<h2>Over rounds</h2>\n"
        out += AuditHTML.figure(accuracy.svg(),
            "Test accuracy on evaluation rounds, per branch (the parent and each fork, named by what it changed)."
            + " Red dashed: the fork rounds.")
        out += AuditHTML.figure(gap.svg(),
            "The recorded rule's gap per round, the mean over the round's aggregations ("
            + "\(gap.panels[0].axis.caption)).")
        out += AuditHTML.figure(lambda.svg(),
            "The recorded rule's λ̂ = gap/Δ<sub>S</sub> per round, the mean over the round's aggregations where"
            + " defined (\(lambda.panels[0].axis.caption)).")
        return out
    }
}
