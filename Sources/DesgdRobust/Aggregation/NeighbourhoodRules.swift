import DesgdNumerics

/// FABA, fast aggregation against Byzantine attacks (Xia, Tao, Lu, Pan, IJCAI 2019).
///
///     R ← all inputs; repeat f times: remove from R the input farthest from mean(R);  y = mean(R)
///
/// - Defaults: exactly f removals, one at a time with the mean recomputed (public
///   re-implementations do the same).
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: treated as infinitely far from the mean, so they are removed first
///   (lowest index first); with at most f of them the output is finite.
/// - Ties: the largest distance is removed, the lowest index among equal distances.
/// - Bound: none of the simple λ form (docs/references.md, robust aggregation §4.2).
/// - Decision: `weights` 1/(n−f) on the survivors, `selected` = survivors, `removed` in removal
///   order, `scores` = squared distance of each removed input to the mean it was removed from
///   (0 for survivors).
/// - Cost: one Gram product, then O(n²) per removal (‖xᵢ − mean(R)‖² from the distances alone).
public struct FABA: Aggregator {
    public init() {}

    public var spec: String { "faba" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("faba", n: n, f: f, honestMajority: true)
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n
        let distances = Distances(context)
        var remaining = Array(0..<n)
        var removed: [Int] = []
        var scores = [Double](repeating: 0, count: n)
        for _ in 0..<max(0, min(context.f, n - 1)) {
            let far: Int
            if let bad = remaining.first(where: { !distances.finite[$0] }) {
                far = bad
                scores[far] = .infinity
            } else {
                let d2 = distances.squaredDistancesToCombination(uniformWeights(n: n, on: remaining))
                far = Ranking.argmax(remaining) { d2[$0] }
                scores[far] = d2[far]
            }
            removed.append(far)
            remaining.removeAll { $0 == far }
        }
        VectorMath.mean(of: context.messages, rows: remaining, into: output)
        var decision = AggregationDecision()
        decision.weights = uniformWeights(n: n, on: remaining)
        decision.selected = remaining
        decision.removed = removed
        decision.scores = scores
        return decision
    }
}

/// MoNNA (Farhadkhani, Guerraoui, Gupta, Hoang, Pinot, Stephan, ICML 2023; ByzFL `MoNNA(f, idx)`):
/// the average of the n−f inputs nearest to a trusted pivot input, the pivot included.
///
///     y = (1/(n−f)) Σ_{i ∈ N(p)} xᵢ,  N(p) = the n−f inputs closest to x_p (x_p first)
///
/// - Defaults: pivot = input 0 (ByzFL `idx=0`); parameter `pivot` (an expression over n, f). In
///   the peer-to-peer setting of the paper the pivot is the aggregating worker's own vector.
/// - Requirement: n ≥ 2f+1 and 0 ≤ pivot < n.
/// - Non-finite inputs: at distance +∞ from the pivot, so ranked last. A non-finite pivot
///   makes every distance +∞ (neighbours then by index) and the output non-finite.
/// - Ties: (distance, index), pivot always first.
/// - Bound: none listed in docs/references.md, robust aggregation §4.2.
/// - Decision: `weights` 1/(n−f) on the neighbours, `selected` (nearest first), `scores` =
///   squared distances to the pivot.
/// - Cost: O(n·d) (n direct distances, no Gram product).
public struct MoNNA: Aggregator {
    public let pivot: SpecExpression

    public init(pivot: SpecExpression = .constant(0)) { self.pivot = pivot }

    public var spec: String { SpecText.spec("monna", [("pivot", pivot.description)]) }

    public func requirement(n: Int, f: Int) -> String? {
        if let basic = SpecText.basic("monna", n: n, f: f, honestMajority: true) { return basic }
        let p = pivot.evaluate(n: n, f: f)
        if p < 0 || p >= n { return SpecText.violated("monna", "0 ≤ pivot < n", n: n, f: f, detail: ", pivot=\(p)") }
        return nil
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        let n = context.n
        guard n > 0 else { VectorMath.fill(output, with: 0); return decision }
        let p = min(max(0, pivot.evaluate(n: n, f: context.f)), n - 1)
        let m = context.messages
        let scores = (0..<n).map { i -> Double in
            if i == p { return 0 }
            let d2 = m.withRow(p) { a in m.withRow(i) { b in VectorMath.squaredDistance(a, b) } }
            return d2.isFinite ? d2 : .infinity
        }
        let others = Ranking.ascending((0..<n).filter { $0 != p }) { scores[$0] }
        let selected = [p] + others.prefix(max(0, n - max(0, context.f) - 1))
        VectorMath.mean(of: m, rows: selected, into: output)
        decision.weights = uniformWeights(n: n, on: selected)
        decision.selected = selected
        decision.scores = scores
        return decision
    }
}

