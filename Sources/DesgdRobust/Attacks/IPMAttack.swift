import DesgdNumerics

/// Attack `ipm` (inner-product manipulation, "Fall of Empires", Xie et al., UAI 2020): every
/// Byzantine worker sends −ε·μ, μ the mean of the honest messages of the round. A small ε keeps
/// the message close to the honest cloud while making ⟨aggregate, μ⟩ negative once enough of it
/// gets through. Default ε = 0.1 (Xie et al., the paper's §IV-A (iv), the bucketing and CClip code
/// of Karimireddy et al.).
///
/// Peers' variants: ByzFL τ = 2.0; Blades `scale = 1.0`; byzpy `scale = −1.0`; the LPD toolbox's
/// `empire-strict` ε = 1. The line-searched variant is ``OptimalIPMAttack``.
public struct IPMAttack: Attack {
    /// ε: the messages are −ε·μ.
    public var epsilon: Double

    public init(epsilon: Double = 0.1) {
        self.epsilon = epsilon
    }

    public var spec: String { "ipm:eps=\(SpecNumber.format(epsilon))" }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        honest >= 1 ? nil : "needs at least one honest message to take its mean, got none"
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        var decision = AttackDecision()
        decision.scale = epsilon
        let message = Self.message(mean: context.honestMean(), epsilon: epsilon)
        return AttackOutput(messages: Matrix(repeating: message, count: context.byzantineCount), decision: decision)
    }

    /// −ε·μ, computed as one Float multiplication per coordinate by Float(−ε).
    static func message(mean: [Float], epsilon: Double) -> [Float] {
        var out = mean
        out.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: Float(-epsilon)) }
        return out
    }
}
