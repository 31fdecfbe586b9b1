import DesgdNumerics
import DesgdRobust

/// The DeSGD / SGD simulation engine (paper, Algorithm 1; docs/design.md §2).
///
/// Per round t (DeSGD):
/// 1. The server picks S_t (``SimulationConfig/Schedule``).
/// 2. Every honest worker i computes, for every class c it holds, a stochastic class-gradient on
///    a mini-batch of its class-c samples at x_t, adds weight decay, and updates its local
///    class-momentum m^(c,i) ← β·m^(c,i) + (1−β)·g (eq. 4 and Algorithm 1, lines 8–10, with the
///    EMA convention of docs/design.md §2). All these class-gradients are independent work items run
///    on `threads` threads; each writes its own buffer, so results do not depend on the thread count.
/// 3. Byzantine workers (ids n..<n+f, data of all classes) compute their own class-momentum for
///    the classes of S_t when the attack needs it (sign-flip, label-flip, none; under label-flip
///    the class-c momentum of the relabelled data: true class C−1−c labelled c), then the attack
///    crafts their messages from what an omniscient adversary sees.
/// 4. For each c in S_t the server aggregates the messages of c's holders and the Byzantine
///    workers with the rule and its per-class state (eq. 13), averages over S_t (eq. 7), reads the
///    buffer average m̄_t (eq. 14), updates x ← x − η((1−γ)·m̂_t + γ·m̄_t) (eq. 16) and refreshes the
///    buffer (eq. 15).
///
/// The baseline (``SimulationConfig/Mode/sgd``) has every worker send its momentum of a mini-batch
/// of all its local data, and the server apply x ← x − η·Agg(all n+f messages). With
/// ``SimulationConfig/MomentumPlacement/global`` workers send gradients and the server applies an
/// EMA of its update direction instead.
///
/// Randomness: mini-batch of worker w for class c in round t from
/// `RandomStream(seed, .minibatch, worker: w, round: t, class: c)` (class −1 for whole-data
/// batches), random class sets from `(.classSchedule, round: t)`; the rules and attacks key their
/// own streams by (round, class). Nothing depends on earlier draws.
///
/// Under FLTrust (``FLTrust``) the server is also a worker on its own clean root data set: its
/// root samples are drawn once by `RandomStream(seed, .rootData)` (``rootSet(size:data:config:)``),
/// and every round, for every group (every class in DeSGD, as an honest worker holding all classes;
/// the one group in the baseline), it draws a mini-batch of them from
/// `RandomStream(seed, .minibatch, worker: −1, round: t, class: c)` and updates its momentum in the
/// same batched pass and with the same code as the honest workers. That momentum lives in the
/// group's rule state (``FLTrust/referenceKey``), so checkpoints, keyframes and the recorded
/// `stateBefore` carry it and replay gives the rule exactly its recorded input.
public final class Simulation {
    public let config: SimulationConfig
    public let dataset: Dataset
    public let partition: Partition
    public let model: CNN
    public let pipeline: AggregationPipeline
    public let attack: any Attack

    let executor: ParallelExecutor
    /// Memory of the round's batched pass (docs/design.md §7).
    let workspace: CNNWorkspace
    let honestMomenta: VectorStore
    /// Row of `honestMomenta` for (worker, class); class −1 (index C) for the baseline.
    let honestRow: [[Int?]]
    /// The (worker, class) pairs of the honest work items, in row order.
    let honestJobs: [(worker: Int, classIndex: Int)]
    let byzantineMomenta: VectorStore
    /// Eq. 7, 14–16 and the global class-momentum buffer (or the baseline's step).
    let server: ServerStep
    /// Sample indices each honest worker draws from in the baseline (all its classes).
    let workerSamples: [[Int]]
    /// FLTrust's root samples per group (per class in DeSGD, one group in the baseline); nil under
    /// any other rule.
    let rootSamples: [[Int]]?
    /// The server's root-data momentum of each group during the batched pass (read from and
    /// written back to the group's rule state).
    let rootMomenta: VectorStore
    /// Whole training set, by class (Byzantine workers' data).
    let classSamples: [[Int]]
    let allSamples: [Int]

    public internal(set) var parameters: [Float]
    var aggregatorStates: [AggregatorState]
    var attackStates: [AttackState]

