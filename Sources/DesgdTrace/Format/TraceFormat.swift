import Crypto
import Foundation

/// The constants and fixed-size structures of the trace format (traces/FORMAT.md).
///
/// A trace is a 16-byte signature followed by records. Every record is a 64-byte
/// ``RecordHeader``, a payload, and the SHA-256 of header and payload. Each header holds the
/// previous record's digest, so the records form a hash chain rooted in the signature.
public enum TraceFormat {
    /// Format version written by this program. A reader accepts any minor version of its major
    /// version (later minors only add JSON keys and record types a reader may skip).
    public static let major: UInt16 = 1
    public static let minor: UInt16 = 6

    /// Bytes 0–9 of a trace: non-ASCII first byte, the name, CR LF, ^Z, LF (as PNG's signature:
    /// a file mangled by text-mode transfer or truncated at once is recognised).
    public static let magic: [UInt8] = [0x8A, 0x44, 0x45, 0x53, 0x47, 0x44, 0x0D, 0x0A, 0x1A, 0x0A]
    public static let signatureSize = 16

    /// The 16-byte signature: magic, major, minor, 2 reserved zero bytes.
    public static var signature: [UInt8] {
        var b = ByteWriter()
        b.append(magic)
        b.append(major)
        b.append(minor)
        b.append(UInt16(0))
        return b.bytes
    }

    /// `DSGR`: the first four bytes of every record.
    public static let recordMagic: UInt32 = 0x5247_5344
    public static let recordHeaderSize = 64
    public static let digestSize = 32
    /// Header, digest: the bytes a record adds to its payload.
    public static let recordOverhead = recordHeaderSize + digestSize

    /// The footer record's payload size; the footer is always the file's last
    /// `footerRecordSize` bytes.
    public static let footerPayloadSize = 32
    public static let footerRecordSize = recordOverhead + footerPayloadSize
    /// One index entry: type (u32), reserved (u32), round (i64), offset (u64), record size (u64).
    public static let indexEntrySize = 32

    /// Limits a reader enforces before allocating (FORMAT.md §6): no payload and no decompressed
    /// body above 4 GiB; the body limit derived from the header (``TraceParsing/bodyLimit(_:)``)
    /// is usually far lower.
    public static let maximumPayload: UInt64 = 1 << 32
    public static let maximumBody: UInt64 = 1 << 32
    /// The longest chain of vector references a reader follows (FORMAT.md §4.1); the recorder writes
    /// chains of one link (a message predicted by the first honest message, which has no reference).
    public static let maximumReferenceDepth = 8

    /// The digest of the signature: the "previous digest" of the first record.
    public static var chainRoot: [UInt8] { chainRoot(of: signature[...]) }

    /// The chain root of a file whose first 16 bytes are `signature` (a file of another minor
    /// version has another signature, hence another root).
    public static func chainRoot(of signature: ArraySlice<UInt8>) -> [UInt8] {
        Array(SHA256.hash(data: Array(signature)))
    }
}

/// Record types (FORMAT.md §3).
public enum RecordType: UInt8, Sendable, CaseIterable {
    /// A record of a type this reader does not know, in a file of a later minor version; never
    /// written (type 0 in a file is damage).
    case unknown = 0
    /// The run's header: configuration, partition, data digests, model, backend, versions. First record.
    case header = 1
    /// The server state at the start of a round: model, class-momentum buffer, carried states.
    case keyframe = 2
    /// One round.
    case round = 3
    /// Offsets of every earlier record; written when the run ends.
    case index = 4
    /// Fixed-size last record pointing at the index.
    case footer = 5
    /// An Ed25519 signature of the previous record's digest (format 1.1, `desgd-record --sign`).
    case signature = 6
    /// The complete state of the run at the start of a round (format 1.2, `--checkpoint-every`):
    /// what re-execution and resumption start from. Its record header's round is −1, as for every
    /// type a 1.0 or 1.1 reader does not know (they refuse another value); its round is the number
    /// of round records before it, which its content repeats.
    case checkpoint = 7

    /// The type of a record in a file of minor version `fileMinor`: a type this reader knows;
    /// ``unknown`` for any other non-zero type in a file of a later minor version than this reader's
    /// (the reader skips such records, FORMAT.md §3.2); nil otherwise (damage).
    public init?(raw: UInt8, fileMinor: UInt16) {
        if raw != 0, let t = RecordType(rawValue: raw) {
            self = t
        } else if raw != 0 && fileMinor > TraceFormat.minor {
            self = .unknown
        } else {
            return nil
        }
    }

    /// The first minor version (of major 1) whose files may hold this type (FORMAT.md §3.2): a
    /// record of a type newer than its file's stated version is refused (FORMAT.md §6 item 2).
    public var introducedInMinor: UInt16 {
        switch self {
        case .signature: 1
        case .checkpoint: 2
        default: 0
        }
    }

