import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// The pure part of reading a trace: bytes in, a value or a ``ParseFailure`` out; no file access,
/// no chain walking (``TraceFile`` and ``TraceReader`` do those). This is what the fuzzer drives.
///
/// A trace comes from the party being audited and its digests are unkeyed, so every function here
/// treats its bytes as hostile even when the digest matches (FORMAT.md §6): every size, count,
/// offset and index is checked with overflow-checked arithmetic before it is used, nothing recurses
/// on file content, and nothing is allocated beyond what the input's own length or the body limit
/// bounds.
public enum TraceParsing {
    /// Major and minor version of the 16-byte signature (FORMAT.md §2).
    public struct Signature: Sendable, Equatable {
        public var major: UInt16
        public var minor: UInt16
        public init(major: UInt16, minor: UInt16) {
            self.major = major
            self.minor = minor
        }
    }

    /// Checks the magic and the major version.
    public static func signature(_ bytes: ArraySlice<UInt8>) throws(ParseFailure) -> Signature {
        guard bytes.count == TraceFormat.signatureSize else { throw ParseFailure("short signature") }
        guard Array(bytes.prefix(10)) == TraceFormat.magic else {
            throw ParseFailure("not a desgd trace (its first bytes are not the trace signature)")
        }
        var r = ByteReader(bytes.dropFirst(10))
        let s = Signature(major: r.u16(), minor: r.u16())
        guard s.major == TraceFormat.major else {
            throw ParseFailure("trace format \(s.major).\(s.minor); this desgd reads format \(TraceFormat.major).x: use"
                + " a desgd that matches the trace")
        }
        return s
    }

    /// One record whose bytes are `header ‖ payload ‖ digest`: parses the header, checks that it
    /// declares exactly `payload.count` bytes and that the digest is SHA-256(header ‖ payload).
    /// Returns the header and the digest.
    public static func record(header: ArraySlice<UInt8>, payload: UnsafeRawBufferPointer, digest: ArraySlice<UInt8>,
                              fileMinor: UInt16) throws(ParseFailure) -> (RecordHeader, [UInt8]) {
        let h = try RecordHeader.parse(header, fileMinor: fileMinor).get()
        guard h.payloadLength == UInt64(payload.count) else {
            throw ParseFailure("its header declares \(h.payloadLength) payload bytes, the"
                + " record holds \(payload.count)")
        }
        guard digest.count == TraceFormat.digestSize else { throw ParseFailure("short digest") }
        let computed = RecordHeader.digest(header: Array(header), payload: payload)
        guard computed.elementsEqual(digest) else {
            throw ParseFailure("digest mismatch: the record's bytes were altered or damaged")
        }
        return (h, computed)
    }

    /// The footer's payload (FORMAT.md §3.5).
    public struct Footer: Sendable, Equatable {
        public var indexOffset: UInt64
        public var entryCount: UInt64
        public var roundCount: UInt64
        public var interrupted: Bool
    }

    public static func footer(_ payload: ArraySlice<UInt8>) throws(ParseFailure) -> Footer {
        guard payload.count == TraceFormat.footerPayloadSize else {
            throw ParseFailure("the footer's payload is not \(TraceFormat.footerPayloadSize) bytes")
        }
        var r = ByteReader(payload)
        let f = Footer(indexOffset: r.u64(), entryCount: r.u64(), roundCount: r.u64(), interrupted: false)
        let flags = r.u32(), reserved = r.u32()
        guard flags & ~1 == 0, reserved == 0 else { throw ParseFailure("the footer's reserved bits are not zero") }
        return Footer(indexOffset: f.indexOffset, entryCount: f.entryCount, roundCount: f.roundCount,
            interrupted: flags & 1 != 0)
    }

