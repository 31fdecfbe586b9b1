import DesgdNumerics

/// The one syntax for naming a component with parameters on the command line and in traces:
///
///     name[:key=value[,key=value…]]
///
/// for example `krum:q=n-f-2`, `trmean`, `geomed:nu=0.1,iters=3`, `bucketing:s=2`, `alie:z=1`.
/// A chain of pre-aggregators is several specs separated by `+` (`--pre clip:c=2+nnm`).
/// Values are numbers, words, or integer expressions over `n` (number of inputs) and `f`
/// (declared Byzantine count) with `+ - * /` and parentheses (``SpecExpression``).
///
/// Parsing is purely syntactic; each catalogue (aggregators, pre-aggregators, attacks) checks
/// names and parameters against its own table and reports unknown ones. Spec strings also come
/// from trace headers (traces/FORMAT.md §5.1), written by the party being audited: parsing is
/// bounded by ``SpecLimits`` (length, components, expression length and nesting) and never recurses
/// deeper than ``SpecLimits/expressionDepth``.
public struct ComponentSpec: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// Parameters in the order written.
    public var parameters: [(key: String, value: String)]

    public init(name: String, parameters: [(key: String, value: String)] = []) {
        self.name = name
        self.parameters = parameters
    }

    public static func == (a: ComponentSpec, b: ComponentSpec) -> Bool {
        a.name == b.name && a.parameters.map { "\($0.key)=\($0.value)" } == b.parameters.map { "\($0.key)=\($0.value)" }
    }

    /// The canonical text, e.g. `krum:q=n-f-2`.
    public var description: String {
        parameters.isEmpty ? name : name + ":" + parameters.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Parses `name[:key=value,…]`. Names and keys are lower-cased; whitespace is not allowed.
    public static func parse(_ text: String) throws(AggregationError) -> ComponentSpec {
        try SpecLimits.checkLength(text)
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { throw AggregationError("empty component spec") }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0]).lowercased()
        let shown = DisplayText.quoted(text)
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw AggregationError("'\(shown)': a spec is name[:key=value,...], e.g. krum:q=n-f-2")
        }
        var params: [(key: String, value: String)] = []
        if parts.count == 2 {
            for item in parts[1].split(separator: ",", omittingEmptySubsequences: false) {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                    let quoted = DisplayText.quoted(String(item))
                    throw AggregationError("'\(shown)': parameter '\(quoted)' is not key=value")
                }
                let key = String(kv[0]).lowercased()
                if params.contains(where: { $0.key == key }) {
                    throw AggregationError("'\(shown)': parameter '\(DisplayText.quoted(key))' is given twice")
                }
                params.append((key, String(kv[1])))
            }
        }
        return ComponentSpec(name: name, parameters: params)
    }

    /// Parses a `+`-separated chain (empty text or `none` gives an empty chain). A `+` inside a
    /// parameter value belongs to its expression (`mkrum:m=2*f+1`) when what follows it starts
    /// like an operand — a digit, `(`, `-`, or a lone `n`/`f` — rather than a component name.
    public static func parseChain(_ text: String) throws(AggregationError) -> [ComponentSpec] {
        try SpecLimits.checkLength(text)
        let t = text.trimmingSpaces
        if t.isEmpty || t.lowercased() == "none" { return [] }
        var parts: [String] = []
        for piece in t.split(separator: "+", omittingEmptySubsequences: false) {
            if let last = parts.last, last.contains("="), continuesExpression(piece) {
                parts[parts.count - 1] = last + "+" + piece
            } else {
                parts.append(String(piece))
                guard parts.count <= SpecLimits.components else {
                    throw AggregationError("'\(DisplayText.quoted(text))': a chain has at most "
                        + "\(SpecLimits.components) components")
                }
            }
        }
        var out: [ComponentSpec] = []
        for part in parts { out.append(try parse(part)) }
        return out
    }

    private static func continuesExpression(_ piece: Substring) -> Bool {
        guard let first = piece.first?.lowercased().first else { return false }
        if first.isNumber || first == "(" || first == "-" { return true }
        guard first == "n" || first == "f" else { return false }
        guard let next = piece.dropFirst().first else { return true }
        return "+-*/),".contains(next)
    }

    /// The raw value of parameter `key`, if given.
    public func value(_ key: String) -> String? {
        parameters.first { $0.key == key }?.value
    }

    /// Throws when a parameter is not among `allowed`, naming the allowed ones.
    public func checkKeys(_ allowed: [String]) throws(AggregationError) {
        for p in parameters where !allowed.contains(p.key) {
            let list = allowed.isEmpty ? "it takes no parameters" : "its parameters are "
                + allowed.joined(separator: ", ")
            throw AggregationError("'\(name)' has no parameter '\(DisplayText.quoted(p.key))': \(list)")
        }
    }

    /// Parameter `key` as a Double (default when absent).
    public func double(_ key: String, default def: Double) throws(AggregationError) -> Double {
        guard let v = value(key) else { return def }
        guard let x = Double(v) else {
            throw AggregationError("'\(name)': \(key)=\(DisplayText.quoted(v)) is not a number")
        }
        return x
    }

    /// Parameter `key` as an integer expression over n and f (default when absent).
    public func expression(_ key: String, default def: String) throws(AggregationError) -> SpecExpression {
        try SpecExpression.parse(value(key) ?? def, context: "'\(name)': \(DisplayText.quoted(key))")
    }
}

