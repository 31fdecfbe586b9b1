import Testing
@testable import DesgdNumerics

@Suite struct GramTests {
    /// Rows sharing a large common component and differing by tiny amounts (where a Gram form
    /// D = G_ii + G_jj − 2G_ij cancels catastrophically): the blocked distances equal per-pair
    /// ``VectorMath/squaredDistance(_:_:)`` bit for bit and a Double reference closely, and a copy
    /// is at distance exactly 0. d spans several 4 096-blocks plus a tail.
    @Test func pairwiseDistancesAreExactAndMatchPerPairDistances() {
        var rng = RandomStream(seed: 2, purpose: .syntheticData)
        let d = 9_001
        let base = (0..<d).map { _ in Float(1000 + rng.nextGaussian()) }
        var rows = (0..<6).map { _ in base.map { $0 + Float(1e-2 * rng.nextGaussian()) } }
        rows.append(rows[2])  // an exact copy
        rows.append(base.map { $0 + 3 })  // a shifted copy
        let m = Matrix(rowVectors: rows)
        let n = rows.count
        let pairwise = VectorMath.pairwiseSquaredDistances(m)
        for i in 0..<n {
            for j in 0..<n {
                let perPair = i == j ? 0 : rows[i].withVector { a in
                    rows[j].withVector { b in VectorMath.squaredDistance(a, b) } }
                #expect(pairwise[i * n + j] == perPair, "pair \(i),\(j)")
                let reference = zip(rows[i], rows[j]).reduce(0.0) {
                    $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1))
                }
                #expect(abs(pairwise[i * n + j] - reference) <= 1e-5 * reference)
            }
        }
        #expect(pairwise[2 * n + 6] == 0)
    }

    @Test func nonFiniteRowsAreInfinitelyFar() {
        let m = Matrix(rowVectors: [[0, 0], [3, 4], [.nan, 1], [.infinity, 0]])
        let d = VectorMath.pairwiseSquaredDistances(m)
        #expect(d[0 * 4 + 1] == 25)
        #expect(d[0 * 4 + 2] == .infinity && d[2 * 4 + 3] == .infinity && d[3 * 4 + 1] == .infinity)
        #expect(d[2 * 4 + 2] == 0)
    }

    @Test func combinationSkipsZeroCoefficients() {
        let m = Matrix(rowVectors: [[1, 2], [.nan, .nan], [3, 4]])
        var out = [Float](repeating: 0, count: 2)
        out.withUnsafeMutableBufferPointer { VectorMath.combination(of: m, coefficients: [2, 0, -1], into: $0) }
        #expect(out == [-1, 0])
    }

    @Test func symmetricEigenOfKnownMatrices() {
        // [[2,1],[1,2]]: eigenvalues 3 (1,1)/√2 and 1 (1,−1)/√2 (sign: largest component positive).
        let e = SymmetricEigen([2, 1, 1, 2], n: 2)
        #expect(abs(e.values[0] - 3) < 1e-12 && abs(e.values[1] - 1) < 1e-12)
        #expect(abs(e.vectors[0] - 0.5.squareRoot()) < 1e-12 && abs(e.vectors[1] - 0.5.squareRoot()) < 1e-12)
        // A random symmetric matrix: A v = λ v for every pair, eigenvalues descending.
        var rng = RandomStream(seed: 4, purpose: .syntheticData)
        let n = 9
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { let x = rng.nextGaussian(); a[i * n + j] = x; a[j * n + i] = x } }
        let eig = SymmetricEigen(a, n: n)
        #expect(zip(eig.values, eig.values.dropFirst()).allSatisfy { $0 >= $1 })
        for k in 0..<n {
            let v = Array(eig.vector(k))
            for i in 0..<n {
                let av = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * v[$1] }
                #expect(abs(av - eig.values[k] * v[i]) < 1e-9)
            }
        }
        // NaN input terminates.
        _ = SymmetricEigen([.nan, 1, 1, 0], n: 2)
    }
}
