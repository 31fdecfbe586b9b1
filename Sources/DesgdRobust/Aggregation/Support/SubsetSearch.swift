/// Exact search for the best subset of a given size, for the exhaustive rules (MDA, SMEA).
///
/// Finds the lexicographically first subset T ⊆ 0..<n with |T| = m that minimises `value(T)`,
/// like enumerating `itertools.combinations` in order and keeping the first strict improvement
/// (ByzFL), but by depth-first branch and bound: subsets are built index by index, "include"
/// before "exclude" (which visits them in lexicographic order), and a branch is cut as soon as
/// `boundScale · max_{i,j ∈ partial} D_ij` already exceeds the best value found — valid because
/// the value is required to satisfy value(T) ≥ boundScale · diameter²(T) and diameters only
/// grow when a subset grows. The search starts from the value of a few good `seeds` (e.g.
/// nearest-neighbour sets), so that cuts begin at once.
///
/// Worst case C(n, m) subsets, like the peers' exhaustive enumeration; on non-degenerate inputs
/// the cuts leave a small fraction of them.
enum SubsetSearch {
    struct Result {
        let subset: [Int]
        let value: Double
        /// Number of complete subsets whose value was computed.
        let evaluated: Int
    }

    static func minimise(_ distances: Distances, size m: Int, boundScale: Double, seeds: [[Int]],
                         value: ([Int]) -> Double) -> Result {
        let n = distances.n
        var best = Double.infinity
        var bestSubset = Array(0..<m)
        var bestFromSearch = false
        var evaluated = 0

        /// a ≤ b lexicographically (equal sizes).
        func notAfter(_ a: [Int], _ b: [Int]) -> Bool {
            for (x, y) in zip(a, b) where x != y { return x < y }
            return true
        }
        func offer(_ subset: [Int]) -> Bool {
            let v = Ranking.key(value(subset))
            evaluated += 1
            if v < best || (v == best && notAfter(subset, bestSubset)) {
                best = v
                bestSubset = subset
                return true
            }
            return false
        }
        for seed in seeds where seed.count == m { _ = offer(seed.sorted()) }

        var chosen: [Int] = []
        chosen.reserveCapacity(m)
        func visit(_ i: Int, _ diameter: Double) {
            let bound = boundScale * diameter
            // Strictly worse: cut. Equal: cut only once the best was found by this search,
            // since everything visited later is lexicographically after it.
            if bound > best || (bestFromSearch && bound >= best) { return }
            if chosen.count == m {
                if offer(chosen) { bestFromSearch = true }
                return
            }
            if n - i < m - chosen.count { return }
            var grown = diameter
            for j in chosen { grown = max(grown, distances[i, j]) }
            chosen.append(i)
            visit(i + 1, grown)
            chosen.removeLast()
            visit(i + 1, diameter)
        }
        visit(0, 0)
        return Result(subset: bestSubset, value: best, evaluated: evaluated)
    }

    /// For every finite input, its m nearest inputs (itself first, then by (distance, index)),
    /// sorted: cheap candidate subsets with diameter at most twice the best possible radius.
    static func neighbourhoodSeeds(_ distances: Distances, size m: Int) -> [[Int]] {
        distances.finiteRows.map { i in
            let others = Ranking.ascending((0..<distances.n).filter { $0 != i }) { distances[i, $0] }
            return ([i] + others.prefix(m - 1)).sorted()
        }
    }
}
