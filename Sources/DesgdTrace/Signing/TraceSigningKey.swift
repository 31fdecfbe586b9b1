import DesgdNumerics
import Crypto
import Foundation

/// An Ed25519 public key (RFC 8032) that verifies trace signatures (traces/FORMAT.md §3.6).
///
/// Files: OpenSSH's line `ssh-ed25519 <base64 of the wire-format blob> [comment]` (what
/// `desgd-key generate` and `ssh-keygen` write), or desgd 0.10's `desgd-ed25519 <base64 of the 32
/// bytes>`. Its fingerprint, what the audit prints and `--trust` compares, is OpenSSH's:
/// `SHA256:` and the unpadded base64 of SHA-256 of the wire-format blob (`ssh-keygen -l` prints
/// the same).
public struct TracePublicKey: Sendable, Equatable, Hashable {
    /// The 32 bytes of the key as RFC 8032 encodes it.
    public let raw: [UInt8]

    /// Refuses anything but a valid key under the strict rules of ``Ed25519Strictness``: 32 bytes
    /// that decode to a point of the curve, not of small order.
    public init(raw: [UInt8]) throws(TraceError) {
        if let problem = Ed25519Strictness.publicKeyProblem(raw) {
            throw .corrupted("not a valid Ed25519 public key: \(problem)")
        }
        self.raw = raw
    }

    /// A key known to be valid (derived from a private key).
    init(validated raw: [UInt8]) { self.raw = raw }

    /// The prefix of desgd 0.10's public key files, still read.
    public static let textPrefix = "desgd-ed25519"

    /// `desgd-ed25519 <base64>` (desgd 0.10's form), without a newline.
    public var text: String { "\(Self.textPrefix) \(Data(raw).base64EncodedString())" }

    /// `ssh-ed25519 <base64 blob> comment`, without a newline: what `desgd-key` writes.
    public func openSSHLine(comment: String = "desgd") -> String { OpenSSHKey.publicLine(raw, comment: comment) }

    public var fingerprint: String { Self.fingerprint(raw) }

    /// OpenSSH's fingerprint: `SHA256:` and the base64, without `=` padding, of SHA-256 of the
    /// wire-format public key blob (RFC 4253 §6.6, RFC 8709 §4).
    public static func fingerprint(_ raw: [UInt8]) -> String {
        let b64 = Data(SHA256.hash(data: OpenSSHKey.blob(raw))).base64EncodedString()
        return "SHA256:" + b64.replacingOccurrences(of: "=", with: "")
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`, verified strictly: R
    /// canonical and not of small order and S < L (``Ed25519Strictness``), then RFC 8032 §5.1.7.
    public func verifies(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard Ed25519Strictness.signatureIsStrict(signature),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    /// Parses a public key file's text (surrounding white space allowed): an OpenSSH line or a
    /// desgd 0.10 line. `source` names the input in errors.
    public static func parse(_ text: String, source: String) throws(TraceError) -> TracePublicKey {
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        if line.hasPrefix("-----BEGIN") || fields.first.map(String.init) == TraceSigningKey.textPrefix {
            throw .usage("\(source): it is a private key: pass its public key "
                         + "(its .pub file, or what desgd-key public prints)")
        }
        let raw: [UInt8]
        if fields.first.map(String.init) == OpenSSHKey.keyType, fields.count >= 2, !line.contains("\n") {
            raw = try OpenSSHKey.publicKey(base64: fields[1], source: source)
        } else if fields.first.map(String.init) == textPrefix {
            raw = try KeyText.decode(line, prefix: textPrefix, source: source)
        } else {
            throw .corrupted("\(source) is not an Ed25519 public key: expected one line "
                             + "`ssh-ed25519 <base64> [comment]` "
                             + "(create keys with desgd-key generate or ssh-keygen -t ed25519)")
        }
        do { return try TracePublicKey(raw: raw) } catch { throw .corrupted("\(source): \(error.explanation)") }
    }

    /// Reads and parses a public key file (a regular file of at most ``KeyText/maximumFileSize`` bytes).
    public static func read(path: String) throws(TraceError) -> TracePublicKey {
        try parse(KeyText.readFile(path), source: path)
    }
}

/// An Ed25519 private key that signs traces (`desgd-record --sign`).
///
/// Files read: OpenSSH's unencrypted `-----BEGIN OPENSSH PRIVATE KEY-----` (``OpenSSHKey``, what
/// `ssh-keygen -t ed25519 -N ''` and `desgd-key generate` write), PKCS#8 `-----BEGIN PRIVATE
/// KEY-----` (``PKCS8Key``, what `openssl genpkey -algorithm ed25519` writes), and desgd 0.10's
/// one line `desgd-ed25519-private <base64 of the 32-byte seed>`. Written with mode 0600.
///
/// Determinism: RFC 8032 signatures are a function of key and message, and swift-crypto on Linux
/// (BoringSSL) computes them so, so a signed trace is as reproducible as an unsigned one. Apple's
/// CryptoKit randomises its Ed25519 signatures: on macOS two signed recordings differ from the
/// first signature record on (both verify).
public struct TraceSigningKey: Sendable {
    /// The RFC 8032 private key (kept as bytes: swift-crypto's key type is not `Sendable`).
    let seed: [UInt8]
    public let publicKey: TracePublicKey

    /// The prefix of desgd 0.10's private key files, still read.
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

    /// `desgd-ed25519-private <base64>` (desgd 0.10's form), without a newline.
    public var text: String { "\(Self.textPrefix) \(Data(seed).base64EncodedString())" }

    /// The unencrypted OpenSSH private key file's text (what `desgd-key generate` writes).
    public func openSSHText(comment: String = "desgd") -> String {
        OpenSSHKey.privateText(seed: seed, raw: publicKey.raw, comment: comment,
                               check: UInt32.random(in: 0...UInt32.max))
    }

    /// The PKCS#8 PEM text (RFC 8410), as `openssl genpkey -algorithm ed25519` writes it.
    public var pkcs8Text: String { PKCS8Key.text(seed: seed) }

    /// The Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: [UInt8]) throws(TraceError) -> [UInt8] {
        do { return Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: message)) } catch {
            throw .io("Ed25519 signing failed: \(error)")
        }
    }

    /// Parses a private key file's text in any of the forms read. `source` names the input in errors.
    public static func parse(_ text: String, source: String) throws(TraceError) -> TraceSigningKey {
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = line.split(separator: " ", maxSplits: 1).first.map(String.init)
        let seed: [UInt8]
        if line.hasPrefix("-----BEGIN \(OpenSSHKey.privateLabel)-----") {
            seed = try OpenSSHKey.seed(line, source: source)
        } else if line.hasPrefix("-----BEGIN \(PKCS8Key.label)-----") {
            seed = try PKCS8Key.seed(line, source: source)
        } else if line.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw .usage("\(source) is encrypted: decrypt a copy with openssl pkey -in \(source) -out COPY, "
                         + "and sign with the copy")
        } else if first == textPrefix {
            seed = try KeyText.decode(line, prefix: textPrefix, source: source)
        } else if first == OpenSSHKey.keyType || first == TracePublicKey.textPrefix {
            throw .usage("\(source): it is a public key, which cannot sign: pass the private key file")
        } else {
            throw .corrupted("\(source) is not an Ed25519 private key: expected an OpenSSH (ssh-keygen -t ed25519) "
                             + "or PKCS#8 (openssl genpkey -algorithm ed25519) private key file")
        }
        do { return try TraceSigningKey(seed: seed) } catch {
            throw .corrupted("\(source): the key is not a valid Ed25519 private key")
        }
    }

    /// Reads and parses a private key file (a regular file of at most ``KeyText/maximumFileSize`` bytes).
    public static func read(path: String) throws(TraceError) -> TraceSigningKey {
        try parse(KeyText.readFile(path), source: path)
    }

    /// Writes the key to `path` in OpenSSH's unencrypted format (mode 0600, refusing an existing
    /// file) and its public key line to `path.pub` (mode 0644, refusing an existing file too,
    /// checked first so that nothing is left half-written): the files ssh-keygen writes, which
    /// ssh-keygen and other tools read.
    public func write(to path: String) throws(TraceError) {
        let pub = path + ".pub"
        for p in [path, pub] where FileManager.default.fileExists(atPath: p) {
            throw .io("\(p) already exists: choose another \(Setting.output) (a key is never overwritten)")
        }
        try KeyText.create(path, openSSHText(), mode: 0o600)
        try KeyText.create(pub, publicKey.openSSHLine() + "\n", mode: 0o644)
    }
}

