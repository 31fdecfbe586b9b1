import DesgdNumerics
import DesgdResimulation
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
    /// Some metric is NaN or ±∞ (``DeviationMetrics/isNonFinite``): flagged "non-finite" and left
    /// out of the summary's statistics.
    public var nonFinite: Bool = false
    /// For a stateful rule, where the state it started the aggregation from came from; nil for
    /// stateless rules.
    public var state: ReplayState? = nil
    /// The model's drift from its honest shadow after the round, open loop along the recorded
    /// inputs (the same on every aggregation of the round); `metrics.drift` holds the group's.
    /// Both are absent from the first replayed round without vectors on (``ReplayDrift``).
    public var modelDrift: ModelDrift?
    /// With `--adversary worst`: the largest gap any f_actual Byzantine inputs could have caused
    /// this rule on these honest messages, as far as ``WorstCaseSearch`` found.
    public var worstCase: WorstCase? = nil
}

/// Where a stateful rule's state (centered clipping's centre) came from in one replayed aggregation.
public enum ReplayState: String, Sendable, Codable, Equatable {
    /// The recorded rule: the state recorded before this round (`stateBefore`), so every replayed
    /// round starts where the recorded run did, whatever rounds lie between replayed rounds.
    case recorded
    /// Another rule (a counterfactual): its own state, carried from its initial state through
    /// every round of this class since the first replayed round.
    case carried
    /// Another rule, but a round of this class between the first replayed round and this one was
    /// recorded without vectors (`sampled:K`, `decisions`) and not rebuilt (no ``RoundRebuilder``,
    /// `--no-rebuild`): the rule never saw that round's messages, so the state it carries skips it
    /// and the row is not that rule's counterfactual run.
    case notCarried = "not-carried"
}

/// A rule (with its pre-aggregator chain) to replay, by canonical spec.
public struct ReplayRule: Sendable {
    public let spec: String
    public let pipeline: AggregationPipeline
}

/// The recorded inputs of one round, decoded once (or rebuilt, ``RoundRebuilder``) and shared by
/// every rule replayed on it.
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

extension RoundInputs {
    /// The inputs of round `t` from its re-simulated aggregations (checked against the record by
    /// ``RoundRebuilder``): the same messages, aggregate and state the recorder saw.
    init(round t: Int, rebuilt: [AggregationEvent]) {
        round = t
        aggregations = rebuilt.map { a in
            .init(classIndex: a.classIndex, messages: a.messages,
                  honest: HonestStatistics(messages: a.messages, honest: a.senders.map { !$0.byzantine }),
                  recordedAggregate: a.aggregate, recordedStateBefore: a.stateBefore)
        }
    }
}

/// Re-executes recorded rounds with other rules on the exact recorded messages (docs/design.md §6).
///
/// - Every rule sees the trace's declared f unless `f` overrides it, and the round's and class's
///   keys for its random streams (so `--agg` of the recorded rule reproduces the recorded aggregate).
/// - State: the recorded stateful rule (centered clipping) starts every replayed aggregation from
///   the state recorded before it (re-synchronised each round, so rounds recorded without vectors
///   in between do not matter). Another stateful rule carries its own state per class across the
///   replayed rounds, from its initial state at the first replayed round (a counterfactual run);
///   once a round of that class lacks vectors the state cannot be carried through it, and the
///   class's later rows say so (``ReplayState/notCarried``) — unless a ``RoundRebuilder`` rebuilds
///   the vectors of such rounds, which are then replayed like the others (state carried, drift
///   continued).
/// - Rebuilt rounds: the rebuilder re-simulates them in round order, block by block, before the
///   block's rounds are read in parallel; it computes each round on all threads.
/// - Parallelism: rounds are read, decoded and aggregated in blocks on `threads` threads; a block
///   never holds two rounds of the same class when a stateful rule is replayed. Every result goes
///   to its own slot and rows are emitted in (round, aggregation, rule) order, so the output is
///   identical for any number of threads.
/// - Memory: one block of rounds (at most 8·threads rounds, with each rule's outputs) at a time,
///   whatever the trace's length, plus the drift trackers (``ReplayDrift``, bounded by a budget).
public final class Replayer {
    public let reader: TraceReader
    public let rules: [ReplayRule]
    /// Rules asked for that cannot run on this trace, with the reason (e.g. Bulyan's n ≥ 4f+3).
    public let skipped: [String]
    public let declaredF: Int
    public let threads: Int
    /// The worst-case adversary searched on every replayed aggregation, or nil (recorded inputs only).
    public let adversary: WorstCaseSearch?
    let recordedSpec: String
    /// Why the last ``run`` reported no drift, when it was for lack of memory (``ReplayDrift``).
    public private(set) var driftNote: String?
    /// Rebuilds the vectors of rounds recorded without them; nil: such rounds are skipped. A front
    /// end checks the rules first and attaches it after, so that a bad rule is reported before the
    /// data set is loaded.
    public var rebuilder: RoundRebuilder?

