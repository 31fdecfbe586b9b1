import DesgdAudit
import Foundation

/// The report's figure (`desgd-grid report --html FILE`): the runs table, then accuracy over rounds,
/// one chart per method with one curve per attack (and seed, when a cell has several), each attack
/// in one colour on the whole page, the audit's collapses marked and the paper's best accuracy
/// dashed.
extension ReproductionReport {
    public var figure: AccuracyCurvesPage {
        let headers = [
            "method", "attack", "seed", "paper (%)", "best (%)", "best at round", "final (%)", "collapses", "drift",
        ]
        let rows = runs.map { r -> [String] in
            [
                r.method, r.attack, "\(r.seed)", ReproductionReport.number(PaperTables.accuracy(r.method, r.attack)),
                ReproductionReport.percent(r.bestAccuracy), "\(r.bestRound)",
                ReproductionReport.percent(r.finalAccuracy),
                ReproductionReport.collapseText(r.findings), ReproductionReport.driftText(r.findings),
            ]
        }
        let panels = methods.compactMap { m -> AccuracyCurvesPage.Panel? in
            let mine = runs.filter { $0.method == m }
            guard !mine.isEmpty else { return nil }
            let curves = mine.map { r -> AccuracyCurvesPage.Curve in
                let seeds = mine.filter { $0.attack == r.attack }.count
                let points = r.curve.map { AccuracyCurvesPage.Point(round: $0.round, accuracy: $0.accuracy) }
                let collapses = (r.findings?.collapses ?? []).map {
                    AccuracyCurvesPage.Point(round: $0.round, accuracy: $0.accuracyAfter)
                }
                // One colour per attack, a stroke per seed; the paper's value once per attack.
                let variant = mine.filter { $0.attack == r.attack }.firstIndex { $0.seed == r.seed } ?? 0
                return AccuracyCurvesPage.Curve(
                    label: seeds > 1 ? "\(r.attack), seed \(r.seed)" : r.attack,
                    slot: attacks.firstIndex(of: r.attack) ?? 0, points: points,
                    collapses: collapses,
                    reference: variant == 0 ? PaperTables.accuracy(m, r.attack).map { $0 / 100 } : nil,
                    variant: variant)
            }
            return AccuracyCurvesPage.Panel(title: m, curves: curves)
        }
        let hidden = hiddenCollapses.map { "\($0.method) under \($0.attack) (seed \($0.seed))" }
        var lead = [
            "\(finishedCells) of \(plannedCells) runs finished; \(rounds.map(String.init).joined(separator: " or ")) "
                + "rounds per run; rounds are rounds completed. Best and final are the test accuracy at the best and "
                + "last evaluation; a collapse is a drop between two evaluations that the audit dates."
        ]
        if !hidden.isEmpty {
            lead.append(
                "The best accuracy hides a collapse in \(hidden.count) run\(hidden.count == 1 ? "" : "s"): "
                    + hidden.joined(separator: ", ") + ".")
        }
        return AccuracyCurvesPage(
            title: "desgd grid \(spec.name): test accuracy per method and attack", lead: lead,
            tableHeaders: headers, tableRows: rows, panels: panels,
            referenceLabel: "paper's best accuracy")
    }
}
