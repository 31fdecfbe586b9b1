import DesgdNumerics

/// Attack `fang-krum`: Fang et al.'s attack tailored to Krum ("Local Model Poisoning Attacks to
/// Byzantine-Robust Federated Learning", USENIX Security 2020, full knowledge;
/// docs/references.md, attacks and defences §2), translated from models to the momenta the server
/// receives (§2.2): the step is x ← x − η·v, so the direction the model would move without attack
/// is s = −sign(μ), μ the honest mean, and the crafted model w_Re − λ·s becomes the message
///
///     v = −λ·sign(μ)   (sign(0) = 0),
///
/// with the largest λ, halving from the paper's bound λ₀ (its Eq. 3, in vector space),
///
///     λ₀ = min_{i∈H} Σ_{l∈Γᵢ} ‖h_l − hᵢ‖ / ((m − 2c − 1)·√d)
///          + max_{i∈H} ‖hᵢ‖ / √d,
///
/// for which Krum picks one of the c copies; m = n_h + c senders, Γᵢ the m − c − 2 = n_h − 2
/// honest messages nearest hᵢ (distances not squared).
///
/// Choices:
/// - Full knowledge, honest messages only: H is the n_h honest messages and the direction is
///   their mean (the NDSS re-implementation; the paper takes the before-attack models of all m
///   workers, FLDetector the Krum output on them).
/// - The oracle is Krum as the paper defines it (q = n − f − 2 neighbours, squared distances),
///   told the true c, on the honest messages followed by the c copies (the engine's order): λ
///   succeeds when Krum's choice is a copy. The server's own rule and declared f do not enter:
///   the attack is tailored to Krum by definition and can be run against any rule (transfer).
///   Ties go to the first index, i.e. to an honest message (NDSS puts the copies first, so ties
///   there favour the attacker).
/// - λ halves from `start` (default the bound λ₀; FLDetector and FLPoison start at 1) while
///   λ ≥ `threshold` = 10⁻⁵ (the paper's and every implementation's); at most 200 probes. When no
///   λ succeeds the last λ probed is sent (≈ threshold: a message near 0, as in the NDSS code and
///   FLDetector; blades falls back to μ instead). A λ₀ that is not finite and positive (non-finite
///   honest messages) is replaced by `threshold`: one probe.
/// - The c copies are identical (NDSS, FLPoison); the paper and FLDetector place copies 2…c
///   within ε = 0.01 of the first, which only helps a Krum-type rule pick them less often.
///
/// Requirement: n_h ≥ c + 3 (Krum's n ≥ 2c + 3; then m − 2c − 1 ≥ 2 and Γᵢ is not empty).
/// Decision: `scale` = λ sent, `search` = every (λ, objective) probed with objective 1 when Krum
/// chose a copy and 0 when it chose an honest message, `values`: `lambda0` (the bound), `start`,
/// `succeeded` (1 or 0), `winner` (the row Krum chose at the λ sent).
public struct FangKrumAttack: Attack {
    /// Where the halving starts.
    public enum Start: Sendable, Equatable {
        /// The paper's bound λ₀.
        case bound
        /// A fixed λ > 0 (FLDetector, FLPoison: 1).
        case fixed(Double)
    }

    public var start: Start
    /// Halving stops below it (> 0).
    public var threshold: Double

    /// At most this many probes (λ₀/threshold ≤ 2²⁰⁰ never occurs with finite inputs of Float range).
    static let maximumProbes = 200

    public init(start: Start = .bound, threshold: Double = 1e-5) {
        precondition(threshold > 0, "threshold must be positive")
        self.start = start
        self.threshold = threshold
    }

    public var spec: String {
        let startText: String
        switch start {
        case .bound: startText = "bound"
        case .fixed(let value): startText = SpecNumber.format(value)
        }
        return "fang-krum:start=\(startText),threshold=\(SpecNumber.format(threshold))"
    }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        honest >= byzantine + 3 ? nil
            : "needs n_h ≥ c+3 honest messages (Krum's n ≥ 2c+3 with c Byzantine ones), got"
                + " n_h=\(honest), c=\(byzantine)"
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let honest = context.honest, m = honest.rows, c = context.byzantineCount
        let mean = context.honestMean()
        let lambda0 = Self.bound(honest, byzantine: c)
        var lambda: Double
        switch start {
        case .bound: lambda = lambda0.isFinite && lambda0 > 0 ? lambda0 : threshold
        case .fixed(let value): lambda = value
        }
        let sign: [Float] = mean.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
        func message(_ lambda: Double) -> [Float] {
            var v = sign
            v.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: Float(-lambda)) }
            return v
        }
        var inputs = honest
        for _ in 0..<c { inputs.appendRow(sign) }
        let krum = Krum()
        var points: [AttackSearchPoint] = []
        var winner = 0, succeeded = false
        repeat {
            let v = message(lambda)
            for k in 0..<c { inputs.setRow(m + k, v) }
            let decision = krum.aggregate(AggregationContext(messages: inputs, f: c, seed: context.seed,
                                                             round: context.round,
                                                             classIndex: context.classIndex, backend: context.backend))
                                                                 .1
            winner = decision.selected?.first ?? 0
            succeeded = winner >= m
            points.append(AttackSearchPoint(tau: lambda, objective: succeeded ? 1 : 0))
            if succeeded || lambda / 2 < threshold || points.count >= Self.maximumProbes { break }
            lambda /= 2
        } while true
        var decision = AttackDecision()
        decision.scale = lambda
        decision.search = points
        decision.values = ["lambda0": lambda0, "start": points[0].tau, "succeeded": succeeded ? 1 : 0,
            "winner": Double(winner)]
        return AttackOutput(messages: Matrix(repeating: message(lambda), count: c), decision: decision)
    }

    /// λ₀ of Fang et al.'s Eq. 3 in vector space (see the type's documentation), in Double.
    static func bound(_ honest: Matrix, byzantine c: Int) -> Double {
        let m = honest.rows, d = Double(honest.columns)
        let squared = VectorMath.pairwiseSquaredDistances(honest)
        let neighbours = m - 2
        var closest = Double.infinity
        for i in 0..<m {
            let distances = (0..<m).filter { $0 != i }.map { squared[i * m + $0].squareRoot() }.sorted()
            closest = Swift.min(closest, distances.prefix(neighbours).reduce(0, +))
        }
        let farthest = (0..<m).map { i in honest.withRow(i) { VectorMath.norm($0) } }.reduce(0) { Swift.max($0, $1) }
        return closest / (Double(m - c - 1) * d.squareRoot()) + farthest / d.squareRoot()
    }
}

