import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// A fork (`desgd-record --fork TRACE --at T`; docs/forks.md): a new trace that continues a recorded run
/// from its exact state at the start of round T with some settings changed (another rule, attack,
/// declared f, learning rate…), to ask "what if, from here on".
///
/// The starting state is not taken on trust: the parent's run is re-simulated with the parent's
/// configuration from its last state checkpoint at or before T (from the initial state when it has
/// none and starts at round 0) up to T, every record compared byte for byte with the parent's
/// (``Reexecution``'s segment check, the same as `desgd-replay --reexecute`). The fork's header
/// then names the parent by its chain digest there (FORMAT.md §5.1.1); the fork begins with a
/// state checkpoint of round T, so it is a self-contained trace that replay, audit, verification,
/// re-execution and resumption read as any other, with rounds numbered from T.
///
/// What may change is what leaves the state's shape alone (``Field/changeable``); a changed rule
/// or pre-aggregator chain starts from its initial state, as does a changed attack; unchanged
/// ones keep their carried state, and the drift metrics continue. With nothing changed the fork's
/// round records are byte-identical to the parent's from T on (tested).
///
/// The parent is only read: a failure or Ctrl-C leaves it as it was.
public final class TraceFork {
    public let parent: TraceReader
    /// The round the fork starts at.
    public let at: Int
    /// The fork's configuration (the parent's with the changes).
    public let config: SimulationConfig
    /// What the parent's run and the fork's may need together.
    let memoryLimit: MemoryLimit
    /// What the fork's header says of its parent.
    public let info: TraceHeader.ForkInfo
    /// The parent's rounds re-simulated and checked before the fork starts: from its last
    /// checkpoint at or before `at` to `at`.
    public let verified: Reexecution.Segment
    let dataset: Dataset

    /// A field of ``SimulationConfig``, the name a fork's header records its change under (FORMAT.md
    /// §5.1.1: desgd-record's option, part of the format), and whether a fork may change it (otherwise
    /// why not).
    struct Field: Sendable {
        var setting: Setting
        var option: String
        var value: @Sendable (SimulationConfig) -> String
        /// nil: a fork may change it; else the reason it may not.
        var refusal: String?

        init(_ setting: Setting, option: String, value: @escaping @Sendable (SimulationConfig) -> String,
             refusal: String?) {
            (self.setting, self.option, self.value, self.refusal) = (setting, option, value, refusal)
        }
    }

    /// Every field of the configuration but the threads (results do not depend on them) and the
    /// data set (checked by digest), in declaration order.
    static let fields: [Field] = [
        Field(.mode, option: "--mode", value: { $0.mode.rawValue },
            refusal: "DeSGD keeps a momentum per class, SGD one per worker"),
        Field(.momentum, option: "--momentum", value: { $0.momentum.rawValue },
            refusal: "it moves the momentum between the workers and the server"),
        Field(.model, option: "--model", value: { $0.model.rawValue }, refusal: "another model has other parameters"),
        Field(.backend, option: "--backend", value: { $0.backend.rawValue },
            refusal: "the state was computed with the parent's arithmetic"),
        Field(.honestWorkers, option: "--honest", value: { "\($0.honestWorkers)" },
            refusal: "the state holds one momentum per honest worker and class"),
        Field(.byzantineWorkers, option: "--byzantine", value: { "\($0.byzantineWorkers)" },
            refusal: "the state holds one momentum per Byzantine worker and class"),
        Field(.declaredF, option: "--f", value: { "\($0.effectiveF)" }, refusal: nil),
        Field(.partition, option: "--partition", value: { "\($0.partition)" },
            refusal: "the momenta belong to the data each worker holds"),
        Field(.batchSize, option: "--batch", value: { "\($0.batchSize)" }, refusal: nil),
        Field(.beta, option: "--beta", value: { "\($0.beta)" }, refusal: nil),
        Field(.bufferDecay, option: "--buffer-decay", value: { "\($0.effectiveBufferDecay)" }, refusal: nil),
        Field(.gamma, option: "--gamma", value: { "\($0.gamma)" }, refusal: nil),
        Field(.learningRate, option: "--lr", value: { "\($0.learningRate)" }, refusal: nil),
        Field(.weightDecay, option: "--weight-decay", value: { "\($0.weightDecay)" }, refusal: nil),
        Field(.rounds, option: "--rounds", value: { "\($0.rounds)" }, refusal: nil),
        Field(.classesPerRound, option: "--classes-per-round", value: { "\($0.classesPerRound)" },
            refusal: "the class sets of the rounds before the fork were drawn for it"),
        Field(.schedule, option: "--schedule", value: { $0.schedule.rawValue }, refusal: nil),
        Field(.aggregator, option: "--agg", value: { $0.aggregator }, refusal: nil),
        Field(.preAggregators, option: "--pre", value: { $0.preAggregators.isEmpty ? "none" : $0.preAggregators },
            refusal: nil),
        Field(.attack, option: "--attack", value: { $0.attack }, refusal: nil),
        Field(.evaluationInterval, option: "--eval-every", value: { "\($0.evaluationInterval)" }, refusal: nil),
        Field(.seed, option: "--seed", value: { "\($0.seed)" }, refusal: "the data partition is drawn from the seed"),
    ]

