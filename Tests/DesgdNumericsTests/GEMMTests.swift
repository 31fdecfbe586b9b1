import Testing
@testable import DesgdNumerics

@Suite struct GEMMTests {
    /// Reference product in Double.
    static func reference(_ tA: Transpose, _ tB: Transpose, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                          b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Double] {
        var out = c.map(Double.init)  // the padding column (j ≥ n) stays as it was
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = tA == .none ? a[i * lda + p] : a[p * lda + i]
                    let bv = tB == .none ? b[p * ldb + j] : b[j * ldb + p]
                    s += Double(av) * Double(bv)
                }
                out[i * ldc + j] = Double(alpha) * s + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j]))
            }
        }
        return out
    }

    @Test(arguments: [(1, 1, 1), (6, 16, 8), (7, 17, 300), (50, 13, 600), (73, 1030, 5), (20, 576, 25)])
    func backendsAgreeWithReference(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = RandomStream(seed: 42, purpose: .initialization, worker: m, round: n, class: k)
        for tA in [Transpose.none, .transposed] {
            for tB in [Transpose.none, .transposed] {
                let lda = tA == .none ? k + 1 : m + 2
                let ldb = tB == .none ? n + 3 : k
                let a = (0..<((tA == .none ? m : k) * lda)).map { _ in rng.nextFloat(in: -1, 1) }
                let b = (0..<((tB == .none ? k : n) * ldb)).map { _ in rng.nextFloat(in: -1, 1) }
                let c0 = (0..<(m * (n + 1))).map { _ in rng.nextFloat(in: -1, 1) }
                let ref = Self.reference(tA, tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, b: b, ldb: ldb, beta: 2,
                    c: c0, ldc: n + 1)
                for backend in NumericBackend.allCases {
                    var c = c0
                    a.withUnsafeBufferPointer { pa in
                        b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                        backend.sgemm(tA, tB, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda,
                                      b: pb.baseAddress!, ldb: ldb,
                                      beta: 2, c: pc.baseAddress!, ldc: n + 1)
                    } } }
                    let err = zip(c, ref).map { abs(Double($0) - $1) }.max() ?? 0
                    #expect(err < 1e-4 * Double(k + 1), "backend \(backend) \(tA) \(tB) error \(err)")
                }
            }
        }
    }

    /// β = 0 must not read C (NaN in C does not leak into the result).
    @Test func betaZeroIgnoresC() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [1, 0, 0, 1]
        for backend in NumericBackend.allCases {
            var c = [Float](repeating: .nan, count: 4)
            backend.sgemm(.none, .none, m: 2, n: 2, k: 2, alpha: 1, a: a, lda: 2, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
            #expect(c == a, "\(backend)")
        }
    }
}
