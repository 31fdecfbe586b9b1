/// Running sums of many float vectors, kept in binary64 (drift metrics, traces/FORMAT.md §5.4).
///
/// Why Double: a sum of thousands of deviations in binary32 loses the small persistent part the
/// drift metrics look for to rounding; in binary64 the rounding error of n additions stays below
/// n·2⁻⁵³ of the summands' magnitude. Every function walks the elements in index order (one
/// operation per element, no reassociation), so its results do not depend on the thread count.
extension VectorMath {
    public typealias Accumulator = UnsafeMutableBufferPointer<Double>
    public typealias AccumulatorView = UnsafeBufferPointer<Double>

    /// acc ← acc + α·x, each element as Double(acc) + α·Double(x) (two roundings in binary64).
    public static func accumulate(_ x: Vector, scaledBy alpha: Double = 1, into acc: Accumulator) {
        precondition(x.count == acc.count, "accumulate: lengths differ")
        for i in 0..<x.count { acc[i] += alpha * Double(x[i]) }
    }

    /// acc ← acc + α·(a − b), the difference taken in binary64 (exact for binary32 a, b of
    /// magnitudes within 2²⁹ of each other).
    public static func accumulateDifference(_ a: Vector, _ b: Vector, scaledBy alpha: Double = 1,
        into acc: Accumulator) {
        precondition(a.count == b.count && a.count == acc.count, "accumulateDifference: lengths differ")
        for i in 0..<a.count { acc[i] += alpha * (Double(a[i]) - Double(b[i])) }
    }

    /// ‖x‖ in binary64, summed in index order: the same arithmetic as the norm of an accumulator,
    /// so that ‖Σ xᵢ‖ / Σ ‖xᵢ‖ is at most 1 up to binary64 rounding.
    public static func norm64(_ x: Vector) -> Double {
        var s = 0.0
        for v in x { s += Double(v) * Double(v) }
        return s.squareRoot()
    }

    /// Σ aᵢ·bᵢ of two binary32 vectors in binary64, in index order (the arithmetic of ``norm64(_:)``).
    public static func dot64(_ a: Vector, _ b: Vector) -> Double {
        precondition(a.count == b.count, "dot64: lengths differ")
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i]) * Double(b[i]) }
        return s
    }

    /// ‖a − b‖ in binary64 (differences taken in binary64), summed in index order.
    public static func distance64(_ a: Vector, _ b: Vector) -> Double {
        precondition(a.count == b.count, "distance64: lengths differ")
        var s = 0.0
        for i in 0..<a.count {
            let d = Double(a[i]) - Double(b[i])
            s += d * d
        }
        return s.squareRoot()
    }

    /// ‖acc‖, summed in index order.
    public static func norm(_ acc: AccumulatorView) -> Double {
        var s = 0.0
        for v in acc { s += v * v }
        return s.squareRoot()
    }

    /// Σ xᵢ·accᵢ in binary64, in index order.
    public static func dot(_ x: Vector, _ acc: AccumulatorView) -> Double {
        precondition(x.count == acc.count, "dot: lengths differ")
        var s = 0.0
        for i in 0..<x.count { s += Double(x[i]) * acc[i] }
        return s
    }
}
