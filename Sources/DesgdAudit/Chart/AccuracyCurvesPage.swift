import Foundation

/// A page of accuracy curves, one chart per panel (`desgd-grid report --html`: one panel per
/// method, one curve per attack): the audit's line charts and style, so that a grid's figure reads
/// like an audit page. Every text given is escaped; the page has no script.
///
/// A curve keeps its palette slot from panel to panel (an attack has one colour on the whole
/// page); its collapses are marked as diamonds and a published value, when given, is a dashed
/// line in the curve's colour.
public struct AccuracyCurvesPage: Sendable {
    public struct Point: Sendable, Equatable {
        public var round: Int
        /// Test accuracy in [0, 1].
        public var accuracy: Double

        public init(round: Int, accuracy: Double) { (self.round, self.accuracy) = (round, accuracy) }
    }

    public struct Curve: Sendable {
        public var label: String
        /// The palette slot: the same slot is the same colour in every panel.
        public var slot: Int
        public var points: [Point]
        /// Evaluations that saw a collapse (the accuracy after the drop).
        public var collapses: [Point]
        /// A published value to compare with, in [0, 1] (a dashed line).
        public var reference: Double?
        /// Curves of one slot told apart (seeds of one attack): 0 solid, then dashed and dotted.
        public var variant: Int

        public init(label: String, slot: Int, points: [Point], collapses: [Point] = [], reference: Double? = nil,
                    variant: Int = 0) {
            (self.label, self.slot, self.points, self.collapses, self.reference) = (
                label, slot, points, collapses, reference
            )
            self.variant = variant
        }

        /// The stroke pattern: the slot's own, or one of the variants'.
        var dash: String? {
            let variants = [nil, "8 4", "2 3", "10 3 2 3"]
            return variant == 0 ? ChartPalette.dash(slot) : variants[min(variant, variants.count - 1)]
        }
    }

    public struct Panel: Sendable {
        public var title: String
        public var curves: [Curve]

        public init(title: String, curves: [Curve]) { (self.title, self.curves) = (title, curves) }
    }

    public var title: String
    public var lead: [String]
    public var tableHeaders: [String]
    public var tableRows: [[String]]
    public var panels: [Panel]
    public var referenceLabel: String

    public init(
        title: String, lead: [String], tableHeaders: [String], tableRows: [[String]], panels: [Panel],
        referenceLabel: String = "published value"
    ) {
        (self.title, self.lead, self.tableHeaders, self.tableRows) = (title, lead, tableHeaders, tableRows)
        (self.panels, self.referenceLabel) = (panels, referenceLabel)
    }

    static func e(_ s: String) -> String { AuditFormat.escape(s) }

    public func render() -> String {
        var page = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        page += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        page += "<title>\(Self.e(title))</title>\n<style>\n\(AuditHTML.css)</style>\n</head>\n<body>\n"
        page += "<header>\n<h1>\(Self.e(title))</h1>\n"
        for paragraph in lead { page += "<p class=\"lead\">\(Self.e(paragraph))</p>\n" }
        page += "</header>\n<main>\n"
        if !tableRows.isEmpty {
            page += "<h2>Runs</h2>\n<div class=\"scroll\"><table class=\"numbers\" id=\"runs\">\n<thead><tr>"
            page += tableHeaders.map { "<th>\(Self.e($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
            for row in tableRows {
                page +=
                    "<tr>"
                    + row.enumerated().map { i, cell in
                        i == 0 ? "<th class=\"rule\">\(Self.e(cell))</th>" : "<td>\(Self.e(cell))</td>"
                    }.joined() + "</tr>\n"
            }
            page += "</tbody></table></div>\n"
        }
        page += "<h2>Test accuracy over rounds</h2>\n"
        for (i, panel) in panels.enumerated() { page += figure(panel, id: "plot-\(i)") }
        page += "</main>\n<footer>\(Self.e(title)).</footer>\n</body>\n</html>\n"
        return page
    }

    func figure(_ panel: Panel, id: String) -> String {
        let series = panel.curves.map { c -> LineChart.Series in
            let rounds = c.points.map(\.round)
            let buckets = RoundBuckets(rounds: rounds, limit: AuditHTML.maxPointsPerSeries)
            var s = LineChart.Series(
                name: c.label, colour: ChartPalette.colour(c.slot), dash: c.dash,
                width: 1.8, points: buckets.maxima(rounds: rounds, values: c.points.map { 100 * $0.accuracy }))
            s.markers = c.collapses.map { (x: Double($0.round), y: 100 * $0.accuracy) }
            return s
        }
        let references = panel.curves.compactMap { c in
            c.reference.map {
                LineChart.Reference(
                    value: 100 * $0, colour: ChartPalette.colour(c.slot),
                    label: "\(referenceLabel), \(c.label): \(String(format: "%.2f%%", 100 * $0))")
            }
        }
        var legend: [LegendItem] = []
        if panel.curves.contains(where: { !$0.collapses.isEmpty }) {
            legend.append(LegendItem(swatch: .marker(colour: "#777777"), label: "collapse dated by the audit"))
        }
        if !references.isEmpty {
            legend.append(LegendItem(swatch: .line(colour: "#777777", dash: "7 4", width: 1.5), label: referenceLabel))
        }
        let chart = LineChart(
            id: id, title: panel.title, xLabel: "round", yLabel: "test accuracy (%)", yScale: .linear,
            yFixed: (0, 100), series: series, references: references, extraLegend: legend)
        let collapses = panel.curves.map(\.collapses.count).reduce(0, +)
        let caption =
            "\(panel.title): test accuracy at each evaluation, one line per curve"
            + (references.isEmpty ? "" : "; dashed: the \(referenceLabel) in the curve's colour")
            + (collapses == 0
                ? "." : "; diamonds: the \(collapses) collapse\(collapses == 1 ? "" : "s") the audit dated.")
        return AuditHTML.figure(chart.svg(), Self.e(caption))
    }
}
