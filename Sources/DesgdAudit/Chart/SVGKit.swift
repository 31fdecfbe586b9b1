import Foundation

// Small inline-SVG charts for the HTML audit report: line charts over rounds and a box plot per
// rule. Everything is computed from the data with fixed rules (no clock, no dictionary order, no
// locale), so the same data gives the same bytes.

/// SVG building blocks shared by the charts.
enum SVGKit {
    static let width = 960.0
    static let font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

    /// `text` lowered and smaller, as a subscript (SVG markup).
    static func sub(_ text: String) -> String {
        "<tspan dy=\"3\" font-size=\"9\">\(AuditFormat.escape(text))</tspan>"
    }

    /// A rough width of `text` at 12 px: wide enough that legend entries never overlap.
    static func textWidth(_ text: String, size: Double = 12) -> Double { Double(text.count) * size * 0.6 }

    static func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", size: Double = 12,
                     extra: String = "") -> String {
        "<text x=\"\(AuditFormat.coord(x))\" y=\"\(AuditFormat.coord(y))\" text-anchor=\"\(anchor)\" font-size=\""
            + "\(AuditFormat.coord(size))\"\(extra.isEmpty ? "" : " " + extra)>\(content)</text>"
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
                     dash: String? = nil) -> String {
        "<line x1=\"\(AuditFormat.coord(x1))\" y1=\"\(AuditFormat.coord(y1))\" x2=\"\(AuditFormat.coord(x2))\" y2=\""
            + "\(AuditFormat.coord(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(AuditFormat.coord(width))\""
            + "\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
    }

    static func open(id: String, title: String, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\" class=\"chart\" viewBox=\"0 0 "
            + "\(AuditFormat.coord(width)) \(AuditFormat.coord(height))\" width=\"\(AuditFormat.coord(width))\""
            + " height=\"\(AuditFormat.coord(height))\" role=\"img\" aria-label=\""
            + "\(AuditFormat.escape(title))\" \(font)>\n"
            + "<title>\(AuditFormat.escape(title))</title>\n"
            + "<rect x=\"0\" y=\"0\" width=\"\(AuditFormat.coord(width))\" height=\""
                + "\(AuditFormat.coord(height))\" fill=\"#ffffff\"/>\n"
            + text(width / 2, 22, AuditFormat.escape(title), anchor: "middle", size: 15,
                extra: "font-weight=\"bold\" class=\"chart-title\"") + "\n"
    }

    /// The height a legend of `items` takes when laid out in rows from `left` to `right`.
    static func legendHeight(_ items: [LegendItem], left: Double, right: Double) -> Double {
        legendLayout(items, left: left, right: right).height
    }

    private static func legendLayout(_ items: [LegendItem], left: Double, right: Double)
        -> (positions: [(Double, Double)], height: Double) {
        var x = left
        var row = 0
        var positions: [(Double, Double)] = []
        for item in items {
            let w = 30 + textWidth(item.label) + 18
            if x > left, x + w > right { x = left; row += 1 }
            positions.append((x, Double(row) * 18))
            x += w
        }
        return (positions, items.isEmpty ? 0 : Double(row + 1) * 18)
    }

    /// The legend's SVG, its first row's text baseline at `top + 12`.
    static func legend(_ items: [LegendItem], left: Double, right: Double, top: Double) -> String {
        let layout = legendLayout(items, left: left, right: right)
        var out = "<g class=\"legend\">\n"
        for (item, (x, dy)) in zip(items, layout.positions) {
            let y = top + dy + 8
            switch item.swatch {
            case let .line(colour, dash, width):
                out += line(x, y, x + 24, y, stroke: colour, width: width, dash: dash)
            case let .marker(colour):
                out += marker(x + 12, y, colour: colour, cls: "legend-flag")
            case let .box(colour):
                out += "<rect x=\"\(AuditFormat.coord(x + 4))\" y=\"\(AuditFormat.coord(y - 5))\" width=\"16\""
                    + " height=\"10\" fill=\"\(colour)\" fill-opacity=\"0.35\" stroke=\"\(colour)\"/>"
            case .dot:
                out += "<circle cx=\"\(AuditFormat.coord(x + 12))\" cy=\"\(AuditFormat.coord(y))\" r=\"3.5\""
                    + " fill=\"#ffffff\" stroke=\"#111111\" stroke-width=\"1.2\"/>"
            }
            out += text(x + 30, y + 4, AuditFormat.escape(item.label)) + "\n"
        }
        return out + "</g>\n"
    }

    /// The mark of a flagged point: a diamond in the rule's colour with a dark outline.
    static func marker(_ x: Double, _ y: Double, colour: String, cls: String = "flag") -> String {
        let c = AuditFormat.coord
        return "<path class=\"\(cls)\" d=\"M\(c(x)) \(c(y - 5))L\(c(x + 5)) \(c(y))L\(c(x)) \(c(y + 5))L\(c(x - 5)) "
            + "\(c(y))Z\" fill=\"\(colour)\" stroke=\"#111111\" stroke-width=\"1.2\"/>"
    }

    /// Grid, ticks and tick labels of a vertical (value) axis at the left of a plot area.
    static func valueAxis(_ axis: ChartAxis, left: Double, right: Double) -> String {
        var out = "<g class=\"y-axis\">\n"
        let (major, minor) = axis.ticks()
        for v in minor {
            let y = axis.position(v)
            out += line(left - 3, y, left, y, stroke: "#555555") + line(left, y, right, y, stroke: "#f0f0f0") + "\n"
        }
        for (v, label) in major {
            let y = axis.position(v)
            out += line(left - 6, y, left, y, stroke: "#555555") + line(left, y, right, y, stroke: "#dddddd") + "\n"
            out += text(left - 9, y + 4, label, anchor: "end", size: 11) + "\n"
        }
        if axis.hasZeroBand {
            let y = axis.start + (axis.end >= axis.start ? 1 : -1) * ChartAxis.zeroBandWidth / 2
            out += line(left, y, right, y, stroke: "#bbbbbb", dash: "2 3") + "\n"
        }
        return out + "</g>\n"
    }

    /// Ticks and labels of a horizontal axis along the bottom of a plot area.
    static func horizontalAxis(_ axis: ChartAxis, bottom: Double, top: Double, integers: Bool) -> String {
        var out = "<g class=\"x-axis\">\n"
        let (major, minor) = axis.ticks(integers: integers)
        for v in minor {
            let x = axis.position(v)
            out += line(x, bottom, x, bottom + 3, stroke: "#555555") + "\n"
        }
        for (v, label) in major {
            let x = axis.position(v)
            out += line(x, top, x, bottom, stroke: "#eeeeee") + line(x, bottom, x, bottom + 6, stroke: "#555555") + "\n"
            out += text(x, bottom + 19, label, anchor: "middle", size: 11) + "\n"
        }
        if axis.hasZeroBand {
            let x = axis.start + ChartAxis.zeroBandWidth / 2
            out += line(x, top, x, bottom, stroke: "#bbbbbb", dash: "2 3") + "\n"
        }
        return out + "</g>\n"
    }
}

/// The report's fixed palette: colour i belongs to rule column i (the recorded rule is column 0).
/// Twenty distinguishable colours; beyond them the colours repeat with a dash pattern.
enum ChartPalette {
    static let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#e7969c", "#7b4173", "#3182bd",
        "#e6550d", "#31a354", "#756bb1", "#636363",
    ]
    static func colour(_ index: Int) -> String { colours[index % colours.count] }
    /// `nil` for the first twenty columns, then a dash pattern so repeated colours stay apart.
    static func dash(_ index: Int) -> String? { index < colours.count ? nil : "2 3" }
}

/// An entry of a chart legend: a swatch and a label.
struct LegendItem {
    enum Swatch {
        case line(colour: String, dash: String?, width: Double)
        case marker(colour: String)
        case box(colour: String)
        case dot
    }
    var swatch: Swatch
    var label: String
}
