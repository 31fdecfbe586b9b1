import DesgdReplay

extension AuditText {
    /// The drift part of the readable report: per rule the drift at the end and its largest
    /// windowed persistence; the collapse onsets with the drift before each; the flags. Nil for
    /// traces without drift (format 1.0).
    static func driftText(_ r: AuditReport, labels: RuleLabels? = nil) -> String? {
        guard let drift = r.drift else { return nil }
        let labels = labels ?? RuleLabels(r.rules)
        let c = drift.criteria
        var out: [String] = []
        out.append(TextFormat.wrap("Drift (persistence = ‖Σe‖ / Σ‖e‖ of the deviations e = F(R) − honest"
            + " mean: 1 when they keep one direction, about 1/√k for k independent ones; "
            + "recent drift over a group's \(drift.recentDescription); group figures are means over the groups; model"
                + " drift = ‖η·Σ(u − u_honest)‖ against the honest shadow)"))
        out.append(TextFormat.panels(
            ["rule", "rounds", "window persist. p50", "max", "final cumul. persist.", "final model drift", "/ shadow",
                "model persist.", "flags"],
            drift.series.map { s in
                let window = SeriesStatistics(s.points.map(\.windowPersistence))
                let last = s.points.last
                return [labels.label(s.rule), String(s.points.count), TextFormat.number(window.p50),
                        TextFormat.number(window.max),
                        TextFormat.number(last?.cumulativePersistence), TextFormat.number(last?.modelDisplacement),
                        TextFormat.number(last?.modelRelative), TextFormat.number(last?.modelPersistence),
                        String(drift.flags.filter { $0.rule == s.rule }.count)]
            }, units: [3, 1, 3, 1]))
        if let note = drift.note {
            out.append(TextFormat.wrap("note       " + note, indent: String(repeating: " ", count: 11)))
        }
        if drift.onsets.isEmpty {
            out.append(TextFormat.wrap("collapses  none (no drop of more than \(TextFormat.number(c.collapseDrop))"
                + " accuracy points between evaluations)"))
        } else {
            out.append(TextFormat.wrap("Collapse onsets (a drop of more than \(TextFormat.number(c.collapseDrop))"
                + " points between evaluations) and the recorded rule's drift at the evaluation before"))
            out.append(TextFormat.panels(
                ["onset", "before", "acc. before %", "after %", "window persist.", "model drift / shadow",
                    "persistent since", "lead (rounds)"],
                drift.onsets.map { o in
                    [String(o.round), String(o.previousRound), String(format: "%.2f", 100 * o.accuracyBefore),
                     String(format: "%.2f", 100 * o.accuracyAfter),
                     TextFormat.number(o.windowPersistence), TextFormat.number(o.modelRelative),
                     o.persistentSince.map(String.init) ?? "-", o.leadRounds.map(String.init) ?? "-"]
                }, left: 0, keep: 2))
        }
        if drift.flags.isEmpty {
            out.append(TextFormat.wrap("flags      none (window persistence never ≥ "
                + "\(TextFormat.number(c.persistenceThreshold)) for W aggregations while λ̂ looked harmless)"))
        } else {
            out.append(TextFormat.wrap("Flags: window persistence ≥ \(TextFormat.number(c.persistenceThreshold)) for"
                + " at least W consecutive aggregations of a group while λ̂ ≤ 1 and within its bound"))
            out.append(TextFormat.panels(["rule", "class", "first round", "last round", "aggregations", "mean persist.",
                "max λ̂"], drift.flags.map { f in
                [labels.label(f.rule), f.classIndex >= 0 ? String(f.classIndex) : "all", String(f.firstRound),
                 String(f.lastRound), String(f.aggregations),
                 TextFormat.number(f.meanWindowPersistence), TextFormat.number(f.maxLambda)]
            }))
        }
        return out.joined(separator: "\n")
    }
}
