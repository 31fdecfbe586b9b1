import Crypto
import DesgdNumerics
import Foundation

/// Where a trace's bytes come from: a file read with positioned reads, or memory (tests, the fuzzer).
public protocol TraceSource: Sendable {
    /// The bytes available.
    var size: UInt64 { get }
    /// What error messages call the trace (its path).
    var name: String { get }
    /// Exactly `count` bytes at `offset`; the caller has checked that they lie inside `size`.
    func read(_ offset: UInt64, _ count: Int) throws(TraceError) -> [UInt8]
}

/// A trace file, read with `pread` (several threads may read at once). Owns its descriptor.
public final class FileSource: TraceSource, @unchecked Sendable {
    public let name: String
    public let size: UInt64
    let descriptor: Int32

    public init(path: String) throws(TraceError) {
        // O_NONBLOCK: opening a FIFO without a writer would block; it is refused below at once.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let e = errno
            throw .io("cannot open trace \(path): \(String(cString: strerror(e)))"
                + Explanation(e == ENOENT ? " (record one with desgd-record)" : ""))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let m = String(cString: strerror(errno))
            close(fd)
            throw .io("cannot stat \(path): \(m)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .io("\(path) is not a regular file (a FIFO, device or directory): give the path of a trace")
        }
        // Regular files ignore O_NONBLOCK; cleared all the same, for plain blocking reads.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        descriptor = fd
        name = path
        size = UInt64(st.st_size)
    }

    deinit { close(descriptor) }

    public func read(_ offset: UInt64, _ count: Int) throws(TraceError) -> [UInt8] {
        var failure: String?
        let out = [UInt8](unsafeUninitializedCapacity: count) { b, initialized in
            var done = 0
            while done < count {
                let n = pread(descriptor, b.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    failure = n == 0 ? "unexpected end of file (did the file shrink while it was read?)"
                        : String(cString: strerror(errno)); break }
                done += n
            }
            initialized = done
        }
        if let failure { throw TraceError.io("reading \(name) at offset \(offset) failed: \(failure)") }
        return out
    }
}

/// A trace held in memory.
public struct MemorySource: TraceSource {
    public let name: String
    public let bytes: [UInt8]
    public var size: UInt64 { UInt64(bytes.count) }

    public init(_ bytes: [UInt8], name: String = "<memory>") {
        self.bytes = bytes
        self.name = name
    }

    public func read(_ offset: UInt64, _ count: Int) throws(TraceError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else { throw TraceError.io("\(name): read past the end") }
        return Array(bytes[Int(offset) ..< Int(offset) + count])
    }
}

/// File access of the reader: finding the records (from the footer and index, or by scanning their
/// headers, FORMAT.md §7) and reading one record's checked bytes. Every extent that comes from the
/// file is checked with overflow-checked arithmetic against the file's size and a limit before
/// anything is read or allocated; the pure checks are ``TraceParsing``'s.
struct TraceFile: Sendable {
    let source: any TraceSource
    let signature: TraceParsing.Signature
    /// The digest the first record links to: SHA-256 of the file's own 16-byte signature (a file of
    /// another minor version has another signature, hence another root).
    let chainRoot: [UInt8]
    var name: String { source.name }
    var size: UInt64 { source.size }

    /// Reads and checks the signature (FORMAT.md §2).
    init(source: any TraceSource) throws(TraceError) {
        self.source = source
        guard source.size >= UInt64(TraceFormat.signatureSize) else {
            throw TraceError(.truncated,
                "\(source.name) is \(source.size) bytes, shorter than a trace signature: not a trace, or the"
                + " recorder was killed at once")
        }
        let bytes = try source.read(0, TraceFormat.signatureSize)
        do throws(ParseFailure) { signature = try TraceParsing.signature(bytes[...]) } catch {
            throw TraceError(.version, "\(source.name) is \(error.reason)")
        }
        chainRoot = TraceFormat.chainRoot(of: bytes[...])
    }

    static func describe(_ e: IndexEntry) -> String {
        switch e.type {
        case .round: "round \(e.round)"
        case .keyframe: "keyframe \(e.round)"
        default: "the \(e.type.name) record (offset \(e.offset))"
        }
    }

    /// Whether `e` lies inside the file past the signature, with a payload of at most `limit` bytes.
    func extentIsPossible(_ e: IndexEntry, limit: UInt64) -> Bool {
        let overhead = UInt64(TraceFormat.recordOverhead)
        let (end, overflow) = e.offset.addingReportingOverflow(e.size)
        return e.size >= overhead && e.size - overhead <= limit && e.offset >= UInt64(TraceFormat.signatureSize)
            && !overflow && end <= size
    }