/// The one-line text form of both key files, read as hostile input.
public enum KeyText {
    /// A key line is under 100 bytes; a larger file is not a key (and is not read whole).
    public static let maximumFileSize = 4096

    /// The 32 bytes of desgd 0.10's one-line form: `prefix`, one space, base64 of 32 bytes.
    static func decode(_ line: String, prefix: String, source: String) throws(TraceError) -> [UInt8] {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[0] == prefix else {
            throw .corrupted("\(source) is not a key: expected one line `\(prefix) <base64>`")
        }
        guard let data = Data(base64Encoded: String(fields[1])), data.count == 32 else {
            throw .corrupted("\(source): the key is not 32 bytes of base64 after `\(prefix) `")
        }
        return Array(data)
    }

    /// The file's text: at most ``maximumFileSize`` bytes of UTF-8 of a regular file. Opened
    /// without blocking (O_NONBLOCK: a FIFO without a writer would block `open`) and refused at
    /// once unless fstat says it is a regular file (a FIFO, device or directory is not a key);
    /// read without following the file's own idea of its size.
    static func readFile(_ path: String) throws(TraceError) -> String {
        let bytes: [UInt8]
        do { bytes = try SmallFile.read(path, limit: maximumFileSize) } catch {
            switch error {
            case .cannotOpen: throw .io("cannot open key \(path): \(error.systemMessage)")
            case .cannotStat: throw .io("cannot stat key \(path): \(error.systemMessage)")
            case .notRegular:
                throw .usage("\(path) is not a regular file (a FIFO, device or directory): give the path of a key file")
            case .cannotRead: throw .io("cannot read key \(path): \(error.systemMessage)")
            case .tooLarge: throw .corrupted("\(path) is larger than \(maximumFileSize) bytes: not a key file")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .corrupted("\(path) is not text: not a key file")
        }
        return text
    }

    /// Creates `path` with `mode` (refusing an existing file) and writes `text`.
    static func create(_ path: String, _ text: String, mode: mode_t) throws(TraceError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST {
                throw .io("\(path) already exists: choose another \(Setting.output) (a key is never overwritten)")
            }
            throw .io("cannot create \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        // The umask may have cleared bits of `mode`, never added: set exactly `mode`.
        guard fchmod(fd, mode) == 0 else {
            throw .io("cannot set the mode of \(path): \(String(cString: strerror(errno)))")
        }
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
