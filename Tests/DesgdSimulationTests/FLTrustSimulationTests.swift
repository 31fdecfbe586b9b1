import DesgdNumerics
import DesgdRobust
import Testing
@testable import DesgdSimulation

/// FLTrust's server side in the engine: the root set, the server's momentum in the rule's state,
/// and the rule's input reproducible from what is recorded.
@Suite struct FLTrustSimulationTests {
    static let data = SimulationTests.data

    @Test func rootSetIsKeyedSortedAndSplitByClass() throws {
        let config = tinyConfig { $0.aggregator = "fltrust:root=60" }
        let sets = try Simulation.rootSet(size: 60, data: Self.data.train, config: config)
        #expect(sets.count == 10 && sets.map(\.count).reduce(0, +) == 60)
        var stream = RandomStream(seed: config.seed, purpose: .rootData)
        let drawn = stream.sample(60, from: Self.data.train.count).sorted()
        #expect(sets.flatMap { $0 }.sorted() == drawn)
        let byClass = Self.data.train.indicesByClass()
        for (c, set) in sets.enumerated() { #expect(set.allSatisfy { byClass[c].contains($0) } && set == set.sorted()) }
        // The baseline keeps one group; too large a root set, or a class left without a sample, is refused.
        #expect(try Simulation.rootSet(size: 60, data: Self.data.train, config: tinyConfig { $0.mode = .sgd })
            == [drawn])
        #expect(throws: SimulationError.self) {
            try Simulation(config: tinyConfig { $0.aggregator = "fltrust:root=5000" }, dataset: Self.data)
        }
        #expect(throws: SimulationError.self) {
            try Simulation(config: tinyConfig { $0.aggregator = "fltrust:root=1" }, dataset: Self.data)
        }
    }

    /// Every class's reference is a momentum updated every round (like an honest worker's), the
    /// recorded `stateBefore` holds it, and the rule rerun on the recorded messages and state gives
    /// the recorded aggregate bit for bit, whatever the thread count.
    @Test func referenceIsCarriedInTheStateAndReproducible() throws {
        func run(threads: Int) throws -> (Simulation, [RoundEvent], [[AggregatorState]]) {
            let config = tinyConfig {
                $0.aggregator = "fltrust"; $0.attack = "ipm"; $0.threads = threads; $0.rounds = 4
            }
            let sim = try Simulation(config: config, dataset: Self.data)
            var events: [RoundEvent] = [], states: [[AggregatorState]] = []
            for t in 0..<config.rounds {
                events.append(try sim.step(round: t))
                states.append(sim.snapshot().aggregatorStates)
            }
            return (sim, events, states)
        }
        let (sim, events, states) = try run(threads: 1)
        let d = sim.model.parameterCount
        for e in events {
            for a in e.aggregations {
                let reference = try #require(a.stateBefore.vectors[FLTrust.referenceKey])
                #expect(reference.count == d && reference.contains { $0 != 0 })
                var state = a.stateBefore
                let (y, decision) = sim.pipeline.aggregate(AggregationContext(messages: a.messages, f: 2,
                                                                              seed: sim.config.seed,
                                                                              round: e.round, classIndex: a.classIndex),
                                                                              state: &state)
                #expect(y == a.aggregate && decision == a.decision && state == a.stateAfter)
                // The honest momenta of a class point the same way as the server's: they get trust.
                #expect((decision.scores ?? []).prefix(a.messages.rows - 2).allSatisfy { $0 > 0 })
            }
        }
        // Every class's reference moves every round, aggregated or not: m ← β·m + (1−β)·g.
        for t in 1..<states.count {
            for c in 0..<10 {
                let before = try #require(states[t - 1][c].vectors[FLTrust.referenceKey])
                let after = try #require(states[t][c].vectors[FLTrust.referenceKey])
                #expect(before.count == d && after.count == d && before != after, "round \(t), class \(c)")
            }
        }
        let (other, _, otherStates) = try run(threads: 3)
        #expect(other.parameters == sim.parameters && otherStates == states)
        // The server's 10 class batches are counted with the workers'.
        let plain = try Simulation(config: tinyConfig { $0.attack = "ipm" }, dataset: Self.data)
        #expect(sim.gradientsPerRound == plain.gradientsPerRound + 10)
    }
}
