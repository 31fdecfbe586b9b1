import DesgdNumerics
import DesgdRobust

/// A sender of a message to the server.
public struct Sender: Sendable, Equatable, Codable {
    /// Worker id: honest workers are 0..<n, Byzantine workers n..<n+f.
    public var worker: Int
    public var byzantine: Bool
    public init(worker: Int, byzantine: Bool) {
        self.worker = worker
        self.byzantine = byzantine
    }
}

/// One aggregation of a round: in DeSGD one per class of S_t, in the baseline one per round.
public struct AggregationEvent: Sendable {
    /// The class aggregated (DeSGD), or −1 for the baseline's whole-data aggregation.
    public var classIndex: Int
    /// Who sent which row of `messages`: honest senders first (in worker order), then Byzantine.
    public var senders: [Sender]
    /// The received messages, one row per sender.
    public var messages: Matrix
    /// The attack's decision (nil when there are no Byzantine senders).
    public var attackDecision: AttackDecision?
    /// The rule's decision and the state it carried in and out.
    public var decision: AggregationDecision
    public var stateBefore: AggregatorState
    public var stateAfter: AggregatorState
    /// The aggregate m̂ (or ĝ).
    public var aggregate: [Float]
    /// A live federation's clients' Ed25519 signatures of their messages, per row (nil for a row no
    /// client signed: a Byzantine message crafted by the server's attack); nil in simulated rounds.
    public var signatures: [[UInt8]?]? = nil

    /// Indices of the honest rows of `messages`.
    public var honestRows: [Int] { senders.indices.filter { !senders[$0].byzantine } }
}

/// Everything that happened in one round, as handed to a ``SimulationObserver``.
public struct RoundEvent: Sendable {
    public var round: Int
    /// S_t (DeSGD), or empty for the baseline.
    public var classes: [Int]
    public var aggregations: [AggregationEvent]
    /// The update direction Δ applied as x ← x − η·Δ (eq. 16 in DeSGD; the aggregate, or the
    /// server momentum, in the baseline).
    public var update: [Float]
    /// The model difference as applied: x_{t+1} = fl(x_t + Δx) coordinate by coordinate, so
    /// x_{t+1} is rebuilt bit for bit from x_t and Δx (see ``Simulation/step(round:)``).
    public var modelDiff: [Float]
    /// Test-set evaluation after the update, on evaluation rounds.
    public var evaluation: Evaluation?
}

/// Receives everything the engine does, in order. The recorder of traces is one observer; a
/// no-op observer costs nothing (the events reference buffers the engine builds anyway).
public protocol SimulationObserver: AnyObject {
    /// Called once before round 0 with the validated configuration and the run's setup.
    func runStarted(_ setup: SimulationSetup)
    /// Called before every round t, and once more after the last completed round (t = rounds done).
    /// `snapshot()` returns the server's state at the start of round t; it copies the model and
    /// buffers, so call it only when needed (the recorder does, at keyframe rounds).
    func roundStarting(_ round: Int, snapshot: () -> ServerSnapshot)
    /// Called before every round t, right before `roundStarting(t, …)`. `state()` returns the
    /// complete state of the run at the start of round t (``SimulationState``: what continues the
    /// run bit for bit); it copies every momentum, so call it only when needed (the recorder does,
    /// at checkpoint rounds).
    func stateAvailable(atStartOf round: Int, state: () -> SimulationState)
    /// Called after every round.
    func roundFinished(_ event: RoundEvent)
    /// Called once at the end.
    func runFinished(_ result: SimulationResult)
    /// Checked after every round: `true` ends the run there (the observer still gets
    /// `roundStarting(completedRounds, …)` and `runFinished`). E.g. a recorder after Ctrl-C.
    var shouldStop: Bool { get }
}

extension SimulationObserver {
    public func runStarted(_ setup: SimulationSetup) {}
    public func roundStarting(_ round: Int, snapshot: () -> ServerSnapshot) {}
    public func stateAvailable(atStartOf round: Int, state: () -> SimulationState) {}
    public var shouldStop: Bool { false }
    public func runFinished(_ result: SimulationResult) {}
}

/// An observer that ignores everything.
public final class NullObserver: SimulationObserver {
    public init() {}
    public func roundFinished(_ event: RoundEvent) {}
}

/// What a run starts from, beyond its configuration.
public struct SimulationSetup: Sendable {
    public var config: SimulationConfig
    public var partition: Partition
    public var dataset: DatasetProvenance
    public var parameterCount: Int
    public var initialParameters: [Float]
    /// The numeric backend's exact kernel description.
    public var backendDescription: String
    /// The aggregation pipeline's and the attack's canonical specs.
    public var aggregatorSpec: String
    public var attackSpec: String

    public init(
        config: SimulationConfig, partition: Partition, dataset: DatasetProvenance, parameterCount: Int,
        initialParameters: [Float], backendDescription: String, aggregatorSpec: String, attackSpec: String
    ) {
        self.config = config
        self.partition = partition
        self.dataset = dataset
        self.parameterCount = parameterCount
        self.initialParameters = initialParameters
        self.backendDescription = backendDescription
        self.aggregatorSpec = aggregatorSpec
        self.attackSpec = attackSpec
    }
}

/// The outcome of a run.
public struct SimulationResult: Sendable {
    public struct EvaluationPoint: Sendable, Codable, Equatable {
        public var round: Int
        public var evaluation: Evaluation
        public init(round: Int, evaluation: Evaluation) {
            self.round = round
            self.evaluation = evaluation
        }
    }
    public var evaluations: [EvaluationPoint]
    public var finalParameters: [Float]
    /// Wall time of the run, and the part of it spent evaluating on the test set.
    public var seconds: Double
    public var evaluationSeconds: Double
    /// Rounds completed: the configured number, or fewer when an observer stopped the run.
    public var rounds: Int
    public init(evaluations: [EvaluationPoint], finalParameters: [Float], seconds: Double, evaluationSeconds: Double,
                rounds: Int) {
        self.evaluations = evaluations
        self.finalParameters = finalParameters
        self.seconds = seconds
        self.evaluationSeconds = evaluationSeconds
        self.rounds = rounds
    }
    /// The paper's metric: the best test accuracy during training.
    public var bestAccuracy: Double { evaluations.map(\.evaluation.accuracy).max() ?? 0 }
    public var finalAccuracy: Double { evaluations.last?.evaluation.accuracy ?? 0 }
}

/// The server's state at the start of a round: the model, the global class-momentum buffer
/// (DeSGD), the server momentum (global-momentum baseline) and the rules' and attacks' carried
/// state per aggregation group (class in DeSGD). The honest workers' own momenta are not part of it.
public struct ServerSnapshot: Sendable, Equatable {
    public var parameters: [Float]
    /// m_g^c for c = 0..<C (eq. 15), empty outside DeSGD.
    public var classMomenta: [[Float]]
    /// Empty unless momentum is global.
    public var serverMomentum: [Float]
    public var aggregatorStates: [AggregatorState]
    public var attackStates: [AttackState]

    public init(parameters: [Float], classMomenta: [[Float]], serverMomentum: [Float],
                aggregatorStates: [AggregatorState], attackStates: [AttackState]) {
        self.parameters = parameters
        self.classMomenta = classMomenta
        self.serverMomentum = serverMomentum
        self.aggregatorStates = aggregatorStates
        self.attackStates = attackStates
    }
}
