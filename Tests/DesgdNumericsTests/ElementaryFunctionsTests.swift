import Foundation
import Testing
@testable import DesgdNumerics

/// The project's own ln, exp, sin, cos and pow in Double (``ElementaryFunctions``), which the
/// random draws use instead of the C library's so that a Gaussian or Gamma draw is the same bits
/// on every machine.
@Suite struct ElementaryFunctionsTests {
    /// Distance in units in the last place between two finite doubles (through their ordered bit
    /// patterns, so it also counts across a power of two and across zero).
    static func ulps(_ a: Double, _ b: Double) -> UInt64 {
        func ordered(_ x: Double) -> Int64 {
            let i = Int64(bitPattern: x.bitPattern)
            return i < 0 ? Int64.min &- i : i
        }
        let d = ordered(a).subtractingReportingOverflow(ordered(b))
        return d.overflow ? .max : d.partialValue.magnitude
    }

    /// The largest ulp distance between `mine` and the C library's `reference` over `inputs`.
    static func worst(_ inputs: [Double], _ mine: (Double) -> Double, _ reference: (Double) -> Double) -> (UInt64,
        Double) {
        var worst: (UInt64, Double) = (0, .nan)
        for x in inputs {
            let e = ulps(mine(x), reference(x))
            if e > worst.0 { worst = (e, x) }
        }
        return worst
    }

    /// `count` inputs spread evenly over [lower, upper], plus `count` drawn uniformly from it.
    static func sweep(_ lower: Double, _ upper: Double, count: Int, seed: UInt64) -> [Double] {
        var r = RandomStream(seed: seed, purpose: .attack)
        return (0...count).map { lower + (upper - lower) * Double($0) / Double(count) }
            + (0..<count).map { _ in lower + (upper - lower) * r.nextDouble() }
    }

    /// Maximum error against glibc, measured over the sweeps below (200 001 + 200 000 points each):
    /// ln 1 ulp, exp 1 ulp, sin and cos 1 ulp, pow 1 ulp on the Gamma draws' domain (x in (0, 1],
    /// y in [1, 20], normal results). glibc's own error is
    /// below 1 ulp, so "1 ulp" means the two differ only where one of them is not correctly rounded.
    @Test func maximumErrorAgainstTheCLibrary() {
        // ln: every binade from 2⁻¹⁰⁷⁴ to 2¹⁰²³ (x = 2^e, e uniform) and densely around 1.
        let logInputs = Self.sweep(-1074, 1023.99, count: 200_000, seed: 1).map { Foundation.exp2($0) }
            + Self.sweep(0.5, 2, count: 200_000, seed: 2)
        let log = Self.worst(logInputs, ElementaryFunctions.log, Foundation.log)
        #expect(log.0 <= 1, "ln: \(log.0) ulp at \(log.1)")

        let expInputs = Self.sweep(-745, 709.7, count: 200_000, seed: 3) + Self.sweep(-1, 1, count: 200_000, seed: 4)
        let exp = Self.worst(expInputs, { ElementaryFunctions.exp($0) }, { Foundation.exp($0) })
        #expect(exp.0 <= 1, "exp: \(exp.0) ulp at \(exp.1)")

        // sin, cos: the Box–Muller angles 2π·u (u in [0, 1)) and a wider range.
        let angles = Self.sweep(0, 1, count: 200_000, seed: 5).map { 2.0 * Double.pi * $0 }.filter {
            $0 < 2 * Double.pi
        }
            + Self.sweep(-100_000, 100_000, count: 200_000, seed: 6)
        let sin = Self.worst(angles, ElementaryFunctions.sin, Foundation.sin)
        let cos = Self.worst(angles, ElementaryFunctions.cos, Foundation.cos)
        #expect(sin.0 <= 1, "sin: \(sin.0) ulp at \(sin.1)")
        #expect(cos.0 <= 1, "cos: \(cos.0) ulp at \(cos.1)")

        var r = RandomStream(seed: 7, purpose: .attack)
        var pow: UInt64 = 0
        for _ in 0..<400_000 {
            let x = 1.0 - r.nextDouble(), y = 1 + 19 * r.nextDouble()
            let v = Foundation.pow(x, y)
            guard v >= Double.leastNormalMagnitude
                else { continue }  // subnormal results lose relative precision in both
            pow = max(pow, Self.ulps(ElementaryFunctions.pow(x, y), v))
        }
        #expect(pow <= 1, "pow: \(pow) ulp")
        print("measured max ulp against glibc: ln \(log.0), exp \(exp.0), sin \(sin.0), cos \(cos.0), pow \(pow)")
    }

