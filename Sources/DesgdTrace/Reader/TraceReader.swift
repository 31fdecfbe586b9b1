import Crypto
import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// How a trace ended (FORMAT.md §7).
public enum TraceCompleteness: Sendable, Equatable {
    /// Index and footer present and valid: the recorder finished (`interrupted`: stopped early, e.g. Ctrl-C).
    case complete(interrupted: Bool)
    /// No valid footer: the records were found by scanning. `reason` says where the scan stopped
    /// (the end of the file, an incomplete last record of a killed recorder, or damage).
    case unfinished(reason: String)
}

/// A reader of one trace file: random access to any round (one positioned read, using the index
/// or, when the recorder did not finish, a scan of the record headers), streaming iteration, and
/// verification of the digest chain.
///
/// Defensive: every size is checked against the file and against limits before anything is
/// allocated; every digest is checked before a payload is decompressed; every failure is a
/// ``TraceError`` naming the round or record. Memory: one record at a time plus 32 bytes per
/// record for the record table.
///
/// Thread safety: everything is immutable after `init` and reads are positioned (`pread`), so
/// several threads may read rounds at once with ``round(_:using:)``, each with its own decompressor.
public final class TraceReader: @unchecked Sendable {
    public let path: String
    public let header: TraceHeader
    public let fileSize: UInt64
    public let completeness: TraceCompleteness
    /// Every record found, in file order (index and footer included when present).
    public let records: [IndexEntry]
    /// Round records in round order, and keyframes.
    public let roundRecords: [IndexEntry]
    public let keyframeRecords: [IndexEntry]

    let descriptor: Int32
    let decompressor = ZstdDecompressor()
    let decoder = RecordBody.decoder()
    /// The largest body a round or keyframe of this run can have (FORMAT.md §6).
    let bodyLimit: UInt64

