import DesgdNumerics

/// Neighbour count q shared by Krum and Multi-Krum, with its requirement and λ bound.
struct KrumNeighbours: Sendable, Equatable {
    let q: SpecExpression

    static let paper = Krum.paperQ

    func count(n: Int, f: Int) -> Int { q.evaluate(n: n, f: f) }

    /// f < q ≤ n−f−1: every honest input has q honest neighbours, and a Byzantine winner has
    /// at least q−f honest ones among its q (the two facts the bound needs).
    func requirement(_ name: String, n: Int, f: Int) -> String? {
        if let basic = SpecText.basic(name, n: n, f: f, honestMajority: false) { return basic }
        let k = count(n: n, f: f)
        if k > f && k <= n - f - 1 { return nil }
        if q == KrumNeighbours.paper {
            return SpecText.violated(name, "n ≥ 2f+3 (q = n−f−2 neighbours, q > f)", n: n, f: f)
        }
        return SpecText.violated(name, "f < q ≤ n−f−1 (q = \(q))", n: n, f: f, detail: ", q=\(k)")
    }

    /// λ = 1 + √(q/(q−f)) (docs/references.md, robust aggregation §4.2: for q = n−f−2 this is
    /// 1 + √((n−f−2)/(n−2f−2));
    /// ByzFL's q = n−f−1 gives 1 + √((n−f−1)/(n−2f−1))).
    func bound(n: Int, f: Int) -> Double? {
        let k = count(n: n, f: f)
        guard f >= 0, k > f, k <= n - f - 1 else { return nil }
        return 1 + (Double(k) / Double(k - f)).squareRoot()
    }

    /// Scores all inputs (q clamped into 0...n−1, so that a call outside the requirement still
    /// returns), averages the `kept` best by (score, index) — for one input, the input itself,
    /// bit for bit — and describes it: `weights`, `selected` in score order, `scores`, `values["q"]`.
    func averageBest(_ kept: Int, _ context: AggregationContext,
        into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        let n = context.n
        guard n > 0 else { VectorMath.fill(output, with: 0); return decision }
        let q = count(n: n, f: context.f)
        let scores = Distances(context).krumScores(pool: Array(0..<n), q: min(max(0, q), n - 1))
        let selected = Array(Ranking.ascending(scores).prefix(kept))
        VectorMath.mean(of: context.messages, rows: selected, into: output)
        decision.weights = uniformWeights(n: n, on: selected)
        decision.selected = selected
        decision.scores = scores
        decision.values = ["q": Double(q)]
        return decision
    }
}

/// Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, NeurIPS 2017).
///
///     sᵢ = Σ_{j ∈ N_q(i)} ‖xᵢ − xⱼ‖²  (N_q(i): the q nearest other inputs),   y = x_{argmin sᵢ}
///
/// - Defaults: q = n−f−2 (paper, Flower, bucketing code), squared distances, sum. ByzFL's
///   `Krum(f)` uses q = n−f−1 and the mean of the q distances (same argmin for a fixed q):
///   `krum:q=n-f-1`. The LPD toolbox's non-squared variant is not offered.
/// - Requirement: f < q ≤ n−f−1, i.e. n ≥ 2f+3 for the default q.
/// - Non-finite inputs: every distance to a non-finite input is +∞, so it scores +∞ and is
///   never chosen while a finite input has a finite score (always the case with at most f
///   non-finite inputs under the requirement).
/// - Ties: (score, index) — the first index among equal scores.
/// - Bound: λ = 1 + √(q/(q−f)) (docs/references.md, robust aggregation §4.2;
///   e.g. 1 + √((n−f−2)/(n−2f−2))).
/// - Decision: `weights` one-hot, `selected` = [winner], `scores`, `values["q"]`.
/// - Cost: one Gram product (O(n²d)) plus O(n² log n).
public struct Krum: Aggregator {
    let neighbours: KrumNeighbours
    public var q: SpecExpression { neighbours.q }

    /// q = n−f−2, the paper's (Blanchard et al. 2017) and Flower's choice.
    public static let paperQ = SpecExpression.binary("-", .binary("-", .n, .f), .constant(2))

    public init(q: SpecExpression = Krum.paperQ) { neighbours = KrumNeighbours(q: q) }

    public var spec: String { SpecText.spec("krum", [("q", q.description)]) }

    public func requirement(n: Int, f: Int) -> String? { neighbours.requirement("krum", n: n, f: f) }

    public func resilienceBound(n: Int, f: Int) -> Double? { neighbours.bound(n: n, f: f) }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        neighbours.averageBest(1, context, into: output)
    }
}

/// Multi-Krum (Blanchard et al., NeurIPS 2017; El Mhamdi et al. 2018).
///
///     y = (1/m) Σ_{i ∈ M} xᵢ,  M = the m inputs with the smallest Krum scores (q neighbours)
///
/// - Defaults: q = n−f−2 (paper), m = n−f (ByzFL `MultiKrum(f)`, LPD toolbox). In the paper m
///   is free; m = 1 is Krum. Flower weights the kept models by `num_examples` — not here.
/// - Requirement: Krum's (f < q ≤ n−f−1) and 1 ≤ m ≤ n.
/// - Non-finite inputs: score +∞, ranked last; the output is finite when m does not exceed the
///   number of finite inputs (m = n−f with at most f non-finite inputs).
/// - Ties: (score, index) (ByzFL's `argpartition` leaves them unspecified).
/// - Bound: Krum's λ with the same q when m ≤ n−f (every kept input scores at most qΔ², and
///   their average stays within the Krum radius by convexity).
/// - Decision: `weights` 1/m on the kept inputs, `selected` in score order, `scores`, `values`
///   (`q`, `m`).
public struct MultiKrum: Aggregator {
    let neighbours: KrumNeighbours
    public let m: SpecExpression
    public var q: SpecExpression { neighbours.q }

    /// m = n−f.
    public static let defaultM = SpecExpression.binary("-", .n, .f)

    public init(q: SpecExpression = Krum.paperQ, m: SpecExpression = MultiKrum.defaultM) {
        neighbours = KrumNeighbours(q: q)
        self.m = m
    }

    public var spec: String { SpecText.spec("mkrum", [("q", q.description), ("m", m.description)]) }

    public func requirement(n: Int, f: Int) -> String? {
        if let r = neighbours.requirement("mkrum", n: n, f: f) { return r }
        let kept = m.evaluate(n: n, f: f)
        if kept < 1 || kept > n {
            return SpecText.violated("mkrum", "1 ≤ m ≤ n (m = \(m))", n: n, f: f, detail: ", m=\(kept)")
        }
        return nil
    }

    public func resilienceBound(n: Int, f: Int) -> Double? {
        let kept = m.evaluate(n: n, f: f)
        guard kept >= 1, kept <= n - f else { return nil }
        return neighbours.bound(n: n, f: f)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let kept = min(max(1, m.evaluate(n: context.n, f: context.f)), max(1, context.n))
        var decision = neighbours.averageBest(kept, context, into: output)
        decision.values?["m"] = Double(kept)
        return decision
    }
}

/// Weights 1/|rows| on `rows`, 0 elsewhere (the decision of every "average a kept set" rule).
func uniformWeights(n: Int, on rows: [Int]) -> [Double] {
    var w = [Double](repeating: 0, count: n)
    for i in rows { w[i] = 1 / Double(rows.count) }
    return w
}
