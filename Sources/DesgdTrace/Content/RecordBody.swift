import DesgdNumerics
import Foundation

/// Where one vector lies in a record body's vector section and how it is coded (FORMAT.md §4.2).
public struct VectorEntry: Sendable, Equatable, Codable {
    /// Byte offset in the vector section.
    public var offset: Int
    /// Number of float32 elements (the entry occupies 4·count bytes).
    public var count: Int
    /// Index of an earlier vector of the same body (same count) that predicts this one, if any.
    public var ref: Int?
    /// With `ref`: the bit pattern of a binary32 scale s; the prediction is fl(s × ref) instead of ref.
    public var scaleBits: UInt32?

    public init(offset: Int, count: Int, ref: Int? = nil, scaleBits: UInt32? = nil) {
        self.offset = offset
        self.count = count
        self.ref = ref
        self.scaleBits = scaleBits
    }

    public var scale: Float? { scaleBits.map(Float.init(bitPattern:)) }
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
///
/// Vectors added as arrays or matrix rows are kept by reference (their storage is shared, not
/// copied) for the comparisons and predictions of later ones: copying them cost a paper round
/// 15 MB of fresh memory. Only ``add(_:predictedBy:)-(UnsafeBufferPointer<Float>,_)`` copies.
public struct VectorSectionBuilder {
    public private(set) var entries: [VectorEntry] = []
    public private(set) var data: [UInt8] = []
    var fingerprints: [UInt64: [Int]] = [:]
    var stored: [Stored] = []

    /// A vector added earlier: `count` floats of `storage` from `start`.
    struct Stored {
        let storage: [Float]
        let start: Int
        let count: Int

        func withBuffer<R>(_ body: (UnsafeBufferPointer<Float>) -> R) -> R {
            storage.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start ..< start + count])) }
        }
    }

    public init() {}

    /// A builder whose section has room for `floats` float32 values without growing (a round
    /// record's are known before it is built: growing a section of 20 MB by doubling copied it
    /// about once more and touched fresh pages each time).
    public init(reservingFloats floats: Int) {
        data.reserveCapacity(4 * max(0, floats))
    }

    /// The same, building the section in `storage`'s buffer, which it takes (leaving an empty
    /// array; the buffer is reused when it is not shared and large enough).
    public init(reservingFloats floats: Int, reusing storage: inout [UInt8]) {
        swap(&data, &storage)
        data.removeAll(keepingCapacity: true)
        data.reserveCapacity(4 * max(0, floats))
    }

    /// How a vector may be predicted from an earlier one.
    public enum Prediction: Sendable {
        /// By the earlier vector itself (near-copies: the honest messages of one aggregation).
        case copy(of: Int)
        /// By the least-squares multiple c·r of the earlier vector r, c = ⟨v, r⟩/⟨r, r⟩ rounded to
        /// binary32, when both are finite and |cos(v, r)| > ½ (otherwise stored plain).
        case multiple(of: Int)
    }

    /// Adds `values` (copied: the buffer may not outlive the call), predicted as asked when that
    /// applies; returns its index.
    public mutating func add(_ values: UnsafeBufferPointer<Float>, predictedBy prediction: Prediction? = nil) -> Int {
        add(values, predictedBy: prediction) { Stored(storage: Array(values), start: 0, count: values.count) }
    }

    public mutating func add(_ values: [Float], predictedBy prediction: Prediction? = nil) -> Int {
        values.withUnsafeBufferPointer {
            add($0, predictedBy: prediction) { Stored(storage: values, start: 0, count: values.count) }
        }
    }

    /// Adds row `row` of `matrix`, as ``add(_:predictedBy:)-([Float],_)`` adds an array.
    public mutating func add(row: Int, of matrix: Matrix, predictedBy prediction: Prediction? = nil) -> Int {
        matrix.withRow(row) { r in
            add(r, predictedBy: prediction) {
                Stored(storage: matrix.storage, start: row * matrix.columns, count: matrix.columns)
            }
        }
    }

    /// `keep` returns what later vectors are compared with and predicted from: the same values.
    mutating func add(_ values: UnsafeBufferPointer<Float>, predictedBy prediction: Prediction?,
        keep: () -> Stored) -> Int {
        let fp = VectorCodec.fingerprint(values)
        for k in fingerprints[fp] ?? [] where stored[k].count == values.count {
            if stored[k]
                .withBuffer({ memcmp($0.baseAddress!, UnsafeRawPointer(values.baseAddress!), 4 * values.count) }) == 0 {
                return k
            }
        }
        let index = entries.count
        var ref: Int?, scale: Float?
        switch prediction {
        case .copy(let k)? where k < stored.count && stored[k].count == values.count:
            ref = k
        case .multiple(let k)? where k < stored.count && stored[k].count == values.count:
            stored[k].withBuffer { r in
                guard VectorMath.allFinite(values) && VectorMath.allFinite(r) else { return }
                let vr = VectorMath.dot(values, r), rr = VectorMath.squaredNorm(r), vv = VectorMath.squaredNorm(values)
                guard rr > 0, vv > 0, abs(vr) > 0.5 * (vv * rr).squareRoot() else { return }
                let c = Float(vr / rr)
                if c.isFinite && c != 0 { (ref, scale) = (k, c) }
            }
        default: break
        }
        entries.append(VectorEntry(offset: data.count, count: values.count, ref: ref, scaleBits: scale?.bitPattern))
        if let ref {
            stored[ref].withBuffer { VectorCodec.encode(values, prediction: $0, scale: scale, into: &data) }
        } else {
            VectorCodec.encode(values, prediction: nil, into: &data)
        }
        stored.append(keep())
        fingerprints[fp, default: []].append(index)
        return index
    }
}

