import DesgdNumerics
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// Two fixed keys: A signs the recordings, B is the other key (a re-signer, a second signer).
let keyA = try! TraceSigningKey(seed: [UInt8](repeating: 7, count: 32))
let keyB = try! TraceSigningKey(seed: [UInt8](repeating: 9, count: 32))

/// Records ``tinyConfig()`` (7 rounds, keyframes every 3 rounds) signed with `key`.
func recordSigned(_ key: TraceSigningKey?, stopAfter: Int? = nil,
    path: String = temporaryPath("signed")) throws -> String {
    let recorder = try TraceRecorder(path: path, keyframeInterval: 3, signingKey: key)
    let tee = Tee(recorder)
    tee.stopAfter = stopAfter
    _ = try Simulation(config: tinyConfig(), dataset: tinyData).run(observer: tee)
    #expect(recorder.failure == nil)
    return path
}

/// The record table of a trace's bytes: (offset, header) of every complete record.
func recordTable(_ bytes: [UInt8]) -> [(offset: Int, header: RecordHeader)] {
    var out: [(Int, RecordHeader)] = []
    var offset = TraceFormat.signatureSize
    while offset + TraceFormat.recordHeaderSize <= bytes.count,
          case .success(let h) = RecordHeader.parse(bytes[offset ..< offset + TraceFormat.recordHeaderSize],
              fileMinor: TraceFormat.minor) {
        let end = offset + TraceFormat.recordOverhead + Int(h.payloadLength)
        guard end <= bytes.count else { break }
        out.append((offset, h))
        offset = end
    }
    return out
}

/// What an attacker with the file and no key does: `edit` may change any record's payload (same
/// size), then every previous digest and digest is recomputed (they are unkeyed), so the chain
/// holds again. `edit` gets the record's position, its header and the new previous digest.
func rechain(_ bytes: [UInt8],
    edit: (Int, RecordHeader, inout [UInt8], [UInt8]) throws -> Void = { _, _, _, _ in }) rethrows -> [UInt8] {
    var out = Array(bytes[0..<TraceFormat.signatureSize])
    var previous = TraceFormat.chainRoot(of: bytes[0..<TraceFormat.signatureSize])
    var end = TraceFormat.signatureSize
    for (k, (offset, h0)) in recordTable(bytes).enumerated() {
        let p0 = offset + TraceFormat.recordHeaderSize
        var payload = Array(bytes[p0 ..< p0 + Int(h0.payloadLength)])
        try edit(k, h0, &payload, previous)
        var h = h0
        h.previousDigest = previous
        let header = h.bytes
        let digest = payload.withUnsafeBytes { RecordHeader.digest(header: header, payload: $0) }
        out += header + payload + digest
        previous = digest
        end = p0 + payload.count + TraceFormat.digestSize
    }
    return out + bytes[end...]
}

/// Replaces every signature record's signature (those for which `which` holds) by `key`'s over the
/// same fields: a re-signed file.
func resign(_ bytes: [UInt8], with key: TraceSigningKey,
    which: (SignatureRecord) -> Bool = { _ in true }) throws -> [UInt8] {
    try rechain(bytes) { _, h, payload, previous in
        guard h.type == .signature, case .success(let s) = SignatureRecord.parse(payload[...]), which(s) else { return }
        payload = try SignatureRecord.signing(kind: s.kind, interrupted: s.interrupted, roundRecords: s.roundRecords,
                                              precedingRecords: s.precedingRecords, digest: previous, with: key).payload
    }
}

func verdict(_ bytes: [UInt8]) throws -> SignatureReport {
    let path = temporaryPath("variant")
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try TraceReader(path: path).verifySignatures()
}

@Suite struct SigningKeyTests {
    func directory() throws -> String {
        let d = NSTemporaryDirectory() + "desgd-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// `desgd-key generate`'s files: OpenSSH's, the private key mode 0600, the public key one line
    /// `ssh-ed25519 … desgd`, both read back to the same key; existing files are never overwritten.
    @Test func keyFilesRoundTrip() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let key = TraceSigningKey.generate(), path = d + "/lab.key"
        try key.write(to: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let pubText = try String(contentsOfFile: path + ".pub", encoding: .utf8)
        #expect(pubText.hasPrefix("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI") && pubText.hasSuffix(" desgd\n"))
        #expect(pubText.filter { $0 == "\n" }.count == 1)
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----\n"))
        let pub = try TracePublicKey.read(path: path + ".pub")
        #expect(pub == key.publicKey)
        #expect(try TraceSigningKey.read(path: path).publicKey == key.publicKey)
        // OpenSSH's fingerprint: SHA256: and 43 characters of unpadded base64.
        #expect(pub.fingerprint.hasPrefix("SHA256:") && pub.fingerprint.count == 7 + 43
            && !pub.fingerprint.contains("="))
        #expect(keyA.publicKey.fingerprint != keyB.publicKey.fingerprint)
        #expect(throws: TraceError.self) { try TraceSigningKey.generate().write(to: path) }
        #expect(try TracePublicKey.read(path: path + ".pub") == pub)  // untouched
    }

