import DesgdNumerics

/// Attack `alie` ("A Little Is Enough", Baruch et al., NeurIPS 2019): every Byzantine worker
/// sends μ − z·σ, with μ the coordinate-wise mean and σ the coordinate-wise standard deviation of
/// the honest messages of the round. Staying within z standard deviations of the mean in every
/// coordinate keeps the message inside what median- and distance-based rules accept, while all
/// Byzantine workers push the same way.
///
/// Choices (docs/references.md, robust aggregation §3 and §7.7):
/// - z = 1 by default, as in the DeSGD paper (§IV-A (v): "we always set z = 1.0").
///   `z=auto` takes Baruch et al.'s z_max from n (all workers, honest + Byzantine, as in their
///   code and Blades) and f (the actual Byzantine count): s = ⌊n/2 + 1⌋ − f supporters needed,
///   z = Φ⁻¹((n − f − s)/(n − f)). It is ≤ 0 for small n (e.g. −0.140 at n=10, f=1): the formula
///   then sends the mean or less, which is what it prescribes.
/// - Sign −: μ − z·σ, as the paper and the Karimireddy et al. code write it. ByzFL, Blades, byzpy
///   and the LPD toolbox use μ + z·σ; for rules symmetric in each coordinate the two are mirror
///   images. ByzFL's fixed default is τ = 1.5.
/// - σ with ddof = 1 (the sample form, as torch.std in the Karimireddy et al. code and ByzFL);
///   byzpy uses ddof = 0. So at least two honest messages are needed.
///
/// The line-searched variant is ``OptimalALIEAttack``.
public struct ALIEAttack: Attack {
    /// How z is chosen.
    public enum Deviation: Sendable, Equatable {
        /// A fixed z.
        case fixed(Double)
        /// z_max(n, f) of Baruch et al. (``baruchZ(n:f:)``), n = honest + Byzantine senders.
        case auto
    }

    public var z: Deviation

    public init(z: Deviation = .fixed(1)) {
        self.z = z
    }

    public var spec: String {
        switch z {
        case .fixed(let value): "alie:z=\(SpecNumber.format(value))"
        case .auto: "alie:z=auto"
        }
    }

    public func requirement(honest: Int, byzantine: Int) -> String? {
        if honest < 2 {
            return "needs at least 2 honest messages for a standard deviation with ddof=1, got \(honest)"
        }
        if z == .auto, Self.baruchZ(n: honest + byzantine, f: byzantine) == nil {
            let n = honest + byzantine
            return "z=auto needs 1 ≤ s < n−f with s = ⌊n/2+1⌋−f supporters, got n=\(n), f=\(byzantine)"
                + " (s=\(n / 2 + 1 - byzantine))"
        }
        return nil
    }

    public func craft(_ context: AttackContext, state: inout AttackState) -> AttackOutput {
        let zValue: Double
        switch z {
        case .fixed(let value): zValue = value
        case .auto:
            guard let value = Self.baruchZ(n: context.honest.rows + context.byzantineCount, f: context.byzantineCount)
            else { preconditionFailure("z=auto was validated by run") }
            zValue = value
        }
        let (mean, sigma) = Self.statistics(of: context.honest)
        var decision = AttackDecision()
        decision.scale = zValue
        let message = Self.message(mean: mean, sigma: sigma, z: zValue)
        return AttackOutput(messages: Matrix(repeating: message, count: context.byzantineCount), decision: decision)
    }

    /// Baruch et al.'s z_max for n workers of which f are Byzantine:
    /// s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − f − s)/(n − f)); `nil` when the probability is not in (0, 1)
    /// (s < 1: f alone is a majority; s ≥ n − f: fewer than 3 workers).
    public static func baruchZ(n: Int, f: Int) -> Double? {
        let s = n / 2 + 1 - f
        let honest = n - f
        guard s >= 1, s < honest else { return nil }
        return NormalDistribution.quantile(Double(honest - s) / Double(honest))
    }

    /// The honest coordinate-wise mean μ and standard deviation σ (ddof = 1).
    static func statistics(of honest: Matrix) -> (mean: [Float], sigma: [Float]) {
        let mean = VectorMath.mean(of: honest)
        var sigma = [Float](repeating: 0, count: honest.columns)
        mean.withVector { mu in
            sigma.withUnsafeMutableBufferPointer {
                VectorMath.standardDeviation(of: honest, mean: mu, ddof: 1, into: $0)
            }
        }
        return (mean, sigma)
    }

    /// μ − z·σ, one fused multiply-add per coordinate.
    static func message(mean: [Float], sigma: [Float], z: Double) -> [Float] {
        var out = mean
        sigma.withVector { s in out.withUnsafeMutableBufferPointer { VectorMath.axpy(Float(-z), s, $0) } }
        return out
    }
}
