/// What a state checkpoint's bytes are spent on (`desgd-bench checkpoint`): its vectors grouped by
/// the part of the state they hold, each part's bytes as the checkpoint encodes them (predictions
/// included, FORMAT.md §4.2) and compressed alone at the recorder's level. The parts compressed
/// alone add up to about the record's payload, which is one frame over all of them.
extension TraceCheckpoint {
    public struct Part: Sendable, Codable, Equatable {
        public var name: String
        public var vectors: Int
        /// 4 bytes per element: the raw float32 size.
        public var rawBytes: Int
        public var compressedBytes: Int
    }

    /// The parts in the order the recorder writes them; a vector shared by several (identical
    /// vectors are stored once) counts in the first.
    public func composition(compressionLevel: Int32 = TraceRecorder.defaultCompressionLevel) -> [Part] {
        let c = content
        var parts: [(String, [Int])] = [
            ("model", [c.parameters]), ("class-momentum buffer", c.classMomenta),
            ("server momentum", c.serverMomentum.map { [$0] } ?? []),
            ("honest momenta", c.honestMomenta.map(\.vector)), ("Byzantine momenta", c.byzantineMomenta.map(\.vector)),
            ("rule and attack states",
                (c.aggregatorStates + c.attackStates).flatMap { $0.vectors.map { Array($0.values).sorted() } ?? [] }),
        ]
        if let d = c.drift {
            parts += [
                ("drift: honest shadow's buffer", d.shadowClassMomenta + (d.shadowServerMomentum.map { [$0] } ?? [])),
                ("drift: model sums (binary64)",
                    [d.differenceSum.high, d.differenceSum.low, d.shadowSum.high, d.shadowSum.low]),
                ("drift: group cumulative sums (binary64)",
                    d.groups.flatMap { [$0.cumulativeSum.high, $0.cumulativeSum.low] }),
                ("drift: group recent sums",
                    d.groups.flatMap { ($0.recentSum.map { [$0] } ?? []) + ($0.window ?? []) }),
            ]
        }
        let compressor = ZstdCompressor(level: compressionLevel)
        var seen = Set<Int>()
        return parts.map { name, indices in
            let own = indices.filter { $0 >= 0 && $0 < c.vectors.count && seen.insert($0).inserted }
            var bytes: [UInt8] = []
            for i in own {
                let e = c.vectors[i], start = body.sectionStart + e.offset
                bytes += body.body[start ..< start + 4 * e.count]
            }
            let compressed = bytes.withUnsafeBytes { compressor.compress([$0]).count }
            return Part(name: name, vectors: own.count, rawBytes: bytes.count, compressedBytes: bytes.isEmpty ? 0
                : compressed)
        }
    }
}
