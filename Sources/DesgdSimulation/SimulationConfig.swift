import DesgdNumerics
import DesgdRobust
import Foundation

/// Where the training data comes from.
public enum DataSource: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Real Fashion-MNIST from a directory (`nil`: `$DESGD_DATA`, then the Debian package's location).
    case fashionMNIST(directory: String?)
    /// The deterministic synthetic data set of ``Dataset/synthetic(trainCount:testCount:seed:noise:)``.
    case synthetic(train: Int, test: Int, seed: UInt64)
    /// A live federation's clients' own data (docs/federation.md), described in the trace's `engine`:
    /// desgd never reads it.
    case external

    public var description: String {
        switch self {
        case .fashionMNIST(let d): "fashion-mnist" + (d.map { ":\($0)" } ?? "")
        case .synthetic(let tr, let te, let s): "synthetic:train=\(tr),test=\(te),seed=\(s)"
        case .external: "external"
        }
    }

    /// Loads the data set.
    public func load() throws(DataError) -> Dataset {
        switch self {
        case .fashionMNIST(let d): try Dataset.fashionMNIST(directory: try Dataset.locate(explicit: d))
        case .synthetic(let tr, let te, let s): Dataset.synthetic(trainCount: tr, testCount: te, seed: s)
        case .external: throw DataError("the clients' own data is theirs: desgd cannot load it")
        }
    }
}

/// Every hyper-parameter of a run as one value (docs/design.md §3). It serialises losslessly (it is
/// the trace header's configuration) and validates itself before any training starts.
///
/// Defaults are the paper's (`--preset paper` differs from them only in nothing: the defaults *are*
/// the paper); ``quick`` is the one-minute configuration of the quick start.
public struct SimulationConfig: Sendable, Codable, Equatable {
    /// DeSGD (class-wise momentum and aggregation, Algorithm 1) or the SGD baseline (every worker
    /// sends a momentum of its whole local data every round).
    public enum Mode: String, Sendable, Codable, CaseIterable { case desgd, sgd }
    /// Where momentum lives: on the workers (the paper's choice) or on the server (the ablation of
    /// the paper's Fig. 3: workers send gradients, the server keeps an EMA of its update).
    public enum MomentumPlacement: String, Sendable, Codable, CaseIterable { case local, global }
    /// How the server picks the class set S_t: cyclic (c = (t·K + j) mod C) or K distinct classes
    /// uniformly at random (unbiased, Assumption 3).
    public enum Schedule: String, Sendable, Codable, CaseIterable { case cyclic, random }

    public var mode: Mode = .desgd
    public var momentum: MomentumPlacement = .local
    public var model: ModelArchitecture = .lenet
    public var backend: NumericBackend = .openblas
    public var data: DataSource = .fashionMNIST(directory: nil)
    public var honestWorkers = 20
    public var byzantineWorkers = 4
    /// The f the aggregator is told; `nil` means the true number of Byzantine workers.
    public var declaredF: Int?
    public var partition: PartitionScheme = .labelSkew(classesPerWorker: 3)
    public var batchSize = 50
    /// Momentum β of m ← β·m + (1−β)·g (docs/design.md §2).
    public var beta: Float = 0.9
    /// Decay of stale entries of the global class-momentum buffer (eq. 15); `nil` means β.
    public var bufferDecay: Float?
    /// Weight γ of the buffer average in the update (eq. 16).
    public var gamma: Float = 0.5
    public var learningRate: Float = 0.1
    public var weightDecay: Float = 5e-4
    public var rounds = 3000
    /// K = |S_t|.
    public var classesPerRound = 1
    public var schedule: Schedule = .cyclic
    /// Aggregation rule and pre-aggregator chain, in the catalogue's spec syntax.
    public var aggregator = "mean"
    public var preAggregators = ""
    /// Attack, in the catalogue's spec syntax.
    public var attack = "none"
    /// Evaluate on the whole test set every this many rounds (and after the last round).
    public var evaluationInterval = 50
    public var seed: UInt64 = 1
    /// Threads used. Results do not depend on it; recorded for information.
    public var threads = 2
    /// A live federation on the clients' own model and data (docs/federation.md): what the clients
    /// declare of them. Present exactly when `model`, `data` and `partition` are `external`,
    /// `external` and `declared`; absent (and not encoded) in every simulated run.
    public var clients: ClientSetup?

