import Foundation

/// Eigen-decomposition of a small dense symmetric matrix by the cyclic Jacobi method
/// (Golub & Van Loan, *Matrix Computations*, §8.5): exact to rounding, no random start, and a
/// fixed order of operations, so the result is a pure function of the input bits.
///
/// Used on n×n Gram matrices (n = number of messages, tens), where it replaces power iterations
/// on d-dimensional covariances: the nonzero spectrum of YᵀY equals that of Y·Yᵀ.
///
/// Complexity: O(n³) per sweep; a sweep count bounded by ``maxSweeps`` (typically 6–10 sweeps),
/// so it terminates on any input, including NaN (which gives NaN eigenvalues).
public struct SymmetricEigen: Sendable {
    /// Eigenvalues in descending order (ties keep the order of the diagonal positions).
    public let values: [Double]
    /// Eigenvectors as rows: `vectors[k*n ..< (k+1)*n]` belongs to `values[k]`. Each is normalised
    /// and its largest-magnitude component (first on ties) is made positive, fixing the sign.
    public let vectors: [Double]
    public let n: Int

    public static let maxSweeps = 64

    /// Decomposes the symmetric n×n row-major matrix `a` (only its upper triangle is read).
    public init(_ a: [Double], n: Int) {
        precondition(a.count == n * n, "SymmetricEigen: matrix size")
        var m = a
        for i in 0..<n { for j in 0..<i { m[i * n + j] = m[j * n + i] } }
        var v = [Double](repeating: 0, count: n * n)  // columns are eigenvectors
        for i in 0..<n { v[i * n + i] = 1 }

        var scale = 0.0
        for x in m { scale += x * x }
        for _ in 0..<SymmetricEigen.maxSweeps {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += m[p * n + q] * m[p * n + q] } }
            // Converged when the off-diagonal mass is negligible next to the whole matrix.
            if !(off > 1e-30 * scale) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = m[p * n + q]
                    if apq == 0 { continue }
                    let app = m[p * n + p], aqq = m[q * n + q]
                    // Rotation annihilating a_pq (symmetric Schur decomposition, G&VL Alg. 8.5.1).
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let mkp = m[k * n + p], mkq = m[k * n + q]
                        m[k * n + p] = c * mkp - s * mkq
                        m[k * n + q] = s * mkp + c * mkq
                    }
                    for k in 0..<n {
                        let mpk = m[p * n + k], mqk = m[q * n + k]
                        m[p * n + k] = c * mpk - s * mqk
                        m[q * n + k] = s * mpk + c * mqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }

        let diag = (0..<n).map { m[$0 * n + $0] }
        let order = (0..<n).sorted { a, b in
            let x = diag[a].isNaN ? -Double.infinity : diag[a], y = diag[b].isNaN ? -Double.infinity : diag[b]
            return x > y || (x == y && a < b)
        }
        var vectors = [Double](repeating: 0, count: n * n)
        for (k, col) in order.enumerated() {
            var big = 0
            for i in 0..<n where abs(v[i * n + col]) > abs(v[big * n + col]) { big = i }
            let sign = v[big * n + col] < 0 ? -1.0 : 1.0
            for i in 0..<n { vectors[k * n + i] = sign * v[i * n + col] }
        }
        self.values = order.map { diag[$0] }
        self.vectors = vectors
        self.n = n
    }

    /// The eigenvector of `values[k]`.
    public func vector(_ k: Int) -> ArraySlice<Double> { vectors[k * n ..< (k + 1) * n] }
}