    /// - Parameters:
    ///   - rules: rule specs in the catalogue's syntax (`all` expands to every rule).
    ///   - pre: a pre-aggregator chain applied before each rule (`""` for none).
    ///   - f: the f the rules are told (default: the trace's declared f).
    ///   - skipUnrunnable: leave out rules whose requirement fails for some group (with `all`),
    ///     instead of failing.
    ///   - rebuilder: rebuilds the vectors of rounds recorded without them (nil: skip those rounds).
    ///   - adversary: also search each aggregation's worst-case Byzantine inputs (``ReplayRow/worstCase``).
    public init(reader: TraceReader, rules specs: [String], pre: String = "", f: Int? = nil, threads: Int,
                skipUnrunnable: Bool = false, rebuilder: RoundRebuilder? = nil,
                adversary: WorstCaseSearch? = nil) throws(TraceError) {
        self.reader = reader
        self.rebuilder = rebuilder
        self.adversary = adversary
        self.threads = max(1, threads)
        let config = reader.header.config
        let declaredF = f ?? config.effectiveF
        self.declaredF = declaredF
        let senders = 0...(config.honestWorkers + config.byzantineWorkers)
        guard senders.contains(declaredF) else {
            throw .usage(SimulationError.outOfRange(.declaredF, declaredF, senders).explanation)
        }
        let recordedSpec = reader.header.aggregator
        self.recordedSpec = recordedSpec
        var rules: [ReplayRule] = [], skipped: [String] = []
        let expanded = specs.flatMap { AggregatorCatalogue.expand($0) }
        guard !expanded.isEmpty else {
            throw .usage("no aggregation rule given: pass \(Setting.aggregator) RULE (or all)")
        }
        for text in expanded {
            let pipeline: AggregationPipeline
            do { pipeline = try AggregatorCatalogue.makePipeline(rule: text, pre: pre) } catch {
                throw .usage(error.explanation)
            }
            let failing = reader.header.groups.lazy.compactMap { g -> String? in
                let n = g.honestWorkers.count + g.byzantineWorkers.count
                return pipeline.requirement(n: n, f: declaredF).map {
                    "\(pipeline.spec) cannot run on " + (g.classIndex >= 0 ? "class \(g.classIndex)" : "the round")
                        + ": \($0)" }
            }.first.map { why -> (String, Explanation) in (why, "\(why); choose another rule or \(Setting.declaredF)") }
            // FLTrust's reference exists only in the recorded states of its own traces.
            let withoutInput = pipeline.engineInput.flatMap { needed -> (String, Explanation)? in
                guard pipeline.spec != recordedSpec else { return nil }
                let why = "\(pipeline.spec) cannot run on a trace recorded under \(recordedSpec): it needs \(needed)"
                return (why, "\(why); for the counterfactual, fork the trace (desgd-record \(Setting.forkParent) TRACE "
                    + "\(Setting.forkRound) T \(Setting.aggregator) \(pipeline.spec))")
            }
            if let (reason, message) = failing ?? withoutInput {
                if skipUnrunnable { skipped.append(reason); continue }
                throw .usage(message)
            }
            if !rules.contains(where: { $0.spec == pipeline.spec }) {
                rules.append(ReplayRule(spec: pipeline.spec, pipeline: pipeline))
            }
        }
        guard !rules.isEmpty else {
            throw .usage("none of the rules can run on this trace: \(skipped.joined(separator: "; "))")
        }
        self.rules = rules
        self.skipped = skipped
    }

