import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Determinism, permutation invariance and non-finite inputs, for every rule of the catalogue.
@Suite struct PropertyTests {
    /// Every rule with (n, f) = (11, 2) satisfies its requirement (Bulyan needs n ≥ 4f+3).
    static let n = 11, f = 2

    static func randomRows(n: Int, d: Int, seed: UInt64) -> [[Float]] {
        var rng = RandomStream(seed: seed, purpose: .syntheticData)
        return (0..<n).map { _ in (0..<d).map { _ in Float(1 + rng.nextGaussian()) } }
    }

    @Test func everyRuleAcceptsTheTestShape() {
        for spec in AggregatorCatalogue.allRuleSpecs {
            #expect(make(spec).requirement(n: PropertyTests.n, f: PropertyTests.f) == nil, "\(spec)")
        }
    }

    /// Same inputs → same bits and decision, whatever the thread count. d spans several
    /// column chunks so that the coordinate-wise rules really split their work.
    @Test func identicalAcrossRunsAndThreadCounts() {
        let d = 2 * CoordinateWise.chunkColumns + 77
        let rows = PropertyTests.randomRows(n: PropertyTests.n, d: d, seed: 11)
        for spec in AggregatorCatalogue.allRuleSpecs + ["bucketing+nnm+clip+arc+trmean"] {
            let rule = make(spec)
            let (y1, d1) = run(rule, rows, f: PropertyTests.f, seed: 3, round: 2, threads: 1)
            let (y2, d2) = run(rule, rows, f: PropertyTests.f, seed: 3, round: 2, threads: 1)
            let (y3, d3) = run(rule, rows, f: PropertyTests.f, seed: 3, round: 2, threads: 3)
            #expect(y1.map(\.bitPattern) == y2.map(\.bitPattern) && d1 == d2, "\(spec) differs between runs")
            #expect(y1.map(\.bitPattern) == y3.map(\.bitPattern) && d1 == d3, "\(spec) differs with 3 threads")
            #expect(y1.allSatisfy { $0.isFinite }, "\(spec)")
        }
    }

    /// Rules that do not look at input order give the same output on permuted inputs: exactly
    /// for the coordinate-wise rules (sums in sorted order) and Krum (selects an input),
    /// to rounding for the averaging rules (their sums follow input order). Bulyan is left out:
    /// its last Krum rounds run with q = 1, where two mutual nearest neighbours always tie and
    /// the index decides.
    @Test func permutationInvariance() {
        let exact: Set<String> = ["median", "trmean", "meamed", "krum"]
        let invariant = ["mean", "clipmean", "median", "trmean", "meamed", "krum", "mkrum", "geomed", "faba",
                         "clustering", "cclip", "mda", "caf", "smea", "dnc"]
        var rng = RandomStream(seed: 99, purpose: .syntheticData)
        for trial in 0..<3 {
            let rows = PropertyTests.randomRows(n: PropertyTests.n, d: 6, seed: UInt64(40 + trial))
            let order = rng.permutation(PropertyTests.n)
            let permuted = order.map { rows[$0] }
            for name in invariant {
                let rule = make(name)
                let (y, d) = run(rule, rows, f: PropertyTests.f)
                let (yp, dp) = run(rule, permuted, f: PropertyTests.f)
                if exact.contains(name) {
                    #expect(y == yp, "\(name) trial \(trial)")
                } else {
                    #expect(close(yp, y.map(Double.init), 1e-5), "\(name) trial \(trial): \(y) vs \(yp)")
                }
                // Selections map through the permutation.
                if let selected = d.selected, let selectedPermuted = dp.selected {
                    #expect(Set(selectedPermuted.map { order[$0] }) == Set(selected), "\(name) selection")
                }
            }
        }
    }

    /// Above 64 inputs the trimmed mean orders each coordinate by quickselect instead of the
    /// sorting network; its kept values must still be summed in sorted order, so permuted inputs
    /// give the same bits. The values are built so that the order of a Double sum shows: ± pairs
    /// of magnitude ~2⁴⁰ that cancel exactly (and are trimmed symmetrically) around small values.
    @Test func trimmedMeanAbove64InputsIsPermutationInvariantBitForBit() {
        let n = 80, d = 4_000, b = 5
        var rng = RandomStream(seed: 5, purpose: .syntheticData)
        var columns: [[Float]] = []
        for _ in 0..<d {
            let big = (0..<35).map { _ in Float(0x1p40 * (1 + rng.nextDouble())) }
            columns.append(big + big.map { -$0 } + (0..<10).map { _ in Float(2 * rng.nextDouble() - 1) })
        }
        let rows = (0..<n).map { i in (0..<d).map { columns[$0][i] } }
        let rule = make("trmean:b=\(b)")
        let (y, decision) = run(rule, rows, f: b)
        for trial in 0..<3 {
            let order = rng.permutation(n)
            let (yp, dp) = run(rule, order.map { rows[$0] }, f: b)
            #expect(yp.map(\.bitPattern) == y.map(\.bitPattern), "trial \(trial)")
            // The decision maps through the permutation: row k of the permuted input is row order[k].
            if let used = decision.coordinatesUsed, let usedPermuted = dp.coordinatesUsed {
                #expect(order.indices.allSatisfy { usedPermuted[$0] == used[order[$0]] })
            }
        }
    }

