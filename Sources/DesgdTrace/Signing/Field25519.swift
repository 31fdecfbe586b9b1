/// An element of the prime field GF(p), p = 2²⁵⁵ − 19, of Ed25519 (RFC 8032 §5.1), as four 64-bit
/// limbs, least significant first, always fully reduced (< p).
///
/// Only what ``Ed25519Strictness`` needs to decode a point (RFC 8032 §5.1.3): addition,
/// subtraction, multiplication and exponentiation. Variable time: it only ever sees public keys
/// and signatures, never a secret.
struct Field25519: Equatable, Sendable {
    var limbs: [UInt64]

    static let p = Field25519(unreduced: [0xFFFF_FFFF_FFFF_FFED, .max, .max, 0x7FFF_FFFF_FFFF_FFFF])
    static let zero = Field25519(0)
    static let one = Field25519(1)
    /// The curve constant d = −121665/121666 (RFC 8032 §5.1).
    static let d = Field25519(0) - Field25519(121_665) * Field25519(121_666).inverse

    private init(unreduced limbs: [UInt64]) { self.limbs = limbs }

    init(_ small: UInt64) { limbs = [small, 0, 0, 0] }

    /// The 255-bit little-endian integer of `bytes` (32 bytes, the top bit ignored), or nil when it
    /// is not below p (a non-canonical encoding, RFC 8032 §5.1.3 step 1).
    init?(canonical bytes: [UInt8]) {
        guard bytes.count == 32 else { return nil }
        var l = [UInt64](repeating: 0, count: 4)
        for i in 0..<32 { l[i / 8] |= UInt64(bytes[i]) << (8 * UInt64(i % 8)) }
        l[3] &= 0x7FFF_FFFF_FFFF_FFFF
        let value = Field25519(unreduced: l)
        guard !value.isAtLeastP else { return nil }
        self = value
    }

    /// Whether the limbs, as an integer, are ≥ p.
    private var isAtLeastP: Bool {
        for i in stride(from: 3, through: 0, by: -1) where limbs[i] != Self.p.limbs[i] {
            return limbs[i] > Self.p.limbs[i]
        }
        return true
    }

    /// `a − b` on the limbs, and whether it borrowed.
    private static func subtractLimbs(_ a: [UInt64], _ b: [UInt64]) -> ([UInt64], Bool) {
        var r = [UInt64](repeating: 0, count: 4)
        var borrow = false
        for i in 0..<4 {
            let (d1, o1) = a[i].subtractingReportingOverflow(b[i])
            let (d2, o2) = d1.subtractingReportingOverflow(borrow ? 1 : 0)
            r[i] = d2
            borrow = o1 || o2
        }
        return (r, borrow)
    }

    /// Reduces a value below 2²⁵⁶ (< 3p) to below p.
    private static func reduced(_ l: [UInt64]) -> Field25519 {
        var v = Field25519(unreduced: l)
        while v.isAtLeastP { v.limbs = subtractLimbs(v.limbs, p.limbs).0 }
        return v
    }

    static func + (a: Field25519, b: Field25519) -> Field25519 {
        // a, b < p < 2²⁵⁵: the sum fits 256 bits.
        var r = [UInt64](repeating: 0, count: 4)
        var carry = false
        for i in 0..<4 {
            let (s1, o1) = a.limbs[i].addingReportingOverflow(b.limbs[i])
            let (s2, o2) = s1.addingReportingOverflow(carry ? 1 : 0)
            r[i] = s2
            carry = o1 || o2
        }
        return reduced(r)
    }

    static func - (a: Field25519, b: Field25519) -> Field25519 {
        let (r, borrow) = subtractLimbs(a.limbs, b.limbs)
        // a − b + 2²⁵⁶ wrapped: add p back, which wraps around 2²⁵⁶ again to a − b + p.
        return borrow ? Field25519(unreduced: r) + p : Field25519(unreduced: r)
    }

    static func * (a: Field25519, b: Field25519) -> Field25519 {
        var t = [UInt64](repeating: 0, count: 8)
        for i in 0..<4 {
            var carry: UInt64 = 0
            for j in 0..<4 {
                let (hi, lo) = a.limbs[i].multipliedFullWidth(by: b.limbs[j])
                let (s1, o1) = t[i + j].addingReportingOverflow(lo)
                let (s2, o2) = s1.addingReportingOverflow(carry)
                t[i + j] = s2
                // hi·2⁶⁴ + lo + t + carry < 2¹²⁸: the new carry fits 64 bits.
                carry = hi &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
            }
            t[i + 4] = carry
        }
        // 2²⁵⁶ ≡ 38 (mod p): fold the high half in, twice.
        var r = [UInt64](repeating: 0, count: 4)
        var carry: UInt64 = 0
        for i in 0..<4 {
            let (hi, lo) = t[i + 4].multipliedFullWidth(by: 38)
            let (s1, o1) = t[i].addingReportingOverflow(lo)
            let (s2, o2) = s1.addingReportingOverflow(carry)
            r[i] = s2
            carry = hi &+ (o1 ? 1 : 0) &+ (o2 ? 1 : 0)
        }
        var add = carry &* 38  // carry ≤ 38
        for i in 0..<4 {
            let (s, o) = r[i].addingReportingOverflow(add)
            r[i] = s
            add = o ? 1 : 0
        }
        // A last wrap leaves r small: adding 38 cannot overflow.
        if add == 1 { r[0] &+= 38 }
        return reduced(r)
    }

    /// `self` to the power `exponent` (four limbs, least significant first).
    func power(_ exponent: [UInt64]) -> Field25519 {
        var result = Field25519.one
        for i in stride(from: 255, through: 0, by: -1) {
            result = result * result
            if (exponent[i / 64] >> UInt64(i % 64)) & 1 == 1 { result = result * self }
        }
        return result
    }

    /// self^(p−2), the inverse of a non-zero element (Fermat).
    var inverse: Field25519 { power([0xFFFF_FFFF_FFFF_FFEB, .max, .max, 0x7FFF_FFFF_FFFF_FFFF]) }

    /// Euler's criterion: whether `self` is a square (0 included), self^((p−1)/2) ∈ {0, 1}.
    var isSquare: Bool {
        let chi = power([0xFFFF_FFFF_FFFF_FFF6, .max, .max, 0x3FFF_FFFF_FFFF_FFFF])
        return chi == .zero || chi == .one
    }
}