    /// Record `e` (number `sequence` in the file): its header checked against the entry, its
    /// digest checked. Returns header, payload and digest.
    func record(_ e: IndexEntry, sequence: Int, limit: UInt64) throws(ParseFailure) -> (RecordHeader, [UInt8],
        [UInt8]) {
        guard extentIsPossible(e, limit: limit) else {
            throw ParseFailure("its extent (offset \(e.offset), \(e.size) bytes) is impossible in a \(size)-byte file"
                + " or above the limit of \(limit) bytes")
        }
        let bytes: [UInt8]
        do { bytes = try source.read(e.offset, Int(e.size)) } catch { throw ParseFailure(error.message) }
        let p0 = TraceFormat.recordHeaderSize, d0 = bytes.count - TraceFormat.digestSize
        let (h, digest) = try bytes.withUnsafeBytes { raw in
            Result { () throws(ParseFailure) in
                try TraceParsing.record(header: bytes[0 ..< p0],
                                        payload: UnsafeRawBufferPointer(rebasing: raw[p0 ..< d0]),
                                        digest: bytes[d0...], fileMinor: signature.minor)
            }
        }.get()
        guard h.type == e.type, h.round == Int64(e.round) else {
            throw ParseFailure("its header (\(h.type.name), round \(h.round)) does not match the index ("
                + "\(e.type.name), round \(e.round))")
        }
        guard h.sequence == UInt64(sequence) else {
            throw ParseFailure("its sequence number is \(h.sequence), expected \(sequence)")
        }
        return (h, Array(bytes[p0 ..< d0]), digest)
    }

    /// The checked, decompressed body of record `e`.
    func body(_ e: IndexEntry, sequence: Int, limit: UInt64,
        decompressor: ZstdDecompressor) throws(ParseFailure) -> [UInt8] {
        let (h, payload, _) = try record(e, sequence: sequence, limit: limit)
        return try payload.withUnsafeBytes { p in
            Result { () throws(ParseFailure) in
                try TraceParsing.body(p, encoding: h.encoding, limit: limit, decompressor: decompressor) }
        }.get()
    }

    /// The header record (record 0, right after the signature).
    func headerRecord() throws(TraceError) -> IndexEntry {
        let offset = UInt64(TraceFormat.signatureSize)
        guard size >= offset + UInt64(TraceFormat.recordHeaderSize) else {
            throw TraceError(.truncated,
                "\(name) ends inside its header record: nothing was recorded (the recorder was killed at once)")
        }
        let h: RecordHeader
        switch RecordHeader.parse(try source.read(offset, TraceFormat.recordHeaderSize)[...],
            fileMinor: signature.minor) {
        case .success(let x): h = x
        case .failure(let f): throw TraceError.corrupted("\(name): the header record: \(f.reason)")
        }
        guard h.type == .header, h.sequence == 0, h.round == -1 else {
            throw TraceError.corrupted("\(name): the first record is not a header record")
        }
        guard h.payloadLength <= TraceParsing.headerBodyLimit else {
            throw TraceError.corrupted("\(name): the header record declares \(h.payloadLength) bytes, above the"
                + " format's limit of \(TraceParsing.headerBodyLimit)")
        }
        let recordSize = UInt64(TraceFormat.recordOverhead) + h.payloadLength
        guard recordSize <= size - offset else {
            throw TraceError(.truncated,
                "\(name) ends inside its header record: nothing was recorded (the recorder was killed at once)")
        }
        return IndexEntry(type: .header, round: -1, offset: offset, size: recordSize)
    }

    /// The record table from a valid footer and index (the index record and footer appended), and
    /// whether the run was interrupted; nil when either is missing or invalid (then the reader scans).
    func indexFromFooter(firstRound: Int = 0) -> (entries: [IndexEntry], interrupted: Bool)? {
        let footerSize = UInt64(TraceFormat.footerRecordSize)
        guard size >= UInt64(TraceFormat.signatureSize) + footerSize else { return nil }
        // The footer is record "entries + 1": its sequence is checked once the index gave the count.
        let footerEntry = IndexEntry(type: .footer, round: -1, offset: size - footerSize, size: footerSize)
        guard let bytes = try? source.read(footerEntry.offset, Int(footerSize)) else { return nil }
        let p0 = TraceFormat.recordHeaderSize, d0 = bytes.count - TraceFormat.digestSize
        guard let (fh, _) = try? bytes.withUnsafeBytes({ raw in
                  Result { () throws(ParseFailure) in
                      try TraceParsing.record(header: bytes[0 ..< p0],
                                              payload: UnsafeRawBufferPointer(rebasing: raw[p0 ..< d0]),
                                              digest: bytes[d0...], fileMinor: signature.minor)
                  }
              }).get(),
              fh.type == .footer, fh.round == -1,
              let footer = try? TraceParsing.footer(bytes[p0 ..< d0]) else { return nil }
        // The index record lies right before the footer and holds entryCount entries.
        let (tableSize, o1) = footer.entryCount.multipliedReportingOverflow(by: UInt64(TraceFormat.indexEntrySize))
        let (indexSize, o2) = tableSize.addingReportingOverflow(UInt64(TraceFormat.recordOverhead))
        let (indexEnd, o3) = footer.indexOffset.addingReportingOverflow(indexSize)
        guard !o1, !o2, !o3, indexEnd == footerEntry.offset, footer.entryCount < UInt64(Int32.max),
              fh.sequence == footer.entryCount + 1 else { return nil }
        let indexEntry = IndexEntry(type: .index, round: -1, offset: footer.indexOffset, size: indexSize)
        guard let (_, table, _) = try? record(indexEntry, sequence: Int(footer.entryCount), limit: tableSize),
              let entries = try? TraceParsing.index(table[...], footer: footer, fileMinor: signature.minor,
                  firstRound: firstRound) else { return nil }
        return (entries + [indexEntry, footerEntry], footer.interrupted)
    }