    public init(path: String) throws(TraceError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw .io("cannot open trace \(path): \(String(cString: strerror(e)))" + (e == ENOENT ? " (record one with desgd-record)" : ""))
        }
        descriptor = fd
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw .io("cannot stat \(path): \(String(cString: strerror(errno)))") }
        fileSize = UInt64(st.st_size)
        do throws(TraceError) {
            let file = RawFile(descriptor: fd, size: fileSize, path: path)
            try TraceReader.checkSignature(file)
            let headerEntry = try TraceReader.headerRecord(file)
            let headerBody = try TraceReader.readBody(file, headerEntry, what: "the header record", limit: 1 << 28,
                                                      decompressor: decompressor)
            let parsed: ParsedBody<TraceHeader>
            switch ParsedBody<TraceHeader>.parse(headerBody, decoder: decoder) {
            case .success(let p): parsed = p
            case .failure(let f): throw TraceError.corrupted("\(path): the header record: \(f.reason)")
            }
            header = parsed.content
            let d = UInt64(max(1, header.model.parameterCount))
            let senders = UInt64(header.groups.map { $0.honestWorkers.count + $0.byzantineWorkers.count }.max() ?? 1)
            let perRound = UInt64(max(1, header.config.classesPerRound))
            let groups = UInt64(header.groups.count), classes = UInt64(header.config.classes)
            bodyLimit = min(TraceFormat.maximumBody, (1 << 26) + 4 * d * (3 * senders * perRound + classes + 3 * groups + 8))
            if let (entries, interrupted) = TraceReader.indexFromFooter(file) {
                records = entries
                completeness = .complete(interrupted: interrupted)
            } else {
                let (entries, reason) = TraceReader.scan(file, after: headerEntry)
                records = entries
                completeness = .unfinished(reason: reason)
            }
        } catch {
            close(fd)
            throw error
        }
        roundRecords = records.filter { $0.type == .round }
        keyframeRecords = records.filter { $0.type == .keyframe }
    }

    deinit { close(descriptor) }

    /// Rounds available, in order (0..<count for a trace of consecutive rounds).
    public var roundCount: Int { roundRecords.count }
    public var parameterCount: Int { header.model.parameterCount }

    // MARK: Rounds and keyframes

    /// Round `t`, read with one positioned read and checked (digest, link to the previous record, content).
    public func round(_ t: Int) throws(TraceError) -> TraceRound {
        guard t >= 0 && t < roundRecords.count, roundRecords[t].round == t else {
            throw TraceError(.usage, "\(path) has no round \(t): it holds rounds 0..<\(roundRecords.count)")
        }
        return try readRound(roundRecords[t])
    }

    /// Round `t`, decompressed with `decompressor` (one per thread when reading concurrently).
    public func round(_ t: Int, using decompressor: ZstdDecompressor) throws(TraceError) -> TraceRound {
        guard t >= 0 && t < roundRecords.count, roundRecords[t].round == t else {
            throw TraceError(.usage, "\(path) has no round \(t): it holds rounds 0..<\(roundRecords.count)")
        }
        return try readRound(roundRecords[t], decompressor: decompressor)
    }

    /// Calls `body` with every round in `range` (default all), in order, one round in memory at a time.
    public func forEachRound(in range: Range<Int>? = nil, _ body: (TraceRound) throws -> Void) throws {
        let r = range ?? 0..<roundRecords.count
        guard r.lowerBound >= 0 && r.upperBound <= roundRecords.count else {
            throw TraceError(.usage, "\(path) has rounds 0..<\(roundRecords.count); rounds \(r.lowerBound)..<\(r.upperBound) were asked for")
        }
        for t in r { try body(try readRound(roundRecords[t])) }
    }

    /// The last keyframe at or before the start of round `t`.
    public func keyframe(atOrBefore t: Int) throws(TraceError) -> TraceKeyframe {
        guard let entry = keyframeRecords.last(where: { $0.round <= t }) else {
            throw TraceError(.corrupted, "\(path) has no keyframe at or before round \(t)")
        }
        let body = try TraceReader.readBody(file, entry, what: "keyframe \(entry.round)", limit: bodyLimit, decompressor: decompressor)
        switch ParsedBody<KeyframeContent>.parse(body, decoder: decoder) {
        case .success(let p):
            guard p.content.round == entry.round else {
                throw TraceError.corrupted("\(path): keyframe \(entry.round): its content says round \(p.content.round)")
            }
            return TraceKeyframe(body: p, path: path)
        case .failure(let f): throw TraceError.corrupted("\(path): keyframe \(entry.round): \(f.reason)")
        }
    }

    /// The model at the start of round `t`: the keyframe before it plus the recorded diffs
    /// (bit-exact: x_{t+1} = fl(x_t + Δx)). Needs the diffs of the rounds in between.
    public func parameters(atStartOf t: Int) throws(TraceError) -> [Float] {
        let k = try keyframe(atOrBefore: t)
        var x = try k.parameters()
        for s in k.round ..< t {
            let diff = try round(s).modelDiff()
            x.withUnsafeMutableBufferPointer { p in diff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        }
        return x
    }

    func readRound(_ entry: IndexEntry, decompressor: ZstdDecompressor? = nil) throws(TraceError) -> TraceRound {
        let what = "round \(entry.round)"
        let body = try TraceReader.readBody(file, entry, what: what, limit: bodyLimit, decompressor: decompressor ?? self.decompressor)
        switch ParsedBody<RoundContent>.parse(body, decoder: decoder) {
        case .success(let p):
            let r = TraceRound(body: p, path: path, parameterCount: header.model.parameterCount)
            try r.validate(expectedRound: entry.round)
            return r
        case .failure(let f): throw TraceError.corrupted("\(path): \(what): \(f.reason)")
        }
    }

    // MARK: Integrity

    /// The result of walking the digest chain.
    public struct ChainReport: Sendable, Equatable {
        /// Records whose digest and link to the previous record hold, from the first on.
        public var verifiedRecords: Int
        public var totalRecords: Int
        /// The first record that fails, as a sentence naming it, or nil when the chain holds.
        public var failure: String?
        /// The round of the first failing record, if it is a round record.
        public var failedRound: Int?
        /// The last verified digest (hex): anchoring it elsewhere makes the whole trace tamper-evident.
        public var lastDigest: String
        public var holds: Bool { failure == nil }
    }

    /// Checks every record's digest and its link to the previous record, in file order.
    public func verifyChain() -> ChainReport {
        var report = ChainReport(verifiedRecords: 0, totalRecords: records.count, failure: nil, failedRound: nil, lastDigest: "")
        for e in records {
            switch TraceReader.readRecord(file, e, limit: max(bodyLimit, UInt64(TraceFormat.maximumPayload)), link: true) {
            case .success(let (_, _, digest)):
                report.verifiedRecords += 1
                report.lastDigest = digest.map { String(format: "%02x", $0) }.joined()
            case .failure(let f):
                report.failure = "\(TraceReader.describe(e)): \(f.reason)"
                report.failedRound = e.type == .round ? e.round : nil
                return report
            }
        }
        return report
    }

    // MARK: File access

    var file: RawFile { RawFile(descriptor: descriptor, size: fileSize, path: path) }

    static func describe(_ e: IndexEntry) -> String {
        switch e.type {
        case .round: "round \(e.round)"
        case .keyframe: "keyframe \(e.round)"
        default: "the \(e.type.name) record (offset \(e.offset))"
        }
    }

    static func checkSignature(_ file: RawFile) throws(TraceError) {
        guard file.size >= UInt64(TraceFormat.signatureSize) else {
            throw TraceError(.truncated, "\(file.path) is \(file.size) bytes, shorter than a trace signature: not a trace, or the recorder was killed at once")
        }
        let s = try file.read(0, TraceFormat.signatureSize)
        guard Array(s[0..<10]) == TraceFormat.magic else {
            throw TraceError(.version, "\(file.path) is not a desgd trace (its first bytes are not the trace signature)")
        }
        var r = ByteReader(s[10...])
        let major = r.u16(), minor = r.u16()
        guard major == TraceFormat.major else {
            throw TraceError(.version, "\(file.path) is trace format \(major).\(minor); this desgd reads format \(TraceFormat.major).x: use a desgd that matches the trace")
        }
    }

    /// Locates and checks the header record (record 0, right after the signature).
    static func headerRecord(_ file: RawFile) throws(TraceError) -> IndexEntry {
        let offset = UInt64(TraceFormat.signatureSize)
        guard file.size >= offset + UInt64(TraceFormat.recordHeaderSize) else {
            throw TraceError(.truncated, "\(file.path) ends inside its header record: nothing was recorded (the recorder was killed at once)")
        }
        let h: RecordHeader
        switch RecordHeader.parse(try file.read(offset, TraceFormat.recordHeaderSize)[...]) {
        case .success(let x): h = x
        case .failure(let f): throw TraceError.corrupted("\(file.path): the header record: \(f.reason)")
        }
        guard h.type == .header, h.sequence == 0 else { throw TraceError.corrupted("\(file.path): the first record is not a header record") }
        let size = UInt64(TraceFormat.recordOverhead) + h.payloadLength
        guard h.payloadLength <= TraceFormat.maximumPayload else {
            throw TraceError.corrupted("\(file.path): the header record declares \(h.payloadLength) bytes, above the format's limit")
        }
        guard offset + size <= file.size else {
            throw TraceError(.truncated, "\(file.path) ends inside its header record: nothing was recorded (the recorder was killed at once)")
        }
        return IndexEntry(type: .header, round: -1, offset: offset, size: size)
    }

    /// Reads a record, checks its header against the entry and its digest, and with `link` its
    /// link to the previous record (whose digest is the 32 bytes before it). Returns header,
    /// payload and digest. Reading one round does not check the link, so that damage to one
    /// record's digest is reported for that record only; ``verifyChain()`` checks every link.
    static func readRecord(_ file: RawFile, _ e: IndexEntry, limit: UInt64,
                           link: Bool = false) -> Result<(RecordHeader, ArraySlice<UInt8>, [UInt8]), ParseFailure> {
        let overhead = UInt64(TraceFormat.recordOverhead)
        guard e.size >= overhead, e.size - overhead <= limit, e.offset >= UInt64(TraceFormat.signatureSize),
              e.offset + e.size <= file.size else {
            return .failure(ParseFailure("its declared extent (offset \(e.offset), \(e.size) bytes) is impossible in a \(file.size)-byte file"))
        }
        // The first record links to the digest of the file's own signature (whose minor version may
        // be older than this program's), the others to the digest stored just before them.
        let first = e.offset == UInt64(TraceFormat.signatureSize)
        let before = !link ? 0 : first ? TraceFormat.signatureSize : TraceFormat.digestSize
        let bytes: [UInt8]
        do { bytes = try file.read(e.offset - UInt64(before), before + Int(e.size)) } catch { return .failure(ParseFailure(error.message)) }
        let previous = before == 0 ? TraceFormat.chainRoot : first ? Array(SHA256.hash(data: bytes[0..<before])) : Array(bytes[0..<before])
        let h0 = before, p0 = before + TraceFormat.recordHeaderSize, d0 = bytes.count - TraceFormat.digestSize
        let h: RecordHeader
        switch RecordHeader.parse(bytes[h0..<p0]) {
        case .success(let x): h = x
        case .failure(let f): return .failure(f)
        }
        guard h.type == e.type, h.round == Int64(e.round), h.payloadLength == e.size - overhead else {
            return .failure(ParseFailure("its header does not match the index (type, round or length)"))
        }
        let headerBytes = Array(bytes[h0..<p0])
        let digest = bytes.withUnsafeBytes { RecordHeader.digest(header: headerBytes, payload: UnsafeRawBufferPointer(rebasing: $0[p0..<d0])) }
        guard digest == Array(bytes[d0...]) else {
            return .failure(ParseFailure("digest mismatch: the record's bytes were altered or damaged (offset \(e.offset))"))
        }
        guard !link || h.previousDigest == previous else {
            return .failure(ParseFailure("chain broken: the previous record is not the one this record was written after"))
        }
        return .success((h, bytes[p0..<d0], digest))
    }

    /// The checked, decompressed body of a record.
    static func readBody(_ file: RawFile, _ e: IndexEntry, what: String, limit: UInt64,
                         decompressor: ZstdDecompressor) throws(TraceError) -> [UInt8] {
        switch readRecord(file, e, limit: limit) {
        case .failure(let f): throw TraceError.corrupted("\(file.path): \(what): \(f.reason)")
        case .success(let (h, payload, _)):
            guard h.encoding == .zstd else { return Array(payload) }
            switch payload.withUnsafeBytes({ decompressor.decompress($0, limit: limit) }) {
            case .success(let body): return body
            case .failure(let f): throw TraceError.corrupted("\(file.path): \(what): \(f.reason)")
            }
        }
    }

    /// The record table from a valid footer and index, or nil (then the reader scans).
    static func indexFromFooter(_ file: RawFile) -> ([IndexEntry], Bool)? {
        let footerSize = UInt64(TraceFormat.footerRecordSize)
        guard file.size >= UInt64(TraceFormat.signatureSize) + footerSize else { return nil }
        let footer = IndexEntry(type: .footer, round: -1, offset: file.size - footerSize, size: footerSize)
        guard case .success(let (_, payload, _)) = readRecord(file, footer, limit: UInt64(TraceFormat.footerPayloadSize), link: true) else { return nil }
        var r = ByteReader(payload)
        let indexOffset = r.u64(), count = r.u64(), _ = r.u64(), flags = r.u32()
        let indexSize = UInt64(TraceFormat.recordOverhead) + count &* UInt64(TraceFormat.indexEntrySize)
        guard count < file.size / UInt64(TraceFormat.recordOverhead), indexOffset &+ indexSize == footer.offset else { return nil }
        let index = IndexEntry(type: .index, round: -1, offset: indexOffset, size: indexSize)
        guard case .success(let (_, table, _)) = readRecord(file, index, limit: indexSize, link: true) else { return nil }
        var entries: [IndexEntry] = []
        var t = ByteReader(table)
        var expected = UInt64(TraceFormat.signatureSize), nextRound = 0
        for _ in 0..<count {
            let rawType = t.u8()
            _ = t.bytes(7)
            let round = Int(Int64(bitPattern: t.u64())), offset = t.u64(), size = t.u64()
            guard let type = RecordType(rawValue: rawType), offset == expected, size >= UInt64(TraceFormat.recordOverhead),
                  size <= indexOffset - offset else { return nil }
            if type == .round {
                guard round == nextRound else { return nil }
                nextRound += 1
            }
            entries.append(IndexEntry(type: type, round: round, offset: offset, size: size))
            expected = offset + size
        }
        guard expected == indexOffset else { return nil }
        return (entries + [index, footer], flags & 1 != 0)
    }

    /// Finds the records by reading their headers one after another, up to the end of the file,
    /// an incomplete last record, or the first record that does not parse.
    static func scan(_ file: RawFile, after headerEntry: IndexEntry) -> ([IndexEntry], String) {
        var entries = [headerEntry]
        var offset = headerEntry.offset + headerEntry.size
        var nextRound = 0
        while true {
            if offset == file.size { return (entries, "no footer: the recorder did not finish; every record up to the end of the file was found") }
            let remaining = file.size - offset
            let which = "the record after \(entries.last.map(describe) ?? "the header") (offset \(offset))"
            if remaining < UInt64(TraceFormat.recordHeaderSize) {
                return (entries, "the file ends inside \(which): a recorder killed mid-write; \(nextRound) complete rounds")
            }
            guard let bytes = try? file.read(offset, TraceFormat.recordHeaderSize) else { return (entries, "\(which) cannot be read") }
            let h: RecordHeader
            switch RecordHeader.parse(bytes[...]) {
            case .success(let x): h = x
            case .failure(let f): return (entries, "\(which) is damaged: \(f.reason); later records are not reachable without an index")
            }
            guard h.sequence == UInt64(entries.count) else {
                return (entries, "\(which) is damaged: sequence number \(h.sequence), expected \(entries.count)")
            }
            guard h.payloadLength <= TraceFormat.maximumPayload else {
                return (entries, "\(which) is damaged: it declares \(h.payloadLength) payload bytes, above the format's limit")
            }
            let size = UInt64(TraceFormat.recordOverhead) + h.payloadLength
            if size > remaining {
                return (entries, "the file ends inside \(which): a recorder killed mid-write; \(nextRound) complete rounds")
            }
            if h.type == .round {
                guard h.round == Int64(nextRound) else {
                    return (entries, "\(which) is damaged: it says round \(h.round), expected round \(nextRound)")
                }
                nextRound += 1
            }
            entries.append(IndexEntry(type: h.type, round: Int(h.round), offset: offset, size: size))
            offset += size
        }
    }
}

/// Positioned reads of a file of known size.
struct RawFile {
    let descriptor: Int32
    let size: UInt64
    let path: String

    /// Exactly `count` bytes at `offset` (the caller has checked they lie inside the file).
    func read(_ offset: UInt64, _ count: Int) throws(TraceError) -> [UInt8] {
        var failure: String?
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, initialized in
            var done = 0
            while done < count {
                let n = pread(descriptor, b.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n == 0 ? "unexpected end of file" : String(cString: strerror(errno)); break }
                done += n
            }
            initialized = done
        }
        if let failure { throw TraceError.io("reading \(path) at offset \(offset) failed: \(failure)") }
        return out
    }
}
