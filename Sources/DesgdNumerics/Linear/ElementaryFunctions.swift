/// Elementary functions with a fixed, documented evaluation, so that the model's softmax gives the
/// same bits on every machine (glibc's `expf` picks its implementation by CPU at load time).
public enum ElementaryFunctions {
    /// eˣ in single precision (relative error below 3·10⁻⁷ on [−87, 88]).
    ///
    /// x = k·ln 2 + r with k = round(x·log₂e), |r| ≤ ln2/2 (Cody–Waite two-part ln 2), e^r by its
    /// degree-6 Taylor polynomial in Horner form with FMA, then scaled by 2ᵏ through the exponent
    /// bits (in two halves, so that k = 128 does not overflow early). Inputs below −87.3 return 0,
    /// above 88.7 return +∞; NaN propagates.
    @inlinable
    public static func exp(_ x: Float) -> Float {
        if x.isNaN { return x }
        if x < -87.3 { return 0 }
        if x > 88.7 { return .infinity }
        let k = (x * 1.442_695_04).rounded(.toNearestOrEven)
        let r = x.addingProduct(-k, 0.693_145_75).addingProduct(-k, 1.428_606_8e-6)
        var p: Float = 1.0 / 720
        p = (1.0 / 120 as Float).addingProduct(p, r)
        p = (1.0 / 24 as Float).addingProduct(p, r)
        p = (1.0 / 6 as Float).addingProduct(p, r)
        p = (0.5 as Float).addingProduct(p, r)
        p = (1 as Float).addingProduct(p, r)
        p = (1 as Float).addingProduct(p, r)
        let ki = Int32(k), k1 = ki / 2, k2 = ki - k1
        return p * Float(bitPattern: UInt32(k1 + 127) << 23) * Float(bitPattern: UInt32(k2 + 127) << 23)
    }
}

/// Double-precision logarithm, exponential, sine, cosine and power for the random draws (Box–Muller
/// Gaussians, Marsaglia–Tsang Gamma), the ALIE quantile and the loss, so that they give the same bits
/// on every machine: the C library's versions differ between glibc releases and pick
/// implementations by CPU at load time. Plain IEEE binary64 arithmetic (`+ − × ÷`, `squareRoot`,
/// exponent-bit manipulation), no fused multiply-add, in the order written: each function is
/// a port of FreeBSD's msun (fdlibm, Sun Microsystems 1993), whose published error is below 1 ulp.
/// Measured against glibc over sweeps of 400 000 inputs each, every one is within 1 ulp (asserted in
/// `ElementaryFunctionsTests`, with their bit patterns on a table of inputs and digests of the
/// Gaussian and Gamma draws built on them).
extension ElementaryFunctions {
    static let ln2High: Double = 6.93147180369123816490e-01  // 0x3FE62E42FEE00000: ln 2 to 32 bits
    static let ln2Low: Double = 1.90821492927058770002e-10  // 0x3DEA39EF35793C76: ln 2 − ln2High

