import DesgdNumerics
import Foundation

/// Who signed how much of a trace (traces/FORMAT.md §3.6): what `desgd-audit` prints and
/// `--trust` enforces.
public struct SignatureReport: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable {
        /// No signature record.
        case unsigned
        /// Every signature holds and a final signature covers the whole file.
        case whole
        /// Every signature holds but records or bytes after the last one are not covered.
        case prefix
        /// A signature record is malformed or does not verify, or the digest chain breaks in a
        /// signed trace (``problem`` says which).
        case invalid
    }

    public var status: Status
    /// Fingerprints of the keys whose signatures hold, in the order they first sign.
    public var signers: [String]
    /// Valid signature records.
    public var validSignatures: Int
    /// Rounds the last valid signature covers (rounds 0..<coveredRounds), when there is one.
    public var coveredRounds: Int?
    /// Records after the last valid signature that it does not cover (the index and footer that a
    /// final signature vouches for excluded).
    public var unsignedRecords: Int
    /// Bytes after the last record (an incomplete record of a killed recorder).
    public var trailingBytes: UInt64
    /// For ``Status/invalid``: the first failure, naming the record; for ``Status/prefix``: why
    /// the rest is not covered.
    public var problem: String?
    /// The verdict as one sentence.
    public var summary: String

    /// Why `key` does not vouch for the whole file, or nil when it does: signed by that key only,
    /// every signature holds, and a final signature covers every record.
    public func trustFailure(_ key: TracePublicKey) -> Explanation? {
        let expected = key.fingerprint
        switch status {
        case .unsigned: return "the trace is unsigned, \(Setting.trustedKey) needs a trace recorded with "
            + "\(Setting.signingKey) \(expected)"
        case .invalid: return "the signatures do not hold: \(problem ?? summary)"
        case .whole, .prefix:
            if signers.count > 1 {
                return "signed by \(signers.count) keys (\(signers.joined(separator: ", "))); a"
                    + " trusted trace has one signer" }
            if signers != [expected] { return "signed by \(signers.first ?? "?"), not by the trusted key \(expected)" }
            if status == .prefix { return Explanation(summary) }
            return nil
        }
    }
}

/// Verifies the signature records of a trace (traces/FORMAT.md §3.6) from its records in file
/// order. Pure: it sees what a reader collected (types, extents, previous digests, and the
/// payloads of signature, index and footer records) and decides; ``TraceReader/verifySignatures()``
/// collects them from a file.
///
/// It relies on the digest chain for the records it is given as verified: a record's previous
/// digest is then the digest of the record before it, and a signed digest that equals it stands
/// for every byte up to that record.
public struct SignatureVerifier {
    /// One record as the verifier needs it.
    public struct Record: Sendable {
        public var entry: IndexEntry
        /// The previous-digest field of its header.
        public var previousDigest: [UInt8]
        /// The payload of signature, index and footer records (nil for the others).
        public var payload: ArraySlice<UInt8>?

        public init(entry: IndexEntry, previousDigest: [UInt8], payload: ArraySlice<UInt8>?) {
            self.entry = entry
            self.previousDigest = previousDigest
            self.payload = payload
        }
    }

    /// The digest chain as verified: the first `verifiedRecords` records hold; `failure` names the
    /// first that does not.
    public struct Chain: Sendable {
        public var verifiedRecords: Int
        public var failure: String?
        public init(verifiedRecords: Int, failure: String?) {
            self.verifiedRecords = verifiedRecords
            self.failure = failure
        }
    }

