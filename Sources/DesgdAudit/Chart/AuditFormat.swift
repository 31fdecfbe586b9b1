import DesgdNumerics
import Foundation

/// Text and number formatting of the HTML report and its charts.
enum AuditFormat {
    /// Four significant digits (`%.4g`: `0.1235`, `12.35`, `1.235e+05`); `—` for undefined.
    static func sig4(_ x: Double?) -> String {
        guard let x else { return "—" }
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "−∞" : "∞" }
        if x == 0 { return "0" }
        return String(format: "%.4g", x)
    }

    /// A percentage with one decimal (`83.4%`).
    static func percent(_ x: Double) -> String {
        x.isFinite ? String(format: "%.1f%%", 100 * x) : sig4(x)
    }

    /// An SVG coordinate: one decimal, computed with integers (`12.5`, `-3`, `40`).
    static func coord(_ x: Double) -> String {
        let clamped = Swift.max(-1e7, Swift.min(1e7, x.isFinite ? x : 0))
        let tenths = Int((clamped * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        let a = abs(tenths)
        return a % 10 == 0 ? "\(sign)\(a / 10)" : "\(sign)\(a / 10).\(a % 10)"
    }

    /// `&`, `<`, `>`, `"` and `'` as character references: safe in text and in quoted attributes;
    /// control and other non-printing characters (a newline, `ESC`, U+202E) as visible `\u001b`
    /// escapes (``DisplayText``), so that a string from a trace shows as what it holds.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in DisplayText.escaped(s).unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `s` shortened to `limit` characters with a trailing ellipsis.
    static func shortened(_ s: String, _ limit: Int) -> String {
        s.count <= limit ? s : String(s.prefix(Swift.max(1, limit - 1))) + "…"
    }
}