    /// A NaN row and a +∞ row among n = 11 with f = 2: every robust rule returns a finite
    /// output and puts no weight on them; nothing crashes or hangs, even with every row non-finite.
    @Test func nonFiniteRows() {
        var rows = PropertyTests.randomRows(n: PropertyTests.n, d: 5, seed: 7)
        rows[3] = [Float](repeating: .nan, count: 5)
        rows[8] = [1, 2, .infinity, 4, 5]
        for spec in AggregatorCatalogue.allRuleSpecs + ["nnm+krum", "clip+mda", "arc+median", "bucketing:s=1+geomed"] {
            let rule = make(spec)
            let (y, d) = run(rule, rows, f: PropertyTests.f)
            if spec == "mean" {
                #expect(y.contains { !$0.isFinite })
                continue
            }
            #expect(y.allSatisfy { $0.isFinite }, "\(spec): \(y)")
            if let w = d.weights, !(rule is AggregationPipeline) {
                #expect(w[3] == 0 && w[8] == 0, "\(spec) weights \(w)")
            }
            if let used = d.coordinatesUsed, !(rule is AggregationPipeline) {
                #expect(used[3] == 0, "\(spec) used the NaN row")
            }
        }
        let allBad = [[Float]](repeating: [.nan, .infinity], count: 5)
        for spec in AggregatorCatalogue.allRuleSpecs {
            _ = run(make(spec), allBad, f: 1)
        }
    }

    /// Scattered non-finite values (at most f per coordinate, in different rows): the
    /// coordinate-wise rules stay finite coordinate by coordinate.
    @Test func scatteredNonFiniteValues() {
        var rows = PropertyTests.randomRows(n: 9, d: 40, seed: 8)
        var rng = RandomStream(seed: 8, purpose: .attack)
        for k in 0..<40 {
            let bad = rng.sample(2, from: 9)
            rows[bad[0]][k] = [Float.nan, .infinity, -.infinity][k % 3]
            rows[bad[1]][k] = .nan
        }
        for spec in ["median", "trmean", "meamed"] {
            let (y, _) = run(make(spec), rows, f: 2)
            #expect(y.allSatisfy { $0.isFinite }, "\(spec)")
        }
        // Order: −∞ < finite < +∞ < NaN, so the median of {NaN, 2, 1, +∞, −∞} is 2.
        #expect(run(CoordinateWiseMedian(), scalars([.nan, 2, 1, .infinity, -.infinity]), f: 2).0 == [2])
    }

    /// Medians, trimmed and MeaMed means against a sorted reference, with many ties (small
    /// integers) so that the (value, index) attribution of `coordinatesUsed` is exercised; for n
    /// on both sides of the vector engine's limit, and a d that is not a multiple of 8.
    @Test(arguments: [9, 24, 45, CoordinateWise.vectorMaxRows + 7])
    func coordinateRulesAgainstASortedReference(n: Int) {
        var rng = RandomStream(seed: UInt64(12 + n), purpose: .syntheticData)
        let f = (n - 1) / 4, d = 29
        let rows = (0..<n).map { _ in (0..<d).map { _ in Float(rng.nextInt(below: 9)) - 4 } }
        let (median, medianDecision) = run(CoordinateWiseMedian(), rows, f: f)
        let (trimmed, trimmedDecision) = run(TrimmedMean(), rows, f: f)
        let (meamed, meamedDecision) = run(MeaMed(), rows, f: f)
        var usedMedian = [Int](repeating: 0, count: n), usedTrimmed = usedMedian, usedMeamed = usedMedian
        for k in 0..<d {
            // (value, index) order of the inputs at coordinate k.
            let ranked = rows.indices.sorted { a, b in rows[a][k] < rows[b][k] || (rows[a][k] == rows[b][k] && a < b) }
            let value = { (r: Int) in Double(rows[ranked[r]][k]) }
            #expect(Double(median[k]) == (value((n - 1) / 2) + value(n / 2)) / 2)
            for r in Set([(n - 1) / 2, n / 2]) { usedMedian[ranked[r]] += 1 }
            let kept = (f..<(n - f)).map(value)
            #expect(abs(Double(trimmed[k]) - kept.reduce(0, +) / Double(kept.count)) < 1e-5)
            for r in f..<(n - f) { usedTrimmed[ranked[r]] += 1 }
            let centre = (value((n - 1) / 2) + value(n / 2)) / 2
            let nearest = rows.indices.sorted { a, b in
                let x = abs(Double(rows[a][k]) - centre), y = abs(Double(rows[b][k]) - centre)
                return x < y || (x == y && a < b)
            }.prefix(n - f)
            #expect(abs(Double(meamed[k]) - nearest.reduce(0) { $0 + Double(rows[$1][k]) } / Double(n - f)) < 1e-5)
            for i in nearest { usedMeamed[i] += 1 }
        }
        #expect(medianDecision.coordinatesUsed == usedMedian)
        #expect(trimmedDecision.coordinatesUsed == usedTrimmed)
        #expect(meamedDecision.coordinatesUsed == usedMeamed)
    }

