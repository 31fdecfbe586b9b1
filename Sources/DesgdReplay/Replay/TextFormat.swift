import DesgdNumerics
import Foundation

/// Number and table formatting shared by the terminal and CSV outputs of replay and audit.
public enum TextFormat {
    /// 4 significant digits, scientific outside [1e-3, 1e5); "—" for undefined, "inf"/"nan" as such.
    public static func number(_ x: Double?) -> String {
        guard let x else { return "—" }
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        if x == 0 { return "0" }
        let a = abs(x)
        return a >= 1e-3 && a < 1e5 ? String(format: "%.4g", x) : String(format: "%.3e", x)
    }

    /// A CSV field: numbers in full precision (shortest round-trip), empty when undefined.
    public static func csv(_ x: Double?) -> String {
        guard let x else { return "" }
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return "\(x)"
    }

    /// A CSV field: control and other non-printing characters escaped (``DisplayText``: a newline is
    /// `\u000a`, so a field is always one line), then quoted when it holds a comma, a quote or a
    /// space at either end (RFC 4180).
    public static func csvField(_ s: String) -> String {
        let t = DisplayText.escaped(s)
        let quote = t.contains(where: { $0 == "," || $0 == "\"" }) || t.first == " " || t.last == " "
        return quote ? "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : t
    }

    /// Text from a file for a terminal line: ``DisplayText/escaped(_:)``.
    public static func shown(_ s: String) -> String { DisplayText.escaped(s) }

    /// Right-aligned columns (the first `left` columns left-aligned), two spaces apart.
    public static func table(_ header: [String], _ rows: [[String]], left: Int = 1) -> String {
        let widths = header.indices.map { c in ([header[c]] + rows.map { c < $0.count ? $0[c] : "" }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            let line = cells.enumerated().map { c, s in
                let pad = String(repeating: " ", count: max(0, widths[c] - s.count))
                return c < left ? s + pad : pad + s
            }.joined(separator: "  ")
            return withoutTrailingWhitespace(line)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// `s` without the white space at its end, in one pass from the end: a regular expression such
    /// as `\s+$` backtracks quadratically over a long run of spaces inside a cell from a file.
    static func withoutTrailingWhitespace(_ s: String) -> String {
        var end = s.endIndex
        while end > s.startIndex, s[s.index(before: end)].isWhitespace { end = s.index(before: end) }
        return String(s[..<end])
    }

    /// A row of statistics: mean p50 p90 p99 max.
    public static func statistics(_ s: SeriesStatistics) -> [String] {
        [s.mean, s.p50, s.p90, s.p99, s.max].map(number)
    }
}
