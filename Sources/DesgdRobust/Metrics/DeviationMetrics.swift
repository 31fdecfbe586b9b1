import DesgdNumerics

/// How far one aggregate strayed from the honest mean (docs/design.md §6), for a round with received
/// set R, honest subset S, honest mean x̄_S and output F(R):
///
/// - gap = ‖F(R) − x̄_S‖;
/// - honest diameter Δ_S = max_{i,j∈S} ‖x_i − x_j‖ and **λ̂ = gap / Δ_S**, to compare with the
///   rule's (f,λ)-resilient averaging constant (docs/references.md, robust aggregation §4.2);
/// - honest variance σ²_S = (1/|S|) Σ_{i∈S} ‖x_i − x̄_S‖² and **κ̂ = gap² / σ²_S**
///   ((f,κ)-robustness);
/// - cosine between F(R) and x̄_S;
/// - the weight given to Byzantine inputs (rules whose output is a weighted average of the
///   received messages) and the share of coordinates taken from Byzantine inputs (coordinate-wise
///   rules). Both are `nil` when the rule does not report them per received message, e.g. behind a
///   pre-aggregator that mixes inputs first.
///
/// Ratios whose denominator is zero are `nil` ("undefined"), never ∞ or NaN. Distances are
/// accumulated in Double (``VectorMath``). Cost: O(|S|²·d) for the diameter, O(n·d) for the rest.
public struct DeviationMetrics: Sendable, Equatable, Codable {
    public var gap: Double
    public var honestDiameter: Double
    public var lambda: Double?
    public var honestVariance: Double
    public var kappa: Double?
    public var cosine: Double?
    public var byzantineWeight: Double?
    public var byzantineCoordinateShare: Double?
    /// The rule's proven λ for (n, f), when it has one.
    public var bound: Double?
    /// λ̂ > bound (with a relative slack of 1e-6 for rounding): a bug or a numerical issue.
    public var exceedsBound: Bool
    /// The group's accumulated deviation up to this aggregation (``GroupDrift``); set by the
    /// recorder and by replay, which see every aggregation in order (`nil` in traces of format 1.0).
    public var drift: GroupDrift? = nil

    public init(gap: Double, honestDiameter: Double, lambda: Double?, honestVariance: Double, kappa: Double?,
                cosine: Double?,
                byzantineWeight: Double?, byzantineCoordinateShare: Double?, bound: Double?, exceedsBound: Bool) {
        self.gap = gap
        self.honestDiameter = honestDiameter
        self.lambda = lambda
        self.honestVariance = honestVariance
        self.kappa = kappa
        self.cosine = cosine
        self.byzantineWeight = byzantineWeight
        self.byzantineCoordinateShare = byzantineCoordinateShare
        self.bound = bound
        self.exceedsBound = exceedsBound
    }

    /// Some metric is NaN or ±∞: an output with a NaN or infinite coordinate (e.g. `mean` under the
    /// `nan` or `inf` attack) gives gap = NaN or ∞ and so λ̂ and κ̂. Such a metric compares false
    /// with any bound, so ``exceedsBound`` cannot catch it: readers flag it on its own
    /// ("non-finite") and leave it out of means and percentiles. Computed, not stored, so the
    /// trace's metrics object (traces/FORMAT.md §5.3) is unchanged.
    public var isNonFinite: Bool {
        [gap, honestDiameter, honestVariance, lambda, kappa].contains { $0.map { !$0.isFinite } ?? false }
    }

    /// Measures `output` against the honest rows of `messages`.
    /// - Parameters:
    ///   - honest: `honest[i]` tells whether row i was sent by an honest worker (at least one must be).
    ///   - decision: the rule's decision, for the Byzantine weight and coordinate share.
    ///   - bound: the rule's λ bound for this (n, f), if any.
    public static func measure(messages: Matrix, honest: [Bool], output: UnsafeBufferPointer<Float>,
                               decision: AggregationDecision?, bound: Double?) -> DeviationMetrics {
        measure(output: output, against: HonestStatistics(messages: messages, honest: honest), decision: decision,
            bound: bound)
    }

    /// Measures `output` against precomputed honest statistics (shared by every rule evaluated on
    /// the same round). O(d).
    public static func measure(output: UnsafeBufferPointer<Float>, against h: HonestStatistics,
                               decision: AggregationDecision?, bound: Double?) -> DeviationMetrics {
        precondition(output.count == h.mean.count)
        let honest = h.honest
        return h.mean.withUnsafeBufferPointer { m in
            let gap = VectorMath.distance(output, m)
            let norms = VectorMath.norm(output) * h.meanNorm
            let lambda = h.diameter > 0 ? gap / h.diameter : nil
            var weight: Double?, share: Double?
            if let decision, decision.preAggregation == nil {
                if let w = decision.weights, w.count == honest.count {
                    weight = w.indices.filter { !honest[$0] }.reduce(0.0) { $0 + w[$1] }
                }
                if let u = decision.coordinatesUsed, u.count == honest.count {
                    let total = u.reduce(0, +)
                    if total > 0 {
                        share = Double(u.indices.filter { !honest[$0] }.reduce(0) { $0 + u[$1] }) / Double(total)
                    }
                }
            }
            return DeviationMetrics(
                gap: gap, honestDiameter: h.diameter, lambda: lambda, honestVariance: h.variance,
                kappa: h.variance > 0 ? gap * gap / h.variance : nil,
                cosine: norms > 0 && norms.isFinite ? VectorMath.dot(output, m) / norms : nil,
                byzantineWeight: weight, byzantineCoordinateShare: share, bound: bound,
                exceedsBound: lambda.map { l in bound.map { l > $0 * (1 + 1e-6) } ?? false } ?? false)
        }
    }
}

/// What the metrics of one aggregation need of its honest messages, computed once however many
/// rules are measured against it: the honest mean x̄_S, the diameter Δ_S, the variance σ²_S.
/// O(|S|²·d).
public struct HonestStatistics: Sendable {
    /// Per received row, whether an honest worker sent it.
    public let honest: [Bool]
    public let mean: [Float]
    public let meanNorm: Double
    public let diameter: Double
    public let variance: Double

    public init(messages: Matrix, honest: [Bool]) {
        precondition(honest.count == messages.rows)
        let honestRows = honest.indices.filter { honest[$0] }
        precondition(!honestRows.isEmpty, "HonestStatistics: no honest row")
        let h = messages.selecting(rows: honestRows)
        var mean = [Float](repeating: 0, count: messages.columns)
        mean.withUnsafeMutableBufferPointer { VectorMath.weightedMean(of: h, into: $0) }
        var variance = 0.0
        mean.withUnsafeBufferPointer { m in
            for i in 0..<h.rows { variance += h.withRow(i) { VectorMath.squaredDistance($0, m) } }
        }
        self.honest = honest
        self.mean = mean
        meanNorm = mean.withUnsafeBufferPointer { VectorMath.norm($0) }
        diameter = VectorMath.pairwiseSquaredDistances(h).max().map { $0.squareRoot() } ?? 0
        self.variance = variance / Double(h.rows)
    }
}