    /// Key files are hostile input: every bad one is a one-line error, never a crash or a read of
    /// an unbounded file.
    @Test func badKeyFilesAreRefused() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        func file(_ name: String, _ bytes: [UInt8]) -> String {
            let p = d + "/" + name
            FileManager.default.createFile(atPath: p, contents: Data(bytes))
            return p
        }
        let b64 = { (n: Int) in Data([UInt8](repeating: 1, count: n)).base64EncodedString() }
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "not an Ed25519 public key"),
            ("raw-ssh", Array("ssh-ed25519 \(b64(32))\n".utf8), "not the wire format"),
            ("short", Array("desgd-ed25519 \(b64(31))\n".utf8), "not 32 bytes"),
            ("long", Array("desgd-ed25519 \(b64(33))\n".utf8), "not 32 bytes"),
            ("junk", Array("desgd-ed25519 !!!!\n".utf8), "not 32 bytes"),
            ("fields", Array("desgd-ed25519 \(b64(32)) extra\n".utf8), "not a key"),
            ("binary", [0xFF, 0xFE, 0x00, 0x80], "not text"),
            ("big", [UInt8](repeating: 0x41, count: 10_000), "larger than"),
            ("private", Array((keyA.text + "\n").utf8), "private key"),
            ("openssh-private", Array(keyA.openSSHText().utf8), "private key"),
            ("identity",
                Array((OpenSSHKey.publicLine([1] + [UInt8](repeating: 0, count: 31), comment: "x") + "\n").utf8),
                "small order"),
            ("not-a-point",
             Array((OpenSSHKey.publicLine([2] + [UInt8](repeating: 0, count: 31), comment: "") + "\n").utf8),
             "not a point"),
        ]
        for (name, bytes, reason) in cases {
            let p = file(name, bytes)
            do {
                _ = try TracePublicKey.read(path: p)
                Issue.record("\(name) was accepted")
            } catch {
                #expect(error.message.contains(reason), "\(name): \(error.message)")
                #expect(!error.message.contains("\n"))
            }
        }
        do {
            _ = try TraceSigningKey.read(path: file("public", Array((keyA.publicKey.text + "\n").utf8)))
            Issue.record("a public key was accepted for signing")
        } catch { #expect(error.message.contains("cannot sign")) }
        #expect(throws: TraceError.self) { try TraceSigningKey.read(path: d + "/missing") }
        for path in [d, "/dev/zero"] {  // a directory, a device: refused before a read
            #expect(throws: TraceError.self) { try TracePublicKey.read(path: path) }
        }
        // Surrounding white space is fine.
        #expect(try TracePublicKey.read(path: file("spaced", Array("  \(keyA.publicKey.text)\r\n\n".utf8)))
            == keyA.publicKey)
    }

    /// The signature record's payload: round trip, the signature over the domain-separated
    /// message, and every malformed field refused by the pure parser.
    @Test func signatureRecordParsing() throws {
        let digest = [UInt8](repeating: 0xAB, count: 32)
        let s = try SignatureRecord.signing(kind: .final, interrupted: true, roundRecords: 12, precedingRecords: 40,
            digest: digest, with: keyA)
        #expect(s.payload.count == SignatureRecord.payloadSize)
        #expect(Array(s.message.prefix(24)) == Array("desgd-trace-signature-v1".utf8))
        guard case .success(let back) = SignatureRecord.parse(s.payload[...]) else {
            Issue.record("did not parse"); return
        }
        #expect(back == s && back.signatureHolds)
        #expect(keyA.publicKey.verifies(s.signature, of: s.message))
        // The signature covers the domain prefix: the bare fields do not verify.
        #expect(!keyA.publicKey.verifies(s.signature, of: s.signedFields))
        // Every signed field matters.
        for offset in [1, 4, 8, 16, 56, 87] {
            var p = s.payload
            p[offset] ^= (offset == 1 ? 3 : 1)
            if case .success(let x) = SignatureRecord.parse(p[...]) { #expect(!x.signatureHolds, "byte \(offset)") }
        }
        var other = s
        other.publicKey = keyB.publicKey
        #expect(!other.signatureHolds)
        let malformed: [(Int, UInt8, String)] = [(0, 2, "algorithm"), (1, 3, "kind"), (2, 1, "reserved"),
            (4, 2, "flags")]
        for (offset, value, reason) in malformed {
            var p = s.payload
            p[offset] = value
            guard case .failure(let f) = SignatureRecord.parse(p[...]) else {
                Issue.record("byte \(offset) = \(value) accepted"); continue
            }
            #expect(f.reason.contains(reason))
        }
        // A checkpoint has no stopped-early flag.
        var checkpoint = s.payload
        checkpoint[1] = SignatureRecord.Kind.checkpoint.rawValue
        #expect(throws: ParseFailure.self) { try SignatureRecord.parse(checkpoint[...]).get() }
        for n in [0, 1, 151, 153, 1000] {
            #expect(throws: ParseFailure.self) { try SignatureRecord.parse([UInt8](repeating: 1, count: n)[...]).get() }
        }
        #if os(Linux)
        // RFC 8032 signing (BoringSSL): the same key and message give the same signature.
        #expect(try keyA.sign(s.message) == s.signature)
        #endif
    }
}

