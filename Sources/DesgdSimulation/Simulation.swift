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
    /// The server's half of every round: aggregation, attack and server step (eq. 7, 13–16).
    public let aggregation: AggregationServer
    public var pipeline: AggregationPipeline { aggregation.pipeline }
    public var attack: any Attack { aggregation.attack }

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
    var server: ServerStep { aggregation.step }
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

    public internal(set) var parameters: [Float] {
        get { aggregation.parameters }
        set { aggregation.parameters = newValue }
    }
    var aggregatorStates: [AggregatorState] {
        get { aggregation.aggregatorStates }
        set { aggregation.aggregatorStates = newValue }
    }
    var attackStates: [AttackState] {
        get { aggregation.attackStates }
        set { aggregation.attackStates = newValue }
    }

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
            throw SimulationError("the data set has \(dataset.train.classes) classes, the"
                + " simulation expects \(config.classes)")
        }
        let partition: Partition
        do {
            partition = try Partition.make(config.partition, data: dataset.train, workers: config.honestWorkers,
                seed: config.seed)
        } catch { throw SimulationError(error.explanation) }
        if let expectedPartition, partition != expectedPartition {
            throw SimulationError("this desgd partitions the data otherwise than the trace says: "
                                  + "use the desgd that recorded it")
        }
        self.partition = partition
        guard let shape = config.model.shape else {
            throw SimulationError("the clients' own model runs only in a live federation (docs/federation.md)")
        }
        model = CNN(shape: shape, backend: config.backend)
        let d = model.parameterCount, C = config.classes, n = config.honestWorkers, f = config.byzantineWorkers

        executor = ParallelExecutor(threads: config.threads)
        let aggregation = try AggregationServer(
            config: config,
            holders: config.groupHolders(partition: partition),
            initialParameters: model.initialParameters(seed: config.seed), executor: executor)
        self.aggregation = aggregation
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
        workerSamples = (0..<n).map { w in partition.samples[w].flatMap { $0 } }
        classSamples = dataset.train.indicesByClass()
        if let trust = aggregation.pipeline.rule as? FLTrust {
            rootSamples = try Simulation.rootSet(size: trust.rootSize, data: dataset.train, config: config)
        } else {
            rootSamples = nil
        }
        rootMomenta = VectorStore(count: rootSamples?.count ?? 0, dimension: d)
        allSamples = Array(0..<dataset.train.count)
    }

    public var setup: SimulationSetup {
        SimulationSetup(config: config, partition: partition, dataset: dataset.provenance,
                        parameterCount: model.parameterCount,
                        initialParameters: model.initialParameters(seed: config.seed),
                        backendDescription: config.backend.description, aggregatorSpec: pipeline.spec,
                        attackSpec: attack.spec)
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
        let result = SimulationResult(evaluations: evaluations, finalParameters: parameters,
                                      seconds: Stopwatch.now() - t0,
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
        return try aggregation.aggregate(
            round: t,
            honest: { w, c, row in
                _ = row.update(fromContentsOf: honestMomenta.readRow(honestRow[w][desgd ? c : C]!)) },
            byzantineSent: nil,
            byzantineOwn: { j, c, row in
                _ = row.update(fromContentsOf: self.byzantineMomenta.readRow(self.byzantineRow(j, c))) },
            signatures: nil)
    }

    /// Performs round t on messages computed outside the engine (a live federation's clients on
    /// desgd's model and data, docs/federation.md): ``AggregationServer/round(_:messages:)``, the same
    /// aggregation and server step as the engine's rounds, so that `desgd-replay --verify` holds on
    /// the trace. No momentum is computed here.
    public func step(round t: Int, messages: ExternalMessages) throws(SimulationError) -> RoundEvent {
        try aggregation.round(t, messages: messages)
    }

    /// Messages a round receives from outside the engine (``step(round:messages:)``).
    public typealias ExternalMessages = AggregationServer.ExternalMessages

    /// The server's state at the start of the next round: what a keyframe holds.
    public func snapshot() -> ServerSnapshot { aggregation.snapshot() }

    /// The worker id of the server's own mini-batch streams (FLTrust): −1, no worker's.
    static let serverWorker = -1

    /// FLTrust's root set: `size` distinct training samples drawn by `RandomStream(seed, .rootData)`
    /// (uniform, so following the training distribution, as in the paper), in increasing order; in
    /// DeSGD split by class, each class needing one.
    static func rootSet(size: Int, data: LabeledImages, config: SimulationConfig) throws(SimulationError) -> [[Int]] {
        guard size <= data.count else {
            throw SimulationError("fltrust:root=\(size) exceeds the \(data.count) training"
                + " samples: choose a smaller root")
        }
        var stream = RandomStream(seed: config.seed, purpose: .rootData)
        let drawn = stream.sample(size, from: data.count).sorted()
        guard config.mode == .desgd else { return [drawn] }
        let members = Set(drawn)
        let byClass = data.indicesByClass().map { $0.filter(members.contains) }
        if let empty = byClass.firstIndex(where: \.isEmpty) {
            throw SimulationError("the FLTrust root set of \(size) samples holds no sample of class \(empty):"
                + " choose a larger fltrust:root")
        }
        return byClass
    }

    func byzantineRow(_ j: Int, _ c: Int) -> Int {
        config.mode == .desgd ? j * config.classes + c : j
    }

    /// Step 2 and 3: every honest class-momentum (all classes each worker holds) and, when the
    /// attack needs them, the Byzantine workers' own momenta for S_t. All their mini-batches go
    /// through the model at x_t in one batched pass
    /// (``CNN/lossAndGradients(parameters:data:batches:executor:workspace:consume:)``);
    /// each batch's gradient then gets weight decay and updates its own momentum row, so the
    /// result does not depend on the thread count.
    func computeMomenta(round t: Int, classes S: [Int]) {
        let n = config.honestWorkers, f = config.byzantineWorkers, C = config.classes
        let own = attack.ownMomentum
        let flip = own == .flippedLabels
        let desgd = config.mode == .desgd
        let byzantineJobs: [(Int, Int)] = own == .none || f == 0 ? [] : (0..<f).flatMap { j in
            (desgd ? S : [-1]).map { (j, $0) } }
        var batches: [MiniBatch] = []
        var targets: [SendablePointer<Float>] = []  // each batch's momentum row
        batches.reserveCapacity(honestJobs.count + byzantineJobs.count)
        for (i, (worker, cls)) in honestJobs.enumerated() {
            let source = cls >= 0 ? partition.samples[worker][cls] : workerSamples[worker]
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: worker, round: t, class: cls)
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: source, size: config.batchSize,
                stream: &stream)))
            targets.append(SendablePointer(honestMomenta.row(i).baseAddress!))
        }
        for (j, c) in byzantineJobs {
            // Label-flip: the worker's data relabelled y ↦ C−1−y, then class c's samples of that
            // data set, i.e. those of true class C−1−c (``LabelFlipAttack``).
            let source = c < 0 ? allSamples : classSamples[flip ? C - 1 - c : c]
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: n + j, round: t, class: c)
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: source, size: config.batchSize,
                stream: &stream),
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
            batches.append(MiniBatch(indices: Simulation.sampleBatch(from: samples, size: config.batchSize,
                stream: &stream)))
            targets.append(SendablePointer(row.baseAddress!))
        }
        let cfg = config, rows = targets
        parameters.withUnsafeBufferPointer { p in
            let params = SendableBuffer(p)
            model.lossAndGradients(parameters: p, data: dataset.train, batches: batches, executor: executor,
                workspace: workspace) { i, g, _ in
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
        let byzantine = attack.ownMomentum == .none ? 0
            : config.byzantineWorkers * (config.mode == .desgd ? config.classesPerRound : 1)
        return honestJobs.count + byzantine + (rootSamples?.count ?? 0)
    }
}
