import DesgdNumerics

/// The pairwise squared distances of one round's inputs, and the geometry that follows from them
/// alone. Distance-based rules (Krum, Multi-Krum, Bulyan, MDA, FABA, NNM, geometric median, CAF,
/// SMEA) work on this n×n matrix instead of the d-dimensional vectors: it is computed once per
/// call (``VectorMath/pairwiseSquaredDistances(_:)``, exact and cache-blocked), and every
/// further step costs O(n²) or O(n³) instead of O(n·d).
///
/// Non-finite inputs: a row with any NaN or ±∞ is at distance +∞ from every row (itself
/// excepted), so it ranks last in every (distance, index) ranking.
struct Distances {
    let n: Int
    /// `values[i*n + j]` = ‖x_i − x_j‖² (Double, never NaN).
    let values: [Double]
    /// Whether row i is entirely finite.
    let finite: [Bool]

    init(_ context: AggregationContext) {
        n = context.n
        values = VectorMath.pairwiseSquaredDistances(context.messages)
        finite = (0..<context.n).map { i in context.messages.withRow(i) { VectorMath.allFinite($0) } }
    }

    subscript(i: Int, j: Int) -> Double { values[i * n + j] }

    var finiteRows: [Int] { (0..<n).filter { finite[$0] } }

    /// Largest squared distance among `rows` (the squared diameter), +∞ if any is non-finite.
    func squaredDiameter(_ rows: [Int]) -> Double {
        var diam = 0.0
        for (a, i) in rows.enumerated() { for j in rows[(a + 1)...] { diam = max(diam, self[i, j]) } }
        return diam
    }

    /// For a combination z = Σ_j p_j x_j with Σ p_j = 1 (p_j = 0 on non-finite rows), returns
    /// (Dp, c) with (Dp)_i = Σ_j p_j D_ij and c = ½ Σ_{j,k} p_j p_k D_jk, from which
    /// ‖z − x_i‖² = (Dp)_i − c and ⟨x_i − z, x_k − z⟩ = ½((Dp)_i + (Dp)_k − D_ik) − c
    /// (the parallelogram identities behind classical multidimensional scaling).
    /// Zero weights are skipped, so a +∞ distance never meets a zero weight.
    func combinationTerms(_ p: [Double]) -> (dp: [Double], c: Double) {
        var dp = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n where p[j] != 0 { s += p[j] * self[i, j] }
            dp[i] = s
        }
        var c = 0.0
        for j in 0..<n where p[j] != 0 { c += p[j] * dp[j] }
        return (dp, c / 2)
    }

    /// ‖z − x_i‖² for every i, z = Σ p_j x_j (see ``combinationTerms(_:)``), clamped at 0.
    func squaredDistancesToCombination(_ p: [Double]) -> [Double] {
        let (dp, c) = combinationTerms(p)
        return dp.map { $0.isFinite ? max(0, $0 - c) : .infinity }
    }

    /// The Gram matrix ⟨x_i − z, x_k − z⟩ of `rows` centred on z = Σ p_j x_j (|rows|² entries,
    /// row-major in the order of `rows`).
    func centredGram(_ rows: [Int], weights p: [Double]) -> [Double] {
        let (dp, c) = combinationTerms(p)
        let m = rows.count
        var g = [Double](repeating: 0, count: m * m)
        for (a, i) in rows.enumerated() {
            for (b, k) in rows.enumerated() where b >= a {
                let v = 0.5 * (dp[i] + dp[k] - self[i, k]) - c
                g[a * m + b] = v
                g[b * m + a] = v
            }
        }
        return g
    }

    /// The Krum score of every member of `pool` (Blanchard et al. 2017, eq. of §4): the sum of
    /// its q smallest squared distances to the *other* members. The q distances are added in
    /// ascending order, so a score depends only on the set of distances. +∞ when fewer than q
    /// finite distances exist (non-finite rows always score +∞).
    func krumScores(pool: [Int], q: Int) -> [Double] {
        pool.map { i in
            if !finite[i] { return .infinity }
            var row = pool.compactMap { j in j == i ? nil : self[i, j] }
            row.sort()
            var s = 0.0
            for v in row.prefix(max(0, q)) { s += v }
            return s
        }
    }
}
