import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Min-Max / Min-Sum (Shejwalkar & Houmansadr, NDSS 2021) and Fang et al.'s two attacks (USENIX
/// Security 2020), on inputs computed by hand (numbers in the comments) and against the closed
/// forms of docs/references.md, attacks and defences §1.5.
@Suite struct AttackPeerTests {
    /// Three honest scalars 0, 2, 4: μ = 2, σ (ddof 1) = 2, honest diameter D = 4.
    let line: [[Float]] = scalars([0, 2, 4])

    @Test func searchScheduleIsTheNDSSOne() {
        let search = MinMaxSearch()
        // Always feasible: 10, 15, 17.5, … → capped just below 2·γ_init; each step halves.
        let always = search.run({ _ in 0 }, bound: 0)
        #expect(Array(always.points.prefix(4).map(\.tau)) == [10, 15, 17.5, 18.75])
        #expect(always.gamma < 20 && always.gamma > 20 - 2e-5)
        // Never feasible: 10, 5, 2.5, … and γ = 0.
        let never = search.run({ _ in 1 }, bound: 0)
        #expect(Array(never.points.prefix(3).map(\.tau)) == [10, 5, 2.5])
        #expect(never.gamma == 0)
        #expect(never.points.count == 20)  // 10·2⁻¹⁹ is probed; γ = 10·2⁻²⁰ is within τ = 10⁻⁵ of 0
        // Feasible iff γ ≤ 1: the probes 10, 5, 2.5, 1.25, 0.625 (ok), 0.9375 (ok), 1.09375, …
        // end at 0.9999847…, within 2τ of 1 (the bisection stops when its next move is ≤ τ).
        let one = search.run({ $0 <= 1 ? 0 : 1 }, bound: 0)
        #expect(Array(one.points.prefix(7).map(\.tau)) == [10, 5, 2.5, 1.25, 0.625, 0.9375, 1.09375])
        #expect(abs(one.gamma - 0.9999847412109375) < 1e-15)
        // Feasible iff γ ≤ 3: within τ of 3, from below; NaN is infeasible.
        let three = search.run({ $0 <= 3 ? 0 : 1 }, bound: 0)
        #expect(three.gamma <= 3 && three.gamma > 3 - 2e-5)
        #expect(search.run({ _ in .nan }, bound: 0).gamma == 0)
    }

