import DesgdNumerics

/// How one aggregation group's deviations from the honest mean add up over its aggregations
/// (docs/design.md §12, FORMAT.md §5.4). With e_s = F(R_s) − x̄_S,s the group's deviation at its s-th
/// aggregation, k aggregations so far and a window of the last w = min(k, W) of them:
///
/// - `cumulative` = ‖Σ_{s≤k} e_s‖ and `windowed` = ‖Σ_{window} e_s‖: how far the deviations pushed,
///   in total and lately;
/// - persistence = ‖Σ e_s‖ / Σ ‖e_s‖ over the same terms: 1 when every deviation points the same
///   way, about 1/√k for k independent ones. This is what per-round λ̂ cannot see: ALIE keeps each
///   round's gap small and makes it persistent, and the model and the class-momentum buffer add it up;
/// - cosine of e_k with the sum of the *earlier* terms (since the start, and in the window): whether
///   the newest deviation keeps pushing the same way.
///
/// Ratios whose denominator is 0 are `nil`, as in ``DeviationMetrics``.
public struct GroupDrift: Sendable, Equatable, Codable {
    /// k: the group's aggregations so far, this one included.
    public var count: Int
    public var cumulative: Double
    public var cumulativePersistence: Double?
    public var cumulativeCosine: Double?
    /// w = min(k, W): the aggregations in the window.
    public var window: Int
    public var windowed: Double
    public var windowPersistence: Double?
    public var windowCosine: Double?

    public init(count: Int, cumulative: Double, cumulativePersistence: Double?, cumulativeCosine: Double?, window: Int,
                windowed: Double, windowPersistence: Double?, windowCosine: Double?) {
        self.count = count
        self.cumulative = cumulative
        self.cumulativePersistence = cumulativePersistence
        self.cumulativeCosine = cumulativeCosine
        self.window = window
        self.windowed = windowed
        self.windowPersistence = windowPersistence
        self.windowCosine = windowCosine
    }
}

/// How far the model was pushed away from its *honest shadow*: the server step (eq. 7, 14–16)
/// applied, round by round, to the honest means instead of the aggregates, with its own
/// class-momentum buffer (and server momentum). With u_s the real update direction and u_s^H the
/// shadow's, after t rounds (FORMAT.md §5.4):
///
/// - `displacement` = ‖η·Σ_s (u_s − u_s^H)‖: the accumulated difference between the real and the
///   shadow steps, in parameter units (the real model minus the shadow model, to first order);
/// - `persistence` = ‖Σ (u_s − u_s^H)‖ / Σ ‖u_s − u_s^H‖;
/// - `relative` = displacement / ‖η·Σ_s u_s^H‖: against how far the honest steps moved the model;
/// - `step` = η·‖u_t − u_t^H‖: this round's difference alone.
public struct ModelDrift: Sendable, Equatable, Codable {
    /// Rounds accumulated, this one included.
    public var rounds: Int
    public var displacement: Double
    public var persistence: Double?
    public var relative: Double?
    /// ‖η·Σ_s u_s^H‖.
    public var shadowDisplacement: Double
    public var step: Double

    public init(rounds: Int, displacement: Double, persistence: Double?, relative: Double?, shadowDisplacement: Double,
        step: Double) {
        self.rounds = rounds
        self.displacement = displacement
        self.persistence = persistence
        self.relative = relative
        self.shadowDisplacement = shadowDisplacement
        self.step = step
    }
}

/// How a group's *recent* deviations are summed (FORMAT.md §5.4, the trace header's `driftRecent`).
public enum RecentDrift: String, Sendable, Equatable, Codable, CaseIterable {
    /// The last w = min(k, W) deviations with weight 1, their sum recomputed from a ring of W
    /// vectors at every aggregation: formats 1.1–1.3, kept so that their traces re-execute,
    /// resume and fork bit for bit. State: W·d binary32 per group (17 MB for LeNet at W = 10).
    case window
    /// R_k = λ·R_{k−1} + e_k (binary32) and N_k = λ·N_{k−1} + ‖e_k‖ (binary64) with λ = 1 − 1/W
    /// (format 1.4, the default): the same horizon of about W aggregations, each deviation's
    /// weight decaying instead of dropping out. State: d binary32 per group, a tenth of the
    /// window's at W = 10, which keeps a paper checkpoint near the run's own state. binary32
    /// suffices because old terms, and their rounding, decay: R_k carries about W roundings of
    /// 2⁻²⁴, not the whole run's.
    case exponential

