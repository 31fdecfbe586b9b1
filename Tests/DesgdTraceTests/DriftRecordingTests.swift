import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// Drift metrics at record time (FORMAT.md §5.4).
@Suite struct DriftRecordingTests {
    func drifts(_ path: String) throws -> [(model: ModelDrift?, groups: [GroupDrift?])] {
        let r = try TraceReader(path: path)
        return try (0..<r.roundCount).map { t in
            let round = try r.round(t)
            return (round.content.drift, round.aggregations.map(\.metrics.drift))
        }
    }

    /// With the mean rule and no Byzantine worker the aggregate is the honest mean, so the shadow's
    /// update equals the real one element for element (a difference of 0 in every coordinate of
    /// every round) and every drift is 0.
    @Test func meanWithoutAttackHasNoDrift() throws {
        let config = tinyConfig { $0.aggregator = "mean"; $0.attack = "none"; $0.byzantineWorkers = 0; $0.rounds = 12 }
        let (path, tee, _) = try record(config)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let all = try drifts(path)
        #expect(all.count == 12)
        for (t, round) in all.enumerated() {
            let model = try #require(round.model)
            #expect(model.rounds == t + 1)
            #expect(model.step == 0 && model.displacement == 0, "round \(t)")
            #expect(model.shadowDisplacement > 0)
            #expect(model.relative == 0)
            for g in round.groups {
                let g = try #require(g)
                #expect(g.cumulative == 0 && g.windowed == 0)
            }
        }
        // The same check on the shadow directly: its update is the engine's, bit for bit.
        let tracker = DriftTracker(config: config, dimension: tee.events[0].update.count,
            recent: DriftTracker.defaultRecent)
        let shadow = ServerStep(config: config, dimension: tee.events[0].update.count)
        for e in tee.events {
            var scratch = [Float](repeating: 0, count: e.update.count)
            let means = e.aggregations.map { a in
                (a.classIndex, HonestStatistics(messages: a.messages, honest: a.senders.map { !$0.byzantine }).mean) }
            #expect(bits(shadow.apply(aggregates: means, to: &scratch).update) == bits(e.update))
            _ = tracker.add(means.map { DriftTracker.Aggregation(classIndex: $0.0, output: $0.1, honestMean: $0.1) },
                update: e.update)
        }
    }

    /// An attack that moves the aggregate gives non-zero drift, consistent with the gaps: the
    /// cumulative drift is at most the sum of the gaps (triangle inequality).
    @Test func attackedRunDrifts() throws {
        let config = tinyConfig { $0.aggregator = "trmean"; $0.attack = "alie"; $0.rounds = 20 }
        let (path, _, _) = try record(config)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TraceReader(path: path)
        #expect(r.header.driftWindow == DriftTracker.defaultWindow)
        #expect(r.header.formatVersion == [Int(TraceFormat.major), Int(TraceFormat.minor)]
            && r.header.numerics == SimulationNumerics.current)
        var gaps: [Int: Double] = [:]
        for t in 0..<r.roundCount {
            let round = try r.round(t)
            let model = try #require(round.content.drift)
            #expect(model.displacement > 0 && model.step > 0)
            #expect(model.persistence! <= 1 + 1e-9)
            for a in round.aggregations {
                let g = try #require(a.metrics.drift)
                gaps[a.classIndex, default: 0] += a.metrics.gap
                #expect(g.cumulative <= gaps[a.classIndex]! * (1 + 1e-5))
                #expect(g.cumulativePersistence! > 0 && g.cumulativePersistence! <= 1 + 1e-9)
                #expect(g.windowPersistence! <= 1 + 1e-9 && g.window == min(g.count, DriftTracker.defaultWindow))
            }
        }
    }

    /// Drift needs every round's vectors, which the recorder has whether it stores them or not: a
    /// decisions-only trace carries the same drift as a full one, and so does a run on more threads.
    @Test func decisionsTraceAndThreadCountGiveTheSameDrift() throws {
        let config = tinyConfig { $0.aggregator = "trmean"; $0.attack = "alie"; $0.rounds = 12 }
        let (full, _, _) = try record(config)
        let (decisions, _, _) = try record(config, mode: .decisions)
        let (threaded, _, _) = try record(tinyConfig {
            $0.aggregator = "trmean"; $0.attack = "alie"; $0.rounds = 12; $0.threads = 3 })
        defer { for p in [full, decisions, threaded] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try drifts(full), b = try drifts(decisions), c = try drifts(threaded)
        #expect(a.count == 12 && a.allSatisfy { $0.model != nil && $0.groups.allSatisfy { $0 != nil } })
        #expect(a.map(\.model) == b.map(\.model) && a.map(\.groups) == b.map(\.groups))
        #expect(a.map(\.model) == c.map(\.model) && a.map(\.groups) == c.map(\.groups))
    }

    @Test func windowIsChecked() {
        #expect(throws: TraceError.self) { try TraceRecorder(path: temporaryPath(), driftWindow: 0) }
        #expect(throws: TraceError.self) {
            try TraceRecorder(path: temporaryPath(), driftWindow: DriftTracker.maxWindow + 1)
        }
    }
}