/// Clustering (Sattler, Müller, Wiegand, Samek, ICASSP 2020, after Clustered FL): cosine
/// similarity, agglomerative clustering into two clusters with complete linkage, keep the
/// larger cluster and average it.
///
///     Sᵢⱼ = ⟨xᵢ, xⱼ⟩ / (‖xᵢ‖‖xⱼ‖ + 1e-12),  distance δᵢⱼ = 1 − Sᵢⱼ,
///     y = mean(larger cluster)
///
/// - Defaults: complete linkage on 1 − S, which orders merges exactly like the CFL reference
///   code's `AgglomerativeClustering(linkage="complete").fit(-S)` (δ = 1 − S is −S shifted by a
///   constant); 2 clusters. Older Blades fed S itself as a distance (a sign bug); fedlib's
///   `Clippedclustering` (average linkage, norm clipping) is a different rule.
/// - Requirement: n ≥ max(3, 2f+1).
/// - Non-finite inputs: never kept — they are labelled with the other cluster and the
///   clustering runs on the finite inputs (fedlib maps their distances to the maximum 2 instead,
///   which with complete linkage ties them with genuine opposites and can merge them into the
///   larger cluster).
/// - Ties: merges by (linkage distance, smaller member index of the first cluster, of the second);
///   equal cluster sizes → keep the cluster containing the lowest finite input index. (An equal split
///   can only happen when the honest inputs themselves are split, so no choice favours them.)
/// - Bound: none of the simple λ form (docs/references.md, robust aggregation §4.2).
/// - Decision: `weights` 1/|kept| on the kept cluster, `selected` (ascending), `clusterLabels`
///   (0 = kept, 1 = other).
/// - Cost: one Gram product (O(n²d)) plus O(n³) for the clustering.
public struct Clustering: Aggregator {
    public init() {}

    public var spec: String { "clustering" }

    public func requirement(n: Int, f: Int) -> String? {
        if let basic = SpecText.basic("clustering", n: n, f: f, honestMajority: true) { return basic }
        if n < 3 { return SpecText.violated("clustering", "n ≥ 3 (two clusters, one larger)", n: n, f: f) }
        return nil
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n
        let (candidates, linkage) = cosineDistances(context)
        let m = candidates.count

        // Complete-linkage agglomeration over the finite inputs; clusters stay ordered by their
        // smallest member, so the first cluster always holds the lowest finite index.
        var clusters = (0..<m).map { [candidates[$0]] }
        var link = linkage
        var size = m
        while clusters.count > 2 {
            var best = (a: 0, b: 1)
            for a in 0..<clusters.count {
                for b in (a + 1)..<clusters.count where link[a * size + b] < link[best.a * size + best.b] {
                    best = (a, b)
                }
            }
            clusters[best.a] = (clusters[best.a] + clusters[best.b]).sorted()
            // Lance–Williams update for complete linkage: L(A∪B, C) = max(L(A,C), L(B,C)).
            for c in 0..<clusters.count where c != best.a && c != best.b {
                let v = max(link[best.a * size + c], link[best.b * size + c])
                link[best.a * size + c] = v
                link[c * size + best.a] = v
            }
            clusters.remove(at: best.b)
            let keep = (0..<size).filter { $0 != best.b }
            link = keep.flatMap { i in keep.map { j in link[i * size + j] } }
            size = clusters.count
        }
        let kept: [Int]
        switch clusters.count {
        case 0: kept = []
        case 1: kept = clusters[0]
        default: kept = clusters[0].count >= clusters[1].count ? clusters[0] : clusters[1]
        }
        VectorMath.mean(of: context.messages, rows: kept, into: output)
        var labels = [Int](repeating: 1, count: n)
        for i in kept { labels[i] = 0 }
        var decision = AggregationDecision()
        decision.weights = uniformWeights(n: n, on: kept)
        decision.selected = kept
        decision.clusterLabels = labels
        return decision
    }

    /// The finite inputs and their pairwise δᵢⱼ = 1 − cosine similarity (row-major over those
    /// inputs), from one uncentred Gram product — a ratio, so no cancellation. An overflowing
    /// product gives the largest distance, 2.
    func cosineDistances(_ context: AggregationContext) -> (rows: [Int], distances: [Double]) {
        let rows = (0..<context.n).filter { i in context.messages.withRow(i) { VectorMath.allFinite($0) } }
        let m = rows.count
        let g = VectorMath.gram(rows.count == context.n ? context.messages : context.messages.selecting(rows: rows),
                                backend: context.backend)
        var delta = [Double](repeating: 0, count: m * m)
        for a in 0..<m {
            for b in 0..<m where b != a {
                let s = Double(g[a * m + b]) / ((Double(g[a * m + a]) * Double(g[b * m + b])).squareRoot() + 1e-12)
                delta[a * m + b] = s.isFinite ? 1 - min(1, max(-1, s)) : 2
            }
        }
        return (rows, delta)
    }
}