    /// ln x (fdlibm `e_log.c`): x = 2ᵏ·(1+f) with √2/2 ≤ 1+f < √2, ln(1+f) = f − f²/2 + s·(f²/2 + R(s²))
    /// with s = f/(2+f) and R a degree-14 minimax polynomial (Remez error below 2⁻⁵⁸·⁴⁵), then
    /// k·ln 2 added in two parts. ln 0 = −∞, ln of a negative number or NaN is NaN, ln +∞ = +∞.
    public static func log(_ x: Double) -> Double {
        let lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01, lg3 = 2.857142874366239149e-01
        let lg4 = 2.222219843214978396e-01, lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01
        let lg7 = 1.479819860511658591e-01
        var x = x
        var bits = x.bitPattern
        var hx = Int32(truncatingIfNeeded: bits >> 32)
        let lx = UInt32(truncatingIfNeeded: bits)
        var k: Int32 = 0
        if hx < 0x0010_0000 {  // x < 2⁻¹⁰²²: zero, negative or subnormal
            if (hx & 0x7fff_ffff) == 0 && lx == 0 { return -.infinity }
            if hx < 0 { return .nan }
            k -= 54
            x *= 0x1p54
            bits = x.bitPattern
            hx = Int32(truncatingIfNeeded: bits >> 32)
        }
        if hx >= 0x7ff0_0000 { return x + x }  // +∞ or NaN
        if hx == 0x3ff0_0000 && lx == 0 { return 0 }
        k += (hx >> 20) - 1023
        hx &= 0x000f_ffff
        let i = (hx &+ 0x95f64) & 0x0010_0000
        // Normalise x to [√2/2, √2): x or x/2.
        let high = UInt64(UInt32(bitPattern: hx | (i ^ 0x3ff0_0000)))
        x = Double(bitPattern: (high << 32) | (bits & 0xffff_ffff))
        k += i >> 20
        let f = x - 1.0
        let dk = Double(k)
        if (0x000f_ffff & (2 &+ hx)) < 3 {  // −2⁻²⁰ ≤ f < 2⁻²⁰
            if f == 0 { return k == 0 ? 0 : dk * ln2High + dk * ln2Low }
            let r = f * f * (0.5 - 0.33333333333333333 * f)
            return k == 0 ? f - r : dk * ln2High - ((r - dk * ln2Low) - f)
        }
        let s = f / (2.0 + f)
        let z = s * s
        let w = z * z
        let t1 = w * (lg2 + w * (lg4 + w * lg6))
        let t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
        let r = t2 + t1
        if ((hx &- 0x6147a) | (0x6b851 &- hx)) > 0 {
            let hfsq = 0.5 * f * f
            return k == 0 ? f - (hfsq - s * (hfsq + r)) : dk * ln2High - ((hfsq - (s * (hfsq + r) + dk * ln2Low)) - f)
        }
        return k == 0 ? f - s * (f - r) : dk * ln2High - ((s * (f - r) - dk * ln2Low) - f)
    }

    /// eˣ (fdlibm `e_exp.c`): x = k·ln 2 + r with |r| ≤ ln2/2 (two-part ln 2), e^r from the
    /// rational form 1 + 2r/(R(r) − r) with R a degree-10 minimax polynomial (Remez error below
    /// 2⁻⁵⁹), scaled by 2ᵏ through the exponent bits. Overflows to +∞ above 709.78, underflows
    /// to 0 below −745.13; NaN propagates.
    public static func exp(_ x: Double) -> Double {
        let p1 = 1.66666666666666019037e-01, p2 = -2.77777777770155933842e-03, p3 = 6.61375632143793436117e-05
        let p4 = -1.65339022054652515390e-06, p5 = 4.13813679705723846039e-08
        let invLn2 = 1.44269504088896338700e+00
        if x.isNaN { return x }
        if x > 7.09782712893383973096e+02 { return .infinity }
        if x < -7.45133219101941108420e+02 { return 0 }
        let hx = UInt32(truncatingIfNeeded: x.bitPattern >> 32) & 0x7fff_ffff
        let negative = x < 0
        var hi = 0.0, lo = 0.0, k = 0
        var r = x
        if hx > 0x3fd6_2e42 {  // |x| > ln2/2
            if hx < 0x3ff0_a2b2 {  // |x| < 1.5·ln 2
                hi = negative ? x + ln2High : x - ln2High
                lo = negative ? -ln2Low : ln2Low
                k = negative ? -1 : 1
            } else {
                k = Int(invLn2 * x + (negative ? -0.5 : 0.5))  // truncation towards zero
                let t = Double(k)
                hi = x - t * ln2High  // exact: t has at most 11 bits, ln2High 32
                lo = t * ln2Low
            }
            r = hi - lo
        } else if hx < 0x3e30_0000 {  // |x| < 2⁻²⁸
            return 1.0 + x
        }
        let t = r * r
        let c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
        if k == 0 { return 1.0 - ((r * c) / (c - 2.0) - r) }
        let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
        if k >= -1021 {
            if k == 1024 { return y * 2.0 * 0x1p1023 }
            return y * Double(bitPattern: UInt64(0x3ff + k) << 52)
        }
        return y * Double(bitPattern: UInt64(0x3ff + k + 1000) << 52) * 0x1p-1000
    }

