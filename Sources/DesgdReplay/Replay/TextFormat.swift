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
        let widths = header.indices.map { c in
            ([header[c]] + rows.map { c < $0.count ? $0[c] : "" }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            let line = cells.enumerated().map { c, s in
                let pad = String(repeating: " ", count: max(0, widths[c] - s.count))
                return c < left ? s + pad : pad + s
            }.joined(separator: "  ")
            return withoutTrailingWhitespace(line)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// The width every text table and line of replay and audit fits in (docs/commands.md): a
    /// 120-column terminal.
    public static let lineWidth = 120

    /// A table too wide for `width` split into panels, each repeating the first `keep` columns
    /// (e.g. round and class, or the rule) followed by as many of the other columns as fit;
    /// `units` groups those others into runs that stay together (e.g. "gap mean" with its "p50",
    /// "p90"; default: each column alone). Panels are separated by a blank line. A table that fits
    /// is ``table(_:_:left:)`` unchanged.
    public static func panels(_ header: [String], _ rows: [[String]], left: Int = 1, keep: Int = 1, units: [Int]? = nil,
                              width: Int = lineWidth) -> String {
        // A column's width in characters plus its cells' most combining marks (λ̂ is two scalars):
        // the panel's lines then fit in `width` counted either way.
        let widths = header.indices.map { c in
            let cells = [header[c]] + rows.map { c < $0.count ? $0[c] : "" }
            return (cells.map(\.count).max() ?? 0) + (cells.map { length($0) - $0.count }.max() ?? 0)
        }
        func span(_ columns: [Int]) -> Int { columns.map { widths[$0] }.reduce(0, +) + 2 * max(0, columns.count - 1) }
        guard span(Array(header.indices)) > width, header.count > keep else { return table(header, rows, left: left) }
        var groups: [[Int]] = []
        var c = keep
        for size in units ?? Array(repeating: 1, count: header.count - keep) where c < header.count {
            groups.append(Array(c..<min(header.count, c + size)))
            c += size
        }
        if c < header.count { groups += (c..<header.count).map { [$0] } }
        let kept = Array(0..<keep)
        var panels: [[Int]] = []
        var current: [Int] = []
        for g in groups {
            if !current.isEmpty && span(kept + current + g) > width {
                panels.append(current)
                current = []
            }
            current += g
        }
        if !current.isEmpty { panels.append(current) }
        return panels.map { columns in
            let all = kept + columns
            return table(all.map { header[$0] }, rows.map { r in all.map { $0 < r.count ? r[$0] : "" } }, left: left)
        }.joined(separator: "\n\n")
    }

    /// The length of a line as the width checks count it: Unicode scalars, at least its characters
    /// (`λ̂` counts 2).
    public static func length(_ s: some StringProtocol) -> Int { s.unicodeScalars.count }

    /// Text from a file for ``wrap(_:width:indent:keepWhole:)``, escaped (``DisplayText``): never
    /// at the start of a wrapped line (it stays with the word before it), so that a hostile string
    /// cannot be placed where a verdict line of the report starts; broken only when longer than a
    /// line, at its spaces, each further piece on a line of its own two columns further in.
    public static func atom(_ s: String) -> String {
        "\u{1}" + DisplayText.escaped(s).replacingOccurrences(of: " ", with: "\u{0}")
    }

    /// `text` broken at spaces into lines of at most `width` scalars (``length(_:)``) (a word longer
    /// than that stays whole), every line after the first starting with `indent`; line breaks in
    /// `text` are kept. ``atom(_:)`` pieces and every occurrence of a `keepWhole` string (text from
    /// a file inside a sentence) never start a line, and are broken only when longer than a line
    /// (at their spaces, further pieces on lines of their own, indented two more).
    public static func wrap(_ text: String, width: Int = lineWidth, indent: String = "",
        keepWhole: [String] = []) -> String {
        var text = text
        // Only text with a space can be broken or start a line with words of its choosing.
        for s in keepWhole where s.contains(" ") { text = text.replacingOccurrences(of: s, with: atom(s)) }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { paragraph in
            // Words; an atom joins the last word before it, with the spaces between kept.
            var words: [String] = []
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false) {
                guard word.first == "\u{1}" else { words.append(String(word)); continue }
                var spaces = 1
                while let last = words.last, last.isEmpty, words.count > 1 { words.removeLast(); spaces += 1 }
                let glued = String(repeating: "\u{0}", count: spaces) + word.dropFirst()
                if let last = words.popLast() { words.append(last + glued) } else {
                    words.append(String(word.dropFirst()))
                }
            }
            var lines: [String] = [], line = "", started = false
            for whole in words {
                // A word with an atom that does not fit where it would start is cut at the atom's
                // spaces; each piece after the first starts a line of its own, two further in than
                // `indent`, where no line of the report starts.
                let start = !started ? 0
                    : length(line) + 1 + length(whole) > width && line.count > indent.count ? length(indent)
                    : length(line) + 1
                let pieces = start + length(whole) > width && whole.contains("\u{0}")
                    ? cut(whole, first: width - start, rest: width - length(indent) - 2) : [whole]
                let word = pieces[0]
                defer {
                    for piece in pieces.dropFirst() {
                        lines.append(line)
                        line = indent + "  " + piece
                    }
                }
                if !started {
                    line = String(word)
                    started = true
                } else if length(line) + 1 + length(word) > width && line.count > indent.count {
                    lines.append(line)
                    line = indent + word
                } else {
                    line += " " + word
                }
            }
            lines.append(line)
            return lines.map(withoutTrailingWhitespace).joined(separator: "\n")
        }.joined(separator: "\n").replacingOccurrences(of: "\u{1}", with: "")
            .replacingOccurrences(of: "\u{0}", with: " ")
    }

    /// `word` cut at its `\u{0}` (an atom's spaces) into pieces of at most `first`, then `rest`,
    /// scalars; a part longer than that stays whole.
    static func cut(_ word: String, first: Int, rest: Int) -> [String] {
        var pieces: [String] = []
        for part in word.split(separator: "\u{0}", omittingEmptySubsequences: false) {
            let limit = pieces.count == 1 ? first : rest
            if let last = pieces.last, length(last) + 1 + length(part) <= limit {
                pieces[pieces.count - 1] = last + "\u{0}" + part
            } else {
                pieces.append(String(part))
            }
        }
        return pieces
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
