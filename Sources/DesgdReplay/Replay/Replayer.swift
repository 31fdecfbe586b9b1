import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace

/// One rule replayed on one aggregation of one recorded round.
public struct ReplayRow: Sendable, Codable, Equatable {
    public var round: Int
    /// The class aggregated (DeSGD) or −1 (baseline).
    public var classIndex: Int
    /// The rule's canonical spec.
    public var rule: String
    public var metrics: DeviationMetrics
    /// ‖F(R) − recorded aggregate‖.
    public var distanceToRecorded: Double
}

/// A rule (with its pre-aggregator chain) to replay, by canonical spec.
public struct ReplayRule: Sendable {
    public let spec: String
    public let pipeline: AggregationPipeline
}

/// The recorded inputs of one round, decoded once and shared by every rule replayed on it.
struct RoundInputs: Sendable {
    struct Aggregation: Sendable {
        var classIndex: Int
        var messages: Matrix
        var honest: HonestStatistics
        var recordedAggregate: [Float]
        var recordedStateBefore: AggregatorState
    }
    var round: Int
    var aggregations: [Aggregation]
}

/// Re-executes recorded rounds with other rules on the exact recorded messages (PRODUCT.md §6).
///
/// - Every rule sees the trace's declared f unless `f` overrides it, and the round's and class's
///   keys for its random streams (so `--agg` of the recorded rule reproduces the recorded aggregate).
/// - State: a stateful rule (centered clipping) carries its state per class across the replayed
///   rounds. It starts from the recorded state of the first replayed round when the rule is the
///   recorded one, and from the rule's initial state otherwise (a counterfactual run of that rule
///   from the first replayed round on).
/// - Parallelism: rounds are read, decoded and aggregated in blocks on `threads` threads; a block
///   never holds two rounds of the same class when a stateful rule is replayed. Every result goes
///   to its own slot and rows are emitted in (round, aggregation, rule) order, so the output is
///   identical for any number of threads.
/// - Memory: one block of rounds (at most 4·threads rounds) at a time, whatever the trace's length.
public final class Replayer {
    public let reader: TraceReader
    public let rules: [ReplayRule]
    /// Rules asked for that cannot run on this trace, with the reason (e.g. Bulyan's n ≥ 4f+3).
    public let skipped: [String]
    public let declaredF: Int
    public let threads: Int
    let recordedSpec: String

    /// - Parameters:
    ///   - rules: rule specs in the catalogue's syntax (`all` expands to every rule).
    ///   - pre: a pre-aggregator chain applied before each rule (`""` for none).
    ///   - f: the f the rules are told (default: the trace's declared f).
    ///   - skipUnrunnable: leave out rules whose requirement fails for some group (with `all`),
    ///     instead of failing.
    public init(reader: TraceReader, rules specs: [String], pre: String = "", f: Int? = nil, threads: Int,
                skipUnrunnable: Bool = false) throws(TraceError) {
        self.reader = reader
        self.threads = max(1, threads)
        let config = reader.header.config
        let declaredF = f ?? config.effectiveF
        self.declaredF = declaredF
        guard declaredF >= 0 else { throw .usage("--f must be at least 0") }
        recordedSpec = reader.header.aggregator
        var rules: [ReplayRule] = [], skipped: [String] = []
        let expanded = specs.flatMap { AggregatorCatalogue.expand($0) }
        guard !expanded.isEmpty else { throw .usage("no aggregation rule given: pass --agg RULE (or all)") }
        for text in expanded {
            let pipeline: AggregationPipeline
            do { pipeline = try AggregatorCatalogue.makePipeline(rule: text, pre: pre) } catch { throw .usage(error.message) }
            let failing = reader.header.groups.lazy.compactMap { g -> String? in
                let n = g.honestWorkers.count + g.byzantineWorkers.count
                return pipeline.requirement(n: n, f: declaredF).map { "\(pipeline.spec) cannot run on " + (g.classIndex >= 0 ? "class \(g.classIndex)" : "the round") + ": \($0)" }
            }.first
            if let failing {
                if skipUnrunnable { skipped.append(failing); continue }
                throw .usage(failing + "; choose another rule or --f")
            }
            if !rules.contains(where: { $0.spec == pipeline.spec }) { rules.append(ReplayRule(spec: pipeline.spec, pipeline: pipeline)) }
        }
        guard !rules.isEmpty else { throw .usage("none of the rules can run on this trace: " + skipped.joined(separator: "; ")) }
        self.rules = rules
        self.skipped = skipped
    }

    /// The rule's proven λ for an aggregation group of this trace.
    func bound(_ rule: ReplayRule, classIndex c: Int) -> Double? {
        guard let g = reader.header.groups.first(where: { $0.classIndex == c }) else { return nil }
        return rule.pipeline.resilienceBound(n: g.honestWorkers.count + g.byzantineWorkers.count, f: declaredF)
    }

