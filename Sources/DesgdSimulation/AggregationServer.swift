import DesgdNumerics
import DesgdRobust

/// The server's half of a round (Algorithm 1, lines 11–17; docs/design.md §2): for every group of
/// round t, the messages of the group's holders and of the Byzantine workers (crafted here by the
/// attack, or as the Byzantine workers sent them), the robust aggregation with its carried state
/// (eq. 13), then eq. 7, 14–16 and eq. 15 (``ServerStep``), or the baseline's step.
///
/// It needs only who holds which class and the model's length, not the model or the data: the
/// simulator (``Simulation``) runs it after computing the momenta, and a live federation's server
/// (docs/federation.md) runs it on its clients' messages, whatever model and data the clients
/// train. One implementation, so that `desgd-replay --verify` holds on both kinds of trace.
///
/// Every aggregation the run will perform is checked at construction against the rule's and the
/// attack's requirements (so the rules may rely on them). Randomness: the rules and attacks key
/// their own streams by (seed, round, class); nothing here draws.
public final class AggregationServer {
    public let config: SimulationConfig
    /// The honest senders of each group, increasing: per class its holders (DeSGD, index = class), or
    /// every honest worker (the baseline's one group).
    public let holders: [[Int]]
    /// d, the model's length.
    public let dimension: Int
    public let pipeline: AggregationPipeline
    public let attack: any Attack
    let executor: ParallelExecutor
    /// Eq. 7, 14–16 and the global class-momentum buffer (or the baseline's step).
    let step: ServerStep

    /// x_t.
    public internal(set) var parameters: [Float]
    /// Each group's carried rule and attack state.
    var aggregatorStates: [AggregatorState]
    var attackStates: [AttackState]

    /// `holders[c]` for every class c (DeSGD) or `[0..<n]` (the baseline); `initialParameters` is x_0.
    public init(
        config: SimulationConfig, holders: [[Int]], initialParameters: [Float], executor: ParallelExecutor
    ) throws(SimulationError) {
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let groupCount = config.mode == .desgd ? config.classes : 1
        guard holders.count == groupCount, holders.allSatisfy({ $0.allSatisfy { (0..<n).contains($0) } }) else {
            throw SimulationError("the holders name \(holders.count) groups of workers, the run has \(groupCount)")
        }
        do {
            pipeline = try AggregatorCatalogue.makePipeline(rule: config.aggregator, pre: config.preAggregators)
            attack = try AttackCatalogue.makeAttack(config.attack)
        } catch { throw SimulationError(error.explanation) }
        // Every aggregation the run will perform must satisfy the rule's and the attack's requirements.
        for (g, honest) in holders.enumerated() {
            let what = config.mode == .desgd ? "class \(g)" : "the round"
            if honest.isEmpty {
                throw SimulationError("\(what) is held by no honest worker: change \(Setting.partition)")
            }
            if let r = pipeline.requirement(n: honest.count + f, f: config.effectiveF) {
                throw SimulationError(
                    "\(what) has \(honest.count) honest + \(f) Byzantine senders with declared "
                        + "f=\(config.effectiveF): \(r)")
            }
            if f > 0, let r = attack.requirement(honest: honest.count, byzantine: f) {
                throw SimulationError("attack \(attack.spec) in \(what): \(r)")
            }
        }
        self.config = config
        self.holders = holders
        dimension = initialParameters.count
        self.executor = executor
        step = ServerStep(config: config, dimension: initialParameters.count)
        parameters = initialParameters
        aggregatorStates = [AggregatorState](repeating: .empty, count: groupCount)
        attackStates = [AttackState](repeating: .empty, count: groupCount)
    }

    /// The honest senders of class c's group (class −1: the baseline's).
    public func holders(of c: Int) -> [Int] { holders[config.mode == .desgd ? c : 0] }

