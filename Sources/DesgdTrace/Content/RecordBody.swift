import Foundation

/// Where one vector lies in a record body's vector section (FORMAT.md §4.2).
public struct VectorEntry: Sendable, Equatable, Codable {
    /// Byte offset in the vector section.
    public var offset: Int
    /// Number of float32 elements (the entry occupies 4·count bytes).
    public var count: Int
    /// Index of an earlier vector of the same body whose bits this one is XORed with, if any.
    public var xor: Int?

    public init(offset: Int, count: Int, xor: Int? = nil) {
        self.offset = offset
        self.count = count
        self.xor = xor
    }
}

/// A JSON document that lists the vectors of its record.
public protocol RecordContent: Codable, Sendable {
    var vectors: [VectorEntry] { get set }
}

/// Builds the vector section of one record body, storing identical vectors once.
///
/// `add` returns the index a JSON field refers to. An identical vector added earlier (same bit
/// patterns, found by fingerprint, then compared) returns that vector's index: this is how the
/// colluding copies of a Byzantine message are stored once. O(d) per vector.
public struct VectorSectionBuilder {
    public private(set) var entries: [VectorEntry] = []
    public private(set) var data: [UInt8] = []
    var fingerprints: [UInt64: [Int]] = [:]
    var stored: [[Float]] = []

    public init() {}

    /// Adds `values`; with `xor` (an earlier index, same length), stores its XOR with that vector.
    public mutating func add(_ values: UnsafeBufferPointer<Float>, xor reference: Int? = nil) -> Int {
        let fp = VectorCodec.fingerprint(values)
        for k in fingerprints[fp] ?? [] where stored[k].count == values.count {
            if stored[k].withUnsafeBytes({ memcmp($0.baseAddress!, UnsafeRawPointer(values.baseAddress!), 4 * values.count) }) == 0 {
                return k
            }
        }
        let index = entries.count
        let usable = reference.flatMap { $0 < stored.count && stored[$0].count == values.count ? $0 : nil }
        entries.append(VectorEntry(offset: data.count, count: values.count, xor: usable))
        if let usable {
            stored[usable].withUnsafeBufferPointer { VectorCodec.encode(values, xor: $0, into: &data) }
        } else {
            VectorCodec.encode(values, xor: nil, into: &data)
        }
        stored.append(Array(values))
        fingerprints[fp, default: []].append(index)
        return index
    }

    public mutating func add(_ values: [Float], xor reference: Int? = nil) -> Int {
        values.withUnsafeBufferPointer { add($0, xor: reference) }
    }
}

/// The two parts of a body: `u32 length ‖ JSON ‖ vector section` (FORMAT.md §4).
public enum RecordBody {
    /// The JSON encoder of the format: sorted keys (deterministic bytes), non-finite numbers as the
    /// strings `"inf"`, `"-inf"` and `"nan"`.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The 4-byte length prefix and JSON of `content`.
    public static func jsonPart<C: RecordContent>(_ content: C, encoder: JSONEncoder) -> [UInt8] {
        let json = (try? encoder.encode(content)) ?? Data()
        var out = ByteWriter(capacity: json.count + 4)
        out.append(UInt32(json.count))
        out.append([UInt8](json))
        return out.bytes
    }
}

/// A parsed record body: its JSON content and its vector section, with bounds checked.
public struct ParsedBody<Content: RecordContent>: Sendable {
    public let content: Content
    /// The whole body; the vector section starts at `sectionStart` (kept in place: no copy).
    let body: [UInt8]
    let sectionStart: Int
    var sectionCount: Int { body.count - sectionStart }

    /// Parses and validates every vector entry (inside the section, XOR references earlier and of
    /// the same length). The reason on failure is a phrase for a ``TraceError``.
    public static func parse(_ body: [UInt8], decoder: JSONDecoder) -> Result<ParsedBody, ParseFailure> {
        guard body.count >= 4 else { return .failure(ParseFailure("the body is shorter than its 4-byte JSON length")) }
        var r = ByteReader(body[0..<4])
        let jsonLength = Int(r.u32())
        guard jsonLength <= body.count - 4 else {
            return .failure(ParseFailure("the JSON length \(jsonLength) exceeds the body (\(body.count - 4) bytes)"))
        }
        let content: Content
        do { content = try decoder.decode(Content.self, from: Data(body[4 ..< 4 + jsonLength])) } catch {
            return .failure(ParseFailure("malformed JSON content (\(Self.describe(error)))"))
        }
        let sectionCount = body.count - 4 - jsonLength
        for (i, e) in content.vectors.enumerated() {
            guard e.offset >= 0, e.count >= 0, e.count <= sectionCount / 4, e.offset <= sectionCount - 4 * e.count else {
                return .failure(ParseFailure("vector \(i) (offset \(e.offset), \(e.count) floats) lies outside the \(sectionCount)-byte vector section"))
            }
            if let x = e.xor, !(x >= 0 && x < i && content.vectors[x].count == e.count) {
                return .failure(ParseFailure("vector \(i) refers to vector \(x), which is not an earlier vector of the same length"))
            }
        }
        return .success(ParsedBody(content: content, body: body, sectionStart: 4 + jsonLength))
    }

    /// Vector `i` decoded (XOR references resolved). Indices come from `content`; an index out of
    /// range is reported, not trapped.
    public func vector(_ i: Int) -> Result<[Float], ParseFailure> {
        guard i >= 0 && i < content.vectors.count else {
            return .failure(ParseFailure("refers to vector \(i), but the record has \(content.vectors.count)"))
        }
        var reference: [Float]?
        if let x = content.vectors[i].xor {
            switch vector(x) {
            case .success(let v): reference = v
            case .failure(let f): return .failure(f)
            }
        }
        return vector(i, reference: reference)
    }

    /// Vector `i` XORed with `reference` (the decoded vector its entry names), or plain when nil.
    public func vector(_ i: Int, reference: [Float]?) -> Result<[Float], ParseFailure> {
        guard i >= 0 && i < content.vectors.count else {
            return .failure(ParseFailure("refers to vector \(i), but the record has \(content.vectors.count)"))
        }
        let e = content.vectors[i]
        guard (e.xor == nil) == (reference == nil), reference.map({ $0.count == e.count }) ?? true else {
            return .failure(ParseFailure("vector \(i): wrong XOR reference"))
        }
        var out = [Float](unsafeUninitializedCapacity: e.count) { b, n in n = e.count }
        out.withUnsafeMutableBufferPointer { o in
            if let reference {
                reference.withUnsafeBufferPointer { decode(i, into: o, xor: $0) }
            } else {
                decode(i, into: o, xor: nil)
            }
        }
        return .success(out)
    }

    /// Decodes vector `i` (bounds checked by `parse`) into `out`, XOR-ing with `reference`.
    public func decode(_ i: Int, into out: UnsafeMutableBufferPointer<Float>, xor reference: UnsafeBufferPointer<Float>?) {
        let e = content.vectors[i]
        precondition(out.count == e.count)
        body.withUnsafeBytes { s in
            let start = sectionStart + e.offset
            VectorCodec.decode(UnsafeRawBufferPointer(rebasing: s[start ..< start + 4 * e.count]), into: out, xor: reference)
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let c): "missing key \(path(c.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c): "wrong type at \(path(c.codingPath))"
        case DecodingError.dataCorrupted(let c): c.codingPath.isEmpty ? "not valid JSON" : "bad value at \(path(c.codingPath))"
        default: "\(error)"
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}