    public var name: String {
        switch self {
        case .unknown: "unknown"
        case .header: "header"
        case .keyframe: "keyframe"
        case .round: "round"
        case .index: "index"
        case .footer: "footer"
        case .signature: "signature"
        case .checkpoint: "checkpoint"
        }
    }
}

/// How a payload is stored.
public enum PayloadEncoding: UInt8, Sendable {
    /// The payload is the body.
    case raw = 0
    /// The payload is one zstd frame (RFC 8878) with its content size declared; the body is its content.
    case zstd = 1
}

/// The 64-byte header in front of every record's payload (FORMAT.md §3.1).
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `DSGR` |
/// | 4 | 1 | type |
/// | 5 | 1 | payload encoding |
/// | 6 | 2 | reserved, 0 |
/// | 8 | 8 | sequence number (u64) |
/// | 16 | 8 | round (i64, −1 when none) |
/// | 24 | 8 | payload length (u64) |
/// | 32 | 32 | previous record's digest |
public struct RecordHeader: Sendable, Equatable {
    public var type: RecordType
    public var encoding: PayloadEncoding
    public var sequence: UInt64
    public var round: Int64
    public var payloadLength: UInt64
    public var previousDigest: [UInt8]

    public init(type: RecordType, encoding: PayloadEncoding, sequence: UInt64, round: Int64, payloadLength: UInt64,
                previousDigest: [UInt8]) {
        self.type = type
        self.encoding = encoding
        self.sequence = sequence
        self.round = round
        self.payloadLength = payloadLength
        self.previousDigest = previousDigest
    }

    public var bytes: [UInt8] {
        var b = ByteWriter()
        b.append(TraceFormat.recordMagic)
        b.append(type.rawValue)
        b.append(encoding.rawValue)
        b.append(UInt16(0))
        b.append(sequence)
        b.append(UInt64(bitPattern: round))
        b.append(payloadLength)
        b.append(previousDigest)
        return b.bytes
    }

    /// Parses 64 bytes; the reason on failure is a phrase ("bad record magic", …).
    /// `fileMinor` is the file's minor version: a record of an unknown type is ``RecordType/unknown``
    /// in a file of a later minor version, and a failure otherwise.
    public static func parse(_ bytes: ArraySlice<UInt8>, fileMinor: UInt16) -> Result<RecordHeader, ParseFailure> {
        guard bytes.count == TraceFormat.recordHeaderSize else { return .failure(ParseFailure("short record header")) }
        var r = ByteReader(bytes)
        guard r.u32() == TraceFormat.recordMagic else { return .failure(ParseFailure("bad record magic")) }
        let rawType = r.u8(), rawEncoding = r.u8()
        guard let type = RecordType(raw: rawType, fileMinor: fileMinor) else {
            return .failure(ParseFailure("unknown record type \(rawType)"))
        }
        guard let encoding = PayloadEncoding(rawValue: rawEncoding) else {
            return .failure(ParseFailure("unknown payload encoding \(rawEncoding)"))
        }
        guard r.u16() == 0 else { return .failure(ParseFailure("reserved header bytes are not zero")) }
        let sequence = r.u64()
        let round = Int64(bitPattern: r.u64())
        let length = r.u64()
        let previous = r.bytes(32)
        return .success(RecordHeader(type: type, encoding: encoding, sequence: sequence, round: round,
                                     payloadLength: length,
                                     previousDigest: previous))
    }

    /// The record's digest: SHA-256 of the 64 header bytes followed by the payload.
    public static func digest(header: [UInt8], payload: UnsafeRawBufferPointer) -> [UInt8] {
        var h = SHA256()
        h.update(data: header)
        h.update(bufferPointer: payload)
        return Array(h.finalize())
    }
}

/// Why some bytes did not parse, as a phrase the reader puts into a ``TraceError``.
public struct ParseFailure: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// Appends little-endian integers and bytes.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    public mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    public mutating func append(_ v: UInt8) { bytes.append(v) }
    public mutating func append<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads little-endian integers from bytes whose length the caller has checked.
public struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var position: Int
    public init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }
    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T {
        var v: T = 0
        for k in 0..<MemoryLayout<T>.size { v |= T(bytes[position + k]) << (8 * k) }
        position += MemoryLayout<T>.size
        return v
    }
    public mutating func u8() -> UInt8 { integer(UInt8.self) }
    public mutating func u16() -> UInt16 { integer(UInt16.self) }
    public mutating func u32() -> UInt32 { integer(UInt32.self) }
    public mutating func u64() -> UInt64 { integer(UInt64.self) }
    public mutating func bytes(_ n: Int) -> [UInt8] {
        defer { position += n }
        return Array(bytes[position ..< position + n])
    }
}