    /// The rule's proven λ for an aggregation group of this trace (the audit's bound column too).
    package func bound(_ rule: ReplayRule, classIndex c: Int) -> Double? {
        guard let g = reader.header.groups.first(where: { $0.classIndex == c }) else { return nil }
        return rule.pipeline.resilienceBound(n: g.honestWorkers.count + g.byzantineWorkers.count, f: declaredF)
    }

    /// The work ``run(rounds:progress:emit:)`` reports progress of: the rounds replayed, plus the
    /// rounds re-simulated to rebuild vectors.
    public func work(rounds range: Range<Int>) -> Int {
        range.count + (rebuilder?.simulatedRounds(for: range) ?? 0)
    }

    /// An upper estimate, in bytes, of what ``run(rounds:memoryLimit:progress:emit:)`` holds at once
    /// over `range`, from the header and the record table (docs/bad-input.md): a block's rounds (up
    /// to 8 per thread) decoded, K aggregations each of s messages, the honest mean, the recorded
    /// aggregate and up to 3 state vectors; every rule's output on each; per thread a round read (its
    /// payload and body), the honest rows selected for the mean, a reference decoded apart and a
    /// rule's workspace (a copy of the messages and a few vectors), with the worst case its rows and
    /// search vectors too; every rule's carried states (3 per group); the drift trackers when replay
    /// keeps drift (``ReplayDrift``); and with a rebuilder, its run.
    public func memoryEstimate(rounds range: Range<Int>) -> UInt64 {
        typealias M = MemoryArithmetic
        let threads = M.u(threads), s = reader.largestGroup, K = reader.aggregationsPerRound
        let block = min(M.mul(8, threads), M.u(max(1, range.count))), r = M.u(rules.count)
        let G = M.u(max(1, reader.header.groups.count))
        var vectors = M.add(M.mul(block, K, M.add(s, 5)), M.mul(block, r, K), M.mul(threads, M.add(M.mul(2, s), 10)),
                            M.mul(r, G, 3))
        if adversary != nil { vectors = M.add(vectors, M.mul(threads, M.add(s, 8))) }
        let h = reader.header
        let run = rebuilder.map { _ in h.config.memoryEstimate(driftWindow: h.driftWindow) } ?? 0
        return M.add(M.mul(reader.vectorBytes, vectors), M.mul(threads, reader.roundReadBytes),
                     ReplayDrift.memoryEstimate(reader: reader, rules: rules.count), run)
    }

    /// Throws unless ``memoryEstimate(rounds:)`` fits `limit` (``run(rounds:memoryLimit:progress:emit:)``
    /// checks it first; a front end may check it before it writes anything).
    public func checkMemory(rounds range: Range<Int>, limit: MemoryLimit = .process) throws(TraceError) {
        let what = "replaying \(rules.count) rule\(rules.count == 1 ? "" : "s") on it"
        try reader.checkMemory(memoryEstimate(rounds: range), operation: what, limit: limit)
    }

