import DesgdNumerics

/// Attacks `minmax` and `minsum`, the AGR-agnostic attacks of Shejwalkar & Houmansadr
/// ("Manipulating the Byzantine: Optimizing Model Poisoning Attacks and Defenses for Federated
/// Learning", NDSS 2021; docs/references.md, attacks and defences §1). Every Byzantine worker sends
///
///     v(γ) = μ − γ·u,   μ the honest mean, u the deviation (``Deviation``),
///
/// with the largest γ the search finds for which v stays as close to the honest messages hᵢ as
/// they are to each other:
///
/// - Min-Max: max_i ‖v − hᵢ‖² ≤ max_{i,j} ‖hᵢ − hⱼ‖² (the farthest honest message is no farther
///   than the honest diameter);
/// - Min-Sum: Σ_i ‖v − hᵢ‖² ≤ min_i Σ_j ‖hᵢ − hⱼ‖² (``SumBound/min``, the NDSS code) or max_i
///   (``SumBound/max``: the paper as recalled, FLPoison, the SignGuard authors).
///
/// Choices (docs/references.md, attacks and defences §1; each a disagreement between
/// implementations):
/// - The reference set is the honest messages only (NDSS full-knowledge notebooks, FLPoison,
///   blades); the other Byzantine messages never enter the constraint. The aggregation rule is
///   never called (AGR-agnostic).
/// - Default u = σ, the coordinate-wise standard deviation with ddof = 1 (`torch.std`, the NDSS
///   CIFAR-10 notebooks); `ddof=0` is numpy's (FLPoison). `dev=sign` is sign(μ) (NDSS FEMNIST),
///   `dev=unit` is μ/‖μ‖ (FLPoison's default); with μ = 0 (or a non-finite ‖μ‖) the unit vector
///   is taken as 0, so every γ sends μ.
/// - The γ search is the NDSS code's (FLPoison identical; ``MinMaxSearch``): γ_init = 10 and
///   τ = 10⁻⁵ (NDSS CIFAR-10, FLPoison). It cannot return more than 2·γ_init (a geometric
///   series), and with nothing feasible it returns γ = 0, i.e. μ. Squared distances are compared
///   with `≤`, so a tie is feasible (blades uses `<`).
/// - All f workers send the same vector (the papers and every implementation).
///
/// Decision: `scale` = the γ sent, `search` = every probe (τ = γ, objective = the left-hand side
/// of the constraint at γ), `objective` = the left-hand side at the γ sent, `values["bound"]` =
/// the right-hand side.
public struct MinMaxAttack: Attack {
    /// The deviation u of v(γ) = μ − γ·u.
    public enum Deviation: Sendable, Equatable {
        /// σ, the coordinate-wise standard deviation of the honest messages with this ddof (0 or 1).
        case std(ddof: Int)
        /// sign(μ) (sign(0) = 0).
        case sign
        /// μ/‖μ‖ (0 when ‖μ‖ is 0 or not finite).
        case unit
    }

    /// Which aggregate of the honest sums of squared distances bounds Min-Sum.
    public enum SumBound: String, Sendable, Equatable, CaseIterable {
        case min, max
    }

    /// Min-Max, or Min-Sum with its bound.
    public enum Criterion: Sendable, Equatable {
        case maxDistance
        case sumOfSquares(SumBound)
    }

    public var criterion: Criterion
    public var deviation: Deviation
    public var search: MinMaxSearch

    public init(criterion: Criterion = .maxDistance, deviation: Deviation = .std(ddof: 1),
        search: MinMaxSearch = MinMaxSearch()) {
        self.criterion = criterion
        self.deviation = deviation
        self.search = search
    }