    /// The index's entries (FORMAT.md §3.4), checked to tile the file from the end of the signature
    /// to `footer.indexOffset` with the header record first, round records in order
    /// `firstRound`, `firstRound` + 1, … (0 but in a fork, FORMAT.md §5.1.1), and as many round
    /// records as the footer says. `payload` must hold exactly `footer.entryCount` entries.
    public static func index(_ payload: ArraySlice<UInt8>, footer: Footer, fileMinor: UInt16,
                             firstRound: Int = 0) throws(ParseFailure) -> [IndexEntry] {
        let (bytes, overflow) = footer.entryCount.multipliedReportingOverflow(by: UInt64(TraceFormat.indexEntrySize))
        guard !overflow, bytes == UInt64(payload.count) else {
            throw ParseFailure("the index holds \(payload.count) bytes, not \(footer.entryCount) entries of "
                + "\(TraceFormat.indexEntrySize)")
        }
        let overhead = UInt64(TraceFormat.recordOverhead)
        var entries: [IndexEntry] = []
        entries.reserveCapacity(payload.count / TraceFormat.indexEntrySize)
        var r = ByteReader(payload)
        var expected = UInt64(TraceFormat.signatureSize), nextRound = firstRound
        for k in 0 ..< payload.count / TraceFormat.indexEntrySize {
            let rawType = r.u8()
            let reserved = r.bytes(7)
            let round = Int64(bitPattern: r.u64()), offset = r.u64(), size = r.u64()
            guard reserved.allSatisfy({ $0 == 0 }) else {
                throw ParseFailure("index entry \(k): reserved bytes are not zero")
            }
            guard let type = RecordType(raw: rawType, fileMinor: fileMinor) else {
                throw ParseFailure("index entry \(k): unknown record type \(rawType)")
            }
            guard offset == expected else {
                throw ParseFailure("index entry \(k): offset \(offset), expected \(expected)")
            }
            let (end, o) = offset.addingReportingOverflow(size)
            guard size >= overhead, !o, end <= footer.indexOffset else {
                throw ParseFailure("index entry \(k): its extent (offset \(offset), \(size) bytes) passes the index")
            }
            guard (k == 0) == (type == .header) else {
                throw ParseFailure("index entry \(k): the header record must be the first and only the first")
            }
            switch type {
            case .round:
                guard round == Int64(nextRound) else {
                    throw ParseFailure("index entry \(k): round \(round), expected round \(nextRound)")
                }
                nextRound += 1
            case .keyframe:
                guard round >= Int64(firstRound) && round <= Int64(nextRound) else {
                    throw ParseFailure("index entry \(k): a keyframe of round \(round) after round \(nextRound - 1)")
                }
            case .header, .index, .footer:
                guard round == -1 else {
                    throw ParseFailure("index entry \(k): a \(type.name) record with round \(round)")
                }
                guard type == .header else {
                    throw ParseFailure("index entry \(k): an \(type.name) record inside the index")
                }
            default:
                guard round == -1 else {
                    throw ParseFailure("index entry \(k): a \(type.name) record with round \(round)")
                }
            }
            entries.append(IndexEntry(type: type, round: Int(round), offset: offset, size: size))
            expected = end
        }
        guard expected == footer.indexOffset else {
            throw ParseFailure("the index's records end at \(expected), the index starts at \(footer.indexOffset)")
        }
        guard UInt64(nextRound - firstRound) == footer.roundCount else {
            throw ParseFailure("the footer counts \(footer.roundCount) rounds, the index \(nextRound - firstRound)")
        }
        return entries
    }

    /// The body of a record: its payload, or the content of its one zstd frame, refused above `limit`.
    public static func body(_ payload: UnsafeRawBufferPointer, encoding: PayloadEncoding, limit: UInt64,
                            decompressor: ZstdDecompressor) throws(ParseFailure) -> [UInt8] {
        switch encoding {
        case .raw:
            guard UInt64(payload.count) <= limit else {
                throw ParseFailure("the payload of \(payload.count) bytes is above the limit of \(limit)")
            }
            return Array(payload)
        case .zstd:
            return try decompressor.decompress(payload, limit: limit).get()
        }
    }

    /// The largest body a header record may have (FORMAT.md §6 item 5).
    public static let headerBodyLimit: UInt64 = 1 << 28

    /// The largest body a keyframe or round record of this run can have (FORMAT.md §6 item 5):
    /// B = min(2³², 2²⁶ + 4·d·(3·s·K + C + 3·G + 8)), computed with overflow-checked arithmetic
    /// (an overflow means "above 2³²"). The header has been validated, so d, s, K and G are small;
    /// the check is there so that this function is safe on its own.
    public static func bodyLimit(_ header: TraceHeader) -> UInt64 {
        let d = UInt64(max(1, header.model.parameterCount))
        let s = UInt64(max(1, header.groups.map { $0.honestWorkers.count + $0.byzantineWorkers.count }.max() ?? 1))
        let K = UInt64(max(1, header.config.classesPerRound))
        let C = UInt64(max(0, header.config.classes)), G = UInt64(header.groups.count)
        func mul(_ a: UInt64, _ b: UInt64) -> UInt64? {
            let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r
        }
        func add(_ a: UInt64, _ b: UInt64) -> UInt64? { let (r, o) = a.addingReportingOverflow(b); return o ? nil : r }
        guard let sK = mul(3, s).flatMap({ mul($0, K) }), let g3 = mul(3, G),
              let inner = add(sK, C).flatMap({ add($0, g3) }).flatMap({ add($0, 8) }),
              let vectors = mul(4, d).flatMap({ mul($0, inner) }), let total = add(1 << 26, vectors)
        else { return TraceFormat.maximumBody }
        return min(TraceFormat.maximumBody, total)
    }

    /// The header record's body: JSON parsed and every field validated (FORMAT.md §5.1, §6 item 8).
    public static func header(_ body: [UInt8], signature: Signature,
        decoder: JSONDecoder) throws(ParseFailure) -> TraceHeader {
        let parsed = try ParsedBody<TraceHeader>.parse(body, decoder: decoder).get()
        try parsed.content.validate(signature: signature)
        return parsed.content
    }

    /// A round record's body, validated against the header (FORMAT.md §5.3, §6 items 6–8).
    public static func round(_ body: [UInt8], header: TraceHeader, expectedRound: Int,
                             decoder: JSONDecoder) throws(ParseFailure) -> ParsedBody<RoundContent> {
        let parsed = try ParsedBody<RoundContent>.parse(body, decoder: decoder).get()
        try parsed.content.validate(against: header, expectedRound: expectedRound)
        return parsed
    }

    /// A keyframe's body, validated against the header (FORMAT.md §5.2, §6 items 6–8).
    public static func keyframe(_ body: [UInt8], header: TraceHeader, expectedRound: Int,
                                decoder: JSONDecoder) throws(ParseFailure) -> ParsedBody<KeyframeContent> {
        let parsed = try ParsedBody<KeyframeContent>.parse(body, decoder: decoder).get()
        try parsed.content.validate(against: header, expectedRound: expectedRound)
        return parsed
    }
}
