import Foundation
import DesgdNumerics

extension TraceReader {
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

    /// Checks every record's digest and its link to the previous record, in file order
    /// (FORMAT.md §3.3). Each record is hashed in slices, so memory does not depend on its size.
    public func verifyChain() -> ChainReport {
        var report = ChainReport(verifiedRecords: 0, totalRecords: records.count, failure: nil, failedRound: nil,
            lastDigest: "")
        var previous = file.chainRoot
        for (k, e) in records.enumerated() {
            do throws(ParseFailure) {
                let (headerBytes, computed, stored) = try file.streamedDigest(e)
                let h = try RecordHeader.parse(headerBytes[...], fileMinor: file.signature.minor).get()
                guard h.type == e.type, h.round == Int64(e.round), h.sequence == UInt64(k),
                      h.payloadLength == e.size - UInt64(TraceFormat.recordOverhead) else {
                    throw ParseFailure("its header does not match its place in the file"
                        + " (type, round, sequence or length)")
                }
                guard computed == stored else {
                    throw ParseFailure("digest mismatch: the record's bytes were altered or"
                        + " damaged (offset \(e.offset))") }
                guard h.previousDigest == previous else {
                    throw ParseFailure("chain broken: the previous record is not the one this record was written after")
                }
                previous = computed
                report.verifiedRecords += 1
                report.lastDigest = Hex.encode(computed)
            } catch {
                report.failure = "\(TraceFile.describe(e)): \(error.reason)"
                report.failedRound = e.type == .round ? e.round : nil
                return report
            }
        }
        return report
    }
}

extension TraceReader {
    /// The digest stored at the end of record `k` (lowercase hex): the chain's value after it
    /// (FORMAT.md §3.3), what a fork names its parent by (§5.1.1). Trust it once ``verifyChain()``
    /// holds.
    public func storedDigest(ofRecord k: Int) throws(TraceError) -> String {
        guard k >= 0 && k < records.count else {
            throw TraceError.usage("\(path) has \(records.count) records; record \(k) was asked for")
        }
        let e = records[k]
        guard e.size >= UInt64(TraceFormat.recordOverhead) else {
            throw TraceError.corrupted("\(path): \(TraceFile.describe(e)) is shorter than a record")
        }
        let bytes = try file.source.read(e.offset + e.size - UInt64(TraceFormat.digestSize), TraceFormat.digestSize)
        return Hex.encode(bytes)
    }
}
