import Foundation

/// The standard normal distribution N(0, 1): its CDF Φ and its quantile function Φ⁻¹.
///
/// Used by the ALIE attack to turn the number of workers it must win over into a deviation z
/// (Baruch et al., NeurIPS 2019), and available to any statistic that needs normal quantiles.
public enum NormalDistribution {
    /// Φ(x) = ½·erfc(−x/√2), accurate to the C library's `erfc` (a few ulp).
    public static func cdf(_ x: Double) -> Double {
        0.5 * Foundation.erfc(-x / 2.0.squareRoot())
    }

    /// Φ⁻¹(p) by Wichura's algorithm AS241 (PPND16, Applied Statistics 37(3), 1988), relative
    /// error about 1e-16 over (0, 1). The same algorithm backs Python's
    /// `statistics.NormalDist.inv_cdf`, the tool that computed the ALIE reference values in
    /// docs/references.md, robust aggregation §3, so both agree to the last few bits.
    ///
    /// Returns −∞ at p = 0, +∞ at p = 1 and NaN outside [0, 1] or for NaN.
    public static func quantile(_ p: Double) -> Double {
        guard p > 0, p < 1 else {
            if p == 0 { return -.infinity }
            if p == 1 { return .infinity }
            return .nan
        }
        let q = p - 0.5
        if abs(q) <= 0.425 {
            // Central region: a rational function of r = 0.425² − q².
            let r = 0.180625 - q * q
            return q * horner(centralNumerator, r) / horner(centralDenominator, r)
        }
        // Tails: a rational function of r = √(−log(min(p, 1 − p))), split at r = 5.
        var r = (-ElementaryFunctions.log(q < 0 ? p : 1 - p)).squareRoot()
        let x: Double
        if r <= 5 {
            r -= 1.6
            x = horner(nearTailNumerator, r) / horner(nearTailDenominator, r)
        } else {
            r -= 5
            x = horner(farTailNumerator, r) / horner(farTailDenominator, r)
        }
        return q < 0 ? -x : x
    }

    /// c₀ + c₁r + … + cₖrᵏ with the coefficients listed from c₀ up, evaluated by Horner's rule.
    private static func horner(_ coefficients: [Double], _ r: Double) -> Double {
        coefficients.reversed().reduce(0.0) { $0 * r + $1 }
    }

    // AS241 coefficients, lowest degree first (Wichura 1988, PPND16).
    private static let centralNumerator: [Double] = [
        3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125,
        45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727,
    ]
    private static let centralDenominator: [Double] = [
        1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
        21213.794301586595867, 39307.89580009271061, 28729.085735721942674, 5226.495278852545925,
    ]
    private static let nearTailNumerator: [Double] = [
        1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504,
        1.27045825245236838258, 0.24178072517745061177, 0.0227238449892691845833, 7.7454501427834140764e-4,
    ]
    private static let nearTailDenominator: [Double] = [
        1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
        0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4, 1.05075007164441684324e-9,
    ]
    private static let farTailNumerator: [Double] = [
        6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358, 0.29656057182850489123,
        0.026532189526576123093, 0.0012426609473880784386, 2.71155556874348757815e-5, 2.01033439929228813265e-7,
    ]
    private static let farTailDenominator: [Double] = [
        1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
        7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7, 2.04426310338993978564e-15,
    ]
}
