import DesgdNumerics

/// Bucketing (Karimireddy, He, Jaggi, ICLR 2022, Algorithm 1).
///
///     π = random permutation of the n inputs;  bucket t = mean of x_{π(ts)}, …, x_{π(ts+s−1)}
///     for t = 0 … ⌈n/s⌉−1 (the last bucket may be smaller)
///
/// - Defaults: s = 2 (the paper's experiments; bucketing code `--bucketing 2`). ByzFL's
///   `Bucketing(s=1)` only permutes.
/// - Randomness: π = `RandomStream(seed:, purpose: .bucketing, round:, class:).permutation(n)`,
///   recorded in `decision.permutation`.
/// - Rows and f: ⌈n/s⌉ rows; f passed on unchanged (see ``AggregationPipeline``).
/// - Requirement: n ≥ 1, s ≥ 1.
/// - Non-finite inputs: a bucket containing one is non-finite.
/// - Decision: `permutation`, `values["s"]`.
public struct Bucketing: PreAggregator {
    public let s: Int

    public init(s: Int = 2) { self.s = max(1, s) }

    public var spec: String { SpecText.spec("bucketing", [("s", String(s))]) }

    public func outputCount(n: Int) -> Int { (n + s - 1) / s }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("bucketing", n: n, f: f, honestMajority: false)
    }

    public func apply(_ context: AggregationContext) -> (Matrix, AggregationDecision) {
        let n = context.n
        var rng = RandomStream(seed: context.seed, purpose: .bucketing, round: context.round, class: context.classIndex)
        let permutation = rng.permutation(n)
        var out = Matrix(rows: outputCount(n: n), columns: context.d)
        for t in 0..<out.rows {
            let members = Array(permutation[(t * s)..<min(n, (t + 1) * s)])
            out.withMutableRow(t) { VectorMath.mean(of: context.messages, rows: members, into: $0) }
        }
        var decision = AggregationDecision()
        decision.permutation = permutation
        decision.values = ["s": Double(s)]
        return (out, decision)
    }
}

/// Nearest-neighbour mixing, NNM (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan,
/// AISTATS 2023, "Fixing by Mixing").
///
///     yᵢ = mean of the n−f inputs nearest to xᵢ, xᵢ itself included
///
/// - Defaults: n−f neighbours including self (ByzFL `NNM(f)`).
/// - Rows and f: n rows, f unchanged.
/// - Requirement: n ≥ 1 and f < n.
/// - Non-finite inputs: at distance +∞ from every input, so a finite input never mixes one in
///   while at least n−f inputs are finite; a non-finite input is passed through unchanged.
/// - Ties: self first, then (distance, index).
/// - Decision: `neighbours` (per input, its n−f neighbours nearest first).
/// - Cost: one Gram product, O(n² log n) ranking, O(n²·d) mixing.
public struct NearestNeighbourMixing: PreAggregator {
    public init() {}

    public var spec: String { "nnm" }

    public func requirement(n: Int, f: Int) -> String? {
        if let basic = SpecText.basic("nnm", n: n, f: f, honestMajority: false) { return basic }
        return f < n ? nil : SpecText.violated("nnm", "f < n", n: n, f: f)
    }

    public func apply(_ context: AggregationContext) -> (Matrix, AggregationDecision) {
        let n = context.n
        let distances = Distances(context)
        let size = max(1, n - max(0, context.f))
        var out = context.messages
        var neighbours: [[Int]] = []
        for i in 0..<n {
            let others = Ranking.ascending((0..<n).filter { $0 != i }) { distances[i, $0] }
            let near = [i] + others.prefix(size - 1)
            neighbours.append(near)
            if distances.finite[i] {
                out.withMutableRow(i) { VectorMath.mean(of: context.messages, rows: near, into: $0) }
            }
        }
        var decision = AggregationDecision()
        decision.neighbours = neighbours
        return (out, decision)
    }
}

/// Static clipping (ByzFL `Clipping(c)`): xᵢ ← xᵢ · min(1, c/‖xᵢ‖).
///
/// - Defaults: c = 2.0 (ByzFL; its benchmark runs Clipping then NNM).
/// - Rows and f: n rows, f unchanged.
/// - Requirement: n ≥ 1.
/// - Non-finite inputs: passed through unchanged (factor recorded as 1).
/// - Decision: `clipFactors`, `values["c"]`.
public struct StaticClipping: PreAggregator {
    public let c: Double

    public init(c: Double = 2.0) { self.c = c }

    public var spec: String { SpecText.spec("clip", [("c", SpecText.number(c))]) }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("clip", n: n, f: f, honestMajority: false)
    }

    public func apply(_ context: AggregationContext) -> (Matrix, AggregationDecision) {
        let norms = RowNorms(context.messages)
        let factors = (0..<context.n).map { i in norms.finite[i] ? norms.clipFactor(i, radius: c) : 1 }
        var decision = AggregationDecision()
        decision.clipFactors = factors
        decision.values = ["c": c]
        return (scaledRows(context.messages, by: factors), decision)
    }
}

/// Adaptive robust clipping, ARC (Allouah, Guerraoui, Gupta, Jellouli, Rizk, Stephan 2024;
/// ByzFL `ARC(f)`).
///
///     k = ⌊2f(n−f)/n⌋;  sort by norm;  clip the k largest inputs to the norm of the largest
///     unclipped one (the (n−k)-th smallest)
///
/// - Defaults: k = ⌊2f(n−f)/n⌋ in exact integer arithmetic (ByzFL computes int(2f/n·(n−f)) in
///   floating point, which can round an exact integer down).
/// - Rows and f: n rows, f unchanged.
/// - Requirement: n ≥ 1.
/// - Non-finite inputs: rank as the largest norms (so they take clipping slots first) and are
///   passed through unchanged (factor recorded as 1).
/// - Ties: (norm, index).
/// - Decision: `clipFactors`, `selected` = the clipped inputs (largest norm first), `values`
///   (`k`, `tau` = the clipping radius).
public struct AdaptiveRobustClipping: PreAggregator {
    public init() {}

    public var spec: String { "arc" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("arc", n: n, f: f, honestMajority: false)
    }

    /// k = ⌊2f(n−f)/n⌋.
    public static func clippedCount(n: Int, f: Int) -> Int {
        n > 0 && f > 0 && f < n ? 2 * f * (n - f) / n : 0
    }

    public func apply(_ context: AggregationContext) -> (Matrix, AggregationDecision) {
        let n = context.n
        let norms = RowNorms(context.messages)
        let k = AdaptiveRobustClipping.clippedCount(n: n, f: context.f)
        let order = Ranking.ascending(norms.values)
        var factors = [Double](repeating: 1, count: n)
        var decision = AggregationDecision()
        if k > 0 {
            let radius = Ranking.key(norms.values[order[n - k - 1]])
            for i in order[(n - k)...] where norms.finite[i] { factors[i] = norms.clipFactor(i, radius: radius) }
            decision.values = ["k": Double(k), "tau": radius]
        } else {
            decision.values = ["k": 0]
        }
        decision.clipFactors = factors
        decision.selected = Array(order[(n - k)...].reversed())
        return (scaledRows(context.messages, by: factors), decision)
    }
}

/// The rows of `m`, row i scaled by `factors[i]` (rows with factor 1 copied as they are).
private func scaledRows(_ m: Matrix, by factors: [Double]) -> Matrix {
    var out = m
    for (i, c) in factors.enumerated() where c != 1 {
        out.withMutableRow(i) { VectorMath.scale($0, by: Float(c)) }
    }
    return out
}
