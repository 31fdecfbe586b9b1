import DesgdNumerics

/// CAF, covariance-bound agnostic filter (ByzFL/byzpy `CAF(f)`; the spectral filter of robust
/// mean estimation, Diakonikolas et al. 2017, in its "agnostic to the covariance bound" form).
///
///     c ← 1 (per input);  while Σc > n−2f:
///         μ_c = Σ cᵢxᵢ/Σc,  Σ_c = Σ cᵢ(xᵢ−μ_c)(xᵢ−μ_c)ᵀ/Σc,  (λ, v) = top eigenpair of Σ_c
///         remember μ_c if λ is the smallest so far
///         τᵢ = ⟨xᵢ − μ_c, v⟩²,  cᵢ ← cᵢ(1 − τᵢ/max_{c_j>0} τⱼ)
///     y = the remembered μ_c
///
/// - Defaults: as ByzFL/byzpy, except: the top eigenpair is exact (Jacobi on the n×n weighted
///   Gram matrix W^½ G W^½, whose nonzero spectrum is Σ_c's times Σc) instead of one or three
///   power iterations from a random start — no randomness, nothing to seed; and τ_max is taken
///   over inputs with positive weight (byzpy takes it over all), which zeroes at least one weight
///   per pass, so the loop ends after at most n passes.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: start with weight 0 (they would make every weighted statistic
///   non-finite), so the output is finite whenever one input is.
/// - Ties: none (weights are a fixed formula).
/// - Bound: none listed in docs/references.md, robust aggregation §4.2.
/// - Decision: `weights` = the normalised weights c/Σc of the output, `iterations` (passes),
///   `values["eigenvalue"]` (λ of the output's weights).
/// - Cost: one Gram product, then O(n³) per pass.
public struct CAF: Aggregator {
    public init() {}

    public var spec: String { "caf" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("caf", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n
        let distances = Distances(context)
        var c = (0..<n).map { distances.finite[$0] ? 1.0 : 0.0 }
        var total = c.reduce(0, +)
        var bestWeights = total > 0 ? c.map { $0 / total } : [Double](repeating: 0, count: n)
        var bestEigenvalue = Double.infinity
        var passes = 0
        while total > Double(n - 2 * max(0, context.f)) && passes < n {
            passes += 1
            let p = c.map { $0 / total }
            let (rows, gram, root, eigen) = weightedSpectrum(distances, c)
            let m = rows.count
            let kappa = eigen.values[0]
            if kappa / total < bestEigenvalue {
                bestEigenvalue = kappa / total
                bestWeights = p
            }
            // Projection of input a on the unit eigenvector v = Aᵀu/√κ (A = W^½Y): (G W^½ u)_a/√κ.
            guard kappa > 0, kappa.isFinite else { break }
            let u = Array(eigen.vector(0))
            var tau = [Double](repeating: 0, count: m)
            for a in 0..<m {
                var s = 0.0
                for b in 0..<m { s += gram[a * m + b] * root[b] * u[b] }
                tau[a] = s * s / kappa
            }
            let tauMax = tau.max() ?? 0
            guard tauMax > 0, tauMax.isFinite else { break }
            for (a, i) in rows.enumerated() { c[i] *= 1 - tau[a] / tauMax }
            total = c.reduce(0, +)
        }
        if passes == 0 && total > 0 {
            // The loop never ran (e.g. f = 0): the output is the mean; report its eigenvalue.
            bestEigenvalue = weightedSpectrum(distances, c).eigen.values[0] / total
        }
        if distances.finiteRows.isEmpty {
            VectorMath.weightedMean(of: context.messages, into: output)
        } else {
            VectorMath.weightedMean(of: context.messages, weights: bestWeights, into: output)
        }
        var decision = AggregationDecision()
        decision.weights = bestWeights
        decision.iterations = passes
        decision.values = ["eigenvalue": bestEigenvalue]
        return decision
    }

    /// The inputs with positive weight, their Gram matrix centred on the weighted mean, √c, and
    /// the eigen-decomposition of W^½ G W^½ (nonzero spectrum = Σ_c's times Σc).
    private func weightedSpectrum(_ distances: Distances, _ c: [Double])
        -> (rows: [Int], gram: [Double], root: [Double], eigen: SymmetricEigen) {
        let total = c.reduce(0, +)
        let rows = (0..<distances.n).filter { c[$0] > 0 }
        let m = rows.count
        let gram = distances.centredGram(rows, weights: c.map { $0 / total })
        let root = rows.map { c[$0].squareRoot() }
        var k = gram
        for a in 0..<m { for b in 0..<m { k[a * m + b] *= root[a] * root[b] } }
        return (rows, gram, root, SymmetricEigen(k, n: m))
    }
}

/// DnC, divide-and-conquer (Shejwalkar & Houmansadr, NDSS 2021, Algorithm 2).
///
///     repeat niters times: draw b coordinates without replacement; restrict the inputs to them;
///     centre on their mean; v = top right-singular vector; sᵢ = ⟨xᵢ − μ, v⟩²;
///     keep the n − ⌊c·f⌋ lowest scores.   y = mean of the inputs kept in every iteration
///
/// - Defaults: b = 10000 (min(b, d)), niters = 5, c = 1.0 (fedlib `sub_dim=10000, num_iters=5,
///   filter_frac=1.0`; older Blades used niters = 1). Intersection of the kept sets (paper,
///   fedlib; older Blades took the union); an empty intersection gives the zero vector (fedlib).
/// - Randomness: the coordinate subsets come from
///   `RandomStream(seed:, purpose: .aggregator, round:, class:)` (one stream per call, drawn in
///   iteration order) and are recorded. The singular vector is exact: sᵢ = λ·uᵢ² with (λ, u) the
///   top eigenpair of the n×n centred Gram matrix (Jacobi) — no power iteration, nothing else drawn.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: score +∞ (left out of the centring and the Gram matrix), so they are
///   filtered first; with at most ⌊c·f⌋ of them the output is finite.
/// - Ties: (score, index).
/// - Bound: none of the simple λ form (randomised; docs/references.md, robust aggregation §4.2).
/// - Decision: `weights` 1/|kept|, `selected` (ascending), `scores` of the last iteration,
///   `sampledCoordinates` (ascending, per iteration; omitted when b ≥ d, i.e. all coordinates),
///   `iterations`, `values` (`b` used, `removedPerIteration`).
/// - Cost: per iteration O(n·b) gathering, one n×n×b Gram product, O(n³) eigen-decomposition.
public struct DnC: Aggregator {
    public let subDimension: Int
    public let iterations: Int
    public let filterFraction: Double