    @Test func minMaxOnAHandComputedLine() throws {
        // v = 2 − 2γ; max_i |v − hᵢ| = 2 + 2γ ≤ D = 4 ⇔ γ ≤ 1 (closed form: γᵢ = 3, 2, 1; min 1).
        let output = try MinMaxAttack().run(attackContext(line, byzantine: 2))
        let gamma = try #require(output.decision.scale)
        #expect(gamma <= 1 && gamma > 1 - 2e-5)
        #expect(output.decision.values?["bound"] == 16)
        #expect(try #require(output.decision.objective) <= 16)
        #expect(output.decision.search?.first?.tau == 10)
        let expected = Float(2) - Float(gamma) * 2
        #expect(rows(output) == [[expected], [expected]])
        // dev=sign and dev=unit: u = 1, v = 2 − γ, 2 + γ ≤ 4 ⇔ γ ≤ 2.
        for deviation in [MinMaxAttack.Deviation.sign, .unit] {
            let g = try #require(MinMaxAttack(deviation: deviation).run(attackContext(line, byzantine: 1))
                .decision.scale)
            #expect(g <= 2 && g > 2 - 2e-5, "\(deviation)")
        }
    }

    @Test func minSumOnAHandComputedLine() throws {
        // Σᵢ (v − hᵢ)² = 8 + 3·(2γ)²; Σⱼ (hᵢ − hⱼ)² = 20, 8, 20: min 8 → γ = 0,
        // max 20 → γ = 1.
        let low = try MinMaxAttack(criterion: .sumOfSquares(.min)).run(attackContext(line, byzantine: 1))
        #expect(low.decision.scale == 0 && rows(low) == [[2]])
        #expect(low.decision.values?["bound"] == 8)
        let high = try MinMaxAttack(criterion: .sumOfSquares(.max)).run(attackContext(line, byzantine: 1))
        let gamma = try #require(high.decision.scale)
        #expect(gamma <= 1 && gamma > 1 - 2e-5)
        #expect(high.decision.values?["bound"] == 20)
    }

    /// The search against the closed forms of docs/references.md, attacks and defences §1.5, on random
    /// honest sets, for every deviation: Min-Sum γ* = min (max) ‖hᵢ − μ‖/‖u‖; Min-Max γ* = minᵢ γᵢ.
    @Test func searchesAgreeWithTheClosedForms() throws {
        var rng = RandomStream(seed: 21, purpose: .syntheticData)
        for trial in 0..<12 {
            let m = 3 + trial % 5, d = 4 + trial % 3
            let honest = (0..<m).map { _ in (0..<d).map { _ in Float(0.5 + 0.3 * rng.nextGaussian()) } }
            let deviation: MinMaxAttack.Deviation = [.std(ddof: 1), .std(ddof: 0), .sign, .unit][trial % 4]
            let attack = MinMaxAttack(deviation: deviation)
            let mean = VectorMath.mean(of: Matrix(rowVectors: honest))
            let u = attack.direction(Matrix(rowVectors: honest), mean: mean).map(Double.init)
            let uu = u.reduce(0) { $0 + $1 * $1 }
            let a = honest.map { h in zip(mean, h).map { Double($0) - Double($1) } }
            let norms = a.map { $0.reduce(0) { $0 + $1 * $1 }.squareRoot() }
            var diameter2 = 0.0
            for x in honest {
                for y in honest { diameter2 = max(diameter2, zip(x, y).reduce(0) { $0 + pow2(Double($1.0 - $1.1)) }) }
            }
            let minMaxStar = a.indices.map { i -> Double in
                let au = zip(a[i], u).reduce(0) { $0 + $1.0 * $1.1 }
                return (au + (au * au + uu * (diameter2 - pow2(norms[i]))).squareRoot()) / uu
            }.min()!
            let cases: [(MinMaxAttack, Double)] = [
                (attack, minMaxStar),
                (MinMaxAttack(criterion: .sumOfSquares(.min), deviation: deviation), norms.min()! / uu.squareRoot()),
                (MinMaxAttack(criterion: .sumOfSquares(.max), deviation: deviation), norms.max()! / uu.squareRoot()),
            ]
            for (attack, star) in cases {
                let gamma = try #require(try attack.run(attackContext(honest, byzantine: 2)).decision.scale)
                // Float messages move the boundary by rounding only; the cap 2·γ_init never binds here.
                #expect(star < 19 && abs(gamma - star) < 1e-4 * max(1, star),
                    "\(attack.spec) trial \(trial): \(gamma) vs \(star)")
            }
        }
    }

    @Test func minMaxEdgeCases() throws {
        // Identical honest messages: σ = 0, every γ feasible, and the message is μ.
        let same = try MinMaxAttack().run(attackContext([[1, 2], [1, 2], [1, 2]], byzantine: 1))
        #expect(rows(same) == [[1, 2]])
        // μ = 0 with dev=unit: u = 0, the message is μ.
        #expect(rows(try MinMaxAttack(deviation: .unit).run(attackContext([[1, -1], [-1, 1]], byzantine: 1)))
            == [[0, 0]])
        // One honest message: ddof = 1 is refused, the others send μ (D = 0).
        #expect(attackError { _ = try MinMaxAttack().run(attackContext([[1, 2]], byzantine: 1)) }?
                .hasSuffix("needs at least 2 honest messages for a standard deviation with ddof=1, got 1") == true)
        #expect(rows(try MinMaxAttack(deviation: .sign).run(attackContext([[1, 2]], byzantine: 1))) == [[1, 2]])
        // Deterministic.
        let context = attackContext(line, byzantine: 3)
        #expect(try MinMaxAttack().run(context) == MinMaxAttack().run(context))
    }

    /// Honest (±4, 0), (0, ±4), (1, 1) (d = 2), c = 2: the Γᵢ are the 3 nearest honest; the
    /// smallest sum is that of (1, 1): 2√10 + √26; m − 2c − 1 = 7 − 4 − 1 = 2; max ‖hᵢ‖ = 4:
    /// λ₀ = (2√10 + √26)/(2√2) + 4/√2 ≈ 6.867. μ = (0.2, 0.2), so v = −λ·(1, 1). Krum (q = 3):
    /// at λ₀ the copies score 2·(λ₀ + 1)² + 0 + … ≈ 110.8 and (1, 1) wins with 46; at λ₀/2 the
    /// copies score ≈ 24.2 against 46 and one of them (row 5, the first) is chosen.
    @Test func fangKrumOnAHandComputedPlane() throws {
        let honest: [[Float]] = [[4, 0], [-4, 0], [0, 4], [0, -4], [1, 1]]
        let lambda0 = (2 * 10.0.squareRoot() + 26.0.squareRoot()) / (2 * 2.0.squareRoot()) + 4 / 2.0.squareRoot()
        #expect(abs(FangKrumAttack.bound(Matrix(rowVectors: honest), byzantine: 2) - lambda0) < 1e-9)
        let output = try FangKrumAttack().run(attackContext(honest, byzantine: 2))
        let search = try #require(output.decision.search)
        #expect(search.count == 2 && abs(search[0].tau - lambda0) < 1e-9 && search[1].tau == search[0].tau / 2)
        #expect(search.map(\.objective) == [0, 1])
        #expect(output.decision.scale == search[1].tau)
        #expect(output.decision.values?["succeeded"] == 1 && output.decision.values?["winner"] == 5)
        let v = Float(-search[1].tau)
        #expect(rows(output) == [[v, v], [v, v]])
        #expect(run(Krum(), honest + rows(output), f: 2).1.selected == [5])
        // start=1 (FLDetector): the copies at −(1, 1) score 0 + 8 + 10 = 18, below every honest
        // score (26 for (1, 1), which now has the copies among its neighbours): the first probe succeeds.
        let fixed = try FangKrumAttack(start: .fixed(1)).run(attackContext(honest, byzantine: 2))
        #expect(fixed.decision.search?.map(\.tau) == [1] && fixed.decision.values?["start"] == 1)
    }

    /// Honest 1…5 (d = 1), c = 2: λ₀ = 4/2 + 5 = 7 exactly (Γ sums 6, 4, 4, 4, 6); the copies
    /// −λ never win (near 0 they make the honest 1 the best-scored input), so the halving runs
    /// down to 7·2⁻¹⁹, the last λ ≥ 10⁻⁵.
    @Test func fangKrumOnAHandComputedLine() throws {
        let honest = scalars([1, 2, 3, 4, 5])
        #expect(FangKrumAttack.bound(Matrix(rowVectors: honest), byzantine: 2) == 7)
        let output = try FangKrumAttack().run(attackContext(honest, byzantine: 2))
        #expect(output.decision.search?.count == 20 && output.decision.search?.allSatisfy { $0.objective == 0 } == true)
        #expect(output.decision.scale == 7.0 / 524_288 && output.decision.values?["succeeded"] == 0)
    }

    @Test func fangKrumWithoutSuccessSendsTheLastLambda() throws {
        // c = 1: a single copy has no zero distance to lean on; near 0 its score (1 + 4 = 5 at
        // v = 0) never beats the honest 2 (q = 2): halving from λ₀ = 2/2 + 4 = 5 down to 5·2⁻¹⁸.
        let output = try FangKrumAttack().run(attackContext(scalars([1, 2, 3, 4]), byzantine: 1))
        #expect(output.decision.values?["lambda0"] == 5 && output.decision.values?["succeeded"] == 0)
        #expect(output.decision.search?.count == 19)
        #expect(output.decision.scale == 5.0 / 262_144)
        #expect(FangKrumAttack().requirement(honest: 4, byzantine: 2) != nil)
        #expect(FangKrumAttack().requirement(honest: 5, byzantine: 2) == nil)
    }

    /// Columns: μ > 0 with h_min > 0 → [h_min/2, h_min]; μ > 0, h_min ≤ 0 → [2·h_min, h_min];
    /// μ < 0, h_max > 0 → [h_max, 2·h_max]; μ < 0, h_max ≤ 0 → [h_max, h_max/2]; μ = 0 → 0.
    @Test func fangTrimmedMeanDrawsBeyondTheExtremes() throws {
        let honest: [[Float]] = [[1, -1, 1, -3, 1], [2, 3, -4, -2, -1], [4, 2, -3, -1, 0]]
        let intervals: [(Double, Double)] = [(0.5, 1), (-2, -1), (1, 2), (-1, -0.5), (0, 0)]
        let context = attackContext(honest, byzantine: 2, workers: [7, 8], seed: 5, round: 3, classIndex: 2)
        let output = try FangTrimmedMeanAttack().run(context)
        #expect(output.decision.scale == 2)
        for (row, worker) in [7, 8].enumerated() {
            var stream = RandomStream(seed: 5, purpose: .attack, worker: worker, round: 3, class: 2)
            let expected = intervals.map { Float($0.0 + stream.nextDouble() * ($0.1 - $0.0)) }
            #expect(output.messages.row(row) == expected)
            for (value, (lo, hi)) in zip(expected, intervals) { #expect(Double(value) >= lo && Double(value) <= hi) }
            #expect(output.decision.randomness?[row]
                == AttackRandomness(purpose: .attack, worker: worker, round: 3, classIndex: 2,
                                                                          draws: 10))
        }
        #expect(output.messages.row(0) != output.messages.row(1))
        // The trimmed mean and the median move against μ in every column where μ ≠ 0.
        let attacked = honest + rows(output)
        let (median, _) = run(CoordinateWiseMedian(), attacked, f: 2)
        let mean = VectorMath.mean(of: Matrix(rowVectors: honest))
        let (honestMedian, _) = run(CoordinateWiseMedian(), honest, f: 0)
        for j in 0..<4 { #expect((median[j] - honestMedian[j]) * mean[j] < 0, "column \(j)") }
        // The thread count does not change the bits.
        var threaded = context
        threaded.threads = 3
        #expect(try FangTrimmedMeanAttack().run(threaded) == output)
    }
}
