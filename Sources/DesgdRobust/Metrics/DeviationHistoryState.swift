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
        /// The last min(k, W) deviations, oldest first (binary32, d values each), and their norms.
        /// Oldest first is the order the window's sum is taken in, so the ring's slot positions
        /// (which differ between a restored and an uninterrupted history) change nothing.
        public var window: [[Float]]
        public var windowNorms: [Double]

        public init(count: Int, sumOfNorms: Double, cumulativeSum: [Double], window: [[Float]], windowNorms: [Double]) {
            self.count = count
            self.sumOfNorms = sumOfNorms
            self.cumulativeSum = cumulativeSum
            self.window = window
            self.windowNorms = windowNorms
        }
    }

    public func captureState() -> State {
        let d = dimension
        let slots = (0..<filled).map { j in (next - filled + j + windowLength) % windowLength }
        return State(count: count, sumOfNorms: sumOfNorms, cumulativeSum: cumulativeSum,
                     window: slots.map { s in Array(ring[s * d ..< (s + 1) * d]) }, windowNorms: slots.map { ringNorms[$0] })
    }

    /// Restores `state`; false, and nothing changed, when its shapes do not fit this history
    /// (a window longer than W or than k, vectors of another length).
    public func restore(_ state: State) -> Bool {
        let d = dimension
        guard state.count >= 0, state.window.count <= windowLength, state.window.count <= state.count,
              state.window.count == state.windowNorms.count, state.cumulativeSum.count == d,
              state.window.allSatisfy({ $0.count == d }) else { return false }
        count = state.count
        sumOfNorms = state.sumOfNorms
        cumulativeSum = state.cumulativeSum
        for (j, term) in state.window.enumerated() {
            ring.withUnsafeMutableBufferPointer { r in _ = UnsafeMutableBufferPointer(rebasing: r[j * d ..< (j + 1) * d]).update(fromContentsOf: term) }
            ringNorms[j] = state.windowNorms[j]
        }
        filled = state.window.count
        next = filled % windowLength
        return true
    }
}