    @Test func specialValues() {
        #expect(ElementaryFunctions.log(0) == -.infinity && ElementaryFunctions.log(-0.0) == -.infinity)
        #expect(ElementaryFunctions.log(-1).isNaN && ElementaryFunctions.log(.nan).isNaN)
        #expect(ElementaryFunctions.log(.infinity) == .infinity && ElementaryFunctions.log(1) == 0)
        #expect(ElementaryFunctions.exp(Double.infinity) == .infinity && ElementaryFunctions.exp(-Double.infinity) == 0)
        #expect(ElementaryFunctions.exp(800.0) == .infinity && ElementaryFunctions.exp(-800.0) == 0
            && ElementaryFunctions.exp(0.0) == 1)
        #expect(ElementaryFunctions.exp(Double.nan).isNaN)
        #expect(ElementaryFunctions.sin(.infinity).isNaN && ElementaryFunctions.cos(.nan).isNaN
            && ElementaryFunctions.sin(1e7).isNaN)
        #expect(ElementaryFunctions.sin(0) == 0 && ElementaryFunctions.cos(0) == 1)
        #expect(ElementaryFunctions.pow(0, 2) == 0 && ElementaryFunctions.pow(0, -1) == .infinity
            && ElementaryFunctions.pow(5, 0) == 1)
        #expect(ElementaryFunctions.pow(-2, 0.5).isNaN && ElementaryFunctions.pow(1, .infinity) == 1)
    }

    /// Known answers: the bit patterns of each function on a table of inputs (input bits, output
    /// bits). 63 of the 70 outputs are the correctly rounded values (checked with mpmath at 300
    /// bits); the other 7 are 1 ulp from them, as fdlibm allows: ln 3, e⁻¹⁰, e¹, 0.5^2.5, 1.5^2.5,
    /// 10^2.5 and (10⁻⁵)¹⁰. A change of these bits changes every Gaussian and Gamma draw.
    @Test func knownAnswers() {
        for (name, f, cases) in Self.knownAnswers {
            for (x, expected) in cases {
                let y = f(Double(bitPattern: x))
                #expect(y.bitPattern == expected,
                    "\(name)(\(Double(bitPattern: x))) = \(y) (0x\(String(y.bitPattern, radix: 16)))")
            }
        }
    }

    static let knownAnswers: [(String, @Sendable (Double) -> Double, [(UInt64, UInt64)])] = [
        ("log", ElementaryFunctions.log,
            [(0x1, 0xc0874385446d71c3), (0x10000000000000, 0xc086232bdd7abcd2), (0x1a56e1fc2f8f359, 0xc085963447f87fb5),
                (0x3fb999999999999a, 0xc0026bb1bbb55515), (0x3fe0000000000000, 0xbfe62e42fefa39ef),
                (0x3fe6666666666666, 0xbfd6d3c324e13f50), (0x3fefffffca501acb, 0xbe7ad7f2b1049b9f),
                (0x3ff000001ad7f29b, 0x3e7ad7f2847b6492), (0x3ff8000000000000, 0x3fd9f323ecbf984c),
                (0x4000000000000000, 0x3fe62e42fefa39ef), (0x4008000000000000, 0x3ff193ea7aad030a),
                (0x4024000000000000, 0x40026bb1bbb55516), (0x405edd2f1a9fbe77, 0x401343774f3e2362),
                (0x7e37e43c8800759c, 0x4085963447f87fb5)]),
        ("exp", { ElementaryFunctions.exp($0) },
            [(0xc087480000000000, 0x1), (0xc085e00000000000, 0xd14f2b0fb9307f),
                (0xc024000000000000, 0x3f07cd79b5647c9a), (0xbff0000000000000, 0x3fd78b56362cef38),
                (0xbddb7cdfd9d7bdbb, 0x3feffffffff24190), (0x3ddb7cdfd9d7bdbb, 0x3ff000000006df38),
                (0x3fd3333333333333, 0x3ff599058c8c1a96), (0x3fe0000000000000, 0x3ffa61298e1e069c),
                (0x3ff0000000000000, 0x4005bf0a8b14576a), (0x4000000000000000, 0x401d8e64b8d4ddae),
                (0x4024000000000000, 0x40d5829dcf950560), (0x4059000000000000, 0x48f3494a9b171bf5),
                (0x4085e00000000000, 0x7f0d945df4f8ec8e), (0x40862d999999999a, 0x7fed75ae7a50ee14)]),
        ("sin", ElementaryFunctions.sin,
            [(0x3e112e0be826d695, 0x3e112e0be826d695), (0x3fb999999999999a, 0x3fb98eaecb8bcb2c),
                (0x3fe0000000000000, 0x3fdeaee8744b05f0), (0x3fe921fb54442d18, 0x3fe6a09e667f3bcc),
                (0x3ff0000000000000, 0x3feaed548f090cee), (0x4000000000000000, 0x3fed18f6ead1b446),
                (0x4008000000000000, 0x3fc210386db6d55b), (0x400921fb54442d18, 0x3ca1a62633145c07),
                (0x4010000000000000, 0xbfe837b9dddc1eae), (0x4014000000000000, 0xbfeeaf81f5e09933),
                (0x4018000000000000, 0xbfd1e1f18ab0a2c0), (0x401921fb54442d18, 0xbcb1a62633145c07),
                (0x4059000000000000, 0xbfe03425b78c4db8), (0x40f86a0000000000, 0x3fa24daa9c527e96)]),
        ("cos", ElementaryFunctions.cos,
            [(0x3e112e0be826d695, 0x3ff0000000000000), (0x3fb999999999999a, 0x3fefd712f9a817c1),
                (0x3fe0000000000000, 0x3fec1528065b7d50), (0x3fe921fb54442d18, 0x3fe6a09e667f3bcd),
                (0x3ff0000000000000, 0x3fe14a280fb5068c), (0x4000000000000000, 0xbfdaa22657537205),
                (0x4008000000000000, 0xbfefae04be85e5d2), (0x400921fb54442d18, 0xbff0000000000000),
                (0x4010000000000000, 0xbfe4eaa606db24c1), (0x4014000000000000, 0x3fd22785706b4ad9),
                (0x4018000000000000, 0x3feeb9b7097822f5), (0x401921fb54442d18, 0x3ff0000000000000),
                (0x4059000000000000, 0x3feb981dbf665fdf), (0x40f86a0000000000, 0xbfeffac3841b3da7)]),
        ("pow(x, 2.5)", { ElementaryFunctions.pow($0, 2.5) },
            [(0x3ee4f8b588e368f1, 0x3d5640a72acc33c8), (0x3fb999999999999a, 0x3f69e7c6e43390b8),
                (0x3fe0000000000000, 0x3fc6a09e667f3bcc), (0x3feccccccccccccd, 0x3fe89701ca9cf25e),
                (0x3fefae147ae147ae, 0x3fef34bbc2837447), (0x3ff8000000000000, 0x40060b9fd68a4555),
                (0x4024000000000000, 0x4073c3a4edfa9758)]),
        ("pow(x, 10)", { ElementaryFunctions.pow($0, 10) },
            [(0x3ee4f8b588e368f1, 0x358dee7a4ad4b825), (0x3fb999999999999a, 0x3ddb7cdfd9d7bdbf),
                (0x3fe0000000000000, 0x3f50000000000000), (0x3feccccccccccccd, 0x3fd650bf60432fd9),
                (0x3fefae147ae147ae, 0x3fecf0b2ad680bbf), (0x3ff8000000000000, 0x404cd52000000000),
                (0x4024000000000000, 0x4202a05f20000000)]),
    ]

    /// The draws built on these functions, pinned: an FNV-1a digest of the bits of 100 000
    /// Gaussians (``RandomStream/fillGaussian(_:mean:sigma:)``) and of 10 000 Gamma(0.3) draws
    /// (Marsaglia–Tsang with the u^(1/a) boost, so ln, sin, cos, sqrt and pow all enter). With the
    /// C library's functions these digests differ (they did before desgd used its own), and they
    /// would differ between glibc versions.
    @Test func gaussianAndGammaDrawsArePinned() {
        var s = RandomStream(seed: 1, purpose: .attack)
        var g = [Float](repeating: 0, count: 100_000)
        g.withUnsafeMutableBufferPointer { s.fillGaussian($0, mean: 0, sigma: 1) }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in g { h = (h ^ UInt64(v.bitPattern)) &* 0x100_0000_01b3 }
        var gamma: UInt64 = 0xcbf2_9ce4_8422_2325
        for _ in 0..<10_000 { gamma = (gamma ^ s.nextGamma(shape: 0.3).bitPattern) &* 0x100_0000_01b3 }
        #expect(h == 0x971a_2f45_77a2_dff4, "Gaussian digest 0x\(String(h, radix: 16))")
        #expect(gamma == 0x433f_031c_a969_77d6, "Gamma digest 0x\(String(gamma, radix: 16))")
    }
}