@Suite struct SignedTraceTests {
    static let signed: [UInt8] = {
        let path = try! recordSigned(keyA)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](try! Data(contentsOf: URL(fileURLWithPath: path)))
    }()

    static func offset(of type: RecordType, round: Int? = nil, _ bytes: [UInt8] = signed, nth: Int = 0) -> Int {
        recordTable(bytes).filter {
            $0.header.type == type && (round == nil || $0.header.round == Int64(round!)) }[nth].offset
    }

    /// A signed recording: a signature after every keyframe and a final one before the index;
    /// every signature holds and the verdict is "whole"; the rounds read as in an unsigned trace.
    @Test func validSignatureIsWhole() throws {
        let path = temporaryPath("valid")
        FileManager.default.createFile(atPath: path, contents: Data(Self.signed))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TraceReader(path: path)
        #expect(r.header.formatVersion == [Int(TraceFormat.major), Int(TraceFormat.minor)]
            && r.completeness == .complete(interrupted: false))
        #expect(r.records.map(\.type) == [.header, .keyframe, .signature, .round, .round, .round, .keyframe, .signature,
                                           .round, .round, .round, .keyframe, .signature, .round, .keyframe, .signature,
                                           .signature, .index, .footer])
        #expect(r.verifyChain().holds && r.roundCount == 7)
        for t in 0..<7 { #expect(try r.round(t).content.round == t) }
        let v = r.verifySignatures()
        #expect(v.status == .whole && v.signers == [keyA.publicKey.fingerprint] && v.validSignatures == 5)
        #expect(v.coveredRounds == 7 && v.unsignedRecords == 0 && v.trailingBytes == 0 && v.problem == nil)
        #expect(v.summary == "signed by \(keyA.publicKey.fingerprint), whole file (7 rounds)")
        #expect(v.trustFailure(keyA.publicKey) == nil)
        #expect(v.trustFailure(keyB.publicKey)?.description.contains("not by the trusted key "
            + "\(keyB.publicKey.fingerprint)") == true)
    }

    /// Signing keeps a recording deterministic (RFC 8032 signatures on Linux): the same key gives
    /// the same bytes; without a key there is no signature record and the verdict is "unsigned".
    @Test func sameKeySameBytesAndUnsigned() throws {
        #if os(Linux)
        let again = try recordSigned(keyA)
        defer { try? FileManager.default.removeItem(atPath: again) }
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: again))) == Self.signed)
        #endif
        let plain = try recordSigned(nil)
        defer { try? FileManager.default.removeItem(atPath: plain) }
        let r = try TraceReader(path: plain)
        #expect(!r.records.contains { $0.type == .signature })
        let v = r.verifySignatures()
        #expect(v.status == .unsigned && v.summary == "unsigned" && v.signers.isEmpty)
        #expect(v.trustFailure(keyA.publicKey)?.description.contains("unsigned") == true)
        // A 1.0 trace (traces/samples) is unsigned too.
        let sample = CompatibilityTests.samples.appendingPathComponent("v1.0-desgd-cclip-ipm-small-3r.trace").path
        #expect(try TraceReader(path: sample).verifySignatures().status == .unsigned)
    }

    /// A changed byte: without recomputing digests the chain breaks at that round; with the digests
    /// recomputed the chain holds but the next signature no longer signs the previous record's
    /// digest; a changed signature byte (digests recomputed) fails Ed25519. Each is reported for
    /// what it is.
    @Test func changedByteIsReported() throws {
        let round4 = Self.offset(of: .round, round: 4)
        var flipped = Self.signed
        flipped[round4 + 64 + 100] ^= 1
        let broken = try verdict(flipped)
        #expect(broken.status == .invalid && broken.problem?.contains("digest chain breaks at round 4") == true)
        #expect(broken.summary.contains("valid signatures by \(keyA.publicKey.fingerprint)"
            + " cover the file up to round 2"))
        #expect(broken.trustFailure(keyA.publicKey) != nil)

        let rechained = try verdict(rechain(flipped))
        #expect(rechained.status == .invalid)
        #expect(rechained.problem?.contains("the signature record after keyframe 6 (record 12) signs a digest that is"
            + " not the previous record's") == true)

        let signature = Self.offset(of: .signature, nth: 1)
        var forged = Self.signed
        forged[signature + 64 + 100] ^= 1
        let bad = try verdict(rechain(forged))
        #expect(bad.status == .invalid && bad.problem?.contains("after keyframe 3") == true
            && bad.problem?.contains("does not verify") == true)

        // The footer altered (its digest recomputed): the final signature says otherwise.
        let footer = Self.offset(of: .footer)
        var stopped = Self.signed
        stopped[footer + 64 + 24] = 1
        let altered = try verdict(rechain(stopped))
        #expect(altered.status == .invalid && altered.problem?.contains("the footer was altered") == true)
    }

    /// A truncated file (a killed recorder, or the end cut off) is signed only up to the last
    /// signature it still holds.
    @Test func truncatedFileIsAPrefix() throws {
        let round5 = Self.offset(of: .round, round: 5)
        let cut = try verdict(Array(Self.signed[..<(round5 + 100)]))
        #expect(cut.status == .prefix && cut.coveredRounds == 3 && cut.unsignedRecords == 2 && cut.trailingBytes == 100)
        #expect(cut.summary.hasPrefix("signed by \(keyA.publicKey.fingerprint) up to round 2"
            + " only; 2 later records unsigned"))
        #expect(cut.trustFailure(keyA.publicKey)?.description.contains("up to round 2") == true)

        // Cut right before the final signature: every record is signed by a checkpoint, but
        // nothing says the run ended there.
        let final = Self.offset(of: .signature, nth: 4)
        let unfinished = try verdict(Array(Self.signed[..<final]))
        #expect(unfinished.status == .prefix && unfinished.unsignedRecords == 0 && unfinished.coveredRounds == 7)
        #expect(unfinished.problem?.contains("no final signature") == true)
        #expect(unfinished.trustFailure(keyA.publicKey) != nil)

        // Killed after the final signature, before the index: the whole content is signed.
        let index = Self.offset(of: .index)
        #expect(try verdict(Array(Self.signed[..<index])).status == .whole)

        // A round appended after the final signature (a copy of round 6 as round 7, digests
        // recomputed): the signatures hold, the appended round is not covered.
        let table = recordTable(Self.signed)
        let round6 = table.first { $0.header.type == .round && $0.header.round == 6 }!
        var h = round6.header
        (h.round, h.sequence) = (7, 17)
        let payload = Self.signed[(round6.offset + 64)...].prefix(Int(h.payloadLength) + TraceFormat.digestSize)
        let appended = try verdict(rechain(Array(Self.signed[..<index]) + h.bytes + payload))
        #expect(appended.status == .prefix && appended.coveredRounds == 7 && appended.unsignedRecords == 1)
        #expect(appended.summary.contains("up to round 6 only; 1 later records unsigned"))
    }

    /// Re-signed with another key: the signatures hold, and the audit names the other key, which
    /// `--trust` with the first key refuses. Signed by both keys: reported, never trusted.
    @Test func resignedWithAnotherKey() throws {
        let resigned = try verdict(resign(Self.signed, with: keyB))
        #expect(resigned.status == .whole && resigned.signers == [keyB.publicKey.fingerprint])
        #expect(resigned.trustFailure(keyA.publicKey)
            == "signed by \(keyB.publicKey.fingerprint), not by the trusted key \(keyA.publicKey.fingerprint)")
        #expect(resigned.trustFailure(keyB.publicKey) == nil)

        let both = try verdict(resign(Self.signed, with: keyB) { $0.kind == .final })
        #expect(both.status == .whole && both.signers == [keyA.publicKey.fingerprint, keyB.publicKey.fingerprint])
        #expect(both.summary.contains("signed by 2 keys"))
        #expect(both.trustFailure(keyA.publicKey)?.description.contains("2 keys") == true)
        #expect(both.trustFailure(keyB.publicKey)?.description.contains("2 keys") == true)
    }

    /// A signature over an earlier prefix, copied to a later place (digests recomputed): it signs
    /// the digest of the record it was written after, not of the record before it now.
    @Test func signatureOverAnEarlierPrefix() throws {
        let table = recordTable(Self.signed)
        let checkpoint = table.first { $0.header.type == .signature && $0.header.sequence == 7 }!
        #expect(table[6].header.type == .keyframe && table[6].header.round == 3)
        let size = TraceFormat.recordOverhead + Int(checkpoint.header.payloadLength)
        let copy = Self.signed[checkpoint.offset ..< checkpoint.offset + size]
        // Records 0…9 (up to round 4), then the copied signature record as record 10.
        let round5 = Self.offset(of: .round, round: 5)
        #expect(table[10].offset == round5)
        var h = checkpoint.header
        h.sequence = 10
        let patched = Array(Self.signed[..<round5]) + h.bytes + copy.dropFirst(TraceFormat.recordHeaderSize)
        let v = try verdict(rechain(patched))
        #expect(v.status == .invalid)
        #expect(v.problem?.contains("signs the digest of an earlier prefix, up to keyframe 3 (record 6)") == true)
    }
}

