import Foundation

/// A horizontal box plot, one row per rule: whiskers from minimum to maximum, the box from the
/// first to the third quartile, the median as a bar, the mean as a white dot and the rule's bound as
/// a dashed tick.
struct BoxPlot {
    struct Row {
        var name: String
        var colour: String
        /// Defined values (undefined ones are counted in `undefined`).
        var values: [Double]
        var undefined: Int
        var bound: Double?
    }

    var id: String
    var title: String
    var xLabel: String
    var rows: [Row]

    /// Nearest-rank quantile of sorted values (as ``SeriesStatistics``).
    static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
    }

    var xAxis: ChartAxis {
        ChartAxis(values: rows.flatMap { $0.values + ($0.bound.map { [$0] } ?? []) }, scale: nil)
    }

    func svg() -> String {
        let labelChars = Swift.min(34, rows.map(\.name.count).max() ?? 0)
        let left = Swift.max(110, 16 + SVGKit.textWidth(String(repeating: "m", count: labelChars)))
        let right = SVGKit.width - 150, top = 40.0, rowHeight = 30.0
        let bottom = top + Swift.max(1, Double(rows.count)) * rowHeight + 8
        let legendItems = [
            LegendItem(swatch: .box(colour: "#777777"), label: "quartiles, median bar, whiskers min–max"),
            LegendItem(swatch: .line(colour: "#777777", dash: "4 3", width: 2), label: "proven bound λ"),
            LegendItem(swatch: .dot, label: "mean"),
        ]
        let legendTop = bottom + 48
        let height = legendTop + SVGKit.legendHeight(legendItems, left: left, right: right) + 10
        var axis = xAxis
        axis.start = left
        axis.end = right

        var out = SVGKit.open(id: id, title: title, height: height)
        out += SVGKit.horizontalAxis(axis, bottom: bottom, top: top, integers: false)
        out += "<rect x=\"\(AuditFormat.coord(left))\" y=\"\(AuditFormat.coord(top))\" width=\""
            + "\(AuditFormat.coord(right - left))\" height=\"\(AuditFormat.coord(bottom - top))\""
            + " fill=\"none\" stroke=\"#555555\"/>\n"
        out += SVGKit.text((left + right) / 2, bottom + 38, AuditFormat.escape(xLabel), anchor: "middle") + "\n"
        let c = AuditFormat.coord
        for (i, row) in rows.enumerated() {
            let mid = top + 4 + (Double(i) + 0.5) * rowHeight
            out += "<g class=\"box\" data-series=\"\(AuditFormat.escape(row.name))\">"
            out += "<title>\(AuditFormat.escape(row.name))</title>"
            out += SVGKit.text(left - 8, mid + 4, AuditFormat.escape(AuditFormat.shortened(row.name, 34)),
                anchor: "end")
            let sorted = row.values.filter(\.isFinite).sorted()
            if sorted.isEmpty {
                out += SVGKit.text(left + 8, mid + 4, "no defined values", extra: "fill=\"#888888\"")
            } else {
                let q1 = axis.position(BoxPlot.quantile(sorted, 0.25)),
                    q3 = axis.position(BoxPlot.quantile(sorted, 0.75))
                let med = axis.position(BoxPlot.quantile(sorted, 0.5))
                let lo = axis.position(sorted.first!), hi = axis.position(sorted.last!)
                let mean = axis.position(sorted.reduce(0, +) / Double(sorted.count))
                out += SVGKit.line(lo, mid, hi, mid, stroke: row.colour, width: 1.5)
                out += SVGKit.line(lo, mid - 6, lo, mid + 6, stroke: row.colour, width: 1.5)
                out += SVGKit.line(hi, mid - 6, hi, mid + 6, stroke: row.colour, width: 1.5)
                out += "<rect x=\"\(c(Swift.min(q1, q3)))\" y=\"\(c(mid - 9))\" width=\""
                    + "\(c(Swift.max(1, abs(q3 - q1))))\" height=\"18\" fill=\"\(row.colour)\" fill-opacity=\"0.35\""
                    + " stroke=\"\(row.colour)\" stroke-width=\"1.5\"/>"
                out += SVGKit.line(med, mid - 9, med, mid + 9, stroke: row.colour, width: 3)
                out += "<circle cx=\"\(c(mean))\" cy=\"\(c(mid))\" r=\"3.5\" fill=\"#ffffff\""
                    + " stroke=\"#111111\" stroke-width=\"1.2\"/>"
            }
            if let b = row.bound, b.isFinite {
                let x = axis.position(b)
                out += SVGKit.line(x, mid - 13, x, mid + 13, stroke: row.colour, width: 2, dash: "4 3")
            }
            out += SVGKit.text(right + 8, mid + 4, "n=\(sorted.count)"
                + (row.undefined > 0 ? ", \(row.undefined) undef." : ""),
                               size: 11, extra: "fill=\"#555555\"")
            out += "</g>\n"
        }
        out += SVGKit.legend(legendItems, left: left, right: right, top: legendTop)
        return out + "</svg>"
    }
}
