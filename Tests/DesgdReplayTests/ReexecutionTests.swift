@testable import DesgdAudit
import DesgdFuzzing
import DesgdNumerics
@testable import DesgdReplay
@testable import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// Records `config` with a state checkpoint every `checkpoints` rounds (0: none); returns the bytes.
func checkpointedTrace(_ config: SimulationConfig, checkpoints: Int, mode: RecordingMode = .full) throws -> [UInt8] {
    let path = NSTemporaryDirectory() + "desgd-reexecute-\(UUID().uuidString).trace"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let recorder = try TraceRecorder(path: path, mode: mode, keyframeInterval: 5, checkpointInterval: checkpoints)
    _ = try Simulation(config: config, dataset: replayData).run(observer: recorder)
    #expect(recorder.failure == nil)
    return [UInt8](FileManager.default.contents(atPath: path)!)
}

func openTrace(_ bytes: [UInt8]) throws -> TraceReader { try TraceReader(source: MemorySource(bytes, name: "r.trace")) }

func reexecute(_ reader: TraceReader, rounds: Range<Int>? = nil, threads: Int = 2) throws -> ReexecutionReport {
    let segments = try Reexecution.segments(of: reader, rounds: rounds ?? 0..<reader.roundCount)
    return try Reexecution.run(reader, dataset: replayData, segments: segments, threads: threads)
}

@Suite struct ReexecutionTests {
    static let config = smallRun { $0.aggregator = "trmean" }
    static let trace: [UInt8] = try! checkpointedTrace(config, checkpoints: 4)

