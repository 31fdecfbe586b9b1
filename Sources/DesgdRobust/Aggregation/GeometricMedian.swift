import DesgdNumerics

/// Geometric median by the smoothed Weiszfeld algorithm (RFA; Pillutla, Kakade, Harchaoui 2022;
/// Weiszfeld 1937).
///
///     y ≈ argmin_z Σᵢ αᵢ ‖z − xᵢ‖,
///     iterate  βᵢ = αᵢ / max(ν, ‖z − xᵢ‖),  z ← Σ βᵢ xᵢ / Σ βᵢ
///
/// with αᵢ = 1/(number of finite inputs).
///
/// - Defaults: iterate to convergence — start z₀ = mean (fedlib), ν = 1e-6 (RFA), stop when a
///   step moves z by at most `tol` = 1e-6 times the mean distance Σαᵢ‖z − xᵢ‖ (a relative
///   tolerance in the problem's own scale), at most `iters` = 1000 iterations.
///   ByzFL's `GeometricMedian()` (z₀ = 0, ν = 0.1, T = 3 fixed iterations) is
///   `geomed:nu=0.1,iters=3,tol=0,start=zero`; the bucketing code uses T = 8, the CClip code T = 3.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: dropped before iterating (ByzFL drops rows containing ±∞; NaN rows are
///   dropped too), i.e. they get weight 0. The output is finite whenever one input is.
/// - Ties: none (the iteration is a fixed formula).
/// - Bound: λ = 2(n−f)/(n−2f) for the exact minimiser (docs/references.md, robust aggregation §4.2) —
///   reported only when the rule is configured to converge (`tol` > 0 and `iters` ≥ 100); it holds up
///   to the smoothing
///   ν (absolute), i.e. when ν ≪ Δ_S, and `values["converged"]` says whether the tolerance was met.
///   ByzFL's 3-step variant has no guaranteed bound.
/// - Decision: `weights` = the final Weiszfeld weights βᵢ/Σβ (the output is exactly Σ wᵢxᵢ),
///   `iterations`, `values` (`converged` 0/1, `objective` = Σαᵢ‖z − xᵢ‖ before the last step).
/// - Cost: one Gram product, then O(n²) per iteration: z is kept as convex weights w over the
///   inputs and ‖z − xᵢ‖² = Σⱼ wⱼDᵢⱼ − ½ Σⱼₖ wⱼwₖDⱼₖ needs only the pairwise
///   distances D; the d-dimensional output is formed once at the end.
public struct GeometricMedian: Aggregator {
    public enum Start: String, Sendable, CaseIterable {
        /// z₀ = mean of the finite inputs (fedlib).
        case mean
        /// z₀ = 0 (ByzFL, RFA code).
        case zero
    }

    public let nu: Double
    public let maxIterations: Int
    public let tolerance: Double
    public let start: Start

    public init(nu: Double = 1e-6, maxIterations: Int = 1000, tolerance: Double = 1e-6, start: Start = .mean) {
        self.nu = nu
        self.maxIterations = max(1, maxIterations)
        self.tolerance = tolerance
        self.start = start
    }

    public var spec: String {
        SpecText.spec("geomed", [("nu", SpecText.number(nu)), ("iters", String(maxIterations)),
                                 ("tol", SpecText.number(tolerance)), ("start", start.rawValue)])
    }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("geomed", n: n, f: f, honestMajority: true)
    }

    /// Whether the configuration iterates to convergence (the bound is for the exact minimiser).
    public var iteratesToConvergence: Bool { tolerance > 0 && maxIterations >= 100 }

    public func resilienceBound(n: Int, f: Int) -> Double? {
        guard iteratesToConvergence, f >= 0, n > 2 * f else { return nil }
        return 2 * Double(n - f) / Double(n - 2 * f)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        let n = context.n
        let distances = Distances(context)
        let rows = distances.finiteRows
        guard !rows.isEmpty else {
            VectorMath.weightedMean(of: context.messages, into: output)
            decision.iterations = 0
            return decision
        }
        let alpha = 1 / Double(rows.count)

        // One Weiszfeld step from the distances ‖z − xᵢ‖ of the finite rows.
        func step(_ dist: [Double]) -> [Double] {
            var beta = [Double](repeating: 0, count: n)
            var total = 0.0
            for i in rows {
                beta[i] = alpha / max(nu, dist[i])
                total += beta[i]
            }
            return beta.map { $0 / total }
        }

        var weights: [Double]
        var iterations = 0
        var objective = 0.0
        switch start {
        case .mean:
            weights = uniformWeights(n: n, on: rows)
        case .zero:
            let norms = (0..<n).map { i in context.messages.withRow(i) { VectorMath.norm($0) } }
            objective = rows.reduce(0) { $0 + alpha * norms[$1] }
            weights = step(norms)
            iterations = 1
        }
        var converged = false
        while iterations < maxIterations {
            let dist = distances.squaredDistancesToCombination(weights).map { $0.squareRoot() }
            objective = rows.reduce(0) { $0 + alpha * dist[$1] }
            let next = step(dist)
            iterations += 1
            // ‖z_next − z‖² = −½ δᵀDδ for δ = w_next − w (Σδ = 0): the step length, from D alone.
            let delta = zip(next, weights).map { $0 - $1 }
            let (dDelta, _) = distances.combinationTerms(delta)
            var stepSquared = 0.0
            for i in rows where delta[i] != 0 { stepSquared -= 0.5 * delta[i] * dDelta[i] }
            weights = next
            if tolerance > 0 && max(0, stepSquared).squareRoot() <= tolerance * objective {
                converged = true
                break
            }
        }
        VectorMath.weightedMean(of: context.messages, weights: weights, into: output)
        decision.weights = weights
        decision.iterations = iterations
        decision.values = ["converged": converged ? 1 : 0, "objective": objective]
        return decision
    }
}
