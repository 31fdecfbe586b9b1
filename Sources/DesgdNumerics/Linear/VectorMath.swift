/// The vector-math layer of desgd: every elementwise operation, reduction and row statistic used by
/// the model, the aggregators, the attacks and the metrics lives here, once.
///
/// Determinism: each function fixes its order of floating-point operations (8-wide SIMD lanes,
/// four accumulators, a fixed reduction tree, and for reductions a Double accumulation per block of
/// 4096 elements), so results are identical for any thread count and on any x86-64 machine, with
/// or without AVX2 + FMA (fused multiply-adds are explicit `addingProduct`, nothing else is
/// contracted; .ci/baseline-isa). Reductions return `Double`.
///
/// Complexity: every function is O(length) (O(rows·length) for row statistics) and allocation-free.
public enum VectorMath {
    public typealias Vector = UnsafeBufferPointer<Float>
    public typealias MutableVector = UnsafeMutableBufferPointer<Float>

    @usableFromInline static let block = 4096

    // MARK: Reductions

    /// Σ aᵢ bᵢ.
    @inlinable
    public static func dot(_ a: Vector, _ b: Vector) -> Double {
        precondition(a.count == b.count, "dot: lengths differ")
        return blockedReduce(a.count) { start, end in
            dotBlock(a.baseAddress! + start, b.baseAddress! + start, end - start) }
    }

    /// Σ aᵢ².
    @inlinable
    public static func squaredNorm(_ a: Vector) -> Double {
        blockedReduce(a.count) { start, end in dotBlock(a.baseAddress! + start, a.baseAddress! + start, end - start) }
    }

    /// ‖a‖.
    @inlinable
    public static func norm(_ a: Vector) -> Double { squaredNorm(a).squareRoot() }

    /// Σ (aᵢ − bᵢ)².
    @inlinable
    public static func squaredDistance(_ a: Vector, _ b: Vector) -> Double {
        precondition(a.count == b.count, "squaredDistance: lengths differ")
        return blockedReduce(a.count) { start, end in
            distBlock(a.baseAddress! + start, b.baseAddress! + start, end - start) }
    }

    /// ‖a − b‖.
    @inlinable
    public static func distance(_ a: Vector, _ b: Vector) -> Double { squaredDistance(a, b).squareRoot() }

    /// Σ aᵢ.
    @inlinable
    public static func sum(_ a: Vector) -> Double {
        blockedReduce(a.count) { start, end in sumBlock(a.baseAddress! + start, end - start) }
    }

    /// Whether every element is finite (no NaN, no ±∞).
    @inlinable
    public static func allFinite(_ a: Vector) -> Bool {
        // x − x is 0 for finite x and NaN otherwise; a NaN makes the lane comparison false.
        var i = 0
        let n = a.count, p = a.baseAddress
        var acc = SIMD8<Float>(repeating: 0)
        while i + 8 <= n {
            let v = UnsafeRawPointer(p! + i).loadUnaligned(as: SIMD8<Float>.self)
            acc = acc + (v - v)
            i += 8
        }
        if acc != .zero { return false }
        while i < n { if !p![i].isFinite { return false }; i += 1 }
        return true
    }

    @inlinable
    static func blockedReduce(_ n: Int, _ blockSum: (Int, Int) -> Float) -> Double {
        var total = 0.0
        var start = 0
        while start < n {
            let end = min(n, start + block)
            total += Double(blockSum(start, end))
            start = end
        }
        return total
    }