    /// An untouched trace re-executes: every round, keyframe and checkpoint compared and equal, on
    /// one thread and on several (segments in parallel), from checkpoints and from round 0.
    @Test func anUntouchedTraceReexecutes() throws {
        let r = try openTrace(Self.trace)
        #expect(r.checkpointRounds == [0, 4, 8])
        for threads in [1, 3] {
            let report = try reexecute(r, threads: threads)
            #expect(report.passed, "\(report.mismatch ?? "")")
            #expect(report.roundsChecked == 12 && report.checkpointsChecked == 3 && report.keyframesChecked == 4
                && report.segmentsRun == 3)
        }
        // --rounds 5:7 starts from the checkpoint at 4 and stops at 7.
        let part = try reexecute(r, rounds: 5..<7)
        #expect(part.passed && part.roundsChecked == 3 && part.segmentsRun == 1)
        // A decisions trace re-executes too (its rounds carry metrics and drift, not vectors).
        let decisions = try openTrace(try checkpointedTrace(smallRun { $0.rounds = 6 }, checkpoints: 3,
            mode: .decisions))
        let d = try reexecute(decisions)
        #expect(d.passed && d.roundsChecked == 6, "\(d.mismatch ?? "")")
    }

    /// Without checkpoints a trace re-executes from round 0 only: its initial state is the header's.
    @Test func withoutCheckpointsFromRoundZeroOnly() throws {
        let r = try openTrace(try checkpointedTrace(smallRun { $0.rounds = 5 }, checkpoints: 0))
        let report = try reexecute(r)
        #expect(report.passed && report.roundsChecked == 5 && report.checkpointsChecked == 0)
        #expect(throws: TraceError.self) { try Reexecution.segments(of: r, rounds: 2..<5) }
        do { _ = try Reexecution.segments(of: r, rounds: 2..<5) } catch {
            #expect(error.message.contains("no state checkpoint at or before round 2")
                && error.explanation.rendered { "<\($0.rawValue)>" }.contains("<rounds> 0:5"))
        }
    }

    /// One honest message altered (a coordinate where it is the largest of all senders, raised by one
    /// ulp: still trimmed by trmean, so the aggregate, decision, state and model diff stay as
    /// recorded) and every digest recomputed: `--verify` passes, re-execution names the round, class
    /// and worker.
    @Test func anAlteredHonestMessageFailsReexecutionOnly() throws {
        let t = 5
        let original = try openTrace(Self.trace)
        let round = try original.round(t)
        let messages = try round.messages(0)
        let senders = round.aggregations[0].senders
        let indices = round.aggregations[0].messages!
        // An honest row after the first, stored once, and a coordinate where it is the strict maximum.
        var target: (row: Int, coordinate: Int)?
        search: for r in 1..<senders.count where !senders[r].byzantine
            && indices.filter({ $0 == indices[r] }).count == 1 {
            for i in 0..<messages.columns {
                let v = messages[r, i]
                if (0..<messages.rows).allSatisfy({ $0 == r || messages[$0, i] < v }) { target = (r, i); break search }
            }
        }
        let (row, coordinate) = try #require(target)
        let tampered = try #require(TraceMutator.editingBody(of: Self.trace, type: .round, round: t) { body in
            let parsed = try! ParsedBody<RoundContent>.parse(body, decoder: RecordBody.decoder()).get()
            let i = parsed.content.aggregations[0].messages![row], entry = parsed.content.vectors[i]
            var v = try! parsed.vector(i).get()
            v[coordinate] = v[coordinate].nextUp
            let prediction = try! entry.ref.map { try parsed.vector($0).get() }
            var encoded: [UInt8] = []
            v.withUnsafeBufferPointer { values in
                if let prediction {
                    prediction.withUnsafeBufferPointer { VectorCodec.encode(values, prediction: $0, into: &encoded) }
                } else {
                    VectorCodec.encode(values, prediction: nil, into: &encoded)
                }
            }
            let start = 4 + (0..<4).reduce(0) { $0 | Int(body[$1]) << (8 * $1) } + entry.offset
            body.replaceSubrange(start ..< start + encoded.count, with: encoded)
        })
        let r = try openTrace(tampered)
        #expect(r.verifyChain().holds)
        #expect(try r.round(t).messages(0)[row, coordinate] == messages[row, coordinate].nextUp)
        let verification = try Verification.verify(r, threads: 2)
        #expect(verification.passed, "\(verification.mismatch ?? "")")
        let report = try reexecute(r)
        #expect(!report.passed && report.mismatchRound == t)
        let c = Self.config.classSet(round: t)[0]
        #expect(report.mismatch?.hasPrefix("round \(t), class \(c), worker \(senders[row].worker) (honest): the"
            + " recorded message differs") == true,
                "\(report.mismatch ?? "")")
        #expect(report.mismatch?.contains("coordinate \(coordinate)") == true)
    }

    /// `--segment K/N`: for every N the parts K = 1…N hold every segment exactly once, and running
    /// them checks every round, keyframe and checkpoint exactly once.
    @Test func segmentSharesCoverATraceExactlyOnce() throws {
        let r = try openTrace(Self.trace)
        let all = try Reexecution.segments(of: r, rounds: 0..<12)
        #expect(all.map(\.start) == [0, 4, 8] && all.map(\.end) == [4, 8, 12])
        for n in 1...4 {
            let parts = (1...n).map { Reexecution.share(all, part: $0, of: n) }
            #expect(parts.flatMap { $0 }.sorted { $0.start < $1.start } == all)
        }
        var rounds = 0, keyframes = 0, checkpoints = 0
        for k in 1...2 {
            let report = try Reexecution.run(r, dataset: replayData, segments: Reexecution.share(all, part: k, of: 2),
                threads: 1)
            #expect(report.passed)
            rounds += report.roundsChecked
            keyframes += report.keyframesChecked
            checkpoints += report.checkpointsChecked
        }
        #expect(rounds == 12 && keyframes == 4 && checkpoints == 3)
        // A range cut inside segments: from the checkpoint at or before its start, to its end.
        let cut = try Reexecution.segments(of: r, rounds: 5..<9)
        #expect(cut.map(\.start) == [4, 8] && cut.map(\.end) == [8, 9])
    }

    /// Re-execution needs the same arithmetic and data: other numerics (the header key), another
    /// backend kernel, or a data set of another digest are refused as usage errors (exit 2).
    @Test func otherArithmeticOrDataIsRefused() throws {
        let r = try openTrace(Self.trace)
        #expect(Reexecution.numerics(of: r) == SimulationNumerics.current)
        try Reexecution.checkArithmetic(r, backend: r.header.backend)
        #expect { try Reexecution.checkArithmetic(r, backend: "another kernel") } throws: {
            ($0 as? TraceError)?.message.contains("backend kernel") == true
        }
        let later = try openTrace(try #require(TraceMutator.editingJSON(of: Self.trace, type: .header) {
            $0["numerics"] = SimulationNumerics.current + 1 }))
        #expect { try Reexecution.checkArithmetic(later, backend: later.header.backend) } throws: {
            ($0 as? TraceError)?.message.contains("numerics \(SimulationNumerics.current + 1)") == true
        }
        _ = try Reexecution.loadDataset(for: r.header, directory: nil)
        // Another data set's digests, consistent with each other (FORMAT.md §5.1): the header reads,
        // the files read do not match it.
        let otherData = try openTrace(try #require(TraceMutator.editingJSON(of: Self.trace, type: .header) { json in
            var d = json["dataset"] as! [String: Any]
            var files = d["fileDigests"] as! [String: String]
            for name in files.keys { files[name] = String(repeating: "0", count: 64) }
            d["fileDigests"] = files
            d["digest"] = Dataset.combinedDigest(files)
            json["dataset"] = d
        }))
        #expect { try Reexecution.loadDataset(for: otherData.header, directory: nil) } throws: {
            ($0 as? TraceError)?.message.contains("digest") == true
        }
    }
}

