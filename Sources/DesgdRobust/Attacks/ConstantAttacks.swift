import DesgdNumerics

/// Attack `constant`: every Byzantine worker sends c·1, the all-c vector. Default c = 5
/// (the paper's c₁ = 5.0, §IV-A (i)).
///
/// Source: the DeSGD paper's evaluation; no peer in docs/references.md (robust aggregation) ships it under
/// this name (ByzFL's closest is the Inf attack, c = +∞).
public struct ConstantAttack: Attack {
    public var c: Double

    public init(c: Double = 5) {
        self.c = c
    }

    public var spec: String { "constant:c=\(SpecNumber.format(c))" }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        var output = context.constantMessages(Float(c))
        output.decision.scale = c
        return output
    }
}

/// Attack `inf`: every coordinate of every Byzantine message is +∞.
///
/// Source: ByzFL `Inf`; the LPD toolbox's `nan` attack is the NaN counterpart (``NaNAttack``).
/// Exercises the rules' handling of non-finite inputs (docs/references.md, robust aggregation §7.11).
public struct InfAttack: Attack {
    public init() {}
    public var spec: String { "inf" }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        context.constantMessages(.infinity)
    }
}

/// Attack `nan`: every coordinate of every Byzantine message is a quiet NaN (`Float.nan`,
/// bit pattern 0x7FC00000).
///
/// Source: LPD toolbox `nan`. Like ``InfAttack`` it tests non-finite handling; a rule that averages
/// it in outputs NaN.
public struct NaNAttack: Attack {
    public init() {}
    public var spec: String { "nan" }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        context.constantMessages(.nan)
    }
}

extension AttackContext {
    /// `byzantineCount` rows with every coordinate equal to `value`.
    func constantMessages(_ value: Float) -> AttackOutput {
        AttackOutput(messages: Matrix(rows: byzantineCount, columns: dimension,
                                      storage: [Float](repeating: value, count: byzantineCount * dimension)))
    }
}