    /// Builds a run: loads nothing (the data set is given), partitions the data, checks every
    /// aggregation the run will perform against the rule's and the attack's requirements.
    /// Before allocating anything sized by the configuration, it checks the configuration's
    /// ``SimulationConfig/memoryEstimate(driftWindow:runs:)`` against `memoryLimit` and, when
    /// `expectedPartition` is given (a trace's), that the data is partitioned as it says.
    public init(config: SimulationConfig, dataset: Dataset, expectedPartition: Partition? = nil,
                memoryLimit: MemoryLimit = .process) throws(SimulationError) {
        try config.validate()
        try config.checkMemory(limit: memoryLimit)
        self.config = config
        self.dataset = dataset
        guard dataset.train.classes == config.classes else {
            throw SimulationError("the data set has \(dataset.train.classes) classes, the simulation expects \(config.classes)")
        }
        let partition: Partition
        do {
            partition = try Partition.make(config.partition, data: dataset.train, workers: config.honestWorkers, seed: config.seed)
            pipeline = try AggregatorCatalogue.makePipeline(rule: config.aggregator, pre: config.preAggregators)
            attack = try AttackCatalogue.makeAttack(config.attack)
        } catch let e as DataError { throw SimulationError(e.message) } catch let e as AggregationError {
            throw SimulationError(e.message)
        } catch { throw SimulationError("\(error)") }
        if let expectedPartition, partition != expectedPartition {
            throw SimulationError("this desgd partitions the data otherwise than the trace says: "
                                  + "use the desgd that recorded it")
        }
        self.partition = partition
        model = CNN(config.model, backend: config.backend)
        let d = model.parameterCount, C = config.classes, n = config.honestWorkers, f = config.byzantineWorkers

        // Every aggregation the run will perform must satisfy the rule's and the attack's requirements.
        let groups: [(String, Int)] = config.mode == .desgd
            ? (0..<C).map { ("class \($0)", partition.holders(of: $0).count) }
            : [("the round", n)]
        for (what, honest) in groups {
            if honest == 0 { throw SimulationError("\(what) is held by no honest worker: change --partition") }
            if let r = pipeline.requirement(n: honest + f, f: config.effectiveF) {
                throw SimulationError("\(what) has \(honest) honest + \(f) Byzantine senders with declared f=\(config.effectiveF): \(r)")
            }
            if f > 0, let r = attack.requirement(honest: honest, byzantine: f) {
                throw SimulationError("attack \(attack.spec) in \(what): \(r)")
            }
        }

        executor = ParallelExecutor(threads: config.threads)
        workspace = CNNWorkspace(model: model, slots: config.threads)
        var rows = [[Int?]](repeating: [Int?](repeating: nil, count: C + 1), count: n)
        var jobs: [(worker: Int, classIndex: Int)] = []
        for w in 0..<n {
            if config.mode == .desgd {
                for c in partition.classes(of: w) { rows[w][c] = jobs.count; jobs.append((w, c)) }
            } else {
                rows[w][C] = jobs.count; jobs.append((w, -1))
            }
        }
        honestRow = rows
        honestJobs = jobs
        honestMomenta = VectorStore(count: jobs.count, dimension: d)
        byzantineMomenta = VectorStore(count: f * (config.mode == .desgd ? C : 1), dimension: d)
        server = ServerStep(config: config, dimension: d)
        workerSamples = (0..<n).map { w in partition.samples[w].flatMap { $0 } }
        classSamples = dataset.train.indicesByClass()
        if let trust = pipeline.rule as? FLTrust {
            rootSamples = try Simulation.rootSet(size: trust.rootSize, data: dataset.train, config: config)
        } else {
            rootSamples = nil
        }
        rootMomenta = VectorStore(count: rootSamples?.count ?? 0, dimension: d)
        allSamples = Array(0..<dataset.train.count)
        parameters = model.initialParameters(seed: config.seed)
        let groupsCount = config.mode == .desgd ? C : 1
        aggregatorStates = [AggregatorState](repeating: .empty, count: groupsCount)
        attackStates = [AttackState](repeating: .empty, count: groupsCount)
    }

    public var setup: SimulationSetup {
        SimulationSetup(config: config, partition: partition, dataset: dataset.provenance, parameterCount: model.parameterCount,
                        initialParameters: model.initialParameters(seed: config.seed),
                        backendDescription: config.backend.description, aggregatorSpec: pipeline.spec, attackSpec: attack.spec)
    }

