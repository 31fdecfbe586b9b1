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
            throw TraceError(.usage, "round \(round) was recorded without vectors (--record decisions or sampled): it has no \(what)")
        }
        return value
    }

    /// Checks what the JSON promises: the round number, one message per sender, and every
    /// referenced vector present with the model's length.
    func validate(expectedRound: Int) throws(TraceError) {
        let c = body.content
        func fail(_ m: String) -> TraceError { TraceError.corrupted("\(path): round \(expectedRound): \(m)") }
        guard c.round == expectedRound else { throw fail("its content says round \(c.round)") }
        let n = c.vectors.count
        func check(_ i: Int?, _ what: String) throws(TraceError) {
            guard let i else { if c.hasVectors { throw fail("the \(what) is missing") } else { return } }
            guard i >= 0 && i < n else { throw fail("the \(what) refers to vector \(i), but the record has \(n)") }
            guard c.vectors[i].count == parameterCount else {
                throw fail("the \(what) has \(c.vectors[i].count) elements, the model \(parameterCount)")
            }
        }
        for (k, a) in c.aggregations.enumerated() {
            if let m = a.messages {
                guard m.count == a.senders.count else { throw fail("aggregation \(k) has \(m.count) messages for \(a.senders.count) senders") }
                for i in m { try check(i, "message of aggregation \(k)") }
            } else if c.hasVectors {
                throw fail("aggregation \(k) has no messages")
            }
            try check(a.aggregate, "aggregate of aggregation \(k)")
            for s in [a.stateBefore, a.stateAfter] {
                for i in (s.vectors ?? [:]).values where !(i >= 0 && i < n) { throw fail("a state vector refers to vector \(i), but the record has \(n)") }
            }
        }
        try check(c.modelDiff, "model diff")
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
