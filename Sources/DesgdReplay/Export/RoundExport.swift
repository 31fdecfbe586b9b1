import DesgdNumerics
import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// NumPy `.npy` files, format version 1.0 (numpy.lib.format): magic `\x93NUMPY`, version 1.0, a
/// little-endian u16 header length, a Python-literal dict padded with spaces to a multiple of 64
/// bytes and ending in a newline, then the C-order data.
public enum NPY {
    /// The bytes of an array of float32 (`<f4`) of the given shape.
    public static func float32(_ values: [Float], shape: [Int]) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count)
        var out = header(descr: "<f4", shape: shape)
        values.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// The bytes of an array of booleans (`|b1`).
    public static func bool(_ values: [Bool], shape: [Int]) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count)
        return header(descr: "|b1", shape: shape) + values.map { $0 ? 1 : 0 }
    }

    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = UInt16(dict.utf8.count)
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(dict.utf8)
        return out
    }
}

/// `desgd-replay --export DIR --round T`: one round's inputs and outputs as `.npy` files plus a
/// JSON sidecar, for analysis in Python.
///
/// Files, for each aggregation k of the round (k = 0 unless K > 1 classes per round):
/// `agg<k>_messages.npy` (senders × d, float32, one row per sender in the recorded order),
/// `agg<k>_honest.npy` (senders, bool), `agg<k>_aggregate.npy` (d, float32); and
/// `model_diff.npy` (d, float32) and `round.json` (round, class set, per aggregation its class,
/// senders, decision, metrics and file names; the trace's rule, attack, f and seed).
///
/// A round recorded without vectors is exported from its re-simulation when a ``RoundRebuilder``
/// is given (checked against the record first; `vectorsRebuilt` in the sidecar says so): the files
/// are those a trace recorded in full would give.
public enum RoundExport {
    public struct Sidecar: Codable, Sendable {
        public struct Aggregation: Codable, Sendable {
            public var classIndex: Int
            public var senders: [Sender]
            public var decision: AggregationDecision
            public var metrics: DeviationMetrics
            public var messages: String
            public var honest: String
            public var aggregate: String
        }
        public var trace: String
        public var round: Int
        public var classes: [Int]
        public var aggregator: String
        public var attack: String
        public var declaredF: Int
        public var seed: UInt64
        public var parameterCount: Int
        public var aggregations: [Aggregation]
        public var modelDiff: String
        public var evaluation: Evaluation?
        /// The vectors were rebuilt by re-simulating the run (the trace recorded the round without them).
        public var vectorsRebuilt: Bool
    }

    /// An upper estimate, in bytes, of what ``export(_:round:to:rebuilder:memoryLimit:progress:)``
    /// holds at once (docs/bad-input.md): the round read (its payload and body), one aggregation's
    /// messages (s rows), their `.npy` bytes and the copy written, the aggregate and the model diff
    /// likewise; with a rebuilder, its run.
    public static func memoryEstimate(_ reader: TraceReader, rebuilder: RoundRebuilder? = nil) -> UInt64 {
        typealias M = MemoryArithmetic
        let vectors = M.add(M.mul(3, reader.largestGroup), 7)
        let h = reader.header
        let run = rebuilder.map { _ in h.config.memoryEstimate(driftWindow: h.driftWindow) } ?? 0
        return M.add(reader.roundReadBytes, M.mul(reader.vectorBytes, vectors), run)
    }

    /// Writes the files into `directory` (created if needed) and returns their names. A round
    /// recorded without vectors needs `rebuilder` (`progress` follows its re-simulated rounds).
    @discardableResult
    public static func export(_ reader: TraceReader, round t: Int, to directory: String,
                              rebuilder: RoundRebuilder? = nil,
                              memoryLimit: MemoryLimit = .process,
                              progress: (Int) -> Void = { _ in }) throws(TraceError) -> [String] {
        try reader.checkMemory(memoryEstimate(reader, rebuilder: rebuilder), operation: "exporting round \(t)",
                               limit: memoryLimit)
        let round = try reader.round(t)
        var rebuilt: RoundEvent?
        if !round.hasVectors {
            guard let rebuilder else {
                throw .usage("round \(t) of \(reader.path) was recorded without vectors:"
                    + " export a round recorded in full")
            }
            rebuilt = try rebuilder.round(t, progress: progress)
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .io("cannot create \(directory): \(error.localizedDescription)")
        }
        var written: [String] = []
        func write(_ name: String, _ bytes: [UInt8]) throws(TraceError) {
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw .io("cannot write \(path)")
            }
            written.append(name)
        }
        let d = reader.parameterCount
        var aggregations: [Sidecar.Aggregation] = []
        for (k, a) in round.aggregations.enumerated() {
            let m = if let rebuilt { rebuilt.aggregations[k].messages } else { try round.messages(k) }
            let aggregate = if let rebuilt { rebuilt.aggregations[k].aggregate } else { try round.aggregate(k) }
            let names = ["agg\(k)_messages.npy", "agg\(k)_honest.npy", "agg\(k)_aggregate.npy"]
            try write(names[0], NPY.float32(m.storage, shape: [m.rows, d]))
            try write(names[1], NPY.bool(a.senders.map { !$0.byzantine }, shape: [m.rows]))
            try write(names[2], NPY.float32(aggregate, shape: [d]))
            aggregations.append(.init(classIndex: a.classIndex, senders: a.senders, decision: a.decision,
                                      metrics: a.metrics,
                                      messages: names[0], honest: names[1], aggregate: names[2]))
        }
        let modelDiff = if let rebuilt { rebuilt.modelDiff } else { try round.modelDiff() }
        try write("model_diff.npy", NPY.float32(modelDiff, shape: [d]))
        let h = reader.header
        let sidecar = Sidecar(trace: reader.path, round: t, classes: round.content.classes, aggregator: h.aggregator,
                              attack: h.attack,
                              declaredF: h.config.effectiveF, seed: h.config.seed, parameterCount: d,
                              aggregations: aggregations,
                              modelDiff: "model_diff.npy", evaluation: round.content.evaluation,
                              vectorsRebuilt: rebuilt != nil)
        let e = RecordBody.encoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let json = try? e.encode(sidecar) else { throw .io("cannot encode the sidecar of round \(t)") }
        try write("round.json", [UInt8](json))
        return written
    }
}