/// An integer expression over `n` and `f`: integers, `n`, `f`, `+ - * /` (integer division,
/// truncating; a division by 0 gives 0) and parentheses, e.g. `n-f-2` or `2*f+1`. Evaluated
/// when n and f are known: n is the number of inputs of the rule (after pre-aggregation, e.g.
/// ⌈n/s⌉ buckets) and f the declared number of Byzantine inputs, so `krum:q=n-f-1` with 6 + 4
/// senders and f = 4 is q = 5.
///
/// Hostile text cannot make it trap: a literal that does not fit in 64 bits is a parse error,
/// and an expression whose value could leave ±``valueBound`` for some n, f in
/// 0...``inputBound`` (`q=9223372036854775807+1`, `n*n*n`) is refused when parsed, so that every
/// step of ``evaluate(n:f:)`` is exact for every configuration a run can have and no rule sees
/// a count that overflows its own arithmetic (`2*b`, `n-f-1`).
public indirect enum SpecExpression: Sendable, Equatable, CustomStringConvertible {
    case constant(Int)
    case n, f
    case binary(Character, SpecExpression, SpecExpression)
    case negate(SpecExpression)

    /// The largest n and f an expression is checked for (runs have at most 2 000 workers).
    public static let inputBound = 1 << 16
    /// The largest magnitude of an expression's value (and of every intermediate value).
    public static let valueBound = 1 << 40

    /// The value at (n, f). Every step is overflow-checked and clamped to ±``valueBound``; for n,
    /// f in 0...``inputBound`` (what a parsed expression was checked for) no clamp ever applies.
    public func evaluate(n: Int, f: Int) -> Int {
        let bound = SpecExpression.valueBound
        func clamped(_ v: Int) -> Int { min(max(v, -bound), bound) }
        func checked(_ r: (partialValue: Int, overflow: Bool), sign: Bool) -> Int {
            r.overflow ? (sign ? -bound : bound) : clamped(r.partialValue)
        }
        switch self {
        case .constant(let c): return clamped(c)
        case .n: return clamped(n)
        case .f: return clamped(f)
        case .negate(let e): return -e.evaluate(n: n, f: f)
        case .binary(let op, let a, let b):
            let x = a.evaluate(n: n, f: f), y = b.evaluate(n: n, f: f)
            switch op {
            case "+": return checked(x.addingReportingOverflow(y), sign: x < 0)
            case "-": return checked(x.subtractingReportingOverflow(y), sign: x < 0)
            case "*": return checked(x.multipliedReportingOverflow(by: y), sign: (x < 0) != (y < 0))
            default: return y == 0 ? 0 : checked(x.dividedReportingOverflow(by: y), sign: (x < 0) != (y < 0))
            }
        }
    }

    /// A bound on |value| over n, f in 0...``inputBound`` (and on every intermediate value), or
    /// nil when it would exceed ``valueBound``; every step is overflow-checked.
    var magnitudeBound: Int? {
        func within(_ r: (partialValue: Int, overflow: Bool)) -> Int? {
            r.overflow || r.partialValue > SpecExpression.valueBound ? nil : r.partialValue
        }
        switch self {
        case .constant(let c): return c.magnitude <= UInt(SpecExpression.valueBound) ? abs(c) : nil
        case .n, .f: return SpecExpression.inputBound
        case .negate(let e): return e.magnitudeBound
        case .binary(let op, let a, let b):
            guard let x = a.magnitudeBound, let y = b.magnitudeBound else { return nil }
            switch op {
            case "+", "-": return within(x.addingReportingOverflow(y))
            case "*": return within(x.multipliedReportingOverflow(by: y))
            default: return x
            }
        }
    }

    public var description: String {
        switch self {
        case .constant(let c): return String(c)
        case .n: return "n"
        case .f: return "f"
        case .negate(let e): return "-(\(e))"
        case .binary(let op, let a, let b):
            func wrap(_ e: SpecExpression) -> String {
                if case .binary(let o, _, _) = e, (o == "+" || o == "-") && (op == "*" || op == "/") { return "(\(e))" }
                return e.description
            }
            let rhs: String
            if case .binary(let o, _, _) = b, op == "-" || op == "/" || ((o == "+" || o == "-") && op == "*") {
                rhs = "(\(b))"
            } else { rhs = wrap(b) }
            return wrap(a) + String(op) + rhs
        }
    }

    /// Parses an expression; `context` prefixes error messages.
    /// At most ``SpecLimits/expressionLength`` characters and ``SpecLimits/expressionDepth`` nested
    /// parentheses and unary minus signs: the parser recurses once per level, and every later walk
    /// of the tree (evaluation, bounds, description) is bounded by its size.
    public static func parse(_ text: String, context: String) throws(AggregationError) -> SpecExpression {
        let shown = DisplayText.quoted(text)
        guard text.utf8.count <= SpecLimits.expressionLength else {
            throw AggregationError("\(context)=\(shown) is \(text.utf8.count) characters long: "
                + "an expression has at most \(SpecLimits.expressionLength)")
        }
        var parser = ExpressionParser(chars: Array(text.lowercased()), context: context, text: shown)
        let e = try parser.sum()
        guard parser.pos == parser.chars.count else { throw parser.error() }
        guard e.magnitudeBound != nil else {
            throw AggregationError("\(context)=\(shown) must stay within -\(valueBound)...\(valueBound) for n and f in"
                + " 0...\(inputBound): use smaller numbers")
        }
        return e
    }

    private struct ExpressionParser {
        let chars: [Character]
        let context: String
        let text: String
        var pos = 0
        var depth = 0

        func error() -> AggregationError {
            AggregationError("\(context)=\(text) is not an integer expression over n and f (e.g. n-f-2)")
        }
        mutating func sum() throws(AggregationError) -> SpecExpression {
            var e = try product()
            while pos < chars.count, chars[pos] == "+" || chars[pos] == "-" {
                let op = chars[pos]; pos += 1
                e = .binary(op, e, try product())
            }
            return e
        }
        mutating func product() throws(AggregationError) -> SpecExpression {
            var e = try atom()
            while pos < chars.count, chars[pos] == "*" || chars[pos] == "/" {
                let op = chars[pos]; pos += 1
                e = .binary(op, e, try atom())
            }
            return e
        }
        mutating func atom() throws(AggregationError) -> SpecExpression {
            guard pos < chars.count else { throw error() }
            let c = chars[pos]
            if c == "n" { pos += 1; return .n }
            if c == "f" { pos += 1; return .f }
            if c == "-" || c == "(" {
                // One level of nesting: the recursion below is at most expressionDepth deep.
                guard depth < SpecLimits.expressionDepth else {
                    throw AggregationError("\(context)=\(text) nests more than \(SpecLimits.expressionDepth) "
                        + "parentheses or minus signs")
                }
                depth += 1
                pos += 1
                let e: SpecExpression
                if c == "-" {
                    e = .negate(try atom())
                } else {
                    e = try sum()
                    guard pos < chars.count, chars[pos] == ")" else { throw error() }
                    pos += 1
                }
                depth -= 1
                return e
            }
            var digits = ""
            while pos < chars.count, chars[pos].isASCII, chars[pos].isNumber { digits.append(chars[pos]); pos += 1 }
            guard !digits.isEmpty else { throw error() }
            guard let v = Int(digits) else {
                throw AggregationError("\(context)=\(text): \(digits) does not fit in a 64-bit integer (values must"
                    + " stay within -\(SpecExpression.valueBound)...\(SpecExpression.valueBound))")
            }
            return .constant(v)
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
