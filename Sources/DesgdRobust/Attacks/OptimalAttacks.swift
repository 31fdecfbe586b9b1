import DesgdNumerics

/// The 1-D line maximisation of ByzFL's `Optimal_IPM` / `Optimal_ALIE` (docs/references.md, robust aggregation
/// §3; an evolved form of the LPD toolbox's `line_maximize`): best-effort argmax of g over τ ≥ start
/// using exactly `evals` evaluations of g.
///
/// 1. Evaluate g(start); best ← start.
/// 2. Expansion: while evaluations remain, try best + δ; if strictly better accept it and double δ,
///    else multiply δ by `ratio` and stop expanding.
/// 3. Contraction: for each remaining evaluation try best + δ, accept if strictly better, and
///    always multiply δ by `ratio`.
///
/// Ties keep the earlier (smaller) τ; a NaN objective is never accepted. Deterministic.
public struct LineMaximizer: Sendable, Equatable {
    /// Number of evaluations of g, ≥ 1. ByzFL default 20.
    public var evaluations: Int
    /// First τ evaluated. ByzFL default 0.
    public var start: Double
    /// Initial step δ ≠ 0. ByzFL default 10.
    public var delta: Double
    /// Contraction ratio in (0.5, 1). ByzFL default 0.8.
    public var ratio: Double

    public init(evaluations: Int = 20, start: Double = 0, delta: Double = 10, ratio: Double = 0.8) {
        precondition(evaluations >= 1 && delta != 0 && ratio > 0.5 && ratio < 1, "invalid line search parameters")
        self.evaluations = evaluations
        self.start = start
        self.delta = delta
        self.ratio = ratio
    }

    /// The spec parameters, e.g. `evals=20,start=0,delta=10,ratio=0.8`.
    var specParameters: String {
        "evals=\(evaluations),start=\(SpecNumber.format(start)),delta="
            + "\(SpecNumber.format(delta)),ratio=\(SpecNumber.format(ratio))"
    }

    /// Every evaluated point in order; the best is the first point with the largest objective.
    public func maximize(_ objective: (Double) -> Double) -> (best: AttackSearchPoint, points: [AttackSearchPoint]) {
        var points: [AttackSearchPoint] = []
        func evaluate(_ tau: Double) -> AttackSearchPoint {
            let point = AttackSearchPoint(tau: tau, objective: objective(tau))
            points.append(point)
            return point
        }
        var best = evaluate(start)
        var step = delta
        var expanding = true
        while points.count < evaluations {
            let candidate = evaluate(best.tau + step)
            if candidate.objective > best.objective {
                best = candidate
                if expanding { step *= 2 } else { step *= ratio }
            } else {
                step *= ratio
                expanding = false
            }
        }
        return (best, points)
    }
}

/// The objective of the optimal attacks: g(v) = ‖F(honest ∪ f copies of v) − μ‖, F the server's
/// rule with the declared f, a fresh copy of its state and the round's random keys (the adversary
/// is omniscient, so it also knows the server's randomness). The inputs are the honest rows in the
/// engine's order followed by the f_actual copies.
struct SimulatedServer {
    private var inputs: Matrix
    private let context: AttackContext
    private let mean: [Float]

    init(_ context: AttackContext, mean: [Float]) {
        self.context = context
        self.mean = mean
        inputs = context.honest
        for _ in 0..<context.byzantineCount { inputs.appendRow(mean) }
    }

    /// g(v) for one candidate Byzantine message v.
    mutating func deviation(of message: [Float]) -> Double {
        for k in 0..<context.byzantineCount { inputs.setRow(context.honest.rows + k, message) }
        var state = context.aggregatorState
        let (aggregate, _) = context.aggregator.aggregate(
            AggregationContext(messages: inputs, f: context.declaredF, seed: context.seed, round: context.round,
                               classIndex: context.classIndex, backend: context.backend),
            state: &state)
        return aggregate.withVector { a in mean.withVector { VectorMath.distance(a, $0) } }
    }
}

/// An attack whose scale τ is chosen each round by ``LineMaximizer`` against the server's actual
/// rule: it supplies the family τ ↦ attack(τ), the search and the messages are common.
public protocol LineSearchedAttack: Attack {
    /// The catalogue name, e.g. `ipm-opt`.
    static var name: String { get }
    var search: LineMaximizer { get }
    /// The honest mean μ the objective measures against, and attack(τ).
    func family(_ honest: Matrix) -> (mean: [Float], message: (Double) -> [Float])
}

extension LineSearchedAttack {
    public var spec: String { Self.name + ":" + search.specParameters }
    public var simulatesAggregator: Bool { true }

    /// Runs the search and returns f_actual copies of the best message, with every evaluated point
    /// in the decision.
    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let (mean, message) = family(context.honest)
        var server = SimulatedServer(context, mean: mean)
        let (best, points) = search.maximize { server.deviation(of: message($0)) }
        var decision = AttackDecision()
        decision.scale = best.tau
        decision.objective = best.objective
        decision.search = points
        return AttackOutput(messages: Matrix(repeating: message(best.tau), count: context.byzantineCount),
                            decision: decision)
    }
}

/// Attack `ipm-opt`: IPM −τ·μ with τ chosen each round by ``LineMaximizer`` to maximise
/// ‖F(honest ∪ f copies) − μ‖ against the server's actual rule F (ByzFL `Optimal_IPM`, defaults
/// evals = 20, start = 0, delta = 10, ratio = 0.8; ByzFL's default simulated rule is
/// Average + Clipping, replaced here by the run's real rule, as ByzFL's benchmark does).
///
/// Peers' variant: the LPD toolbox's `empire` sends μ + factor·(−μ) with a 16-evaluation search.
public struct OptimalIPMAttack: LineSearchedAttack {
    public static let name = "ipm-opt"
    public var search: LineMaximizer

    public init(search: LineMaximizer = LineMaximizer()) {
        self.search = search
    }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        IPMAttack().requirement(honest: honest, byzantine: byzantine)
    }

    public func family(_ honest: Matrix) -> (mean: [Float], message: (Double) -> [Float]) {
        let mean = VectorMath.mean(of: honest)
        return (mean, { IPMAttack.message(mean: mean, epsilon: $0) })
    }
}

/// Attack `alie-opt`: ALIE μ − τ·σ (σ with ddof = 1) with τ chosen each round by
/// ``LineMaximizer`` against the server's actual rule (ByzFL `Optimal_ALIE`, same defaults as
/// ``OptimalIPMAttack``). Our sign is that of ``ALIEAttack`` (−); ByzFL searches μ + τ·σ.
///
/// Peers' variant: the LPD toolbox's `little` with a 16-evaluation search.
public struct OptimalALIEAttack: LineSearchedAttack {
    public static let name = "alie-opt"
    public var search: LineMaximizer

    public init(search: LineMaximizer = LineMaximizer()) {
        self.search = search
    }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        ALIEAttack().requirement(honest: honest, byzantine: byzantine)
    }

    public func family(_ honest: Matrix) -> (mean: [Float], message: (Double) -> [Float]) {
        let (mean, sigma) = ALIEAttack.statistics(of: honest)
        return (mean, { ALIEAttack.message(mean: mean, sigma: sigma, z: $0) })
    }
}