    public init(subDimension: Int = 10000, iterations: Int = 5, filterFraction: Double = 1.0) {
        self.subDimension = max(1, subDimension)
        self.iterations = max(1, iterations)
        self.filterFraction = max(0, filterFraction)
    }

    public var spec: String {
        SpecText.spec("dnc",
            [("b", String(subDimension)), ("niters", String(iterations)), ("c", SpecText.number(filterFraction))])
    }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("dnc", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n, d = context.d
        let messages = context.messages
        let finiteRows = (0..<n).filter { i in messages.withRow(i) { VectorMath.allFinite($0) } }
        let removeCount = min(n, Int((filterFraction * Double(max(0, context.f))).rounded(.down)))
        let b = min(subDimension, d)
        var rng = RandomStream(seed: context.seed, purpose: .aggregator, round: context.round,
            class: context.classIndex)
        var kept = Set(0..<n)
        var sampled: [[Int]] = []
        var scores = [Double](repeating: .infinity, count: n)
        for _ in 0..<iterations {
            let coordinates = b < d ? rng.sample(b, from: d).sorted() : Array(0..<d)
            if b < d { sampled.append(coordinates) }
            scores = outlierScores(messages, rows: finiteRows, coordinates: coordinates, backend: context.backend)
            kept.formIntersection(Ranking.ascending(scores).prefix(n - removeCount))
        }
        let selected = kept.sorted()
        VectorMath.mean(of: messages, rows: selected, into: output)
        var decision = AggregationDecision()
        decision.weights = uniformWeights(n: n, on: selected)
        decision.selected = selected
        decision.scores = scores
        decision.sampledCoordinates = sampled.isEmpty ? nil : sampled
        decision.iterations = iterations
        decision.values = ["b": Double(b), "removedPerIteration": Double(removeCount)]
        return decision
    }

    /// sᵢ = ⟨yᵢ, v⟩² = λ·uᵢ² for the finite rows (y = rows restricted to `coordinates`, centred),
    /// where (λ, u) is the top eigenpair of Y·Yᵀ; +∞ for the other rows.
    private func outlierScores(_ messages: Matrix, rows: [Int], coordinates: [Int],
        backend: NumericBackend) -> [Double] {
        var scores = [Double](repeating: .infinity, count: messages.rows)
        guard !rows.isEmpty else { return scores }
        var sub = Matrix(rows: rows.count, columns: coordinates.count)
        for (a, i) in rows.enumerated() {
            messages.withRow(i) { x in
                sub.withMutableRow(a) { y in for (k, j) in coordinates.enumerated() { y[k] = x[j] } } }
        }
        let centre = VectorMath.mean(of: sub)
        centre.withVector { mu in
            for a in 0..<rows.count {
                sub.withMutableRow(a) { y in VectorMath.subtract(UnsafeBufferPointer(y), mu, into: y) }
            }
        }
        let eigen = SymmetricEigen(VectorMath.gram(sub, backend: backend).map(Double.init), n: rows.count)
        let lambda = max(0, eigen.values[0])
        for (a, i) in rows.enumerated() {
            let u = eigen.vectors[a]
            scores[i] = lambda * u * u
        }
        return scores
    }
}
