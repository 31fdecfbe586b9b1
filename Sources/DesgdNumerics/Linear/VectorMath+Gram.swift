/// Row-set geometry through one matrix product: Gram matrices of the rows of a ``Matrix``
/// (cosine similarities, spectral filters), plus linear combinations of rows. Part of the vector-math layer (see
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
