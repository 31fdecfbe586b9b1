import DesgdNumerics

/// Attack `gaussian`: each coordinate of each Byzantine message is drawn independently from
/// N(μ, σ²). Defaults μ = 0, σ = 2 (the paper's §IV-A (ii)).
///
/// Each Byzantine worker draws from its own stream
/// `RandomStream(seed, .attack, worker: id, round, class)`, coordinate j being its j-th
/// ``RandomStream/nextGaussian()`` (four 32-bit draws each), computed in Double and rounded to
/// Float as μ + σ·g. So a worker's noise depends only on its key: adding a Byzantine worker or
/// replaying one round changes nobody else's draws. The workers do not collude: rows differ.
///
/// Peers' variants: ByzFL `Gaussian` N(0, 1); Blades `Noise` N(0.1, 0.1).
public struct GaussianAttack: Attack {
    public var mu: Double
    /// σ ≥ 0.
    public var sigma: Double

    public init(mu: Double = 0, sigma: Double = 2) {
        self.mu = mu
        self.sigma = sigma
    }

    public var spec: String { "gaussian:mu=\(SpecNumber.format(mu)),sigma=\(SpecNumber.format(sigma))" }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let d = context.dimension
        var messages = Matrix(rows: context.byzantineCount, columns: d)
        var decision = AttackDecision()
        decision.scale = sigma
        decision.randomness = []
        for (row, worker) in context.byzantineWorkers.enumerated() {
            var stream = context.stream(worker: worker)
            messages.withMutableRow(row) { out in
                for j in 0..<d { out[j] = Float(mu + sigma * stream.nextGaussian()) }
            }
            decision.randomness?.append(context.randomness(stream, worker: worker))
        }
        return AttackOutput(messages: messages, decision: decision)
    }
}
