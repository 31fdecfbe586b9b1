import DesgdNumerics

/// Which vector each Byzantine worker must bring from its own local training, computed by the
/// simulation engine on the worker's own data before the attack runs.
public enum OwnMomentumNeed: String, Sendable, Codable, CaseIterable {
    /// The attack builds its messages from the honest messages or from nothing.
    case none
    /// The worker's own class-momentum on its true labels (attack `none`, sign-flip).
    case trueLabels
    /// The worker's own class-momentum on flipped labels y ↦ C−1−y (label-flip).
    case flippedLabels
}

/// Everything an omniscient adversary sees in one round (one class in DeSGD) before it sends.
///
/// Following Karimireddy et al. (ICLR 2022) and Baruch et al. (NeurIPS 2019), the Byzantine workers
/// collude and know the honest messages of the round, the server's rule, the f it was told and its
/// state. The engine fills `ownMomenta` when the attack's ``Attack/ownMomentum`` asks for it.
public struct AttackContext: Sendable {
    /// The honest messages of this round and class, one row per honest sender (n_h × d). Indices
    /// into these rows (mimic's target) follow the engine's order of honest senders, which must be
    /// stable from round to round for the same class.
    public var honest: Matrix
    /// f_actual: how many Byzantine messages the attack must produce.
    public var byzantineCount: Int
    /// The worker id of each Byzantine sender (count = `byzantineCount`); keys each worker's own
    /// random stream. Defaults to 0..<byzantineCount.
    public var byzantineWorkers: [Int]
    /// One row per Byzantine worker (byzantineCount × d): its own momentum as asked by
    /// ``Attack/ownMomentum``; `nil` when the attack needs none.
    public var ownMomenta: Matrix?
    /// The server's rule (with its pre-aggregators, if the engine composes them into one rule).
    public var aggregator: any Aggregator
    /// The f the server's rule was told (may differ from `byzantineCount`).
    public var declaredF: Int
    /// The server rule's current state. A copy: whatever an attack does with it never reaches
    /// the server.
    public var aggregatorState: AggregatorState
    /// Seed, round and class that key the attack's random streams
    /// (`RandomStream(seed:purpose: .attack, worker:, round:, class:)`) and the server's rule when
    /// an optimal attack simulates it.
    public var seed: UInt64
    public var round: Int
    public var classIndex: Int
    /// Backend for any matrix product of the simulated rule.
    public var backend: NumericBackend
    /// Threads an attack may use for work split by Byzantine worker (Gaussian noise). The output
    /// does not depend on it.
    public var threads: Int

    public init(honest: Matrix, byzantineCount: Int, aggregator: any Aggregator, declaredF: Int,
                aggregatorState: AggregatorState = .empty, ownMomenta: Matrix? = nil,
                byzantineWorkers: [Int]? = nil, seed: UInt64 = 0, round: Int = 0, classIndex: Int = 0,
                backend: NumericBackend = .openblas, threads: Int = 1) {
        self.honest = honest
        self.byzantineCount = byzantineCount
        self.byzantineWorkers = byzantineWorkers ?? Array(0..<max(0, byzantineCount))
        self.ownMomenta = ownMomenta
        self.aggregator = aggregator
        self.declaredF = declaredF
        self.aggregatorState = aggregatorState
        self.seed = seed
        self.round = round
        self.classIndex = classIndex
        self.backend = backend
        self.threads = threads
    }

    /// The dimension d of every message.
    public var dimension: Int { honest.columns }

    /// The worker key of the colluding adversary as a whole (used by the mimic heuristic's random
    /// start): −1, distinct from every worker id, so its stream never coincides with a worker's.
    public static let colludingWorker = -1

    /// The attack's random stream for `worker` in this round and class.
    public func stream(worker: Int) -> RandomStream {
        RandomStream(seed: seed, purpose: .attack, worker: worker, round: round, class: classIndex)
    }

    /// The record of `draws` 32-bit draws from the attack's stream for `worker` in this round and class.
    func randomness(worker: Int, draws: UInt64) -> AttackRandomness {
        AttackRandomness(purpose: .attack, worker: worker, round: round, classIndex: classIndex, draws: draws)
    }

    /// The honest mean μ (``VectorMath/mean(of:)``).
    public func honestMean() -> [Float] {
        VectorMath.mean(of: honest)
    }
}

/// One evaluation of an optimal attack's line search: scale τ and objective
/// ‖agg(honest ∪ f copies of attack(τ)) − μ‖.
public struct AttackSearchPoint: Sendable, Equatable, Codable {
    public var tau: Double
    public var objective: Double
    public init(tau: Double, objective: Double) {
        self.tau = tau
        self.objective = objective
    }
}

/// A random stream an attack drew from, and how far: enough to re-derive the draws.
public struct AttackRandomness: Sendable, Equatable, Codable {
    public var purpose: RandomPurpose
    public var worker: Int
    public var round: Int
    public var classIndex: Int
    /// Number of 32-bit draws taken (``RandomStream/position`` after use).
    public var draws: UInt64

    public init(purpose: RandomPurpose, worker: Int, round: Int, classIndex: Int, draws: UInt64) {
        self.purpose = purpose
        self.worker = worker
        self.round = round
        self.classIndex = classIndex
        self.draws = draws
    }
}