    public init() {}

    /// What a live federation's clients declare of their own model and data: all the server's half
    /// of a round needs (``AggregationServer``).
    public struct ClientSetup: Sendable, Codable, Equatable {
        /// d, the length of the model's flat parameter vector.
        public var parameterCount: Int
        /// C, the classes of the clients' task.
        public var classes: Int
        /// Per honest worker, the classes it holds, increasing.
        public var holdings: [[Int]]
        public init(parameterCount: Int, classes: Int, holdings: [[Int]]) {
            self.parameterCount = parameterCount
            self.classes = classes
            self.holdings = holdings
        }

        /// Per class, the honest workers holding it, increasing: one pass over the holdings (a reader
        /// validates headers with C and n up to 1 000; class by class would be C·n·C steps).
        public var holdersByClass: [[Int]] {
            var out = [[Int]](repeating: [], count: max(0, classes))
            for (w, held) in holdings.enumerated() {
                for c in held where out.indices.contains(c) { out[c].append(w) }
            }
            return out
        }

        /// d: up to 2³¹ − 1 values, so that every message's byte count and index fits the trace's
        /// fields; the memory limit bounds what a run can actually hold.
        public static let parameterCountRange = 1...Int(Int32.max)
        /// C: at least 2; at most 1 000 (ImageNet's; the server holds C model-sized vectors).
        public static let classesRange = 2...1_000
    }

    /// The paper's setup (Section IV-A): lenet, 20 honest workers × 3 classes, 4 Byzantine, batch
    /// 50, β 0.9, γ 0.5, η 0.1, weight decay 5e-4, 3 000 rounds, one class per round, cyclic.
    public static var paper: SimulationConfig { SimulationConfig() }

    /// The quick start: the paper's workers, partition and hyper-parameters on the `small` model
    /// for 300 rounds (about a minute on 2 cores).
    public static var quick: SimulationConfig {
        var c = SimulationConfig()
        c.model = .small
        c.rounds = 300
        c.evaluationInterval = 30
        return c
    }

    /// A run of seconds for tests and demos: the small model on 1 200 synthetic images, 10 honest
    /// workers (3 holders per class), 2 Byzantine, batch 8, 6 rounds, evaluation every 3, one thread.
    public static var smoke: SimulationConfig {
        var c = SimulationConfig()
        c.model = .small
        c.data = .synthetic(train: 1200, test: 200, seed: 1)
        c.honestWorkers = 10
        c.byzantineWorkers = 2
        c.batchSize = 8
        c.rounds = 6
        c.evaluationInterval = 3
        c.threads = 1
        return c
    }

    public var effectiveF: Int { declaredF ?? byzantineWorkers }

    /// Whether the model is evaluated on the test set after round t (0-based): every
    /// `evaluationInterval` rounds and after the last.
    public func evaluates(afterRound t: Int) -> Bool { (t + 1) % evaluationInterval == 0 || t + 1 == rounds }
    public var effectiveBufferDecay: Float { bufferDecay ?? beta }
    /// C: Fashion-MNIST's 10, or the clients' declared classes.
    public var classes: Int { clients?.classes ?? 10 }

    /// The class set S_t of DeSGD: cyclic c = (t·K + j) mod C, or K distinct classes drawn from
    /// `RandomStream(seed, .classSchedule, round: t)`, sorted.
    public func classSet(round t: Int) -> [Int] {
        let C = classes, K = classesPerRound
        switch schedule {
        case .cyclic: return (0..<K).map { (t * K + $0) % C }
        case .random:
            var r = RandomStream(seed: seed, purpose: .classSchedule, round: t)
            return r.sample(K, from: C).sorted()
        }
    }

    /// The aggregation groups of round t: S_t in DeSGD, [−1] (all data) in the baseline.
    public func aggregationGroups(round t: Int) -> [Int] { mode == .desgd ? classSet(round: t) : [-1] }

    // MARK: Ranges

