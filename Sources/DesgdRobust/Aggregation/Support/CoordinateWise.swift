import DesgdNumerics

/// The engine of the coordinate-wise rules (median, trimmed mean, MeaMed, Bulyan's last step).
///
/// Layout: the n×d messages are row-major, so the n values of one coordinate are d floats apart.
/// The engine walks the columns in fixed chunks of ``chunkColumns`` (the unit of parallel work,
/// independent of the thread count) and, inside a chunk, in tiles of ``tileColumns``: each row
/// contributes one contiguous run of `tileColumns` floats, transposed into a small key buffer so
/// that the n values of a coordinate are adjacent. The kernel then orders or selects those n keys
/// in place. All scratch is allocated once per chunk, none per coordinate.
///
/// Keys: each value becomes a 64-bit key `(order(value) << 32) | index`, where `order` maps a
/// Float to a UInt32 whose unsigned order is the total order −∞ < finite < +∞ < NaN (every NaN
/// equal, −0 = +0). Sorting these integers sorts by (value, index) — the catalogue's tie rule —
/// with NaN ranked last, so NaN and ±∞ never crash or stall a selection: they sit at the ends,
/// where the trimming rules drop them.
///
/// Determinism: every coordinate is computed independently from the same keys, so the output is
/// bit-identical for any number of threads.
enum CoordinateWise {
    static let chunkColumns = 2048
    static let tileColumns = 16

    /// Runs `kernel` on every coordinate of `matrix` into `output`; returns, per row, the number
    /// of coordinates at which the kernel used that row's value.
    static func run<K: CoordinateKernel>(_ kernel: K, on matrix: Matrix, executor: ParallelExecutor,
                                         into output: UnsafeMutableBufferPointer<Float>) -> [Int] {
        let n = matrix.rows, d = matrix.columns
        precondition(output.count == d, "coordinate-wise rule: output length differs")
        guard n > 0, d > 0 else {
            VectorMath.fill(output, with: 0)
            return [Int](repeating: 0, count: n)
        }
        let chunks = (d + chunkColumns - 1) / chunkColumns
        var usedPerChunk = [Int](repeating: 0, count: chunks * n)
        matrix.storage.withUnsafeBufferPointer { source in
            usedPerChunk.withUnsafeMutableBufferPointer { used in
                let src = SendablePointer(UnsafeMutablePointer(mutating: source.baseAddress!))
                let out = SendablePointer(output.baseAddress!)
                let counts = SendablePointer(used.baseAddress!)
                executor.forEach(chunks) { chunk in
                    let start = chunk * chunkColumns, end = min(d, start + chunkColumns)
                    let tile = UnsafeMutablePointer<UInt64>.allocate(capacity: tileColumns * n)
                    defer { tile.deallocate() }
                    let chunkCounts = counts.base + chunk * n
                    var column = start
                    while column < end {
                        let width = min(tileColumns, end - column)
                        for i in 0..<n {
                            let row = src.base + i * d + column
                            for k in 0..<width { tile[k * n + i] = OrderKey.pack(row[k], index: i) }
                        }
                        for k in 0..<width {
                            out.base[column + k] = kernel.combine(tile + k * n, count: n, used: chunkCounts)
                        }
                        column += width
                    }
                }
            }
        }
        var used = [Int](repeating: 0, count: n)
        for chunk in 0..<chunks { for i in 0..<n { used[i] += usedPerChunk[chunk * n + i] } }
        return used
    }
}

/// One coordinate's rule: reduces n packed keys (see ``CoordinateWise``) to one output value.
protocol CoordinateKernel: Sendable {
    /// `keys` holds the n packed values of one coordinate in input order and may be reordered.
    /// Adds 1 to `used[i]` for every input i whose value entered the output.
    func combine(_ keys: UnsafeMutablePointer<UInt64>, count n: Int, used: UnsafeMutablePointer<Int>) -> Float
}

/// Float ↔ order-preserving integer keys.
enum OrderKey {
    static let nanKey: UInt32 = 0xFFFF_FFFF

