import DesgdNumerics

/// Everything an aggregation rule may look at in one call: the round's messages, the declared
/// number of Byzantine senders, and where its randomness comes from.
public struct AggregationContext: Sendable {
    /// The received messages, one row each (n × d).
    public var messages: Matrix
    /// The declared number of Byzantine senders f (what the rule is told, not the truth).
    public var f: Int
    /// Seed, round and class that key the rule's random streams
    /// (`RandomStream(seed:purpose: .aggregator / .bucketing, round:, class:)`).
    public var seed: UInt64
    public var round: Int
    public var classIndex: Int
    /// Numeric backend for any matrix product the rule needs (e.g. a Gram matrix).
    public var backend: NumericBackend
    /// Threads for rules that split their work over independent columns (coordinate-wise rules).
    /// Never changes a result: the decomposition into pieces is fixed, only the scheduling varies.
    public var executor: ParallelExecutor

    public init(messages: Matrix, f: Int, seed: UInt64 = 0, round: Int = 0, classIndex: Int = 0,
                backend: NumericBackend = .openblas, executor: ParallelExecutor = ParallelExecutor(threads: 1)) {
        self.messages = messages
        self.f = f
        self.seed = seed
        self.round = round
        self.classIndex = classIndex
        self.backend = backend
        self.executor = executor
    }

    /// The same round and keys with other messages and declared f (what a pre-aggregator hands on).
    public func replacing(messages: Matrix, f: Int) -> AggregationContext {
        var c = self
        c.messages = messages
        c.f = f
        return c
    }

    public var n: Int { messages.rows }
    public var d: Int { messages.columns }
}

/// What a rule decided in one call, as a plain value the trace stores and replay compares.
/// Each rule fills the fields that describe it and leaves the others `nil`.
public struct AggregationDecision: Sendable, Equatable, Codable {
    /// Per-input weights summing to 1, where the output is a weighted average of the inputs
    /// (mean, Krum, Multi-Krum, MDA, FABA, DnC, Clustering, MoNNA, geometric median's final weights…).
    public var weights: [Double]?
    /// Inputs the rule selected (in selection order), e.g. Krum's winner, Multi-Krum's m best.
    public var selected: [Int]?
    /// Inputs the rule removed (in removal order), e.g. FABA.
    public var removed: [Int]?
    /// Per-input clipping factors min(1, τ/‖·‖) applied by a clipping rule or pre-aggregator.
    public var clipFactors: [Double]?
    /// Per-input cluster labels (Clustering).
    public var clusterLabels: [Int]?
    /// Coordinate-wise rules: per input, the number of coordinates at which its value entered the
    /// output (median, trimmed mean, MeaMed, Bulyan's last step).
    public var coordinatesUsed: [Int]?
    /// Per-input scores the rule ranked by (Krum scores, DnC outlier scores…).
    public var scores: [Double]?
    /// Iterations used by iterative rules (geometric median, centered clipping, CAF).
    public var iterations: Int?
    /// Randomness the rule drew, e.g. a bucketing permutation or DnC coordinate subsets.
    public var permutation: [Int]?
    public var sampledCoordinates: [[Int]]?
    /// Per input, the inputs it was averaged with, nearest first (NNM's neighbourhoods).
    public var neighbours: [[Int]]?
    /// Named scalars that describe the decision (e.g. `tau`, the clipping radius).
    public var values: [String: Double]?
    /// The decisions of the pre-aggregators that ran first, in order.
    public var preAggregation: [AggregationDecision]?

    public init() {}
}

/// State a rule carries from one call to the next (per class in DeSGD), e.g. the centre of
/// centered clipping. A plain value: the trace stores it, replay restores it.
public struct AggregatorState: Sendable, Equatable, Codable {
    /// Named vectors (e.g. `centre`).
    public var vectors: [String: [Float]]
    /// Named scalars.
    public var scalars: [String: Double]

    public init(vectors: [String: [Float]] = [:], scalars: [String: Double] = [:]) {
        self.vectors = vectors
        self.scalars = scalars
    }

    public static let empty = AggregatorState()
    public var isEmpty: Bool { vectors.isEmpty && scalars.isEmpty }
}

/// An error in choosing or applying a rule: an unknown name or parameter, or f too large for the
/// rule. The message names the problem and the rule's requirement.
public struct AggregationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var explanation: Explanation
    public init(_ explanation: Explanation) { self.explanation = explanation }
    /// The text for a caller without a command line (the command-line layer renders ``explanation``).
    public var message: String { explanation.description }
    public var description: String { message }
}

/// A robust aggregation rule F: (x₁, …, x_n; f) ↦ y.
///
/// Contract:
/// - `aggregate` writes exactly `d` values to `output`, never crashes on non-finite inputs, and
///   is deterministic: the same context and state give the same bits (randomness only through the
///   context's keyed streams).
/// - `requirement(n:f:)` returns `nil` when the rule can run with n inputs and declared f, and
///   otherwise a sentence naming the requirement (e.g. "krum needs n ≥ 2f+3, got n=6, f=2").
/// - `resilienceBound(n:f:)` is the proven (f,λ)-resilient averaging constant of
///   docs/references.md, robust aggregation §4.2 when the rule has one, else `nil`.
public protocol Aggregator: Sendable {
    /// The canonical spec string, e.g. `krum:q=n-f-2`.
    var spec: String { get }
    func requirement(n: Int, f: Int) -> String?
    func resilienceBound(n: Int, f: Int) -> Double?
    /// Whether the rule carries state from one call to the next (then calls of one aggregation
    /// group must run in order; stateless rules may run any rounds in parallel).
    var isStateful: Bool { get }
    /// What the rule needs in its state that only the simulation engine computes (FLTrust: the
    /// server's momentum on its root data), or nil. Such a rule replays only as the recorded rule,
    /// from the recorded states: as a counterfactual on another rule's trace it would run without
    /// that input.
    var engineInput: String? { get }
    /// What the rule's carried state may hold (``StateSchema``; `.none` for a stateless rule).
    func stateSchema(_ bounds: StateBounds) -> StateSchema
    func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                   into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision
}

extension Aggregator {
    public func resilienceBound(n: Int, f: Int) -> Double? { nil }
    public var isStateful: Bool { false }
    public var engineInput: String? { nil }
    public func stateSchema(_ bounds: StateBounds) -> StateSchema { .none }

    /// Convenience: aggregate into a new array.
    public func aggregate(_ context: AggregationContext, state: inout AggregatorState) -> ([Float],
        AggregationDecision) {
        var out = [Float](repeating: 0, count: context.d)
        let decision = out.withUnsafeMutableBufferPointer { aggregate(context, state: &state, into: $0) }
        return (out, decision)
    }

    /// Convenience for stateless use.
    public func aggregate(_ context: AggregationContext) -> ([Float], AggregationDecision) {
        var state = AggregatorState.empty
        return aggregate(context, state: &state)
    }
}
