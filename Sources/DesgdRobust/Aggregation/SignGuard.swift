import DesgdNumerics

/// SignGuard (Xu, Huang, Song, Lan, "Byzantine-robust Federated Learning through Collaborative
/// Malicious Gradient Filtering", ICDCS 2022, arXiv 2109.05872; the authors' code
/// `signguard_multiclass`; docs/references.md, attacks and defences §3).
///
///     M = median_i ‖xᵢ‖;   S₁ = {i : L·M < ‖xᵢ‖ < R·M}                          (norm filter)
///     B = a random block of ⌊frac·d⌋ contiguous coordinates; per input the fractions of
///         positive, zero and negative values on B, each divided by its maximum over inputs + 10⁻⁸;
///     S₂ = the largest MeanShift cluster of these features                     (sign filter)
///     y = (1/|S|) Σ_{i∈S} xᵢ · min(1, M/‖xᵢ‖),   S = S₁ ∩ S₂                 (clipped mean)
///
/// - Defaults: L = 0.1, R = 3.0 (strict), frac = 0.1, one block per round (the authors' code,
///   FLPoison). MeanShift as the authors call scikit-learn: flat kernel, bandwidth from
///   `estimate_bandwidth(quantile=0.5, n_samples=50)` (the mean over inputs of the distance to the
///   ⌊n'/2⌋-th nearest input, the input itself counted first, on n' = min(n, 50) inputs), bin
///   seeding (bins of one bandwidth, numpy's round-half-to-even; the inputs themselves as seeds
///   when every bin holds one), a seed moves to the mean of the inputs within the bandwidth (≤)
///   until it moves by at most 10⁻³·bandwidth or 300 iterations, centres sorted by (inputs within,
///   centre) descending and any centre within the bandwidth of a kept one dropped, every input
///   labelled with its nearest centre or −1 beyond the bandwidth (`cluster_all=False`).
/// - Choices where the reference marks one: M is the median of the norms (mean of the two middle
///   ones for even n) in both the filter and the clipping (the authors clip to torch's lower
///   median); the block starts uniformly in 0…d−⌊frac·d⌋ (FLPoison's inclusive draw; the authors'
///   exclusive one never picks the last block) and has at least one coordinate (d < 10);
///   bandwidth 0 (features that coincide in groups, e.g. all equal) clusters equal features
///   together, the limit of the flat kernel, instead of failing as scikit-learn does; more than 50
///   inputs: the 50 of the bandwidth estimate are drawn from the round's stream (scikit-learn
///   fixes `random_state=0`); the largest cluster, ties to the lowest label (the highest-ranked
///   centre); an empty S gives the zero vector (the authors' code would give NaN): the group moves
///   by its buffer only.
/// - Randomness: `RandomStream(seed:, purpose: .aggregator, round:, class:)`, one stream per call:
///   the block start, then (n > 50 only) the bandwidth sample.
/// - Requirement: n ≥ 2f+1 (the filters keep a majority; f itself is not used).
/// - Non-finite inputs: a row with a NaN or ±∞ has norm +∞ or NaN and fails the norm filter
///   (which no row passes when M itself is not finite), so the output is always finite; in the
///   sign features NaN counts as zero (the authors zero NaNs first).
/// - Ties: see above; nearest-centre ties go to the lower label.
/// - Bound: none of the simple λ form (randomised filter).
/// - Decision: `selected` = S (ascending), `clusterLabels` (MeanShift label per input, −1 an
///   orphan), `clipFactors` min(1, M/‖xᵢ‖) (0 outside S₁), `removed` = the inputs outside S
///   (ascending), `values`: `medianNorm`, `bandwidth`, `blockStart`, `blockLength`, `clusters`,
///   `normFilterKept` (|S₁|), `signFilterKept` (|S₂|).
/// - Cost: O(n·d) norms and the clipped mean, O(n·frac·d) features, MeanShift on n points in 3-D
///   (O(n²) per iteration).
public struct SignGuard: Aggregator {
    public let lower: Double
    public let upper: Double
    public let fraction: Double

    public init(lower: Double = 0.1, upper: Double = 3.0, fraction: Double = 0.1) {
        self.lower = lower
        self.upper = upper
        self.fraction = fraction
    }

