import DesgdTrace
import Foundation
import Testing

/// Keys and signatures through the real executables and the standard tools: OpenSSH's
/// `ssh-keygen`, `openssl`, and the Python reader (python/src/desgd/trace.py with the cryptography
/// package). Runs where the tools are installed (Debian: openssh-client, openssl,
/// python3-cryptography), and always in CI (CI=true), where a missing tool is a failure.
@Suite struct KeyCommandTests {
    static let sshKeygen = "/usr/bin/ssh-keygen", openssl = "/usr/bin/openssl"
    static let python = ProcessInfo.processInfo.environment["DESGD_PYTHON"] ?? "/usr/bin/python3"
    static let traces = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces")

    static func works(_ tool: String, _ arguments: [String]) -> Bool {
        if ProcessInfo.processInfo.environment["CI"] == "true" { return true }
        guard let outcome = try? run(tool, arguments, in: NSTemporaryDirectory()) else { return false }
        return outcome.status == 0
    }
    static let sshTools = works(sshKeygen, ["-l", "-f", "/dev/null"])
        || FileManager.default.isExecutableFile(atPath: sshKeygen)
    static let opensslTool = works(openssl, ["version"])
    static let pythonCryptography = works(python, ["-c", "import cryptography, zstandard, numpy"])

    /// Runs `tool` (an absolute path) and waits at most `timeout` seconds: a hang is a failure
    /// (status -1), not a stuck test.
    static func run(_ tool: String, _ arguments: [String], in directory: String,
                    timeout: Double = 120) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let file = directory + "/.out-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        try p.run()
        if done.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            done.wait()
            try handle.close()
            return (-1, "timed out after \(timeout) s")
        }
        try handle.close()
        return (p.terminationStatus, (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
    }

    static func desgd(_ name: String, _ arguments: [String], in directory: String,
                      timeout: Double = 300) throws -> (status: Int32, output: String) {
        try run(Executables.directory.appendingPathComponent(name).path, arguments, in: directory, timeout: timeout)
    }

    static func directory() throws -> String {
        let d = NSTemporaryDirectory() + "desgd-keys-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// A short signed recording with `key`, written to `out` in `d`.
    static func record(signedWith key: String, out: String, in d: String) throws {
        let r = try desgd("desgd-record", ["--synthetic", "300", "--honest", "10", "--byzantine", "1",
                                           "--batch", "4", "--rounds", "2", "--eval-every", "1", "--threads", "1",
                                           "--keyframe-every", "1", "--out", out, "--sign", key], in: d)
        #expect(r.status == 0, "\(r.output)")
    }

    /// The trace's bytes with every signature record's payload changed by `edit` and every digest
    /// recomputed (what anyone can do: the chain is unkeyed).
    static func rechained(_ bytes: [UInt8], edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var out = Array(bytes[0..<TraceFormat.signatureSize])
        var previous = TraceFormat.chainRoot(of: bytes[0..<TraceFormat.signatureSize])
        var offset = TraceFormat.signatureSize
        while offset + TraceFormat.recordHeaderSize <= bytes.count,
              case .success(var h) = RecordHeader.parse(bytes[offset ..< offset + TraceFormat.recordHeaderSize],
                                                        fileMinor: TraceFormat.minor) {
            let p0 = offset + TraceFormat.recordHeaderSize
            var payload = Array(bytes[p0 ..< p0 + Int(h.payloadLength)])
            if h.type == .signature { edit(&payload) }
            h.previousDigest = previous
            let header = h.bytes
            let digest = payload.withUnsafeBytes { RecordHeader.digest(header: header, payload: $0) }
            out += header + payload + digest
            previous = digest
            offset = p0 + payload.count + TraceFormat.digestSize
        }
        return out
    }

    static let identity: [UInt8] = [1] + [UInt8](repeating: 0, count: 31)

    /// The auditor's forgery on the real commands: the identity point as the key and R = identity,
    /// S = 0 as every signature. The key file is refused (exit 2, one line), and the forged trace
    /// is not trusted under the real key either (exit 1); `desgd-audit` alone reports it invalid.
    @Test func identityKeyForgeryIsRefused() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let gen = try Self.desgd("desgd-key", ["generate", "--out", "lab.key"], in: d)
        #expect(gen.status == 0, "\(gen.output)")
        try Self.record(signedWith: "lab.key", out: "t.trace", in: d)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: d + "/t.trace")))
        let forged = Self.rechained(bytes) { payload in
            payload.replaceSubrange(24..<56, with: Self.identity)
            payload.replaceSubrange(88..<152, with: Self.identity + [UInt8](repeating: 0, count: 32))
        }
        _ = FileManager.default.createFile(atPath: d + "/forged.trace", contents: Data(forged))
        let line = OpenSSHKey.publicLine(Self.identity, comment: "forger") + "\n"
        _ = FileManager.default.createFile(atPath: d + "/identity.pub", contents: Data(line.utf8))
        let legacy = "desgd-ed25519 " + Data(Self.identity).base64EncodedString() + "\n"
        _ = FileManager.default.createFile(atPath: d + "/identity-legacy.pub", contents: Data(legacy.utf8))
        for key in ["identity.pub", "identity-legacy.pub"] {
            let trusted = try Self.desgd("desgd-audit", ["forged.trace", "--trust", key], in: d)
            #expect(trusted.status == 2, "\(key): \(trusted.output)")
            #expect(trusted.output.contains("small order") && !trusted.output.contains("whole file"),
                    "\(trusted.output)")
            let fingerprint = try Self.desgd("desgd-key", ["fingerprint", key], in: d)
            #expect(fingerprint.status == 2 && fingerprint.output.contains("small order"), "\(fingerprint.output)")
        }
        let real = try Self.desgd("desgd-audit", ["forged.trace", "--trust", "lab.key.pub"], in: d)
        #expect(real.status == 1 && real.output.contains("SIGNATURE INVALID"), "\(real.output)")
        let plain = try Self.desgd("desgd-audit", ["forged.trace"], in: d)
        #expect(plain.output.contains("small order") && !plain.output.contains("whole file"), "\(plain.output)")
        let genuine = try Self.desgd("desgd-audit", ["t.trace", "--trust", "lab.key.pub"], in: d)
        #expect(genuine.status == 0 && genuine.output.contains("whole file"), "\(genuine.output)")
    }

    /// A key that is not a point of the curve (y = 2): exit 2, one line naming the problem.
    @Test func keyOffTheCurveIsRefused() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let line = OpenSSHKey.publicLine([2] + [UInt8](repeating: 0, count: 31), comment: "") + "\n"
        _ = FileManager.default.createFile(atPath: d + "/bad.pub", contents: Data(line.utf8))
        let r = try Self.desgd("desgd-key", ["fingerprint", "bad.pub"], in: d)
        #expect(r.status == 2 && r.output == "desgd-key: bad.pub: not a valid Ed25519 public key: "
                + "not a point of the curve (RFC 8032 §5.1.3 decoding fails)\n", "\(r.output)")
    }

    /// FIFOs (and directories, devices) as keys or traces: refused at once, exit 2, one line.
    @Test func fifosAreRefusedAtOnce() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        #expect(mkfifo(d + "/fifo", 0o600) == 0)
        let sample = Self.traces.appendingPathComponent("samples/v1.0-desgd-cclip-ipm-small-3r.trace").path
        let cases: [(String, [String])] = [
            ("desgd-key", ["fingerprint", "fifo"]), ("desgd-key", ["public", "fifo"]),
            ("desgd-audit", [sample, "--trust", "fifo"]), ("desgd-audit", ["fifo"]),
            ("desgd-replay", ["fifo", "--verify"]),
            ("desgd-record", ["--synthetic", "300", "--rounds", "1", "--sign", "fifo", "--out", "x.trace"]),
            ("desgd-key", ["fingerprint", "/dev/zero"]), ("desgd-audit", [d]),
        ]
        for (program, arguments) in cases {
            let start = Date()
            let r = try Self.desgd(program, arguments, in: d, timeout: 20)
            #expect(r.status == 2, "\(program) \(arguments): \(r.output)")
            #expect(r.output.contains("not a regular file") && r.output.split(separator: "\n").count == 1,
                    "\(r.output)")
            #expect(Date().timeIntervalSince(start) < 10)
        }
    }

    /// OpenSSH's tools and desgd agree: a key of ssh-keygen signs a trace that desgd-audit trusts
    /// under its .pub, ssh-keygen -l prints desgd-key's fingerprint, and ssh-keygen reads the
    /// private key desgd-key generate writes (ssh-keygen -y derives the same public key line).
    @Test(.enabled(if: sshTools, "ssh-keygen (openssh-client)")) func sshKeygenKeys() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let made = try Self.run(Self.sshKeygen, ["-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f", "ssh.key"], in: d)
        #expect(made.status == 0, "\(made.output)")
        try Self.record(signedWith: "ssh.key", out: "ssh.trace", in: d)
        let audit = try Self.desgd("desgd-audit", ["ssh.trace", "--trust", "ssh.key.pub"], in: d)
        #expect(audit.status == 0 && audit.output.contains("whole file"), "\(audit.output)")
        let gen = try Self.desgd("desgd-key", ["generate", "--out", "desgd.key"], in: d)
        #expect(gen.status == 0, "\(gen.output)")
        for key in ["ssh.key", "desgd.key"] {
            let ours = try Self.desgd("desgd-key", ["fingerprint", key + ".pub"], in: d)
            let theirs = try Self.run(Self.sshKeygen, ["-l", "-f", key + ".pub"], in: d)
            let fingerprint = theirs.output.split(separator: " ").dropFirst().first.map(String.init)
            #expect(ours.status == 0 && theirs.status == 0 && fingerprint != nil && ours.output == fingerprint! + "\n",
                    "\(key): desgd \(ours.output), ssh-keygen \(theirs.output)")
            let derived = try Self.run(Self.sshKeygen, ["-y", "-f", key], in: d)
            let pub = try String(contentsOfFile: d + "/" + key + ".pub", encoding: .utf8)
            let pubFields = pub.split(separator: " ").prefix(2)
            #expect(derived.status == 0 && derived.output.split(separator: " ").prefix(2) == pubFields,
                    "\(key): \(derived.output) vs \(pub)")
            let printed = try Self.desgd("desgd-key", ["public", key], in: d)
            #expect(printed.status == 0 && printed.output.split(separator: " ").prefix(2) == pubFields)
        }
        // A passphrase: refused with the way out.
        let locked = try Self.run(Self.sshKeygen, ["-q", "-t", "ed25519", "-N", "secret", "-f", "locked.key"], in: d)
        #expect(locked.status == 0, "\(locked.output)")
        let refused = try Self.desgd("desgd-record", ["--synthetic", "300", "--rounds", "1", "--sign", "locked.key",
                                                      "--out", "x.trace"], in: d)
        #expect(refused.status == 2 && refused.output.contains("ssh-keygen -p"), "\(refused.output)")
    }

    /// A key of `openssl genpkey -algorithm ed25519` (PKCS#8) signs a trace that desgd-audit trusts
    /// under the public key line `desgd-key public` prints, which is openssl's public key.
    @Test(.enabled(if: opensslTool, "openssl")) func opensslKeys() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let made = try Self.run(Self.openssl, ["genpkey", "-algorithm", "ed25519", "-out", "o.pem"], in: d)
        #expect(made.status == 0, "\(made.output)")
        let pub = try Self.desgd("desgd-key", ["public", "o.pem"], in: d)
        #expect(pub.status == 0 && pub.output.hasPrefix("ssh-ed25519 "), "\(pub.output)")
        _ = FileManager.default.createFile(atPath: d + "/o.pem.pub", contents: Data(pub.output.utf8))
        try Self.record(signedWith: "o.pem", out: "o.trace", in: d)
        let audit = try Self.desgd("desgd-audit", ["o.trace", "--trust", "o.pem.pub"], in: d)
        #expect(audit.status == 0 && audit.output.contains("whole file"), "\(audit.output)")
        // openssl's own view of the public key: the last 32 bytes of its DER (RFC 8410).
        let der = try Self.run(Self.openssl, ["pkey", "-in", "o.pem", "-pubout", "-outform", "DER",
                                              "-out", "o.pub.der"], in: d)
        #expect(der.status == 0)
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: d + "/o.pub.der"))).suffix(32)
        #expect(pub.output == OpenSSHKey.publicLine(Array(raw), comment: "desgd") + "\n")
    }

    /// The Python reader verifies signatures on its own (check 7 of python/src/desgd/check_trace.py):
    /// a genuine trace passes under its key, the identity-key forgery and another key fail.
    @Test(.enabled(if: pythonCryptography, "python3 with cryptography, zstandard and numpy"))
    func pythonVerifiesSignatures() throws {
        let d = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        for k in ["a.key", "b.key"] {
            #expect(try Self.desgd("desgd-key", ["generate", "--out", k], in: d).status == 0)
        }
        try Self.record(signedWith: "a.key", out: "t.trace", in: d)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: d + "/t.trace")))
        let forged = Self.rechained(bytes) { payload in
            payload.replaceSubrange(24..<56, with: Self.identity)
            payload.replaceSubrange(88..<152, with: Self.identity + [UInt8](repeating: 0, count: 32))
        }
        _ = FileManager.default.createFile(atPath: d + "/forged.trace", contents: Data(forged))
        let identityLine = OpenSSHKey.publicLine(Self.identity, comment: "") + "\n"
        _ = FileManager.default.createFile(atPath: d + "/identity.pub", contents: Data(identityLine.utf8))
        let package = Self.traces.deletingLastPathComponent().appendingPathComponent("python/src/desgd")
        let checker = package.appendingPathComponent("check_trace.py").path
        let good = try Self.run(Self.python, [checker, "t.trace", "--trust", "a.key.pub"], in: d)
        #expect(good.status == 0 && good.output.contains("7. signatures") && good.output.contains("whole file"),
                "\(good.output)")
        let reader = package.appendingPathComponent("trace.py").path
        // A signature that does not verify is a failed check (exit 1); a key file that is no valid key is bad
        // input (exit 2, docs/bad-input.md).
        let bad: [(String, String, String, Int32)] = [
            ("t.trace", "b.key.pub", "not by the trusted key", 1), ("forged.trace", "a.key.pub", "small order", 1),
            ("forged.trace", "identity.pub", "small order", 2),
        ]
        for (trace, key, reason, status) in bad {
            let r = try Self.run(Self.python, [reader, trace, "--trust", key], in: d)
            #expect(r.status == status && r.output.contains(reason), "\(trace) \(key): \(r.output)")
        }
        let fifo = d + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let refused = try Self.run(Self.python, [reader, "fifo"], in: d, timeout: 20)
        #expect(refused.status == 2 && refused.output.contains("not a regular file"), "\(refused.output)")
    }
}