/// Attack `fang-trmean`: Fang et al.'s attack tailored to the trimmed mean and the median (USENIX
/// Security 2020, full knowledge; the paper uses the same attack for both rules;
/// docs/references.md, attacks and defences §2). In vector space (x ← x − η·v), per coordinate j,
/// with μ the honest mean and h_min,j, h_max,j the smallest and largest honest values, each
/// Byzantine worker sends a value drawn uniformly from
///
///     μⱼ > 0 (push down, below every honest value):  [h_min/b, h_min] if h_min > 0, else [b·h_min, h_min]
///     μⱼ < 0 (push up, above every honest value):    [h_max, b·h_max] if h_max > 0, else [h_max, h_max/b]
///     μⱼ = 0: 0
///
/// Choices:
/// - b = 2 (the paper, the NDSS code, the FLTrust authors' code).
/// - Uniform over the interval, as the paper states: lo + U·(hi − lo), U the worker's 53-bit
///   uniform (``RandomStream/nextDouble()``), computed in Double and rounded to Float. The FLTrust
///   authors' code divides or multiplies the extreme by r ~ U[1, b] (same interval, not uniform);
///   FLDetector's `full_trim` takes the far end (r = b). The NDSS code masks both terms with μ > 0
///   (a copy-paste bug; docs/references.md, attacks and defences §2), not reproduced here.
/// - H = the honest messages (the direction from their mean); the paper's full knowledge also
///   counts the Byzantine workers' before-attack models.
/// - Each worker draws d uniforms from its own stream `RandomStream(seed, .attack, worker: id,
///   round, class)`, in coordinate order (one per coordinate, zero coordinates included), so the
///   workers' messages differ and do not depend on the thread count.
///
/// Decision: `scale` = b, `randomness` = each worker's stream and draws.
public struct FangTrimmedMeanAttack: Attack {
    /// b > 1.
    public var b: Double

    public init(b: Double = 2) {
        precondition(b > 1, "b must be > 1")
        self.b = b
    }

    public var spec: String { "fang-trmean:b=\(SpecNumber.format(b))" }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        honest >= 1 ? nil : "needs at least one honest message to take its extremes, got none"
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let honest = context.honest, d = context.dimension, workers = context.byzantineWorkers
        let mean = context.honestMean()
        // Per coordinate, the interval [lo, hi] the workers draw from (lo = hi = 0 where μⱼ = 0).
        var low = [Double](repeating: 0, count: d), high = [Double](repeating: 0, count: d)
        var extremeMin = honest.row(0), extremeMax = extremeMin
        for i in 1..<honest.rows {
            honest.withRow(i) { row in
                for j in 0..<d {
                    extremeMin[j] = Swift.min(extremeMin[j], row[j])
                    extremeMax[j] = Swift.max(extremeMax[j], row[j])
                }
            }
        }
        for j in 0..<d {
            if mean[j] > 0 {
                let x = Double(extremeMin[j])
                (low[j], high[j]) = x > 0 ? (x / b, x) : (b * x, x)
            } else if mean[j] < 0 {
                let x = Double(extremeMax[j])
                (low[j], high[j]) = x > 0 ? (x, b * x) : (x, x / b)
            }
        }
        var messages = Matrix(rows: context.byzantineCount, columns: d)
        var draws = [UInt64](repeating: 0, count: workers.count)
        messages.storage.withUnsafeMutableBufferPointer { rows in
            draws.withUnsafeMutableBufferPointer { counts in
                guard let rowBase = rows.baseAddress, let countBase = counts.baseAddress else { return }
                let out = SendablePointer(rowBase), used = SendablePointer(countBase)
                let (low, high) = (low, high)
                ParallelExecutor(threads: context.threads).forEach(workers.count) { row in
                    var stream = context.stream(worker: workers[row])
                    let target = out.base + row * d
                    for j in 0..<d { target[j] = Float(low[j] + stream.nextDouble() * (high[j] - low[j])) }
                    used.base[row] = stream.position
                }
            }
        }
        var decision = AttackDecision()
        decision.scale = b
        decision.randomness = zip(workers, draws).map { context.randomness(worker: $0, draws: $1) }
        return AttackOutput(messages: messages, decision: decision)
    }
}
