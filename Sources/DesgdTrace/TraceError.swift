import DesgdNumerics
import DesgdSimulation

/// An error of the trace layer: one line naming the problem (and the round or record it concerns)
/// and what to do. Every kind but ``Kind/mismatch`` is bad input for the front ends (exit code 2).
public struct TraceError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// A wrong option value.
        case usage
        /// The file system refused (missing file, permission, disk full, existing output).
        case io
        /// Not a trace, or a format version this reader does not know.
        case version
        /// Bytes that fail a check: digest, magic, sizes, JSON, vector bounds, chain.
        case corrupted
        /// The file ends before something that must be there (the header).
        case truncated
        /// A round re-simulated from the trace's state (to rebuild vectors it was recorded without,
        /// or to resume it) differs from its record: the trace does not hold what its configuration
        /// computes. A finding, not bad input: the front ends exit 1, as for a failed `--reexecute`.
        case mismatch
    }

    public var kind: Kind
    public var explanation: Explanation
    /// The text for a caller without a command line (the command-line layer renders ``explanation``).
    public var message: String { explanation.description }
    /// Set when re-simulating would need more memory than the limit (a ``Kind/usage`` error: the
    /// front ends add how to raise the limit).
    public var memoryShortfall: MemoryShortfall?

    public init(_ kind: Kind, _ explanation: Explanation) {
        self.kind = kind
        self.explanation = explanation
    }

    /// A usage error for a run that cannot be set up (`context`: what the message starts with),
    /// keeping a memory shortfall the simulation reported.
    public static func setup(_ context: Explanation, _ error: SimulationError) -> TraceError {
        var e = TraceError(.usage, context + error.explanation)
        e.memoryShortfall = error.memoryShortfall
        return e
    }

    public static func usage(_ m: Explanation) -> TraceError { TraceError(.usage, m) }
    public static func io(_ m: Explanation) -> TraceError { TraceError(.io, m) }
    public static func corrupted(_ m: Explanation) -> TraceError { TraceError(.corrupted, m) }

    public var description: String { message }
}
