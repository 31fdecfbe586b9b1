import Crypto
import DesgdNumerics
import Foundation

/// OpenSSH's Ed25519 key formats, which `ssh-keygen` reads and writes:
///
/// - the public key line `ssh-ed25519 <base64 of the blob> [comment]`, the blob being the SSH wire
///   format (RFC 4253 §6.6, RFC 8709 §4): string "ssh-ed25519", string (the 32-byte key);
/// - the unencrypted private key, `-----BEGIN OPENSSH PRIVATE KEY-----` around openssh-key-v1:
///   "openssh-key-v1\0", string cipher "none", string kdf "none", string kdf options "", uint32 1
///   (keys), string (the public blob), string (the private section: uint32 check, uint32 check,
///   string "ssh-ed25519", string public key, string seed ‖ public key, string comment, padding
///   1, 2, 3… to a multiple of 8).
///
/// Every length is checked against the bytes left before use (``SSHWireReader``).
public enum OpenSSHKey {
    public static let keyType = "ssh-ed25519"
    static let privateLabel = "OPENSSH PRIVATE KEY"
    static let magic = Array("openssh-key-v1\0".utf8)

    /// The wire-format public key blob.
    public static func blob(_ raw: [UInt8]) -> [UInt8] {
        var w = SSHWireWriter()
        w.string(Array(keyType.utf8))
        w.string(raw)
        return w.bytes
    }

    /// `ssh-ed25519 <base64 blob> comment`, without a newline.
    public static func publicLine(_ raw: [UInt8], comment: String) -> String {
        "\(keyType) \(Data(blob(raw)).base64EncodedString())" + (comment.isEmpty ? "" : " \(comment)")
    }

    /// The 32-byte key of a public key line (fields already split; the comment is ignored).
    static func publicKey(base64: Substring, source: String) throws(TraceError) -> [UInt8] {
        guard let data = Data(base64Encoded: String(base64)) else {
            throw .corrupted("\(source): the ssh-ed25519 key is not base64")
        }
        var r = SSHWireReader(Array(data))
        guard let type = r.string(), type == Array(keyType.utf8), let key = r.string(), key.count == 32, r.atEnd else {
            throw .corrupted("\(source): the ssh-ed25519 key is not the wire format of a 32-byte Ed25519 key")
        }
        return key
    }

    /// The RFC 8032 private key (32-byte seed) of an unencrypted openssh-key-v1 file.
    static func seed(_ text: String, source: String) throws(TraceError) -> [UInt8] {
        let bytes = try PEMArmor.decode(text, label: privateLabel, source: source)
        let bad = { (what: String) in
            TraceError.corrupted("\(source) is not a valid OpenSSH Ed25519 private key: \(what)")
        }
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw bad("no openssh-key-v1 magic")
        }
        var r = SSHWireReader(Array(bytes[magic.count...]))
        guard let cipher = r.string(), let kdf = r.string(), let _ = r.string(), let keys = r.uint32() else {
            throw bad("truncated")
        }
        guard cipher == Array("none".utf8), kdf == Array("none".utf8) else {
            throw .usage("\(source) is encrypted (cipher \(String(decoding: cipher, as: UTF8.self))): "
                         + Explanation("remove the passphrase of a copy with ssh-keygen -p -N '' -f"
                             + " COPY, and sign with the copy"))
        }
        guard keys == 1 else { throw bad("it holds \(keys) keys, not 1") }
        guard let publicBlob = r.string(), let section = r.string(), r.atEnd else { throw bad("truncated") }
        var p = SSHWireReader(section)
        guard let check1 = p.uint32(), let check2 = p.uint32(), check1 == check2 else {
            throw bad("the check numbers differ")
        }
        guard let type = p.string(), type == Array(keyType.utf8) else { throw bad("not an ssh-ed25519 key") }
        guard let pub = p.string(), pub.count == 32, let pair = p.string(), pair.count == 64, let _ = p.string() else {
            throw bad("the key fields are not 32 and 64 bytes")
        }
        let padding = p.rest
        guard padding.count < 8, padding.enumerated().allSatisfy({ Int($1) == $0 + 1 }) else {
            throw bad("bad padding")
        }
        guard Array(pair[32...]) == pub, publicBlob == blob(pub) else { throw bad("its public key fields disagree") }
        let seed = Array(pair[0..<32])
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed),
              Array(key.publicKey.rawRepresentation) == pub else {
            throw bad("the public key is not the private key's")
        }
        return seed
    }

    /// The openssh-key-v1 text of an unencrypted key (`seed`, its public key `raw`), as ssh-keygen
    /// writes it (70-column base64 lines). `check` is the pair of check numbers.
    static func privateText(seed: [UInt8], raw: [UInt8], comment: String, check: UInt32) -> String {
        var section = SSHWireWriter()
        section.uint32(check)
        section.uint32(check)
        section.string(Array(keyType.utf8))
        section.string(raw)
        section.string(seed + raw)
        section.string(Array(comment.utf8))
        var pad: UInt8 = 1
        while section.bytes.count % 8 != 0 {
            section.bytes.append(pad)
            pad += 1
        }
        var w = SSHWireWriter()
        w.bytes = magic
        w.string(Array("none".utf8))
        w.string(Array("none".utf8))
        w.string([])
        w.uint32(1)
        w.string(blob(raw))
        w.string(section.bytes)
        return PEMArmor.encode(w.bytes, label: privateLabel, width: 70)
    }
}

/// Reads SSH wire-format fields (RFC 4251 §5): every length checked against the bytes left.
struct SSHWireReader {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position == bytes.count }
    var rest: ArraySlice<UInt8> { bytes[position...] }

    mutating func uint32() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        let v = bytes[position..<position + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        position += 4
        return v
    }

    /// A string: a uint32 length and that many bytes, nil when fewer are left.
    mutating func string() -> [UInt8]? {
        let start = position
        guard let n = uint32() else { return nil }
        guard UInt64(n) <= UInt64(bytes.count - position) else {
            position = start
            return nil
        }
        let s = Array(bytes[position..<position + Int(n)])
        position += Int(n)
        return s
    }
}

/// Writes SSH wire-format fields (RFC 4251 §5).
struct SSHWireWriter {
    var bytes: [UInt8] = []

    mutating func uint32(_ v: UInt32) {
        bytes += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    mutating func string(_ s: [UInt8]) {
        uint32(UInt32(s.count))
        bytes += s
    }
}