    /// The class set S_t.
    public func classes(round t: Int) -> [Int] { config.classSet(round: t) }

    /// Runs all rounds, telling `observer` everything; `progress(round, evaluation)` after each round.
    /// With `start` > 0 the run continues from the state of round `start` (``restore(state:at:)``
    /// first); the result then holds the evaluations of the rounds run here.
    public func run(from start: Int = 0, observer: SimulationObserver = NullObserver(),
                    progress: (Int, Evaluation?) -> Void = { _, _ in }) throws(SimulationError) -> SimulationResult {
        observer.runStarted(setup)
        let t0 = Stopwatch.now()
        var evaluations: [SimulationResult.EvaluationPoint] = []
        var evaluationSeconds = 0.0
        var completed = start
        for t in start..<config.rounds {
            observer.stateAvailable(atStartOf: t) { captureState(round: t) }
            observer.roundStarting(t, snapshot: snapshot)
            let event = try advance(round: t, evaluationSeconds: &evaluationSeconds)
            if let e = event.evaluation { evaluations.append(.init(round: t, evaluation: e)) }
            observer.roundFinished(event)
            progress(t, event.evaluation)
            completed = t + 1
            if observer.shouldStop { break }
        }
        observer.roundStarting(completed, snapshot: snapshot)
        let result = SimulationResult(evaluations: evaluations, finalParameters: parameters, seconds: Stopwatch.now() - t0,
                                      evaluationSeconds: evaluationSeconds, rounds: completed)
        observer.runFinished(result)
        return result
    }

    // MARK: One round

    /// Performs round t and returns what happened (without evaluation).
    public func step(round t: Int) throws(SimulationError) -> RoundEvent {
        let S = config.mode == .desgd ? classes(round: t) : []
        computeMomenta(round: t, classes: S)
        let C = config.classes, desgd = config.mode == .desgd
        return try aggregate(round: t, classes: S, messages: nil) { w, c, row in
            _ = row.update(fromContentsOf: honestMomenta.readRow(honestRow[w][desgd ? c : C]!))
        }
    }

    /// Performs round t on messages computed outside the engine (a live federation's clients,
    /// docs/federation.md): `messages.honest(w, c, row)` fills the message of honest worker w for
    /// class c (−1 in the baseline) into `row`; under an attack whose Byzantine workers compute
    /// their own momenta (``Attack/ownMomentum`` not `.none`: none, sign-flip, label-flip), the
    /// Byzantine clients crafted their messages themselves and `messages.byzantine(j, c, row)` fills
    /// worker n + j's; any other attack is crafted here from the honest messages, as in ``step(round:)``.
    /// The same aggregation and server step as the engine's rounds, so that `desgd-replay --verify`
    /// holds on the trace. No momentum is computed here.
    public func step(round t: Int, messages: ExternalMessages) throws(SimulationError) -> RoundEvent {
        let S = config.mode == .desgd ? classes(round: t) : []
        return try aggregate(round: t, classes: S, messages: messages, honestMessage: messages.honest)
    }

