import DesgdNumerics

/// Mean (plain averaging, the non-robust baseline).
///
///     y = (1/n) Σᵢ xᵢ
///
/// - Defaults: none (ByzFL `Average()`).
/// - Requirement: n ≥ 1. Not robust: one input moves the output arbitrarily.
/// - Non-finite inputs: propagate to the output (the mean hides nothing).
/// - Ties: none.
/// - Bound: (f, λ)-resilient averaging with λ = 0 when f = 0 (the output *is* x̄_S); no bound
///   for f ≥ 1 (docs/references.md, robust aggregation §4.2).
/// - Decision: `weights` = 1/n each.
public struct Mean: Aggregator {
    public init() {}

    public var spec: String { "mean" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("mean", n: n, f: f, honestMajority: false)
    }

    public func resilienceBound(n: Int, f: Int) -> Double? { f == 0 ? 0 : nil }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        VectorMath.weightedMean(of: context.messages, into: output)
        var decision = AggregationDecision()
        decision.weights = [Double](repeating: 1 / Double(context.n), count: context.n)
        return decision
    }
}

/// Clipped mean: clip every input to the median norm of the round, then average.
///
///     τ = median_i ‖xᵢ‖,   y = (1/n) Σᵢ min(1, τ/‖xᵢ‖) · xᵢ
///
/// - Defaults: the clipping radius is the *current round's* median norm (docs/references.md, robust
///   aggregation §2.2, "clipped mean with bound = median norm"); fedlib's `Clippedclustering` uses the median of the
///   history of all norms instead — not this rule. Even n: τ is the mean of the two middle norms.
/// - Requirement: n ≥ 2f+1, so that τ is at most the largest honest norm.
/// - Non-finite inputs: their norm ranks as +∞ in the median, and they get clipping factor 0,
///   i.e. they contribute nothing (but still count in 1/n). A finite output as long as fewer than
///   half the inputs are non-finite.
/// - Ties: none (the median of the norms is a value).
/// - Bound: none of the simple λ form.
/// - Decision: `clipFactors` (min(1, τ/‖xᵢ‖), 0 for non-finite inputs), `values["tau"]`.
public struct ClippedMean: Aggregator {
    public init() {}

    public var spec: String { "clipmean" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("clipmean", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n
        var decision = AggregationDecision()
        guard n > 0 else { VectorMath.fill(output, with: 0); return decision }
        let norms = RowNorms(context.messages)
        let order = Ranking.ascending(norms.values)
        let lower = Ranking.key(norms.values[order[(n - 1) / 2]]), upper = Ranking.key(norms.values[order[n / 2]])
        let tau = n % 2 == 1 ? lower : (lower + upper) / 2
        let factors = (0..<n).map { i in norms.finite[i] ? norms.clipFactor(i, radius: tau) : 0 }
        VectorMath.combination(of: context.messages, coefficients: factors.map { $0 / Double(n) }, into: output)
        decision.clipFactors = factors
        decision.values = ["tau": tau]
        return decision
    }
}

/// Euclidean norms of the rows and which rows are finite (shared by the clipping rules).
struct RowNorms {
    let values: [Double]
    let finite: [Bool]

    init(_ m: Matrix) {
        finite = (0..<m.rows).map { i in m.withRow(i) { VectorMath.allFinite($0) } }
        values = (0..<m.rows).map { i in m.withRow(i) { VectorMath.norm($0) } }
    }

    /// min(1, radius/‖xᵢ‖): 1 for a zero vector, 0 when the norm overflowed to +∞.
    func clipFactor(_ i: Int, radius: Double) -> Double {
        let norm = values[i]
        if norm == 0 || norm <= radius { return 1 }
        return norm.isFinite ? radius / norm : 0
    }
}
