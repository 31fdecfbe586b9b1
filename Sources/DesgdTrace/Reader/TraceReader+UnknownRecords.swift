import Foundation

/// A record of a type this reader does not know, in a file of a later minor version: skipped, as
/// FORMAT.md §3.2 says, but listed by the audit so that nothing is skipped silently.
public struct SkippedRecord: Sendable, Codable, Equatable {
    /// Its sequence number (position in the file).
    public var record: Int
    /// Its type byte.
    public var type: Int
    public var offset: UInt64
    /// Header, payload and digest.
    public var size: UInt64

    public init(record: Int, type: Int, offset: UInt64, size: UInt64) {
        self.record = record
        self.type = type
        self.offset = offset
        self.size = size
    }

    /// E.g. `record 7 (type 9, offset 1234, 160 bytes)`.
    public var description: String { "record \(record) (type \(type), offset \(offset), \(size) bytes)" }
}

extension TraceReader {
    /// The records of types this reader does not know, which it skipped (FORMAT.md §3.2), in file
    /// order: one 64-byte header read each for the type byte (-1 when it cannot be read).
    public func skippedRecords() -> [SkippedRecord] {
        records.enumerated().filter { $0.element.type == .unknown }.map { k, e in
            let type = (try? file.source.read(e.offset + 4, 1)).flatMap(\.first).map(Int.init) ?? -1
            return SkippedRecord(record: k, type: type, offset: e.offset, size: e.size)
        }
    }
}
