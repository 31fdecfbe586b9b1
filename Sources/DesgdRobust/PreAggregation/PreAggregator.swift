import DesgdNumerics

/// A pre-aggregator: a transformation of the round's messages that runs before a rule
/// (docs/references.md, robust aggregation §2.2: bucketing, NNM, static clipping, ARC), turning n
/// rows into n' rows and telling the next stage which f to assume.
///
/// Contract (as for ``Aggregator``): deterministic (randomness only through the context's keyed
/// streams), never crashes on non-finite inputs. Policy shared by all pre-aggregators: a
/// non-finite input stays non-finite in the output (they never hide one); the rule after them
/// decides what to do with it.
public protocol PreAggregator: Sendable {
    /// The canonical spec string, e.g. `bucketing:s=2`.
    var spec: String { get }
    /// Rows produced from n inputs.
    func outputCount(n: Int) -> Int
    /// The declared Byzantine count the next stage is told.
    func outputF(n: Int, f: Int) -> Int
    /// `nil` when it can run on (n, f), else a sentence naming the requirement.
    func requirement(n: Int, f: Int) -> String?
    /// The transformed messages (``outputCount(n:)`` rows) and what was done.
    func apply(_ context: AggregationContext) -> (Matrix, AggregationDecision)
}

extension PreAggregator {
    public func outputCount(n: Int) -> Int { n }
    public func outputF(n: Int, f: Int) -> Int { f }
}

/// A chain of pre-aggregators followed by a rule, itself an ``Aggregator``: the spec is the chain
/// joined by `+` with the rule last (`clip:c=2+nnm+trmean:b=f`).
///
/// - Requirement: every stage is checked on the (n, f) it actually receives: bucketing with s = 2
///   hands ⌈n/2⌉ rows to the next stage. f is passed on as declared — Karimireddy, He, Jaggi
///   (ICLR 2022) run the base rule on the buckets with the original f (bucketing code:
///   `Krum(n=⌈n/s⌉, f=f)`, `TM(b=f)`): f Byzantine inputs can spoil up to f buckets, so keeping f
///   is the conservative (and the paper's) choice, not ⌈f/s⌉.
/// - State: passed to the rule (e.g. centered clipping's centre); pre-aggregators are stateless.
/// - Decision: the rule's decision, with `preAggregation` = the pre-aggregators' decisions in
///   order. The rule's `weights`/`selected`/`coordinatesUsed` index the rows the rule received
///   (bucket means, NNM mixtures), which `preAggregation` relates to the inputs.
/// - Bound: none reported (the λ of a rule does not carry over to a composition;
///   docs/references.md, robust aggregation §4.2, gives none for NNM ∘ F or bucketing).
public struct AggregationPipeline: Aggregator {
    public let preAggregators: [any PreAggregator]
    public let rule: any Aggregator

    public init(pre: [any PreAggregator], rule: any Aggregator) {
        self.preAggregators = pre
        self.rule = rule
    }

    public var spec: String { (preAggregators.map(\.spec) + [rule.spec]).joined(separator: "+") }

    public func requirement(n: Int, f: Int) -> String? {
        var rows = n, declared = f
        for stage in preAggregators {
            if let r = stage.requirement(n: rows, f: declared) { return r }
            (rows, declared) = (stage.outputCount(n: rows), stage.outputF(n: rows, f: declared))
        }
        guard let r = rule.requirement(n: rows, f: declared) else { return nil }
        let chain = preAggregators.map(\.spec).joined(separator: "+")
        return preAggregators.isEmpty ? r : "\(r) (the rows left by \(chain) from n=\(n))"
    }

    public func resilienceBound(n: Int, f: Int) -> Double? {
        preAggregators.isEmpty ? rule.resilienceBound(n: n, f: f) : nil
    }

    public var isStateful: Bool { rule.isStateful }
    public var engineInput: String? { rule.engineInput }
    public func stateSchema(_ bounds: StateBounds) -> StateSchema { rule.stateSchema(bounds) }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var current = context
        var stages: [AggregationDecision] = []
        for stage in preAggregators {
            let (rows, decision) = stage.apply(current)
            stages.append(decision)
            current = current.replacing(messages: rows, f: stage.outputF(n: current.n, f: current.f))
        }
        var decision = rule.aggregate(current, state: &state, into: output)
        if !stages.isEmpty { decision.preAggregation = stages }
        return decision
    }
}
