import Testing
import DesgdNumerics
@testable import DesgdRobust

/// FLTrust (Cao et al., NDSS 2021) on inputs computed by hand; the server's reference comes in
/// the state, as the simulation engine hands it over.
@Suite struct FLTrustTests {
    static func withReference(_ g0: [Float]) -> AggregatorState {
        AggregatorState(vectors: [FLTrust.referenceKey: g0])
    }

    /// g₀ = (3, 4), ‖g₀‖ = 5. Inputs (3, 4): cos 1; (8, −6): cos 0; (−3, −4): cos −1 → 0; (0, 10):
    /// cos 40/50 = 0.8. ΣTS = 1.8; rescaled to norm 5: (3, 4) and (0, 5);
    /// y = ((3, 4) + 0.8·(0, 5))/1.8 = (3, 8)/1.8.
    @Test func trustScoresAndRescaling() {
        var state = Self.withReference([3, 4])
        let (y, d) = FLTrust().aggregate(context([[3, 4], [8, -6], [-3, -4], [0, 10]], f: 1), state: &state)
        #expect(close(y, [3 / 1.8, 8 / 1.8], 1e-6))
        #expect(close(d.scores, [1, 0, 0, 0.8], 1e-12))
        #expect(close(d.weights, [1 / 1.8, 0, 0, 0.8 / 1.8], 1e-12))
        #expect(d.values?["referenceNorm"] == 5 && close([d.values?["trustSum"] ?? 0], [1.8], 1e-12))
        // The state is the engine's: the rule leaves it as it found it.
        #expect(state == Self.withReference([3, 4]))
        // Scaling an input changes nothing (only directions count).
        var again = Self.withReference([3, 4])
        #expect(close(FLTrust().aggregate(context([[300, 400], [8, -6], [-3, -4], [0, 1]], f: 1), state: &again).0,
                      [3 / 1.8, 8 / 1.8], 1e-5))
    }

    @Test func noTrustGivesZero() {
        // No reference (a trace of another rule), a zero or a mis-sized one: every score 0, output 0.
        for state in [AggregatorState.empty, Self.withReference([0, 0]), Self.withReference([1, 2, 3]),
                      Self.withReference([.nan, 1])] {
            var s = state
            let (y, d) = FLTrust().aggregate(context([[1, 2], [3, 4]], f: 0), state: &s)
            #expect(y == [0, 0] && d.weights == [0, 0] && d.values?["trustSum"] == 0)
        }
        // Every input opposed to the reference.
        var s = Self.withReference([1, 1])
        #expect(FLTrust().aggregate(context([[-1, -2], [-3, 0]], f: 1), state: &s).0 == [0, 0])
        // Non-finite and zero inputs get no trust.
        var t = Self.withReference([1, 0])
        let (y, d) = FLTrust().aggregate(context([[.nan, 1], [.infinity, 0], [0, 0], [2, 0]], f: 1), state: &t)
        #expect(y == [1, 0] && d.scores == [0, 0, 0, 1])
    }

    @Test func catalogueEntry() throws {
        #expect(try AggregatorCatalogue.makeAggregator("fltrust").spec == "fltrust:root=100")
        #expect(try AggregatorCatalogue.makeAggregator("fltrust:root=500").spec == "fltrust:root=500")
        #expect(throws: AggregationError("'fltrust': root=0 must be a whole number in 1...100000")) {
            try AggregatorCatalogue.makeAggregator("fltrust:root=0")
        }
        #expect(FLTrust().isStateful)
        // No honest majority needed.
        #expect(FLTrust().requirement(n: 4, f: 3) == nil)
        #expect(FLTrust().requirement(n: 0, f: 0) != nil)
    }
}
