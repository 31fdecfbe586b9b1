import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Mimic with a fixed target and with Karimireddy et al.'s heuristic.
@Suite struct AttackMimicTests {
    @Test func fixedMimicCopiesTheTarget() throws {
        let honest: [[Float]] = [[1, 2], [3, 4], [5, 6]]
        #expect(rows(try MimicAttack().run(attackContext(honest, byzantine: 2))) == [[1, 2], [1, 2]])
        let third = try MimicAttack(target: 2).run(attackContext(honest, byzantine: 1))
        #expect(rows(third) == [[5, 6]] && third.decision.target == 2)
        #expect(attackError { _ = try MimicAttack(target: 3).run(attackContext(honest, byzantine: 1)) }
                == "mimic:target=3: target=3 but there are only 3 honest messages")
    }

    /// The honest spread lies along the first axis: (3,0) against three (−1,0), mean 0. The power
    /// step turns any start z₀ into (sign z₀₁, 0), so the heuristic copies worker 0 when the first
    /// Gaussian of its stream is positive and worker 1 (first of the tied −1's) otherwise.
    let spreadAlongX: [[Float]] = [[3, 0], [-1, 0], [-1, 0], [-1, 0]]

    func firstGaussianIsPositive(seed: UInt64, round: Int = 0, classIndex: Int = 0) -> Bool {
        var stream = RandomStream(seed: seed, purpose: .attack, worker: AttackContext.colludingWorker,
                                  round: round, class: classIndex)
        return stream.nextGaussian() > 0
    }

    @Test func heuristicPicksTheWorkerFurthestAlongTheSpread() throws {
        var targets = Set<Int>()
        for seed in UInt64(1)...8 {
            var state = AttackState.empty
            let output = try MimicHeuristicAttack()
                .run(attackContext(spreadAlongX, byzantine: 2, seed: seed, round: 3, classIndex: 1),
                                                       state: &state)
            let positive = firstGaussianIsPositive(seed: seed, round: 3, classIndex: 1)
            let expected = positive ? 0 : 1
            #expect(output.decision.target == expected)
            #expect(rows(output) == [spreadAlongX[expected], spreadAlongX[expected]])
            // z is normalised by multiplying with 1/‖·‖, so it is ±1 to within an ulp.
            let sign: Double = positive ? 1 : -1
            #expect(approximately(output.decision.scores, [3 * sign, -sign, -sign, -sign]))
            #expect(output.decision.randomness?.first?.worker == AttackContext.colludingWorker)
            #expect(approximately(state.vectors["z"], [sign, 0]))
            #expect(state.vectors["mu"] == [0, 0])
            #expect(state.scalars == ["t": 1, "target": Double(expected)])
            targets.insert(expected)
        }
        #expect(targets == [0, 1], "the seeds should exercise both signs of z")
    }

    @Test func afterWarmupTheTargetIsFixed() throws {
        let attack = MimicHeuristicAttack(warmup: 1)
        var state = AttackState.empty
        let first = try attack.run(attackContext(spreadAlongX, byzantine: 1, seed: 5), state: &state)
        let target = try #require(first.decision.target)
        let afterFirst = state
        // Next round: other messages, same index copied, no new choice, μ̂ and z untouched.
        let next: [[Float]] = [[10, 10], [20, 20], [30, 30], [40, 40]]
        let second = try attack.run(attackContext(next, byzantine: 2, seed: 5, round: 1), state: &state)
        #expect(rows(second) == [next[target], next[target]])
        #expect(second.decision.target == target && second.decision.scores == nil && second.decision.randomness == nil)
        #expect(state.vectors == afterFirst.vectors && state.scalars["t"] == 2)
    }

    @Test func warmupRoundsUpdateTheRunningMeanAndDirection() throws {
        let attack = MimicHeuristicAttack(warmup: 2)
        for seed in UInt64(1)...4 {
            var state = AttackState.empty
            // Round 1: the spread of `spreadAlongX` shifted by (1, 0): μ̂ = (1, 0), z = (±1, 0).
            let first: [[Float]] = [[4, 0], [0, 0], [0, 0], [0, 0]]
            _ = try attack.run(attackContext(first, byzantine: 1, seed: seed), state: &state)
            #expect(state.vectors["mu"] == [1, 0])
            // Round 2: mean (2, 0), so μ̂ = ½·(1, 0) + ½·(2, 0) = (1.5, 0); deviations (−1.5,0)×3 and
            // (6.5,0) keep z on the first axis with its sign, and the scores s·(0, 0, 0, 8) pick
            // worker 3 or 0.
            let second: [[Float]] = [[0, 0], [0, 0], [0, 0], [8, 0]]
            let output = try attack.run(attackContext(second, byzantine: 1, seed: seed, round: 1), state: &state)
            let positive = firstGaussianIsPositive(seed: seed)
            #expect(state.vectors["mu"] == [1.5, 0])
            #expect(approximately(state.vectors["z"], [positive ? 1 : -1, 0]))
            #expect(output.decision.target == (positive ? 3 : 0))
            #expect(output.decision.values == ["t": 1, "warmup": 2])
            #expect(state.scalars["t"] == 2)
        }
    }

    @Test func warmupAveragesTheDirection() throws {
        let attack = MimicHeuristicAttack(warmup: 2)
        var state = AttackState.empty
        _ = try attack.run(attackContext(spreadAlongX, byzantine: 1, seed: 2), state: &state)
        let sign: Double = firstGaussianIsPositive(seed: 2) ? 1 : -1
        // Round 2 (mean 0, so μ̂ stays 0): the power step from z = (s, 0) is s·(1, 3)/√10, and the
        // new direction is the normalised average ½·(s, 0) + ½·s·(1, 3)/√10.
        let second: [[Float]] = [[1, 3], [-1, -3], [0, 0], [0, 0]]
        _ = try attack.run(attackContext(second, byzantine: 1, seed: 2, round: 1), state: &state)
        let a = 1 / 10.0.squareRoot()
        let (x, y) = ((1 + a) / 2, 3 * a / 2)
        let norm = (x * x + y * y).squareRoot()
        #expect(approximately(state.vectors["z"], [sign * x / norm, sign * y / norm]))
    }

    /// The heuristic of Karimireddy et al. written out in Double, straight from the definition.
    func referenceHeuristic(rounds: [[[Float]]], warmup: Int, z0: [Double]) -> (targets: [Int], mu: [Double],
        z: [Double]) {
        func normalised(_ v: [Double]) -> [Double] {
            let n = v.map { $0 * $0 }.reduce(0, +).squareRoot()
            return v.map { $0 / n }
        }
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map(*).reduce(0, +) }
        var mu: [Double] = [], z = normalised(z0), targets: [Int] = [], target = 0
        for (t, round) in rounds.enumerated() {
            let h = round.map { $0.map(Double.init) }
            if t < warmup {
                let mean = (0..<h[0].count).map { j in h.map { $0[j] }.reduce(0, +) / Double(h.count) }
                mu = t == 0 ? mean : zip(mu, mean).map { (Double(t) * $0 + $1) / Double(t + 1) }
                var step = [Double](repeating: 0, count: mu.count)
                for row in h {
                    let dev = zip(row, mu).map(-)
                    let w = dot(dev, z)
                    step = zip(step, dev).map { $0 + w * $1 }
                }
                let u = normalised(step)
                z = t == 0 ? u : normalised(zip(z, u).map { (Double(t) * $0 + $1) / Double(t + 1) })
                let scores = h.map { dot($0, z) }
                target = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }!
            }
            targets.append(target)
        }
        return (targets, mu, z)
    }

    @Test func heuristicMatchesAReferenceImplementation() throws {
        func value(_ t: Int, _ i: Int, _ j: Int) -> Float {
            let cell: Int = (i * 7 + j * 3 + t * 5) % 11
            return Float(cell - 3 + t)
        }
        let rounds: [[[Float]]] = (0..<4).map { t in (0..<5).map { i in (0..<4).map { j in value(t, i, j) } } }
        for warmup in [1, 2, 3] {
            var state = AttackState.empty
            var targets: [Int] = []
            for (t, round) in rounds.enumerated() {
                let output = try MimicHeuristicAttack(warmup: warmup).run(
                    attackContext(round, byzantine: 1, seed: 3, round: t, classIndex: 2), state: &state)
                targets.append(try #require(output.decision.target))
            }
            var stream = RandomStream(seed: 3, purpose: .attack, worker: AttackContext.colludingWorker, round: 0,
                class: 2)
            let z0 = (0..<4).map { _ in Double(Float(stream.nextGaussian())) }
            let reference = referenceHeuristic(rounds: rounds, warmup: warmup, z0: z0)
            #expect(targets == reference.targets, "warmup \(warmup)")
            #expect(approximately(state.vectors["mu"], reference.mu) && approximately(state.vectors["z"], reference.z),
                "warmup \(warmup)")
        }
    }

    @Test func heuristicIsDeterministic() throws {
        let honest: [[Float]] = (0..<6).map { i -> [Float] in
            (0..<50).map { j -> Float in Float((i * 31 + j * 17) % 13) - 6 } }
        var a = AttackState.empty, b = AttackState.empty
        let first = try MimicHeuristicAttack(warmup: 3).run(attackContext(honest, byzantine: 2, seed: 11), state: &a)
        let again = try MimicHeuristicAttack(warmup: 3).run(attackContext(honest, byzantine: 2, seed: 11), state: &b)
        #expect(first == again && a == b)
        #expect(a.vectors["z"].map { $0.withVector { VectorMath.norm($0) } }.map { abs($0 - 1) < 1e-6 } == true)
    }

    @Test func singleHonestWorkerKeepsTheRandomDirection() throws {
        var state = AttackState.empty
        let output = try MimicHeuristicAttack().run(attackContext([[1, 2, 3]], byzantine: 1), state: &state)
        #expect(rows(output) == [[1, 2, 3]])
        let z = try #require(state.vectors["z"])
        #expect(abs(z.withVector { VectorMath.norm($0) } - 1) < 1e-6)
    }
}

/// Whether `values` has the length of `expected` and each entry is within 1e-6 of it.
private func approximately<T: BinaryFloatingPoint>(_ values: [T]?, _ expected: [Double]) -> Bool {
    guard let values, values.count == expected.count else { return false }
    return zip(values, expected).allSatisfy { abs(Double($0) - $1) < 1e-6 }
}
