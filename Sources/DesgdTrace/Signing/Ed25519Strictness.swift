/// Strict Ed25519 verification: the checks on public keys and signatures that swift-crypto
/// (BoringSSL) does not make, made before it verifies (traces/FORMAT.md §3.6, "valid key").
///
/// Why: RFC 8032 §5.1.7 verifies [S]B = R + [k]A, and BoringSSL accepts any 32 bytes as a public
/// key. With the identity point as the key (bytes 01 00…00), R = identity and S = 0 satisfy that
/// equation for every message: such a "key" vouches for anything, and so does any key of small
/// order with suitable R. Rejected here, as libsodium's strict verification does:
///
/// - a public key that is not the encoding of a curve point (RFC 8032 §5.1.3: y ≥ p, or
///   (y² − 1)/(d·y² + 1) without a square root mod p, or x = 0 with the sign bit set);
/// - a public key or a signature's R that encodes one of the 8 points of small order, in any of
///   its encodings, the non-canonical ones (y = p, p + 1) included (``smallOrderEncodings``);
/// - a signature's R whose y is not below p (non-canonical);
/// - a signature's S that is not below the group order L (RFC 8032 §5.1.7 step 1; BoringSSL
///   checks it too, checked here so that the rule does not depend on the library).
///
/// Written by hand because swift-crypto has no point decoding; ``Field25519`` holds the minimal
/// field arithmetic. Mixed-order keys (a small-order component plus a large one) are not points
/// of small order and are not rejected, as in libsodium.
public enum Ed25519Strictness {
    /// The 32-byte encodings, sign bit (bit 255) cleared, of the points of order 1, 2, 4 and 8
    /// (libsodium's `has_small_order` list): y = 0 (order 4), 1 (the identity), the two y of the
    /// order-8 points, p − 1 (order 2), and the non-canonical p (= 0) and p + 1 (= 1). Compared
    /// with the sign bit masked, they cover all 8 points and their other encodings.
    static let smallOrderEncodings: [[UInt8]] = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        [0x26, 0xE8, 0x95, 0x8F, 0xC2, 0xB2, 0x27, 0xB0, 0x45, 0xC3, 0xF4, 0x89, 0xF2, 0xEF, 0x98, 0xF0,
         0xD5, 0xDF, 0xAC, 0x05, 0xD3, 0xC6, 0x33, 0x39, 0xB1, 0x38, 0x02, 0x88, 0x6D, 0x53, 0xFC, 0x05],
        [0xC7, 0x17, 0x6A, 0x70, 0x3D, 0x4D, 0xD8, 0x4F, 0xBA, 0x3C, 0x0B, 0x76, 0x0D, 0x10, 0x67, 0x0F,
         0x2A, 0x20, 0x53, 0xFA, 0x2C, 0x39, 0xCC, 0xC6, 0x4E, 0xC7, 0xFD, 0x77, 0x92, 0xAC, 0x03, 0x7A],
        [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F],
        [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F],
        [0xEE] + [UInt8](repeating: 0xFF, count: 30) + [0x7F],
    ]

    /// The group order L = 2²⁵² + 27742317777372353535851937790883648493, little-endian.
    static let groupOrder: [UInt8] = [
        0xED, 0xD3, 0xF5, 0x5C, 0x1A, 0x63, 0x12, 0x58, 0xD6, 0x9C, 0xF7, 0xA2, 0xDE, 0xF9, 0xDE, 0x14,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
    ]

    /// Whether `encoding` (32 bytes) is one of the small-order points' encodings, sign bit ignored.
    public static func hasSmallOrder(_ encoding: [UInt8]) -> Bool {
        guard encoding.count == 32 else { return false }
        var y = encoding
        y[31] &= 0x7F
        return smallOrderEncodings.contains(y)
    }

    /// Whether `encoding` decodes to a point of the curve (RFC 8032 §5.1.3): y < p, x² =
    /// (y² − 1)/(d·y² + 1) has a root (Euler's criterion on u·v, whose quadratic character is
    /// u/v's since v ≠ 0 on this curve), and x = 0 comes with the sign bit 0.
    public static func isPoint(_ encoding: [UInt8]) -> Bool {
        guard let y = Field25519(canonical: encoding) else { return false }
        let y2 = y * y
        let u = y2 - .one, v = Field25519.d * y2 + .one
        guard (u * v).isSquare else { return false }
        return !(u == .zero && encoding[31] & 0x80 != 0)
    }

    /// Why `raw` is not a valid public key under these rules, or nil when it is.
    public static func publicKeyProblem(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return "not 32 bytes (\(raw.count))" }
        guard isPoint(raw) else { return "not a point of the curve (RFC 8032 §5.1.3 decoding fails)" }
        guard !hasSmallOrder(raw) else { return "a point of small order, which would verify forged signatures" }
        return nil
    }

    /// Whether a 64-byte signature R ‖ S passes the strict checks on its encoding: R canonical and
    /// not of small order, S < L. (Whether it verifies is for the library to say.)
    public static func signatureIsStrict(_ signature: [UInt8]) -> Bool {
        guard signature.count == 64 else { return false }
        let r = Array(signature[0..<32]), s = Array(signature[32..<64])
        guard Field25519(canonical: r) != nil, !hasSmallOrder(r) else { return false }
        return isBelowGroupOrder(s)
    }

    /// Whether the little-endian 256-bit `scalar` is below L.
    static func isBelowGroupOrder(_ scalar: [UInt8]) -> Bool {
        for i in stride(from: 31, through: 0, by: -1) where scalar[i] != groupOrder[i] {
            return scalar[i] < groupOrder[i]
        }
        return false
    }
}
