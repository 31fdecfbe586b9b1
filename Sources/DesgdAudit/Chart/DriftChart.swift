/// The audit's drift figure: three panels on one round axis — test accuracy above, the rules'
/// windowed persistence in the middle (with the threshold and the 1/√W of independent deviations),
/// and the model's drift from its honest shadow relative to the shadow's own displacement below —
/// with the collapse onsets drawn as vertical lines through all three, so a reader sees at once
/// whether the drift rose before accuracy fell.
struct DriftChart {
    struct Panel {
        var label: String
        var axis: ChartAxis
        var series: [LineChart.Series]
        var references: [LineChart.Reference] = []
    }

    var id: String
    var title: String
    var panels: [Panel]
    /// Rounds of the collapse onsets (the evaluation that saw the drop).
    var onsets: [Int]
    var legend: [LegendItem]
    /// What a vertical line marks (its tooltip: this, then the round); the fork family's plots mark
    /// fork rounds.
    var markLabel = "collapse onset at round"

    static let panelHeight = 170.0
    static let gap = 34.0

    func svg() -> String {
        let left = 78.0, right = SVGKit.width - 24, top = 40.0
        let plotsBottom = top + Double(panels.count) * DriftChart.panelHeight
            + Double(max(0, panels.count - 1)) * DriftChart.gap
        let legendTop = plotsBottom + 48
        let height = legendTop + SVGKit.legendHeight(legend, left: left, right: right) + 10
        let xs = panels.flatMap { $0.series.flatMap { $0.points.map(\.x) } } + onsets.map(Double.init)
        var xAxis = ChartAxis(values: [], scale: .linear,
                              fixed: xs.isEmpty ? (0, 1)
                                  : (xs.min()! == xs.max()! ? (xs.min()! - 1, xs.max()! + 1) : (xs.min()!, xs.max()!)))
        xAxis.start = left
        xAxis.end = right
        let c = AuditFormat.coord
        var out = SVGKit.open(id: id, title: title, height: height)
        for (k, panel) in panels.enumerated() {
            let panelTop = top + Double(k) * (DriftChart.panelHeight + DriftChart.gap)
            let bottom = panelTop + DriftChart.panelHeight
            var y = panel.axis
            y.start = bottom
            y.end = panelTop
            out += "<g class=\"panel\" data-panel=\"\(AuditFormat.escape(panel.label))\">\n"
            out += SVGKit.valueAxis(y, left: left, right: right)
            out += SVGKit.horizontalAxis(xAxis, bottom: bottom, top: panelTop, integers: true)
            out += "<rect x=\"\(c(left))\" y=\"\(c(panelTop))\" width=\"\(c(right - left))\" height=\""
                + "\(c(DriftChart.panelHeight))\" fill=\"none\" stroke=\"#555555\"/>\n"
            out += "<text x=\"0\" y=\"0\" transform=\"translate(16 \(c((panelTop + bottom) / 2))) rotate(-90)\""
                + " text-anchor=\"middle\" font-size=\"12\">\(panel.label)</text>\n"
            for r in panel.references where r.value.isFinite {
                let yr = y.position(r.value)
                out += "<g class=\"reference\">"
                    + SVGKit.line(left, yr, right, yr, stroke: r.colour, width: 1.2, dash: "7 4")
                    + "<title>\(AuditFormat.escape(r.label))</title></g>\n"
            }
            if panel.series.allSatisfy({ $0.points.allSatisfy { $0.y == nil } }) {
                out += SVGKit.text((left + right) / 2, (panelTop + bottom) / 2, "no defined values", anchor: "middle",
                    extra: "fill=\"#888888\"") + "\n"
            }
            for s in panel.series.reversed() {
                let d = LineChart.pathData(s.points, x: xAxis, y: y)
                guard !d.isEmpty else { continue }
                out += "<path class=\"series\" data-series=\"\(AuditFormat.escape(s.name))\" d=\"\(d)\" fill=\"none\""
                    + " stroke=\"\(s.colour)\" stroke-width=\"\(c(s.width))\" stroke-linejoin=\"round\""
                    + " stroke-linecap=\"round\"\(s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")><title>"
                    + "\(AuditFormat.escape(s.name))</title></path>\n"
            }
            out += "</g>\n"
        }
        // Onsets through every panel, labelled at the top.
        out += "<g class=\"onsets\">\n"
        for round in onsets {
            let x = xAxis.position(Double(round))
            out += "<g class=\"onset\">"
                + SVGKit.line(x, top, x, plotsBottom, stroke: "#c62828", width: 1.4, dash: "5 3")
                + "<title>\(markLabel) \(round)</title></g>\n"
        }
        out += "</g>\n"
        out += SVGKit.text((left + right) / 2, plotsBottom + 38, "round", anchor: "middle") + "\n"
        out += SVGKit.legend(legend, left: left, right: right, top: legendTop)
        return out + "</svg>"
    }
}