    /// What `fork` changes of `parent`, in the order of ``fields``; a usage error (exit 2) naming the
    /// first change that would alter the shape of the state.
    public static func changes(parent: SimulationConfig,
        fork: SimulationConfig) throws(TraceError) -> [TraceHeader.ForkInfo.Change] {
        var out: [TraceHeader.ForkInfo.Change] = []
        for f in fields {
            let (p, v) = (f.value(parent), f.value(fork))
            guard p != v else { continue }
            if let why = f.refusal { throw .usage("\(f.setting): a fork keeps the parent's \(p) (got \(v)): \(why)") }
            out.append(.init(option: f.option, parent: p, fork: v))
        }
        if parent.data != fork.data, !(parent.data.isFashionMNIST && fork.data.isFashionMNIST) {
            throw .usage("\(Setting.syntheticImages)/\(Setting.dataDirectory): a fork runs on the"
                + " parent's data set (\(parent.data))")
        }
        return out
    }

    /// Checks everything before any training: the parent (its digest chain, a round `at` it can
    /// start from, its arithmetic, its data set, found by `dataDirectory` when given) and the
    /// fork's configuration `config` (the parent's, changed; what it changes may not alter the
    /// state's shape, and its rounds must go past `at`).
    /// `memoryLimit`: what the parent's run and the fork's, held at once, may need.
    public init(parentPath: String, at: Int, config: SimulationConfig, dataDirectory: String?,
                memoryLimit: MemoryLimit = .process) throws(TraceError) {
        let reader = try TraceReader(path: parentPath)
        let h = reader.header
        let chain = reader.verifyChain()
        guard chain.holds else {
            throw .corrupted("\(parentPath): its digest chain breaks (\(chain.failure ?? "")): it cannot be forked")
        }
        guard at >= reader.firstRound && at <= reader.rounds.upperBound else {
            throw .usage("\(Setting.forkRound) \(at): \(parentPath) holds \(reader.roundsText), so a fork starts at"
                + " round \(reader.firstRound)...\(reader.rounds.upperBound)")
        }
        guard config.rounds > at else {
            throw .usage("\(Setting.rounds) \(config.rounds): a fork at round \(at) must run past it (give "
                + "\(Setting.rounds) above \(at))")
        }
        let changes = try TraceFork.changes(parent: h.config, fork: config)
        try Reexecution.checkArithmetic(reader, backend: h.config.backend.description)
        // The parent's run and the fork's are in memory at once; the parent's shapes are its word.
        do { try config.checkMemory(driftWindow: h.driftWindow, runs: 2, limit: memoryLimit) } catch {
            throw .setup("\(parentPath): it cannot be forked here: ", error)
        }
        dataset = try Reexecution.loadDataset(for: h, directory: dataDirectory)

        verified = try TraceFork.startSegment(reader, at: at)
        guard let digest = try TraceFork.parentDigest(reader, at: at) else {
            throw .corrupted("\(parentPath): no round record before round \(at): it cannot be forked there")
        }
        info = TraceHeader.ForkInfo(parentDigest: digest, at: at,
                                    parentFile: (parentPath as NSString).lastPathComponent,
                                    changes: changes)
        parent = reader
        self.at = at
        self.config = config
        self.memoryLimit = memoryLimit
    }

