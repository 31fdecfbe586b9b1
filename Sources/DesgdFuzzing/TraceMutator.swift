import Crypto
import DesgdNumerics
import DesgdTrace
import Foundation

/// The structure-aware mutator of the trace fuzzer: it changes what a hostile writer would change —
/// a JSON field of the header, a keyframe or a round (numbers, lists, keys, the vector table), the
/// bytes of a vector section, a record header's fields, an index entry or the footer, whole records
/// (dropped, repeated, swapped) — and then, most of the time, recomputes every record's digest and
/// the chain (and often the index and footer), as anyone can: the digests are unkeyed. A mutator
/// that left the digests broken would only ever test the digest check.
///
/// Randomness comes from one keyed stream (``RandomPurpose/fuzzing``, round = libFuzzer's seed),
/// so a mutation is reproducible from its seed.
public struct TraceMutator {
    /// One record as found in the bytes: its 64-byte header, payload, and 32-byte digest.
    struct Record {
        var header: [UInt8]
        var payload: [UInt8]
        var digest: [UInt8]
        var type: UInt8 { header[4] }
        var encoding: UInt8 { header[5] }
    }

    var random: RandomStream

    public init(seed: UInt32) {
        random = RandomStream(seed: 0x6675_7A7A, purpose: .fuzzing, round: Int(seed))
    }

    /// A mutation of `bytes`, or nil when they do not split into a signature and records (the
    /// caller then falls back to libFuzzer's byte-level mutations).
    public mutating func mutate(_ bytes: [UInt8]) -> [UInt8]? {
        guard var records = Self.split(bytes), !records.isEmpty else { return nil }
        let signature = Array(bytes.prefix(TraceFormat.signatureSize))
        let resign = random.nextInt(below: 10) < 8
        switch random.nextInt(below: 11) {
        case 0, 1, 2: mutateJSON(&records)
        case 3: mutateVectorSection(&records)
        case 4: mutateRecordHeader(&records)
        case 5: mutateIndexOrFooter(&records)
        case 6: mutateStructure(&records)
        // What a hostile writer claims (HostileClaims.swift): hostile spec strings, large shapes,
        // checkpoint states no run produces.
        case 8: mutateSpecString(&records)
        case 9: return mutateShape(bytes)
        case 10: mutateCheckpointState(&records)
        default:
            // Truncation at any byte: a killed recorder, or a hostile cut.
            var all = Self.join(signature, records)
            all.removeLast(random.nextInt(below: min(all.count, 4096)) + 1)
            return all
        }
        if resign {
            if random.nextInt(below: 2) == 0 { Self.rebuildIndex(&records) }
            Self.rechain(&records)
        }
        return Self.join(signature, records)
    }