    /// λ = fl32(1 − 1/W) (0 for W = 1, so R_k = e_k as with a window of one); N_k uses the same
    /// value widened to binary64.
    public static func decay(window: Int) -> Float { Float(1 - 1 / Double(max(1, window))) }

    /// The recent persistence of k → ∞ independent deviations of equal norm: 1/√W for a window,
    /// √((1 − λ)/(1 + λ)) = 1/√(2W − 1) for exponential weights (the audit draws it as the
    /// "no persistence" reference).
    public func independentPersistence(window w: Int) -> Double {
        switch self {
        case .window: 1 / Double(max(1, w)).squareRoot()
        case .exponential: 1 / Double(2 * max(1, w) - 1).squareRoot()
        }
    }
}

/// The running state behind one group's ``GroupDrift``: the cumulative sum Σ e_s (binary64), the
/// sum of norms, and the recent sum (``RecentDrift``): either the last W deviations in a ring
/// (binary32, W·d floats) or the exponentially weighted sum R_k (binary32, d values); memory is
/// independent of the number of rounds either way. Norms are taken in binary64 in index order
/// (``VectorMath/norm64(_:)``), the arithmetic of the binary64 sums' norms, so that persistence
/// never exceeds 1 by rounding (the binary32 R_k's persistence is capped at 1).
///
/// A window's sum is *recomputed* from the ring at every aggregation, oldest term first, in
/// binary64 (O(W·d)), rather than kept as a running sum with the oldest term subtracted: a
/// subtracted running sum accumulates the rounding of every add and subtract over the whole run,
/// a recomputed one carries only the rounding of its w terms, and its value depends only on the
/// window's content. The exponential sum needs no subtraction: R_k = fl(fl(λ·R_{k−1}) + e_k)
/// element by element in binary32 (``VectorMath/axpby(_:_:_:_:)``, whose fused 1·e_k adds exactly;
/// the same bits in any IEEE 754 implementation; O(d)), and its rounding decays with the weights. Everything runs in a
/// fixed order, so the result is independent of threads.
public final class DeviationHistory {
    public let dimension: Int
    /// W, at least 1.
    public let windowLength: Int
    public let recent: RecentDrift
    /// `.window`: the ring (W·d) and its norms; empty for `.exponential`.
    var ring: [Float]
    var ringNorms: [Double]
    /// Terms in the ring, and the slot the next one goes to.
    var filled = 0
    var next = 0
    var count = 0
    var cumulativeSum: [Double]
    var sumOfNorms = 0.0
    /// `.exponential`: R_k (d values; empty for `.window`) and N_k.
    var recentSum: [Float]
    var recentNorms = 0.0
    let workspace: Workspace

    /// Scratch vectors (the deviation, the window's sum) shared by the histories of one run, which
    /// are updated one at a time: d floats and d doubles per run instead of per group.
    public final class Workspace {
        var deviation: [Float]
        var windowSum: [Double]
        public init(dimension d: Int) {
            deviation = [Float](repeating: 0, count: d)
            windowSum = [Double](repeating: 0, count: d)
        }
    }

    public init(dimension d: Int, windowLength: Int, recent: RecentDrift, workspace: Workspace? = nil) {
        precondition(d >= 0 && windowLength >= 1)
        dimension = d
        self.windowLength = windowLength
        self.recent = recent
        let ringLength = recent == .window ? windowLength : 0
        ring = [Float](repeating: 0, count: ringLength * d)
        ringNorms = [Double](repeating: 0, count: ringLength)
        recentSum = [Float](repeating: 0, count: recent == .exponential ? d : 0)
        cumulativeSum = [Double](repeating: 0, count: d)
        self.workspace = workspace ?? Workspace(dimension: d)
        precondition(self.workspace.deviation.count == d)
    }

