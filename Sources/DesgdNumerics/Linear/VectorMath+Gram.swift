/// Row-set geometry through one matrix product: Gram matrices and pairwise distances of the rows
/// of a ``Matrix``, plus linear combinations of rows. Part of the vector-math layer (see
/// ``VectorMath``); kept in its own file because it needs a ``NumericBackend``.
extension VectorMath {
    /// G = X·Xᵀ (n×n, row-major) by one `sgemm(.none, .transposed)`. O(n²·d).
    public static func gram(_ m: Matrix, backend: NumericBackend) -> [Float] {
        let n = m.rows, d = m.columns
        var g = [Float](repeating: 0, count: n * n)
        guard n > 0, d > 0 else { return g }
        m.storage.withUnsafeBufferPointer { s in
            g.withUnsafeMutableBufferPointer { c in
                backend.sgemm(.none, .transposed, m: n, n: n, k: d, alpha: 1, a: s.baseAddress!, lda: d,
                              b: s.baseAddress!, ldb: d, beta: 0, c: c.baseAddress!, ldc: n)
            }
        }
        return g
    }

    /// Below this ratio D_ij / (G_ii + G_jj) a Gram-derived distance has lost too many bits to
    /// cancellation and is recomputed directly. With rows centred on their mean, independent
    /// rows give a ratio near 1; only near-duplicates (copies, bucket means) or rows pushed far
    /// from the centre by an outlier fall below it.
    public static let gramRefinementRatio = 0.25

    /// Squared Euclidean distances between every pair of rows (`result[i*n + j]`, symmetric, zero
    /// diagonal), through ONE Gram product of the rows centred on the mean of the finite rows:
    /// D_ij = G_ii + G_jj − 2·G_ij in Double, clamped at 0.
    ///
    /// Why centred: ‖x_i − x_j‖² is a small difference of large numbers when the rows share a
    /// large common component; centring removes that component. Pairs where the Gram form still
    /// cancels badly (D_ij < ``gramRefinementRatio``·(G_ii + G_jj), e.g. copies of one vector) or
    /// overflows are recomputed with ``squaredDistance(_:_:)``, so every returned distance has
    /// (nearly) the accuracy of the direct formula while the common case costs one sgemm.
    ///
    /// Non-finite rows (any NaN or ±∞) are left out of the centre and of the product; every
    /// distance involving one is +∞ (including between two non-finite rows), so such rows rank
    /// last wherever distances are ranked. A finite pair whose distance overflows is +∞ as well.
    ///
    /// Deterministic for a given backend. O(n²·d) flops in one sgemm, plus O(d) per refined pair.
    public static func pairwiseSquaredDistances(_ m: Matrix, backend: NumericBackend) -> [Double] {
        let n = m.rows, d = m.columns
        var out = [Double](repeating: 0, count: n * n)
        guard n > 1 else { return out }
        let finite = (0..<n).map { i in m.withRow(i) { allFinite($0) } }
        let finiteRows = (0..<n).filter { finite[$0] }

        var centred = Matrix(rows: n, columns: d)
        var centre = [Float](repeating: 0, count: d)
        centre.withUnsafeMutableBufferPointer { mean(of: m, rows: finiteRows, into: $0) }
        centre.withUnsafeBufferPointer { c in
            for i in finiteRows {
                m.withRow(i) { x in centred.withMutableRow(i) { y in subtract(x, c, into: y) } }
            }
        }
        let g = gram(centred, backend: backend)

        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                var dij = Double.infinity
                if finite[i] && finite[j] {
                    let gii = Double(g[i * n + i]), gjj = Double(g[j * n + j])
                    dij = gii + gjj - 2 * Double(g[i * n + j])
                    if !dij.isFinite || dij < gramRefinementRatio * (gii + gjj) {
                        dij = m.withRow(i) { a in m.withRow(j) { b in squaredDistance(a, b) } }
                    }
                    dij = dij.isFinite ? Swift.max(0, dij) : .infinity
                }
                out[i * n + j] = dij
                out[j * n + i] = dij
            }
        }
        return out
    }

    /// out ← Σᵢ cᵢ·rowᵢ (no normalisation), accumulated in row order; rows with cᵢ = 0 are
    /// skipped entirely, so a zero coefficient really excludes a row (even a non-finite one).
    public static func combination(of m: Matrix, coefficients: [Double], into out: MutableVector) {
        precondition(out.count == m.columns && coefficients.count == m.rows, "combination: sizes differ")
        fill(out, with: 0)
        m.storage.withUnsafeBufferPointer { s in
            for i in 0..<m.rows where coefficients[i] != 0 {
                axpy(Float(coefficients[i]), Vector(rebasing: s[i * m.columns ..< (i + 1) * m.columns]), out)
            }
        }
    }
}