/// The pure verifier on in-memory variants: every single-byte change to a signature, index or
/// footer payload is caught (never "whole"), and nothing traps. The chain is given as holding, as
/// it does for an attacker who recomputes the digests after the change.
@Suite struct SignatureVerifierTests {
    /// The verifier's input collected from bytes (as ``TraceReader/verifySignatures(chain:)`` does).
    static func records(_ bytes: [UInt8]) -> [SignatureVerifier.Record] {
        recordTable(bytes).map { offset, h in
            let size = UInt64(TraceFormat.recordOverhead) + h.payloadLength
            let p0 = offset + TraceFormat.recordHeaderSize
            let payload: ArraySlice<UInt8>? = [.signature, .index, .footer].contains(h.type)
                ? bytes[p0 ..< p0 + Int(h.payloadLength)] : nil
            return .init(entry: IndexEntry(type: h.type, round: Int(h.round), offset: UInt64(offset), size: size),
                         previousDigest: h.previousDigest, payload: payload)
        }
    }

    static func verdict(_ records: [SignatureVerifier.Record]) -> SignatureReport {
        SignatureVerifier.verify(records, chain: .init(verifiedRecords: records.count, failure: nil), trailingBytes: 0)
    }

    @Test func everyByteOfSignaturesIndexAndFooterCounts() throws {
        let original = Self.records(SignedTraceTests.signed)
        #expect(Self.verdict(original).status == .whole)
        var variants = 0
        for (i, r) in original.enumerated() {
            guard let payload = r.payload else { continue }
            for k in 0..<payload.count {
                var changed = Array(payload)
                changed[k] ^= 0x10
                var records = original
                records[i].payload = changed[...]
                let v = Self.verdict(records)
                #expect(v.status == .invalid, "\(r.entry.type.name) record \(i), payload byte \(k): \(v.summary)")
                variants += 1
            }
        }
        #expect(variants == 5 * SignatureRecord.payloadSize + 17 * TraceFormat.indexEntrySize
            + TraceFormat.footerPayloadSize)
        // A payload cut short or lengthened is malformed, not a trap.
        for i in original.indices where original[i].entry.type == .signature || original[i].entry.type == .footer {
            for n in [0, 1, 31, 33, 151, 153] {
                var records = original
                records[i].payload = [UInt8](repeating: 0, count: n)[...]
                #expect(Self.verdict(records).status == .invalid)
            }
        }
    }
}
