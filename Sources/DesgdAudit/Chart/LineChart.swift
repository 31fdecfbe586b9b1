import Foundation

/// A line chart over rounds: one line per series (undefined values are gaps), optional dashed
/// horizontal reference lines and marked points, axes with ticks, a title and a legend.
struct LineChart {
    struct Series {
        var name: String
        var colour: String
        var dash: String?
        var width: Double = 1.5
        var points: [ChartPoint]
        var markers: [(x: Double, y: Double)] = []
    }

    struct Reference {
        var value: Double
        var colour: String
        var label: String
    }

    var id: String
    var title: String
    var xLabel: String
    /// SVG markup: escape any text from the report.
    var yLabel: String
    var yScale: ChartAxis.Scale?
    var yFixed: (Double, Double)?
    var series: [Series]
    var references: [Reference] = []
    var extraLegend: [LegendItem] = []

    /// The y axis the chart uses (also for its caption).
    var yAxis: ChartAxis {
        var values = series.flatMap { s in s.points.compactMap(\.y) + s.markers.map(\.y) }
        values += references.map(\.value)
        return ChartAxis(values: values, scale: yScale, fixed: yFixed)
    }

    func svg() -> String {
        let left = 78.0, right = SVGKit.width - 24, top = 40.0, plotHeight = 300.0
        let bottom = top + plotHeight
        let legendItems = series.map {
            LegendItem(swatch: .line(colour: $0.colour, dash: $0.dash, width: Swift.max(2, $0.width)), label: $0.name)
        } + extraLegend
        let legendTop = bottom + 48
        let height = legendTop + SVGKit.legendHeight(legendItems, left: left, right: right) + 10

        let xs = series.flatMap { $0.points.map(\.x) }
        var xAxis = ChartAxis(values: [], scale: .linear,
                              fixed: xs.isEmpty ? (0, 1)
                                  : (xs.min()! == xs.max()! ? (xs.min()! - 1, xs.max()! + 1) : (xs.min()!, xs.max()!)))
        xAxis.start = left
        xAxis.end = right
        var yAxis = self.yAxis
        yAxis.start = bottom
        yAxis.end = top

        var out = SVGKit.open(id: id, title: title, height: height)
        out += SVGKit.valueAxis(yAxis, left: left, right: right)
        out += SVGKit.horizontalAxis(xAxis, bottom: bottom, top: top, integers: true)
        out += "<rect x=\"\(AuditFormat.coord(left))\" y=\"\(AuditFormat.coord(top))\" width=\""
            + "\(AuditFormat.coord(right - left))\" height=\"\(AuditFormat.coord(plotHeight))\""
            + " fill=\"none\" stroke=\"#555555\"/>\n"
        out += SVGKit.text((left + right) / 2, bottom + 38, AuditFormat.escape(xLabel), anchor: "middle") + "\n"
        out += "<text x=\"0\" y=\"0\" transform=\"translate(16 \(AuditFormat.coord((top + bottom) / 2))) rotate(-90)\""
            + " text-anchor=\"middle\" font-size=\"12\">\(yLabel)</text>\n"

        for r in references where r.value.isFinite {
            let y = yAxis.position(r.value)
            out += "<g class=\"reference\">" + SVGKit.line(left, y, right, y, stroke: r.colour, width: 1.3, dash: "7 4")
                + "<title>\(AuditFormat.escape(r.label))</title></g>\n"
        }
        if series.allSatisfy({ $0.points.allSatisfy { $0.y == nil } }) {
            out += SVGKit.text((left + right) / 2, (top + bottom) / 2, "no defined values", anchor: "middle",
                extra: "fill=\"#888888\"") + "\n"
        }
        // Later columns first, so the recorded rule (column 0) is drawn on top.
        for s in series.reversed() {
            let d = LineChart.pathData(s.points, x: xAxis, y: yAxis)
            guard !d.isEmpty else { continue }
            out += "<path class=\"series\" data-series=\"\(AuditFormat.escape(s.name))\" d=\"\(d)\" fill=\"none\""
                + " stroke=\"\(s.colour)\" stroke-width=\"\(AuditFormat.coord(s.width))\" stroke-linejoin=\"round\""
                + " stroke-linecap=\"round\"\(s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")><title>"
                + "\(AuditFormat.escape(s.name))</title></path>\n"
        }
        for s in series where !s.markers.isEmpty {
            out += "<g class=\"flags\" data-series=\"\(AuditFormat.escape(s.name))\">"
            for m in s.markers { out += SVGKit.marker(xAxis.position(m.x), yAxis.position(m.y), colour: s.colour) }
            out += "</g>\n"
        }
        out += SVGKit.legend(legendItems, left: left, right: right, top: legendTop)
        return out + "</svg>"
    }

    /// `M x y L x y …`: a new move-to after every undefined point; a point alone between gaps is a
    /// zero-length segment (`h0`), drawn as a dot by the round line cap.
    static func pathData(_ points: [ChartPoint], x: ChartAxis, y: ChartAxis) -> String {
        var d = ""
        var runLength = 0
        for p in points {
            guard let v = p.y, v.isFinite else {
                if runLength == 1 { d += "h0" }
                runLength = 0
                continue
            }
            d += (runLength == 0 ? "M" : "L") + AuditFormat.coord(x.position(p.x)) + " "
                + AuditFormat.coord(y.position(v))
            runLength += 1
        }
        if runLength == 1 { d += "h0" }
        return d
    }
}
