import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Small inputs whose outputs and decisions were computed by hand (numbers in the comments), or
/// for CAF/DnC/SMEA/MDA/geomed by an independent numpy transcription of the definition.
@Suite struct HandComputedTests {
    /// Five scalars with one far outlier: 0, 1, 2, 3, 100.
    let line: [[Float]] = scalars([0, 1, 2, 3, 100])

    /// Seven 2-D points: a unit square, a point inside it, and two outliers.
    let plane: [[Float]] = [[0, 0], [1, 0], [0, 1], [1, 1], [6, -2], [0.5, 0.4], [-3, 5]]

    @Test func mean() {
        let (y, d) = run(Mean(), [[1, 2], [3, 4], [5, 9]], f: 0)
        #expect(y == [3, 5])
        #expect(close(d.weights, [1.0 / 3, 1.0 / 3, 1.0 / 3]))
        #expect(Mean().resilienceBound(n: 3, f: 0) == 0)
        #expect(Mean().resilienceBound(n: 3, f: 1) == nil)
    }

    @Test func clippedMean() {
        // Norms 5, 1, 10 → τ = 5; factors 1, 1, 0.5 → ([3,4] + [0,1] + [3,4]) / 3 = [2, 3].
        let (y, d) = run(ClippedMean(), [[3, 4], [0, 1], [6, 8]], f: 1)
        #expect(close(y, [2, 3]))
        #expect(close(d.clipFactors, [1, 1, 0.5]))
        #expect(d.values?["tau"] == 5)
        // Even n: τ = (2 + 3)/2 = 2.5 from norms 1, 2, 3, 4; factors 1, 1, 2.5/3, 2.5/4.
        let (y2, d2) = run(ClippedMean(), scalars([1, -2, 3, 4]), f: 1)
        #expect(d2.values?["tau"] == 2.5)
        #expect(close(y2, [(1 - 2 + 2.5 + 2.5) / 4.0]))
    }

    @Test func median() {
        // Columns {1,3,2,100,-50} → 2 and {10,-2,5,0,7} → 5, both from row 2.
        let rows: [[Float]] = [[1, 10], [3, -2], [2, 5], [100, 0], [-50, 7]]
        let (y, d) = run(CoordinateWiseMedian(), rows, f: 2)
        #expect(y == [2, 5])
        #expect(d.coordinatesUsed == [0, 0, 2, 0, 0])
        // Even count: 1, 2, 4, 10 → (2 + 4)/2 = 3, both middle values used.
        let (y2, d2) = run(CoordinateWiseMedian(), scalars([1, 4, 2, 10]), f: 1)
        #expect(y2 == [3])
        #expect(d2.coordinatesUsed == [0, 1, 1, 0])
    }

    @Test func trimmedMean() {
        // f = 1: {1,2,3} → 2 and {0,5,7} → 4.
        let rows: [[Float]] = [[1, 10], [3, -2], [2, 5], [100, 0], [-50, 7]]
        let (y, d) = run(TrimmedMean(), rows, f: 1)
        #expect(y == [2, 4])
        #expect(d.coordinatesUsed == [1, 1, 2, 1, 1])
        // b = 0 is the mean; Flower's fraction form b = n/5 drops 1 of 5 each side.
        #expect(run(make("trmean:b=0"), rows, f: 1).0 == [11.2, 4])
        #expect(run(make("trmean:b=n/5"), rows, f: 0).0 == [2, 4])
    }

    @Test func meamed() {
        let rows: [[Float]] = [[1, 10], [3, -2], [2, 5], [100, 0], [-50, 7]]
        // f = 1 keeps 4. Column 0: median 2, nearest 2,1,3 then -50 (52 < 98) → -44/4 = -11.
        // Column 1: median 5, nearest 5, 7, then 10 and 0 (both at 5) → 22/4 = 5.5.
        #expect(run(MeaMed(), rows, f: 1).0 == [-11, 5.5])
        // f = 2 keeps 3. Column 1: 5, 7, then the tie 10 (row 0) / 0 (row 3) → row 0: 22/3.
        let (y, d) = run(MeaMed(), rows, f: 2)
        #expect(close(y, [2, 22.0 / 3]))
        #expect(d.coordinatesUsed == [2, 1, 2, 0, 1])
    }