/// The committed 1.2 sample (portable backend, identical bits on every x86-64 CPU, with or without
/// AVX2 and FMA: .ci/baseline-isa) re-executes bit for bit on real Fashion-MNIST: every message,
/// decision, state, aggregate, model diff, evaluation, keyframe and checkpoint. This pins the
/// engine's arithmetic (numerics version 2): a change to the bits of a round fails here, and must
/// raise `SimulationNumerics.current` and add a new sample.
@Suite struct SampleReexecutionTests {
    @Test func version1_2SampleReexecutesBitForBit() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("traces/samples/v1.2-desgd-cclip-ipm-small-3r-portable-checkpoints.trace").path
        let r = try TraceReader(path: path)
        #expect(r.header.effectiveNumerics == SimulationNumerics.current)
        let dataset = try Reexecution.loadDataset(for: r.header, directory: nil)
        let report = try Reexecution.run(r, dataset: dataset,
            segments: Reexecution.segments(of: r, rounds: 0..<r.roundCount), threads: 2)
        #expect(report.passed, "\(report.mismatch ?? "")")
        #expect(report.roundsChecked == 3 && report.checkpointsChecked == 2 && report.segmentsRun == 2)
    }

    /// The committed 1.4 sample (`decisions`, exponential recent drift in its checkpoints)
    /// re-executes bit for bit from its checkpoints, drift metrics included.
    @Test func version1_4SampleReexecutesBitForBit() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("traces/samples/v1.4-desgd-cclip-ipm-small-3r-portable-decisions.trace").path
        let r = try TraceReader(path: path)
        let dataset = try Reexecution.loadDataset(for: r.header, directory: nil)
        let report = try Reexecution.run(r, dataset: dataset,
            segments: Reexecution.segments(of: r, rounds: 0..<r.roundCount), threads: 2)
        #expect(report.passed, "\(report.mismatch ?? "")")
        #expect(report.roundsChecked == 3 && report.checkpointsChecked == 2 && report.segmentsRun == 2)
    }

    /// The committed 1.3 fork sample (a fork of the 1.2 sample at round 1 with GeoMed) re-executes
    /// bit for bit from its own checkpoints, and its parent and it make a family.
    @Test func version1_3ForkSampleReexecutesBitForBit() throws {
        let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("traces/samples")
        let r = try TraceReader(path: samples.appendingPathComponent("v1.3-fork-at1-geomed-small.trace").path)
        let dataset = try Reexecution.loadDataset(for: r.header, directory: nil)
        let report = try Reexecution.run(r, dataset: dataset, segments: Reexecution.segments(of: r, rounds: r.rounds),
            threads: 2)
        #expect(report.passed, "\(report.mismatch ?? "")")
        // The fork's only checkpoint precedes its first keyframe (FORMAT.md §5.1.1): it is the
        // starting state of the one segment, not re-encoded.
        #expect(report.roundsChecked == 2 && report.checkpointsChecked == 0 && report.segmentsRun == 1)
        let parent = try TraceReader(
            path: samples.appendingPathComponent("v1.2-desgd-cclip-ipm-small-3r-portable-checkpoints.trace").path)
        let family = try ForkFamily.report(parent: parent, forks: [r])
        #expect(family.start == 1 && family.branches.map(\.name) == ["parent", "agg=geomed"])
    }
}

