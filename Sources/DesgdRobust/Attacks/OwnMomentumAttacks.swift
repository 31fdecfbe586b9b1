import DesgdNumerics

/// Attack `none`: the Byzantine workers behave honestly and send their own class-momentum computed
/// on their own data with true labels.
///
/// The paper's "Non" column (Table I, Xu et al., ICMLA 2023) keeps the Byzantine workers in the
/// round, so `none` is not "no Byzantine messages": the server still receives n_h + f messages and
/// the rule still trims f of them. Needs ``OwnMomentumNeed/trueLabels``.
public struct NoAttack: Attack {
    public init() {}
    public var spec: String { "none" }
    public var ownMomentum: OwnMomentumNeed { .trueLabels }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        context.ownMomentumMessages(ownMomentum)
    }
}

/// Attack `signflip`: each Byzantine worker sends −c·m, its own class-momentum m (true labels)
/// reversed and scaled. Default c = 1 (the paper's c₂ = 1.0, §IV-A (iii)).
///
/// Source: sign flipping as attributed to RSA (Li et al., AAAI 2019); the worker-side form (own
/// gradient or momentum negated) is the one of the paper, Blades and the bucketing code of
/// Karimireddy et al. Peers' variant: ByzFL and the LPD toolbox send −μ, the negated honest mean
/// (that is `ipm:eps=1` here). Needs ``OwnMomentumNeed/trueLabels``.
public struct SignFlipAttack: Attack {
    /// c ≥ 0: the messages are −c·m.
    public var scale: Double

    public init(scale: Double = 1) {
        self.scale = scale
    }

    public var spec: String { "signflip:scale=\(SpecNumber.format(scale))" }
    public var ownMomentum: OwnMomentumNeed { .trueLabels }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        var output = context.ownMomentumMessages(ownMomentum, scaledBy: Float(-scale))
        output.decision.scale = scale
        return output
    }
}

/// Attack `labelflip`: each Byzantine worker trains honestly but on flipped labels y ↦ C−1−y
/// (9−y with the 10 Fashion-MNIST classes) and sends that class-momentum unchanged. The engine
/// computes it (``OwnMomentumNeed/flippedLabels``); the attack passes it through.
///
/// In DeSGD, a Byzantine worker asked for class c sends the class-c momentum of its flipped data
/// set: the one computed on its samples of true class C−1−c, which now carry label c. That is the
/// literature's threat model (a worker that follows the protocol on relabelled data: Blades'
/// LabelFlip and Karimireddy et al.'s LF train on 9−y with the worker's own sampler), applied to
/// DeSGD's per-class messages; the engine selects those samples (``Simulation``).
///
/// Source: Fang et al. 2020 and common practice; the worker-side form with own data and momentum
/// is the one of Blades and of the bucketing/CClip code of Karimireddy et al. Peers' variant:
/// ByzFL and the LPD toolbox send the mean of the honest workers' flipped gradients, without
/// momentum.
public struct LabelFlipAttack: Attack {
    public init() {}
    public var spec: String { "labelflip" }
    public var ownMomentum: OwnMomentumNeed { .flippedLabels }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        context.ownMomentumMessages(ownMomentum)
    }
}

extension AttackContext {
    /// The Byzantine workers' own momenta (`need`) times `factor` (no arithmetic when the factor
    /// is 1, so `none` and `labelflip` forward the engine's bits unchanged).
    func ownMomentumMessages(_ need: OwnMomentumNeed, scaledBy factor: Float = 1) -> AttackOutput {
        guard var messages = ownMomenta else { preconditionFailure("own momenta were validated by run") }
        if factor != 1 {
            messages.storage.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: factor) }
        }
        var decision = AttackDecision()
        decision.ownMomentum = need
        return AttackOutput(messages: messages, decision: decision)
    }
}