    /// `records`: every record found in the file, in order; `chain`: how far their digests hold;
    /// `trailingBytes`: bytes after the last record.
    public static func verify(_ records: [Record], chain: Chain, trailingBytes: UInt64) -> SignatureReport {
        var report = SignatureReport(status: .unsigned, signers: [], validSignatures: 0, coveredRounds: nil,
                                     unsignedRecords: 0,
                                     trailingBytes: trailingBytes, problem: nil, summary: "")
        let verified = min(max(0, chain.verifiedRecords), records.count)
        // Which record a digest belongs to: record i's digest is record i+1's previous digest.
        var digestOwner: [[UInt8]: Int] = [:]
        var rounds: UInt64 = 0
        var last: (index: Int, signature: SignatureRecord)?
        var problem: String?
        for i in 0..<verified {
            let r = records[i]
            if i > 0 { digestOwner[r.previousDigest] = i - 1 }
            if r.entry.type == .round { rounds += 1 }
            guard r.entry.type == .signature else { continue }
            let what = "the signature record after \(i > 0 ? describe(records[i - 1].entry) : "the file's start")"
                + " (record \(i))"
            guard let payload = r.payload else { problem = "\(what) could not be read"; break }
            let parsed = SignatureRecord.parse(payload)
            guard case .success(let s) = parsed else {
                if case .failure(let f) = parsed { problem = "\(what) is malformed: \(f.reason)" }
                break
            }
            guard s.signedDigest == r.previousDigest else {
                if let j = digestOwner[s.signedDigest] {
                    problem = "\(what) signs the digest of an earlier prefix, up to \(describe(records[j].entry))"
                        + " (record \(j)): it was copied from there"
                } else {
                    problem = "\(what) signs a digest that is not the previous record's: the records before it were"
                        + " changed after signing (digests recomputed)"
                }
                break
            }
            guard s.signatureHolds else {
                problem = "\(what): the Ed25519 signature by \(s.publicKey.fingerprint) does not verify: the record or"
                    + " the file before it was changed after signing"
                break
            }
            guard s.precedingRecords == UInt64(i), s.roundRecords == rounds else {
                problem = "\(what) says it follows \(s.precedingRecords) records and \(s.roundRecords) rounds; it"
                    + " follows \(i) records and \(rounds) rounds"
                break
            }
            if let (j, previous) = last, previous.kind == .final {
                problem = "\(what) follows the final signature (record \(j)): records were appended to a finished trace"
                break
            }
            report.validSignatures += 1
            if !report.signers.contains(s.publicKey.fingerprint) { report.signers.append(s.publicKey.fingerprint) }
            last = (i, s)
        }
        let signatureRecords = records.filter { $0.entry.type == .signature }.count
        if problem == nil, let failure = chain.failure, verified < records.count {
            // Damage in a signed trace is a failed signature verdict; in an unsigned one the chain
            // report says it all.
            if last != nil || signatureRecords > 0 { problem = "the digest chain breaks at \(failure)" }
        }
        if let (i, s) = last {
            report.coveredRounds = Int(s.roundRecords)
            var tail = records.count - i - 1
            if s.kind == .final, problem == nil {
                switch finalTail(records, after: i, signature: s) {
                case .success(let covered): tail -= covered
                case .failure(let f): problem = f.reason
                }
            }
            report.unsignedRecords = tail
        }
        let who = report.signers.count == 1 ? report.signers[0]
            : "\(report.signers.count) keys (\(report.signers.joined(separator: ", ")))"
        let upTo = { (rounds: Int) in rounds == 0 ? "up to keyframe 0 (no rounds)" : "up to round \(rounds - 1)" }
        if let problem {
            report.status = .invalid
            report.problem = problem
            report.summary = "SIGNATURE INVALID: \(problem)"
                + (last.map { "; valid signatures by \(who) cover the file \(upTo(Int($0.signature.roundRecords)))" }
                    ?? "")
        } else if let (_, s) = last {
            let whole = s.kind == .final && report.unsignedRecords == 0 && trailingBytes == 0
            report.status = whole ? .whole : .prefix
            if whole {
                report.summary = "signed by \(who), whole file (\(s.roundRecords) rounds)"
            } else {
                var why: [String] = []
                if report.unsignedRecords > 0 { why.append("\(report.unsignedRecords) later records unsigned") }
                if trailingBytes > 0 { why.append("\(trailingBytes) trailing bytes of an incomplete record") }
                if s.kind != .final {
                    why.append("no final signature (the recorder was killed, or the end was cut off)")
                }
                report.problem = why.joined(separator: "; ")
                report.summary = "signed by \(who) \(upTo(Int(s.roundRecords))) only; \(report.problem!)"
            }
        } else {
            report.summary = "unsigned"
        }
        return report
    }

    /// After a final signature at `i`: nothing, or exactly an index and a footer that say what the
    /// signature says, their reserved bytes zero: every byte of them is then determined by signed
    /// content. Returns how many records that is (0 or 2); anything else after the final
    /// signature is left uncovered (and counted as unsigned by the caller).
    static func finalTail(_ records: [Record], after i: Int, signature s: SignatureRecord) -> Result<Int,
        ParseFailure> {
        let rest = records[(i + 1)...]
        guard rest.count == 2, let index = rest.first, let footer = rest.last, index.entry.type == .index,
            footer.entry.type == .footer,
              let table = index.payload, let tail = footer.payload else { return .success(0) }
        guard tail.count == TraceFormat.footerPayloadSize else {
            return .failure(ParseFailure("the footer is not \(TraceFormat.footerPayloadSize) bytes"))
        }
        var f = ByteReader(tail)
        let indexOffset = f.u64(), entries = f.u64(), roundRecords = f.u64(), flags = f.u32(), reserved = f.u32()
        guard flags & ~1 == 0, reserved == 0 else {
            return .failure(ParseFailure("the footer's undefined flags or reserved bytes are not zero"))
        }
        guard indexOffset == index.entry.offset, entries == UInt64(i + 1) else {
            return .failure(ParseFailure("the footer does not point at the index that follows the final signature"))
        }
        guard roundRecords == s.roundRecords, (flags & 1 != 0) == s.interrupted else {
            return .failure(ParseFailure("the footer says \(roundRecords) rounds"
                + "\(flags & 1 != 0 ? ", stopped early" : ""); the final signature says \(s.roundRecords)"
                + "\(s.interrupted ? ", stopped early" : ""): the footer was altered"))
        }
        guard table.count == (i + 1) * TraceFormat.indexEntrySize else {
            return .failure(ParseFailure("the index lists another number of records than precede it"))
        }
        var t = ByteReader(table)
        for k in 0...i {
            let type = t.u8(), reserved = t.bytes(7)
            let round = Int64(bitPattern: t.u64()), offset = t.u64(), size = t.u64()
            let e = records[k].entry
            guard type == e.type.rawValue, reserved.allSatisfy({ $0 == 0 }), round == Int64(e.round),
                offset == e.offset, size == e.size else {
                return .failure(ParseFailure("index entry \(k) does not describe record \(k) (\(describe(e)))"))
            }
        }
        return .success(2)
    }

    static func describe(_ e: IndexEntry) -> String {
        switch e.type {
        case .round: "round \(e.round)"
        case .keyframe: "keyframe \(e.round)"
        default: "the \(e.type.name) record"
        }
    }
}
