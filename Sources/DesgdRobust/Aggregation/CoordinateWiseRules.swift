import DesgdNumerics

/// A rule whose guarantee holds coordinate by coordinate (docs/references.md, robust aggregation §4.2):
/// for every input, every honest set S with |S| = n−f and every coordinate k,
///
///     |F_k − x̄_{S,k}| ≤ factor · range_k(S),   range_k(S) = max_{i∈S} x_{ik} − min_{i∈S} x_{ik},
///
/// hence ‖F − x̄_S‖ ≤ factor·√d·Δ_S. The √d form is loose, so these rules report no λ through
/// ``Aggregator/resilienceBound(n:f:)`` and expose the per-coordinate factor instead.
public protocol CoordinateWiseBounded {
    /// The factor of the per-coordinate bound for (n, f), or `nil` when it does not hold.
    func perCoordinateBound(n: Int, f: Int) -> Double?
}

/// Coordinate-wise median (CWMed; Yin, Chen, Ramchandran, Bartlett, ICML 2018).
///
///     y_k = median(x_{1k}, …, x_{nk})
///
/// - Defaults: even n → mean of the two middle values (ByzFL/numpy/fedlib; docs/references.md, robust aggregation §7
///   — a bare `torch.median` would return the lower one).
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: per coordinate the order is −∞ < finite < +∞ < NaN (any NaN). The output
///   at a coordinate is finite whenever its middle order statistics are, in particular with at
///   most f non-finite values and n ≥ 2f+1.
/// - Ties: (value, index); only affects `coordinatesUsed`.
/// - Bound: per coordinate |F_k − x̄_{S,k}| ≤ 1·range_k(S) when n ≥ 2f+1 (the middle order
///   statistics lie inside the honest range).
/// - Decision: `coordinatesUsed` (both middle values count for even n).
/// - Cost: O(n log² n) per coordinate, eight coordinates per instruction (a sorting network on
///   SIMD lanes, n ≤ 64; quickselect above), parallel over column chunks with bit-identical
///   results for any thread count.
public struct CoordinateWiseMedian: Aggregator, CoordinateWiseBounded {
    public init() {}

    public var spec: String { "median" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("median", n: n, f: f, honestMajority: true)
    }

    public func perCoordinateBound(n: Int, f: Int) -> Double? { n >= 2 * f + 1 && f >= 0 ? 1 : nil }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        decision.coordinatesUsed = CoordinateWise.trimmedMeans(context.messages, trim: (context.n - 1) / 2,
                                                              executor: context.executor, into: output)
        return decision
    }
}

/// Coordinate-wise trimmed mean (CWTM; Yin et al., ICML 2018).
///
///     y_k = (1/(n−2b)) Σ_{r=b+1}^{n−b} x_{(r)k}     (x_{(r)k}: r-th smallest value of coordinate k)
///
/// - Defaults: b = f (drop exactly f each side; ByzFL `TrMean(f)`, bucketing code `TM(b=f)`);
///   parameter `b` is an expression over n and f. Flower's `beta=0.2` fraction variant is
///   `trmean:b=n/5`.
/// - Requirement: n > 2b.
/// - Non-finite inputs: ordered −∞ < finite < +∞ < NaN per coordinate, so up to b non-finite
///   values at a coordinate are trimmed away (NaN and +∞ at the top, −∞ at the bottom).
/// - Ties: (value, index); only affects `coordinatesUsed`.
/// - Bound: per coordinate ≤ 1·range_k(S) when b ≥ f and n > 2b.
/// - Decision: `coordinatesUsed` (n−2b per coordinate).
/// - Cost: as the median (same engine); the kept values are summed in Double in sorted order
///   (for n > 64 after quickselect and a sort of the kept ranks), so the output is bit-identical
///   under permutations of the inputs.
public struct TrimmedMean: Aggregator, CoordinateWiseBounded {
    public let b: SpecExpression

    public init(b: SpecExpression = .f) { self.b = b }

    public var spec: String { SpecText.spec("trmean", [("b", b.description)]) }

    public func requirement(n: Int, f: Int) -> String? {
        if let basic = SpecText.basic("trmean", n: n, f: f, honestMajority: false) { return basic }
        let trim = b.evaluate(n: n, f: f)
        if trim < 0 || n <= 2 * trim {
            return SpecText.violated("trmean", "n > 2b (b = \(b) values dropped each side)", n: n, f: f,
                detail: ", b=\(trim)")
        }
        return nil
    }

    public func perCoordinateBound(n: Int, f: Int) -> Double? {
        let trim = b.evaluate(n: n, f: f)
        return f >= 0 && trim >= f && n > 2 * trim ? 1 : nil
    }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        let trim = min(max(0, b.evaluate(n: context.n, f: context.f)), max(0, (context.n - 1) / 2))
        var decision = AggregationDecision()
        decision.coordinatesUsed = CoordinateWise.trimmedMeans(context.messages, trim: trim,
                                                              executor: context.executor, into: output)
        decision.values = ["b": Double(trim)]
        return decision
    }
}

/// Mean around the median, MeaMed (Xie, Koyejo, Gupta 2018, "Generalized Byzantine-tolerant
/// SGD"; ByzFL `Meamed(f)`).
///
///     y_k = mean of the n−f values of coordinate k closest to median_k
///
/// - Defaults: keeps n−f values (ByzFL); the median of an even count is the mean of the two
///   middle values.
/// - Requirement: n ≥ 2f+1.
/// - Non-finite inputs: at distance +∞ from the median, so they are kept last; with at most f
///   of them at a coordinate the output there is finite.
/// - Ties: (|value − median|, index).
/// - Bound: per coordinate ≤ 2·range_k(S) when n ≥ 2f+1 (a Byzantine value just outside the
///   honest range can be among the n−f nearest; docs/references.md, robust aggregation §4.2).
/// - Decision: `coordinatesUsed` (n−f per coordinate).
/// - Cost: a sorting network on eight coordinates at once (n ≤ 64; heapsort per coordinate
///   above), then O(n) per coordinate.
public struct MeaMed: Aggregator, CoordinateWiseBounded {
    public init() {}

    public var spec: String { "meamed" }

    public func requirement(n: Int, f: Int) -> String? {
        SpecText.basic("meamed", n: n, f: f, honestMajority: true)
    }

    public func perCoordinateBound(n: Int, f: Int) -> Double? { n >= 2 * f + 1 && f >= 0 ? 2 : nil }

    public func aggregate(_ context: AggregationContext, state: inout AggregatorState,
                          into output: UnsafeMutableBufferPointer<Float>) -> AggregationDecision {
        var decision = AggregationDecision()
        decision.coordinatesUsed = CoordinateWise.run(ClosestToMedianKernel(keep: context.n - max(0, context.f)),
                                                      on: context.messages, executor: context.executor, into: output)
        return decision
    }
}