    /// The two engines agree bit for bit — the vectorised trimmed mean with its rank attribution,
    /// and the packed (value, index) keys handed to ``TrimmedMeanKernel`` — on values with many
    /// ties and non-finite entries.
    @Test func vectorAndScalarEnginesAgree() {
        var rng = RandomStream(seed: 31, purpose: .syntheticData)
        for n in [1, 2, 3, 8, 17, 33, 64] {
            let d = 37
            var m = Matrix(rows: n, columns: d)
            for i in 0..<n {
                for k in 0..<d {
                    let choice = rng.nextInt(below: 20)
                    m[i, k] = choice == 0 ? .nan : choice == 1 ? .infinity : choice == 2 ? -.infinity
                        : choice < 8 ? Float(choice) : Float(rng.nextGaussian())
                }
            }
            for trim in Set([0, (n - 1) / 4, (n - 1) / 2]) {
                var vector = [Float](repeating: 0, count: d), scalar = vector
                let usedVector = vector.withUnsafeMutableBufferPointer {
                    CoordinateWise.trimmedMeans(m, trim: trim, executor: ParallelExecutor(threads: 1), into: $0)
                }
                let usedScalar = scalar.withUnsafeMutableBufferPointer {
                    CoordinateWise.run(TrimmedMeanKernel(trim: trim), on: m, executor: ParallelExecutor(threads: 1),
                        into: $0)
                }
                #expect(usedVector == usedScalar, "n=\(n) trim=\(trim)")
                for k in 0..<d {
                    let a = vector[k], b = scalar[k]
                    #expect(a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern, "n=\(n) k=\(k): \(a) vs \(b)")
                }
            }
        }
    }

    @Test func sortingNetworkSorts() {
        var rng = RandomStream(seed: 5, purpose: .syntheticData)
        for n in 1...CoordinateWise.vectorMaxRows {
            let network = SortingNetwork.comparators(n)
            let keys = UnsafeMutablePointer<SIMD8<Int32>>.allocate(capacity: n)
            defer { keys.deallocate() }
            var columns = [[Int32]](repeating: [], count: 8)
            for i in 0..<n {
                var v = SIMD8<Int32>()
                for lane in 0..<8 {
                    v[lane] = Int32(rng.nextInt(below: lane < 4 ? 5 : 100_000)) - 2; columns[lane].append(v[lane])
                }
                keys[i] = v
            }
            SortingNetwork.apply(network, to: keys)
            for lane in 0..<8 { #expect((0..<n).map { keys[$0][lane] } == columns[lane].sorted(), "n=\(n)") }
        }
        // Key encoding preserves the total order −∞ < finite < +∞ < NaN and maps −0 to +0.
        let values: [Float] = [-.infinity, -1e30, -2, -1, -1e-40, 0, 1e-40, 1, 2, 1e30, .infinity, .nan]
        for (a, b) in zip(values, values.dropFirst()) {
            let ka = VectorKeys.encode(SIMD8(repeating: a))[0], kb = VectorKeys.encode(SIMD8(repeating: b))[0]
            #expect(ka < kb, "\(a) < \(b)")
            #expect(VectorKeys.decode(SIMD8(repeating: ka))[0].bitPattern == a.bitPattern)
        }
        #expect(VectorKeys.encode(SIMD8(repeating: -0.0)) == VectorKeys.encode(SIMD8(repeating: 0)))
        #expect(VectorKeys.encode(SIMD8(repeating: -Float.nan)) == VectorKeys.encode(SIMD8(repeating: .nan)))
    }

    @Test func outlierDoesNotSpoilDistancePrecision() {
        // A huge finite outlier shifts the Gram centre; honest distances must stay exact enough
        // for Krum to pick the honest cluster's most central point.
        var rows: [[Float]] = [[0, 0], [0.001, 0], [0, 0.001], [0.0004, 0.0004], [0.001, 0.001]]
        rows.append([1e15, -1e15])
        let (y, d) = run(Krum(), rows, f: 1)
        #expect(d.selected == [3])
        #expect(y == rows[3])
    }
}
