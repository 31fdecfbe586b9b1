import DesgdNumerics

/// Attack `gaussian`: each coordinate of each Byzantine message is drawn independently from
/// N(μ, σ²). Defaults μ = 0, σ = 2 (the paper's §IV-A (ii)).
///
/// Each Byzantine worker draws from its own stream
/// `RandomStream(seed, .attack, worker: id, round, class)`, filled by
/// ``RandomStream/fillGaussian(_:mean:sigma:)`` (coordinates 2k and 2k+1 from the k-th Box–Muller
/// pair, four 32-bit draws per pair), computed in Double and rounded to Float as μ + σ·g. So a worker's noise
/// depends only on its key: adding a Byzantine worker or replaying one round changes nobody else's draws.
/// The workers do not collude: rows differ.
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
        let d = context.dimension, workers = context.byzantineWorkers
        var messages = Matrix(rows: context.byzantineCount, columns: d)
        var draws = [UInt64](repeating: 0, count: workers.count)
        let (mu, sigma) = (mu, sigma)
        // One piece per worker: each fills its own row from its own stream, so the bits do not
        // depend on the thread count.
        messages.storage.withUnsafeMutableBufferPointer { rows in
            draws.withUnsafeMutableBufferPointer { counts in
                guard let rowBase = rows.baseAddress, let countBase = counts.baseAddress else { return }
                let out = SendablePointer(rowBase), used = SendablePointer(countBase)
                ParallelExecutor(threads: context.threads).forEach(workers.count) { row in
                    var stream = context.stream(worker: workers[row])
                    stream.fillGaussian(UnsafeMutableBufferPointer(start: out.base + row * d, count: d), mean: mu,
                        sigma: sigma)
                    used.base[row] = stream.position
                }
            }
        }
        var decision = AttackDecision()
        decision.scale = sigma
        decision.randomness = zip(workers, draws).map { context.randomness(worker: $0, draws: $1) }
        return AttackOutput(messages: messages, decision: decision)
    }
}
