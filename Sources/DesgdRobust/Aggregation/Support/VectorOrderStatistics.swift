import DesgdNumerics

extension CoordinateWise {
    /// Coordinate-wise trimmed mean of ranks b..<n−b (the median for b = ⌊(n−1)/2⌋) into
    /// `output`; returns per input the number of coordinates at which its value was used.
    ///
    /// For n ≤ ``vectorMaxRows`` everything runs on eight coordinates at once: Batcher's
    /// odd–even merge network sorts the n key vectors lane by lane with branch-free min/max; the
    /// kept ranks are summed in sorted order in Double (so the output is bit-identical under any
    /// permutation of the inputs); a second pass over the inputs in index order attributes the
    /// kept ranks to inputs by the (value, index) rule (``VectorKeys/attributeRanks``). Larger n
    /// go through ``run(_:on:executor:into:)`` with quickselect (``TrimmedMeanKernel``).
    static func trimmedMeans(_ matrix: Matrix, trim: Int, executor: ParallelExecutor,
                             into output: UnsafeMutableBufferPointer<Float>) -> [Int] {
        let n = matrix.rows
        if n > vectorMaxRows { return run(TrimmedMeanKernel(trim: trim), on: matrix, executor: executor, into: output) }
        let b = min(max(0, trim), max(0, (n - 1) / 2))
        let network = SortingNetwork.comparators(n)
        return forEachColumnGroup(matrix, executor: executor, scratchBytes: n * MemoryLayout<SIMD8<Int32>>.stride,
                                  into: output) { keys, lanes, out, _, laneUsed, scratch in
            let sorted = scratch.bindMemory(to: SIMD8<Int32>.self, capacity: n)
            sorted.update(from: keys, count: n)
            SortingNetwork.apply(network, to: sorted)
            var sum = SIMD8<Double>()
            for r in b..<(n - b) { sum += SIMD8<Double>(VectorKeys.decode(sorted[r])) }
            let mean = SIMD8<Float>(sum / Double(n - 2 * b))
            for lane in 0..<lanes { out[lane] = mean[lane] }
            VectorKeys.attributeRanks(original: keys, count: n, low: sorted[b], high: sorted[n - b - 1],
                                      ranks: b...(n - b - 1), lanes: lanes, used: laneUsed)
        }
    }
}

/// Eight values at a time as Int32 keys whose signed order is the total order
/// −∞ < finite < +∞ < NaN (every NaN equal, −0 = +0) (``PackedKey`` adds the input index).
enum VectorKeys {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, lanes: Int) -> SIMD8<Float> {
        if lanes == 8 { return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        var v = SIMD8<Float>()
        for lane in 0..<lanes { v[lane] = p[lane] }
        return v
    }

    @inline(__always)
    static func encode(_ v: SIMD8<Float>) -> SIMD8<Int32> {
        let bits = unsafeBitCast(v, to: SIMD8<Int32>.self)
        // Negative floats: flip the magnitude bits so that larger magnitudes sort lower.
        var key = bits ^ ((bits &>> 31) & 0x7FFF_FFFF)
        key.replace(with: 0, where: v .== 0)
        key.replace(with: .max, where: v .!= v)
        return key
    }

    @inline(__always)
    static func decode(_ key: SIMD8<Int32>) -> SIMD8<Float> {
        unsafeBitCast(key ^ ((key &>> 31) & 0x7FFF_FFFF), to: SIMD8<Float>.self)
    }

    /// Adds 1 to lane l of `used[i]` for every lane where input i holds one of the ranks `ranks` in the
    /// (value, index) order, given the keys `low`/`high` found at the first and last of those
    /// ranks. Inputs strictly between the two keys are inside; among inputs equal to a boundary
    /// key, ranks are assigned in index order.
    @inline(__always)
    static func attributeRanks(original: UnsafePointer<SIMD8<Int32>>, count n: Int, low: SIMD8<Int32>,
                               high: SIMD8<Int32>,
                               ranks: ClosedRange<Int>, lanes: Int, used: UnsafeMutablePointer<SIMD8<Int32>>) {
        let one = SIMD8<Int32>(repeating: 1), zero = SIMD8<Int32>()
        let active = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< SIMD8<Int32>(repeating: Int32(lanes))
        // Fast path: the kept ranks all have keys in [low, high]; when exactly as many inputs
        // lie in [low, high] as there are kept ranks (no ties across a boundary, the usual case
        // for real-valued data), those inputs are the kept ones.
        var between = zero
        for i in 0..<n { between &+= zero.replacing(with: one, where: (original[i] .>= low) .& (original[i] .<= high)) }
        if all((between .== SIMD8<Int32>(repeating: Int32(ranks.count))) .| .!active) {
            for i in 0..<n {
                used[i] &+= zero.replacing(with: one,
                    where: (original[i] .>= low) .& (original[i] .<= high) .& active) }
            return
        }
        var belowLow = zero, belowHigh = zero
        for i in 0..<n {
            belowLow &+= zero.replacing(with: one, where: original[i] .< low)
            belowHigh &+= zero.replacing(with: one, where: original[i] .< high)
        }
        let first = SIMD8<Int32>(repeating: Int32(ranks.lowerBound)),
            last = SIMD8<Int32>(repeating: Int32(ranks.upperBound))
        var equalLow = zero, equalHigh = zero
        for i in 0..<n {
            let key = original[i]
            let isLow = key .== low
            let isHigh = (key .== high) .& .!isLow
            let rankLow = belowLow &+ equalLow, rankHigh = belowHigh &+ equalHigh
            let inside = (key .> low) .& (key .< high)
            let lowKept = isLow .& (rankLow .>= first) .& (rankLow .<= last)
            let highKept = isHigh .& (rankHigh .>= first) .& (rankHigh .<= last)
            let kept = (inside .| lowKept .| highKept) .& active
            equalLow &+= zero.replacing(with: one, where: isLow)
            equalHigh &+= zero.replacing(with: one, where: isHigh)
            used[i] &+= zero.replacing(with: one, where: kept)
        }
    }
}

/// Batcher's odd–even merge sorting network (Knuth, TAOCP vol. 3, §5.3.4) for any n: the
/// network of the next power of two with every comparator that touches a position ≥ n removed
/// (those positions would hold +∞ and never move). O(n log² n) comparators.
enum SortingNetwork {
    static func comparators(_ n: Int) -> [(Int, Int)] {
        var pairs: [(Int, Int)] = []
        var p = 1
        while p < n {
            var k = p
            while k >= 1 {
                var j = k % p
                while j + k < n {
                    for i in 0..<min(k, n - j - k) where (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.append((i + j, i + j + k))
                    }
                    j += 2 * k
                }
                k /= 2
            }
            p *= 2
        }
        return pairs
    }

    /// Sorts `keys[0..<n]` lane by lane (ascending) with the given comparators.
    @inline(__always)
    static func apply<V: SIMD>(_ network: [(Int, Int)], to keys: UnsafeMutablePointer<V>) where V.Scalar: Comparable {
        for (a, b) in network {
            let x = keys[a], y = keys[b]
            keys[a] = pointwiseMin(x, y)
            keys[b] = pointwiseMax(x, y)
        }
    }
}