    @inline(__always)
    static func order(_ x: Float) -> UInt32 {
        if x.isNaN { return nanKey }
        let bits = (x == 0 ? 0 : x).bitPattern
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    @inline(__always)
    static func pack(_ x: Float, index: Int) -> UInt64 {
        UInt64(order(x)) << 32 | UInt64(truncatingIfNeeded: index)
    }

    @inline(__always)
    static func value(_ key: UInt64) -> Float {
        let k = UInt32(truncatingIfNeeded: key >> 32)
        if k == nanKey { return .nan }
        return Float(bitPattern: k & 0x8000_0000 != 0 ? k & 0x7FFF_FFFF : ~k)
    }

    @inline(__always)
    static func index(_ key: UInt64) -> Int { Int(UInt32(truncatingIfNeeded: key)) }

    /// Whether two keys hold the same value (whatever their indices).
    @inline(__always)
    static func sameValue(_ a: UInt64, _ b: UInt64) -> Bool { a >> 32 == b >> 32 }
}

/// In-place ordering of packed keys, allocation-free. Keys are distinct (they contain the
/// index), so every order below is total and deterministic.
enum KeyOrdering {
    /// Up to this many keys a straight insertion sort is the fastest full ordering.
    static let smallCount = 32

    static func insertionSort(_ p: UnsafeMutablePointer<UInt64>, _ n: Int) {
        guard n > 1 else { return }
        for i in 1..<n {
            let x = p[i]
            var j = i - 1
            while j >= 0 && p[j] > x { p[j + 1] = p[j]; j -= 1 }
            p[j + 1] = x
        }
    }

    /// Full ascending sort: insertion sort for small n, heapsort (O(n log n), no scratch) above.
    static func sort(_ p: UnsafeMutablePointer<UInt64>, _ n: Int) {
        if n <= smallCount { insertionSort(p, n); return }
        func siftDown(_ start: Int, _ end: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end && p[child] < p[child + 1] { child += 1 }
                if p[root] >= p[child] { return }
                p.swapAt(root, child)
                root = child
            }
        }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            p.swapAt(0, end)
            siftDown(0, end)
        }
    }

    /// Hoare quickselect on p[lo..<hi]: afterwards p[k] holds the key of rank k within the whole
    /// range, keys before it are smaller and keys after it larger. Median-of-three pivots;
    /// ranges below 16 keys are finished by insertion sort. O(hi − lo) expected.
    static func select(_ p: UnsafeMutablePointer<UInt64>, _ lo: Int, _ hi: Int, _ k: Int) {
        var lo = lo, hi = hi - 1
        while hi > lo {
            if hi - lo < 16 { insertionSort(p + lo, hi - lo + 1); return }
            let mid = lo + (hi - lo) / 2
            if p[mid] < p[lo] { p.swapAt(mid, lo) }
            if p[hi] < p[lo] { p.swapAt(hi, lo) }
            if p[hi] < p[mid] { p.swapAt(hi, mid) }
            let pivot = p[mid]
            var i = lo, j = hi
            while i <= j {
                while p[i] < pivot { i += 1 }
                while p[j] > pivot { j -= 1 }
                if i <= j { p.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return }
        }
    }
}

extension UnsafeMutablePointer where Pointee == UInt64 {
    @inline(__always)
    func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}

/// Median of n values; for even n the mean of the two middle values (numpy/ByzFL convention,
/// reference §7 pitfall 1), computed in Double and rounded once. Both middle values count as used.
struct MedianKernel: CoordinateKernel {
    func combine(_ p: UnsafeMutablePointer<UInt64>, count n: Int, used: UnsafeMutablePointer<Int>) -> Float {
        let (lower, upper) = MedianKernel.middle(p, n)
        used[OrderKey.index(lower)] += 1
        if n % 2 == 1 { return OrderKey.value(lower) }
        used[OrderKey.index(upper)] += 1
        return Float((Double(OrderKey.value(lower)) + Double(OrderKey.value(upper))) / 2)
    }

