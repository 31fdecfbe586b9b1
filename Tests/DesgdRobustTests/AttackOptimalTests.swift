import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Coordinate-wise median (mean of the two middle values for an even count). Test-only.
private struct TestCoordinateMedian: Aggregator {
    var spec: String { "test-median" }
    func requirement(n: Int, f: Int) -> String? { n >= 1 ? nil : "needs at least one input" }
    func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                   into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let m = context.messages
        for j in 0..<m.columns {
            let column = (0..<m.rows).map { m[$0, j] }.sorted()
            let mid = column.count / 2
            output[j] = column.count % 2 == 1 ? column[mid] : (column[mid - 1] + column[mid]) / 2
        }
        return AggregationDecision()
    }
}

/// Stateful: mean + k·1 where k is the number of earlier calls recorded in the state. Shows
/// whether every evaluation of the search gets the server's state afresh. Test-only.
private struct TestDriftingMean: Aggregator {
    var spec: String { "test-drift" }
    func requirement(n: Int, f: Int) -> String? { n >= 2 * f + 1 ? nil : "needs n ≥ 2f+1, got n=\(n), f=\(f)" }
    func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                   into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        VectorMath.weightedMean(of: context.messages, into: output)
        let calls = state.scalars["calls", default: 0]
        for j in output.indices { output[j] += Float(calls) }
        state.scalars["calls"] = calls + 1
        return AggregationDecision()
    }
}

/// ‖F(honest ∪ f copies of message) − μ‖, computed independently of the attack code.
private func objective(_ aggregator: any Aggregator, _ honest: [[Float]], copies f: Int, declaredF: Int,
                       state: AggregatorState = .empty, message: [Float]) -> Double {
    var state = state
    let inputs = Matrix(rowVectors: honest + Array(repeating: message, count: f))
    let (aggregate, _) = aggregator.aggregate(AggregationContext(messages: inputs, f: declaredF), state: &state)
    let mean = VectorMath.mean(of: Matrix(rowVectors: honest))
    return aggregate.withVector { a in mean.withVector { VectorMath.distance(a, $0) } }
}

/// The ByzFL line search and the optimal IPM / ALIE attacks.
@Suite struct AttackOptimalTests {
    /// Every column has a positive mean and two negative values, so pushing the Byzantine copies
    /// below the honest ones moves the median from the 3rd to the 2nd smallest honest value.
    let honest: [[Float]] = [[-2, 3, -3], [-1, -1, -0.5], [1, 2, 1], [2, -2, 2.5], [3, 1, 4]]

    @Test func lineSearchOnAnIncreasingObjectiveDoublesItsStep() {
        let (best, points) = LineMaximizer().maximize { $0 }
        #expect(points.count == 20)
        #expect(points.prefix(5).map(\.tau) == [0, 10, 30, 70, 150])
        #expect(best.tau == 10 * Double((1 << 19) - 1))
    }