    /// Replays `rounds` (default all). Rows reach `emit` in order, one round at a time;
    /// `progress(done)` counts rounds. Rounds recorded without vectors are skipped and counted.
    /// Returns the number of rounds replayed and of rounds skipped.
    @discardableResult
    public func run(rounds range: Range<Int>? = nil, progress: (Int) -> Void = { _ in },
                    emit: ([ReplayRow]) -> Void) throws(TraceError) -> (replayed: Int, skipped: Int) {
        let r = range ?? 0..<reader.roundCount
        guard r.lowerBound >= 0 && r.upperBound <= reader.roundCount else {
            throw .usage("\(reader.path) holds rounds 0..<\(reader.roundCount); \(r.lowerBound)..<\(r.upperBound) were asked for")
        }
        let stateful = rules.map(\.pipeline.isStateful)
        let anyStateful = stateful.contains(true)
        var states: [[Int: AggregatorState]] = Array(repeating: [:], count: rules.count)
        let executor = ParallelExecutor(threads: threads)
        let decompressors = (0..<threads).map { _ in ZstdDecompressor() }
        let config = reader.header.config
        var replayed = 0, skippedRounds = 0, done = 0
        var t = r.lowerBound
        while t < r.upperBound {
            // A block: up to 4·threads rounds, no class twice when a rule carries state.
            var block: [Int] = [], classesSeen = Set<Int>()
            while t < r.upperBound && block.count < 4 * threads {
                if anyStateful {
                    let classes = config.aggregationGroups(round: t)
                    if classes.contains(where: classesSeen.contains) { break }
                    classesSeen.formUnion(classes)
                }
                block.append(t)
                t += 1
            }
            let inputs = try read(block, executor: executor, decompressors: decompressors)
            // Work items: (round of the block, rule); each writes its own slot.
            let items = inputs.indices.flatMap { b in self.rules.indices.map { (b, $0) } }
            let slots = ResultSlots<Result<([ReplayRow], [Int: AggregatorState]), TraceError>>(count: items.count)
            let currentStates = states
            let rules = self.rules, f = declaredF, recorded = recordedSpec
            let bounds = self.rules.map { rule in
                Dictionary(uniqueKeysWithValues: reader.header.groups.map { ($0.classIndex, self.bound(rule, classIndex: $0.classIndex)) })
            }
            executor.forEach(items.count) { i, _ in
                let (b, k) = items[i]
                guard let input = inputs[b] else { slots[i] = .success(([], [:])); return }
                let rule = rules[k]
                var rows: [ReplayRow] = [], newStates: [Int: AggregatorState] = [:]
                for a in input.aggregations {
                    var state = currentStates[k][a.classIndex]
                        ?? (rule.spec == recorded ? a.recordedStateBefore : .empty)
                    let context = AggregationContext(messages: a.messages, f: f, seed: config.seed, round: input.round,
                                                     classIndex: a.classIndex, backend: config.backend,
                                                     executor: ParallelExecutor(threads: 1))
                    let (output, decision) = rule.pipeline.aggregate(context, state: &state)
                    if rule.pipeline.isStateful { newStates[a.classIndex] = state }
                    let metrics = output.withUnsafeBufferPointer {
                        DeviationMetrics.measure(output: $0, against: a.honest, decision: decision, bound: bounds[k][a.classIndex] ?? nil)
                    }
                    let distance = output.withUnsafeBufferPointer { o in a.recordedAggregate.withUnsafeBufferPointer { VectorMath.distance(o, $0) } }
                    rows.append(ReplayRow(round: input.round, classIndex: a.classIndex, rule: rule.spec, metrics: metrics,
                                          distanceToRecorded: distance))
                }
                slots[i] = .success((rows, newStates))
            }
            for (b, input) in inputs.enumerated() {
                guard input != nil else { skippedRounds += 1; continue }
                replayed += 1
                // Each rule's rows are in aggregation order; emit aggregation by aggregation, rules in order.
                var perRule: [[ReplayRow]] = []
                for k in rules.indices {
                    switch slots[b * rules.count + k]! {
                    case .success(let (rows, s)):
                        perRule.append(rows)
                        for (c, state) in s { states[k][c] = state }
                    case .failure(let e): throw e
                    }
                }
                emit(input!.aggregations.indices.flatMap { a in perRule.map { $0[a] } })
            }
            done += block.count
            progress(done)
        }
        return (replayed, skippedRounds)
    }

    /// Reads and decodes `block`'s rounds in parallel: nil for rounds without vectors.
    func read(_ block: [Int], executor: ParallelExecutor, decompressors: [ZstdDecompressor]) throws(TraceError) -> [RoundInputs?] {
        let slots = ResultSlots<Result<RoundInputs?, TraceError>>(count: block.count)
        let reader = self.reader
        executor.forEach(block.count) { i, slot in
            do throws(TraceError) {
                let round = try reader.round(block[i], using: decompressors[slot])
                guard round.hasVectors else { slots[i] = .success(nil); return }
                var aggregations: [RoundInputs.Aggregation] = []
                for (k, a) in round.aggregations.enumerated() {
                    let messages = try round.messages(k)
                    let honest = a.senders.map { !$0.byzantine }
                    guard honest.contains(true) else { throw TraceError.corrupted("\(reader.path): round \(block[i]): no honest sender") }
                    aggregations.append(.init(classIndex: a.classIndex, messages: messages,
                                              honest: HonestStatistics(messages: messages, honest: honest),
                                              recordedAggregate: try round.aggregate(k), recordedStateBefore: try round.state(k, after: false)))
                }
                slots[i] = .success(RoundInputs(round: block[i], aggregations: aggregations))
            } catch {
                slots[i] = .failure(error)
            }
        }
        var out: [RoundInputs?] = []
        for i in block.indices {
            switch slots[i]! {
            case .success(let v): out.append(v)
            case .failure(let e): throw e
            }
        }
        return out
    }
}

/// One slot per parallel work item, written once each by distinct items.
final class ResultSlots<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T?>
    let count: Int
    init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: nil, count: max(1, count))
    }
    deinit {
        base.deinitialize(count: max(1, count))
        base.deallocate()
    }
    subscript(i: Int) -> T? {
        get { base[i] }
        set { base[i] = newValue }
    }
}