/// The two parts of a body: `u32 length ‖ JSON ‖ vector section` (FORMAT.md §4).
public enum RecordBody {
    /// The JSON encoder of the format: sorted keys (deterministic bytes), non-finite numbers as the
    /// strings `"inf"`, `"-inf"` and `"nan"`.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
            nan: "nan")
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
            nan: "nan")
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

    /// Parses and validates every vector entry (inside the section, references earlier and of
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
            guard e.offset >= 0, e.count >= 0, e.count <= sectionCount / 4, e.offset <= sectionCount - 4 * e.count
                else {
                return .failure(ParseFailure("vector \(i) (offset \(e.offset), \(e.count) floats) lies outside the "
                    + "\(sectionCount)-byte vector section"))
            }
            if let x = e.ref, !(x >= 0 && x < i && content.vectors[x].count == e.count) {
                return .failure(ParseFailure("vector \(i) refers to vector \(x), which is not an"
                    + " earlier vector of the same length"))
            }
            if e.scaleBits != nil && e.ref == nil {
                return .failure(ParseFailure("vector \(i) has a scale but no reference"))
            }
            if let c = e.scale, !(c.isFinite && c != 0) {
                return .failure(ParseFailure("vector \(i) has the scale \(c)"))
            }
        }
        return .success(ParsedBody(content: content, body: body, sectionStart: 4 + jsonLength))
    }

    /// Vector `i` decoded (references resolved). Indices come from `content`; an index out of
    /// range is reported, not trapped. The chain of references (a vector, its reference, that
    /// one's reference, …) is followed iteratively and refused beyond
    /// ``TraceFormat/maximumReferenceDepth`` links (FORMAT.md §4.1): a file cannot make the reader
    /// recurse or decode without bound.
    public func vector(_ i: Int) -> Result<[Float], ParseFailure> {
        guard i >= 0 && i < content.vectors.count else {
            return .failure(ParseFailure("refers to vector \(i), but the record has \(content.vectors.count)"))
        }
        var chain = [i]
        while let x = content.vectors[chain[chain.count - 1]].ref {
            guard chain.count <= TraceFormat.maximumReferenceDepth else {
                return .failure(ParseFailure("vector \(i)'s chain of references is longer than "
                    + "\(TraceFormat.maximumReferenceDepth)"))
            }
            chain.append(x)  // parse() checked x < the referring index: the chain ends
        }
        let count = content.vectors[i].count
        var reference: [Float]?
        for k in chain.reversed() {
            var out = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
            out.withUnsafeMutableBufferPointer { o in
                if let reference {
                    reference.withUnsafeBufferPointer { decode(k, into: o, reference: $0) }
                } else {
                    decode(k, into: o, reference: nil)
                }
            }
            reference = out
        }
        return .success(reference ?? [])
    }

    /// Decodes vector `i` (bounds checked by `parse`) into `out`, given its decoded reference vector
    /// (nil when the entry has none).
    public func decode(_ i: Int, into out: UnsafeMutableBufferPointer<Float>, reference: UnsafeBufferPointer<Float>?) {
        let e = content.vectors[i]
        precondition(out.count == e.count && (reference == nil) == (e.ref == nil))
        body.withUnsafeBytes { s in
            let start = sectionStart + e.offset
            let bytes = UnsafeRawBufferPointer(rebasing: s[start ..< start + 4 * e.count])
            guard let reference else { VectorCodec.decode(bytes, into: out, prediction: nil); return }
            if let scale = e.scale {
                var p = [Float](unsafeUninitializedCapacity: e.count) { _, n in n = e.count }
                p.withUnsafeMutableBufferPointer { VectorCodec.predict(from: reference, scale: scale, into: $0) }
                p.withUnsafeBufferPointer { VectorCodec.decode(bytes, into: out, prediction: $0) }
            } else {
                VectorCodec.decode(bytes, into: out, prediction: reference)
            }
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let c): "missing key \(path(c.codingPath + [key]))"
        case DecodingError.typeMismatch(_, let c),
            DecodingError.valueNotFound(_, let c): "wrong type at \(path(c.codingPath))"
        case DecodingError.dataCorrupted(let c): c.codingPath.isEmpty ? "not valid JSON"
            : "bad value at \(path(c.codingPath))"
        default: "\(error)"
        }
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.map {
            $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            .trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}
