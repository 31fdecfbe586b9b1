import Testing
import DesgdNumerics
@testable import DesgdRobust

/// SignGuard (Xu et al., ICDCS 2022) and its mean shift, on inputs computed by hand.
@Suite struct SignGuardTests {
    /// Five positive rows a·(1, 1, 1, 1), a = 1, 2, 3, 0.05, 20: norms 2, 4, 6, 0.1, 40, median 4;
    /// the norm filter keeps 0.4 < ‖x‖ < 12, rows 0, 1, 2. Every sign feature is (1, 0, 0)/(1 + 10⁻⁸):
    /// bandwidth 0, one cluster of all five. Clip factors 1, 1, 4/6: y = (1 + 2 + 2)/3 = 5/3.
    @Test func normFilterAndClipping() {
        let rows: [[Float]] = [1, 2, 3, 0.05, 20].map { [Float](repeating: $0, count: 4) }
        let (y, d) = run(SignGuard(), rows, f: 1)
        #expect(close(y, [Double](repeating: 5.0 / 3, count: 4), 1e-6))
        #expect(d.selected == [0, 1, 2] && d.removed == [3, 4])
        #expect(d.clusterLabels == [0, 0, 0, 0, 0])
        #expect(close(d.clipFactors, [1, 1, 4.0 / 6, 0, 0]))
        #expect(d.values?["medianNorm"] == 4 && d.values?["bandwidth"] == 0)
        #expect(d.values?["blockLength"] == 1 && d.values?["normFilterKept"] == 3 && d.values?["signFilterKept"] == 5)
    }

    /// Five all-positive rows and two all-negative ones of the same norms: features (1, 0, 0) and
    /// (0, 0, 1) (scaled by 1/(1 + 10⁻⁸)); k = ⌊7/2⌋ = 3: the third nearest is at 0 for the positive
    /// rows and at √2 for the negative ones, bandwidth 2√2/7; two bins, whose seeds converge on the
    /// two feature points (5 and 2 points within), ranked 0 and 1. The largest cluster is the
    /// positive rows; the mean is theirs (no clipping: the rows are cyclic shifts of one vector, so
    /// every norm is the median norm).
    @Test func signFilterKeepsTheLargestCluster() {
        let positive: [[Float]] = (0..<5).map { k in (0..<20).map { j in Float(1 + (j + k) % 20 % 3) } }
        let negative = positive.prefix(2).map { $0.map { -$0 } }
        let (y, d) = run(SignGuard(), positive + negative, f: 2)
        #expect(d.clusterLabels == [0, 0, 0, 0, 0, 1, 1])
        #expect(d.selected == [0, 1, 2, 3, 4])
        let scale = 1 / (1 + 1e-8)
        #expect(abs((d.values?["bandwidth"] ?? 0) - 2 * 2.0.squareRoot() * scale / 7) < 1e-12)
        #expect(d.values?["clusters"] == 2)
        #expect(close(y, VectorMath.mean(of: Matrix(rowVectors: positive)).map(Double.init), 1e-5))
    }

    @Test func blockComesFromTheRoundsStream() {
        let rows = PropertyTests.randomRows(n: 9, d: 95, seed: 4)
        let (_, d) = run(SignGuard(), rows, f: 2, seed: 6, round: 11)
        var stream = RandomStream(seed: 6, purpose: .aggregator, round: 11, class: 0)
        #expect(d.values?["blockLength"] == 9)
        #expect(d.values?["blockStart"] == Double(stream.nextInt(below: 95 - 9 + 1)))
        // Another round, another block (for this seed); the same round, the same bits.
        #expect(run(SignGuard(), rows, f: 2, seed: 6, round: 12).1.values?["blockStart"] != d.values?["blockStart"])
        #expect(run(SignGuard(), rows, f: 2, seed: 6, round: 11).1 == d)
    }

    @Test func emptySelectionGivesZero() {
        // Zero rows: the median norm is 0, no row passes 0 < ‖x‖ < 0.
        let (y, d) = run(SignGuard(), [[0, 0], [0, 0], [0, 0], [1, 1]], f: 1)
        #expect(y == [0, 0] && d.selected == [])
        // Non-finite median: nothing passes either.
        #expect(run(SignGuard(), [[.nan, 1], [.infinity, 0], [1, 1]], f: 1).0 == [0, 0])
    }

    @Test func meanShiftMatchesScikitLearn() {
        // estimate_bandwidth, quantile 0.5: k = 2; 2nd nearest (self first) of 0, 1, 3, 4 is 1 each.
        #expect(MeanShift.estimateBandwidth([[0], [1], [3], [4]]) == 1)
        #expect(MeanShift.estimateBandwidth([[0], [1], [3]]) == 0)
        // Bandwidth 1: bins 0, 1, 3, 4 are all distinct, so the points are the seeds; 0 and 1 both
        // converge on 0.5 (2 within), 3 and 4 on 3.5; ties in count rank the larger centre first.
        #expect(MeanShift(bandwidth: 1).labels([[0], [1], [3], [4]]) == [1, 1, 0, 0])
        // Round half to even puts 0.5 in bin 0: seeds 0, 1, 10; the first two converge on 0.5 with
        // 3 points within, 10 stays alone with 1.
        #expect(MeanShift(bandwidth: 1).labels([[0], [0.5], [1], [10]]) == [0, 0, 0, 1])
        // Bandwidth 0: equal points together, larger groups first.
        #expect(MeanShift(bandwidth: 0).labels([[1], [2], [2], [3]]) == [2, 0, 0, 1])
    }

    @Test func catalogueEntry() throws {
        #expect(try AggregatorCatalogue.makeAggregator("signguard").spec == "signguard:lower=0.1,upper=3,frac=0.1")
        #expect(try AggregatorCatalogue.makeAggregator("sign-guard:frac=0.5,upper=2").spec
            == "signguard:lower=0.1,upper=2,frac=0.5")
        for (bad, message) in [("signguard:lower=3", "'signguard': lower=3 must be below upper=3"),
                               ("signguard:frac=2", "'signguard': frac=2 must be in (0, 1]"),
                               ("signguard:frac=0", "'signguard': frac=0 must be a positive number")] {
            #expect(throws: AggregationError(Explanation(message)), "\(bad)") {
                try AggregatorCatalogue.makeAggregator(bad)
            }
        }
        #expect(SignGuard().requirement(n: 4, f: 2) == "signguard needs n ≥ 2f+1 (an honest majority): got n=4, f=2")
    }
}