    public var spec: String {
        SpecText.spec("signguard", [("lower", SpecText.number(lower)), ("upper", SpecText.number(upper)),
                                    ("frac", SpecText.number(fraction))])
    }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("signguard", n: n, f: f, honestMajority: true)
    }

    /// Inputs of the bandwidth estimate (scikit-learn `n_samples`).
    static let bandwidthSamples = 50

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let n = context.n, d = context.d
        var decision = AggregationDecision()
        guard n > 0, d > 0 else { VectorMath.fill(output, with: 0); return decision }
        var rng = RandomStream(seed: context.seed, purpose: .aggregator, round: context.round,
            class: context.classIndex)

        // Norm filter.
        let norms = RowNorms(context.messages)
        let norm = (0..<n).map { norms.finite[$0] ? norms.values[$0] : Double.infinity }
        let sorted = norm.map(Ranking.key).sorted()
        let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        let normKept = (0..<n).filter { lower * median < norm[$0] && norm[$0] < upper * median }

        // Sign features on one random block.
        let length = min(d, max(1, Int((fraction * Double(d)).rounded(.down))))
        let start = rng.nextInt(below: d - length + 1)
        var features = (0..<n).map { i in
            context.messages.withRow(i) { x -> [Double] in
                var positive = 0, negative = 0
                for j in start..<(start + length) {
                    if x[j] > 0 { positive += 1 } else if x[j] < 0 { negative += 1 }
                }
                let zero = length - positive - negative
                return [positive, zero, negative].map { Double($0) / Double(length) }
            }
        }
        for k in 0..<3 {
            let largest = features.map { $0[k] }.max() ?? 0
            for i in 0..<n { features[i][k] /= largest + 1e-8 }
        }
        let sample = n > Self.bandwidthSamples ? rng.sample(Self.bandwidthSamples, from: n).sorted() : Array(0..<n)
        let bandwidth = MeanShift.estimateBandwidth(sample.map { features[$0] })
        let labels = MeanShift(bandwidth: bandwidth).labels(features)

        // The largest cluster, ties to the lowest label.
        let clusters = (labels.max() ?? -1) + 1
        var sizes = [Int](repeating: 0, count: clusters)
        for label in labels where label >= 0 { sizes[label] += 1 }
        let largest = sizes.indices.max { sizes[$0] < sizes[$1] || (sizes[$0] == sizes[$1] && $0 > $1) }
        let signKept = largest.map { best in (0..<n).filter { labels[$0] == best } } ?? []

        let selected = Set(normKept).intersection(signKept).sorted()
        let factors = (0..<n).map { i in normKept.contains(i) ? norms.clipFactor(i, radius: median) : 0 }
        var coefficients = [Double](repeating: 0, count: n)
        for i in selected { coefficients[i] = factors[i] / Double(selected.count) }
        VectorMath.combination(of: context.messages, coefficients: coefficients, into: output)

        decision.selected = selected
        decision.removed = (0..<n).filter { !selected.contains($0) }
        decision.clusterLabels = labels
        decision.clipFactors = factors
        decision.values = ["medianNorm": median, "bandwidth": bandwidth, "blockStart": Double(start),
                           "blockLength": Double(length), "clusters": Double(clusters),
                           "normFilterKept": Double(normKept.count), "signFilterKept": Double(signKept.count)]
        return decision
    }
}

/// Flat-kernel mean shift with bin seeding and `cluster_all=False`, as scikit-learn's `MeanShift`
/// (`sklearn/cluster/_mean_shift.py`; docs/references.md, attacks and defences §3.4), on a few
/// points of low dimension (SignGuard's sign features). Deterministic; Double arithmetic.
struct MeanShift {
    let bandwidth: Double
    /// scikit-learn's defaults: stop when a seed moves by at most 10⁻³·bandwidth, or after 300 iterations.
    static let maximumIterations = 300

    /// `estimate_bandwidth(X, quantile=0.5)`: the mean over points of the distance to the k-th
    /// nearest point, the point itself counted first, k = max(1, ⌊n/2⌋).
    static func estimateBandwidth(_ points: [[Double]]) -> Double {
        let n = points.count
        guard n > 0 else { return 0 }
        let k = max(1, n / 2)
        var total = 0.0
        for p in points {
            let distances = points.map { distance(p, $0) }.sorted()
            total += distances[k - 1]
        }
        return total / Double(n)
    }

    static func distance(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    }

    /// The label of every point: the rank of its nearest kept centre (centres ranked by the number
    /// of points within the bandwidth, then by their coordinates, descending), or −1 when that centre
    /// is farther than the bandwidth.
    func labels(_ points: [[Double]]) -> [Int] {
        let n = points.count
        guard n > 0 else { return [] }
        var centres: [(centre: [Double], count: Int)] = []
        if bandwidth > 0 && bandwidth.isFinite {
            for seed in seeds(points) {
                var mean = seed, within = 0, iterations = 0
                while true {
                    let near = points.filter { Self.distance($0, mean) <= bandwidth }
                    within = near.count
                    if near.isEmpty { break }
                    let old = mean
                    mean = (0..<mean.count).map { k in near.reduce(0) { $0 + $1[k] } / Double(near.count) }
                    if Self.distance(mean, old) <= 1e-3 * bandwidth || iterations == Self.maximumIterations { break }
                    iterations += 1
                }
                guard within > 0 else { continue }
                // A centre reached twice keeps the count of its last seed (a dictionary in scikit-learn).
                if let k = centres.firstIndex(where: { $0.centre == mean }) { centres[k].count = within } else {
                    centres.append((mean, within))
                }
            }
        } else {
            // Bandwidth 0: equal points form a cluster (the limit of the flat kernel).
            for p in points {
                if let k = centres.firstIndex(where: { $0.centre == p }) { centres[k].count += 1 } else {
                    centres.append((p, 1))
                }
            }
        }
        centres.sort { a, b in a.count != b.count ? a.count > b.count : b.centre.lexicographicallyPrecedes(a.centre) }
        var kept: [[Double]] = []
        var suppressed = [Bool](repeating: false, count: centres.count)
        for (i, c) in centres.enumerated() where !suppressed[i] {
            for j in centres.indices where Self.distance(centres[j].centre, c.centre) <= bandwidth {
                suppressed[j] = true
            }
            kept.append(c.centre)
        }
        return points.map { p in
            var best = -1, bestDistance = Double.infinity
            for (k, c) in kept.enumerated() {
                let dist = Self.distance(p, c)
                if dist < bestDistance { best = k; bestDistance = dist }
            }
            return bestDistance <= bandwidth ? best : -1
        }
    }

    /// `get_bin_seeds(X, bandwidth, min_bin_freq=1)`: the distinct bins round(x/bandwidth) in order
    /// of first appearance, times the bandwidth; the points themselves when every point has its own bin.
    private func seeds(_ points: [[Double]]) -> [[Double]] {
        var bins: [[Double]] = []
        for p in points {
            let bin = p.map { ($0 / bandwidth).rounded(.toNearestOrEven) }
            if !bins.contains(bin) { bins.append(bin) }
        }
        if bins.count == points.count { return points }
        return bins.map { $0.map { $0 * bandwidth } }
    }
}
