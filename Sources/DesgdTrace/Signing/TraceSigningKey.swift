import Crypto
import Foundation

/// An Ed25519 public key (RFC 8032) that verifies trace signatures (traces/FORMAT.md §3.6).
///
/// Text form, one line: `desgd-ed25519 <base64 of the 32-byte key>`. Its fingerprint, what the
/// audit prints and `--trust` compares, is `SHA256:` followed by the hex of the first 16 bytes of
/// SHA-256 of the 32 raw key bytes (128 bits: a second key with the same fingerprint is a 2¹²⁸
/// search).
public struct TracePublicKey: Sendable, Equatable, Hashable {
    /// The 32 bytes of the key as RFC 8032 encodes it.
    public let raw: [UInt8]

    /// Refuses anything but 32 bytes that encode a point of the curve.
    public init(raw: [UInt8]) throws(TraceError) {
        guard raw.count == 32, (try? Curve25519.Signing.PublicKey(rawRepresentation: raw)) != nil else {
            throw .corrupted("not an Ed25519 public key (\(raw.count) bytes)")
        }
        self.raw = raw
    }

    /// A key known to be valid (derived from a private key).
    init(validated raw: [UInt8]) { self.raw = raw }

    public static let textPrefix = "desgd-ed25519"

    /// `desgd-ed25519 <base64>`, without a newline.
    public var text: String { "\(Self.textPrefix) \(Data(raw).base64EncodedString())" }

    public var fingerprint: String { Self.fingerprint(raw) }

    /// `SHA256:` and the hex of the first 16 bytes of SHA-256 of `raw`.
    public static func fingerprint(_ raw: [UInt8]) -> String {
        "SHA256:" + SHA256.hash(data: raw).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func verifies(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    /// Parses the text form (surrounding white space allowed). `source` names the input in errors.
    public static func parse(_ text: String, source: String) throws(TraceError) -> TracePublicKey {
        let raw = try KeyText.decode(text, prefix: textPrefix, source: source, otherPrefix: TraceSigningKey.textPrefix,
                                     otherHint: "it is a private key: pass its .pub file")
        do { return try TracePublicKey(raw: raw) } catch {
            throw .corrupted("\(source): the key is not a valid Ed25519 public key")
        }
    }

    /// Reads and parses a public key file (at most ``KeyText/maximumFileSize`` bytes).
    public static func read(path: String) throws(TraceError) -> TracePublicKey {
        try parse(KeyText.readFile(path), source: path)
    }
}

/// An Ed25519 private key that signs traces (`desgd-record --sign`).
///
/// Text form, one line: `desgd-ed25519-private <base64 of the 32-byte seed>` (the RFC 8032 private
/// key; the public key is derived from it). Written with mode 0600.
///
/// Determinism: RFC 8032 signatures are a function of key and message, and swift-crypto on Linux
/// (BoringSSL) computes them so, so a signed trace is as reproducible as an unsigned one. Apple's
/// CryptoKit randomises its Ed25519 signatures: on macOS two signed recordings differ from the
/// first signature record on (both verify).
public struct TraceSigningKey: Sendable {
    /// The RFC 8032 private key (kept as bytes: swift-crypto's key type is not `Sendable`).
    let seed: [UInt8]
    public let publicKey: TracePublicKey

    public static let textPrefix = "desgd-ed25519-private"

    init(_ key: Curve25519.Signing.PrivateKey) {
        seed = Array(key.rawRepresentation)
        publicKey = TracePublicKey(validated: Array(key.publicKey.rawRepresentation))
    }

    /// A new key from the system's cryptographic random source.
    public static func generate() -> TraceSigningKey { TraceSigningKey(Curve25519.Signing.PrivateKey()) }

    /// The key whose RFC 8032 seed is `seed` (32 bytes).
    public init(seed: [UInt8]) throws(TraceError) {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw .corrupted("not an Ed25519 private key (\(seed.count) bytes)")
        }
        self.init(key)
    }

    /// `desgd-ed25519-private <base64>`, without a newline.
    public var text: String { "\(Self.textPrefix) \(Data(seed).base64EncodedString())" }

    /// The Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) throws(TraceError) -> [UInt8] {
        do { return Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: message)) } catch {
            throw .io("Ed25519 signing failed: \(error)")
        }
    }

    public static func parse(_ text: String, source: String) throws(TraceError) -> TraceSigningKey {
        let seed = try KeyText.decode(text, prefix: textPrefix, source: source, otherPrefix: TracePublicKey.textPrefix,
                                      otherHint: "it is a public key, which cannot sign: pass the private key file")
        do { return try TraceSigningKey(seed: seed) } catch {
            throw .corrupted("\(source): the key is not a valid Ed25519 private key")
        }
    }

    /// Reads and parses a private key file (at most ``KeyText/maximumFileSize`` bytes).
    public static func read(path: String) throws(TraceError) -> TraceSigningKey {
        try parse(KeyText.readFile(path), source: path)
    }

    /// Writes the key to `path` (mode 0600, refusing an existing file) and its public key to
    /// `path.pub` (mode 0644, refusing an existing file too, checked first so that nothing is left
    /// half-written).
    public func write(to path: String) throws(TraceError) {
        let pub = path + ".pub"
        for p in [path, pub] where FileManager.default.fileExists(atPath: p) {
            throw .io("\(p) already exists: choose another --out (a key is never overwritten)")
        }
        try KeyText.create(path, text + "\n", mode: 0o600)
        try KeyText.create(pub, publicKey.text + "\n", mode: 0o644)
    }
}

/// The one-line text form of both key files, read as hostile input.
public enum KeyText {
    /// A key line is under 100 bytes; a larger file is not a key (and is not read whole).
    public static let maximumFileSize = 4096

    /// The 32 bytes after `prefix` and one space, or an error naming `source` and what to do.
    static func decode(_ text: String, prefix: String, source: String, otherPrefix: String, otherHint: String) throws(TraceError) -> [UInt8] {
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        if fields.first.map(String.init) == otherPrefix { throw .usage("\(source): \(otherHint)") }
        guard fields.count == 2, fields[0] == prefix else {
            throw .corrupted("\(source) is not a desgd key: expected one line `\(prefix) <base64>` (create keys with desgd-key generate)")
        }
        guard let data = Data(base64Encoded: String(fields[1])), data.count == 32 else {
            throw .corrupted("\(source): the key is not 32 bytes of base64 after `\(prefix) `")
        }
        return Array(data)
    }

    /// The file's text: at most ``maximumFileSize`` bytes of UTF-8, read without following the
    /// file's own idea of its size (a device or a pipe is bounded too).
    static func readFile(_ path: String) throws(TraceError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("cannot open key \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: maximumFileSize + 1)
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io("cannot read key \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumFileSize else { throw .corrupted("\(path) is larger than \(maximumFileSize) bytes: not a desgd key") }
        guard let text = String(validating: buffer[0..<count], as: UTF8.self) else {
            throw .corrupted("\(path) is not text: not a desgd key")
        }
        return text
    }

    /// Creates `path` with `mode` (refusing an existing file) and writes `text`.
    static func create(_ path: String, _ text: String, mode: mode_t) throws(TraceError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { throw .io("\(path) already exists: choose another --out (a key is never overwritten)") }
            throw .io("cannot create \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        // The umask may have cleared bits of `mode`, never added: set exactly `mode`.
        guard fchmod(fd, mode) == 0 else { throw .io("cannot set the mode of \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw .io("writing \(path) failed: \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { throw .io("flushing \(path) failed: \(String(cString: strerror(errno)))") }
    }
}
