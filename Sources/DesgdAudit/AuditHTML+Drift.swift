extension AuditHTML {
    /// The drift figure's title.
    public static let driftTitle = "Accuracy and drift over rounds"
    /// The most flags listed in the page (all are in the JSON and CSV).
    static let maxFlagsListed = 40

    /// The drift section: the figure (accuracy above, drift below, onsets marked), the onsets with
    /// the drift before each, and the persistence flags. Empty for traces without drift.
    static func driftSection(_ r: AuditReport) -> String {
        guard let drift = r.drift else { return "" }
        let threshold = drift.criteria.persistenceThreshold
        var out = "<section class=\"drift\">\n<h2>Drift</h2>\n"
        out += "<p class=\"lead\">Per-round λ̂ measures one round's deviation; drift measures"
            + " whether the deviations add up. "
            + "Persistence ‖Σe‖ / Σ‖e‖ over a group's \(drift.recentDescription) is 1 when every "
            + "deviation points the same way and about \(drift.independentLevelText) when they are independent.</p>\n"

        let accRounds = r.accuracy.map(\.round)
        let accBuckets = RoundBuckets(rounds: accRounds, limit: maxPointsPerSeries)
        let accuracy = LineChart.Series(name: "test accuracy (recorded run)", colour: "#222222", dash: nil, width: 2,
                                        points: accBuckets.maxima(rounds: accRounds,
                                            values: r.accuracy.map { 100 * $0.accuracy }))
        func lines(_ value: (AuditReport.DriftPoint) -> Double?) -> [LineChart.Series] {
            drift.series.enumerated().map { i, s in
                let rounds = s.points.map(\.round)
                let buckets = RoundBuckets(rounds: rounds, limit: maxPointsPerSeries)
                return LineChart.Series(name: ruleLabel(r, i), colour: ChartPalette.colour(i),
                                        dash: ChartPalette.dash(i),
                                        width: i == 0 ? 2.2 : 1.5,
                                        points: buckets.maxima(rounds: rounds, values: s.points.map(value)))
            }
        }
        let persistence = lines(\.windowPersistence)
        let relative = lines(\.modelRelative)
        var references = [LineChart.Reference(value: threshold, colour: "#c62828",
            label: "persistence threshold \(AuditFormat.sig4(threshold))")]
        if let w = drift.window {
            let level = (drift.recent ?? .window).independentPersistence(window: w)
            references.append(.init(value: level, colour: "#777777",
                label: "\(drift.independentLevelText): independent deviations"))
        }
        let relativeValues = relative.flatMap { $0.points.compactMap(\.y) }
        var legend = [LegendItem(swatch: .line(colour: "#222222", dash: nil, width: 2), label: "test accuracy")]
        legend += drift.series.indices.map {
            LegendItem(swatch: .line(colour: ChartPalette.colour($0), dash: ChartPalette.dash($0), width: 2),
                label: ruleLabel(r, $0)) }
        legend.append(LegendItem(swatch: .line(colour: "#c62828", dash: "5 3", width: 1.5), label: "collapse onset"))
        legend.append(LegendItem(swatch: .line(colour: "#c62828", dash: "7 4", width: 1.2),
            label: "persistence threshold"))
        if drift.window != nil {
            legend.append(LegendItem(swatch: .line(colour: "#777777", dash: "7 4", width: 1.2),
                label: drift.independentLevelText))
        }
        let chart = DriftChart(
            id: "plot-drift", title: driftTitle,
            panels: [
                .init(label: "accuracy (%)", axis: ChartAxis(values: [], scale: .linear, fixed: (0, 100)),
                    series: [accuracy]),
                .init(label: "window persistence", axis: ChartAxis(values: [], scale: .linear, fixed: (0, 1)),
                      series: persistence,
                      references: references),
                .init(label: "model drift / shadow", axis: ChartAxis(values: relativeValues, scale: nil),
                    series: relative),
            ],
            onsets: drift.onsets.map(\.round), legend: legend)
        out += figure(chart.svg(),
            "Above: test accuracy of the recorded run. Middle: windowed persistence per rule, the mean over the "
            + "groups of each group's latest value (red dashed: the threshold "
                + "\(AuditFormat.sig4(threshold)); grey dashed: 1/√W). "
            + "Below: ‖η·Σ(u − u<sup>H</sup>)‖ / ‖η·Σu<sup>H</sup>‖, how far the rule's steps moved the"
                + " model from its honest shadow "
            + "relative to how far the shadow moved (\(chart.panels[2].axis.caption)). Red vertical"
                + " lines: collapse onsets, a drop of "
            + "more than \(AuditFormat.sig4(drift.criteria.collapseDrop)) accuracy points between"
                + " evaluations. Replayed rules are open "
            + "loop: their deviations along the recorded run, not a new training.")

        if let note = drift.note { out += "<p class=\"note\">\(e(note))</p>\n" }
        if drift.onsets.isEmpty {
            out += "<p class=\"note\">No collapse: accuracy never fell by more than "
                + "\(AuditFormat.sig4(drift.criteria.collapseDrop)) points between evaluations.</p>\n"
        } else {
            out += "<h3>Collapse onsets and the drift before them (recorded rule)</h3>\n<div"
                + " class=\"scroll\"><table class=\"numbers\">\n"
            out += "<thead><tr><th>onset round</th><th>accuracy before → after (%)</th>"
                + "<th>window persistence before</th>"
                + "<th>model drift / shadow before</th><th>persistent since round</th><th>lead (rounds)"
                    + "</th></tr></thead>\n<tbody>\n"
            for o in drift.onsets {
                out += "<tr><td>\(o.round)</td><td>\(AuditFormat.sig4(100 * o.accuracyBefore)) → "
                    + "\(AuditFormat.sig4(100 * o.accuracyAfter))</td>"
                    + "<td>\(AuditFormat.sig4(o.windowPersistence))</td><td>\(AuditFormat.sig4(o.modelRelative))</td>"
                    + "<td>\(o.persistentSince.map(String.init) ?? "—")</td><td>"
                        + "\(o.leadRounds.map(String.init) ?? "—")</td></tr>\n"
            }
            out += "</tbody></table></div>\n"
        }
        if drift.flags.isEmpty {
            out += "<p class=\"note\">No flag: windowed persistence never stayed at or above "
                + "\(AuditFormat.sig4(threshold)) for W aggregations of a group while λ̂ looked harmless.</p>\n"
        } else {
            out += "<h3>Persistent drift while λ̂ looked harmless (\(drift.flags.count) flags)</h3>\n<div"
                + " class=\"scroll\"><table class=\"numbers\">\n"
            out += "<thead><tr><th>rule</th><th>class</th><th>rounds</th><th>aggregations</th><th>mean window"
                + " persistence</th><th>max λ̂</th></tr></thead>\n<tbody>\n"
            for f in drift.flags.prefix(maxFlagsListed) {
                out += "<tr><td class=\"metric\"><code>\(e(AuditFormat.shortened(f.rule, 40)))</code></td><td>"
                    + "\(f.classIndex >= 0 ? String(f.classIndex) : "all")</td>"
                    + "<td>\(f.firstRound)–\(f.lastRound)</td><td>\(f.aggregations)</td><td>"
                        + "\(AuditFormat.sig4(f.meanWindowPersistence))</td>"
                    + "<td>\(AuditFormat.sig4(f.maxLambda))</td></tr>\n"
            }
            out += "</tbody></table></div>\n"
            if drift.flags.count > maxFlagsListed {
                out += "<p class=\"note\">The first \(maxFlagsListed) of \(drift.flags.count) flags; all"
                    + " are in the JSON output.</p>\n"
            }
        }
        return out + "</section>\n"
    }
}
