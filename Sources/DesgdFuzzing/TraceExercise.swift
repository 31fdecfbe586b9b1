import DesgdAudit
import DesgdNumerics
import DesgdReplay
import DesgdTrace
import Foundation

/// What an auditor's tools do with a trace they were handed, on bytes in memory: open it, walk the
/// digest chain, read every round and keyframe with all their vectors, rebuild the model, audit it
/// with two counterfactual rules (one stateful), render the report in every format, verify it, and
/// re-simulate it as `--reexecute`, `--resume` and `--fork` do (``ResimulationExercise``).
///
/// The fuzzer (`desgd-fuzz`, Tests/fuzz/fuzz-traces.sh) calls this on every input, and the test
/// suite on the seed corpus and every crasher the fuzzer ever found. A hostile file may make any
/// step fail with a ``TraceError`` (that is the answer the user gets, exit code 2); what must never
/// happen is a trap, a hang or an allocation the file's size does not bound.
public enum TraceExercise {
    /// What happened, for tests: the error that refused the file, or what was read.
    public struct Outcome: Sendable, Equatable {
        public var refusal: String?
        public var rounds = 0
        public var chainHolds = false
        /// Errors of single rounds, keyframes or steps after the file was opened.
        public var errors: [String] = []
    }

    /// Rounds read in full at most (a fuzzer's input is small; a real trace in the tests is too).
    public static let roundLimit = 32

    /// `resimulate`: also what the commands that re-simulate do (``ResimulationExercise``; the
    /// fuzzer's files target does, the test suite's short pass does not: it costs training rounds).
    public static func run(_ bytes: [UInt8], resimulate: Bool = false) -> Outcome {
        var outcome = Outcome()
        let reader: TraceReader
        do { reader = try TraceReader(source: MemorySource(bytes, name: "fuzz.trace")) } catch {
            outcome.refusal = error.message
            return outcome
        }
        outcome.rounds = reader.roundCount
        outcome.chainHolds = reader.verifyChain().holds
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch { outcome.errors.append("\(error)") }
        }
        for t in reader.rounds.prefix(roundLimit) {
            attempt {
                let r = try reader.round(t)
                for a in r.aggregations.indices {
                    if r.hasVectors {
                        _ = try r.messages(a)
                        _ = try r.aggregate(a)
                    }
                    _ = try r.state(a, after: false)
                    _ = try r.state(a, after: true)
                }
                if r.hasVectors { _ = try r.modelDiff() }
            }
        }
        for k in reader.keyframeRecords.prefix(roundLimit) {
            attempt {
                let f = try reader.keyframe(atOrBefore: k.round)
                _ = try f.parameters()
                _ = try f.classMomenta()
            }
        }
        for k in 0 ..< min(reader.checkpointRecords.count, roundLimit) {
            attempt {
                let c = try reader.checkpoint(k)
                _ = try c.simulationState()
                _ = try c.driftState()
            }
        }
        attempt { _ = try reader.parameters(atStartOf: reader.firstRound + min(reader.roundCount, 3)) }
        attempt {
            let report = try Audit.report(reader, compare: ["trmean", "cclip"], threads: 1)
            _ = AuditText.render(report)
            _ = AuditText.csv(report)
            _ = AuditHTML.render(report)
            _ = try JSONEncoder().encode(report)
        }
        attempt { _ = try Verification.verify(reader, threads: 1) }
        if resimulate { ResimulationExercise.run(bytes, reader: reader, errors: &outcome.errors) }
        return outcome
    }
}

/// The pure parser alone (``TraceParsing``), on one record body at a time: the fast target of the
/// fuzzer (`desgd-fuzz` with `DESGD_FUZZ_TARGET=records`), tens of times faster than opening whole
/// files, so that millions of inputs run in minutes. An input is one selector byte (0: a header
/// body; 1: a round body; 2: a keyframe body; 3: a state checkpoint's body; taken mod 4) followed
/// by the decompressed body (FORMAT.md §4).
/// Rounds and keyframes are validated against `header`, a valid header taken from a seed trace,
/// and every vector of a body that passes is decoded.
public enum RecordBodyExercise {
    public static func run(_ input: [UInt8], header: TraceHeader) -> String? {
        guard let selector = input.first else { return "empty" }
        let body = Array(input.dropFirst())
        let decoder = RecordBody.decoder()
        // A header body is checked against the version of the seed trace it came from.
        let version = header.formatVersion.map { UInt16(clamping: $0) }
        let signature = TraceParsing.Signature(major: version.first ?? TraceFormat.major, minor: version.last
            ?? TraceFormat.minor)
        do throws(ParseFailure) {
            switch selector % 4 {
            case 0:
                let h = try TraceParsing.header(body, signature: signature, decoder: decoder)
                _ = TraceParsing.bodyLimit(h)
            case 1:
                let round = try ParsedBody<RoundContent>.parse(body, decoder: decoder).get().content.round
                let p = try TraceParsing.round(body, header: header, expectedRound: round, decoder: decoder)
                for i in p.content.vectors.indices { _ = try p.vector(i).get() }
            case 2:
                let round = try ParsedBody<KeyframeContent>.parse(body, decoder: decoder).get().content.round
                let p = try TraceParsing.keyframe(body, header: header, expectedRound: round, decoder: decoder)
                for i in p.content.vectors.indices { _ = try p.vector(i).get() }
            default:
                let round = try ParsedBody<CheckpointContent>.parse(body, decoder: decoder).get().content.round
                let p = try TraceParsing.checkpoint(body, header: header, expectedRound: round, decoder: decoder)
                for i in p.content.vectors.indices { _ = try p.vector(i).get() }
            }
            return nil
        } catch {
            return error.reason
        }
    }

    /// The bodies of a trace's header, keyframe and round records, each with its selector byte:
    /// the seed corpus of the records target.
    public static func bodies(of reader: TraceReader) -> [[UInt8]] {
        var out: [[UInt8]] = []
        if let h = try? reader.bodyBytes(ofRecord: 0) { out.append([0] + h) }
        let selectors: [RecordType: UInt8] = [.round: 1, .keyframe: 2, .checkpoint: 3]
        for (k, e) in reader.records.enumerated() {
            if let s = selectors[e.type], let b = try? reader.bodyBytes(ofRecord: k) { out.append([s] + b) }
        }
        return out
    }
}
