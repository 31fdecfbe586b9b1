/// Text that came from a file (a trace's header, a grid spec, a data set's path), made safe to show.
///
/// A trace comes from the party being audited and its digests are unkeyed (traces/FORMAT.md §6):
/// every string in it may hold a newline that forges a report line, an `ESC[8m` that hides the
/// next one on a terminal, or a U+202E that reverses it. ``escaped(_:)`` keeps ordinary printable
/// text (any script, emoji) and writes every control, format, separator, private-use, unassigned
/// or surrogate code point (and every space but U+0020) as a visible `\u001b`-style escape. Every
/// output of text from a file (terminal, CSV, HTML, error messages) goes through it; JSON is written
/// by the encoder, which escapes control characters itself.
public enum DisplayText {
    /// `text` with every non-printing code point as `\uXXXX` (`\u{XXXXX}` above U+FFFF).
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { !isPrintable($0) }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isPrintable(scalar) {
                out.append(scalar)
            } else {
                out.append(contentsOf: code(scalar).unicodeScalars)
            }
        }
        return String(out)
    }

    /// ``escaped(_:)`` cut to at most `limit` characters of the original (with `…` when cut), for
    /// messages that quote a string of unbounded length.
    public static func quoted(_ text: String, limit: Int = 80) -> String {
        let cut = text.unicodeScalars.count > limit
        let head = cut ? String(String.UnicodeScalarView(text.unicodeScalars.prefix(max(1, limit)))) : text
        return escaped(head) + (cut ? "…" : "")
    }

    /// Text of several lines with each line ``escaped(_:)``: the newlines kept, every other
    /// non-printing character shown. What a command writes to a terminal or a CSV file passes
    /// through it last, as a net under the escaping of each field.
    public static func escapedLines(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 != "\n" && !isPrintable($0) }) else { return text }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.map { escaped(String($0)) }.joined(separator: "\n")
    }

    /// JSON text from an encoder with every non-printing code point but the newline written as a
    /// JSON escape (`\u202e`; a surrogate pair above U+FFFF): the encoder escapes control characters
    /// but leaves format characters such as U+202E raw, and outside strings its output is ASCII, so
    /// the result is the same JSON value.
    public static func jsonEscaped(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { $0 != "\n" && !isPrintable($0) }) else { return json }
        var out = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            if scalar == "\n" || isPrintable(scalar) {
                out.append(scalar)
            } else {
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
                }
            }
        }
        return String(out)
    }

    /// Letters, marks, numbers, punctuation, symbols and the plain space.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value >= 0x20 && scalar.value < 0x7F { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
             .spaceSeparator:
            return false
        default:
            return true
        }
    }

    static func code(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16)
        if scalar.value <= 0xFFFF { return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex }
        return "\\u{" + hex + "}"
    }
}