    @inlinable
    static func dotBlock(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            s0.addProduct(load8(a + i), load8(b + i))
            s1.addProduct(load8(a + i + 8), load8(b + i + 8))
            s2.addProduct(load8(a + i + 16), load8(b + i + 16))
            s3.addProduct(load8(a + i + 24), load8(b + i + 24))
            i += 32
        }
        while i + 8 <= n { s0.addProduct(load8(a + i), load8(b + i)); i += 8 }
        var r = horizontal((s0 + s1) + (s2 + s3))
        while i < n { r = (a[i] * b[i]) + r; i += 1 }
        return r
    }

    @inlinable
    static func distBlock(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            let d0 = load8(a + i) - load8(b + i), d1 = load8(a + i + 8) - load8(b + i + 8)
            let d2 = load8(a + i + 16) - load8(b + i + 16), d3 = load8(a + i + 24) - load8(b + i + 24)
            s0.addProduct(d0, d0); s1.addProduct(d1, d1); s2.addProduct(d2, d2); s3.addProduct(d3, d3)
            i += 32
        }
        while i + 8 <= n { let d = load8(a + i) - load8(b + i); s0.addProduct(d, d); i += 8 }
        var r = horizontal((s0 + s1) + (s2 + s3))
        while i < n { let d = a[i] - b[i]; r = d * d + r; i += 1 }
        return r
    }

    @inlinable
    static func sumBlock(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n { s0 += load8(a + i); s1 += load8(a + i + 8); i += 16 }
        while i + 8 <= n { s0 += load8(a + i); i += 8 }
        var r = horizontal(s0 + s1)
        while i < n { r += a[i]; i += 1 }
        return r
    }

    /// Lane sum in a fixed tree order ((0+4)+(2+6)) + ((1+5)+(3+7)), independent of `SIMD.sum()`.
    @inlinable
    static func horizontal(_ v: SIMD8<Float>) -> Float {
        let h = v.lowHalf + v.highHalf
        let q = h.lowHalf + h.highHalf
        return q.x + q.y
    }

    @inlinable @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    // MARK: Elementwise

    /// y ← y + α·x (BLAS saxpy, with a fused multiply-add per element).
    @inlinable
    public static func axpy(_ alpha: Float, _ x: Vector, _ y: MutableVector) {
        precondition(x.count == y.count, "axpy: lengths differ")
        let n = x.count, px = x.baseAddress, py = y.baseAddress
        let a = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(load8(py! + i).addingProduct(a, load8(px! + i)), py! + i); i += 8 }
        while i < n { py![i] = py![i].addingProduct(alpha, px![i]); i += 1 }
    }

    /// y ← α·x + β·y.
    @inlinable
    public static func axpby(_ alpha: Float, _ x: Vector, _ beta: Float, _ y: MutableVector) {
        precondition(x.count == y.count, "axpby: lengths differ")
        let n = x.count, px = x.baseAddress, py = y.baseAddress
        let a = SIMD8<Float>(repeating: alpha), b = SIMD8<Float>(repeating: beta)
        var i = 0
        while i + 8 <= n { store8((b * load8(py! + i)).addingProduct(a, load8(px! + i)), py! + i); i += 8 }
        while i < n { py![i] = (beta * py![i]).addingProduct(alpha, px![i]); i += 1 }
    }

    /// x ← α·x.
    @inlinable
    public static func scale(_ x: MutableVector, by alpha: Float) {
        let n = x.count, p = x.baseAddress
        let a = SIMD8<Float>(repeating: alpha)
        var i = 0
        while i + 8 <= n { store8(load8(p! + i) * a, p! + i); i += 8 }
        while i < n { p![i] *= alpha; i += 1 }
    }

    /// out ← a − b.
    @inlinable
    public static func subtract(_ a: Vector, _ b: Vector, into out: MutableVector) {
        precondition(a.count == b.count && a.count == out.count, "subtract: lengths differ")
        let n = a.count, pa = a.baseAddress, pb = b.baseAddress, po = out.baseAddress
        var i = 0
        while i + 8 <= n { store8(load8(pa! + i) - load8(pb! + i), po! + i); i += 8 }
        while i < n { po![i] = pa![i] - pb![i]; i += 1 }
    }

    /// y ← y + x.
    @inlinable
    public static func add(_ x: Vector, to y: MutableVector) {
        precondition(x.count == y.count, "add: lengths differ")
        let n = x.count, px = x.baseAddress, py = y.baseAddress
        var i = 0
        while i + 8 <= n { store8(load8(py! + i) + load8(px! + i), py! + i); i += 8 }
        while i < n { py![i] += px![i]; i += 1 }
    }

    /// x ← c for every element.
    @inlinable
    public static func fill(_ x: MutableVector, with c: Float) {
        x.update(repeating: c)
    }

    // MARK: Row statistics over a Matrix

    /// out ← Σᵢ wᵢ·rowᵢ / Σᵢ wᵢ over the rows with non-zero weight, accumulated in row order.
    /// With `weights == nil` the plain mean of all rows.
    public static func weightedMean(of m: Matrix, weights: [Double]? = nil, into out: MutableVector) {
        precondition(out.count == m.columns, "weightedMean: output length differs")
        let total = weights.map { $0.reduce(0, +) } ?? Double(m.rows)
        guard total != 0 else { fill(out, with: 0); return }
        let terms = (0..<m.rows).compactMap { i -> (Int, Float)? in
            let w = weights?[i] ?? 1
            return w == 0 ? nil : (i, Float(w / total))
        }
        combineRows(of: m, terms, into: out)
    }

    /// The mean of the rows at `indices` (in the given order), written to `out`.
    public static func mean(of m: Matrix, rows indices: [Int], into out: MutableVector) {
        precondition(out.count == m.columns, "mean: output length differs")
        guard !indices.isEmpty else { fill(out, with: 0); return }
        let w = Float(1.0 / Double(indices.count))
        combineRows(of: m, indices.map { ($0, w) }, into: out)
    }

    /// out ← Σ wᵢ·row_i over `terms` in order, by axpy; blocked by ``block`` columns so that the
    /// output block stays in L1 while every row streams through once. Each element sees the same
    /// operations in the same order as an unblocked loop of axpys, so the blocking changes no bit.
    static func combineRows(of m: Matrix, _ terms: [(row: Int, weight: Float)], into out: MutableVector) {
        let d = m.columns
        m.storage.withUnsafeBufferPointer { s in
            var start = 0
            while start < d {
                let end = min(d, start + block)
                let o = MutableVector(rebasing: out[start ..< end])
                fill(o, with: 0)
                for (i, w) in terms { axpy(w, Vector(rebasing: s[i * d + start ..< i * d + end]), o) }
                start = end
            }
        }
    }

    /// Convenience: mean of all rows as a new array.
    public static func mean(of m: Matrix) -> [Float] {
        var out = [Float](repeating: 0, count: m.columns)
        out.withUnsafeMutableBufferPointer { weightedMean(of: m, into: $0) }
        return out
    }

    /// Coordinate-wise standard deviation of the rows around `mean`:
    /// outⱼ = √( Σᵢ (rowᵢⱼ − meanⱼ)² / (rows − ddof) ).
    ///
    /// `ddof = 1` is the sample form (numpy `std(ddof=1)`, `torch.std`'s default, the form ALIE uses
    /// in ByzFL and in the Karimireddy et al. code); `ddof = 0` the population form. The squares are
    /// accumulated in Float, in row order, one fused multiply-add per element. Requires rows > ddof.
    public static func standardDeviation(of m: Matrix, mean: Vector, ddof: Int = 1, into out: MutableVector) {
        precondition(out.count == m.columns && mean.count == m.columns, "standardDeviation: lengths differ")
        precondition(ddof >= 0 && m.rows > ddof, "standardDeviation: needs more than ddof rows")
        let d = m.columns
        guard d > 0 else { return }
        fill(out, with: 0)
        let pm = mean.baseAddress!, po = out.baseAddress!
        m.storage.withUnsafeBufferPointer { s in
            for r in 0..<m.rows {
                let row = s.baseAddress! + r * d
                var i = 0
                while i + 8 <= d {
                    let dev = load8(row + i) - load8(pm + i)
                    store8(load8(po + i).addingProduct(dev, dev), po + i)
                    i += 8
                }
                while i < d { let dev = row[i] - pm[i]; po[i] = po[i].addingProduct(dev, dev); i += 1 }
            }
        }
        let divisor = Float(m.rows - ddof)
        let dv = SIMD8<Float>(repeating: divisor)
        var i = 0
        while i + 8 <= d { store8((load8(po + i) / dv).squareRoot(), po + i); i += 8 }
        while i < d { po[i] = (po[i] / divisor).squareRoot(); i += 1 }
    }

    /// Squared Euclidean distances between every pair of rows (`result[i*n + j]`, symmetric,
    /// zero diagonal), computed directly from the differences — no Gram-matrix cancellation, so
    /// near-copies get exact small distances — and bit-identical to ``squaredDistance(_:_:)``.
    ///
    /// Blocked for the cache: for each block of 4 096 coordinates (16 KiB per row; 24 rows fit
    /// in L2) all pairs are accumulated before moving on, so the n×d data is read from memory
    /// once instead of n−1 times. Measured at d = 431 080 this beats one Gram sgemm
    /// (n = 24: ~14 ms for the sgemm alone) because the product is memory-bound at such n.
    ///
    /// Any pair involving a non-finite row (a NaN or ±∞ anywhere) is +∞, so such rows rank last
    /// wherever distances are ranked. O(n²·d) flops, O(n·d) memory traffic.
    public static func pairwiseSquaredDistances(_ m: Matrix) -> [Double] {
        let n = m.rows, d = m.columns
        var out = [Double](repeating: 0, count: n * n)
        guard n > 1 else { return out }
        let finite = (0..<n).map { i in m.withRow(i) { allFinite($0) } }
        m.storage.withUnsafeBufferPointer { s in
            let base = s.baseAddress!
            var start = 0
            while start < d {
                let len = min(block, d - start)
                for i in 0..<n where finite[i] {
                    let a = base + i * d + start
                    for j in (i + 1)..<n where finite[j] {
                        out[i * n + j] += Double(distBlock(a, base + j * d + start, len))
                    }
                }
                start += len
            }
        }
        for i in 0..<n {
            for j in (i + 1)..<n {
                let v = finite[i] && finite[j] && out[i * n + j].isFinite ? out[i * n + j] : .infinity
                out[i * n + j] = v
                out[j * n + i] = v
            }
        }
        return out
    }
}

extension Array where Element == Float {
    /// Calls `body` with the array as a ``VectorMath/Vector``.
    @inlinable
    public func withVector<R>(_ body: (VectorMath.Vector) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer(body)
    }
}
