import DesgdNumerics
/// An Ed25519 private key in PKCS#8 (RFC 5958) as RFC 8410 §7 encodes it and
/// `openssl genpkey -algorithm ed25519` writes it: `-----BEGIN PRIVATE KEY-----` around the fixed
/// 48-byte DER
///
///     SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32 bytes) } }
///
/// Only that exact form is read: the DER is compared with its fixed 16-byte prefix, so no length
/// is taken from the input. Other forms (a version-2 key with its public key attached, other
/// algorithms) are refused with a message.
enum PKCS8Key {
    static let label = "PRIVATE KEY"
    /// The 16 bytes before the 32-byte seed.
    static let prefix: [UInt8] = [
        0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ]

    /// The 32-byte RFC 8032 private key in `text`, or an error naming `source`.
    static func seed(_ text: String, source: String) throws(TraceError) -> [UInt8] {
        let der = try PEMArmor.decode(text, label: label, source: source)
        guard der.count == prefix.count + 32, Array(der[0..<prefix.count]) == prefix else {
            throw .corrupted("\(source) is a PKCS#8 key but not an Ed25519 private key as RFC 8410 writes it "
                             + Explanation("(make one with openssl genpkey -algorithm ed25519)"))
        }
        return Array(der[prefix.count...])
    }

    /// The PEM text of the key whose RFC 8032 private key is `seed`.
    static func text(seed: [UInt8]) -> String { PEMArmor.encode(prefix + seed, label: label, width: 64) }
}