    @Test func krum() {
        // n = 5, f = 1, q = 2: scores 1+4=5, 1+1=2, 1+4=5, 1+64=65, 1+81=82 → row 1.
        let (y, d) = run(Krum(), scalars([0, 1, 2, 10, 11]), f: 1)
        #expect(y == [1])
        #expect(d.selected == [1])
        #expect(close(d.scores, [5, 2, 5, 65, 82], 1e-5))
        #expect(d.weights == [0, 1, 0, 0, 0])
        // ByzFL's q = n−f−1 = 3: 105, 83, 69, 146, 182 → row 2 (value 2).
        let (y3, d3) = run(make("krum:q=n-f-1"), scalars([0, 1, 2, 10, 11]), f: 1)
        #expect(y3 == [2])
        #expect(close(d3.scores, [105, 83, 69, 146, 182], 1e-5))
        // Ties: -1, 0, 1 with q = 1 all score 1 → the first index.
        #expect(run(Krum(), scalars([-1, 0, 1]), f: 0).0 == [-1])
    }

    @Test func multiKrum() {
        // Scores 5, 2, 5, 65, 82; m = n−f = 4 keeps rows 1, 0, 2 (tie 0 before 2), 3 → 13/4.
        let (y, d) = run(MultiKrum(), scalars([0, 1, 2, 10, 11]), f: 1)
        #expect(y == [3.25])
        #expect(d.selected == [1, 0, 2, 3])
        #expect(d.weights == [0.25, 0.25, 0.25, 0.25, 0])
        #expect(run(make("mkrum:m=1"), scalars([0, 1, 2, 10, 11]), f: 1).0 == [1])
    }

    @Test func geometricMedian() {
        // ByzFL's documented example for GeometricMedian() (ν = 0.1, T = 3, z₀ = 0).
        let byzfl = make("geomed:nu=0.1,iters=3,tol=0,start=zero")
        let (y, d) = run(byzfl, [[1, 2, 3], [4, 5, 6], [7, 8, 9]], f: 0)
        #expect(close(y, [3.78788764, 4.78788764, 5.78788764], 1e-5))
        #expect(d.iterations == 3)
        #expect(d.values?["converged"] == 0)
        // Converged: the geometric median of 0, 1, 10 is the middle point 1.
        let (y2, d2) = run(GeometricMedian(), scalars([0, 1, 10]), f: 1)
        #expect(close(y2, [1], 1e-4))
        #expect(d2.values?["converged"] == 1)
        // The output is exactly the weighted average of the inputs with the recorded weights.
        let w = d2.weights ?? []
        #expect(abs(w.reduce(0, +) - 1) < 1e-12)
        #expect(close(y2, [w[1] + 10 * w[2]], 1e-6))
        // Symmetric square with its centre: the centre.
        #expect(close(run(GeometricMedian(), [[0, 0], [2, 0], [0, 2], [2, 2], [1, 1]], f: 1).0, [1, 1], 1e-5))
    }

    @Test func faba() {
        // f = 1: mean 21.2, farthest 100 → mean of 0..3 = 1.5.
        let (y, d) = run(FABA(), line, f: 1)
        #expect(y == [1.5])
        #expect(d.removed == [4])
        // f = 2: then mean 1.5, rows 0 and 3 tie at 1.5 → lowest index 0 removed → mean 2.
        let (y2, d2) = run(FABA(), line, f: 2)
        #expect(y2 == [2])
        #expect(d2.removed == [4, 0])
        #expect(d2.selected == [1, 2, 3])
    }

    @Test func dncWithAllCoordinates() {
        // b ≥ d: no sampling. Scores ⟨xᵢ − μ, v⟩² = 11.52, 7.22, 7.22, 3.92, 115.52 (numpy SVD).
        let rows: [[Float]] = [[0, 0], [1, 0], [0, 1], [1, 1], [10, 10]]
        let (y, d) = run(DnC(), rows, f: 1)
        #expect(y == [0.5, 0.5])
        #expect(d.selected == [0, 1, 2, 3])
        #expect(close(d.scores, [11.52, 7.22, 7.22, 3.92, 115.52], 1e-3))
        #expect(d.sampledCoordinates == nil)
    }

