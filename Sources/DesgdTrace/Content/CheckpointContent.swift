import DesgdNumerics
import DesgdRobust
import DesgdSimulation

/// A state checkpoint's JSON (FORMAT.md §5.5): the complete state of the run at the start of
/// `round` (``SimulationState``) and the recorder's drift state (``DriftTrackerState``).
public struct CheckpointContent: RecordContent, Equatable {
    /// One momentum: whose (worker, class; class −1 for a worker's whole data) and its vector.
    public struct Row: Sendable, Equatable, Codable {
        public var worker: Int
        public var classIndex: Int
        public var vector: Int
        enum CodingKeys: String, CodingKey { case worker, classIndex = "class", vector }
    }

    /// A binary64 vector of d values as two vectors of d 32-bit words (the vector section holds
    /// binary32 bit patterns; its coding is lossless for any pattern): the high and the low word of
    /// each value.
    public struct Wide: Sendable, Equatable, Codable {
        public var high: Int
        public var low: Int
    }

    /// One aggregation group's drift history (``DeviationHistory/State``): with the header's
    /// ``RecentDrift/window``, the window's terms; with ``RecentDrift/exponential`` (format 1.4),
    /// the recent sum R_k and N_k instead.
    public struct DriftGroup: Sendable, Equatable, Codable {
        public var classIndex: Int
        public var count: Int
        public var sumOfNorms: Double
        public var cumulativeSum: Wide
        /// The last min(count, W) deviations, oldest first, and their norms.
        public var window: [Int]?
        public var windowNorms: [Double]?
        /// R_k = Σ λ^(k−s)·e_s (binary32) and N_k = Σ λ^(k−s)·‖e_s‖.
        public var recentSum: Int?
        public var recentNorms: Double?
        enum CodingKeys: String, CodingKey {
            case classIndex = "class", count, sumOfNorms, cumulativeSum, window, windowNorms, recentSum, recentNorms
        }
    }

    /// The drift tracker's state (FORMAT.md §5.4): the honest shadow and the sums.
    public struct Drift: Sendable, Equatable, Codable {
        public var rounds: Int
        public var differenceNorms: Double
        public var differenceSum: Wide
        public var shadowSum: Wide
        public var shadowClassMomenta: [Int]
        public var shadowServerMomentum: Int?
        public var groups: [DriftGroup]
    }

    public var round: Int
    public var parameters: Int
    public var classMomenta: [Int]
    public var serverMomentum: Int?
    public var honestMomenta: [Row]
    public var byzantineMomenta: [Row]
    public var aggregatorStates: [StoredState]
    public var attackStates: [StoredState]
    /// Absent exactly when the header has no `driftWindow` (the recorder tracks no drift).
    public var drift: Drift?
    public var vectors: [VectorEntry]
}
