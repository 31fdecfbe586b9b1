import DesgdReplay
import Foundation

/// The report's runs, one by one: what the paper's best-accuracy table hides. Per run, the best
/// accuracy and the round it was reached, the final accuracy, and, when the run was read from its
/// cell summary, the collapses the audit dated and whether drift was persistent before them
/// (docs/drift.md). Rounds are rounds completed (t + 1), as elsewhere in the report.
extension ReproductionReport {
    /// The columns a `run` line of the CSV adds to the table columns (empty on the other lines).
    public static let runCSVColumns = [
        "seed", "best_round", "final", "collapses", "first_collapse",
        "lead_rounds", "persistence_flags", "digest",
    ]

    /// Runs whose best accuracy hides a collapse: the audit dated at least one collapse and the
    /// final accuracy is at least the audit's collapse drop (10 points by default) under the best.
    public var hiddenCollapses: [CellResult] {
        runs.filter { r in
            guard let f = r.findings, !f.collapses.isEmpty else { return false }
            return 100 * (r.bestAccuracy - r.finalAccuracy) >= (f.collapseDrop ?? 10)
        }
    }

    /// "4 (first at 500)", "none", or "—" when the run was not read from a summary.
    static func collapseText(_ f: CellFindings?) -> String {
        guard let f else { return "—" }
        guard let first = f.collapses.first else { return "none" }
        return "\(f.collapses.count) (first at \(first.round))"
    }

    /// Whether the drift was persistent up to the first collapse, from which round (rounds completed),
    /// and the number of persistence flags.
    static func driftText(_ f: CellFindings?) -> String {
        guard let f else { return "—" }
        let flags = "\(f.persistenceFlags) flag\(f.persistenceFlags == 1 ? "" : "s")"
        guard let first = f.collapses.first else { return flags }
        guard let lead = first.leadRounds else { return "not persistent before it; \(flags)" }
        // The lead counts back to where the run of persistent rounds began, which may be the start.
        return "persistent from round \(first.round - lead) on; \(flags)"
    }

    /// An accuracy in [0, 1] as a percentage with two decimals (the tables' ``number(_:signed:)``).
    static func percent(_ v: Double) -> String { number(100 * v) }

    var runsMarkdown: [String] {
        guard !runs.isEmpty else { return [] }
        var out = ["", "## Every run: best, final and collapses", ""]
        out.append(
            "Best and final test accuracy (%) with the round (completed) of the best; collapses are the drops "
                + "of at least the audit's criterion between two evaluations that `desgd-audit` dates, with the "
                + "round of the first; drift says whether the recorded rule's drift was persistent (at or above the "
                + "audit's threshold) up to the first collapse, and from which round, and how many persistence flags "
                + "the audit raised. `—`: the run was "
                + "read from its trace, not from a summary (`desgd-audit` on the trace shows both).")
        out.append("")
        out.append("| Method | Attack | Seed | Paper | Best (round) | Final | Collapses | Drift |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in runs {
            let paper = ReproductionReport.number(PaperTables.accuracy(r.method, r.attack))
            out.append(
                "| \(r.method) | \(r.attack) | \(r.seed) | \(paper) | "
                    + "\(ReproductionReport.percent(r.bestAccuracy)) (\(r.bestRound)) | "
                    + "\(ReproductionReport.percent(r.finalAccuracy)) | "
                    + "\(ReproductionReport.collapseText(r.findings)) | "
                    + "\(ReproductionReport.driftText(r.findings)) |")
        }
        let hidden = hiddenCollapses
        guard runs.contains(where: { $0.findings != nil }) else { return out }
        out += ["", "### Where the best accuracy hides a collapse", ""]
        if hidden.isEmpty {
            out.append("No run ends a collapse's drop or more under its best accuracy.")
        }
        for r in hidden {
            let f = r.findings!
            let rounds = f.collapses.map { "\($0.round)" }.joined(separator: ", ")
            out.append(
                "- \(r.method) under \(r.attack), seed \(r.seed): best \(ReproductionReport.percent(r.bestAccuracy)) % "
                    + "at round \(r.bestRound), final \(ReproductionReport.percent(r.finalAccuracy)) %; "
                    + "collapse\(f.collapses.count == 1 ? "" : "s") at round\(f.collapses.count == 1 ? "" : "s") "
                    + "\(rounds); \(ReproductionReport.driftText(f)).")
        }
        return out
    }

    var runCSVLines: [String] {
        let f = ReproductionReport.csvNumber
        return runs.map { r in
            let best = 100 * r.bestAccuracy
            let paper = PaperTables.accuracy(r.method, r.attack)
            let findings = r.findings
            let first = findings?.collapses.first
            return [
                "run", TextFormat.csvField(r.method), TextFormat.csvField(r.attack), "1", "1", f(best), "", f(best),
                f(best),
                f(paper), f(paper.map { best - $0 }), "\(r.seed)", "\(r.bestRound)", f(100 * r.finalAccuracy),
                findings.map { "\($0.collapses.count)" } ?? "", first.map { "\($0.round)" } ?? "",
                first?.leadRounds.map(String.init) ?? "", findings.map { "\($0.persistenceFlags)" } ?? "",
                findings?.lastDigest ?? "",
            ].joined(separator: ",")
        }
    }

    /// A run in `desgd-grid report --json`.
    struct RunEntry: Encodable {
        var method, attack: String
        var seed: UInt64
        var best, final: Double
        var bestRound: Int
        var paper: Double?
        var findings: CellFindings?

        init(_ r: CellResult, paper: Double?) {
            (method, attack, seed, bestRound, findings, self.paper) = (
                r.method, r.attack, r.seed, r.bestRound, r.findings, paper
            )
            (best, final) = (100 * r.bestAccuracy, 100 * r.finalAccuracy)
        }
    }
}
