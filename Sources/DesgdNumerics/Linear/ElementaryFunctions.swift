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
