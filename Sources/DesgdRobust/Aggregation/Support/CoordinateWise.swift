import DesgdNumerics

/// The engines of the coordinate-wise rules (median, trimmed mean, MeaMed, Bulyan's last step).
///
/// Layout: the n×d messages are row-major, so the n values of one coordinate are d floats apart.
/// Both engines take the columns eight at a time: row i contributes one contiguous load of eight
/// floats, turned into order-preserving keys (``VectorKeys``), so no transposition is needed and
/// eight coordinates are ordered by the same instructions (a sorting network on SIMD lanes).
/// Columns are split into fixed chunks of ``chunkColumns`` — the unit of parallel work, which
/// does not depend on the thread count — and each chunk allocates its scratch once.
///
/// - ``trimmedMeans(_:trim:executor:into:)``: median and trimmed mean, fully vectorised.
/// - ``run(_:on:executor:into:)``: any ``CoordinateKernel`` (MeaMed, Bulyan): keys packed with
///   their input index, sorted by (value, index) — the catalogue's tie rule — and handed to the
///   kernel one coordinate at a time.
///
/// Order: −∞ < finite < +∞ < NaN (every NaN equal, −0 = +0), so NaN and ±∞ never crash or stall
/// an ordering: they sit at the ends, where the trimming rules drop them.
///
/// Determinism: every coordinate is computed independently from the same keys, so the output is
/// bit-identical for any number of threads.
enum CoordinateWise {
    /// Columns per unit of parallel work (a multiple of 8).
    static let chunkColumns = 2048
    /// Up to this many inputs the keys are ordered by the sorting network; above, per
    /// coordinate by quickselect or heapsort.
    static let vectorMaxRows = 64

    /// The shared driver: calls `body(keys, lanes, output, used, laneUsed, scratch)` for every
    /// group of up to eight columns, with `keys[i]` the keys of row i at those columns, `output`
    /// pointing at the group's first output, `used` at the chunk's per-row counters, `laneUsed`
    /// at per-row, per-lane counters (added to `used` when the chunk ends) and `scratch` at
    /// `scratchBytes` bytes owned by the chunk. Returns the per-row counters summed over chunks.
    static func forEachColumnGroup(
        _ matrix: Matrix, executor: ParallelExecutor, scratchBytes: Int, into output: UnsafeMutableBufferPointer<Float>,
        _ body: @Sendable (_ keys: UnsafeMutablePointer<SIMD8<Int32>>, _ lanes: Int,
                           _ output: UnsafeMutablePointer<Float>,
                           _ used: UnsafeMutablePointer<Int>, _ laneUsed: UnsafeMutablePointer<SIMD8<Int32>>,
                           _ scratch: UnsafeMutableRawPointer) -> Void
    ) -> [Int] {
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
                    let keys = UnsafeMutablePointer<SIMD8<Int32>>.allocate(capacity: n)
                    // Per-lane counters, summed into `used` once per chunk (a horizontal sum per
                    // input and group would cost more than the ordering itself).
                    let laneUsed = UnsafeMutablePointer<SIMD8<Int32>>.allocate(capacity: n)
                    laneUsed.initialize(repeating: .zero, count: n)
                    let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, scratchBytes), alignment: 64)
                    defer { keys.deallocate(); laneUsed.deallocate(); scratch.deallocate() }
                    let end = min(d, (chunk + 1) * chunkColumns)
                    var column = chunk * chunkColumns
                    while column < end {
                        let lanes = min(8, end - column)
                        for i in 0..<n {
                            keys[i] = VectorKeys.encode(VectorKeys.load(src.base + i * d + column, lanes: lanes))
                        }
                        body(keys, lanes, out.base + column, counts.base + chunk * n, laneUsed, scratch)
                        column += lanes
                    }
                    for i in 0..<n { counts.base[chunk * n + i] += Int(laneUsed[i].wrappedSum()) }
                }
            }
        }
        var used = [Int](repeating: 0, count: n)
        for chunk in 0..<chunks { for i in 0..<n { used[i] += usedPerChunk[chunk * n + i] } }
        return used
    }

    /// Runs `kernel` on every coordinate of `matrix` into `output`; returns, per row, the number
    /// of coordinates at which the kernel used that row's value. Each coordinate's keys reach the
    /// kernel packed as `(key << 32) | index` (``PackedKey``), sorted when n ≤ ``vectorMaxRows``.
    static func run<K: CoordinateKernel>(_ kernel: K, on matrix: Matrix, executor: ParallelExecutor,
                                         into output: UnsafeMutableBufferPointer<Float>) -> [Int] {
        let n = matrix.rows
        let network = n <= vectorMaxRows ? SortingNetwork.comparators(n) : nil
        let indices = (0..<n).map { SIMD8<Int64>(repeating: Int64($0)) }
        return forEachColumnGroup(matrix, executor: executor, scratchBytes: n * (MemoryLayout<SIMD8<Int64>>.stride + 8),
                                  into: output) { keys, lanes, out, used, _, scratch in
            let packed = scratch.bindMemory(to: SIMD8<Int64>.self, capacity: n)
            let column = (scratch + n * MemoryLayout<SIMD8<Int64>>.stride).bindMemory(to: Int64.self, capacity: n)
            for i in 0..<n { packed[i] = SIMD8<Int64>(truncatingIfNeeded: keys[i]) &<< 32 | indices[i] }
            if let network { SortingNetwork.apply(network, to: packed) }
            let lanesOf = UnsafeRawPointer(packed).assumingMemoryBound(to: Int64.self)
            for lane in 0..<lanes {
                for r in 0..<n { column[r] = lanesOf[r * 8 + lane] }
                out[lane] = kernel.combine(column, count: n, sorted: network != nil, used: used)
            }
        }
    }
}

