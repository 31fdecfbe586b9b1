import DesgdNumerics

/// Minimum-diameter averaging, MDA (El Mhamdi, Guerraoui, Guirguis, Hoang, Rouault, PODC 2020;
/// Farhadkhani et al., ICML 2022; ByzFL `MDA(f)`).
///
///     T* = argmin_{|T| = n−f} max_{i,j ∈ T} ‖xᵢ − xⱼ‖,   y = (1/(n−f)) Σ_{i ∈ T*} xᵢ
///
/// - Defaults: subsets of size n−f (ByzFL); exact search.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: distance +∞ to everything, so any subset containing one has infinite
///   diameter and loses to every finite subset (the LPD `brute` rule skips such subsets); with at
///   most f non-finite inputs the output is finite.
/// - Ties: the lexicographically first subset (ByzFL keeps the first strict improvement of
///   `itertools.combinations`, which is the same).
/// - Bound: λ = 2f/(n−f) (docs/references.md, robust aggregation §4.2; Farhadkhani et al. 2022).
/// - Decision: `weights` 1/(n−f) on T*, `selected` = T* ascending, `values` (`diameter`,
///   `subsetsEvaluated`).
/// - Cost: one Gram product, then a branch-and-bound search over subsets (``SubsetSearch``):
///   C(n, f) subsets in the worst case, far fewer in practice.
public struct MDA: Aggregator {
    public init() {}

    public var spec: String { "mda" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("mda", n: n, f: f, honestMajority: true)
    }

    public func resilienceBound(n: Int, f: Int) -> Double? {
        f >= 0 && n >= 2 * f + 1 ? 2 * Double(f) / Double(n - f) : nil
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let distances = Distances(context)
        let size = max(1, context.n - max(0, context.f))
        guard context.n > 0 else { VectorMath.fill(output, with: 0); return AggregationDecision() }
        let best = SubsetSearch.minimise(distances, size: size, boundScale: 1,
                                         seeds: SubsetSearch.neighbourhoodSeeds(distances, size: size)) {
            distances.squaredDiameter($0)
        }
        return averageSubset(best, context, into: output) { ["diameter": $0.squareRoot()] }
    }
}

/// Smallest maximum eigenvalue averaging, SMEA (ByzFL/byzpy `SMEA(f)`; to our recollection
/// introduced by Allouah, Guerraoui, Gupta, Pinot, Stephan, ICML 2023, "On the privacy-robustness-
/// utility trilemma in distributed learning" — unverified).
///
///     T* = argmin_{|T| = n−f} λ_max( (1/|T|) Σ_{i∈T} (xᵢ − x̄_T)(xᵢ − x̄_T)ᵀ ),   y = x̄_{T*}
///
/// - Defaults: subsets of size n−f. The top eigenvalue is computed exactly from the |T|×|T|
///   centred Gram matrix (its nonzero spectrum is the covariance's, as in byzpy) by Jacobi
///   (``SymmetricEigen``) — no random power-iteration start (ByzFL draws one from the global RNG),
///   so nothing needs seeding.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: a subset containing one has eigenvalue +∞ and loses to every finite
///   subset.
/// - Ties: the lexicographically first subset.
/// - Bound: none listed in docs/references.md, robust aggregation §4.2.
/// - Decision: `weights` 1/(n−f) on T*, `selected` = T* ascending, `values` (`eigenvalue`,
///   `subsetsEvaluated`).
/// - Cost: one Gram product, then branch and bound over subsets with the bound
///   λ_max(T) ≥ max_{i,j∈T} ‖xᵢ − xⱼ‖² / (2|T|) (the scatter matrix only grows with the subset
///   and two points alone give ½‖xᵢ − xⱼ‖²); O(|T|³) per evaluated subset.
public struct SMEA: Aggregator {
    public init() {}

    public var spec: String { "smea" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("smea", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n
        let distances = Distances(context)
        let size = max(1, n - max(0, context.f))
        guard n > 0 else { VectorMath.fill(output, with: 0); return AggregationDecision() }
        let best = SubsetSearch.minimise(distances, size: size, boundScale: 0.5 / Double(size),
                                         seeds: SubsetSearch.neighbourhoodSeeds(distances, size: size)) { subset in
            guard subset.allSatisfy({ distances.finite[$0] }) else { return .infinity }
            let gram = distances.centredGram(subset, weights: uniformWeights(n: n, on: subset))
            return max(0, SymmetricEigen(gram, n: subset.count).values[0]) / Double(subset.count)
        }
        return averageSubset(best, context, into: output) { ["eigenvalue": $0] }
    }
}

/// Writes the mean of the found subset and its decision (shared by MDA and SMEA).
private func averageSubset(_ best: SubsetSearch.Result, _ context: AggregationContext,
                           into output: UnsafeMutableBufferPointer<Float>,
                           describe: (Double) -> [String: Double]) -> AggregationDecision {
    VectorMath.mean(of: context.messages, rows: best.subset, into: output)
    var decision = AggregationDecision()
    decision.weights = uniformWeights(n: context.n, on: best.subset)
    decision.selected = best.subset
    decision.values = describe(best.value).merging(["subsetsEvaluated": Double(best.evaluated)]) { a, _ in a }
    return decision
}
