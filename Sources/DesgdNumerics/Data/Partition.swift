/// How training samples are distributed over the honest workers.
///
/// - ``labelSkew(classesPerWorker:)``: worker i holds classes (i·k + j) mod C for j = 0..<k (the
///   paper: 20 workers × 3 classes, so every class has 6 holders). The samples of each class are
///   shuffled with `RandomStream(seed, .partition, class: c)` and cut into as many contiguous,
///   equal parts as the class has holders (the first `count mod holders` holders get one more),
///   assigned to holders in increasing worker order.
/// - ``dirichlet(alpha:)``: for each class c, proportions p ~ Dir(α·1ₙ) from Gamma(α) draws of
///   `RandomStream(seed, .partition, class: c)`; the shuffled class samples are cut at the rounded-down
///   cumulative proportions (the last worker takes the remainder) — ByzFL's `dirichlet_niid`.
/// - ``iid``: all samples shuffled with `RandomStream(seed, .partition, class: -1)` and cut into n
///   equal contiguous parts.
///
/// - ``declared``: a live federation's clients hold their own data (docs/federation.md); each honest
///   client declares the classes it holds, and desgd knows nothing more of it.
///
/// Byzantine workers are not partitioned: they sample from the whole training set.
public enum PartitionScheme: Sendable, Codable, Equatable, CustomStringConvertible {
    case labelSkew(classesPerWorker: Int)
    case dirichlet(alpha: Double)
    case iid
    case declared

    public var description: String {
        switch self {
        case .labelSkew(let k): "label-skew:k=\(k)"
        case .dirichlet(let a): "dirichlet:alpha=\(a)"
        case .iid: "iid"
        case .declared: "declared"
        }
    }

    /// Parses `label-skew[:k=K]`, `dirichlet[:alpha=A]`, `iid`.
    public static func parse(_ text: String, defaultK: Int = 3) throws(DataError) -> PartitionScheme {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        let arg = parts.count > 1 ? parts[1].split(separator: "=", maxSplits: 1).map(String.init) : []
        switch parts.first ?? "" {
        case "label-skew", "labelskew", "skew":
            if arg.isEmpty { return .labelSkew(classesPerWorker: defaultK) }
            guard arg.count == 2, arg[0] == "k", let k = Int(arg[1]), k >= 1 else {
                throw DataError("partition '\(text)': use label-skew:k=K with K ≥ 1")
            }
            return .labelSkew(classesPerWorker: k)
        case "dirichlet":
            if arg.isEmpty { return .dirichlet(alpha: 1.0) }
            guard arg.count == 2, arg[0] == "alpha", let a = Double(arg[1]), a > 0, a.isFinite else {
                throw DataError("partition '\(text)': use dirichlet:alpha=A with A > 0")
            }
            return .dirichlet(alpha: a)
        case "iid":
            return .iid
        default:
            throw DataError("unknown partition '\(text)': use label-skew[:k=K], dirichlet[:alpha=A] or iid")
        }
    }
}

/// The samples each honest worker holds: a plain value, serialisable into a trace.
public struct Partition: Sendable, Codable, Equatable {
    public var scheme: PartitionScheme
    public var seed: UInt64
    public var classes: Int
    /// Per honest worker, the training sample indices it holds, grouped by class in increasing
    /// class order: `samples[worker][class]` (empty for classes it does not hold).
    public var samples: [[[Int]]]

    public var workers: Int { samples.count }

    /// A live federation's clients' own data (``PartitionScheme/declared``): no sample is desgd's.
    public static func declared(classes: Int, seed: UInt64) -> Partition {
        Partition(scheme: .declared, seed: seed, classes: classes, samples: [])
    }

    /// The classes worker `w` holds (those with at least one sample), increasing.
    public func classes(of w: Int) -> [Int] {
        (0..<classes).filter { !samples[w][$0].isEmpty }
    }

    /// The workers holding class `c`, increasing.
    public func holders(of c: Int) -> [Int] {
        (0..<workers).filter { !samples[$0][c].isEmpty }
    }

    /// Partitions `data` over `workers` honest workers.
    public static func make(_ scheme: PartitionScheme, data: LabeledImages, workers: Int,
        seed: UInt64) throws(DataError) -> Partition {
        guard workers >= 1 else { throw DataError("partition: need at least one honest worker") }
        let byClass = data.indicesByClass()
        let C = data.classes
        var samples = [[[Int]]](repeating: [[Int]](repeating: [], count: C), count: workers)
        func shuffled(_ c: Int) -> [Int] {
            var idx = byClass[c]
            var r = RandomStream(seed: seed, purpose: .partition, class: c)
            r.shuffle(&idx)
            return idx
        }
        switch scheme {
        case .declared:
            throw DataError("partition: the clients declare their own data; desgd has none to partition")
        case .labelSkew(let k):
            guard k <= C else {
                throw DataError("partition: \(k) classes per worker but the data set has \(C) classes")
            }
            var holders = [[Int]](repeating: [], count: C)
            for w in 0..<workers { for j in 0..<k { holders[(w * k + j) % C].append(w) } }
            if let orphan = holders.firstIndex(where: \.isEmpty) {
                throw DataError("partition: class \(orphan) is held by no worker (\(workers) workers × \(k) classes < "
                    + "\(C) classes); use more workers or classes per worker")
            }
            for c in 0..<C {
                let idx = shuffled(c)
                let h = holders[c].count
                var start = 0
                for (j, w) in holders[c].enumerated() {
                    let size = idx.count / h + (j < idx.count % h ? 1 : 0)
                    samples[w][c] = Array(idx[start ..< start + size])
                    start += size
                }
            }
        case .dirichlet(let alpha):
            for c in 0..<C {
                let idx = shuffled(c)
                var r = RandomStream(seed: seed, purpose: .partition, worker: 1, class: c)
                let g = (0..<workers).map { _ in r.nextGamma(shape: alpha) }
                let total = g.reduce(0, +)
                var start = 0, cumulative = 0.0
                for w in 0..<workers {
                    cumulative += g[w] / total
                    let end = w == workers - 1 ? idx.count : min(idx.count, Int(cumulative * Double(idx.count)))
                    if end > start { samples[w][c] = Array(idx[start ..< end]) }
                    start = max(start, end)
                }
            }
        case .iid:
            var idx = Array(0..<data.count)
            var r = RandomStream(seed: seed, purpose: .partition, class: -1)
            r.shuffle(&idx)
            for w in 0..<workers {
                let lo = w * idx.count / workers, hi = (w + 1) * idx.count / workers
                for i in idx[lo ..< hi] { samples[w][Int(data.labels[i])].append(i) }
            }
            for w in 0..<workers { for c in 0..<C { samples[w][c].sort() } }
        }
        return Partition(scheme: scheme, seed: seed, classes: C, samples: samples)
    }
}
