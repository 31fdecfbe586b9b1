/// Philox4x32-10, the counter-based generator of Salmon et al., "Parallel random numbers: as easy as
/// 1, 2, 3" (SC 2011), as in Random123.
///
/// A counter-based generator is a pure function `(key, counter) -> 128 random bits`: there is no
/// hidden state to advance, so any draw of any stream can be computed without computing the draws
/// before it. That is what lets desgd replay a single round without replaying the rounds before it.
///
/// Complexity: O(1) per 128-bit block (10 rounds of two 32×32→64 multiplications).
public enum Philox4x32 {
    /// Multipliers and Weyl key increments of Philox4x32 (Random123, `philox.h`).
    @usableFromInline static let m0: UInt32 = 0xD251_1F53
    @usableFromInline static let m1: UInt32 = 0xCD9E_8D57
    @usableFromInline static let w0: UInt32 = 0x9E37_79B9
    @usableFromInline static let w1: UInt32 = 0xBB67_AE85

    /// One block: 10 rounds applied to `counter` under `key`.
    @inlinable
    public static func block(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var c = counter
        var k0 = key.x, k1 = key.y
        for round in 0..<10 {
            if round > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = UInt64(m0) &* UInt64(c.x)
            let p1 = UInt64(m1) &* UInt64(c.z)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            c = SIMD4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0)
        }
        return c
    }
}
