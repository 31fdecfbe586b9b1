import DesgdNumerics
import DesgdRobust

/// The drift metrics of a run (docs/design.md §12, FORMAT.md §5.4), fed one round at a time in order:
/// a ``DeviationHistory`` per aggregation group, and the *honest shadow*, a ``ServerStep`` (the one
/// implementation of eq. 7, 14–16) applied to the honest means instead of the aggregates, with its
/// own class-momentum buffer and server momentum.
///
/// The recorder feeds it every round, with or without stored vectors (so a `decisions` trace
/// carries the same drift as a full one); replay feeds it a replayed rule's outputs, open loop,
/// and lets it compute the rule's own update with a second ``ServerStep``.
///
/// Memory per group: d binary64 for the cumulative sum, plus d binary64 for exponentially weighted
/// recent drift (``RecentDrift/exponential``, the default) or W·d binary32 for a window (traces of
/// formats 1.1–1.3); plus the shadow's buffer (C·d binary32) and 2·d binary64 for the model:
/// independent of the number of rounds. On the paper setup (LeNet, d = 431 080, C = 10 groups,
/// W = 10) about 90 MB exponential, 250 MB with windows. Time per aggregation: O(C·d), plus O(W·d)
/// with a window. Sums are taken in binary64 in index order (``VectorMath`` accumulation), so the
/// result is independent of threads.
public final class DriftTracker {
    /// W = 10 aggregations of a group. Under the paper's schedule (one class per round, C = 10) that
    /// is the last 100 rounds: ten times the horizon 1/(1−β) of the class momenta (so the overlap of
    /// consecutive messages' momenta, 0.9¹⁰ ≈ 0.35, does not dominate), short enough to follow the
    /// paper's collapses (hundreds of rounds), and with 1/√10 ≈ 0.32 for independent deviations far
    /// enough from 1 to tell persistent ones apart. Memory: 10·d floats per group (17 MB for LeNet).
    public static let defaultWindow = 10
    /// The largest W accepted: 1000·d floats per group.
    public static let maxWindow = 1000

    public let window: Int
    /// How recent deviations are summed: the trace's (``RecentDrift``).
    public let recent: RecentDrift
    public let dimension: Int
    let learningRate: Double
    var groups: [Int: DeviationHistory] = [:]
    let workspace: DeviationHistory.Workspace
    let shadow: ServerStep
    /// Computes the real update when the caller does not know it (replay).
    var replayedStep: ServerStep?
    var scratch: [Float]
    var differenceSum: [Double]
    var shadowSum: [Double]
    var differenceNorms = 0.0
    var rounds = 0
    let config: SimulationConfig

    /// How a new recording sums recent deviations.
    public static let defaultRecent = RecentDrift.exponential

    public init(config: SimulationConfig, dimension d: Int, window: Int = DriftTracker.defaultWindow,
        recent: RecentDrift) {
        precondition(window >= 1 && window <= DriftTracker.maxWindow)
        self.config = config
        self.window = window
        self.recent = recent
        dimension = d
        learningRate = Double(config.learningRate)
        shadow = ServerStep(config: config, dimension: d)
        workspace = DeviationHistory.Workspace(dimension: d)
        scratch = [Float](repeating: 0, count: d)
        differenceSum = [Double](repeating: 0, count: d)
        shadowSum = [Double](repeating: 0, count: d)
    }

    /// One aggregation of a round: its group (class, or −1), the output F(R) and the honest mean x̄_S.
    public struct Aggregation {
        public var classIndex: Int
        public var output: [Float]
        public var honestMean: [Float]
        public init(classIndex: Int, output: [Float], honestMean: [Float]) {
            self.classIndex = classIndex
            self.output = output
            self.honestMean = honestMean
        }
    }

    /// Adds one round: its aggregations in the order performed and, when known, the real update
    /// direction u_t the server applied (the engine's); without it, u_t is computed from the
    /// outputs by this tracker's own ``ServerStep`` (replay, open loop). Returns each
    /// aggregation's group drift, in order, and the model drift after the round.
    public func add(_ aggregations: [Aggregation], update: [Float]? = nil) -> (groups: [GroupDrift],
        model: ModelDrift) {
        let d = dimension
        let groupDrift = aggregations.map { a -> GroupDrift in
            let history = groups[a.classIndex]
                ?? DeviationHistory(dimension: d, windowLength: window, recent: recent, workspace: workspace)
            groups[a.classIndex] = history
            return a.output.withUnsafeBufferPointer { o in
                a.honestMean.withUnsafeBufferPointer { history.add(output: o, honestMean: $0) } }
        }
        // The server step moves no model here: it is applied to a zero vector for the update alone.
        func step(_ server: ServerStep, _ inputs: [(classIndex: Int, aggregate: [Float])]) -> [Float] {
            scratch.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            return server.apply(aggregates: inputs, to: &scratch).update
        }
        let real: [Float]
        if let update {
            real = update
        } else {
            let server = replayedStep ?? ServerStep(config: config, dimension: d)
            replayedStep = server
            real = step(server, aggregations.map { ($0.classIndex, $0.output) })
        }
        let honest = step(shadow, aggregations.map { ($0.classIndex, $0.honestMean) })
        precondition(real.count == d && honest.count == d)
        let eta = learningRate
        let stepNorm = real.withUnsafeBufferPointer { r in
            honest.withUnsafeBufferPointer { VectorMath.distance64(r, $0) } }
        real.withUnsafeBufferPointer { r in
            honest.withUnsafeBufferPointer { h in
                differenceSum.withUnsafeMutableBufferPointer { VectorMath.accumulateDifference(r, h, into: $0) }
                shadowSum.withUnsafeMutableBufferPointer { VectorMath.accumulate(h, into: $0) }
            }
        }
        differenceNorms += stepNorm
        rounds += 1
        let difference = differenceSum.withUnsafeBufferPointer { VectorMath.norm($0) }
        let shadowNorm = shadowSum.withUnsafeBufferPointer { VectorMath.norm($0) }
        let model = ModelDrift(rounds: rounds, displacement: eta * difference,
                               persistence: DriftRatio.ratio(difference, differenceNorms),
                               relative: DriftRatio.ratio(difference, shadowNorm), shadowDisplacement: eta * shadowNorm,
                               step: eta * stepNorm)
        return (groupDrift, model)
    }
}
