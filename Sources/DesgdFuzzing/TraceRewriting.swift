import Crypto
import DesgdNumerics
import DesgdTrace
import Foundation

/// What a hostile writer does to a whole trace: states another minor version in the signature (and
/// the header's `formatVersion`), edits the header's JSON, inserts records of types a reader does
/// not know, and recomputes index, footer, every digest and the chain from the file's own signature
/// (traces/FORMAT.md §3.3: they are unkeyed). The regression tests of FORMAT.md §6 build their cases
/// with it, as with ``TraceMutator/editingJSON(of:type:round:occurrence:_:)``.
public enum TraceRewriting {
    /// `bytes` rewritten: the signature's minor version set to `minor` (and `formatVersion` with it),
    /// the header JSON changed by `edit`, and a raw record of type `unknownType` (round −1, a small
    /// payload) inserted before the index when given. Nil when the bytes are not a trace.
    public static func rewrite(_ bytes: [UInt8], minor: UInt16? = nil, unknownType: UInt8? = nil,
                               header edit: (inout [String: Any]) -> Void = { _ in }) -> [UInt8]? {
        var signature = Array(bytes.prefix(TraceFormat.signatureSize))
        if let minor { TraceMutator.store(UInt64(minor), into: &signature, at: 12, size: 2) }
        let stated = Int(signature[12]) | Int(signature[13]) << 8
        var withSignature = bytes
        withSignature.replaceSubrange(0 ..< signature.count, with: signature)
        guard let edited = TraceMutator.editingJSON(of: withSignature, type: .header, { json in
            json["formatVersion"] = [Int(TraceFormat.major), stated]
            edit(&json)
        }), var records = TraceMutator.split(edited) else { return nil }
        if let unknownType {
            let at = records.lastIndex(where: { $0.type != 4 && $0.type != 5 }).map { $0 + 1 } ?? records.count
            var header = RecordHeader(type: .header, encoding: .raw, sequence: 0, round: -1, payloadLength: 3,
                                      previousDigest: [UInt8](repeating: 0, count: 32)).bytes
            header[4] = unknownType
            records.insert(TraceMutator.Record(header: header, payload: [1, 2, 3], digest: []), at: at)
            TraceMutator.rebuildIndex(&records)
        }
        TraceMutator.rechain(&records, root: TraceFormat.chainRoot(of: signature[...]))
        return TraceMutator.join(signature, records)
    }
}
