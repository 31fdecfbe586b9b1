import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// The server of a live federation (docs/federation.md): the clients compute their class momenta
/// (Algorithm 1, lines 8–10) in their own framework and send them; this server checks each message
/// against its client's registered key, aggregates with desgd's rules and attacks, steps the model
/// and refreshes the class-momentum buffer (eq. 7, 13–16) with the engine's own code
/// (``AggregationServer``, ``ServerStep``), evaluates on the engine's evaluation rounds, and records
/// every round with desgd's recorder.
///
/// Two kinds of run: on desgd's own model and data (``init(config:engine:trace:)``: the partition
/// the clients are given and the evaluation on the test set are the simulator's), or on the
/// clients' own model and data (``init(clients:initialParameters:engine:trace:)``: the clients
/// declare their classes, the caller gives x_0 and evaluates x_{t+1} itself). The trace is therefore verified
/// (`desgd-replay --verify`), replayed and audited like a simulated one; what cannot be repeated is
/// the clients' computation, so re-execution, resume and fork refuse it (its header's `engine`).
///
/// Rounds come in order, 0, 1, …; the run ends with ``finish()`` (the last keyframe and the
/// footer), which a crash skips: the trace then reads as incomplete, every round before it intact.
/// No state checkpoint is written: the clients' momenta, half of a run's state, are not the server's.
/// A stopped run continues (``TraceOptions/resume``) from the server's state rebuilt from its trace
/// (``LiveResumption``), into a new file that replaces the trace when the run finishes.
public final class LiveServer {
    /// The simulator's run on desgd's own model and data (it evaluates on the test set); nil on the
    /// clients' own model.
    public let simulation: Simulation?
    /// The server's half of every round.
    public let aggregation: AggregationServer
    public let recorder: TraceRecorder
    public let engine: LiveEngine
    /// The chain digest of the header record, which every client message is signed with
    /// (``ClientMessageSignature``).
    public let runTag: [UInt8]
    /// Registered keys by worker.
    let keys: [Int: TracePublicKey]
    /// The next round to run.
    public private(set) var nextRound = 0
    var evaluations: [SimulationResult.EvaluationPoint] = []
    var evaluationSeconds = 0.0
    let started = Stopwatch.now()

    /// One client message of a round.
    public struct Message {
        public var worker: Int
        /// The class (DeSGD) or −1 (the baseline).
        public var classIndex: Int
        public var vector: UnsafeBufferPointer<Float>
        public var signature: [UInt8]
        public init(worker: Int, classIndex: Int, vector: UnsafeBufferPointer<Float>, signature: [UInt8]) {
            self.worker = worker
            self.classIndex = classIndex
            self.vector = vector
            self.signature = signature
        }
    }

    /// Loads the configuration's data set (the partition the clients are given, the test set the
    /// evaluations use), builds the run and writes the trace's header. `engine.nodes` must register
    /// exactly the clients that send: the honest workers and, under an attack whose Byzantine workers
    /// craft their own messages, the Byzantine ones.
    public convenience init(config: SimulationConfig, engine: LiveEngine, trace: TraceOptions) throws(LiveServerError)
    {
        guard let shape = config.model.shape else {
            throw .input("the clients' own model needs its initial parameters: open the run with them")
        }
        let dataset: Dataset
        do { dataset = try config.data.load() } catch { throw .input(error.explanation) }
        let simulation: Simulation
        do { simulation = try Simulation(config: config, dataset: dataset) } catch { throw .input(error.explanation) }
        let layout = ParameterLayout(shape)
        guard engine.model.map(\.shape) == layout.tensors.map(\.shape) else {
            let theirs = engine.model.map { "\($0.shape)" }.joined(separator: " ")
            let ours = layout.tensors.map { "\($0.shape)" }
            throw .input(
                "the clients' model has tensors \(theirs), not \(config.model.rawValue)'s "
                    + "\(ours.joined(separator: " ")): "
                    + "give the clients desgd's layout (desgd.models) or open the run on the clients' own model")
        }
        try self.init(
            simulation: simulation, aggregation: simulation.aggregation, setup: simulation.setup,
            engine: engine, trace: trace)
    }

