import Foundation
import DesgdNumerics
import DesgdRobust
import Testing
@testable import DesgdSimulation

/// A configuration small enough for tests (``SimulationConfig/smoke``), edited.
func tinyConfig(_ edit: (inout SimulationConfig) -> Void = { _ in }) -> SimulationConfig {
    var c = SimulationConfig.smoke
    edit(&c)
    return c
}

/// Keeps the events of every round.
final class Recorder: SimulationObserver {
    var events: [RoundEvent] = []
    func roundFinished(_ event: RoundEvent) { events.append(event) }
}

@Suite struct ClassMomentumBufferTests {
    /// Eq. 14–15 by hand: C = 3, d = 2, decay 0.5.
    @Test func averageAndRefresh() {
        let b = ClassMomentumBuffer(classes: 3, dimension: 2, decay: 0.5)
        var avg: [Float] = [9, 9]
        avg.withUnsafeMutableBufferPointer { b.average(into: $0) }
        #expect(avg == [0, 0])
        b.refresh([1: [3, 6]])
        avg.withUnsafeMutableBufferPointer { b.average(into: $0) }
        #expect(avg == [1, 2])
        b.refresh([2: [6, 0]])  // class 1 decays to [1.5, 3]
        #expect(b.entry(1) == [1.5, 3])
        avg.withUnsafeMutableBufferPointer { b.average(into: $0) }
        #expect(abs(avg[0] - 2.5) < 1e-6 && abs(avg[1] - 1) < 1e-6)
    }
}

@Suite struct SimulationTests {
    static let data = Dataset.synthetic(trainCount: 1200, testCount: 200, seed: 1)

    /// Eq. 16 and eq. 15 through the engine: the update is (1−γ)·m̂_t + γ·m̄_t with m̄_t the
    /// average of a buffer refreshed with m̂ and decayed by β, recomputed here independently.
    @Test func updateFollowsEquations14To16() throws {
        let config = tinyConfig {
            $0.aggregator = "median"; $0.attack = "signflip"; $0.gamma = 0.3; $0.bufferDecay = 0.8
        }
        let sim = try Simulation(config: config, dataset: Self.data)
        let rec = Recorder()
        _ = try sim.run(observer: rec)
        let d = sim.model.parameterCount
        var buffer = [[Double]](repeating: [Double](repeating: 0, count: d), count: 10)
        for e in rec.events {
            #expect(e.classes == [e.round % 10])
            let c = e.classes[0]
            let agg = e.aggregations[0].aggregate
            for i in stride(from: 0, to: d, by: 97) {
                let mbar = buffer.reduce(0.0) { $0 + $1[i] } / 10
                let expected = 0.7 * Double(agg[i]) + 0.3 * mbar
                #expect(abs(Double(e.update[i]) - expected) <= 1e-5 * (abs(expected) + 1e-3))
                #expect(abs(Double(e.modelDiff[i]) + 0.1 * Double(e.update[i])) <= 1e-6)
            }
            for k in 0..<10 where k != c { buffer[k] = buffer[k].map { $0 * 0.8 } }
            buffer[c] = agg.map(Double.init)
        }
        // Senders: the 6 holders of class c (label skew, k = 3 over 10 workers gives 3 holders),
        // then Byzantine ids 10, 11.
        let a = rec.events[0].aggregations[0]
        #expect(a.senders.filter(\.byzantine).map(\.worker) == [10, 11])
        #expect(a.senders.filter { !$0.byzantine }.map(\.worker) == sim.partition.holders(of: 0))
    }

    /// Same configuration and seed: identical final parameters, across runs and thread counts.
    @Test func deterministicAcrossRunsAndThreads() throws {
        func final(_ threads: Int) throws -> [Float] {
            let c = tinyConfig { $0.aggregator = "trmean"; $0.attack = "gaussian"; $0.threads = threads }
            return try Simulation(config: c, dataset: Self.data).run().finalParameters
        }
        let a = try final(1), b = try final(1), c = try final(2)
        #expect(a == b)
        #expect(a == c)
        let other = try Simulation(config: tinyConfig { $0.seed = 2 }, dataset: Self.data).run().finalParameters
        #expect(other != a)
    }

