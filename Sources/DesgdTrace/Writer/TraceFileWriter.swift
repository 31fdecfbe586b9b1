import DesgdNumerics
import Foundation

/// One entry of the index record: where a record starts and how long it is (FORMAT.md §3.4).
public struct IndexEntry: Sendable, Equatable {
    public var type: RecordType
    /// The record's round (−1 for none).
    public var round: Int
    /// File offset of the record's header.
    public var offset: UInt64
    /// Header, payload and digest.
    public var size: UInt64

    public init(type: RecordType, round: Int, offset: UInt64, size: UInt64) {
        self.type = type
        self.round = round
        self.offset = offset
        self.size = size
    }
}

/// Appends records to a new trace file (FORMAT.md §3), chaining their digests.
///
/// Append-only: every byte, once written, stays. A record is written with its header first and its
/// digest last, so a process killed mid-record leaves a prefix that readers recognise as incomplete.
/// ``finish(roundRecords:interrupted:)`` adds the index and the footer, an acceleration that
/// readers do not require.
///
/// With a signing key, ``appendCheckpointSignature()`` signs the file so far and `finish` signs
/// it before the index (FORMAT.md §3.6), so a killed recorder still leaves a signed prefix.
public final class TraceFileWriter {
    public let path: String
    let descriptor: Int32
    let compressor: ZstdCompressor
    var sequence: UInt64 = 0
    var previousDigest = TraceFormat.chainRoot
    public private(set) var bytesWritten: UInt64 = 0
    public private(set) var entries: [IndexEntry] = []
    /// Signs the digest chain when set.
    public let signingKey: TraceSigningKey?
    var roundRecords: UInt64 = 0