    /// The keys of ranks ⌊(n−1)/2⌋ and ⌊n/2⌋ (equal for odd n), by quickselect for large n.
    @inline(__always)
    static func middle(_ p: UnsafeMutablePointer<UInt64>, _ n: Int) -> (UInt64, UInt64) {
        if n <= KeyOrdering.smallCount {
            KeyOrdering.insertionSort(p, n)
            return (p[(n - 1) / 2], p[n / 2])
        }
        KeyOrdering.select(p, 0, n, n / 2)
        let upper = p[n / 2]
        if n % 2 == 1 { return (upper, upper) }
        var lower = p[0]
        for i in 1..<(n / 2) where p[i] > lower { lower = p[i] }
        return (lower, upper)
    }
}

/// Mean of the values of ranks b..<n−b (drop b smallest and b largest), summed in Double. For
/// n ≤ 32 the kept values are summed in sorted order (bit-identical under any permutation of
/// the inputs); above, in quickselect order.
struct TrimmedMeanKernel: CoordinateKernel {
    let trim: Int

    func combine(_ p: UnsafeMutablePointer<UInt64>, count n: Int, used: UnsafeMutablePointer<Int>) -> Float {
        let b = min(trim, (n - 1) / 2)
        if n <= KeyOrdering.smallCount {
            KeyOrdering.insertionSort(p, n)
        } else if b > 0 {
            KeyOrdering.select(p, 0, n, b)
            KeyOrdering.select(p, b, n, n - b - 1)
        }
        var sum = 0.0
        for r in b..<(n - b) {
            sum += Double(OrderKey.value(p[r]))
            used[OrderKey.index(p[r])] += 1
        }
        return Float(sum / Double(n - 2 * b))
    }
}

/// Mean of the `keep` values closest to the median (MeaMed, Xie et al. 2018; Bulyan's last step
/// with keep = β). Ranking by (|value − median|, index): after sorting, the closest remaining
/// value is always at the inner edge of the values below or above the median, so two cursors
/// walk outwards; on the lower side a run of equal values is visited lowest index first. NaN and
/// ±∞ are at distance +∞ and come last.
struct ClosestToMedianKernel: CoordinateKernel {
    let keep: Int

    func combine(_ p: UnsafeMutablePointer<UInt64>, count n: Int, used: UnsafeMutablePointer<Int>) -> Float {
        let m = max(1, min(keep, n))
        KeyOrdering.sort(p, n)
        let median = n % 2 == 1 ? Double(OrderKey.value(p[n / 2]))
            : (Double(OrderKey.value(p[n / 2 - 1])) + Double(OrderKey.value(p[n / 2]))) / 2
        @inline(__always) func distance(_ r: Int) -> Double {
            let x = abs(Double(OrderKey.value(p[r])) - median)
            return x.isNaN ? .infinity : x
        }
        @inline(__always) func runStart(_ end: Int) -> Int {
            var a = end
            while a > 0 && OrderKey.sameValue(p[a - 1], p[end]) { a -= 1 }
            return a
        }
        // Lower side: remaining positions 0...lowEnd; candidate = lowNext inside the run
        // lowStart...lowEnd of equal values. Upper side: candidate = high.
        var lowEnd = (n - 1) / 2, lowStart = runStart(lowEnd), lowNext = lowStart
        var high = lowEnd + 1
        var sum = 0.0
        for _ in 0..<m {
            let takeLow: Bool
            if lowEnd < 0 { takeLow = false } else if high >= n { takeLow = true } else {
                takeLow = Ranking.precedes(distance(lowNext), OrderKey.index(p[lowNext]),
                                           distance(high), OrderKey.index(p[high]))
            }
            let r: Int
            if takeLow {
                r = lowNext
                lowNext += 1
                if lowNext > lowEnd {
                    lowEnd = lowStart - 1
                    if lowEnd >= 0 { lowStart = runStart(lowEnd); lowNext = lowStart }
                }
            } else {
                r = high
                high += 1
            }
            sum += Double(OrderKey.value(p[r]))
            used[OrderKey.index(p[r])] += 1
        }
        return Float(sum / Double(m))
    }
}