    /// The baseline with f = 0 and mean aggregation is plain distributed SGD with local momentum,
    /// written out here directly.
    @Test func baselineWithMeanIsDistributedSGD() throws {
        let config = tinyConfig { $0.mode = .sgd; $0.byzantineWorkers = 0; $0.aggregator = "mean"; $0.rounds = 4 }
        let sim = try Simulation(config: config, dataset: Self.data)
        let result = try sim.run()

        let model = CNN(.small, backend: config.backend)
        var x = model.initialParameters(seed: config.seed)
        let n = config.honestWorkers, d = model.parameterCount
        var momenta = [[Float]](repeating: [Float](repeating: 0, count: d), count: n)
        let ws = CNNWorkspace(model: model, slots: 1)
        for t in 0..<config.rounds {
            var mean = [Double](repeating: 0, count: d)
            for w in 0..<n {
                let local = sim.partition.samples[w].flatMap { $0 }
                var r = RandomStream(seed: config.seed, purpose: .minibatch, worker: w, round: t, class: -1)
                let batch = r.sample(config.batchSize, from: local.count).map { local[$0] }
                var g = [Float](repeating: 0, count: d)
                model.lossAndGradient(parameters: x, data: Self.data.train, batch: MiniBatch(indices: batch),
                    gradient: &g, workspace: ws)
                for i in 0..<d {
                    let gi = g[i] + config.weightDecay * x[i]
                    momenta[w][i] = config.beta * momenta[w][i] + (1 - config.beta) * gi
                    mean[i] += Double(momenta[w][i]) / Double(n)
                }
            }
            for i in 0..<d { x[i] -= config.learningRate * Float(mean[i]) }
        }
        let err = zip(x, result.finalParameters).map { abs($0 - $1) }.max()!
        #expect(err < 1e-5, "max difference \(err)")
    }