    /// A run on the clients' own model and data: `config.clients` declares d, C and each honest
    /// worker's classes (its `model`, `data` and `partition` are `external`, `external`, `declared`),
    /// `initialParameters` is x_0 as the clients' framework initialised it, and `engine.model` names
    /// its tensors. The caller evaluates (``round(_:messages:evaluate:)``).
    public convenience init(
        clients config: SimulationConfig, initialParameters: [Float], engine: LiveEngine, trace: TraceOptions
    ) throws(LiveServerError) {
        do { try config.validate() } catch { throw .input(error.explanation) }
        guard let clients = config.clients else {
            throw .input("a run on the clients' own model needs their declared setup (classes and holdings)")
        }
        guard let d = engine.parameterCount, d == clients.parameterCount, d == initialParameters.count else {
            throw .input(
                "the clients' model's tensors, the declared parameter count \(clients.parameterCount) and the "
                    + "\(initialParameters.count) initial parameters must agree")
        }
        guard initialParameters.allSatisfy(\.isFinite) else {
            throw .input("the initial parameters are not all finite")
        }
        do { try config.checkMemory(limit: .process) } catch { throw .input(error.explanation) }
        let partition = Partition.declared(classes: clients.classes, seed: config.seed)
        let aggregation: AggregationServer
        do {
            aggregation = try AggregationServer(
                config: config, holders: config.groupHolders(partition: partition),
                initialParameters: initialParameters, executor: ParallelExecutor(threads: config.threads))
        } catch { throw .input(error.explanation) }
        let setup = SimulationSetup(
            config: config,
            partition: partition,
            dataset: .external(description: engine.data),
            parameterCount: d, initialParameters: initialParameters,
            backendDescription: config.backend.description, aggregatorSpec: aggregation.pipeline.spec,
            attackSpec: aggregation.attack.spec)
        try self.init(simulation: nil, aggregation: aggregation, setup: setup, engine: engine, trace: trace)
    }

    /// The registered clients must be exactly those that send: the honest workers and, under an attack
    /// whose Byzantine workers craft their own messages, the Byzantine ones.
    init(
        simulation: Simulation?, aggregation: AggregationServer, setup: SimulationSetup, engine: LiveEngine,
        trace: TraceOptions
    ) throws(LiveServerError) {
        self.simulation = simulation
        self.aggregation = aggregation
        let config = aggregation.config
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let expected = Array(0..<n) + (aggregation.attack.ownMomentum != .none ? Array(n..<n + f) : [])
        guard engine.nodes.map(\.worker) == expected else {
            throw .input(
                "the registered clients are workers \(engine.nodes.map(\.worker)), expected \(expected) "
                    + "(the honest workers, then the Byzantine ones when they craft their own messages)")
        }
        var keys: [Int: TracePublicKey] = [:]
        for node in engine.nodes {
            guard let raw = Hex.decode(node.publicKey, count: ClientMessageSignature.publicKeySize),
                let key = try? TracePublicKey(raw: raw)
            else {
                throw .input(
                    "worker \(node.worker)'s public key is not a valid Ed25519 key in 64 lowercase hex digits")
            }
            keys[node.worker] = key
        }
        self.keys = keys
        self.engine = engine
        guard trace.resume else {
            do {
                recorder = try TraceRecorder(
                    path: trace.path, mode: trace.mode, keyframeInterval: trace.keyframeInterval,
                    overwrite: trace.overwrite, signingKey: trace.signingKey, engine: engine)
            } catch { throw .trace(error) }
            recorder.runStarted(setup)
            runTag = recorder.headerDigest()
            replacing = nil
            if let failure = recorder.failure { throw .trace(failure) }
            return
        }
        let reader: TraceReader
        do { reader = try TraceReader(path: trace.path) } catch { throw .input("cannot resume: \(error.explanation)") }
        let signers = reader.verifySignatures(chain: reader.verifyChain()).signers
        guard signers == (trace.signingKey.map { [$0.publicKey.fingerprint] } ?? []) else {
            throw .input(
                signers.isEmpty
                    ? "\(trace.path) is not signed: resume it without a signing key"
                    : "\(trace.path) is signed by \(signers.joined(separator: ", ")): resume it with that key")
        }
        let point = try LiveResumption(reader: reader, config: config, engine: engine)
        do { try aggregation.restore(point.snapshot) } catch { throw .input(error.explanation) }
        let continuation = trace.path + LiveServer.continuationSuffix
        do {
            recorder = try TraceRecorder(
                continuingLive: reader, round: point.round, drift: point.drift, path: continuation,
                signingKey: trace.signingKey)
        } catch { throw .trace(error) }
        runTag = point.runTag
        nextRound = point.round
        replacing = (continuation, trace.path)
    }