/// What an attack decided in one round, as a plain value the trace stores next to the messages.
/// Each attack fills the fields that describe it and leaves the others `nil`.
public struct AttackDecision: Sendable, Equatable, Codable {
    /// The scale the messages were built with: c (constant), the sign-flip factor, ε or τ (IPM),
    /// z or τ (ALIE).
    public var scale: Double?
    /// Optimal attacks: every (τ, objective) evaluated, in evaluation order.
    public var search: [AttackSearchPoint]?
    /// Optimal attacks: the objective at the chosen τ.
    public var objective: Double?
    /// Mimic: the index of the honest row copied.
    public var target: Int?
    /// Mimic heuristic while choosing: ⟨hᵢ, z⟩ for every honest row.
    public var scores: [Double]?
    /// The own momentum the messages were built from, when they were.
    public var ownMomentum: OwnMomentumNeed?
    /// Random streams drawn from, in draw order.
    public var randomness: [AttackRandomness]?
    /// Named scalars that describe the decision (e.g. the mimic heuristic's step `t`).
    public var values: [String: Double]?

    public init() {}
}

/// State an attack carries from one round to the next (per class in DeSGD), e.g. the mimic
/// heuristic's running mean μ̂, direction z and target. Same shape as ``AggregatorState``
/// (named vectors and scalars): a plain value the trace stores and replay restores.
public typealias AttackState = AggregatorState

/// The f_actual Byzantine messages of one round and the decision that produced them.
public struct AttackOutput: Sendable, Equatable {
    /// byzantineCount × d; colluding attacks send identical rows.
    public var messages: Matrix
    public var decision: AttackDecision

    public init(messages: Matrix, decision: AttackDecision = AttackDecision()) {
        self.messages = messages
        self.decision = decision
    }
}

/// A Byzantine attack: (honest messages, server rule, own momenta) ↦ f_actual messages.
///
/// Contract:
/// - ``craft(_:state:)`` is called only through ``run(_:state:)``, which checks the context first;
///   it returns exactly `byzantineCount` rows of dimension d.
/// - Deterministic: the same context and state give the same bits; randomness only through the
///   context's keyed streams, one per Byzantine worker.
/// - `requirement(honest:byzantine:)` returns `nil` when the attack can run with that many honest
///   and Byzantine senders, and otherwise a sentence naming what it needs.
public protocol Attack: Sendable {
    /// The canonical spec string with every parameter explicit, e.g. `alie:z=1`.
    var spec: String { get }
    /// What each Byzantine worker must bring from its own training.
    var ownMomentum: OwnMomentumNeed { get }
    /// Whether the attack runs the server's rule (optimal attacks): the rule must then accept
    /// n_h + f_actual inputs with the declared f.
    var simulatesAggregator: Bool { get }
    func requirement(honest: Int, byzantine: Int) -> String?
    /// What the attack's carried state may hold (``StateSchema``; `.none` for a stateless attack).
    func stateSchema(_ bounds: StateBounds) -> StateSchema
    func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput
}

extension Attack {
    public var ownMomentum: OwnMomentumNeed { .none }
    public var simulatesAggregator: Bool { false }
    public func requirement(honest: Int, byzantine: Int) -> String? { nil }
    public func stateSchema(_ bounds: StateBounds) -> StateSchema { .none }

    /// Checks the context against the attack's needs, then crafts the Byzantine messages.
    /// With no Byzantine sender it returns an empty matrix and leaves `state` untouched.
    public func run(_ context: AttackContext, state: inout AttackState) throws(AggregationError) -> AttackOutput {
        try validate(context)
        guard context.byzantineCount > 0 else {
            return AttackOutput(messages: Matrix(rows: 0, columns: context.dimension))
        }
        let output = craft(context, state: &state)
        precondition(output.messages.rows == context.byzantineCount && output.messages.columns == context.dimension,
                     "\(spec) produced \(output.messages.rows)×\(output.messages.columns) messages")
        return output
    }

    /// Convenience for stateless attacks.
    public func run(_ context: AttackContext) throws(AggregationError) -> AttackOutput {
        var state = AttackState.empty
        return try run(context, state: &state)
    }

    private func validate(_ context: AttackContext) throws(AggregationError) {
        let f = context.byzantineCount, d = context.dimension
        guard f >= 0, context.byzantineWorkers.count == f else {
            throw AggregationError("\(spec): \(context.byzantineWorkers.count) Byzantine worker"
                + " ids for \(f) Byzantine senders")
        }
        if ownMomentum != .none {
            guard let own = context.ownMomenta, own.rows == f, own.columns == d else {
                let got = context.ownMomenta.map { "\($0.rows)×\($0.columns)" } ?? "none"
                throw AggregationError("\(spec) needs each Byzantine worker's own momentum (\(ownMomentum.rawValue)) as"
                    + " a \(f)×\(d) matrix, got \(got)")
            }
        }
        if let why = requirement(honest: context.honest.rows, byzantine: f) {
            throw AggregationError("\(spec): \(why)")
        }
        if simulatesAggregator,
           let why = context.aggregator.requirement(n: context.honest.rows + f, f: context.declaredF) {
            throw AggregationError("\(spec) cannot simulate \(context.aggregator.spec): \(why)")
        }
    }
}

extension Matrix {
    /// `count` identical rows equal to `row`: the messages of colluding Byzantine workers.
    init(repeating row: [Float], count: Int) {
        var storage: [Float] = []
        storage.reserveCapacity(row.count * count)
        for _ in 0..<count { storage.append(contentsOf: row) }
        self.init(rows: count, columns: row.count, storage: storage)
    }
}
