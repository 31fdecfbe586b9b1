import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// State checkpoints (FORMAT.md §5.5): what is written is the engine's complete state, and a run
/// restored from it continues bit for bit, drift metrics included.
@Suite struct CheckpointTests {
    /// Capture → write → read → restore → continue gives the rounds of the uninterrupted run: the
    /// checkpoint read back equals the engine's state, and a fresh simulation and drift tracker
    /// restored from it encode rounds 3…6 into the very bytes of the trace's round records.
    @Test func checkpointRoundTripsExactly() throws {
        for config in [tinyConfig(),
                       tinyConfig { $0.attack = "signflip"; $0.aggregator = "trmean"; $0.classesPerRound = 3 },
                       tinyConfig { $0.mode = .sgd; $0.momentum = .global }] {
            let (path, tee, _) = try record(config, checkpoints: 3, keepStates: true)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let r = try TraceReader(path: path)
            #expect(r.header.checkpointInterval == 3)
            #expect(r.header.formatVersion == [Int(TraceFormat.major), Int(TraceFormat.minor)])
            #expect(r.checkpointRounds == [0, 3, 6])
            let k = try #require(r.lastCheckpoint(atOrBefore: 4))
            let checkpoint = try r.checkpoint(k)
            #expect(checkpoint.round == 3)
            let state = try checkpoint.simulationState()
            #expect(state == tee.states[3])
            // The Byzantine workers' own momenta are part of the state under sign-flip (three classes
            // a round: rounds 3… meet classes whose momenta rounds 0…2 computed).
            if config.attack == "signflip" { #expect(state.byzantineMomenta.contains { $0.contains { $0 != 0 } }) }

            let simulation = try Simulation(config: config, dataset: tinyData)
            try simulation.restore(state: state, at: 3)
            let tracker = DriftTracker(config: config, dimension: simulation.model.parameterCount,
                                       window: r.header.driftWindow!,
                                       recent: r.header.effectiveDriftRecent)
            try tracker.restore(try #require(try checkpoint.driftState()))
            let encoder = RecordEncoder(mode: .full, bounds: r.header.groups.map(\.resilienceBound))
            var seconds = 0.0
            for t in 3..<config.rounds {
                let event = try simulation.advance(round: t, evaluationSeconds: &seconds)
                #expect(bits(event.modelDiff) == bits(tee.events[t].modelDiff))
                let body = Array(encoder.round(event, drift: tracker).parts.joined())
                let recorded = try r.bodyBytes(ofRecord: r.records.firstIndex { $0.type == .round && $0.round == t }!)
                #expect(body == recorded, "round \(t) re-encoded from the checkpoint differs from the trace")
            }
            #expect(bits(simulation.parameters) == bits(try r.keyframe(atOrBefore: 7).parameters()))
        }
    }

    /// A restore refuses a state of another shape (another configuration's), changing nothing.
    @Test func restoreRefusesAnotherShape() throws {
        let a = try Simulation(config: tinyConfig(), dataset: tinyData)
        let b = try Simulation(config: tinyConfig { $0.honestWorkers = 14 }, dataset: tinyData)
        let before = a.captureState(round: 0)
        #expect(throws: SimulationError.self) { try a.restore(state: b.captureState(round: 0), at: 0) }
        #expect(throws: SimulationError.self) { try a.restore(state: before, at: 2) }
        #expect(a.captureState(round: 0) == before)
    }

    /// Checkpoints change nothing else: the trace without them holds the same rounds, byte for byte,
    /// and readers of 1.1 (which skip unknown record types of later minors) find every round.
    @Test func checkpointsAddRecordsOnly() throws {
        let config = tinyConfig { $0.rounds = 4 }
        let (plain, _, _) = try record(config)
        let (with, _, _) = try record(config, checkpoints: 2)
        defer { for p in [plain, with] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try TraceReader(path: plain), b = try TraceReader(path: with)
        #expect(a.checkpointRecords.isEmpty && b.checkpointRecords.count == 2)
        for k in 0..<4 {
            let ia = a.records.firstIndex { $0.type == .round && $0.round == k }!, ib = b.records.firstIndex {
                $0.type == .round && $0.round == k }!
            #expect(try a.bodyBytes(ofRecord: ia) == b.bodyBytes(ofRecord: ib))
        }
        #expect(b.records.filter { $0.type == .checkpoint }.allSatisfy { $0.round == -1 })
        // Two recordings with checkpoints are byte-identical (FORMAT.md §8).
        let (again, _, _) = try record(config, checkpoints: 2)
        defer { try? FileManager.default.removeItem(atPath: again) }
        #expect(FileManager.default.contents(atPath: with) == FileManager.default.contents(atPath: again))
    }
}