    /// Messages a round receives from outside the engine (a live federation's clients).
    public struct ExternalMessages {
        public var honest: (_ worker: Int, _ classIndex: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Void
        public var byzantine: (_ index: Int, _ classIndex: Int, _ row: UnsafeMutableBufferPointer<Float>) -> Void
        /// Per (class, sender row) a client's signature of its message, kept with the round.
        public var signatures: (_ classIndex: Int, _ senders: [Sender]) -> [[UInt8]?]?
        public init(
            honest: @escaping (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void,
            byzantine: @escaping (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void,
            signatures: @escaping (Int, [Sender]) -> [[UInt8]?]?
        ) {
            self.honest = honest
            self.byzantine = byzantine
            self.signatures = signatures
        }
    }

    /// Round t on messages from outside the engine: `messages.honest(w, c, row)` fills honest worker
    /// w's message for class c (−1 in the baseline); under an attack whose Byzantine workers compute
    /// their own momenta (``Attack/ownMomentum`` not `.none`: none, sign-flip, label-flip) the
    /// Byzantine clients crafted theirs and `messages.byzantine(j, c, row)` fills worker n + j's; any
    /// other attack is crafted here from the honest messages.
    public func round(_ t: Int, messages: ExternalMessages) throws(SimulationError) -> RoundEvent {
        let sent: ((Int, Int, UnsafeMutableBufferPointer<Float>) -> Void)? =
            attack.ownMomentum != .none ? messages.byzantine : nil
        return try aggregate(
            round: t, honest: messages.honest, byzantineSent: sent, byzantineOwn: nil,
            signatures: messages.signatures)
    }

    /// Eq. 13 per group of round t, then eq. 7, 14–16 (or the baseline's step) and eq. 15. The
    /// Byzantine rows are `byzantineSent`'s when given (received as sent, no decision of desgd's);
    /// otherwise the attack crafts them, from `byzantineOwn` (the simulator's Byzantine momenta) when
    /// the attack needs their own momenta.
    func aggregate(
        round t: Int, honest honestMessage: (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void,
        byzantineSent: ((Int, Int, UnsafeMutableBufferPointer<Float>) -> Void)?,
        byzantineOwn: ((Int, Int, UnsafeMutableBufferPointer<Float>) -> Void)?,
        signatures: ((Int, [Sender]) -> [[UInt8]?]?)?
    ) throws(SimulationError) -> RoundEvent {
        let desgd = config.mode == .desgd
        let d = dimension
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let S = desgd ? config.classSet(round: t) : []
        var aggregations: [AggregationEvent] = []
        for c in desgd ? S : [-1] {
            let group = desgd ? c : 0
            let holders = holders[group]
            var honest = Matrix(rows: holders.count, columns: d)
            for (k, w) in holders.enumerated() { honest.withMutableRow(k) { honestMessage(w, c, $0) } }
            var received = honest
            var attackDecision: AttackDecision?
            if f > 0, let byzantineSent {
                var sent = Matrix(rows: f, columns: d)
                for j in 0..<f { sent.withMutableRow(j) { byzantineSent(j, c, $0) } }
                received.append(rowsOf: sent)
            } else if f > 0 {
                var own: Matrix?
                if let byzantineOwn, attack.ownMomentum != .none {
                    var m = Matrix(rows: f, columns: d)
                    for j in 0..<f { m.withMutableRow(j) { byzantineOwn(j, c, $0) } }
                    own = m
                }
                let context = AttackContext(
                    honest: honest, byzantineCount: f, aggregator: pipeline, declaredF: config.effectiveF,
                    aggregatorState: aggregatorStates[group], ownMomenta: own,
                    byzantineWorkers: Array(n..<n + f), seed: config.seed, round: t, classIndex: c,
                    backend: config.backend, threads: config.threads)
                let output: AttackOutput
                do { output = try attack.run(context, state: &attackStates[group]) } catch {
                    throw SimulationError("round \(t), class \(c): \(error.explanation)")
                }
                received.append(rowsOf: output.messages)
                attackDecision = output.decision
            }
            let senders =
                holders.map { Sender(worker: $0, byzantine: false) }
                + (n..<n + f).map { Sender(worker: $0, byzantine: true) }
            let stateBefore = aggregatorStates[group]
            let context = AggregationContext(
                messages: received, f: config.effectiveF, seed: config.seed, round: t,
                classIndex: c, backend: config.backend, executor: executor)
            let (aggregate, decision) = pipeline.aggregate(context, state: &aggregatorStates[group])
            aggregations.append(
                AggregationEvent(
                    classIndex: c, senders: senders, messages: received, attackDecision: attackDecision,
                    decision: decision, stateBefore: stateBefore, stateAfter: aggregatorStates[group],
                    aggregate: aggregate, signatures: signatures?(c, senders)))
        }

        // Eq. 7, 14, 16 (or the baseline's step) and eq. 15.
        let (update, diff) = step.apply(
            aggregates: aggregations.map { ($0.classIndex, $0.aggregate) }, to: &parameters)
        return RoundEvent(
            round: t, classes: S, aggregations: aggregations, update: update, modelDiff: diff, evaluation: nil)
    }

    /// The server's state at the start of the next round: what a keyframe holds.
    public func snapshot() -> ServerSnapshot {
        ServerSnapshot(
            parameters: parameters, classMomenta: step.classMomenta, serverMomentum: step.serverMomentum,
            aggregatorStates: aggregatorStates, attackStates: attackStates)
    }

    /// Sets the server's state (model, class-momentum buffer, server momentum, carried states): what
    /// a live federation's server continues from. Nothing changes when the shapes do not fit this run.
    public func restore(_ s: ServerSnapshot) throws(SimulationError) {
        let groups = aggregatorStates.count
        guard s.parameters.count == parameters.count, s.aggregatorStates.count == groups,
            s.attackStates.count == groups,
            step.restore(classMomenta: s.classMomenta, serverMomentum: s.serverMomentum)
        else {
            throw SimulationError("the server state does not fit this run's model, buffer or groups")
        }
        parameters = s.parameters
        aggregatorStates = s.aggregatorStates
        attackStates = s.attackStates
    }
}