    /// Finds the records by reading their headers one after another, up to the end of the file, an
    /// incomplete last record, or the first header that fails a check (FORMAT.md §7 step 3).
    func scan(after headerEntry: IndexEntry, firstRound: Int = 0) -> ([IndexEntry], String) {
        var entries = [headerEntry]
        var offset = headerEntry.offset + headerEntry.size
        var nextRound = firstRound
        while true {
            if offset == size {
                return (entries,
                    "no footer: the recorder did not finish; every record up to the end of the file was found") }
            let remaining = size - offset
            let which = "the record after \(entries.last.map(TraceFile.describe) ?? "the header") (offset \(offset))"
            if remaining < UInt64(TraceFormat.recordHeaderSize) {
                return (entries,
                    "the file ends inside \(which): a recorder killed mid-write; "
                    + "\(nextRound - firstRound) complete rounds")
            }
            guard let bytes = try? source.read(offset, TraceFormat.recordHeaderSize) else {
                return (entries, "\(which) cannot be read")
            }
            let h: RecordHeader
            switch RecordHeader.parse(bytes[...], fileMinor: signature.minor) {
            case .success(let x): h = x
            case .failure(let f): return (entries,
                "\(which) is damaged: \(f.reason); later records are not reachable without an index")
            }
            guard h.sequence == UInt64(entries.count) else {
                return (entries, "\(which) is damaged: sequence number \(h.sequence), expected \(entries.count)")
            }
            guard h.payloadLength <= TraceFormat.maximumPayload else {
                return (entries,
                    "\(which) is damaged: it declares \(h.payloadLength) payload bytes, above the format's limit")
            }
            let recordSize = UInt64(TraceFormat.recordOverhead) + h.payloadLength
            if recordSize > remaining {
                return (entries,
                    "the file ends inside \(which): a recorder killed mid-write; "
                    + "\(nextRound - firstRound) complete rounds")
            }
            switch h.type {
            case .round:
                guard h.round == Int64(nextRound) else {
                    return (entries, "\(which) is damaged: it says round \(h.round), expected round \(nextRound)")
                }
                nextRound += 1
            case .keyframe:
                guard h.round >= Int64(firstRound) && h.round <= Int64(nextRound) else {
                    return (entries, "\(which) is damaged: a keyframe of round \(h.round) after round \(nextRound - 1)")
                }
            case .header:
                return (entries, "\(which) is damaged: a second header record")
            default:
                guard h.round == -1 else {
                    return (entries, "\(which) is damaged: a \(h.type.name) record with round \(h.round)")
                }
            }
            entries.append(IndexEntry(type: h.type, round: Int(h.round), offset: offset, size: recordSize))
            offset += recordSize
        }
    }

    /// SHA-256 of record `e` computed from the file in slices of at most 1 MiB (memory independent
    /// of the record's size), with the header bytes and the digest stored after the payload.
    func streamedDigest(_ e: IndexEntry) throws(ParseFailure) -> (header: [UInt8], computed: [UInt8], stored: [UInt8]) {
        guard extentIsPossible(e, limit: TraceFormat.maximumPayload) else {
            throw ParseFailure("its extent (offset \(e.offset), \(e.size) bytes) is impossible in a \(size)-byte file")
        }
        do {
            let header = try source.read(e.offset, TraceFormat.recordHeaderSize)
            var hash = SHA256()
            hash.update(data: header)
            var at = e.offset + UInt64(TraceFormat.recordHeaderSize)
            let payloadEnd = e.offset + e.size - UInt64(TraceFormat.digestSize)
            while at < payloadEnd {
                let n = Int(min(payloadEnd - at, 1 << 20))
                let chunk = try source.read(at, n)
                hash.update(data: chunk)
                at += UInt64(n)
            }
            return (header, Array(hash.finalize()), try source.read(payloadEnd, TraceFormat.digestSize))
        } catch {
            throw ParseFailure(error.message)
        }
    }
}