    /// Honest workers: each holds a momentum per class it holds (up to 10 model-sized vectors), so
    /// 1 000 lenet workers already need ~17 GB; the bound also keeps every count derived from the
    /// workers (senders, partitions, spec expressions over n and f) far from overflow.
    public static let honestWorkersRange = 1...1_000
    /// Byzantine workers (the same reasoning as ``honestWorkersRange``).
    public static let byzantineWorkersRange = 0...1_000
    /// Mini-batch size: a thread's workspace holds ~250 KB per image of the batch for lenet, and a
    /// batched pass keeps ~26 KB per sample for at most 4 096 samples at a time (``CNN``).
    public static let batchSizeRange = 1...4_096
    /// Rounds: 10 million rounds of the small model run for weeks; round numbers stay far inside
    /// the trace format's 32-bit fields.
    public static let roundsRange = 1...10_000_000
    /// Threads: each holds a workspace and a model-sized scratch vector.
    public static let threadsRange = 1...256
    /// Images of the synthetic data set (784 floats each: 100 000 are 314 MB).
    public static let syntheticImagesRange = 1...100_000
    /// Concentration α of the Dirichlet partition: below 0.01 the Gamma draws of a class can all
    /// underflow to 0 and leave its proportions undefined.
    public static let dirichletAlphaRange: ClosedRange<Double> = 0.01...1_000

    /// The thread count used when none is given: every core, at most ``threadsRange``'s bound.
    public static var defaultThreads: Int { min(ParallelExecutor.machineThreads, threadsRange.upperBound) }

    /// Checks what can be checked without data: the range of every value and the parsing of every
    /// spec. A trace reader calls it on a header's configuration too, so it accepts exactly the
    /// configurations the simulation can run without an overflow or an absurd allocation. Every
    /// message names the command-line option, its range and the value given.
    public func validate() throws(SimulationError) {
        func check<T: Comparable>(_ setting: Setting, detail: String = "", _ value: T,
                                  _ range: ClosedRange<T>) throws(SimulationError) {
            guard range.contains(value) else {
                throw SimulationError(SimulationError.rangeText(setting, detail: detail, value, range))
            }
        }
        /// A finite Float in [lower, upper] (or [lower, upper) when `upperExcluded`).
        func check(_ setting: Setting, _ value: Float, _ lower: Float, _ upper: Float, upperExcluded: Bool = false,
                   lowerExcluded: Bool = false) throws(SimulationError) {
            let aboveLower = lowerExcluded ? value > lower : value >= lower
            let belowUpper = upperExcluded ? value < upper : value <= upper
            guard value.isFinite, aboveLower, belowUpper else {
                let interval = (lowerExcluded ? "(" : "[") + "\(SimulationError.number(lower)), "
                    + "\(SimulationError.number(upper))" + (upperExcluded ? ")" : "]")
                throw SimulationError("\(setting) must be a number in \(interval) (got "
                    + "\(SimulationError.number(value)))")
            }
        }
        try check(.honestWorkers, honestWorkers, Self.honestWorkersRange)
        try check(.byzantineWorkers, byzantineWorkers, Self.byzantineWorkersRange)
        if let f = declaredF { try check(.declaredF, f, 0...(honestWorkers + byzantineWorkers)) }
        try check(.batchSize, batchSize, Self.batchSizeRange)
        try check(.rounds, rounds, Self.roundsRange)
        try check(.beta, beta, 0, 1, upperExcluded: true)
        if let d = bufferDecay { try check(.bufferDecay, d, 0, 1) }
        try check(.gamma, gamma, 0, 1)
        try check(.learningRate, learningRate, 0, 1_000, lowerExcluded: true)
        try check(.weightDecay, weightDecay, 0, 1_000)
        try check(.classesPerRound, classesPerRound, 1...classes)
        try check(.evaluationInterval, evaluationInterval, Self.roundsRange)
        try check(.threads, threads, Self.threadsRange)
        switch partition {
        case .labelSkew(let k): try check(.partition, detail: " label-skew:k", k, 1...classes)
        case .dirichlet(let alpha):
            try check(.partition, detail: " dirichlet:alpha", alpha, Self.dirichletAlphaRange)
        case .iid, .declared: break
        }
        try validateClients()
        if case .synthetic(let train, let test, _) = data {
            try check(.syntheticImages, train, Self.syntheticImagesRange)
            if !Self.syntheticImagesRange.contains(test) {
                throw .outOfRange(what: "the synthetic test set", test, Self.syntheticImagesRange)
            }
        }
        do { _ = try AggregatorCatalogue.makePipeline(rule: aggregator, pre: preAggregators) } catch {
            throw SimulationError(error.explanation)
        }
        do { _ = try AttackCatalogue.makeAttack(attack) } catch {
            throw SimulationError("\(Setting.attack): \(error.explanation)")
        }
    }

