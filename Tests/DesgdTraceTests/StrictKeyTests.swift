import Crypto
import Foundation
import Testing
@testable import DesgdTrace

/// `bytes` from hex (test vectors).
func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = hex.startIndex
    while i < hex.endIndex {
        let j = hex.index(i, offsetBy: 2)
        out.append(UInt8(hex[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// The strict Ed25519 rules (traces/FORMAT.md §3.6, RFC 8032 §5.1.3 and §5.1.7) and the field
/// arithmetic they rest on, against known points.
@Suite struct Ed25519StrictnessTests {
    static let basePoint = hexBytes("5866666666666666666666666666666666666666666666666666666666666666")
    static let identity = [1] + [UInt8](repeating: 0, count: 31)

    @Test func fieldArithmetic() {
        // d = -121665/121666, as RFC 8032 §5.1 gives it (little-endian).
        let d = hexBytes("a3785913ca4deb75abd841414d0a700098e879777940c78c73fe6f2bee6c0352")
        #expect(Field25519.d == Field25519(canonical: d))
        let x = Field25519(canonical: Self.basePoint)!
        #expect(x * x.inverse == .one && x - x == .zero && (Field25519.zero - .one) + .one == .zero)
        // p − 1 squared is 1; 2²⁵⁵ − 19 itself is not canonical, nor is anything above it.
        let minusOne = Field25519.zero - .one
        #expect(minusOne * minusOne == .one)
        #expect(Field25519(canonical: [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]) == nil)
        #expect(Field25519(canonical: [UInt8](repeating: 0xFF, count: 32)) == nil)
        #expect(Field25519(canonical: [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]) == minusOne)
        // −1 is a square mod p (p ≡ 1 mod 4), 2 is not (p ≡ 5 mod 8).
        #expect(minusOne.isSquare && !Field25519(2).isSquare && Field25519(4).isSquare && Field25519.zero.isSquare)
    }

    @Test func pointDecoding() {
        #expect(Ed25519Strictness.isPoint(Self.basePoint))
        #expect(Ed25519Strictness.isPoint(Self.identity))
        #expect(Ed25519Strictness.isPoint(keyA.publicKey.raw) && Ed25519Strictness.isPoint(keyB.publicKey.raw))
        // y = 2, 7, 8: (y² − 1)/(d·y² + 1) has no square root; y = 3 has one.
        for y: UInt8 in [2, 7, 8] {
            #expect(!Ed25519Strictness.isPoint([y] + [UInt8](repeating: 0, count: 31)), "y = \(y)")
        }
        #expect(Ed25519Strictness.isPoint([3] + [UInt8](repeating: 0, count: 31)))
        // x = 0 (y = 1) with the sign bit set is no encoding; y ≥ p neither.
        #expect(!Ed25519Strictness.isPoint([1] + [UInt8](repeating: 0, count: 30) + [0x80]))
        #expect(!Ed25519Strictness.isPoint([0xEE] + [UInt8](repeating: 0xFF, count: 30) + [0x7F]))
        #expect(!Ed25519Strictness.isPoint([UInt8](repeating: 0, count: 31)))
    }

    /// The blocklist: its canonical entries are points of the curve, every entry is caught with
    /// either sign bit, and a public key of small order is refused.
    @Test func smallOrderPointsAreRefused() {
        for e in Ed25519Strictness.smallOrderEncodings {
            var signed = e
            signed[31] |= 0x80
            #expect(Ed25519Strictness.hasSmallOrder(e) && Ed25519Strictness.hasSmallOrder(signed))
            if Field25519(canonical: e) != nil { #expect(Ed25519Strictness.isPoint(e), "\(e)") }
            #expect(Ed25519Strictness.publicKeyProblem(e) != nil && Ed25519Strictness.publicKeyProblem(signed) != nil)
            #expect(throws: TraceError.self) { try TracePublicKey(raw: e) }
        }
        #expect(!Ed25519Strictness.hasSmallOrder(Self.basePoint))
        #expect(Ed25519Strictness.publicKeyProblem(keyA.publicKey.raw) == nil)
    }

    /// The auditor's forgery: the identity as the key, R = identity and S = 0 as every signature
    /// (RFC 8032's equation holds for any message). Also S ≥ L and a small-order R.
    @Test func forgedSignaturesAreRefused() throws {
        let forged = Self.identity + [UInt8](repeating: 0, count: 32)
        #expect(!Ed25519Strictness.signatureIsStrict(forged))
        let message = Array("desgd".utf8)
        #if os(Linux)
        // Why the strict rules: swift-crypto (BoringSSL) alone accepts the forgery for any message.
        let library = try Curve25519.Signing.PublicKey(rawRepresentation: Self.identity)
        #expect(library.isValidSignature(forged, for: message))
        #endif
        let good = try keyA.sign(message)
        #expect(keyA.publicKey.verifies(good, of: message) && Ed25519Strictness.signatureIsStrict(good))
        // S + L: the same point equation, a non-canonical S.
        var s = Array(good[32...]), carry = 0
        for i in 0..<32 {
            let v = Int(s[i]) + Int(Ed25519Strictness.groupOrder[i]) + carry
            s[i] = UInt8(v & 0xFF)
            carry = v >> 8
        }
        #expect(carry == 0)
        #expect(!keyA.publicKey.verifies(Array(good[..<32]) + s, of: message))
        var smallR = good
        smallR.replaceSubrange(0..<32, with: Self.identity)
        #expect(!keyA.publicKey.verifies(smallR, of: message))
    }

    /// A whole trace "signed" by the identity key: every signature record's key set to the
    /// identity and its signature to R = identity, S = 0, digests recomputed. Before strict
    /// verification this read as "whole file".
    @Test func identityKeyTraceIsInvalid() throws {
        let forged = try rechain(SignedTraceTests.signed) { _, h, payload, _ in
            guard h.type == .signature else { return }
            payload.replaceSubrange(24..<56, with: Self.identity)
            payload.replaceSubrange(88..<152, with: Self.identity + [UInt8](repeating: 0, count: 32))
        }
        let v = try verdict(forged)
        #expect(v.status == .invalid, "\(v.summary)")
        #expect(v.problem?.contains("small order") == true, "\(v.problem ?? "")")
        #expect(v.signers.isEmpty)
    }
}

/// Key files in OpenSSH's and PKCS#8's formats, read as hostile input.
@Suite struct KeyFormatTests {
    func file(_ text: String) -> String {
        let p = temporaryPath("key")
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    static func armored(_ der: [UInt8]) -> String { PEMArmor.encode(der, label: "OPENSSH PRIVATE KEY", width: 70) }

    func refusal(_ text: String, private: Bool = true) -> String? {
        let p = file(text)
        defer { try? FileManager.default.removeItem(atPath: p) }
        do {
            if `private` { _ = try TraceSigningKey.read(path: p) } else { _ = try TracePublicKey.read(path: p) }
            return nil
        } catch { return error.message }
    }

    @Test func everyFormatReadsTheSameKey() throws {
        for text in [keyA.openSSHText(), keyA.openSSHText(comment: ""), keyA.pkcs8Text, keyA.text + "\n"] {
            let p = file(text)
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(try TraceSigningKey.read(path: p).publicKey == keyA.publicKey, "\(text)")
        }
        for text in [keyA.publicKey.openSSHLine(), keyA.publicKey.openSSHLine(comment: "a comment with spaces"),
                     keyA.publicKey.openSSHLine(comment: ""), keyA.publicKey.text] {
            let p = file(text + "\n")
            defer { try? FileManager.default.removeItem(atPath: p) }
            #expect(try TracePublicKey.read(path: p) == keyA.publicKey, "\(text)")
        }
        // RFC 8410 §10.3's example private key, and the PKCS#8 DER its prefix fixes.
        let rfc = "-----BEGIN PRIVATE KEY-----\n" + "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n"
            + "-----END PRIVATE KEY-----\n"
        let p = file(rfc)
        defer { try? FileManager.default.removeItem(atPath: p) }
        let key = try TraceSigningKey.read(path: p)
        #expect(key.seed == hexBytes("d4ee72dbf913584ad5b6d8f1f769f8ad3afe7c28cbf1d4fbe097a88f44755842"))
        #expect(key.pkcs8Text == rfc)
    }

    /// The wire-format blob and the fingerprint of a known key (RFC 8032 §7.1 test 1's public key);
    /// the fingerprint is the one `ssh-keygen -l` prints for that line.
    @Test func openSSHBlobAndFingerprint() throws {
        let raw = hexBytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let key = try TracePublicKey(raw: raw)
        #expect(OpenSSHKey.blob(raw) == [0, 0, 0, 11] + Array("ssh-ed25519".utf8) + [0, 0, 0, 32] + raw)
        #expect(key.openSSHLine(comment: "c") 
                == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea c")
        #expect(key.fingerprint == "SHA256:bbXpuKG6zhzdmnxq256TlqzFBzRl2f6OOg722cYNbU8")
    }

    @Test func hostilePrivateKeysAreRefused() throws {
        #expect(refusal(keyA.publicKey.openSSHLine())?.contains("cannot sign") == true)
        // Encrypted keys: a message saying how to decrypt.
        var der = try PEMArmor.decode(keyA.openSSHText(), label: "OPENSSH PRIVATE KEY", source: "t")
        let plain = der
        // cipher "none" → "aes2" (same length), kdf untouched: refused as encrypted.
        der.replaceSubrange(19..<23, with: Array("aes2".utf8))
        let enc = Self.armored(der)
        #expect(refusal(enc)?.contains("ssh-keygen -p") == true, "\(refusal(enc) ?? "")")
        let pkcs8Encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        #expect(refusal(pkcs8Encrypted)?.contains("openssl pkey") == true)
        // Every truncation and every byte set to 0xFF (lengths of 4 GiB included): refused, no trap.
        for n in 0..<plain.count {
            #expect(refusal(Self.armored(Array(plain[..<n]))) != nil, "cut at \(n)")
        }
        for i in 0..<plain.count {
            var v = plain
            v[i] ^= 0xFF
            // A changed comment byte or check pair leaves a readable key; anything else is refused.
            if let m = refusal(Self.armored(v)) { #expect(!m.contains("\n")) }
        }
        // The public key swapped for another: the halves disagree.
        var swapped = plain
        let pubA = keyA.publicKey.raw, pubB = keyB.publicKey.raw
        var k = 0
        while k + 32 <= swapped.count {
            if Array(swapped[k..<k + 32]) == pubA { swapped.replaceSubrange(k..<k + 32, with: pubB) }
            k += 1
        }
        #expect(refusal(Self.armored(swapped))?.contains("not the private key") == true)
        // PKCS#8 of another algorithm (X25519's OID 1.3.101.110) or with extra bytes.
        var x25519 = PKCS8Key.prefix + keyA.seed
        x25519[11] = 0x6E
        #expect(refusal(PEMArmor.encode(x25519, label: "PRIVATE KEY", width: 64))?.contains("RFC 8410") == true)
        #expect(refusal(PEMArmor.encode(PKCS8Key.prefix + keyA.seed + [0], label: "PRIVATE KEY", width: 64)) != nil)
        #expect(refusal("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")?.contains("base64") == true)
        #expect(refusal("-----BEGIN PRIVATE KEY-----\n") != nil)
    }
}
