import COpenBLAS

/// Whether an operand of ``NumericBackend/sgemm(_:_:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` is
/// used as stored or transposed.
public enum Transpose: Sendable {
    case none, transposed
}

/// The numeric backend of matrix products: a choice the user makes and every trace records.
///
/// - ``openblas``: OpenBLAS `cblas_sgemm`, always single-threaded per call (desgd parallelises
///   across workers itself, so the thread count never changes a result). Fast (50–90 GFLOP/s on
///   one core here), bit-stable on one machine, but its CPU kernel (AVX2 vs AVX-512) changes the
///   bits between machines: the trace records ``description``.
/// - ``portable``: desgd's own Swift SIMD kernel (8-wide FMA, fixed K-blocking). Slower, and
///   identical bits on any x86-64 CPU, with or without AVX2 + FMA (.ci/baseline-isa).
///
/// Both compute C ← α·op(A)·op(B) + β·C on row-major matrices, with op(A) m×k and op(B) k×n.
public enum NumericBackend: String, Sendable, Codable, CaseIterable {
    case openblas
    case portable

    /// A description of the exact kernel, for the trace header (e.g. `openblas 0.3.21 Haswell`).
    public var description: String {
        switch self {
        case .openblas:
            OpenBLAS.configure()
            let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
            let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
            return "openblas \(config) core=\(core) threads=1"
        case .portable:
            return "portable swift-simd8-fma mr=\(PortableGEMM.mr) nr=\(PortableGEMM.nr) kc=\(PortableGEMM.kc)"
        }
    }

    /// C ← α·op(A)·op(B) + β·C. Row-major; `lda`, `ldb`, `ldc` are the row strides of A, B, C as
    /// stored. When β = 0, C is not read (it may hold NaN).
    @inlinable
    public func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        switch self {
        case .openblas:
            OpenBLAS.sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c, ldc: ldc)
        case .portable:
            PortableGEMM.sgemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                               beta: beta, c: c, ldc: ldc)
        }
    }
}

/// The OpenBLAS binding. OpenBLAS's own thread pool is pinned to one thread the first time it is
/// used, whatever `OPENBLAS_NUM_THREADS` says: threads are the program's decision, not the
/// environment's.
public enum OpenBLAS {
    private static let configured: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Pins OpenBLAS to one thread (idempotent).
    public static func configure() { _ = configured }

    @usableFromInline
    static func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        configure()
        if k == 0 {
            // cblas_sgemm with k = 0 scales C by β; keep that behaviour explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor,
                    transA == .none ? CblasNoTrans : CblasTrans,
                    transB == .none ? CblasNoTrans : CblasTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }
}