    /// xʸ for x ≥ 0 as e^(y·ln x), with ln x and the product carried in double-double
    /// (``logDoubleDouble(_:)``, Dekker's exact product) so that the rounding of ln x is not
    /// amplified by |y·ln x| (up to ~745 before the result underflows); e^(z_hi + z_lo) =
    /// e^z_hi·(1 + z_lo) with this file's ``exp(_:)``. Error: within 1 ulp of glibc over the tests'
    /// sweep (the Gamma draws' u^(1/a): u in (0, 1], 1/a in [1, 20]). 0ʸ = 0 for y > 0 and +∞ for y < 0, x⁰ = 1,
    /// 1ʸ = 1; a negative x or a NaN gives NaN.
    public static func pow(_ x: Double, _ y: Double) -> Double {
        if y == 0 { return 1 }
        if x.isNaN || y.isNaN || x < 0 { return .nan }
        if x == 0 { return y > 0 ? 0 : .infinity }
        if x == 1 { return 1 }
        if x == .infinity { return y > 0 ? .infinity : 0 }
        let (h, l) = logDoubleDouble(x)
        // |y| ≥ 2⁹⁰⁰ would overflow the split; |y·ln x| is then far outside exp's range (or ln x
        // so small that the plain product is as good).
        guard abs(y) < 0x1p900 else { return exp(y * h) }
        let (p, e) = exactProduct(y, h)
        let (zh, zl) = fastTwoSum(p, e + y * l)
        let r = exp(zh)
        guard r.isFinite && r != 0 else { return r }
        return r + r * zl
    }

    /// ln x = hi + lo for finite x > 0 with an absolute error below about 2⁻⁶⁰ (for ``pow(_:_:)``):
    /// x = 2ᵏ·m, √2/2 ≤ m < √2, f = m − 1 (exact), s = f/(2+f) in double-double, ln m = 2·atanh s
    /// = 2s + 2s³/3 + … + 2s²⁵/25 (|s| ≤ 0.1716: the first omitted term is below 2⁻⁶³), the
    /// series after 2s in double; then k·ln 2 (ln2High·k exact) added with error-free sums.
    static func logDoubleDouble(_ x: Double) -> (Double, Double) {
        var k = Int(x.exponent)
        var m = x.significand  // [1, 2), exact (also for subnormal x)
        if m > 1.4142135623730951 { m *= 0.5; k += 1 }
        let f = m - 1  // exact (Sterbenz)
        let uh = 2 + f, ul = f - (uh - 2)  // 2 + f = uh + ul exactly
        let sh = f / uh
        let (ph, pl) = exactProduct(sh, uh)
        let sl = (((f - ph) - pl) - sh * ul) / uh
        let w = sh * sh
        var series = 2.0 / 25
        for n in stride(from: 11, through: 1, by: -1) { series = 2.0 / Double(2 * n + 1) + w * series }
        let tail = sh * w * series
        let (mh, ml) = fastTwoSum(2 * sh, 2 * sl + tail)
        let dk = Double(k)
        let (th, tl) = twoSum(dk * ln2High, mh)
        return fastTwoSum(th, tl + (ml + dk * ln2Low))
    }

    /// a + b = s + e exactly (Knuth's TwoSum, any magnitudes).
    static func twoSum(_ a: Double, _ b: Double) -> (Double, Double) {
        let s = a + b
        let bb = s - a
        return (s, (a - (s - bb)) + (b - bb))
    }

    /// a + b = s + e exactly when |a| ≥ |b| or a = 0 (Dekker's Fast2Sum).
    static func fastTwoSum(_ a: Double, _ b: Double) -> (Double, Double) {
        let s = a + b
        return (s, b - (s - a))
    }

