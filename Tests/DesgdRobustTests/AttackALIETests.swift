import Foundation
import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Φ⁻¹, Baruch et al.'s z(n, f) and the ALIE messages.
@Suite struct AttackALIETests {
    /// Reference quantiles from Python's `statistics.NormalDist().inv_cdf` (also AS241).
    @Test(arguments: [
        (0.5, 0.0), (0.975, 1.9599639845400536), (0.025, -1.9599639845400538), (0.8413447460685429, 1.0),
        (0.3, -0.5244005127080407), (0.42, -0.2018934791418509), (0.999, 3.090232306167813),
        (1e-4, -3.71901648545568), (1e-10, -6.361340902404056), (1e-20, -9.262340089798405),
        (1 - 1e-12, 7.0344869100478356),
    ])
    func quantileMatchesReferenceValues(p: Double, expected: Double) {
        let x = NormalDistribution.quantile(p)
        #expect(abs(x - expected) <= 4 * expected.magnitude.ulp + 1e-300, "Φ⁻¹(\(p)) = \(x), expected \(expected)")
    }

    @Test func quantileInvertsTheCDF() {
        for p in stride(from: 0.001, to: 1.0, by: 0.0137) + [1e-8, 1e-15, 1 - 1e-8] {
            let roundTrip = NormalDistribution.cdf(NormalDistribution.quantile(p))
            #expect(abs(roundTrip - p) <= 1e-13 * max(p, 1e-3), "Φ(Φ⁻¹(\(p))) = \(roundTrip)")
        }
        for p in stride(from: 0.001, to: 0.5, by: 0.0137) {
            #expect(abs(NormalDistribution.quantile(1 - p) + NormalDistribution.quantile(p)) < 1e-12)
        }
        #expect(NormalDistribution.quantile(0) == -.infinity)
        #expect(NormalDistribution.quantile(1) == .infinity)
        #expect(NormalDistribution.quantile(-0.1).isNaN && NormalDistribution.quantile(1.5).isNaN)
        #expect(NormalDistribution.quantile(.nan).isNaN)
    }

    /// docs/references.md, robust aggregation §3, n counting all workers.
    @Test(arguments: [
        (10, 1, -0.140), (10, 2, 0.000), (10, 3, 0.180), (20, 4, 0.157), (25, 5, 0.253),
        (25, 11, 1.068), (50, 10, 0.253), (50, 24, 1.426),
    ])
    func baruchZMatchesTheReferenceTable(n: Int, f: Int, z: Double) throws {
        let value = try #require(ALIEAttack.baruchZ(n: n, f: f))
        #expect((value * 1000).rounded() / 1000 == z, "z(\(n), \(f)) = \(value)")
    }

    @Test func baruchZIsUndefinedOutsideItsRange() {
        #expect(ALIEAttack.baruchZ(n: 2, f: 0) == nil)   // s = 2 = n − f: probability 0
        #expect(ALIEAttack.baruchZ(n: 10, f: 6) == nil)  // s = 0: the Byzantine workers are a majority
        #expect(ALIEAttack.baruchZ(n: 3, f: 0) != nil)
    }

    /// Columns (0,0,0,4), (1,1,1,1), (2,2,6,2): μ = (1, 1, 3), σ (ddof = 1) = (2, 0, 2), all exact.
    let honest: [[Float]] = [[0, 1, 2], [0, 1, 2], [0, 1, 6], [4, 1, 2]]

    @Test func alieSendsMeanMinusZSigma() throws {
        let output = try ALIEAttack().run(attackContext(honest, byzantine: 2))
        #expect(rows(output) == [[-1, 1, 1], [-1, 1, 1]])
        #expect(output.decision.scale == 1)
        let negative = try ALIEAttack(z: .fixed(-0.5)).run(attackContext(honest, byzantine: 1))
        #expect(rows(negative) == [[2, 1, 4]])
    }

    @Test func standardDeviationUsesDdofOne() {
        var sigma = [Float](repeating: 0, count: 3)
        let m = Matrix(rowVectors: honest)
        [Float]([1, 1, 3]).withVector { mean in
            sigma.withUnsafeMutableBufferPointer { VectorMath.standardDeviation(of: m, mean: mean, ddof: 1, into: $0) }
        }
        #expect(sigma == [2, 0, 2])
        // ddof = 0 divides by 4: √3.
        [Float]([1, 1, 3]).withVector { mean in
            sigma.withUnsafeMutableBufferPointer { VectorMath.standardDeviation(of: m, mean: mean, ddof: 0, into: $0) }
        }
        #expect(sigma == [Float(3).squareRoot(), 0, Float(3).squareRoot()])
        // Long rows take the SIMD path and agree with a scalar reference.
        let wide = Matrix(rows: 3, columns: 37, storage: (0..<111).map { Float(($0 * 7) % 11) - 5 })
        let mean = VectorMath.mean(of: wide)
        var out = [Float](repeating: 0, count: 37)
        mean.withVector { mu in
            out.withUnsafeMutableBufferPointer { VectorMath.standardDeviation(of: wide, mean: mu, into: $0) } }
        for j in 0..<37 {
            let sum = (0..<3).reduce(Float(0)) { acc, i in let d = wide[i, j] - mean[j]; return acc + d * d }
            #expect(out[j] == (sum / 2).squareRoot())
        }
    }

    @Test func autoZCountsHonestAndByzantineWorkers() throws {
        // n = 4 + 1 = 5, f = 1: s = 2, z = Φ⁻¹(2/4) = 0, so the message is the mean.
        let five = try ALIEAttack(z: .auto).run(attackContext(honest, byzantine: 1))
        #expect(five.decision.scale == 0)
        #expect(rows(five) == [[1, 1, 3]])
        // n = 7 + 3 = 10, f = 3: z = 0.180 (with n = 7 honest only it would be Φ⁻¹(3/4) = 0.674).
        let seven = (0..<7).map { i in [Float(i), Float(i * i)] }
        let ten = try ALIEAttack(z: .auto).run(attackContext(seven, byzantine: 3))
        #expect(abs(try #require(ten.decision.scale) - 0.18001236979270493) < 1e-15)
    }

    @Test func alieRequirements() {
        #expect(attackError { _ = try ALIEAttack().run(attackContext([[1, 2]], byzantine: 1)) }
                == "alie:z=1: needs at least 2 honest messages for a standard deviation with ddof=1, got 1")
        let tooMany = attackError { _ = try ALIEAttack(z: .auto).run(attackContext(honest, byzantine: 6)) }
        #expect(tooMany
            == "alie:z=auto: z=auto needs 1 ≤ s < n−f with s = ⌊n/2+1⌋−f supporters, got n=10, f=6 (s=0)")
    }
}
