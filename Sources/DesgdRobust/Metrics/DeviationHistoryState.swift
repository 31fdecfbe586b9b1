/// What a ``DeviationHistory`` carries from one aggregation of its group to the next, in a form
/// that does not depend on where its ring buffer happens to stand: a state checkpoint stores it
/// (FORMAT.md §5.5), and a history restored from it continues bit for bit.
extension DeviationHistory {
    public struct State: Sendable, Equatable {
        /// k: the group's aggregations so far.
        public var count: Int
        /// Σ‖e_s‖ over all k deviations.
        public var sumOfNorms: Double
        /// Σ e_s over all k deviations (binary64, d values).
        public var cumulativeSum: [Double]
        /// ``RecentDrift/window``: the last min(k, W) deviations, oldest first (binary32, d values
        /// each), and their norms; empty for exponential weights. Oldest first is the order the
        /// window's sum is taken in, so the ring's slot positions (which differ between a restored
        /// and an uninterrupted history) change nothing.
        public var window: [[Float]]
        public var windowNorms: [Double]
        /// ``RecentDrift/exponential``: R_k (binary32, d values) and N_k; empty and 0 for a window.
        public var recentSum: [Float]
        public var recentNorms: Double

        public init(count: Int, sumOfNorms: Double, cumulativeSum: [Double], window: [[Float]] = [],
                    windowNorms: [Double] = [],
                    recentSum: [Float] = [], recentNorms: Double = 0) {
            self.count = count
            self.sumOfNorms = sumOfNorms
            self.cumulativeSum = cumulativeSum
            self.window = window
            self.windowNorms = windowNorms
            self.recentSum = recentSum
            self.recentNorms = recentNorms
        }

        public static func == (a: State, b: State) -> Bool {
            a.count == b.count && a.sumOfNorms.bitPattern == b.sumOfNorms.bitPattern
                && a.cumulativeSum == b.cumulativeSum
                && a.window == b.window && a.windowNorms == b.windowNorms
                    && a.recentSum.map(\.bitPattern) == b.recentSum.map(\.bitPattern)
                && a.recentNorms.bitPattern == b.recentNorms.bitPattern
        }
    }

    public func captureState() -> State {
        let d = dimension
        let slots = (0..<filled).map { j in (next - filled + j + windowLength) % windowLength }
        return State(count: count, sumOfNorms: sumOfNorms, cumulativeSum: cumulativeSum,
                     window: slots.map { s in Array(ring[s * d ..< (s + 1) * d]) }, windowNorms: slots.map {
                         ringNorms[$0] },
                     recentSum: recentSum, recentNorms: recentNorms)
    }

    /// Restores `state`; false, and nothing changed, when its shapes do not fit this history
    /// (a window longer than W or than k, vectors of another length, the other kind of recent sum).
    public func restore(_ state: State) -> Bool {
        let d = dimension
        guard state.count >= 0, state.window.count <= state.count, state.window.count == state.windowNorms.count,
              state.cumulativeSum.count == d, state.window.allSatisfy({ $0.count == d }) else { return false }
        switch recent {
        case .window:
            guard state.window.count <= windowLength, state.recentSum.isEmpty, state.recentNorms == 0 else {
                return false
            }
        case .exponential:
            guard state.window.isEmpty, state.recentSum.count == d else { return false }
        }
        count = state.count
        sumOfNorms = state.sumOfNorms
        cumulativeSum = state.cumulativeSum
        for (j, term) in state.window.enumerated() {
            ring.withUnsafeMutableBufferPointer { r in
                _ = UnsafeMutableBufferPointer(rebasing: r[j * d ..< (j + 1) * d]).update(fromContentsOf: term) }
            ringNorms[j] = state.windowNorms[j]
        }
        filled = state.window.count
        next = windowLength > 0 ? filled % windowLength : 0
        if recent == .exponential {
            recentSum = state.recentSum
            recentNorms = state.recentNorms
        }
        return true
    }
}