    /// a·b = p + e exactly (Dekker's product with Veltkamp's split, no FMA) for |a|, |b| < 2⁹⁹⁶
    /// and no underflow.
    static func exactProduct(_ a: Double, _ b: Double) -> (Double, Double) {
        func split(_ v: Double) -> (Double, Double) {
            let c = 134_217_729.0 * v  // 2²⁷ + 1
            let high = c - (c - v)
            return (high, v - high)
        }
        let p = a * b
        let (ah, al) = split(a), (bh, bl) = split(b)
        return (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
    }

    /// sin x (fdlibm `s_sin.c`, `k_sin.c`): x reduced to r ∈ [−π/4, π/4] by ``reduceByHalfPi(_:)``,
    /// then the odd degree-13 minimax polynomial of the quadrant (sine or cosine kernel).
    /// |x| ≤ 2²⁰·π/2 (about 1.6·10⁶; the draws use [0, 2π)); NaN beyond, and for ±∞ and NaN.
    public static func sin(_ x: Double) -> Double {
        guard let (n, r, tail) = reduceByHalfPi(x) else { return .nan }
        switch n & 3 {
        case 0: return sinKernel(r, tail)
        case 1: return cosKernel(r, tail)
        case 2: return -sinKernel(r, tail)
        default: return -cosKernel(r, tail)
        }
    }

    /// cos x (fdlibm `s_cos.c`, `k_cos.c`), as ``sin(_:)``: the even degree-14 kernel of the quadrant.
    public static func cos(_ x: Double) -> Double {
        guard let (n, r, tail) = reduceByHalfPi(x) else { return .nan }
        switch n & 3 {
        case 0: return cosKernel(r, tail)
        case 1: return -sinKernel(r, tail)
        case 2: return -cosKernel(r, tail)
        default: return sinKernel(r, tail)
        }
    }

    /// x = n·π/2 + (r + tail) with |r + tail| ≤ π/4·(1 + 2⁻²⁰) (fdlibm `e_rem_pio2.c`, medium
    /// case with its second iteration: π/2 in three 33-bit parts, n·part exact for |n| < 2²⁰, so
    /// r + tail carries about 118 bits of x − n·π/2). nil for |x| > 2²⁰·π/2, ±∞ and NaN.
    static func reduceByHalfPi(_ x: Double) -> (Int, Double, Double?)? {
        guard x.isFinite, abs(x) <= 0x1p20 * 1.5707963267948966 else { return nil }
        if abs(x) <= 0.7853981633974483 { return (0, x, nil) }  // |x| ≤ π/4: no reduction, no tail
        let invPio2 = 6.36619772367581382433e-01
        let pio2_1 = 1.57079632673412561417e+00, pio2_1t = 6.07710050650619224932e-11,
            pio2_2 = 6.07710050630396597660e-11
        let pio2_2t = 2.02226624879595063154e-21, pio2_3 = 2.02226624871116645580e-21
        let pio2_3t = 8.47842766036889956997e-32
        let fn = (x * invPio2).rounded(.toNearestOrEven)
        var r = x - fn * pio2_1
        var w = fn * pio2_1t  // first round: good to 85 bits
        var y0 = r - w
        let ex = Int(x.exponentBitPattern)
        if ex - Int(y0.exponentBitPattern) > 16 {  // cancellation: second iteration, good to 118 bits
            let t = r
            w = fn * pio2_2
            r = t - w
            w = fn * pio2_2t - ((t - r) - w)
            y0 = r - w
            if ex - Int(y0.exponentBitPattern) > 49 {  // third, 151 bits
                let t2 = r
                w = fn * pio2_3
                r = t2 - w
                w = fn * pio2_3t - ((t2 - r) - w)
                y0 = r - w
            }
        }
        let y1 = (r - y0) - w
        return (Int(fn), y0, y1)
    }

    /// sin(x + y) on |x| ≤ π/4, y the tail of x, nil for an unreduced x (fdlibm `__kernel_sin`).
    static func sinKernel(_ x: Double, _ tail: Double?) -> Double {
        let s1 = -1.66666666666666324348e-01, s2 = 8.33333333332248946124e-03, s3 = -1.98412698298579493134e-04
        let s4 = 2.75573137070700676789e-06, s5 = -2.50507602534068634195e-08, s6 = 1.58969099521155010221e-10
        let z = x * x
        let w = z * z
        let r = s2 + z * (s3 + z * s4) + z * w * (s5 + z * s6)
        let v = z * x
        guard let y = tail else { return x + v * (s1 + z * r) }
        return x - ((z * (0.5 * y - v * r) - y) - v * s1)
    }

    /// cos(x + y) on |x| ≤ π/4, y the tail of x (fdlibm `__kernel_cos`, FreeBSD's 2008 form).
    static func cosKernel(_ x: Double, _ tail: Double?) -> Double {
        let y = tail ?? 0
        let c1 = 4.16666666666666019037e-02, c2 = -1.38888888888741095749e-03, c3 = 2.48015872894767294178e-05
        let c4 = -2.75573143513906633035e-07, c5 = 2.08757232129817482790e-09, c6 = -1.13596475577881948265e-11
        let z = x * x
        let w = z * z
        let r = z * (c1 + z * (c2 + z * c3)) + w * w * (c4 + z * (c5 + z * c6))
        let hz = 0.5 * z
        let v = 1.0 - hz
        return v + (((1.0 - v) - hz) + (z * r - x * y))
    }
}
