import DesgdNumerics
import DesgdRobust

/// The complete state of a run at the start of a round: with counter-based randomness (every draw
/// keyed by seed, round, worker and class), this is all a ``Simulation`` needs to continue bit for
/// bit. A state checkpoint of a trace stores it (FORMAT.md §5.5).
public struct SimulationState: Sendable, Equatable {
    /// The round this state starts.
    public var round: Int
    /// The model x_t.
    public var parameters: [Float]
    /// m_g^c, c = 0..<C (DeSGD), else empty; the server momentum (global momentum), else empty.
    public var classMomenta: [[Float]]
    public var serverMomentum: [Float]
    /// Every honest worker's momentum, one per row of ``Simulation/honestMomentumRows``.
    public var honestMomenta: [[Float]]
    public var honestRows: [MomentumRow]
    /// The Byzantine workers' own momenta, one per row of ``Simulation/byzantineMomentumRows``
    /// (zero when the attack never computes them).
    public var byzantineMomenta: [[Float]]
    public var byzantineRows: [MomentumRow]
    /// Per aggregation group (class in DeSGD), the rule's and the attack's carried state.
    public var aggregatorStates: [AggregatorState]
    public var attackStates: [AttackState]

    public init(round: Int, parameters: [Float], classMomenta: [[Float]], serverMomentum: [Float],
                honestMomenta: [[Float]],
                honestRows: [MomentumRow], byzantineMomenta: [[Float]], byzantineRows: [MomentumRow],
                aggregatorStates: [AggregatorState], attackStates: [AttackState]) {
        self.round = round
        self.parameters = parameters
        self.classMomenta = classMomenta
        self.serverMomentum = serverMomentum
        self.honestMomenta = honestMomenta
        self.honestRows = honestRows
        self.byzantineMomenta = byzantineMomenta
        self.byzantineRows = byzantineRows
        self.aggregatorStates = aggregatorStates
        self.attackStates = attackStates
    }
}

/// Whose momentum a row of a ``SimulationState`` is: a worker's for one class (−1: of all its data).
public struct MomentumRow: Sendable, Equatable, Codable {
    public var worker: Int
    public var classIndex: Int
    public init(worker: Int, classIndex: Int) {
        self.worker = worker
        self.classIndex = classIndex
    }

    enum CodingKeys: String, CodingKey { case worker, classIndex = "class" }
}

extension Simulation {
    /// The rows of the honest momenta: every honest worker in increasing order, and for each the
    /// classes it holds in increasing order (DeSGD), or class −1 (the baseline).
    public var honestMomentumRows: [MomentumRow] {
        honestJobs.map { MomentumRow(worker: $0.worker, classIndex: $0.classIndex) }
    }

    /// The rows of the Byzantine momenta: workers n..<n+f, and for each every class 0..<C (DeSGD)
    /// or class −1.
    public var byzantineMomentumRows: [MomentumRow] {
        let n = config.honestWorkers
        return (0..<config.byzantineWorkers).flatMap { j in
            config.mode == .desgd ? (0..<config.classes).map { MomentumRow(worker: n + j, classIndex: $0) }
                : [MomentumRow(worker: n + j, classIndex: -1)]
        }
    }

    /// The complete state at the start of round `t` (copies: O(rows · d)).
    public func captureState(round t: Int) -> SimulationState {
        SimulationState(round: t, parameters: parameters, classMomenta: server.classMomenta,
                        serverMomentum: server.serverMomentum,
                        honestMomenta: (0..<honestMomenta.count).map { honestMomenta.array($0) },
                        honestRows: honestMomentumRows,
                        byzantineMomenta: (0..<byzantineMomenta.count).map { byzantineMomenta.array($0) },
                        byzantineRows: byzantineMomentumRows,
                        aggregatorStates: aggregatorStates, attackStates: attackStates)
    }

    /// Puts the run in `state`, so that ``advance(round:evaluationSeconds:)`` from round `t` on gives
    /// the bits of the run that reached it. Throws, changing nothing, when a shape does not fit this
    /// run (another configuration's state).
    public func restore(state s: SimulationState, at t: Int) throws(SimulationError) {
        let d = model.parameterCount, groups = config.mode == .desgd ? config.classes : 1
        func fits(_ rows: [[Float]], _ count: Int) -> Bool { rows.count == count && rows.allSatisfy { $0.count == d } }
        guard s.round == t, t >= 0 && t <= config.rounds else {
            throw SimulationError("the state is of round \(s.round), not of round \(t) of a \(config.rounds)-round run")
        }
        guard s.parameters.count == d, fits(s.honestMomenta, honestMomenta.count),
            fits(s.byzantineMomenta, byzantineMomenta.count),
              s.honestRows == honestMomentumRows, s.byzantineRows == byzantineMomentumRows,
              s.aggregatorStates.count == groups, s.attackStates.count == groups else {
            throw SimulationError("the state of round \(t) does not fit this run (model, workers or groups differ)")
        }
        let states = s.aggregatorStates + s.attackStates
        guard states.allSatisfy({ $0.vectors.values.allSatisfy { $0.count == d } }) else {
            throw SimulationError("the state of round \(t) carries a rule or attack vector of another"
                + " length than the model's \(d)")
        }
        guard server.restore(classMomenta: s.classMomenta, serverMomentum: s.serverMomentum) else {
            throw SimulationError("the state of round \(t) has a class-momentum buffer or server"
                + " momentum that does not fit this run")
        }
        parameters = s.parameters
        for (i, row) in s.honestMomenta.enumerated() { _ = honestMomenta.row(i).update(fromContentsOf: row) }
        for (i, row) in s.byzantineMomenta.enumerated() { _ = byzantineMomenta.row(i).update(fromContentsOf: row) }
        aggregatorStates = s.aggregatorStates
        attackStates = s.attackStates
    }