    /// Adds e = output − honestMean (in binary32, as ``VectorMath/subtract(_:_:into:)``) and
    /// returns the group's drift after it.
    public func add(output: UnsafeBufferPointer<Float>, honestMean: UnsafeBufferPointer<Float>) -> GroupDrift {
        let d = dimension
        precondition(output.count == d && honestMean.count == d)
        let w = workspace
        w.deviation.withUnsafeMutableBufferPointer { VectorMath.subtract(output, honestMean, into: $0) }
        return w.deviation.withUnsafeBufferPointer { e in
            let norm = VectorMath.norm64(e)
            // Since the start: the cosine against the earlier sum, then the sum with e.
            let earlierNorm = cumulativeSum.withUnsafeBufferPointer { VectorMath.norm($0) }
            let cumulativeCosine = cumulativeSum.withUnsafeBufferPointer { s in
                DriftRatio.cosine(VectorMath.dot(e, s), norm, earlierNorm) }
            cumulativeSum.withUnsafeMutableBufferPointer { VectorMath.accumulate(e, into: $0) }
            sumOfNorms += norm
            count += 1
            let cumulative = cumulativeSum.withUnsafeBufferPointer { VectorMath.norm($0) }
            let (terms, windowed, windowNorms, windowCosine) = recent == .window
                ? addToWindow(e, norm: norm) : addExponentially(e, norm: norm)
            return GroupDrift(count: count, cumulative: cumulative,
                              cumulativePersistence: DriftRatio.ratio(cumulative, sumOfNorms),
                              cumulativeCosine: cumulativeCosine, window: terms, windowed: windowed,
                              windowPersistence: DriftRatio.ratio(windowed, windowNorms), windowCosine: windowCosine)
        }
    }

    /// The window: the earlier terms still in it (the oldest drops out when it is full), oldest
    /// first, then e. Returns w, ‖Σ‖, Σ‖e_s‖ and the cosine of e with the earlier terms' sum.
    func addToWindow(_ e: UnsafeBufferPointer<Float>, norm: Double) -> (Int, Double, Double, Double?) {
        let d = dimension, w = workspace
        let kept = min(filled, windowLength - 1)
        var windowNorms = 0.0
        w.windowSum.withUnsafeMutableBufferPointer { s in
            s.update(repeating: 0)
            ring.withUnsafeBufferPointer { r in
                for j in 0..<kept {
                    let slot = (next - kept + j + windowLength) % windowLength
                    VectorMath.accumulate(UnsafeBufferPointer(rebasing: r[slot * d ..< (slot + 1) * d]), into: s)
                    windowNorms += ringNorms[slot]
                }
            }
        }
        let earlierNorm = w.windowSum.withUnsafeBufferPointer { VectorMath.norm($0) }
        let cosine = w.windowSum.withUnsafeBufferPointer { s in
            DriftRatio.cosine(VectorMath.dot(e, s), norm, earlierNorm) }
        w.windowSum.withUnsafeMutableBufferPointer { VectorMath.accumulate(e, into: $0) }
        windowNorms += norm
        let windowed = w.windowSum.withUnsafeBufferPointer { VectorMath.norm($0) }
        ring.withUnsafeMutableBufferPointer { r in
            _ = UnsafeMutableBufferPointer(rebasing: r[next * d ..< (next + 1) * d]).update(fromContentsOf: e)
        }
        ringNorms[next] = norm
        next = (next + 1) % windowLength
        filled = min(filled + 1, windowLength)
        return (kept + 1, windowed, windowNorms, cosine)
    }

    /// R ← λ·R + e, N ← λ·N + ‖e‖ (the cosine is e's with the earlier R, before the update, whose
    /// direction λ does not change). Returns min(k, W), ‖R‖, N and that cosine; ‖R‖ is capped at
    /// N, which it can pass only by the rounding of binary32 R when every deviation is the same.
    func addExponentially(_ e: UnsafeBufferPointer<Float>, norm: Double) -> (Int, Double, Double, Double?) {
        let lambda = RecentDrift.decay(window: windowLength)
        let earlierNorm = recentSum.withUnsafeBufferPointer { VectorMath.norm64($0) }
        let cosine = recentSum.withUnsafeBufferPointer { s in
            DriftRatio.cosine(VectorMath.dot64(e, s), norm, earlierNorm) }
        recentSum.withUnsafeMutableBufferPointer { VectorMath.axpby(1, e, lambda, $0) }
        recentNorms = Double(lambda) * recentNorms + norm
        let recentNorm = recentSum.withUnsafeBufferPointer { VectorMath.norm64($0) }
        return (min(count, windowLength), recentNorms.isNaN ? recentNorm : min(recentNorm, recentNorms), recentNorms,
            cosine)
    }
}

/// The ratios of the drift metrics: `nil` for a zero (or non-finite) denominator.
public enum DriftRatio {
    public static func ratio(_ numerator: Double, _ denominator: Double) -> Double? {
        denominator > 0 && denominator.isFinite && numerator.isFinite ? numerator / denominator : nil
    }

    public static func cosine(_ dot: Double, _ a: Double, _ b: Double) -> Double? {
        let n = a * b
        return n > 0 && n.isFinite && dot.isFinite ? dot / n : nil
    }
}
