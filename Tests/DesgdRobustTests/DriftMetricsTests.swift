import DesgdNumerics
import Foundation
import Testing
@testable import DesgdRobust

/// ``DeviationHistory`` on synthetic deviations of equal size: persistence separates deviations
/// that keep one direction from independent ones, which per-round gaps cannot.
@Suite struct DriftMetricsTests {
    /// Deviations e_s = r·(unit vector), with the honest mean 0 (so F(R) = e_s), all of norm r.
    func feed(_ directions: [[Float]], window: Int, recent: RecentDrift = .window) -> [GroupDrift] {
        let d = directions[0].count
        let history = DeviationHistory(dimension: d, windowLength: window, recent: recent)
        let zero = [Float](repeating: 0, count: d)
        return directions.map { e in
            e.withUnsafeBufferPointer { o in zero.withUnsafeBufferPointer { history.add(output: o, honestMean: $0) } } }
    }

    func randomUnitVectors(_ k: Int, dimension d: Int, radius: Float) -> [[Float]] {
        (0..<k).map { s in
            var stream = RandomStream(seed: 7, purpose: .attack, round: s)
            var v = [Float](repeating: 0, count: d)
            v.withUnsafeMutableBufferPointer { stream.fillGaussian($0, mean: 0, sigma: 1) }
            let n = Float(v.withUnsafeBufferPointer { VectorMath.norm($0) })
            return v.map { radius * $0 / n }
        }
    }

    @Test func persistentDeviationsHavePersistenceOne() {
        let k = 64, w = 10
        let direction = randomUnitVectors(1, dimension: 500, radius: 0.3)[0]
        let drift = feed(Array(repeating: direction, count: k), window: w)
        let last = drift.last!
        #expect(last.count == k && last.window == w)
        #expect(abs(last.cumulativePersistence! - 1) < 1e-6)
        #expect(abs(last.windowPersistence! - 1) < 1e-6)
        #expect(abs(last.cumulative - 0.3 * Double(k)) < 1e-3)
        #expect(abs(last.windowed - 0.3 * Double(w)) < 1e-4)
        #expect(abs(last.cumulativeCosine! - 1) < 1e-6 && abs(last.windowCosine! - 1) < 1e-6)
        // The first aggregation has no earlier sum to compare with.
        #expect(drift[0].cumulativeCosine == nil && drift[0].windowCosine == nil)
        #expect(drift[0].cumulativePersistence == 1)
    }