    /// Creates `path` and writes the signature. Refuses to replace an existing file unless `overwrite`.
    public init(path: String, overwrite: Bool, compressionLevel: Int32,
        signingKey: TraceSigningKey? = nil) throws(TraceError) {
        self.path = path
        self.signingKey = signingKey
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL)
        let fd = open(path, flags, 0o644)
        if fd < 0 {
            let e = errno
            if e == EEXIST {
                throw .io("\(path) already exists: pass \(Setting.overwrite) to overwrite it, or choose"
                    + " another \(Setting.output)") }
            throw .io("cannot create \(path): \(String(cString: strerror(e)))")
        }
        descriptor = fd
        compressor = ZstdCompressor(level: compressionLevel)
        try write(TraceFormat.signature)
    }

    /// Continues a trace: creates `path` (which must not exist) holding the first `records.count`
    /// records of `source` (the bytes up to the end of the last one, copied in slices of 1 MiB), and
    /// appends after them as the recorder that wrote them would have: same sequence numbers, chain and
    /// index. Every byte appended before `source`'s offset `checkedUpTo` must equal `source`'s byte at
    /// that offset, or the write fails: the records re-written after a resumption point are checked
    /// against the original as they are written.
    public init(path: String, continuing source: any TraceSource, records: [IndexEntry], checkedUpTo: UInt64,
                compressionLevel: Int32, signingKey: TraceSigningKey? = nil) throws(TraceError) {
        self.path = path
        self.signingKey = signingKey
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_EXCL, 0o644)
        if fd < 0 {
            let e = errno
            throw .io("cannot create \(path): \(String(cString: strerror(e)))"
                + (e == EEXIST ? " (remove it: a resumption left it)" : ""))
        }
        descriptor = fd
        compressor = ZstdCompressor(level: compressionLevel)
        guard let last = records.last else { throw .usage("\(source.name): nothing to continue") }
        let end = last.offset + last.size
        var at: UInt64 = 0
        while at < end {
            let n = Int(min(end - at, 1 << 20))
            try write(try source.read(at, n))
            at += UInt64(n)
        }
        previousDigest = try source.read(end - UInt64(TraceFormat.digestSize), TraceFormat.digestSize)
        sequence = UInt64(records.count)
        entries = records
        roundRecords = UInt64(records.filter { $0.type == .round }.count)
        original = (source, checkedUpTo)
    }

    /// The trace being continued and the offset up to which appended bytes must equal its own.
    var original: (source: any TraceSource, end: UInt64)?
    /// The sequence number of the first appended record that differed from the original's.
    public private(set) var mismatchedRecord: Int?
    /// The chain digest of the last record written (FORMAT.md §3.3); after the header, a live
    /// federation's run tag (``ClientMessageSignature``).
    public var lastDigest: [UInt8] { previousDigest }

    deinit { close(descriptor) }

    func write(_ bytes: [UInt8]) throws(TraceError) {
        try withBytes(bytes) { b throws(TraceError) in try write(b) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(TraceError) {
        if let (source, end) = original, bytesWritten < end {
            let n = Int(min(UInt64(bytes.count), end - bytesWritten))
            let expected = try source.read(bytesWritten, n)
            if let i = (0..<n).first(where: { expected[$0] != bytes[$0] }) {
                mismatchedRecord = Int(sequence)
                throw .corrupted("the re-simulated record \(sequence) differs from \(source.name) at byte"
                    + " \(bytesWritten + UInt64(i))")
            }
        }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("writing \(path) failed: \(String(cString: strerror(errno))); the rounds"
                    + " written so far remain readable")
            }
            done += n
        }
        bytesWritten += UInt64(bytes.count)
        releaseWrittenPages()
    }

    /// Where the last two write-back requests ended, and up to where the page cache was released.
    var writebackEnds: (previous: UInt64, last: UInt64) = (0, 0)
    var releasedUpTo: UInt64 = 0
    /// Bytes written between two write-back requests.
    static let writebackGranule: UInt64 = 4 << 20

    /// Starts the write-back of what was written since the last request, and drops from the page
    /// cache what the request before it covered (written back by now, usually; pages still dirty or
    /// being written stay cached). Why: the next records then reuse those pages instead of fresh
    /// ones, and on a virtual machine that hands its free memory back to the host, a fresh page
    /// costs its first write a fault on the host: writing a paper round (11.6 MB) took 4 to 27 ms
    /// of the recorder's CPU, depending on how many of the pages were fresh, and 4 to 5.5 ms with
    /// this. Both requests are POSIX_FADV_DONTNEED, which starts the write-back of dirty pages and
    /// drops clean ones (sync_file_range is not visible from Swift).
    /// Hints only, their errors ignored: a write-back error surfaces at `finish`'s fsync as before.
    func releaseWrittenPages() {
        #if os(Linux)
        guard bytesWritten - writebackEnds.last >= Self.writebackGranule else { return }
        if releasedUpTo < writebackEnds.previous {
            _ = posix_fadvise(descriptor, off_t(releasedUpTo), off_t(writebackEnds.previous - releasedUpTo),
                POSIX_FADV_DONTNEED)
            releasedUpTo = writebackEnds.previous
        }
        _ = posix_fadvise(descriptor, off_t(writebackEnds.last), off_t(bytesWritten - writebackEnds.last),
            POSIX_FADV_DONTNEED)
        writebackEnds = (writebackEnds.last, bytesWritten)
        #endif
    }

    /// Appends a record whose body is the concatenation of `parts`, zstd-compressed or raw.
    /// A compressed payload is hashed and written from the compressor's reused buffer, not copied.
    @discardableResult
    public func append(_ type: RecordType, round: Int, parts: [[UInt8]],
        compress: Bool) throws(TraceError) -> IndexEntry {
        if compress {
            return try withPointers(parts) { p throws(TraceError) in
                try compressor.withCompressed(p) { payload throws(TraceError) in
                    try append(type, round: round, payload: payload, encoding: .zstd)
                }
            }
        }
        let payload = parts.count == 1 ? parts[0] : parts.flatMap { $0 }
        return try withBytes(payload) { p throws(TraceError) in
            try append(type, round: round, payload: p, encoding: .raw) }
    }

    func append(_ type: RecordType, round: Int, payload: UnsafeRawBufferPointer,
                encoding: PayloadEncoding) throws(TraceError) -> IndexEntry {
        let header = RecordHeader(type: type, encoding: encoding, sequence: sequence, round: Int64(round),
                                  payloadLength: UInt64(payload.count), previousDigest: previousDigest).bytes
        let digest = RecordHeader.digest(header: header, payload: payload)
        let entry = IndexEntry(type: type, round: round, offset: bytesWritten,
                               size: UInt64(TraceFormat.recordOverhead + payload.count))
        try write(header)
        try write(payload)
        try write(digest)
        previousDigest = digest
        sequence += 1
        entries.append(entry)
        if type == .round { roundRecords += 1 }
        return entry
    }

    /// Appends a checkpoint signature of every record so far (nothing without a signing key).
    public func appendCheckpointSignature() throws(TraceError) {
        guard let signingKey else { return }
        try appendSignature(.checkpoint, interrupted: false, roundRecords: roundRecords, key: signingKey)
    }

    /// A signature record of the previous record's digest (FORMAT.md §3.6).
    func appendSignature(_ kind: SignatureRecord.Kind, interrupted: Bool, roundRecords: UInt64,
                         key: TraceSigningKey) throws(TraceError) {
        let s = try SignatureRecord.signing(kind: kind, interrupted: interrupted, roundRecords: roundRecords,
                                            precedingRecords: sequence, digest: previousDigest, with: key)
        try append(.signature, round: -1, parts: [s.payload], compress: false)
    }

    /// Writes the final signature (with a signing key), the index of every record so far and the
    /// footer, and flushes the file to disk. The final signature commits to what the footer says.
    public func finish(roundRecords: Int, interrupted: Bool) throws(TraceError) {
        if let signingKey {
            try appendSignature(.final, interrupted: interrupted, roundRecords: UInt64(roundRecords), key: signingKey)
        }
        var index = ByteWriter(capacity: entries.count * TraceFormat.indexEntrySize)
        for e in entries {
            index.append(e.type.rawValue)
            index.append([UInt8](repeating: 0, count: 7))
            index.append(UInt64(bitPattern: Int64(e.round)))
            index.append(e.offset)
            index.append(e.size)
        }
        let indexEntry = try append(.index, round: -1, parts: [index.bytes], compress: false)
        var footer = ByteWriter(capacity: TraceFormat.footerPayloadSize)
        footer.append(indexEntry.offset)
        footer.append(UInt64(entries.count - 1))
        footer.append(UInt64(roundRecords))
        footer.append(UInt32(interrupted ? 1 : 0))
        footer.append(UInt32(0))
        try append(.footer, round: -1, parts: [footer.bytes], compress: false)
        if fsync(descriptor) != 0 { throw .io("flushing \(path) failed: \(String(cString: strerror(errno)))") }
    }
}

/// Calls `body` with raw pointers to every array (kept alive for the call).
func withPointers<R, E: Error>(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws(E) -> R) throws(E) -> R {
    func go(_ i: Int, _ acc: [UnsafeRawBufferPointer]) throws(E) -> R {
        if i == arrays.count { return try body(acc) }
        return try withBytes(arrays[i]) { p throws(E) in try go(i + 1, acc + [p]) }
    }
    return try go(0, [])
}

/// `withUnsafeBytes` keeping the body's error type (the standard library's only rethrows `any Error`).
func withBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    try bytes.withUnsafeBytes { p in Result { () throws(E) in try body(p) } }.get()
}
