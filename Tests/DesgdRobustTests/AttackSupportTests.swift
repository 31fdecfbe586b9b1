import Foundation
import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Plain mean of all inputs (ignores f). Test-only: the real aggregators live on another branch.
struct AttackTestMean: Aggregator {
    var spec: String { "test-mean" }
    func requirement(n: Int, f: Int) -> String? { n >= 1 ? nil : "needs at least one input" }
    func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                   into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        VectorMath.weightedMean(of: context.messages, into: output)
        return AggregationDecision()
    }
}

/// A context over small hand-written vectors.
func attackContext(_ honest: [[Float]], byzantine: Int, own: [[Float]]? = nil,
                   aggregator: any Aggregator = AttackTestMean(), declaredF: Int? = nil,
                   state: AggregatorState = .empty, workers: [Int]? = nil,
                   seed: UInt64 = 1, round: Int = 0, classIndex: Int = 0) -> AttackContext {
    AttackContext(honest: Matrix(rowVectors: honest), byzantineCount: byzantine, aggregator: aggregator,
                  declaredF: declaredF ?? byzantine, aggregatorState: state,
                  ownMomenta: own.map { Matrix(rowVectors: $0) }, byzantineWorkers: workers,
                  seed: seed, round: round, classIndex: classIndex)
}

/// The message of each Byzantine row, as arrays.
func rows(_ output: AttackOutput) -> [[Float]] {
    (0..<output.messages.rows).map { output.messages.row($0) }
}

/// The message of the ``AggregationError`` `body` throws, or nil when it does not throw.
func attackError(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return (error as? AggregationError)?.message ?? "not an AggregationError: \(error)"
    }
}

/// The checks `Attack.run` makes before any attack crafts its messages.
@Suite struct AttackSupportTests {
    @Test func missingOrMisshapedOwnMomentumIsAnError() throws {
        let honest: [[Float]] = [[1, 2], [3, 4]]
        let missing = attackError { _ = try SignFlipAttack().run(attackContext(honest, byzantine: 2)) }
        #expect(missing
            == "signflip:scale=1 needs each Byzantine worker's own momentum (trueLabels) as a 2×2 matrix, got none")
        let oneRow = attackError { _ = try LabelFlipAttack().run(attackContext(honest, byzantine: 2, own: [[1, 1]])) }
        #expect(oneRow?.contains("(flippedLabels) as a 2×2 matrix, got 1×2") == true)
        // Attacks that need no own momentum ignore its absence.
        #expect(try ConstantAttack().run(attackContext(honest, byzantine: 2)).messages.rows == 2)
    }

    @Test func workerIdsMustMatchTheByzantineCount() {
        let message = attackError { _ = try ConstantAttack().run(attackContext([[1]], byzantine: 2, workers: [7])) }
        #expect(message == "constant:c=5: 1 Byzantine worker ids for 2 Byzantine senders")
    }

    @Test func noByzantineSenderGivesNoMessageAndKeepsTheState() throws {
        var state = AttackState(scalars: ["t": 4])
        let output = try MimicHeuristicAttack().run(attackContext([[1, 2]], byzantine: 0), state: &state)
        #expect(output.messages.rows == 0 && output.messages.columns == 2)
        #expect(state == AttackState(scalars: ["t": 4]))
    }

    @Test func defaultWorkerIdsCountFromZero() {
        #expect(attackContext([[1]], byzantine: 3).byzantineWorkers == [0, 1, 2])
    }

    @Test func decisionsSurviveAJSONRoundTrip() throws {
        var decision = AttackDecision()
        decision.scale = 0.1
        decision.search = [AttackSearchPoint(tau: 0, objective: 1.5), AttackSearchPoint(tau: 10, objective: 2.25)]
        decision.objective = 2.25
        decision.target = 3
        decision.scores = [1, -2]
        decision.ownMomentum = .flippedLabels
        decision.randomness = [AttackRandomness(purpose: .attack, worker: -1, round: 4, classIndex: 2, draws: 40)]
        decision.values = ["t": 1]
        let data = try JSONEncoder().encode(decision)
        #expect(try JSONDecoder().decode(AttackDecision.self, from: data) == decision)
        #expect(try JSONDecoder().decode(AttackDecision.self, from: JSONEncoder().encode(AttackDecision()))
            == AttackDecision())
    }

    @Test func identicalRowsHelper() {
        let m = Matrix(repeating: [1, 2, 3], count: 2)
        #expect(m.rows == 2 && m.columns == 3 && m.storage == [1, 2, 3, 1, 2, 3])
        #expect(Matrix(repeating: [1, 2], count: 0).rows == 0)
    }
}