    /// A resumed run writes `TRACE` + this, and renames it over the trace when it finishes: until then
    /// the recorded trace stays as it was.
    public static let continuationSuffix = ".continuing"
    /// A resumed run's (continuation, trace) paths.
    let replacing: (continuation: String, trace: String)?

    /// How the trace is written.
    public struct TraceOptions {
        public var path: String
        public var overwrite: Bool
        public var mode: RecordingMode
        public var keyframeInterval: Int
        public var signingKey: TraceSigningKey?
        /// Continue the live trace at `path` after its last complete round (the other options are the
        /// trace's own).
        public var resume: Bool
        public init(
            path: String, overwrite: Bool = false, mode: RecordingMode = .full, keyframeInterval: Int = 100,
            signingKey: TraceSigningKey? = nil, resume: Bool = false
        ) {
            self.resume = resume
            self.path = path
            self.overwrite = overwrite
            self.mode = mode
            self.keyframeInterval = keyframeInterval
            self.signingKey = signingKey
        }
    }

    public var config: SimulationConfig { aggregation.config }
    public var parameters: [Float] { aggregation.parameters }
    public var parameterCount: Int { aggregation.dimension }

    /// The messages round t needs, as (worker, class) in the order they are aggregated.
    public func expectedMessages(round t: Int) -> [(worker: Int, classIndex: Int)] {
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let byzantine = aggregation.attack.ownMomentum != .none ? Array(n..<n + f) : []
        guard config.mode == .desgd else { return (Array(0..<n) + byzantine).map { ($0, -1) } }
        return config.classSet(round: t).flatMap { c in
            (aggregation.holders(of: c) + byzantine).map { ($0, c) }
        }
    }

