import Foundation

extension TraceReader {
    /// Who signed how much of the file (traces/FORMAT.md §3.6). `chain` is ``verifyChain()``'s
    /// report when the caller has it (the chain is walked once); the signatures are then checked
    /// by reading each record's 64-byte header and the small payloads of signature, index and
    /// footer records.
    public func verifySignatures(chain: ChainReport? = nil) -> SignatureReport {
        let chain = chain ?? verifyChain()
        var collected: [SignatureVerifier.Record] = []
        collected.reserveCapacity(records.count)
        var verified = chain.verifiedRecords
        for (i, e) in records.enumerated() {
            var previous: [UInt8] = []
            var payload: ArraySlice<UInt8>?
            if i < chain.verifiedRecords, [.signature, .index, .footer].contains(e.type) {
                if let (h, p, _) = try? file.record(e, sequence: i, limit: TraceFormat.maximumPayload) {
                    previous = h.previousDigest
                    payload = p[...]
                }
            } else if e.offset <= fileSize, fileSize - e.offset >= UInt64(TraceFormat.recordHeaderSize),
                      let bytes = try? file.source.read(e.offset, TraceFormat.recordHeaderSize),
                      case .success(let h) = RecordHeader.parse(bytes[...], fileMinor: file.signature.minor) {
                previous = h.previousDigest
            }
            // A record the chain vouched for but that no longer reads (the file changed meanwhile)
            // ends the verified prefix.
            if i < verified, previous.isEmpty { verified = i }
            collected.append(.init(entry: e, previousDigest: previous, payload: payload))
        }
        let end = records.last.map { $0.offset + $0.size } ?? UInt64(TraceFormat.signatureSize)
        let trailing: UInt64 = fileSize > end ? fileSize - end : 0
        let failure = chain.failure
            ?? (verified < chain.verifiedRecords ? "record \(verified): it no longer reads" : nil)
        return SignatureVerifier.verify(collected, chain: .init(verifiedRecords: verified, failure: failure),
            trailingBytes: trailing)
    }
}
