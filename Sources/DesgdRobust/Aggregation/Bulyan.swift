import DesgdNumerics

/// Bulyan (El Mhamdi, Guerraoui, Rouault, ICML 2018), with Krum as the selection rule.
///
///     θ = n−2f times: run Krum (q = |pool|−f−2, at least 1) on the remaining pool and move the
///     winner to the selection;  β = θ−2f;  y_k = mean of the β selected values of coordinate k
///     closest to the coordinate-wise median of the selection
///
/// - Defaults: exactly the paper and Flower's `aggregate_bulyan` (f unchanged while the pool
///   shrinks, q clamped to at least 1 as in Flower). Not the NDSS'21 notebook's Krum (counts the
///   self-distance) nor the LPD toolbox variant.
/// - Requirement: n ≥ 4f+3.
/// - Non-finite inputs: score +∞ in every Krum round, so never selected while finite inputs
///   remain (at most f non-finite inputs under the requirement leave θ finite ones).
/// - Ties: Krum rounds by (score, index); the last step by (|value − median|, index).
/// - Bound: none of the simple λ form (docs/references.md, robust aggregation §4.2).
/// - Decision: `selected` in selection order, `scores` of the first Krum round,
///   `coordinatesUsed` (β per coordinate), `values` (`theta`, `beta`).
public struct Bulyan: Aggregator {
    public init() {}

    public var spec: String { "bulyan" }

    public func requirement(n: Int, f: Int) -> String? {
        if let basic = SpecText.basic("bulyan", n: n, f: f, honestMajority: false) { return basic }
        return n >= 4 * f + 3 ? nil : SpecText.violated("bulyan", "n ≥ 4f+3", n: n, f: f)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        let n = context.n, f = max(0, context.f)
        guard n > 0 else { VectorMath.fill(output, with: 0); return decision }
        let theta = max(1, n - 2 * f), beta = max(1, theta - 2 * f)
        let distances = Distances(context)
        var pool = Array(0..<n)
        var selection: [Int] = []
        for round in 0..<theta {
            let q = min(pool.count - 1, max(1, pool.count - f - 2))
            let scores = distances.krumScores(pool: pool, q: q)
            if round == 0 { decision.scores = scores }
            let winner = Ranking.argmin(Array(pool.indices)) { scores[$0] }
            selection.append(pool.remove(at: winner))
        }
        // Rows in ascending input order, so that kernel indices rank like input indices.
        let rows = selection.sorted()
        let used = CoordinateWise.run(ClosestToMedianKernel(keep: beta), on: context.messages.selecting(rows: rows),
                                      executor: context.executor, into: output)
        var coordinatesUsed = [Int](repeating: 0, count: n)
        for (k, i) in rows.enumerated() { coordinatesUsed[i] = used[k] }
        decision.selected = selection
        decision.coordinatesUsed = coordinatesUsed
        decision.values = ["theta": Double(theta), "beta": Double(beta)]
        return decision
    }
}