    /// Runs round t on the clients' messages: checks that they are exactly the round's, each of the
    /// model's length and signed by its worker's registered key; then aggregates, steps, evaluates
    /// on evaluation rounds and records the round. Returns the evaluation, if any; the new model is
    /// ``parameters``. Nothing is recorded or changed when a check fails.
    ///
    /// On the clients' own model `evaluate` evaluates x_{t+1} (given as a buffer valid during the
    /// call) on the engine's evaluation rounds (``SimulationConfig/evaluates(afterRound:)``): a
    /// finite loss and an accuracy in [0, 1], recorded with the round. When it fails the round is
    /// undone and nothing recorded. On desgd's own model the server evaluates and `evaluate` is unused.
    @discardableResult
    public func round(
        _ t: Int, messages: [Message],
        evaluate: ((UnsafeBufferPointer<Float>) throws(LiveServerError) -> Evaluation)? = nil
    ) throws(LiveServerError) -> Evaluation? {
        guard t == nextRound, t < config.rounds else {
            throw .input(
                t >= config.rounds
                    ? "round \(t) is past the run's \(config.rounds) rounds"
                    : "round \(t) arrived, expected round \(nextRound)")
        }
        let evaluating = simulation == nil && config.evaluates(afterRound: t)
        if evaluating, evaluate == nil {
            throw .input("round \(t) is an evaluation round: give the evaluation of the clients' model after it")
        }
        let d = parameterCount
        var byKey: [Pair: Message] = [:]
        for m in messages {
            let key = Pair(worker: m.worker, classIndex: m.classIndex)
            guard byKey[key] == nil else {
                throw .input("round \(t): worker \(m.worker) sent two messages for class \(m.classIndex)")
            }
            guard m.vector.count == d else {
                throw .input("round \(t): worker \(m.worker)'s message has \(m.vector.count) values, the model \(d)")
            }
            byKey[key] = m
        }
        let expected = expectedMessages(round: t)
        guard messages.count == expected.count,
            expected.allSatisfy({ byKey[Pair(worker: $0.worker, classIndex: $0.classIndex)] != nil })
        else {
            let missing = expected.filter { byKey[Pair(worker: $0.worker, classIndex: $0.classIndex)] == nil }
            let what = missing.prefix(4).map { "worker \($0.worker) class \($0.classIndex)" }.joined(separator: ", ")
            throw .input(
                "round \(t) needs \(expected.count) messages, got \(messages.count)"
                    + (missing.isEmpty ? " (some for classes or workers not in the round)" : "; missing: \(what)"))
        }
        for m in messages {
            guard let key = keys[m.worker],
                ClientMessageSignature.verifies(
                    m.signature, key: key, runTag: runTag, round: t, classIndex: m.classIndex, worker: m.worker,
                    vector: m.vector)
            else {
                throw .input(
                    "round \(t): worker \(m.worker)'s message for class \(m.classIndex) is not signed by its "
                        + "registered key (\(keys[m.worker]?.fingerprint ?? "none"))")
            }
        }
        let n = config.honestWorkers
        func fill(_ w: Int, _ c: Int, _ row: UnsafeMutableBufferPointer<Float>) {
            _ = row.update(fromContentsOf: byKey[Pair(worker: w, classIndex: c)]!.vector)
        }
        let external = Simulation.ExternalMessages(
            honest: fill, byzantine: { j, c, row in fill(n + j, c, row) },
            signatures: { c, senders in senders.map { byKey[Pair(worker: $0.worker, classIndex: c)]?.signature } })
        var event: RoundEvent
        if let simulation {
            recorder.roundStarting(t) { simulation.snapshot() }
            do {
                event = try simulation.advance(round: t, messages: external, evaluationSeconds: &evaluationSeconds)
            } catch {
                throw .input(error.explanation)
            }
        } else {
            // The state before the round is copied (C + 2 model-sized vectors) only on an evaluation
            // round, where a failed evaluation returns to it; otherwise a keyframe takes it lazily.
            let before = evaluating ? aggregation.snapshot() : nil
            if before == nil { recorder.roundStarting(t) { aggregation.snapshot() } }
            do { event = try aggregation.round(t, messages: external) } catch {
                if let before { try? aggregation.restore(before) }
                throw .input(error.explanation)
            }
            if let before, let evaluate {
                let e0 = Stopwatch.now()
                do throws(LiveServerError) {
                    let e = try aggregation.parameters.withUnsafeBufferPointer { x throws(LiveServerError) in
                        try evaluate(x)
                    }
                    guard e.loss.isFinite, e.accuracy >= 0 && e.accuracy <= 1 else {
                        throw LiveServerError.input(
                            "round \(t): the evaluation needs a finite loss and an accuracy in [0, 1] "
                                + "(got loss \(e.loss), accuracy \(e.accuracy))")
                    }
                    event.evaluation = e
                } catch {
                    try? aggregation.restore(before)
                    throw error
                }
                evaluationSeconds += Stopwatch.now() - e0
                recorder.roundStarting(t) { before }
            }
        }
        recorder.roundFinished(event)
        if let e = event.evaluation { evaluations.append(.init(round: t, evaluation: e)) }
        nextRound = t + 1
        if let failure = recorder.failure { throw .trace(failure) }
        return event.evaluation
    }

    struct Pair: Hashable {
        var worker: Int
        var classIndex: Int
    }

    /// Ends the run after the rounds done: the keyframe after the last one, the footer (an interrupted
    /// run when fewer than the configured rounds ran). Returns what the recording wrote.
    public func finish() throws(LiveServerError) -> RecordingStatistics {
        // A run stopped early ends with a keyframe too: the server state a resumed run checks against.
        if nextRound < config.rounds { recorder.stopRequested = true }
        recorder.roundStarting(nextRound) { aggregation.snapshot() }
        let result = SimulationResult(
            evaluations: evaluations, finalParameters: aggregation.parameters,
            seconds: Stopwatch.now() - started, evaluationSeconds: evaluationSeconds,
            rounds: nextRound)
        recorder.runFinished(result)
        if let failure = recorder.failure { throw .trace(failure) }
        if let (continuation, trace) = replacing, rename(continuation, trace) != 0 {
            throw .trace(
                .io(
                    "cannot move \(continuation) over \(trace): \(String(cString: strerror(errno))); "
                        + "the continued trace is \(continuation)"))
        }
        return recorder.statistics
    }
}

/// Why a live server refused or failed: the caller's input (exit 2 in a command), or the trace.
public enum LiveServerError: Error, Sendable {
    case input(Explanation)
    case trace(TraceError)

    /// What went wrong, its settings for the caller to name (the live ABI: as options).
    public var explanation: Explanation {
        switch self {
        case .input(let m): m
        case .trace(let e): e.explanation
        }
    }

    public var message: String { explanation.description }
}