    @Test func independentDeviationsHavePersistenceNearOneOverSqrtK() {
        let k = 100, w = 10, d = 2000
        let drift = feed(randomUnitVectors(k, dimension: d, radius: 0.3), window: w)
        // Same gap every round, yet ‖Σe‖/Σ‖e‖ ≈ 1/√k: random directions in 2000 dimensions are nearly
        // orthogonal.
        for (s, g) in drift.enumerated() {
            let expected = 1 / Double(s + 1).squareRoot()
            #expect(abs(g.cumulativePersistence! - expected) < 0.1 * expected + 1e-9, "aggregation \(s)")
            #expect(abs(g.windowPersistence! - 1 / Double(min(s + 1, w)).squareRoot()) < 0.05)
            if s > 0 { #expect(abs(g.cumulativeCosine!) < 0.15) }
        }
        #expect(drift.last!.window == w)
    }

    /// The window forgets: after a switch from independent to persistent deviations, the windowed
    /// persistence reaches 1 after W aggregations while the cumulative one still remembers.
    @Test func windowFollowsAChangeTheCumulativeOneLags() {
        let w = 10, d = 1000
        let noise = randomUnitVectors(50, dimension: d, radius: 1)
        let push = Array(repeating: randomUnitVectors(1, dimension: d, radius: 1)[0], count: w)
        let drift = feed(noise + push, window: w)
        #expect(abs(drift.last!.windowPersistence! - 1) < 1e-6)
        #expect(drift.last!.cumulativePersistence! < 0.5)
        #expect(drift[48].windowPersistence! < 0.5)
    }

    // Exponential weights (format 1.4): R_k = λ·R_{k−1} + e_k, N_k = λ·N_{k−1} + ‖e_k‖, λ = 1 − 1/W.

    @Test func exponentialPersistentDeviationsHavePersistenceOne() {
        let k = 64, w = 10
        let direction = randomUnitVectors(1, dimension: 500, radius: 0.3)[0]
        let drift = feed(Array(repeating: direction, count: k), window: w, recent: .exponential)
        let last = drift.last!, lambda = Double(RecentDrift.decay(window: w))
        let weights = (1 - pow(lambda, Double(k))) / (1 - lambda)
        #expect(last.count == k && last.window == w)
        #expect(last.windowPersistence! <= 1 && last.windowPersistence! > 1 - 1e-6)
        #expect(abs(last.windowed - 0.3 * weights) < 1e-4 * weights)
        #expect(abs(last.windowCosine! - 1) < 1e-6 && abs(last.cumulativePersistence! - 1) < 1e-6)
        #expect(drift[0].windowCosine == nil && drift[0].windowPersistence == 1 && drift[0].window == 1)
    }

    @Test func exponentialIndependentDeviationsReachOneOverSqrtTwoWMinusOne() {
        let k = 200, w = 10, d = 4000
        let drift = feed(randomUnitVectors(k, dimension: d, radius: 0.3), window: w, recent: .exponential)
        let lambda = Double(RecentDrift.decay(window: w))
        for (s, g) in drift.enumerated() {
            // Orthogonal terms of equal norm: ‖R_k‖ = r·√(Σλ^2j), N_k = r·Σλ^j over j < k.
            let n = Double(s + 1)
            let expected = ((1 - pow(lambda, 2 * n)) / (1 - lambda * lambda))
                .squareRoot() / ((1 - pow(lambda, n)) / (1 - lambda))
            #expect(abs(g.windowPersistence! - expected) < 0.08 * expected, "aggregation \(s)")
        }
        let steady = RecentDrift.exponential.independentPersistence(window: w)
        #expect(abs(steady - 1 / 19.0.squareRoot()) < 1e-12)
        #expect(abs(drift.last!.windowPersistence! - steady) < 0.08 * steady)
    }

    @Test func exponentialWeightsFollowAChangeTheCumulativeOneLags() {
        let w = 10, d = 1000
        let noise = randomUnitVectors(50, dimension: d, radius: 1)
        let push = Array(repeating: randomUnitVectors(1, dimension: d, radius: 1)[0], count: 2 * w)
        let drift = feed(noise + push, window: w, recent: .exponential)
        #expect(drift[49].windowPersistence! < 0.35)
        #expect(drift[59].windowPersistence! > 0.6 && drift.last!.windowPersistence! > 0.85)
        #expect(drift.last!.cumulativePersistence! < 0.6)
    }

    /// A history restored from a captured state continues with the bits of one that never stopped,
    /// and refuses the other kind's state.
    @Test(arguments: RecentDrift.allCases) func restoredHistoryContinuesBitForBit(_ recent: RecentDrift) {
        let d = 300, w = 4
        let terms = randomUnitVectors(30, dimension: d, radius: 0.7)
        let zero = [Float](repeating: 0, count: d)
        func add(_ h: DeviationHistory, _ e: [Float]) -> GroupDrift {
            e.withUnsafeBufferPointer { o in zero.withUnsafeBufferPointer { h.add(output: o, honestMean: $0) } }
        }
        let whole = DeviationHistory(dimension: d, windowLength: w, recent: recent)
        let first = DeviationHistory(dimension: d, windowLength: w, recent: recent)
        for e in terms[..<13] { _ = add(whole, e); _ = add(first, e) }
        let state = first.captureState()
        let resumed = DeviationHistory(dimension: d, windowLength: w, recent: recent)
        #expect(resumed.restore(state))
        for e in terms[13...] { #expect(add(whole, e) == add(resumed, e)) }
        #expect(whole.captureState() == resumed.captureState())
        let other = DeviationHistory(dimension: d, windowLength: w, recent: recent == .window ? .exponential : .window)
        #expect(!other.restore(state))
    }
}