    /// Replays `rounds` (default all). Rows reach `emit` in order, one round at a time;
    /// `progress(done)` counts rounds replayed and rounds re-simulated (``work(rounds:)``). Rounds
    /// recorded without vectors are rebuilt with the ``rebuilder``, or else skipped and counted.
    /// Returns the number of rounds replayed and of rounds skipped.
    @discardableResult
    public func run(rounds range: Range<Int>? = nil, memoryLimit: MemoryLimit = .process,
                    progress: (Int) -> Void = { _ in },
                    emit: ([ReplayRow]) -> Void) throws(TraceError) -> (replayed: Int, skipped: Int) {
        let r = range ?? reader.rounds
        guard r.lowerBound >= reader.rounds.lowerBound && r.upperBound <= reader.rounds.upperBound else {
            throw .usage("\(reader.path) holds \(reader.roundsText); \(r.lowerBound)..<\(r.upperBound) were asked for")
        }
        try checkMemory(rounds: r, limit: memoryLimit)
        let stateful = rules.map(\.pipeline.isStateful)
        let anyStateful = stateful.contains(true)
        var states: [[Int: AggregatorState]] = Array(repeating: [:], count: rules.count)
        // Classes with a round recorded without vectors since the first replayed round: a
        // counterfactual state of theirs skips that round. (A block never holds a class twice when
        // a rule carries state, so the set before a block holds for all of its rounds.)
        var uncarriedClasses = Set<Int>()
        let executor = ParallelExecutor(threads: threads)
        let decompressors = (0..<threads).map { _ in ZstdDecompressor() }
        let config = reader.header.config
        var replayed = 0, skippedRounds = 0, done = 0
        var drift: ReplayDrift?
        switch ReplayDrift.make(reader: reader, rules: rules.count) {
        case .success(let d): drift = d
        case .failure(let why): driftNote = why.reason
        }
        var t = r.lowerBound
        while t < r.upperBound {
            // A block: up to 8·threads rounds, no class twice when a rule carries state.
            var block: [Int] = [], classesSeen = Set<Int>()
            while t < r.upperBound && block.count < 8 * threads {
                if anyStateful {
                    let classes = config.aggregationGroups(round: t)
                    if classes.contains(where: classesSeen.contains) { break }
                    classesSeen.formUnion(classes)
                }
                block.append(t)
                t += 1
            }
            // Phase 1, one item per round: read and decode it, and run every stateless rule on it
            // (no barrier between reading and aggregating). Phase 2: stateful rules, one item per
            // (round, rule), from the states carried into the block. Each item writes its own slot.
            let rules = self.rules, f = declaredF, recorded = recordedSpec
            let bounds = self.rules.map { rule in
                Dictionary(uniqueKeysWithValues: self.reader.header.groups.map {
                    ($0.classIndex, self.bound(rule, classIndex: $0.classIndex)) })
            }
            let currentStates = states, uncarried = uncarriedClasses, adversary = self.adversary
            @Sendable func evaluate(_ input: RoundInputs, _ k: Int) -> ([ReplayRow], [Int: AggregatorState],
                [[Float]]) {
                let rule = rules[k]
                var rows: [ReplayRow] = [], newStates: [Int: AggregatorState] = [:], outputs: [[Float]] = []
                for a in input.aggregations {
                    let origin: ReplayState? = !rule.pipeline.isStateful ? nil
                        : rule.spec == recorded ? .recorded : uncarried.contains(a.classIndex) ? .notCarried : .carried
                    var state = origin == .recorded ? a.recordedStateBefore : currentStates[k][a.classIndex] ?? .empty
                    let context = AggregationContext(messages: a.messages, f: f, seed: config.seed, round: input.round,
                                                     classIndex: a.classIndex, backend: config.backend,
                                                     executor: ParallelExecutor(threads: 1))
                    let stateBefore = state
                    let (output, decision) = rule.pipeline.aggregate(context, state: &state)
                    if rule.pipeline.isStateful { newStates[a.classIndex] = state }
                    let metrics = output.withUnsafeBufferPointer {
                        DeviationMetrics.measure(output: $0, against: a.honest, decision: decision,
                            bound: bounds[k][a.classIndex] ?? nil)
                    }
                    let distance = output.withUnsafeBufferPointer { o in
                        a.recordedAggregate.withUnsafeBufferPointer { VectorMath.distance(o, $0) } }
                    var row = ReplayRow(round: input.round, classIndex: a.classIndex, rule: rule.spec, metrics: metrics,
                                        distanceToRecorded: distance, nonFinite: metrics.isNonFinite
                                            || !distance.isFinite,
                                        state: origin)
                    if let adversary {
                        // The recorded rows are honest first, then Byzantine: the search keeps that order.
                        let honestRows = a.honest.honest.indices.filter { a.honest.honest[$0] }
                        let byzantineRows = a.honest.honest.indices.filter { !a.honest.honest[$0] }
                        row.worstCase = adversary.search(WorstCaseProblem(
                            honest: a.messages.selecting(rows: honestRows), byzantineCount: byzantineRows.count,
                            recordedByzantine: byzantineRows.isEmpty ? nil : a.messages.selecting(rows: byzantineRows),
                            rule: rule.pipeline, state: stateBefore, declaredF: f, seed: config.seed,
                            round: input.round,
                            classIndex: a.classIndex, backend: config.backend, bound: bounds[k][a.classIndex] ?? nil,
                            statistics: a.honest))
                    }
                    rows.append(row)
                    outputs.append(output)
                }
                return (rows, newStates, outputs)
            }
            let slots = ResultSlots<Result<([ReplayRow], [Int: AggregatorState], [[Float]]),
                TraceError>>(count: block.count * rules.count)
            let inputSlots = ResultSlots<Result<RoundInputs?, TraceError>>(count: block.count)
            // Rounds without vectors rebuilt first, in order (the rebuilder's run goes forward).
            var rebuiltRounds: [[AggregationEvent]?] = Array(repeating: nil, count: block.count)
            if let rebuilder {
                let before = done
                for (b, round) in block.enumerated() where rebuilder.rebuilds(round) {
                    rebuiltRounds[b] = try rebuilder.round(round) { progress(before + $0) }.aggregations
                }
            }
            let reader = self.reader, blockRounds = block, rebuilt = rebuiltRounds
            executor.forEach(block.count) { b, slot in
                do throws(TraceError) {
                    let input = if let aggregations = rebuilt[b] {
                        RoundInputs(round: blockRounds[b], rebuilt: aggregations) } else {
                        try Replayer.read(round: blockRounds[b], reader: reader, decompressor: decompressors[slot])
                    }
                    inputSlots[b] = .success(input)
                    guard let input else { return }
                    for k in rules.indices where !stateful[k] {
                        slots[b * rules.count + k] = .success(evaluate(input, k))
                    }
                } catch {
                    inputSlots[b] = .failure(error)
                }
            }
            var inputs: [RoundInputs?] = []
            for b in block.indices {
                switch inputSlots[b]! {
                case .success(let v): inputs.append(v)
                case .failure(let e): throw e
                }
            }
            if anyStateful {
                let inputs = inputs
                let items = block.indices.flatMap { b in rules.indices.filter { stateful[$0] }.map { (b, $0) } }
                executor.forEach(items.count) { i, _ in
                    let (b, k) = items[i]
                    if let input = inputs[b] { slots[b * rules.count + k] = .success(evaluate(input, k)) }
                }
            }
            for (b, input) in inputs.enumerated() {
                guard let input else {
                    skippedRounds += 1
                    uncarriedClasses.formUnion(config.aggregationGroups(round: block[b]))
                    drift = nil
                    continue
                }
                replayed += 1
                // Each rule's rows are in aggregation order; emit aggregation by aggregation, rules in order.
                var perRule: [[ReplayRow]] = []
                for k in rules.indices {
                    switch slots[b * rules.count + k]! {
                    case .success(let (rows, s, outputs)):
                        perRule.append(drift?.add(input, rule: k, rows: rows, outputs: outputs) ?? rows)
                        for (c, state) in s { states[k][c] = state }
                    case .failure(let e): throw e
                    }
                }
                emit(input.aggregations.indices.flatMap { a in perRule.map { $0[a] } })
            }
            done += block.count
            progress(done + (rebuilder?.roundsSimulated ?? 0))
        }
        return (replayed, skippedRounds)
    }

    /// Reads and decodes one round: nil when it was recorded without vectors.
    static func read(round t: Int, reader: TraceReader,
        decompressor: ZstdDecompressor) throws(TraceError) -> RoundInputs? {
        let round = try reader.round(t, using: decompressor)
        guard round.hasVectors else { return nil }
        var aggregations: [RoundInputs.Aggregation] = []
        for (k, a) in round.aggregations.enumerated() {
            let messages = try round.messages(k)
            let honest = a.senders.map { !$0.byzantine }
            guard honest.contains(true) else {
                throw TraceError.corrupted("\(reader.path): round \(t): no honest sender")
            }
            aggregations.append(.init(classIndex: a.classIndex, messages: messages,
                                      honest: HonestStatistics(messages: messages, honest: honest),
                                      recordedAggregate: try round.aggregate(k),
                                      recordedStateBefore: try round.state(k, after: false)))
        }
        return RoundInputs(round: t, aggregations: aggregations)
    }
}
