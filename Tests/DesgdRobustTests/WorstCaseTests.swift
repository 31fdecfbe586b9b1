import Testing
import DesgdNumerics
@testable import DesgdRobust

/// The worst-case adversary (docs/worst-case.md): closed forms it must reach, and attacks it must dominate.
@Suite struct WorstCaseTests {
    /// h honest rows of dimension d drawn N(centre, 1) from a keyed stream.
    func honestRows(_ h: Int, _ d: Int, seed: UInt64, centre: Float = 0.5) -> Matrix {
        var stream = RandomStream(seed: seed, purpose: .fuzzing, round: h, class: d)
        var m = Matrix(rows: h, columns: d)
        for i in 0..<h { m.withMutableRow(i) { stream.fillGaussian($0, mean: Double(centre), sigma: 1) } }
        return m
    }

    func problem(_ rule: String, honest: Matrix, f: Int, recorded: Matrix? = nil) -> WorstCaseProblem {
        let aggregator = make(rule)
        return WorstCaseProblem(honest: honest, byzantineCount: f, recordedByzantine: recorded, rule: aggregator,
                                declaredF: f, seed: 7, round: 3, classIndex: 1,
                                bound: aggregator.resilienceBound(n: honest.rows + f, f: f))
    }

    /// ‖F(honest ∪ byzantine) − x̄_S‖ for the given Byzantine rows.
    func gap(_ p: WorstCaseProblem, byzantine: Matrix) -> Double {
        var inputs = p.honest
        inputs.append(rowsOf: byzantine)
        var state = p.state
        let (out, _) = p.rule.aggregate(AggregationContext(messages: inputs, f: p.declaredF, seed: p.seed,
                                                           round: p.round,
                                                           classIndex: p.classIndex, backend: p.backend), state: &state)
        let stats = HonestStatistics(messages: p.honest, honest: Array(repeating: true, count: p.honest.rows))
        return out.withUnsafeBufferPointer { o in stats.mean.withUnsafeBufferPointer { VectorMath.distance(o, $0) } }
    }

    @Test func meanIsMovedToTheReach() {
        // One input moves the mean without limit: within the reach R·s, f identical inputs at
        // distance R·s move it by exactly (f/n)·R·s.
        let honest = honestRows(5, 16, seed: 1)
        let p = problem("mean", honest: honest, f: 2)
        let w = WorstCaseSearch().search(p)
        let s = HonestStatistics(messages: honest, honest: Array(repeating: true, count: 5)).diameter
        let closedForm = 2.0 / 7.0 * WorstCaseSearch.reach * s
        #expect(abs(w.gap - closedForm) <= 0.01 * closedForm, "\(w.gap) vs \(closedForm)")
        #expect(w.atReach)
        #expect(w.evaluations <= WorstCaseSearch.defaultBudget)
    }

    @Test func oneDimensionalMedianReachesItsOrderStatistic() {
        // 1-D: the median of S ∪ B moves at most to the order statistic f places beyond the
        // middle, reached with every Byzantine input at one end (monotone in each input).
        for (values, f) in [([Float](arrayLiteral: 0, 1, 2, 3, 4, 5, 6), 3), ([0.3, -1, 2.5, 7, 1.25, 4], 2),
            ([1, 2, 4, 8, 16], 1)] {
            let honest = Matrix(rowVectors: values.map { [$0] })
            let p = problem("median", honest: honest, f: f)
            let far = Float(1e9)
            let up = gap(p, byzantine: Matrix(rowVectors: Array(repeating: [far], count: f)))
            let down = gap(p, byzantine: Matrix(rowVectors: Array(repeating: [-far], count: f)))
            let closedForm = max(up, down)
            let w = WorstCaseSearch().search(p)
            #expect(w.gap >= 0.99 * closedForm && w.gap <= closedForm * (1 + 1e-9),
                "\(values): \(w.gap) vs \(closedForm)")
        }
    }

    @Test func noByzantineInputMeasuresTheRuleAlone() {
        let honest = honestRows(6, 8, seed: 2)
        let w = WorstCaseSearch().search(problem("trmean", honest: honest, f: 0))
        #expect(w.family == "none" && w.evaluations == 1)
        #expect(abs(w.gap - gap(problem("trmean", honest: honest, f: 0), byzantine: Matrix(rows: 0, columns: 8))) == 0)
    }

    /// The search is never below the recorded attack, `ipm-opt` and `alie-opt` (whose searches it
    /// runs point for point), on rules of every kind.
    @Test(arguments: ["krum", "trmean", "median", "geomed", "cclip", "mkrum", "clustering", "mda", "meamed",
        "bucketing:s=2+krum"])
    func dominatesTheOptimalAttacksAndTheRecordedOne(_ rule: String) {
        let honest = honestRows(9, 24, seed: 3)
        let f = 3
        let (mean, sigma) = ALIEAttack.statistics(of: honest)
        let recorded = Matrix(repeating: ALIEAttack.message(mean: mean, sigma: sigma, z: 1.5), count: f)
        let p = problem(rule, honest: honest, f: f, recorded: recorded)
        let w = WorstCaseSearch().search(p)
        #expect(w.gap >= gap(p, byzantine: recorded))
        for attack in [OptimalIPMAttack(), OptimalALIEAttack()] as [any LineSearchedAttack] {
            var state = AttackState()
            let out = attack.craft(AttackContext(honest: honest, byzantineCount: f, aggregator: p.rule, declaredF: f,
                                                 seed: p.seed, round: p.round, classIndex: p.classIndex), state: &state)
            let attackGap = gap(p, byzantine: out.messages)
            // Within the reach the search's points include the attack's; an attack beyond it (an
            // unbounded rule) is matched by a worst case on the reach.
            let stats = HonestStatistics(messages: honest, honest: Array(repeating: true, count: honest.rows))
            let far = out.messages.row(0).withUnsafeBufferPointer { v in
                stats.mean.withUnsafeBufferPointer { VectorMath.distance(v, $0) } }
            if far > WorstCaseSearch.reach * stats.diameter {
                #expect(w.atReach,
                    "\(rule): \(type(of: attack).name) goes beyond the reach, the worst case does not reach it")
            } else {
                #expect(w.gap >= attackGap * (1 - 1e-12),
                    "\(rule): worst \(w.gap) below \(type(of: attack).name) \(attackGap)")
            }
        }
        #expect(w.evaluations <= WorstCaseSearch.defaultBudget)
        // A proven bound is never exceeded (that would be a bug in the rule or the bound).
        #expect(!w.exceedsBound, "\(rule): λ̂ \(w.lambda ?? .nan) above its bound \(w.bound ?? .nan)")
    }

    @Test func sameProblemSameResult() {
        let honest = honestRows(7, 12, seed: 4)
        let p = problem("krum", honest: honest, f: 2)
        let a = WorstCaseSearch(budget: 120).search(p), b = WorstCaseSearch(budget: 120).search(p)
        #expect(a == b)
        #expect(a.evaluations <= 120)
    }

    @Test func reportsTheRatioToTheBound() throws {
        let honest = honestRows(8, 10, seed: 5)
        let p = problem("geomed", honest: honest, f: 2)
        let w = WorstCaseSearch().search(p)
        let bound = try #require(w.bound)
        #expect(w.boundRatio.map { abs($0 - w.lambda! / bound) < 1e-12 } == true)
        #expect(w.kappa.map { $0 > 0 } == true)
    }
}
