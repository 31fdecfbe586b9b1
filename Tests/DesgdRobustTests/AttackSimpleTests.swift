import Foundation
import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Hand-computed cases for the attacks that need no search: none, constant, inf, nan, sign-flip,
/// label-flip, IPM, Gaussian.
@Suite struct AttackSimpleTests {
    let honest: [[Float]] = [[1, 2, -4], [3, 6, 0]]  // mean (2, 4, −2), exact in Float
    let own: [[Float]] = [[1, -2, 0.5], [3, 0, -4.25]]

    @Test func noneForwardsTheOwnMomentumBits() throws {
        let weird: [[Float]] = [[-0.0, .leastNonzeroMagnitude, 1e30], [.greatestFiniteMagnitude, -7, 0.1]]
        let output = try NoAttack().run(attackContext(honest, byzantine: 2, own: weird))
        #expect(output.messages.storage.map(\.bitPattern) == weird.flatMap { $0 }.map(\.bitPattern))
        #expect(output.decision.ownMomentum == .trueLabels)
        #expect(NoAttack().ownMomentum == .trueLabels)
    }

    @Test func constantSendsCTimesOnes() throws {
        let output = try ConstantAttack().run(attackContext(honest, byzantine: 2))
        #expect(rows(output) == [[5, 5, 5], [5, 5, 5]])
        #expect(output.decision.scale == 5)
        #expect(rows(try ConstantAttack(c: -2.5).run(attackContext(honest, byzantine: 1))) == [[-2.5, -2.5, -2.5]])
    }

    @Test func infAndNaNFillEveryCoordinate() throws {
        let inf = try InfAttack().run(attackContext(honest, byzantine: 3))
        #expect(inf.messages.rows == 3 && inf.messages.storage.allSatisfy { $0 == .infinity })
        let nan = try NaNAttack().run(attackContext(honest, byzantine: 2))
        #expect(nan.messages.rows == 2 && nan.messages.storage.allSatisfy { $0.bitPattern == 0x7FC0_0000 })
    }

    @Test func signFlipNegatesAndScalesTheOwnMomentum() throws {
        let flipped = try SignFlipAttack().run(attackContext(honest, byzantine: 2, own: own))
        #expect(rows(flipped) == [[-1, 2, -0.5], [-3, 0, 4.25]])
        #expect(flipped.decision.scale == 1 && flipped.decision.ownMomentum == .trueLabels)
        let doubled = try SignFlipAttack(scale: 2).run(attackContext(honest, byzantine: 2, own: own))
        #expect(rows(doubled) == [[-2, 4, -1], [-6, 0, 8.5]])
    }

    @Test func labelFlipPassesTheFlippedMomentumThrough() throws {
        let output = try LabelFlipAttack().run(attackContext(honest, byzantine: 2, own: own))
        #expect(rows(output) == own)
        #expect(output.decision.ownMomentum == .flippedLabels)
        #expect(LabelFlipAttack().ownMomentum == .flippedLabels)
    }

    @Test func ipmSendsMinusEpsilonTimesTheHonestMean() throws {
        let output = try IPMAttack().run(attackContext(honest, byzantine: 3))
        let e = Float(-0.1)
        #expect(rows(output) == Array(repeating: [e * 2, e * 4, e * -2], count: 3))
        #expect(output.decision.scale == 0.1)
        #expect(rows(try IPMAttack(epsilon: 0.5).run(attackContext(honest, byzantine: 1))) == [[-1, -2, 1]])
        let noHonest = AttackContext(honest: Matrix(rows: 0, columns: 3), byzantineCount: 1,
                                     aggregator: AttackTestMean(), declaredF: 1)
        #expect(attackError { _ = try IPMAttack().run(noHonest) }
                == "ipm:eps=0.1: needs at least one honest message to take its mean, got none")
    }

    @Test func gaussianDrawsEachWorkerFromItsOwnKeyedStream() throws {
        let d = 5
        let zeros = [[Float]](repeating: [Float](repeating: 0, count: d), count: 2)
        let context = attackContext(zeros, byzantine: 2, workers: [20, 23], seed: 9, round: 4, classIndex: 7)
        let output = try GaussianAttack(mu: 0.5, sigma: 2).run(context)
        for (row, worker) in [20, 23].enumerated() {
            // Box–Muller pairs written out: coordinates 2k, 2k+1 are r·cos θ, r·sin θ of pair k.
            var stream = RandomStream(seed: 9, purpose: .attack, worker: worker, round: 4, class: 7)
            var expected: [Float] = []
            while expected.count < d {
                let u1 = 1 - stream.nextDouble(), u2 = stream.nextDouble()
                let r = (-2 * Foundation.log(u1)).squareRoot() * 2
                expected.append(Float(0.5 + r * Foundation.cos(2 * Double.pi * u2)))
                expected.append(Float(0.5 + r * Foundation.sin(2 * Double.pi * u2)))
            }
            #expect(output.messages.row(row) == Array(expected.prefix(d)))
        }
        #expect(output.decision.randomness == [
            AttackRandomness(purpose: .attack, worker: 20, round: 4, classIndex: 7, draws: 12),
            AttackRandomness(purpose: .attack, worker: 23, round: 4, classIndex: 7, draws: 12),
        ])
        // Same inputs, same bits.
        #expect(try GaussianAttack(mu: 0.5, sigma: 2).run(context) == output)
        // Worker 23's noise does not depend on which other workers attack.
        let alone = try GaussianAttack(mu: 0.5, sigma: 2).run(
            attackContext([[0, 0, 0, 0, 0]], byzantine: 1, workers: [23], seed: 9, round: 4, classIndex: 7))
        #expect(alone.messages.row(0) == output.messages.row(1))
        // Another round or class draws other noise.
        let nextRound = try GaussianAttack(mu: 0.5, sigma: 2).run(
            attackContext(zeros, byzantine: 2, workers: [20, 23], seed: 9, round: 5, classIndex: 7))
        #expect(nextRound.messages.row(0) != output.messages.row(0))
    }

    @Test func gaussianBitsDoNotDependOnTheThreadCount() throws {
        var contexts = (1...3).map { threads in
            AttackContext(honest: Matrix(rows: 1, columns: 1000), byzantineCount: 5, aggregator: AttackTestMean(),
                          declaredF: 5, byzantineWorkers: [4, 9, 2, 7, 30], seed: 3, round: 8, threads: threads)
        }
        let single = try GaussianAttack().run(contexts.removeFirst())
        for context in contexts {
            let output = try GaussianAttack().run(context)
            #expect(output.messages.storage.map(\.bitPattern) == single.messages.storage.map(\.bitPattern))
            #expect(output.decision == single.decision)
        }
    }

    @Test func gaussianHasTheRequestedMeanAndSpread() throws {
        let d = 20_000
        let output = try GaussianAttack().run(
            AttackContext(honest: Matrix(rows: 1, columns: d), byzantineCount: 1, aggregator: AttackTestMean(),
                declaredF: 1))
        let values = output.messages.storage.map(Double.init)
        let mean = values.reduce(0, +) / Double(d)
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d - 1)).squareRoot()
        #expect(abs(mean) < 0.05)  // standard error 2/√20000 ≈ 0.014
        #expect(abs(sd - 2) < 0.05)
        // σ = 0 gives exactly μ.
        let flat = try GaussianAttack(mu: -3, sigma: 0).run(attackContext([[0, 0]], byzantine: 1))
        #expect(rows(flat) == [[-3, -3]])
    }
}
