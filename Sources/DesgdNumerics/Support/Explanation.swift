/// The text of an error whose settings are values: written once where the error is found, rendered
/// by whoever reports it, each ``Setting`` named the reporter's way.
///
/// The command-line layer renders settings as options (`--agg: unknown rule 'x'`), a library caller
/// reads ``description`` (`the aggregation rule: unknown rule 'x'`); no library writes a front
/// end's spelling and no front end rewrites a library's string. Everything else interpolated is
/// text as `String(describing:)` makes it.
public struct Explanation: Sendable, Equatable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public enum Part: Sendable, Equatable {
        case text(String)
        case setting(Setting)
    }

    public private(set) var parts: [Part]

    public init(_ text: String) { parts = text.isEmpty ? [] : [.text(text)] }

    public init(stringLiteral value: String) { self.init(value) }

    public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    /// The text with each setting named by `name`.
    public func rendered(naming name: (Setting) -> String) -> String {
        parts.map { part in
            switch part {
            case .text(let s): s
            case .setting(let setting): name(setting)
            }
        }.joined()
    }

    /// The text for a caller without a command line: settings in ``Setting/words``.
    public var description: String { rendered { $0.words } }

    /// The settings the text names, in order.
    public var settings: [Setting] {
        parts.compactMap { if case .setting(let s) = $0 { s } else { nil } }
    }

    public static func + (lhs: Explanation, rhs: Explanation) -> Explanation {
        var e = lhs
        e.parts.append(rhs.parts)
        return e
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) { parts.appendText(literal) }

        public mutating func appendInterpolation(_ setting: Setting) { parts.append(.setting(setting)) }

        public mutating func appendInterpolation(_ explanation: Explanation) { parts.append(explanation.parts) }

        public mutating func appendInterpolation<T>(_ value: T) { appendLiteral(String(describing: value)) }
    }
}

extension [Explanation.Part] {
    /// Appends text, joined to a text before it: equal texts have equal parts however they were built.
    mutating func appendText(_ text: String) {
        guard !text.isEmpty else { return }
        if case .text(let before) = last { self[count - 1] = .text(before + text) } else { append(.text(text)) }
    }

    mutating func append(_ parts: [Explanation.Part]) {
        for part in parts {
            switch part {
            case .text(let t): appendText(t)
            case .setting: append(part)
            }
        }
    }
}