    public var spec: String {
        var parts: [String] = []
        switch deviation {
        case .std(let ddof): parts += ["dev=std", "ddof=\(ddof)"]
        case .sign: parts.append("dev=sign")
        case .unit: parts.append("dev=unit")
        }
        if case .sumOfSquares(let bound) = criterion { parts.append("bound=\(bound.rawValue)") }
        parts += ["gamma=\(SpecNumber.format(search.initial))", "tol=\(SpecNumber.format(search.tolerance))"]
        return (criterion == .maxDistance ? "minmax:" : "minsum:") + parts.joined(separator: ",")
    }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        if case .std(let ddof) = deviation, honest <= ddof {
            return "needs at least \(ddof + 1) honest message\(ddof == 0 ? "" : "s") for a standard deviation"
                + " with ddof=\(ddof), got \(honest)"
        }
        return honest >= 1 ? nil : "needs at least one honest message to take its mean, got none"
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let honest = context.honest, m = honest.rows
        let mean = context.honestMean()
        let u = direction(honest, mean: mean)
        let pairwise = VectorMath.pairwiseSquaredDistances(honest)
        let bound: Double
        switch criterion {
        case .maxDistance:
            bound = pairwise.max() ?? 0
        case .sumOfSquares(let which):
            let sums = (0..<m).map { i in (0..<m).reduce(0.0) { $0 + pairwise[i * m + $1] } }
            bound = (which == .min ? sums.min() : sums.max()) ?? 0
        }
        // The left-hand side of the constraint at γ.
        func spread(_ gamma: Double) -> Double {
            let v = ALIEAttack.message(mean: mean, sigma: u, z: gamma)
            let distances = v.withVector { v in
                (0..<m).map { i in honest.withRow(i) { VectorMath.squaredDistance(v, $0) } } }
            switch criterion {
            case .maxDistance: return distances.reduce(-Double.infinity) {
                $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1)
            }
            case .sumOfSquares: return distances.reduce(0, +)
            }
        }
        let (gamma, points) = search.run(spread, bound: bound)
        var decision = AttackDecision()
        decision.scale = gamma
        decision.search = points
        decision.objective = points.last { $0.tau == gamma }?.objective ?? spread(gamma)
        decision.values = ["bound": bound]
        return AttackOutput(messages: Matrix(repeating: ALIEAttack.message(mean: mean, sigma: u, z: gamma),
            count: context.byzantineCount),
                            decision: decision)
    }

    /// u for the honest rows with mean μ.
    func direction(_ honest: Matrix, mean: [Float]) -> [Float] {
        switch deviation {
        case .std(let ddof):
            var sigma = [Float](repeating: 0, count: honest.columns)
            mean.withVector { mu in
                sigma.withUnsafeMutableBufferPointer {
                    VectorMath.standardDeviation(of: honest, mean: mu, ddof: ddof, into: $0)
                }
            }
            return sigma
        case .sign:
            return mean.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        case .unit:
            let norm = mean.withVector { VectorMath.norm($0) }
            guard norm > 0, norm.isFinite else { return [Float](repeating: 0, count: mean.count) }
            var unit = mean
            unit.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: Float(1 / norm)) }
            return unit
        }
    }
}

/// The γ search of Shejwalkar & Houmansadr's code (NDSS 2021 notebooks; FLPoison
/// `attackers/min.py` identical; docs/references.md, attacks and defences §1.2):
///
///     γ ← γ_init, s ← γ_init, γ_succ ← 0
///     while |γ_succ − γ| > τ:  if feasible(γ) { γ_succ ← γ; γ ← γ + s/2 } else { γ ← γ − s/2 };
///         s ← s/2
///     return γ_succ
///
/// The first move is ±γ_init/2 and the steps halve, so γ never exceeds 2·γ_init; about
/// log₂(γ_init/τ) probes (20 for the defaults); γ_succ = 0 when no probe is feasible. When the
/// feasible γ form an interval [0, γ*] (always so for Min-Max and Min-Sum, docs/references.md,
/// attacks and defences §1.5) with γ* < 2·γ_init, the result is within 2τ of γ*, from below (the
/// loop stops once its next move is at most τ). A NaN feasibility test is infeasible.
public struct MinMaxSearch: Sendable, Equatable {
    /// γ_init > 0 (NDSS CIFAR-10 and FLPoison: 10; NDSS FEMNIST: 50).
    public var initial: Double
    /// τ > 0 (10⁻⁵ everywhere).
    public var tolerance: Double

    /// At most this many probes, whatever γ_init/τ (the parameters' ranges keep the loop far below).
    static let maximumProbes = 200

    public init(initial: Double = 10, tolerance: Double = 1e-5) {
        precondition(initial > 0 && tolerance > 0, "invalid γ search parameters")
        self.initial = initial
        self.tolerance = tolerance
    }

    /// γ_succ and every probe (γ, spread(γ)) in order; γ is feasible when spread(γ) ≤ `bound`.
    func run(_ spread: (Double) -> Double, bound: Double) -> (gamma: Double, points: [AttackSearchPoint]) {
        var gamma = initial, step = initial, success = 0.0
        var points: [AttackSearchPoint] = []
        while abs(success - gamma) > tolerance && points.count < Self.maximumProbes {
            let point = AttackSearchPoint(tau: gamma, objective: spread(gamma))
            points.append(point)
            if point.objective <= bound {
                success = gamma
                gamma += step / 2
            } else {
                gamma -= step / 2
            }
            step /= 2
        }
        return (success, points)
    }
}
