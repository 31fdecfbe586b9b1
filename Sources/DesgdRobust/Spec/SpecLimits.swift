import DesgdNumerics

/// Bounds on spec text (``ComponentSpec``, ``SpecExpression``), which a trace header carries from
/// the party being audited (traces/FORMAT.md §5.1) as well as the command line.
///
/// The longest spec of the catalogue with every parameter written out is under 100 characters and
/// a useful expression under 20 (`n-f-2`, `2*f+1`), so the bounds leave ample room while making
/// every parse linear and its recursion shallow: an expression of at most 256 characters has at
/// most 256 nodes, so evaluating or printing it never recurses deeper than that, and its parser
/// recurses three frames per nesting level, at most 64.
public enum SpecLimits {
    /// Characters (UTF-8 bytes) of a spec or a `+` chain of specs.
    public static let specLength = 1024
    /// Components of a `+` chain (pre-aggregators and rule).
    public static let components = 16
    /// Characters (UTF-8 bytes) of one parameter's expression.
    public static let expressionLength = 256
    /// Nested parentheses and unary minus signs in an expression.
    public static let expressionDepth = 64

    /// The limits in a sentence, for the `--help` of options that take specs.
    public static let summary = "a spec or + chain at most \(specLength) characters and \(components) components; "
        + "an integer expression at most \(expressionLength) characters, "
        + "\(expressionDepth) nested parentheses or minus signs"

    /// Throws when `text` is longer than ``specLength``.
    static func checkLength(_ text: String) throws(AggregationError) {
        guard text.utf8.count <= specLength else {
            throw AggregationError("'\(DisplayText.quoted(text, limit: 40))' is \(text.utf8.count) characters long: "
                + "a spec has at most \(specLength)")
        }
    }
}
