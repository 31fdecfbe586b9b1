import DesgdNumerics
import DesgdRobust
import DesgdSimulation

/// One round read back from a trace: its JSON content and lazy access to its vectors.
public struct TraceRound: Sendable {
    let body: ParsedBody<RoundContent>
    let path: String
    let parameterCount: Int

    public var content: RoundContent { body.content }
    public var round: Int { body.content.round }
    public var hasVectors: Bool { body.content.hasVectors }
    public var aggregations: [AggregationRecord] { body.content.aggregations }

    /// The received messages of aggregation `a`, one row per sender.
    public func messages(_ a: Int) throws(TraceError) -> Matrix {
        let indices = try require(aggregation(a).messages, "messages")
        let d = parameterCount
        var storage = [Float](unsafeUninitializedCapacity: indices.count * d) { _, n in n = indices.count * d }
        // Each stored vector is decoded once, straight into its first row; copies are row copies,
        // references are rows decoded before (validate() checked every index and count).
        var firstRow: [Int: Int] = [:]
        let vectors = body.content.vectors
        for (row, i) in indices.enumerated() {
            if let known = firstRow[i] {
                storage.withUnsafeMutableBufferPointer { s in
                    (s.baseAddress! + row * d).update(from: s.baseAddress! + known * d, count: d)
                }
                continue
            }
            let reference: [Float]?
            if let x = vectors[i].ref, firstRow[x] == nil { reference = try vector(x) } else { reference = nil }
            storage.withUnsafeMutableBufferPointer { s in
                let out = UnsafeMutableBufferPointer(rebasing: s[row * d ..< (row + 1) * d])
                if let x = vectors[i].ref {
                    if let reference {
                        reference.withUnsafeBufferPointer { body.decode(i, into: out, reference: $0) }
                    } else {
                        let base = firstRow[x]! * d
                        body.decode(i, into: out, reference: UnsafeBufferPointer(rebasing: s[base ..< base + d]))
                    }
                } else {
                    body.decode(i, into: out, reference: nil)
                }
            }
            firstRow[i] = row
        }
        return Matrix(rows: indices.count, columns: d, storage: storage)
    }

    /// The aggregate of aggregation `a`.
    public func aggregate(_ a: Int) throws(TraceError) -> [Float] {
        try vector(try require(aggregation(a).aggregate, "aggregate"))
    }

    /// The model difference Δx applied in this round (x_{t+1} = fl(x_t + Δx)).
    public func modelDiff() throws(TraceError) -> [Float] {
        try vector(try require(body.content.modelDiff, "model diff"))
    }

    /// The rule's state before (`after: false`) or after the aggregation.
    public func state(_ a: Int, after: Bool) throws(TraceError) -> AggregatorState {
        let s = after ? try aggregation(a).stateAfter : try aggregation(a).stateBefore
        var vectors: [String: [Float]] = [:]
        for (name, i) in try require(s.vectors, "state vectors") { vectors[name] = try vector(i) }
        return AggregatorState(vectors: vectors, scalars: s.scalars)
    }

    /// Vector `i` of the record.
    public func vector(_ i: Int) throws(TraceError) -> [Float] {
        switch body.vector(i) {
        case .success(let v): return v
        case .failure(let f): throw TraceError.corrupted("\(path): round \(round): \(f.reason)")
        }
    }

    func aggregation(_ a: Int) throws(TraceError) -> AggregationRecord {
        guard a >= 0 && a < aggregations.count else {
            throw TraceError(.usage, "round \(round) has \(aggregations.count) aggregations; \(a) was asked for")
        }
        return aggregations[a]
    }

    func require<T>(_ value: T?, _ what: String) throws(TraceError) -> T {
        guard let value else {
            throw TraceError(.usage,
                "round \(round) was recorded without vectors (\(Setting.recordingMode) decisions or"
                + " sampled): it has no \(what)")
        }
        return value
    }
}

/// A keyframe read back from a trace: the server state at the start of ``round``.
public struct TraceKeyframe: Sendable {
    let body: ParsedBody<KeyframeContent>
    let path: String

    public var round: Int { body.content.round }
    public var content: KeyframeContent { body.content }

    public func parameters() throws(TraceError) -> [Float] { try vector(body.content.parameters) }

    /// The class-momentum buffer m_g^c, one vector per class (empty outside DeSGD).
    public func classMomenta() throws(TraceError) -> [[Float]] {
        var out: [[Float]] = []
        for i in body.content.classMomenta { out.append(try vector(i)) }
        return out
    }

    public func vector(_ i: Int) throws(TraceError) -> [Float] {
        switch body.vector(i) {
        case .success(let v): return v
        case .failure(let f): throw TraceError.corrupted("\(path): keyframe \(round): \(f.reason)")
        }
    }
}