    public enum Outcome: Sendable, Equatable {
        /// The fork holds rounds `at..<end`; the parent's rounds ``verified`` were re-simulated and
        /// found byte-identical first. The accuracies are those of the fork's evaluations.
        case forked(end: Int, bestAccuracy: Double, finalAccuracy: Double)
        /// Stopped (Ctrl-C) before its last round: the fork is complete up to round `end` (exclusive).
        case interrupted(end: Int)
        /// The parent's re-simulated record differs from its own (the sentence names the round):
        /// the parent is not what its configuration records. Nothing was written.
        case parentDiffers(String)
    }

    /// The fork's recorder, once ``run(makeRecorder:shouldStop:progress:)`` created it.
    public private(set) var recorder: TraceRecorder?

    /// Re-simulates the parent up to `at` (checking it), then records the fork into the recorder
    /// that `makeRecorder(info, drift)` creates (the file is created only once the parent's state is
    /// verified: a mismatch writes nothing); `drift` is the parent's drift state at `at`, for the
    /// ``TraceRecorder`` initialiser's `forkDrift`.
    /// `progress(done, total)` counts the parent's rounds checked and the fork's rounds recorded.
    ///
    /// A parent whose re-simulated record differs is an outcome (exit 1 in `desgd-record`); throws
    /// `.usage` for a configuration that cannot run from the parent's state, the recorder's error
    /// when writing fails.
    public func run(makeRecorder: (TraceHeader.ForkInfo, DriftTrackerState?) throws(TraceError) -> TraceRecorder,
                    shouldStop: @escaping () -> Bool = { false },
                    progress: @escaping (Int, Int) -> Void = { _, _ in }) throws(TraceError) -> Outcome {
        let total = (at - verified.start) + (config.rounds - at)
        let fork: Simulation, drift: DriftTrackerState?
        switch try TraceFork.start(parent: parent, dataset: dataset, segment: verified, at: at, config: config,
                                   changes: info.changes, memoryLimit: memoryLimit, progress: { progress($0, total) }) {
        case .parentDiffers(let message):
            return .parentDiffers("\(message); nothing was written")
        case .run(let simulation, let state): (fork, drift) = (simulation, state)
        }
        let recorder = try makeRecorder(info, drift)
        self.recorder = recorder
        let result: SimulationResult
        do {
            result = try fork.run(from: at, observer: recorder) { t, _ in
                if shouldStop() { recorder.stopRequested = true }
                progress(t + 1 - verified.start, total)
            }
        } catch { throw .corrupted("\(recorder.path): round \(error.explanation)") }
        if let failure = recorder.failure { throw failure }
        return result.rounds < config.rounds ? .interrupted(end: result.rounds)
            : .forked(end: result.rounds, bestAccuracy: result.bestAccuracy, finalAccuracy: result.finalAccuracy)
    }

    /// The parent's rounds re-simulated to reach round `at`: from its last state checkpoint at or
    /// before `at`, or from its initial state when it has none and starts at round 0.
    public static func startSegment(_ parent: TraceReader, at: Int) throws(TraceError) -> Reexecution.Segment {
        if let k = parent.lastCheckpoint(atOrBefore: at) {
            return Reexecution.Segment(start: parent.checkpointRounds[k], end: at, checkpoint: k)
        }
        guard parent.firstRound == 0 else {
            throw .corrupted("\(parent.path): a fork without its starting checkpoint cannot be forked")
        }
        return Reexecution.Segment(start: 0, end: at, checkpoint: nil)
    }