    /// Messages a round receives from outside the engine (``step(round:messages:)``).
    public struct ExternalMessages {
        public var honest: (_ worker: Int, _ classIndex: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Void
        public var byzantine: (_ index: Int, _ classIndex: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Void
        /// Per (class, sender row) a client's signature of its message, kept with the round.
        public var signatures: (_ classIndex: Int, _ senders: [Sender]) -> [[UInt8]?]?
        public init(honest: @escaping (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void,
                    byzantine: @escaping (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void,
                    signatures: @escaping (Int, [Sender]) -> [[UInt8]?]?) {
            self.honest = honest
            self.byzantine = byzantine
            self.signatures = signatures
        }
    }

    /// Eq. 13 per group of round t, then eq. 7, 14–16 (or the baseline's step) and eq. 15: the part of
    /// a round after the momenta, shared by the engine and live federations.
    func aggregate(round t: Int, classes S: [Int], messages external: ExternalMessages?,
                   honestMessage: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) throws(SimulationError) -> RoundEvent {
        let desgd = config.mode == .desgd
        let d = model.parameterCount, n = config.honestWorkers, f = config.byzantineWorkers
        var aggregations: [AggregationEvent] = []
        for c in desgd ? S : [-1] {
            let group = desgd ? c : 0
            let holders = desgd ? partition.holders(of: c) : Array(0..<n)
            var honest = Matrix(rows: holders.count, columns: d)
            for (k, w) in holders.enumerated() { honest.withMutableRow(k) { honestMessage(w, c, $0) } }
            var received = honest
            var attackDecision: AttackDecision?
            if f > 0, let external, attack.ownMomentum != .none {
                // Crafted by the Byzantine clients themselves: received as sent, no decision of desgd's.
                var sent = Matrix(rows: f, columns: d)
                for j in 0..<f { sent.withMutableRow(j) { external.byzantine(j, c, $0) } }
                received.append(rowsOf: sent)
            } else if f > 0 {
                var own: Matrix?
                if attack.ownMomentum != .none {
                    var m = Matrix(rows: f, columns: d)
                    for j in 0..<f { m.withMutableRow(j) { _ = $0.update(fromContentsOf: byzantineMomenta.readRow(byzantineRow(j, c))) } }
                    own = m
                }
                let context = AttackContext(honest: honest, byzantineCount: f, aggregator: pipeline, declaredF: config.effectiveF,
                                            aggregatorState: aggregatorStates[group], ownMomenta: own,
                                            byzantineWorkers: Array(n ..< n + f), seed: config.seed, round: t, classIndex: c,
                                            backend: config.backend, threads: config.threads)
                let output: AttackOutput
                do { output = try attack.run(context, state: &attackStates[group]) } catch {
                    throw SimulationError("round \(t), class \(c): \(error.message)")
                }
                received.append(rowsOf: output.messages)
                attackDecision = output.decision
            }
            let senders = holders.map { Sender(worker: $0, byzantine: false) } + (n ..< n + f).map { Sender(worker: $0, byzantine: true) }
            let stateBefore = aggregatorStates[group]
            let context = AggregationContext(messages: received, f: config.effectiveF, seed: config.seed, round: t,
                                             classIndex: c, backend: config.backend, executor: executor)
            let (aggregate, decision) = pipeline.aggregate(context, state: &aggregatorStates[group])
            aggregations.append(AggregationEvent(classIndex: c, senders: senders, messages: received, attackDecision: attackDecision,
                                                 decision: decision, stateBefore: stateBefore, stateAfter: aggregatorStates[group],
                                                 aggregate: aggregate, signatures: external?.signatures(c, senders)))
        }

        // Eq. 7, 14, 16 (or the baseline's step) and eq. 15.
        let (update, diff) = server.apply(aggregates: aggregations.map { ($0.classIndex, $0.aggregate) }, to: &parameters)
        return RoundEvent(round: t, classes: S, aggregations: aggregations, update: update, modelDiff: diff, evaluation: nil)
    }

    /// The server's state at the start of the next round: what a keyframe holds.
    public func snapshot() -> ServerSnapshot {
        ServerSnapshot(parameters: parameters, classMomenta: server.classMomenta, serverMomentum: server.serverMomentum,
                       aggregatorStates: aggregatorStates, attackStates: attackStates)
    }

    /// The worker id of the server's own mini-batch streams (FLTrust): −1, no worker's.
    static let serverWorker = -1

    /// FLTrust's root set: `size` distinct training samples drawn by `RandomStream(seed, .rootData)`
    /// (uniform, so following the training distribution, as in the paper), in increasing order; in
    /// DeSGD split by class, each class needing one.
    static func rootSet(size: Int, data: LabeledImages, config: SimulationConfig) throws(SimulationError) -> [[Int]] {
        guard size <= data.count else {
            throw SimulationError("fltrust:root=\(size) exceeds the \(data.count) training samples: choose a smaller root")
        }
        var stream = RandomStream(seed: config.seed, purpose: .rootData)
        let drawn = stream.sample(size, from: data.count).sorted()
        guard config.mode == .desgd else { return [drawn] }
        let members = Set(drawn)
        let byClass = data.indicesByClass().map { $0.filter(members.contains) }
        if let empty = byClass.firstIndex(where: \.isEmpty) {
            throw SimulationError("the FLTrust root set of \(size) samples holds no sample of class \(empty): choose a larger fltrust:root")
        }
        return byClass
    }

    func byzantineRow(_ j: Int, _ c: Int) -> Int {
        config.mode == .desgd ? j * config.classes + c : j
    }

    /// Step 2 and 3: every honest class-momentum (all classes each worker holds) and, when the
    /// attack needs them, the Byzantine workers' own momenta for S_t. All their mini-batches go
    /// through the model at x_t in one batched pass (``CNN/lossAndGradients(parameters:data:batches:executor:workspace:consume:)``);
    /// each batch's gradient then gets weight decay and updates its own momentum row, so the
    /// result does not depend on the thread count.
    func computeMomenta(round t: Int, classes S: [Int]) {
        let n = config.honestWorkers, f = config.byzantineWorkers, C = config.classes
        let own = attack.ownMomentum
        let flip = own == .flippedLabels
        let desgd = config.mode == .desgd
        let byzantineJobs: [(Int, Int)] = own == .none || f == 0 ? [] : (0..<f).flatMap { j in (desgd ? S : [-1]).map { (j, $0) } }
        var batches: [MiniBatch] = []
        var targets: [SendablePointer<Float>] = []  // each batch's momentum row
        batches.reserveCapacity(honestJobs.count + byzantineJobs.count)
        for (i, (worker, cls)) in honestJobs.enumerated() {
            let source = cls >= 0 ? partition.samples[worker][cls] : workerSamples[worker]
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: worker, round: t, class: cls)
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: source, size: config.batchSize, stream: &stream)))
            targets.append(SendablePointer(honestMomenta.row(i).baseAddress!))
        }
        for (j, c) in byzantineJobs {
            // Label-flip: the worker's data relabelled y ↦ C−1−y, then class c's samples of that
            // data set, i.e. those of true class C−1−c (``LabelFlipAttack``).
            let source = c < 0 ? allSamples : classSamples[flip ? C - 1 - c : c]
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: n + j, round: t, class: c)
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: source, size: config.batchSize, stream: &stream),
                                     flipLabels: flip))
            targets.append(SendablePointer(byzantineMomenta.row(byzantineRow(j, c)).baseAddress!))
        }
        // FLTrust: the server's momentum of each group, from the group's rule state.
        let rootGroups = rootSamples ?? []
        for (g, samples) in rootGroups.enumerated() {
            let row = rootMomenta.row(g)
            if let m = aggregatorStates[g].vectors[FLTrust.referenceKey], m.count == row.count {
                _ = row.update(fromContentsOf: m)
            } else {
                VectorMath.fill(row, with: 0)
            }
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: Simulation.serverWorker, round: t,
                                      class: desgd ? g : -1)
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: samples, size: config.batchSize, stream: &stream)))
            targets.append(SendablePointer(row.baseAddress!))
        }
        let cfg = config, rows = targets
        parameters.withUnsafeBufferPointer { p in
            let params = SendableBuffer(p)
            model.lossAndGradients(parameters: p, data: dataset.train, batches: batches, executor: executor, workspace: workspace) { i, g, _ in
                SGD.addWeightDecay(g, parameters: params.buffer, weightDecay: cfg.weightDecay)
                let target = UnsafeMutableBufferPointer(start: rows[i].base, count: g.count)
                if cfg.momentum == .local {
                    SGD.updateMomentum(target, gradient: UnsafeBufferPointer(g), beta: cfg.beta)
                } else {
                    _ = target.update(fromContentsOf: g)
                }
            }
        }
        for g in rootGroups.indices { aggregatorStates[g].vectors[FLTrust.referenceKey] = rootMomenta.array(g) }
    }

    /// A mini-batch of `size` distinct samples of `source` (partial Fisher–Yates over positions),
    /// or `size` draws with replacement when `source` has fewer samples than that.
    static func sampleBatch(from source: [Int], size: Int, stream: inout RandomStream) -> [Int] {
        if source.count >= size {
            return stream.sample(size, from: source.count).map { source[$0] }
        }
        return (0..<size).map { _ in source[stream.nextInt(below: source.count)] }
    }
}

extension Simulation {
    /// Mini-batch gradients computed per round: every honest (worker, class) pair (DeSGD) or
    /// every honest worker (baseline), plus the Byzantine workers' own ones when the attack needs them.
    public var gradientsPerRound: Int {
        let byzantine = attack.ownMomentum == .none ? 0 : config.byzantineWorkers * (config.mode == .desgd ? config.classesPerRound : 1)
        return honestJobs.count + byzantine + (rootSamples?.count ?? 0)
    }
}