    @Test func impossibleSettingsAreRejectedBeforeTraining() {
        func message(_ c: SimulationConfig) -> String {
            do { _ = try Simulation(config: c, dataset: Self.data); return "" } catch { return error.message }
        }
        // Krum needs n ≥ 2f+3: a class has 3 holders + 2 Byzantine = 5 < 7.
        #expect(message(tinyConfig { $0.aggregator = "krum" }).contains("krum"))
        #expect(message(tinyConfig { $0.partition = .labelSkew(classesPerWorker: 11) }).contains("label-skew:k"))
        #expect(message(tinyConfig { $0.honestWorkers = 3 }).contains("held by no"))
        #expect(message(tinyConfig { $0.aggregator = "nosuchrule" }).contains("nosuchrule"))
        #expect(message(tinyConfig { $0.attack = "nosuchattack" }).contains("nosuchattack"))
        #expect(message(tinyConfig { $0.beta = 1 }).contains("beta"))
        #expect(message(tinyConfig { $0.classesPerRound = 11 })
            .contains("the classes per round must be in 1...10 (got 11)"))
    }

    @Test func randomScheduleIsUnbiasedAndKeyedByRound() throws {
        let sim = try Simulation(config: tinyConfig { $0.schedule = .random; $0.classesPerRound = 2 },
            dataset: Self.data)
        var counts = [Int](repeating: 0, count: 10)
        for t in 0..<2000 {
            let s = sim.classes(round: t)
            #expect(s.count == 2 && Set(s).count == 2)
            for c in s { counts[c] += 1 }
        }
        #expect(counts.allSatisfy { abs($0 - 400) < 80 })
        // Keyed by round: S_t is the first K indices of a partial Fisher–Yates shuffle of 0..<10
        // drawn from the stream (seed, .classSchedule, round t), sorted: derived here by hand.
        for t in [0, 17, 1999] {
            var stream = RandomStream(seed: sim.config.seed, purpose: .classSchedule, round: t)
            var classes = Array(0..<10)
            for i in 0..<2 { classes.swapAt(i, i + stream.nextInt(below: 10 - i)) }
            #expect(sim.classes(round: t) == Array(classes.prefix(2)).sorted(), "round \(t)")
        }
        // The engine aggregates exactly those classes, and another seed draws other sets.
        let rec = Recorder()
        _ = try sim.run(observer: rec)
        #expect(rec.events.map(\.classes) == (0..<sim.config.rounds).map { sim.classes(round: $0) })
        #expect(rec.events.allSatisfy { e in e.aggregations.map(\.classIndex) == e.classes })
        let other = try Simulation(config: tinyConfig { $0.schedule = .random; $0.classesPerRound = 2; $0.seed = 2 },
            dataset: Self.data)
        #expect((0..<50).map { other.classes(round: $0) } != (0..<50).map { sim.classes(round: $0) })
    }

    /// Label-flip through the engine: a Byzantine worker asked for class c sends the momentum of
    /// a mini-batch of true class C−1−c samples labelled c (its data set relabelled y ↦ 9−y, then
    /// the class-c samples of it), recomputed here from the model, the data and its keyed stream.
    @Test func labelFlipSendsTheMomentumOfTheRelabelledClass() throws {
        let config = tinyConfig { $0.attack = "labelflip"; $0.rounds = 2; $0.evaluationInterval = 10 }
        let sim = try Simulation(config: config, dataset: Self.data)
        var x = sim.parameters
        let rec = Recorder()
        _ = try sim.run(observer: rec)
        let n = config.honestWorkers, d = sim.model.parameterCount
        let workspace = CNNWorkspace(model: sim.model, slots: 1)
        // The momentum of worker n+j for class c at parameters x from zero, on samples of true class `source`.
        func momentum(worker: Int, round t: Int, class c: Int, trueClass source: Int) -> [Float] {
            let samples = Self.data.train.labels.indices.filter { Int(Self.data.train.labels[$0]) == source }
            var stream = RandomStream(seed: config.seed, purpose: .minibatch, worker: worker, round: t, class: c)
            let batch = Simulation.sampleBatch(from: samples, size: config.batchSize, stream: &stream)
            var g = [Float](repeating: 0, count: d)
            _ = sim.model.lossAndGradient(parameters: x, data: Self.data.train,
                                          batch: MiniBatch(indices: batch, flipLabels: true),
                                          gradient: &g, workspace: workspace)
            var m = [Float](repeating: 0, count: d)
            g.withUnsafeMutableBufferPointer { gp in
                x.withUnsafeBufferPointer { SGD.addWeightDecay(gp, parameters: $0, weightDecay: config.weightDecay) }
                m.withUnsafeMutableBufferPointer {
                    SGD.updateMomentum($0, gradient: UnsafeBufferPointer(gp), beta: config.beta)
                }
            }
            return m
        }
        // Round 0 (class 0) starts every Byzantine momentum from zero; so does round 1 (class 1,
        // a class the worker has not been asked for before), at the model after round 0.
        for (t, e) in rec.events.enumerated() {
            let c = e.classes[0], a = e.aggregations[0]
            for j in 0..<config.byzantineWorkers {
                let row = a.senders.firstIndex { $0.worker == n + j }!
                let sent = a.messages.withRow(row) { Array($0) }
                // The engine computes it in the round's batched pass, here alone: equal to rounding
                // (CNN.lossAndGradients groups the samples of the fully connected products).
                func distance(_ u: [Float], _ v: [Float]) -> Double {
                    let d = zip(u, v).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
                    return (d / v.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot()
                }
                let relabelled = momentum(worker: n + j, round: t, class: c, trueClass: 9 - c)
                #expect(distance(sent, relabelled) < 1e-5, "round \(t), worker \(n + j)")
                #expect(distance(sent, momentum(worker: n + j, round: t, class: c, trueClass: c)) > 0.1)
            }
            x.withUnsafeMutableBufferPointer { p in e.modelDiff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        }
    }

    @Test func configurationRoundTripsThroughJSON() throws {
        var c = SimulationConfig.quick
        c.declaredF = 3; c.bufferDecay = 0.7; c.data = .synthetic(train: 10, test: 5, seed: 9);
        c.partition = .dirichlet(alpha: 0.3)
        let decoded = try JSONDecoder().decode(SimulationConfig.self, from: c.canonicalJSON())
        #expect(decoded == c)
        #expect(decoded.canonicalJSON() == c.canonicalJSON())
    }
}