    /// The honest senders of each aggregation group: per class (DeSGD), the clients' declared holders
    /// or `partition`'s; every honest worker in the baseline's one group. Engine, recorder and reader
    /// form the groups with it.
    public func groupHolders(partition: Partition) -> [[Int]] {
        guard mode == .desgd else { return [Array(0..<honestWorkers)] }
        return clients?.holdersByClass ?? (0..<classes).map { partition.holders(of: $0) }
    }

    /// The clients' own model and data go together and are declared whole: d and C in range, one
    /// list per honest worker of increasing classes in 0..<C, each class held by someone in DeSGD.
    func validateClients() throws(SimulationError) {
        let external = [model == .external, data == .external, partition == .declared, clients != nil]
        guard external.allSatisfy({ $0 }) || !external.contains(true) else {
            throw SimulationError(
                "the clients' own model, data and holdings go together (a live federation's run): "
                    + "model external, data external, partition declared and the clients' setup, or none of them")
        }
        guard let clients else { return }
        guard ClientSetup.parameterCountRange.contains(clients.parameterCount) else {
            throw .outOfRange(what: "the clients' parameter count", clients.parameterCount,
                ClientSetup.parameterCountRange)
        }
        guard ClientSetup.classesRange.contains(clients.classes) else {
            throw .outOfRange(what: "the clients' classes", clients.classes, ClientSetup.classesRange)
        }
        guard clients.holdings.count == honestWorkers else {
            throw SimulationError("the clients declare the holdings of \(clients.holdings.count)"
                + " workers, not \(honestWorkers)")
        }
        for (w, held) in clients.holdings.enumerated() {
            guard !held.isEmpty, zip(held, held.dropFirst()).allSatisfy({ $0 < $1 }),
                  held.allSatisfy({ (0..<clients.classes).contains($0) }) else {
                throw SimulationError(
                    "worker \(w) declares holding classes that are not a non-empty increasing"
                        + " list in 0..<\(clients.classes)")
            }
        }
        if (try? AggregatorCatalogue.makePipeline(rule: aggregator, pre: preAggregators))?.rule is FLTrust {
            throw SimulationError("fltrust needs the server's own root data, which a run on the clients' data lacks")
        }
    }

    /// Canonical JSON (sorted keys): the form stored in trace headers.
    public func canonicalJSON() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return (try? e.encode(self)) ?? Data()
    }
}

/// A configuration or setup error: one line that names the problem and what to do.
public struct SimulationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var explanation: Explanation
    /// Set when the run would need more memory than its limit (the front ends say how to raise it).
    public var memoryShortfall: MemoryShortfall?
    public init(_ explanation: Explanation) { self.explanation = explanation }
    /// The text for a caller without a command line (the command-line layer renders ``explanation``).
    public var message: String { explanation.description }
    public var description: String { message }

    /// `SETTING must be in A...B (got V)`: the one form of a range error, here and in the front ends.
    public static func outOfRange<T: Comparable>(_ setting: Setting, _ value: T,
        _ range: ClosedRange<T>) -> SimulationError {
        SimulationError(rangeText(setting, value, range))
    }

    /// The same for a value no setting holds (`what`: how the message names it).
    public static func outOfRange<T: Comparable>(what: String, _ value: T, _ range: ClosedRange<T>) -> SimulationError {
        SimulationError("\(what)\(rangeTail(value, range))")
    }

    /// The text of ``outOfRange(_:_:_:)``; `detail` follows the setting (`label-skew:k`).
    public static func rangeText<T: Comparable>(_ setting: Setting, detail: String = "", _ value: T,
                                                _ range: ClosedRange<T>) -> Explanation {
        "\(setting)\(detail)\(rangeTail(value, range))"
    }

    /// ` must be in A...B (got V)`.
    static func rangeTail<T: Comparable>(_ value: T, _ range: ClosedRange<T>) -> String {
        " must be in \(number(range.lowerBound))...\(number(range.upperBound)) (got \(number(value)))"
    }

    /// A value as the messages write it: whole floating-point numbers without a fraction (`1`,
    /// not `1.0`), others as Swift prints them.
    public static func number<T>(_ value: T) -> String {
        let x: Double? = (value as? Double) ?? (value as? Float).map(Double.init)
        if let x, x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(value)"
    }
}