    /// A mutation of one record body with its selector byte (the records target,
    /// ``RecordBodyExercise``): a JSON node changed as in ``mutate(_:)``, bytes of the vector
    /// section changed, or the selector changed. Nil when the body's JSON does not parse.
    public mutating func mutateBody(_ input: [UInt8]) -> [UInt8]? {
        guard input.count >= 5 else { return nil }
        var selector = input[0]
        var body = Array(input.dropFirst())
        let length = Self.jsonLength(body)
        guard length <= body.count - 4 else { return nil }
        switch random.nextInt(below: 10) {
        case 0:
            selector = UInt8(random.nextInt(below: 3))
        case 1, 2:
            guard 4 + length < body.count else { return nil }
            for _ in 0 ..< 1 + random.nextInt(below: 8) {
                body[4 + length
                    + random.nextInt(below: body.count - 4 - length)] = UInt8(truncatingIfNeeded: random.nextUInt32())
            }
        default:
            guard var json = try? JSONSerialization.jsonObject(with: Data(body[4 ..< 4 + length]),
                options: [.fragmentsAllowed]) else { return nil }
            // A header's spec strings or a checkpoint's states made hostile (HostileClaims.swift).
            if var object = json as? [String: Any], random.nextInt(below: 3) == 0 {
                if selector % 4 == 0 { hostileSpecString(&object) } else if selector % 4 == 3 { hostileState(&object) }
                json = object
            }
            for _ in 0 ..< 1 + random.nextInt(below: 3) { json = mutateNode(json, depth: 0) }
            guard let out = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .fragmentsAllowed])
                else { return nil }
            var w = ByteWriter()
            w.append(UInt32(truncatingIfNeeded: out.count))
            w.append([UInt8](out))
            w.append(Array(body[(4 + length)...]))
            body = w.bytes
        }
        return [selector] + body
    }

    // MARK: Mutations

    static let interestingIntegers: [Int64] = [
        0, 1, -1, 2, 3, 7, 8, 9, 10, 11, 16, 63, 64, 65, 255, 256, 4095, 19_670, 19_671, 431_080, 65_536,
        Int64(Int32.max), Int64(Int32.max) + 1, Int64(UInt32.max), 1 << 32, 1 << 40, Int64.max / 4, Int64.max - 1,
        Int64.max, Int64.min,
    ]

    mutating func interesting() -> Int64 {
        Self.interestingIntegers[random.nextInt(below: Self.interestingIntegers.count)]
    }

    /// A random node of a parsed JSON document, changed: a number set to an interesting value, an
    /// array's element repeated, removed or swapped, a key removed, a value replaced by another's.
    mutating func mutateJSON(_ records: inout [Record]) {
        let candidates = records.indices.filter { records[$0].encoding == 1 }
        guard !candidates.isEmpty else { return }
        let k = candidates[random.nextInt(below: candidates.count)]
        guard let body = Self.decompress(records[k].payload), body.count >= 4 else { return }
        let length = Self.jsonLength(body)
        guard length <= body.count - 4,
              var json = try? JSONSerialization.jsonObject(with: Data(body[4 ..< 4 + length]),
                  options: [.fragmentsAllowed]) else { return }
        let steps = 1 + random.nextInt(below: 3)
        for _ in 0..<steps { json = mutateNode(json, depth: 0) }
        guard let out = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .fragmentsAllowed])
            else { return }
        var newBody = ByteWriter()
        newBody.append(UInt32(truncatingIfNeeded: out.count))
        newBody.append([UInt8](out))
        newBody.append(Array(body[(4 + length)...]))
        records[k].payload = ZstdCompressor(level: 1).compress([newBody.bytes.withUnsafeBytes { $0 }])
    }

    mutating func mutateNode(_ node: Any, depth: Int) -> Any {
        let descend = depth < 12 && random.nextInt(below: 4) != 0
        switch node {
        case var d as [String: Any] where !d.isEmpty:
            let keys = d.keys.sorted()
            let key = keys[random.nextInt(below: keys.count)]
            if descend, let child = d[key] {
                d[key] = mutateNode(child, depth: depth + 1)
            } else if random.nextInt(below: 3) == 0 {
                d.removeValue(forKey: key)
            } else {
                d[key] = replacement(for: d[key] as Any)
            }
            return d
        case var a as [Any] where !a.isEmpty:
            let i = random.nextInt(below: a.count)
            if descend { a[i] = mutateNode(a[i], depth: depth + 1); return a }
            switch random.nextInt(below: 5) {
            case 0: a.append(a[i])  // a duplicate: a class, a sender, a message, a vector entry twice
            case 1: a.remove(at: i)
            case 2: a.swapAt(i, random.nextInt(below: a.count))
            case 3: a.insert(a[i], at: random.nextInt(below: a.count))
            default: a[i] = replacement(for: a[i])
            }
            return a
        default:
            return replacement(for: node)
        }
    }

    mutating func replacement(for node: Any) -> Any {
        switch random.nextInt(below: 8) {
        case 0: return NSNull()
        case 1: return "nan"
        case 2: return [Any]()
        case 3: return Double(bitPattern: random.nextUInt64())
        case 4: return (node as? NSNumber).map {
            NSNumber(value: $0.int64Value &+ (Int64(random.nextInt(below: 5)) - 2)) } ?? NSNumber(value: interesting())
        default: return NSNumber(value: interesting())
        }
    }

    /// Bytes of a vector section changed (decoded values, NaN payloads, …), the JSON kept.
    mutating func mutateVectorSection(_ records: inout [Record]) {
        let candidates = records.indices.filter { records[$0].encoding == 1 && records[$0].type >= 2 }
        guard !candidates.isEmpty else { return }
        let k = candidates[random.nextInt(below: candidates.count)]
        guard var body = Self.decompress(records[k].payload), body.count > 4 else { return }
        let length = Self.jsonLength(body)
        guard 4 + length < body.count else { return }
        for _ in 0 ..< 1 + random.nextInt(below: 16) {
            body[4 + length
                + random.nextInt(below: body.count - 4 - length)] = UInt8(truncatingIfNeeded: random.nextUInt32())
        }
        records[k].payload = ZstdCompressor(level: 1).compress([body.withUnsafeBytes { $0 }])
    }

    /// A record header's type, encoding, sequence, round or length set to an interesting value.
    mutating func mutateRecordHeader(_ records: inout [Record]) {
        let k = random.nextInt(below: records.count)
        let fields: [(Int, Int)] = [(4, 1), (5, 1), (6, 2), (8, 8), (16, 8), (24, 8)]
        let (offset, size) = fields[random.nextInt(below: fields.count)]
        Self.store(UInt64(bitPattern: interesting()), into: &records[k].header, at: offset, size: size)
    }

    /// An index entry's type, round, offset or size, or a footer field, set to an interesting value.
    mutating func mutateIndexOrFooter(_ records: inout [Record]) {
        if let k = records.lastIndex(where: { $0.type == 4 }), !records[k].payload.isEmpty,
            random.nextInt(below: 2) == 0 {
            let entries = records[k].payload.count / TraceFormat.indexEntrySize
            guard entries > 0 else { return }
            let e = random.nextInt(below: entries) * TraceFormat.indexEntrySize
            let fields: [(Int, Int)] = [(0, 1), (1, 7), (8, 8), (16, 8), (24, 8)]
            let (offset, size) = fields[random.nextInt(below: fields.count)]
            Self.store(UInt64(bitPattern: interesting()), into: &records[k].payload, at: e + offset, size: size)
        } else if let k = records.lastIndex(where: { $0.type == 5 }),
            records[k].payload.count == TraceFormat.footerPayloadSize {
            let fields: [(Int, Int)] = [(0, 8), (8, 8), (16, 8), (24, 4), (28, 4)]
            let (offset, size) = fields[random.nextInt(below: fields.count)]
            Self.store(UInt64(bitPattern: interesting()), into: &records[k].payload, at: offset, size: size)
        }
    }

    /// Whole records dropped, repeated or swapped (a round twice, a keyframe out of place).
    mutating func mutateStructure(_ records: inout [Record]) {
        let i = random.nextInt(below: records.count), j = random.nextInt(below: records.count)
        switch random.nextInt(below: 3) {
        case 0: if records.count > 1 { records.remove(at: i) }
        case 1: records.insert(records[i], at: j)
        default: records.swapAt(i, j)
        }
    }

    /// A trace whose first record of type `type` (and round `round`, when given) has its JSON
    /// changed by `edit`, every digest recomputed and the index and footer rebuilt: what a hostile
    /// writer produces with a text editor and a SHA-256 tool. The regression tests build their cases
    /// with it. Nil when the record is not found or its JSON does not parse.
    /// `occurrence` picks a later matching record (0: the first).
    public static func editingJSON(of bytes: [UInt8], type: RecordType, round: Int? = nil, occurrence: Int = 0,
                                   _ edit: (inout [String: Any]) -> Void) -> [UInt8]? {
        guard var records = split(bytes) else { return nil }
        let wanted = round.map(Int64.init)
        let matching = records.indices.filter {
            records[$0].type == type.rawValue && (wanted == nil || wanted == roundOf(records[$0]))
        }
        guard occurrence >= 0 && occurrence < matching.count else { return nil }
        let k = matching[occurrence]
        guard let body = decompress(records[k].payload), body.count >= 4 else { return nil }
        let length = Self.jsonLength(body)
        guard length <= body.count - 4,
              var json = (try? JSONSerialization.jsonObject(with: Data(body[4 ..< 4 + length]))) as? [String: Any]
                  else { return nil }
        edit(&json)
        guard let out = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) else { return nil }
        var newBody = ByteWriter()
        newBody.append(UInt32(truncatingIfNeeded: out.count))
        newBody.append([UInt8](out))
        newBody.append(Array(body[(4 + length)...]))
        records[k].payload = ZstdCompressor(level: 1).compress([newBody.bytes.withUnsafeBytes { $0 }])
        rebuildIndex(&records)
        rechain(&records)
        return join(Array(bytes.prefix(TraceFormat.signatureSize)), records)
    }

    /// A trace whose first record of type `type` (and round `round`, when given) has its whole
    /// decompressed body (JSON length, JSON, vector section) changed by `edit`, every digest
    /// recomputed and the index and footer rebuilt: e.g. one honest message altered in its vector
    /// section, which `--verify` cannot see and `--reexecute` must. Nil when the record is not found.
    public static func editingBody(of bytes: [UInt8], type: RecordType, round: Int? = nil,
                                   _ edit: (inout [UInt8]) -> Void) -> [UInt8]? {
        guard var records = split(bytes) else { return nil }
        let wanted = round.map(Int64.init)
        guard let k = records.firstIndex(where: { r in
            r.type == type.rawValue && (wanted == nil || wanted == roundOf(r)) }),
              var body = decompress(records[k].payload) else { return nil }
        edit(&body)
        records[k].payload = ZstdCompressor(level: 1).compress([body.withUnsafeBytes { $0 }])
        rebuildIndex(&records)
        rechain(&records)
        return join(Array(bytes.prefix(TraceFormat.signatureSize)), records)
    }

    static func roundOf(_ r: Record) -> Int64 {
        var v: UInt64 = 0
        for b in 0..<8 { v |= UInt64(r.header[16 + b]) << (8 * UInt64(b)) }
        return Int64(bitPattern: v)
    }

    /// `bytes` with the footer's payload changed by `edit` and the footer's digest recomputed.
    public static func editingFooter(of bytes: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8]? {
        guard var records = split(bytes), let k = records.lastIndex(where: { $0.type == 5 }) else { return nil }
        edit(&records[k].payload)
        rechain(&records)
        return join(Array(bytes.prefix(TraceFormat.signatureSize)), records)
    }

    // MARK: Bytes

    /// The records after the signature, found leniently by their declared lengths; nil when the
    /// bytes do not even start like a trace.
    static func split(_ bytes: [UInt8]) -> [Record]? {
        guard bytes.count >= TraceFormat.signatureSize + TraceFormat.recordOverhead else { return nil }
        var records: [Record] = []
        var at = TraceFormat.signatureSize
        while bytes.count - at >= TraceFormat.recordOverhead {
            var length: UInt64 = 0
            for b in 0..<8 { length |= UInt64(bytes[at + 24 + b]) << (8 * UInt64(b)) }
            guard length <= UInt64(bytes.count - at - TraceFormat.recordOverhead) else { break }
            let p = at + TraceFormat.recordHeaderSize, d = p + Int(length)
            records.append(Record(header: Array(bytes[at ..< p]), payload: Array(bytes[p ..< d]),
                                  digest: Array(bytes[d ..< d + TraceFormat.digestSize])))
            at = d + TraceFormat.digestSize
        }
        return records
    }

    /// The u32 JSON length at the start of a body (FORMAT.md §4).
    static func jsonLength(_ body: [UInt8]) -> Int {
        var v = 0
        for b in 0..<4 { v |= Int(body[b]) << (8 * b) }
        return v
    }

    static func join(_ signature: [UInt8], _ records: [Record]) -> [UInt8] {
        var out = signature
        for r in records { out += r.header + r.payload + r.digest }
        return out
    }

    static func store(_ value: UInt64, into bytes: inout [UInt8], at offset: Int, size: Int) {
        for b in 0..<size where offset + b < bytes.count {
            bytes[offset + b] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(min(b, 7))))
        }
    }

    static func decompress(_ payload: [UInt8]) -> [UInt8]? {
        payload.withUnsafeBytes { try? ZstdDecompressor().decompress($0, limit: 1 << 26).get() }
    }

    /// Index and footer rewritten to describe the records as they now are (sequence numbers too),
    /// so that the index path, not only the scan, meets the mutated content.
    static func rebuildIndex(_ records: inout [Record]) {
        while let last = records.last, last.type == 4 || last.type == 5 { records.removeLast() }
        var table = ByteWriter(), offset = UInt64(TraceFormat.signatureSize), rounds: UInt64 = 0
        for (k, r) in records.enumerated() {
            var header = r.header
            store(UInt64(k), into: &header, at: 8, size: 8)
            records[k].header = header
            table.append(r.type)
            table.append([UInt8](repeating: 0, count: 7))
            table.append(Array(header[16 ..< 24]))
            table.append(offset)
            let size = UInt64(TraceFormat.recordOverhead + r.payload.count)
            table.append(size)
            offset += size
            if r.type == 3 { rounds += 1 }
        }
        let entries = UInt64(records.count)
        records.append(Record(header: RecordHeader(type: .index, encoding: .raw, sequence: entries, round: -1,
                                                   payloadLength: UInt64(table.bytes.count),
                                                   previousDigest: [UInt8](repeating: 0, count: 32)).bytes,
                              payload: table.bytes, digest: []))
        var footer = ByteWriter()
        footer.append(offset)
        footer.append(entries)
        footer.append(rounds)
        footer.append(UInt64(0))
        records.append(Record(header: RecordHeader(type: .footer, encoding: .raw, sequence: entries + 1, round: -1,
                                                   payloadLength: UInt64(TraceFormat.footerPayloadSize),
                                                   previousDigest: [UInt8](repeating: 0, count: 32)).bytes,
                              payload: footer.bytes, digest: []))
    }

    /// Every record's payload length, previous digest and digest recomputed, in order: a valid
    /// chain over whatever the records now hold, from `root` (the chain root of the file's signature).
    static func rechain(_ records: inout [Record], root: [UInt8] = TraceFormat.chainRoot) {
        var previous = root
        for k in records.indices {
            store(UInt64(records[k].payload.count), into: &records[k].header, at: 24, size: 8)
            records[k].header.replaceSubrange(32 ..< 64, with: previous)
            var h = SHA256()
            h.update(data: records[k].header)
            h.update(data: records[k].payload)
            records[k].digest = Array(h.finalize())
            previous = records[k].digest
        }
    }
}