    /// Round `t` (``step(round:)``) and, when the configuration evaluates after it, the test-set
    /// evaluation; `evaluationSeconds` grows by the time the evaluation took.
    public func advance(round t: Int, messages: ExternalMessages? = nil,
                        evaluationSeconds: inout Double) throws(SimulationError) -> RoundEvent {
        var event: RoundEvent
        if let messages { event = try step(round: t, messages: messages) } else { event = try step(round: t) }
        if config.evaluates(afterRound: t) {
            let e0 = Stopwatch.now()
            event.evaluation = model.evaluate(parameters: parameters, data: dataset.test, threads: config.threads,
                workspace: workspace)
            evaluationSeconds += Stopwatch.now() - e0
        }
        return event
    }
}

/// What a ``DriftTracker`` carries from one round to the next (the recorder's: no replayed step),
/// so that drift metrics after a restore are those of the uninterrupted run.
public struct DriftTrackerState: Sendable, Equatable {
    public var rounds: Int
    /// Σ‖u_s − u_s^H‖.
    public var differenceNorms: Double
    /// Σ (u_s − u_s^H) and Σ u_s^H (binary64, d values each).
    public var differenceSum: [Double]
    public var shadowSum: [Double]
    /// The honest shadow's class-momentum buffer (C entries in DeSGD, else none) and server momentum.
    public var shadowClassMomenta: [[Float]]
    public var shadowServerMomentum: [Float]
    /// Per group that has aggregated, in increasing class order (−1 for the baseline's group).
    public var groups: [(classIndex: Int, history: DeviationHistory.State)]

    public init(rounds: Int, differenceNorms: Double, differenceSum: [Double], shadowSum: [Double],
                shadowClassMomenta: [[Float]],
                shadowServerMomentum: [Float], groups: [(classIndex: Int, history: DeviationHistory.State)]) {
        self.rounds = rounds
        self.differenceNorms = differenceNorms
        self.differenceSum = differenceSum
        self.shadowSum = shadowSum
        self.shadowClassMomenta = shadowClassMomenta
        self.shadowServerMomentum = shadowServerMomentum
        self.groups = groups
    }

    public static func == (a: DriftTrackerState, b: DriftTrackerState) -> Bool {
        a.rounds == b.rounds && a.differenceNorms.bitPattern == b.differenceNorms.bitPattern
            && a.differenceSum == b.differenceSum
            && a.shadowSum == b.shadowSum && a.shadowClassMomenta == b.shadowClassMomenta
                && a.shadowServerMomentum == b.shadowServerMomentum
            && a.groups.map(\.classIndex) == b.groups.map(\.classIndex)
                && a.groups.map(\.history) == b.groups.map(\.history)
    }
}

extension DriftTracker {
    public func captureState() -> DriftTrackerState {
        DriftTrackerState(rounds: rounds, differenceNorms: differenceNorms, differenceSum: differenceSum,
                          shadowSum: shadowSum,
                          shadowClassMomenta: shadow.classMomenta, shadowServerMomentum: shadow.serverMomentum,
                          groups: groups.keys.sorted().map { ($0, groups[$0]!.captureState()) })
    }

    /// Restores a captured state into a tracker that has added nothing yet; throws, changing
    /// nothing visible, when a shape does not fit (another dimension, window or configuration).
    public func restore(_ s: DriftTrackerState) throws(SimulationError) {
        let d = dimension
        let validGroups = config.mode == .desgd ? Set(0..<config.classes) : [-1]
        guard rounds == 0, groups.isEmpty, s.rounds >= 0, s.differenceSum.count == d, s.shadowSum.count == d,
              Set(s.groups.map(\.classIndex)).count == s.groups.count,
              s.groups.allSatisfy({ validGroups.contains($0.classIndex) }) else {
            throw SimulationError("the drift state does not fit this run")
        }
        var restored: [Int: DeviationHistory] = [:]
        for (c, h) in s.groups {
            let history = DeviationHistory(dimension: d, windowLength: window, recent: recent, workspace: workspace)
            guard history.restore(h) else {
                throw SimulationError("the drift state of group \(c) does not fit a \(recent.rawValue)"
                    + " recent sum of W = \(window)")
            }
            restored[c] = history
        }
        guard shadow.restore(classMomenta: s.shadowClassMomenta, serverMomentum: s.shadowServerMomentum) else {
            throw SimulationError("the drift state's honest shadow does not fit this run")
        }
        groups = restored
        rounds = s.rounds
        differenceNorms = s.differenceNorms
        differenceSum = s.differenceSum
        shadowSum = s.shadowSum
    }
}