    @Test func dncSamplesCoordinatesFromTheAggregatorStream() {
        var rng = RandomStream(seed: 5, purpose: .syntheticData)
        let rows = (0..<8).map { _ in (0..<50).map { _ in Float(rng.nextGaussian()) } }
        let dnc = make("dnc:b=10,niters=3")
        let (y, d) = run(dnc, rows, f: 2, seed: 9, round: 4)
        let subsets = d.sampledCoordinates ?? []
        #expect(subsets.count == 3)
        // The subsets are exactly the draws of the documented stream, sorted.
        var stream = RandomStream(seed: 9, purpose: .aggregator, round: 4, class: 0)
        for subset in subsets { #expect(subset == stream.sample(10, from: 50).sorted()) }
        // Replaying the round gives the same bits; another round draws other coordinates.
        #expect(run(dnc, rows, f: 2, seed: 9, round: 4) == (y, d))
        #expect(run(dnc, rows, f: 2, seed: 9, round: 5).1.sampledCoordinates != subsets)
        #expect((d.selected ?? []).count >= 8 - 3 * 2)
    }

    @Test func clustering() {
        // Four inputs pointing right, two pointing left: keep the right ones.
        let rows: [[Float]] = [[1, 0], [1, 0.1], [-1, 0], [0.9, 0], [-1, 0.2], [1, -0.1]]
        let (y, d) = run(Clustering(), rows, f: 2)
        #expect(close(y, [0.975, 0]))
        #expect(d.clusterLabels == [0, 0, 1, 0, 1, 0])
        #expect(d.selected == [0, 1, 3, 5])
        // Equal halves: keep the cluster containing input 0.
        let (y2, d2) = run(Clustering(), [[1, 0], [-1, 0], [1, 0.1], [-1, 0.1]], f: 1)
        #expect(close(y2, [1, 0.05]))
        #expect(d2.clusterLabels == [0, 1, 0, 1])
    }

    @Test func centeredClipping() {
        // τ = 1, one iteration from 0: 0.5 + 2·½ − 4·¼ → v = 0.5/3 = 1/6.
        let rule = make("cclip:tau=1,iters=1")
        let inputs = context(scalars([0.5, 2, -4]), f: 1)
        var state = AggregatorState.empty
        let (y1, d1) = rule.aggregate(inputs, state: &state)
        #expect(close(y1, [1.0 / 6], 1e-6))
        #expect(close(d1.clipFactors, [1, 0.5, 0.25], 1e-7))
        #expect(state.vectors["centre"] == y1)
        // Second call continues from 1/6: v = 1/6 + (1/3 + 1 − 1)/3 = 5/18.
        let (y2, d2) = rule.aggregate(inputs, state: &state)
        #expect(close(y2, [5.0 / 18], 1e-6))
        #expect(close(d2.clipFactors, [1, 6.0 / 11, 6.0 / 25], 1e-6))
        // Two iterations in one call from a fresh state: the same point.
        #expect(close(run(make("cclip:tau=1,iters=2"), scalars([0.5, 2, -4]), f: 1).0, [5.0 / 18], 1e-6))
    }

    @Test func bulyan() {
        // n = 7, f = 1: θ = 5 Krum rounds on 0,1,2,3,4,5,100 select rows 2 (tie with 3), 3, 1
        // (tie with 4), 4 (tie with 5), 0 (tie with 5); β = 3 values nearest the median 2 of
        // {0,1,2,3,4}: 2, 1, 3 → 2.
        let (y, d) = run(Bulyan(), scalars([0, 1, 2, 3, 4, 5, 100]), f: 1)
        #expect(d.selected == [2, 3, 1, 4, 0])
        #expect(y == [2])
        #expect(d.coordinatesUsed == [0, 1, 1, 1, 0, 0, 0])
        #expect(d.values?["beta"] == 3)
    }

    @Test func mda() {
        #expect(run(MDA(), line, f: 1).0 == [1.5])
        // f = 2: {0,1,2} and {1,2,3} both have diameter 2 → the first subset → 1.
        let (y, d) = run(MDA(), line, f: 2)
        #expect(y == [1])
        #expect(d.selected == [0, 1, 2])
        // 2-D, f = 2: subset (0,1,2,3,5), diameter √2, mean (0.5, 0.48) (numpy enumeration).
        let (y2, d2) = run(MDA(), plane, f: 2)
        #expect(close(y2, [0.5, 0.48]))
        #expect(d2.selected == [0, 1, 2, 3, 5])
        #expect(close([d2.values?["diameter"] ?? 0], [Double(2).squareRoot()], 1e-6))
    }

    @Test func monna() {
        #expect(run(MoNNA(), line, f: 1).0 == [1.5])
        #expect(run(make("monna:pivot=4"), line, f: 1).0 == [26.5])
        // Pivot 2 of 0, 1, 2, 4, 100 keeping 3: 2, 1, then 0 and 4 tie at distance 2 → row 0.
        let (y, d) = run(make("monna:pivot=2"), scalars([0, 1, 2, 4, 100]), f: 2)
        #expect(y == [1])
        #expect(d.selected == [2, 1, 0])
    }

    @Test func caf() {
        // numpy transcription of the loop (exact eigenpairs, τ_max over positive weights).
        let (y, d) = run(CAF(), line, f: 1)
        #expect(close(y, [1.50846205], 1e-5))
        #expect(close(d.weights, [0.24741843, 0.24919675, 0.25088916, 0.25249566, 0], 1e-6))
        #expect(d.iterations == 2)
        let (y2, d2) = run(CAF(), plane, f: 2)
        #expect(close(y2, [0.49998389, 0.48008775], 1e-5))
        #expect(close([d2.values?["eigenvalue"] ?? 0], [0.20329653787404928], 1e-6))
        // f = 0: the loop never runs — the mean, whose covariance (population variance) is 1553.36.
        let (y0, d0) = run(CAF(), line, f: 0)
        #expect(close(y0, [21.2]))
        #expect(close([d0.values?["eigenvalue"] ?? 0], [1553.36], 1e-3))
        #expect(d0.iterations == 0)
    }

    @Test func smea() {
        #expect(run(SMEA(), line, f: 1).0 == [1.5])
        #expect(run(SMEA(), line, f: 2).0 == [1])
        // 2-D, f = 2: subset (0,1,2,3,5), top eigenvalue 0.2016 (numpy enumeration).
        let (y, d) = run(SMEA(), plane, f: 2)
        #expect(close(y, [0.5, 0.48]))
        #expect(d.selected == [0, 1, 2, 3, 5])
        #expect(close([d.values?["eigenvalue"] ?? 0], [0.2016], 1e-6))
    }
}

@Suite struct PreAggregatorTests {
    @Test func bucketingUsesTheRecordedPermutation() {
        let rows = scalars([1, 2, 3, 4, 5])
        let (out, d) = Bucketing(s: 2).apply(context(rows, f: 1, seed: 3, round: 7))
        var stream = RandomStream(seed: 3, purpose: .bucketing, round: 7, class: 0)
        let permutation = stream.permutation(5)
        #expect(d.permutation == permutation)
        #expect(out.rows == 3)
        let p = permutation.map { Float($0 + 1) }
        #expect(out.storage == [(p[0] + p[1]) / 2, (p[2] + p[3]) / 2, p[4]])
        // s = 1 only permutes.
        #expect(Bucketing(s: 1).apply(context(rows, f: 1, seed: 3, round: 7)).0.storage == p)
    }