    /// The parent's chain digest that a fork at `at` names (FORMAT.md §5.1.1): the value after its
    /// last round record before `at`, or after its header record when `at` is its first round; nil
    /// when the parent has no round `at` − 1.
    public static func parentDigest(_ parent: TraceReader, at: Int) throws(TraceError) -> String? {
        let anchor: Int?
        if at == parent.firstRound {
            anchor = 0
        } else if parent.rounds.contains(at - 1) {
            anchor = parent.records.lastIndex { $0.type == .round && $0.round == at - 1 }
        } else {
            anchor = nil
        }
        return try anchor.map { k throws(TraceError) in try parent.storedDigest(ofRecord: k) }
    }

    /// Where a fork's run starts, or why it cannot.
    enum Start {
        /// The fork's simulation at the start of round `at` (restored from the parent's state with
        /// the changes applied) and the drift state its recorder continues from.
        case run(Simulation, drift: DriftTrackerState?)
        /// The parent's re-simulated record differs from its own (the sentence names the round).
        case parentDiffers(String)
    }

    /// Re-simulates `parent` through `segment` (up to `at`), comparing every record byte for byte,
    /// then puts a run of the fork's configuration `config` in the parent's state at `at` with
    /// `changes` applied: a changed rule or pre-aggregator chain starts from its initial state, as
    /// does a changed attack (FORMAT.md §5.1.1). The one path by which a fork is made
    /// (``run(makeRecorder:shouldStop:progress:)``) and its descent checked (``ForkDescent``).
    /// `progress(rounds)` counts the parent's rounds checked.
    static func start(parent: TraceReader, dataset: Dataset, segment: Reexecution.Segment, at: Int,
                      config: SimulationConfig, changes: [TraceHeader.ForkInfo.Change], memoryLimit: MemoryLimit,
                      progress: @escaping (Int) -> Void) throws(TraceError) -> Start {
        var parentConfig = parent.header.config
        parentConfig.threads = config.threads
        let run = try SegmentSimulation(reader: parent, dataset: dataset, config: parentConfig, start: segment.start,
                                        checkpoint: segment.checkpoint, decompressor: ZstdDecompressor(),
                                        memoryLimit: memoryLimit)
        let check = try Reexecution.check(segment, run: run, reader: parent,
                                          positions: Reexecution.roundsBefore(parent.records, first: parent.firstRound),
                                          shared: Reexecution.Shared(progress: progress))
        if let m = check.mismatch {
            return .parentDiffers("\(parent.path): re-simulated from round \(segment.start) to the fork's round \(at), "
                                  + "\(m.message): the parent is not what its configuration records here "
                                  + "(another arithmetic or an altered file)")
        }
        var state = run.simulation.captureState(round: at)
        let changed = Set(changes.compactMap { c in fields.first { $0.option == c.option }?.setting })
        if changed.contains(.aggregator) || changed.contains(.preAggregators) {
            state.aggregatorStates = state.aggregatorStates.map { _ in .empty }
        }
        if changed.contains(.attack) { state.attackStates = state.attackStates.map { _ in .empty } }
        let fork: Simulation
        do {
            fork = try Simulation(config: config, dataset: dataset, expectedPartition: parent.header.partition,
                                  memoryLimit: memoryLimit)
            try fork.restore(state: state, at: at)
        } catch { throw .setup("the fork's configuration cannot continue \(parent.path)'s state: ", error) }
        guard fork.partition == parent.header.partition else {
            throw .usage("the fork partitions the data otherwise than \(parent.path): fork it"
                + " with the desgd that recorded it")
        }
        return .run(fork, drift: run.tracker?.captureState())
    }
}

extension DataSource {
    var isFashionMNIST: Bool {
        if case .fashionMNIST = self { return true }
        return false
    }
}
