import DesgdNumerics

/// Attack `mimic`: every Byzantine worker sends a copy of honest message number `target`
/// (default 0). Under label skew one worker's momentum is a legitimate but atypical message;
/// f + 1 copies of it make a robust rule over-weight that worker's classes
/// (Karimireddy, He, Jaggi, ICLR 2022; the paper's §IV-A (vi)).
///
/// Peers: ByzFL `Mimic` copies vector `epsilon` (default 0); the LPD toolbox's `mimic` copies
/// worker 0. The heuristic choice of the target is ``MimicHeuristicAttack``.
public struct MimicAttack: Attack {
    /// Index into the honest rows of the round.
    public var target: Int

    public init(target: Int = 0) {
        self.target = target
    }

    public var spec: String { "mimic:target=\(target)" }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        target < honest ? nil : "target=\(target) but there are only \(honest) honest messages"
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        var decision = AttackDecision()
        decision.target = target
        return AttackOutput(messages: Matrix(repeating: context.honest.row(target), count: context.byzantineCount),
                            decision: decision)
    }
}

/// Attack `mimic:mode=heuristic`: mimic with the target chosen as the honest worker furthest along
/// the direction of largest honest spread (Karimireddy et al., ICLR 2022, Appendix; their code's
/// `MimicVariantAttacker`, warmup `--mimic-warmup` default 1).
///
/// With t the number of rounds this state has seen (per class in DeSGD), μ̂ a running mean and z a
/// unit direction:
/// - t = 0: μ̂ ← mean of the honest messages; z₀ ~ N(0, I) drawn from
///   `RandomStream(seed, .attack, worker: AttackContext.colludingWorker, round, class)`
///   (the paper's code uses a torch generator with seed 0; ours is keyed so replay needs nothing
///   else); z ← normalise(Σᵢ ⟨hᵢ − μ̂, z₀⟩ (hᵢ − μ̂)): one power-iteration step on the honest
///   scatter matrix.
/// - 0 < t < warmup: μ̂ ← t/(t+1)·μ̂ + 1/(t+1)·mean; z ← normalise(t/(t+1)·z + 1/(t+1)·u) with u
///   the normalised power step from the current z.
/// - t < warmup: target ← argmax_i ⟨hᵢ, z⟩ (first index on ties), recorded in the decision
///   with every score.
/// - t ≥ warmup: copy the fixed target.
/// If the honest messages have no spread along z (power step 0, e.g. a single honest worker), z is
/// kept as it was (z₀ normalised at t = 0).
///
/// State: vectors `mu`, `z`; scalars `t`, `target`. Needs n_h ≥ 1; the honest order must be stable
/// across rounds of a class, since the target is an index.
/// Peers' variant: the LPD toolbox's `mimic_heuristic` starts z uniform in [0, 1)ᵈ, weights by
/// |⟨hᵢ − μ̂, z⟩|, copies worker 0 while learning and then argmax |⟨hᵢ, z⟩|.
public struct MimicHeuristicAttack: Attack {
    /// Number of rounds during which the direction is learned and the target re-chosen (≥ 1).
    public var warmup: Int

    public init(warmup: Int = 1) {
        precondition(warmup >= 1, "mimic heuristic warmup must be at least 1")
        self.warmup = warmup
    }

    public var spec: String { "mimic:mode=heuristic,warmup=\(warmup)" }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        honest >= 1 ? nil : "needs at least one honest message to copy, got none"
    }

    /// `mu` and `z`, `t` (the rounds seen, at most the run's) and `target` (an honest row).
    public func stateSchema(_ bounds: StateBounds) -> StateSchema {
        StateSchema(vectors: ["mu", "z"],
                    scalars: [.init("t", 0...Double(max(0, bounds.rounds)), integer: true),
                              .init("target", 0...Double(max(0, bounds.honest - 1)), integer: true)])
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let honest = context.honest
        let t = Int(state.scalars["t"] ?? 0)
        var decision = AttackDecision()
        decision.values = ["t": Double(t), "warmup": Double(warmup)]

        if t < warmup {
            let mean = context.honestMean()
            let weight = 1.0 / Double(t + 1)
            var mu: [Float], z: [Float]
            if t == 0 {
                mu = mean
                var stream = context.stream(worker: AttackContext.colludingWorker)
                z = (0..<honest.columns).map { _ in Float(stream.nextGaussian()) }
                decision.randomness = [context.randomness(worker: AttackContext.colludingWorker,
                    draws: stream.position)]
                Self.normalise(&z)
                if let step = Self.powerStep(honest, centre: mu, direction: z) { z = step }
            } else {
                guard let oldMu = state.vectors["mu"], let oldZ = state.vectors["z"], oldMu.count == honest.columns
                else { preconditionFailure("mimic heuristic state lost mu or z at t=\(t)") }
                mu = oldMu
                mean.withVector { m in mu.withUnsafeMutableBufferPointer {
                    VectorMath.axpby(Float(weight), m, Float(Double(t) * weight), $0)
                } }
                z = oldZ
                if let step = Self.powerStep(honest, centre: mu, direction: oldZ) {
                    step.withVector { u in z.withUnsafeMutableBufferPointer {
                        VectorMath.axpby(Float(weight), u, Float(Double(t) * weight), $0)
                    } }
                    Self.normalise(&z)
                }
            }
            let scores = (0..<honest.rows).map { i in
                z.withVector { zv in honest.withRow(i) { VectorMath.dot($0, zv) } } }
            var best = 0
            for i in scores.indices where scores[i] > scores[best] { best = i }
            decision.scores = scores
            state.vectors["mu"] = mu
            state.vectors["z"] = z
            state.scalars["target"] = Double(best)
        }
        state.scalars["t"] = Double(t + 1)

        guard let target = state.scalars["target"].map({ Int($0) }), target < honest.rows else {
            preconditionFailure("mimic heuristic target missing or beyond the \(honest.rows) honest messages")
        }
        decision.target = target
        return AttackOutput(messages: Matrix(repeating: honest.row(target), count: context.byzantineCount),
                            decision: decision)
    }

    /// normalise(Σᵢ ⟨hᵢ − c, z⟩ (hᵢ − c)), or `nil` when that sum is 0 or not finite.
    static func powerStep(_ honest: Matrix, centre: [Float], direction z: [Float]) -> [Float]? {
        let d = honest.columns
        var sum = [Float](repeating: 0, count: d)
        var deviation = [Float](repeating: 0, count: d)
        centre.withVector { c in z.withVector { zv in
            deviation.withUnsafeMutableBufferPointer { dev in
                sum.withUnsafeMutableBufferPointer { acc in
                    for i in 0..<honest.rows {
                        honest.withRow(i) { VectorMath.subtract($0, c, into: dev) }
                        VectorMath.axpy(Float(VectorMath.dot(UnsafeBufferPointer(dev), zv)), UnsafeBufferPointer(dev),
                            acc)
                    }
                }
            }
        } }
        return normalise(&sum) ? sum : nil
    }

    /// Scales `v` to unit norm; returns false (leaving `v` unchanged) when its norm is 0 or not finite.
    @discardableResult
    static func normalise(_ v: inout [Float]) -> Bool {
        let norm = v.withVector { VectorMath.norm($0) }
        guard norm > 0, norm.isFinite else { return false }
        v.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: Float(1 / norm)) }
        return true
    }
}