    @Test func nearestNeighbourMixing() {
        let (out, d) = NearestNeighbourMixing().apply(context(scalars([0, 1, 2, 3, 100]), f: 1))
        #expect(out.storage == [1.5, 1.5, 1.5, 1.5, 26.5])
        #expect(d.neighbours == [[0, 1, 2, 3], [1, 0, 2, 3], [2, 1, 3, 0], [3, 2, 1, 0], [4, 3, 2, 1]])
    }

    @Test func staticClipping() {
        let (out, d) = StaticClipping().apply(context([[3, 4], [1, 0], [0, 0]], f: 0))
        #expect(close(Array(out.storage), [1.2, 1.6, 1, 0, 0, 0], 1e-6))
        #expect(close(d.clipFactors, [0.4, 1, 1]))
    }

    @Test func adaptiveRobustClipping() {
        // f = 1, n = 5: k = ⌊2·4/5⌋ = 1, the largest (100) clipped to the next norm 4.
        let (out, d) = AdaptiveRobustClipping().apply(context(scalars([1, -2, 3, 4, 100]), f: 1))
        #expect(close(out.storage, [1, -2, 3, 4, 4], 1e-6))
        #expect(d.selected == [4])
        #expect(d.values?["tau"] == 4)
        // f = 2: k = ⌊12/5⌋ = 2, the two largest clipped to norm 3 (signs kept).
        #expect(close(AdaptiveRobustClipping().apply(context(scalars([1, -2, 3, -4, 100]), f: 2)).0.storage,
            [1, -2, 3, -3, 3], 1e-6))
        #expect(AdaptiveRobustClipping.clippedCount(n: 10, f: 3) == 4)
    }

    @Test func pipelineRunsTheChainAndRecordsIt() throws {
        // clip:c=2 then median: rows 1, -2, 3, 100 → 1, -2, 2, 2 → median (1 + 2)/2 = 1.5.
        let pipeline = try AggregatorCatalogue.makePipeline(rule: "median", pre: "clip")
        let (y, d) = run(pipeline, scalars([1, -2, 3, 100]), f: 1)
        #expect(close(y, [1.5], 1e-6))
        #expect(d.preAggregation?.count == 1)
        #expect(close(d.preAggregation?[0].clipFactors, [1, 1, 2.0 / 3, 0.02]))
        #expect(pipeline.spec == "clip:c=2+median")
        // Bucketing hands ⌈n/s⌉ rows and the declared f to the rule.
        let bucketed = try AggregatorCatalogue.makePipeline(rule: "krum", pre: "bucketing:s=2")
        #expect(bucketed.requirement(n: 14, f: 2) == nil)  // 7 buckets ≥ 2·2+3
        let message = bucketed.requirement(n: 12, f: 2) ?? ""
        #expect(message.contains("krum needs n ≥ 2f+3") && message.contains("got n=6, f=2"))
        let (_, bd) = run(bucketed, scalars((0..<14).map { Float($0) }), f: 2)
        #expect(bd.preAggregation?[0].permutation?.sorted() == Array(0..<14))
        #expect((bd.weights ?? []).count == 7)
    }
}
