import DesgdNumerics

/// FLTrust (Cao, Fang, Liu, Gong, "FLTrust: Byzantine-robust Federated Learning via Trust
/// Bootstrapping", NDSS 2021; docs/references.md, attacks and defences §4).
///
///     TSᵢ = max(0, cos(xᵢ, g₀)),   y = Σᵢ TSᵢ · (‖g₀‖/‖xᵢ‖) · xᵢ / Σⱼ TSⱼ
///
/// g₀ is the server's reference: the server holds a small clean root data set, drawn once from
/// the training set, and updates its own momentum on it every round exactly as an honest worker
/// does on its data (docs/references.md, attacks and defences §4, reading (a), blades' behaviour:
/// cosines compare like with like, and the step length, which FLTrust sets to ‖g₀‖, matches the honest
/// momenta's).
/// The simulation engine computes that momentum and hands it to the rule in the carried state, under
/// ``referenceKey``; so the trace records it (`stateBefore`) and replay and `--verify` see exactly
/// the rule's input.
///
/// - Defaults: a root set of 100 samples (the paper, the authors' code, FLPoison), drawn uniformly
///   without replacement from the whole training set by its own stream
///   (`RandomStream(seed, .rootData)`) — the paper's root set follows the training distribution
///   (the authors' `p = 0.1` with 10 classes; FLPoison stratifies by class). Mini-batches of the
///   workers' batch size, drawn from the root samples (of the class aggregated, in DeSGD) like an
///   honest worker's (the paper's ModelUpdate with batch b; the authors' code takes all 100 at once).
/// - Choices: no ε in the cosine or the rescaling (a zero input or reference has trust 0); when
///   every trust score is 0 (e.g. g₀ = 0, or no reference in the state) the output is the zero
///   vector, as in the authors' code (FLPoison falls back to the mean, which gives the Byzantine
///   inputs weight; blades divides by zero).
/// - Requirement: n ≥ 1, f ≥ 0 — FLTrust does not rely on an honest majority (f is not used).
/// - Non-finite inputs: trust 0, never used; a non-finite or mis-sized reference counts as absent.
///   The output is always finite when the reference is.
/// - Ties: none.
/// - Bound: none of the simple λ form (it depends on the reference, not on the honest inputs).
/// - Decision: `scores` = TSᵢ, `weights` = TSᵢ/ΣTS (each rescaled input's share of the average;
///   all 0 when ΣTS = 0), `values`: `referenceNorm` ‖g₀‖, `trustSum` ΣTS.
/// - Replay: only on a trace recorded under the same FLTrust, from the recorded states
///   (``engineInput``). A trace of another rule holds no reference (every trust score would be 0
///   and the output 0), so a replay refuses it; `desgd-record --fork TRACE --at T --agg fltrust`
///   is the counterfactual (the engine computes the server's momentum from round T on).
/// - Cost: O(n·d).
public struct FLTrust: Aggregator {
    /// Root set size, 1…100 000.
    public let rootSize: Int

    /// The key of the server's reference momentum g₀ in the carried state.
    public static let referenceKey = "reference"

    public init(rootSize: Int = 100) {
        self.rootSize = rootSize
    }

    public var spec: String { SpecText.spec("fltrust", [("root", String(rootSize))]) }

    /// The state holds the server's momentum from round to round (the engine updates it).
    public var isStateful: Bool { true }
    public func stateSchema(_ bounds: StateBounds) -> StateSchema { StateSchema(vectors: [FLTrust.referenceKey]) }

    public var engineInput: String? {
        "the server's momentum on its root data, which only a trace recorded under \(spec) holds"
    }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("fltrust", n: n, f: f, honestMajority: false)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n, d = context.d
        var decision = AggregationDecision()
        var reference = state.vectors[FLTrust.referenceKey] ?? []
        if reference.count != d || !reference.withVector({ VectorMath.allFinite($0) }) { reference = [] }
        let referenceNorm = reference.isEmpty ? 0 : reference.withVector { VectorMath.norm($0) }
        let norms = RowNorms(context.messages)
        let trust = (0..<n).map { i -> Double in
            guard referenceNorm > 0, norms.finite[i], norms.values[i] > 0, norms.values[i].isFinite else { return 0 }
            let dot = context.messages.withRow(i) { x in reference.withVector { VectorMath.dot(x, $0) } }
            let cosine = dot / (norms.values[i] * referenceNorm)
            return cosine.isFinite ? max(0, cosine) : 0
        }
        let total = trust.reduce(0, +)
        let weights = trust.map { total > 0 ? $0 / total : 0 }
        let coefficients = (0..<n).map { i in weights[i] == 0 ? 0 : weights[i] * referenceNorm / norms.values[i] }
        VectorMath.combination(of: context.messages, coefficients: coefficients, into: output)
        decision.scores = trust
        decision.weights = weights
        decision.values = ["referenceNorm": referenceNorm, "trustSum": total]
        return decision
    }
}
