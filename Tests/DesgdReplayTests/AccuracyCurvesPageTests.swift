import DesgdAudit
import Foundation
import Testing

/// The grid figure (`desgd-grid report --html`) as a reader sees it in headless Chromium: every
/// curve drawn, the collapse markers and published values there, the table's rows and a hostile
/// label shown as text, nothing wider than the window.
@Suite struct AccuracyCurvesPageTests {
    static let hostile = "ALIE <img src=x onerror=alert(1)>"

    static func page() -> AccuracyCurvesPage {
        func curve(
            _ slot: Int, _ shape: (Int) -> Double, label: String, collapses: [Int] = [], reference: Double? = nil
        )
            -> AccuracyCurvesPage.Curve
        {
            let points = stride(from: 50, through: 3000, by: 50).map {
                AccuracyCurvesPage.Point(round: $0, accuracy: shape($0))
            }
            let marked = collapses.map { r in points.first { $0.round == r }! }
            return .init(label: label, slot: slot, points: points, collapses: marked, reference: reference)
        }
        let rising: (Int) -> Double = { 0.9 - 0.6 * exp(-Double($0) / 400) }
        let collapsing: (Int) -> Double = { $0 < 1200 ? 0.8 - 0.5 * exp(-Double($0) / 300) : 0.1 }
        let panels = [
            AccuracyCurvesPage.Panel(
                title: "Krum+",
                curves: [
                    curve(0, rising, label: "Non", reference: 0.8833),
                    curve(3, collapsing, label: hostile, collapses: [1200], reference: 0.6907),
                ]),
            AccuracyCurvesPage.Panel(title: "GeoMed+", curves: [curve(0, rising, label: "Non")]),
        ]
        let rows = [["Krum+", "Non", "1", "88.33"], ["Krum+", hostile, "1", "69.07"], ["GeoMed+", "Non", "1", "—"]]
        return AccuracyCurvesPage(
            title: "desgd grid test", lead: ["Two methods."], tableHeaders: ["method", "attack", "seed", "paper"],
            tableRows: rows, panels: panels, referenceLabel: "paper's best accuracy")
    }

    /// The table's rows, the text of the hostile label's cell, and the images on the page.
    static let script = AuditHTMLBrowserTests.script(
        measuring: """
            lines.push('rows=' + document.querySelectorAll('#runs tbody tr').length);
            lines.push('cell=' + document.querySelector('#runs tbody tr:nth-child(2) td').innerText);
            lines.push('images=' + document.querySelectorAll('img').length);
            """)

    @Test(
        .enabled(
            if: AuditHTMLBrowserTests.browser != nil || AuditHTMLBrowserTests.required,
            "needs Debian's chromium (CI=true makes its absence a failure)"))
    func curvesMarkersAndTableAreWhatAReaderSees() throws {
        try #require(AuditHTMLBrowserTests.browser != nil, "chromium is not installed: apt-get install -y chromium")
        let html = Self.page().render()
        #expect(!html.contains("<img"))
        for width in [1100, 700] {
            let lines = try AuditHTMLBrowserTests.measure(html, width: width, script: Self.script)
            #expect(lines.contains { $0.hasPrefix("svg plot-0 paths=2 drawn=2 markers=1 references=2 ") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("svg plot-1 paths=1 drawn=1 markers=0 references=0 ") }, "\(lines)")
            // The label is the cell's text (--dump-dom serializes the measured text with < and > escaped).
            let shown = Self.hostile.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
                of: ">", with: "&gt;")
            #expect(
                lines.contains("rows=3") && lines.contains("cell=\(shown)") && lines.contains("images=0"), "\(lines)")
            for line in lines where line.hasPrefix("svg ") {
                let width = line.split(separator: " ").last.flatMap { Int($0.dropFirst("width=".count)) } ?? -1
                #expect(width > 0 && width <= 1100, "\(line)")
            }
            let scroll = lines.first { $0.hasPrefix("scrollWidth=") }.flatMap { Int($0.dropFirst(12)) }
            let client = lines.first { $0.hasPrefix("clientWidth=") }.flatMap { Int($0.dropFirst(12)) }
            #expect(scroll != nil && client != nil && scroll! <= client!, "width \(width): \(lines)")
        }
    }
}
