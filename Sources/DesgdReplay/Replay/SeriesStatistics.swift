/// Mean, percentiles and maximum of a series (values that are undefined, e.g. λ̂ with Δ_S = 0,
/// are left out and counted in `undefined`). Percentiles are nearest-rank on the sorted values.
public struct SeriesStatistics: Sendable, Codable, Equatable {
    /// Finite values: those the statistics are taken over.
    public var count: Int
    /// Undefined values (a ratio with a zero denominator).
    public var undefined: Int
    /// NaN or ±∞ values: flagged per row ("non-finite") and left out of every statistic below, so
    /// that one NaN neither turns the mean into NaN nor breaks the order the percentiles need.
    public var nonFinite: Int
    public var mean: Double?
    public var p50: Double?
    public var p90: Double?
    public var p99: Double?
    public var max: Double?

    public init(_ values: [Double?]) {
        let present = values.compactMap { $0 }
        let v = present.filter(\.isFinite).sorted()
        count = v.count
        undefined = values.count - present.count
        nonFinite = present.count - v.count
        func rank(_ p: Double) -> Double? {
            v.isEmpty ? nil : v[Swift.min(v.count - 1, Swift.max(0, Int((p * Double(v.count)).rounded(.up)) - 1))]
        }
        mean = v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        p50 = rank(0.5)
        p90 = rank(0.9)
        p99 = rank(0.99)
        max = v.last
    }
}

/// The order of worst-round lists (replay and audit): rows with a non-finite metric first (NaN or
/// ±∞: the most suspicious; among them by position), then the largest λ̂ (undefined λ̂ after every
/// defined one), then the largest gap. A total order even with NaN, which compares false with
/// everything and would otherwise make the sort's result depend on the input order.
public enum WorstFirst {
    /// Whether a comes before b; nil when they tie (the caller orders ties by position).
    public static func precedes(_ a: DeviationMetricsKey, _ b: DeviationMetricsKey) -> Bool? {
        if a.nonFinite != b.nonFinite { return a.nonFinite }
        if a.nonFinite { return nil }
        let la = a.lambda ?? -.infinity, lb = b.lambda ?? -.infinity
        if la != lb { return la > lb }
        if a.gap != b.gap { return a.gap > b.gap }
        return nil
    }
}

/// What ``WorstFirst`` orders by.
public struct DeviationMetricsKey: Sendable {
    public var gap: Double
    public var lambda: Double?
    public var nonFinite: Bool
    public init(gap: Double, lambda: Double?, nonFinite: Bool) {
        self.gap = gap
        self.lambda = lambda
        self.nonFinite = nonFinite
    }
}
