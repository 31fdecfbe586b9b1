import DesgdNumerics

/// Centered clipping, CClip (Karimireddy, He, Jaggi, ICML 2021 "Learning from history for
/// Byzantine robust optimization", Algorithm 2).
///
///     v₀ = previous aggregate (0 at the start);  repeat L times:
///     v ← v + (1/n) Σᵢ (xᵢ − v) · min(1, τ/‖xᵢ − v‖)
///
/// - Defaults: τ = 10, L = 3 — the values of the heterogeneous-data follow-up (Karimireddy, He,
///   Jaggi, ICLR 2022; bucketing code `--clip-tau 10`, `n_iter=3`), which is the setting of
///   DeSGD. Peers: CClip code and ByzFL τ = 100, L = 1 (`cclip:tau=100,iters=1`); fedlib τ = 5,
///   L = 5. τ is absolute. The bucketing code divides its τ by (1−β) for its heavy-ball momentum
///   (`--clip-scaling linear`); desgd's EMA momentum is already on the gradient's scale, so its
///   τ = 10 applies unchanged.
/// - State: the centre v is `state.vectors["centre"]`; it starts at 0 (ByzFL, bucketing code,
///   fedlib) and holds the last output afterwards. A stored centre of another length or with
///   non-finite values is ignored (restart from 0).
/// - Requirement: n ≥ 2f+1 (the analysis assumes a small Byzantine fraction).
/// - Non-finite inputs: clipping factor 0 — they contribute nothing (but count in 1/n); the
///   output stays finite whatever the inputs.
/// - Ties: none.
/// - Bound: none of the simple λ form (centre-dependent; docs/references.md, robust aggregation §4.2).
/// - Decision: `clipFactors` of the last iteration, `iterations` = L, `values["tau"]`.
/// - Cost: O(L·n·d).
public struct CenteredClipping: Aggregator {
    public let tau: Double
    public let iterations: Int

    public static let centreKey = "centre"

    public init(tau: Double = 10, iterations: Int = 3) {
        self.tau = tau
        self.iterations = max(1, iterations)
    }

    public var spec: String {
        SpecText.spec("cclip", [("tau", SpecText.number(tau)), ("iters", String(iterations))])
    }

    public var isStateful: Bool { true }
    public func stateSchema(_ bounds: StateBounds) -> StateSchema { StateSchema(vectors: [CenteredClipping.centreKey]) }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("cclip", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n, d = context.d
        var centre = state.vectors[CenteredClipping.centreKey] ?? []
        if centre.count != d || !centre.withVector({ VectorMath.allFinite($0) }) {
            centre = [Float](repeating: 0, count: d)
        }
        var factors = [Double](repeating: 0, count: n)
        var difference = [Float](repeating: 0, count: d)
        var step = [Float](repeating: 0, count: d)
        let finite = (0..<n).map { i in context.messages.withRow(i) { VectorMath.allFinite($0) } }
        for _ in 0..<iterations {
            step.withUnsafeMutableBufferPointer { VectorMath.fill($0, with: 0) }
            for i in 0..<n {
                guard finite[i] else { factors[i] = 0; continue }
                let norm = difference.withUnsafeMutableBufferPointer { diff in
                    context.messages.withRow(i) { x in
                        centre.withVector { v in VectorMath.subtract(x, v, into: diff) } }
                    return VectorMath.norm(UnsafeBufferPointer(diff))
                }
                factors[i] = norm == 0 || norm <= tau ? 1 : (norm.isFinite ? tau / norm : 0)
                if factors[i] != 0 {
                    difference.withVector { diff in
                        step.withUnsafeMutableBufferPointer { VectorMath.axpy(Float(factors[i] / Double(n)), diff, $0) }
                    }
                }
            }
            step.withVector { s in centre.withUnsafeMutableBufferPointer { VectorMath.add(s, to: $0) } }
        }
        _ = output.update(fromContentsOf: centre)
        state.vectors[CenteredClipping.centreKey] = centre
        var decision = AggregationDecision()
        decision.clipFactors = factors
        decision.iterations = iterations
        decision.values = ["tau": tau]
        return decision
    }
}