/// One coordinate's rule: reduces n packed keys (``PackedKey``) to one output value.
protocol CoordinateKernel: Sendable {
    /// `keys` holds the n packed values of one coordinate — in (value, index) order when
    /// `sorted`, else in input order — and may be reordered. Adds 1 to `used[i]` for every
    /// input i whose value entered the output.
    func combine(_ keys: UnsafeMutablePointer<Int64>, count n: Int, sorted: Bool,
        used: UnsafeMutablePointer<Int>) -> Float
}

/// A value and its input index in one Int64, `(key << 32) | index` with `key` the signed order
/// key of ``VectorKeys``: signed comparison of packed keys is the (value, index) order.
enum PackedKey {
    @inline(__always)
    static func value(_ packed: Int64) -> Float {
        let key = Int32(truncatingIfNeeded: packed >> 32)
        return Float(bitPattern: UInt32(bitPattern: key ^ ((key >> 31) & 0x7FFF_FFFF)))
    }

    @inline(__always)
    static func index(_ packed: Int64) -> Int { Int(packed & 0xFFFF_FFFF) }

    /// Whether two packed keys hold the same value (whatever their indices).
    @inline(__always)
    static func sameValue(_ a: Int64, _ b: Int64) -> Bool { a >> 32 == b >> 32 }
}

/// In-place ordering of packed keys for n > ``CoordinateWise/vectorMaxRows``, allocation-free.
/// Keys are distinct (they contain the index), so every order is total and deterministic.
enum KeyOrdering {
    static func insertionSort(_ p: UnsafeMutablePointer<Int64>, _ n: Int) {
        guard n > 1 else { return }
        for i in 1..<n {
            let x = p[i]
            var j = i - 1
            while j >= 0 && p[j] > x { p[j + 1] = p[j]; j -= 1 }
            p[j + 1] = x
        }
    }

    /// Heapsort: O(n log n), no scratch.
    static func sort(_ p: UnsafeMutablePointer<Int64>, _ n: Int) {
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

    /// Hoare quickselect on p[lo..<hi] (nth-element): afterwards p[k] holds the key of rank k,
    /// keys before it are smaller and keys after it larger. Median-of-three pivots; ranges
    /// below 16 keys are finished by insertion sort. O(hi − lo) expected.
    static func select(_ p: UnsafeMutablePointer<Int64>, _ lo: Int, _ hi: Int, _ k: Int) {
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

extension UnsafeMutablePointer where Pointee == Int64 {
    @inline(__always)
    func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}

/// Mean of the values of ranks b..<n−b (drop b smallest and b largest), summed in Double in
/// rank order. Unsorted keys are split by two quickselects and the kept ranks then sorted: the
/// quickselects leave them in an order that depends on the input order, and a Double sum in that
/// order would make the output depend on how the inputs are permuted (the sort makes it
/// bit-identical under permutations, as the sorted path for n ≤ 64). The median is the case
/// b = ⌊(n−1)/2⌋. Serves n > ``CoordinateWise/vectorMaxRows``; smaller n take the fully
/// vectorised ``CoordinateWise/trimmedMeans(_:trim:executor:into:)``.
struct TrimmedMeanKernel: CoordinateKernel {
    let trim: Int

    func combine(_ p: UnsafeMutablePointer<Int64>, count n: Int, sorted: Bool,
        used: UnsafeMutablePointer<Int>) -> Float {
        let b = min(trim, (n - 1) / 2)
        if !sorted {
            if b > 0 {
                KeyOrdering.select(p, 0, n, b)
                KeyOrdering.select(p, b, n, n - b - 1)
            }
            KeyOrdering.sort(p + b, n - 2 * b)
        }
        var sum = 0.0
        for r in b..<(n - b) {
            sum += Double(PackedKey.value(p[r]))
            used[PackedKey.index(p[r])] += 1
        }
        return Float(sum / Double(n - 2 * b))
    }
}

/// Mean of the `keep` values closest to the median (MeaMed, Xie et al. 2018; Bulyan's last step
/// with keep = β). Ranking by (|value − median|, index): in sorted order the closest remaining
/// value is always at the inner edge of the values below or above the median, so two cursors
/// walk outwards; on the lower side a run of equal values is visited lowest index first. NaN and
/// ±∞ are at distance +∞ and come last. Summed in Double in selection order.
struct ClosestToMedianKernel: CoordinateKernel {
    let keep: Int

    func combine(_ p: UnsafeMutablePointer<Int64>, count n: Int, sorted: Bool,
        used: UnsafeMutablePointer<Int>) -> Float {
        let m = max(1, min(keep, n))
        if !sorted { KeyOrdering.sort(p, n) }
        let median = n % 2 == 1 ? Double(PackedKey.value(p[n / 2]))
            : (Double(PackedKey.value(p[n / 2 - 1])) + Double(PackedKey.value(p[n / 2]))) / 2
        @inline(__always) func distance(_ r: Int) -> Double {
            let x = abs(Double(PackedKey.value(p[r])) - median)
            return x.isNaN ? .infinity : x
        }
        @inline(__always) func runStart(_ end: Int) -> Int {
            var a = end
            while a > 0 && PackedKey.sameValue(p[a - 1], p[end]) { a -= 1 }
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
                takeLow = Ranking.precedes(distance(lowNext), PackedKey.index(p[lowNext]),
                                           distance(high), PackedKey.index(p[high]))
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
            sum += Double(PackedKey.value(p[r]))
            used[PackedKey.index(p[r])] += 1
        }
        return Float(sum / Double(m))
    }
}