    @Test func lineSearchContractsAfterTheFirstMiss() {
        // g(τ) = −(τ − 17)²: 0 → 10 (better, δ = 20) → 30 (worse, δ = 16) → 26 (worse, δ = 12.8)
        // → 22.8 (better, δ = 10.24) → 33.04 (worse): the search only steps forward from the best.
        let (best, points) = LineMaximizer(evaluations: 6).maximize { -($0 - 17) * ($0 - 17) }
        let expected = [0, 10, 30, 26, 22.8, 33.04]
        #expect(points.count == 6)
        for (point, tau) in zip(points, expected) { #expect(abs(point.tau - tau) < 1e-12) }
        #expect(abs(best.tau - 22.8) < 1e-12)
        // One evaluation: only the start. Ties and NaN never replace the best.
        #expect(LineMaximizer(evaluations: 1, start: 3).maximize { $0 }.points.map(\.tau) == [3])
        #expect(LineMaximizer(evaluations: 5).maximize { _ in 1 }.best.tau == 0)
        #expect(LineMaximizer(evaluations: 5).maximize { $0 == 0 ? 0 : .nan }.best.tau == 0)
    }

    @Test func againstTheMeanTheSearchKeepsIncreasingTau() throws {
        for attack in [OptimalIPMAttack(), OptimalALIEAttack()] as [any Attack] {
            let output = try attack.run(attackContext(honest, byzantine: 2))
            let search = try #require(output.decision.search)
            #expect(search.count == 20 && search[0].tau == 0)
            // ‖mean − μ‖ grows linearly with τ, so every expansion step is accepted.
            #expect(output.decision.scale == 10 * Double((1 << 19) - 1), "\(attack.spec)")
            #expect(zip(search, search.dropFirst()).allSatisfy { $1.objective > $0.objective })
            #expect(output.decision.objective == search.last?.objective)
        }
    }

    @Test func optimalIPMMessagesAreMinusTauMu() throws {
        let output = try OptimalIPMAttack(search: LineMaximizer(evaluations: 3))
            .run(attackContext(honest, byzantine: 2))
        #expect(output.decision.scale == 30)
        let expected = IPMAttack.message(mean: VectorMath.mean(of: Matrix(rowVectors: honest)), epsilon: 30)
        #expect(rows(output) == [expected, expected])
    }

    @Test func optimalAttacksBeatTheFixedOnesAgainstTheMedian() throws {
        let median = TestCoordinateMedian()
        let cases: [(optimal: any Attack, fixed: any Attack)] = [
            (OptimalIPMAttack(), IPMAttack()), (OptimalALIEAttack(), ALIEAttack()),
        ]
        for (optimal, fixed) in cases {
            let context = attackContext(honest, byzantine: 2, aggregator: median)
            let output = try optimal.run(context)
            let best = try #require(output.decision.objective)
            let fixedObjective = objective(median, honest, copies: 2, declaredF: 2,
                                           message: try fixed.run(context).messages.row(0))
            let atZero = try #require(output.decision.search?.first)
            #expect(atZero.tau == 0)
            #expect(best >= fixedObjective, "\(optimal.spec): \(best) < \(fixedObjective) of \(fixed.spec)")
            #expect(best > atZero.objective, "\(optimal.spec) should move away from τ = 0")
            // The recorded objective is that of the messages actually sent.
            #expect(best == objective(median, honest, copies: 2, declaredF: 2, message: output.messages.row(0)))
        }
    }

    @Test func everyEvaluationSeesTheServerStateAfresh() throws {
        let server = AggregatorState(scalars: ["calls": 3])
        let context = attackContext(honest, byzantine: 2, aggregator: TestDriftingMean(), state: server)
        let output = try OptimalALIEAttack(search: LineMaximizer(evaluations: 8)).run(context)
        let (mean, sigma) = ALIEAttack.statistics(of: Matrix(rowVectors: honest))
        for point in try #require(output.decision.search) {
            let message = ALIEAttack.message(mean: mean, sigma: sigma, z: point.tau)
            #expect(point.objective == objective(TestDriftingMean(), honest, copies: 2, declaredF: 2, state: server,
                                                 message: message))
        }
        #expect(context.aggregatorState == server)
    }

    @Test func optimalAttacksAreDeterministicAndCheckTheRule() throws {
        let context = attackContext(honest, byzantine: 2, aggregator: TestCoordinateMedian())
        #expect(try OptimalALIEAttack().run(context) == OptimalALIEAttack().run(context))
        // The simulated rule must accept n_h + f inputs with the declared f.
        let refused = attackContext(honest, byzantine: 2, aggregator: TestDriftingMean(), declaredF: 4)
        #expect(attackError { _ = try OptimalIPMAttack().run(refused) }
                == "ipm-opt:evals=20,start=0,delta=10,ratio=0.8 cannot simulate test-drift:"
                    + " needs n ≥ 2f+1, got n=7, f=4")
        #expect(attackError { _ = try OptimalALIEAttack().run(attackContext([[1, 2]], byzantine: 1)) }?
                .hasSuffix("needs at least 2 honest messages for a standard deviation with ddof=1, got 1") == true)
    }
}
