import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace

/// The drift metrics (FORMAT.md §5.4) of replayed rules, open loop: one ``DriftTracker`` per rule,
/// fed the rule's outputs on the recorded inputs round after round, in round order (replay emits
/// rounds in order whatever its thread count, so the result does not depend on it). The rule's
/// update is computed by the tracker's own server step from the rule's outputs, from a zero
/// buffer at the first replayed round, as is the honest shadow's; the drift therefore measures
/// what the rule's deviations alone would add up to along the recorded run (not a re-run of the
/// training, which would need new gradients).
///
/// Drift accumulates over consecutive rounds: from the first replayed round without vectors on
/// (sampled or decisions traces), the replay reports none. The window is the trace's (the
/// recorder's W), so the recorded rule replayed from round 0 gives the recorded drift.
struct ReplayDrift {
    var trackers: [DriftTracker]

    /// The most memory the trackers of one replay may take: each rule needs about (W + 3)·d floats
    /// per group with a window (235 MB on the paper's LeNet) and 5·d with exponential weights (the
    /// cumulative sum in binary64, R_k, the two server steps' buffers: 86 MB), so `--agg all` on
    /// LeNet fits only the latter; beyond this budget replay reports no drift and says why.
    static let memoryBudget = 2 << 30

    /// The trackers, or why there are none (over the memory budget).
    /// The window the trackers use: the trace's, within 1…``DriftTracker/maxWindow``.
    static func window(_ reader: TraceReader) -> Int {
        min(max(reader.header.driftWindow ?? DriftTracker.defaultWindow, 1), DriftTracker.maxWindow)
    }

    /// The bytes the budget is checked against (``make(reader:rules:budget:)``).
    static func budgetedBytes(reader: TraceReader, rules: Int) -> Int {
        let window = window(reader)
        let groups = max(1, reader.header.groups.count)
        let floatsPerGroup = reader.header.effectiveDriftRecent == .exponential ? 5 : window + 3
        var bytes = 4
        for factor in [rules, groups, floatsPerGroup, max(1, reader.parameterCount)] {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: factor)
            bytes = overflow ? Int.max : product
        }
        return bytes
    }

    /// The bytes the trackers of `rules` rules take when they fit the budget (0 when replay will
    /// report no drift): what the replay's memory estimate counts.
    static func memoryEstimate(reader: TraceReader, rules: Int, budget: Int = memoryBudget) -> UInt64 {
        guard budgetedBytes(reader: reader, rules: rules) <= budget else { return 0 }
        let vectors = MemoryArithmetic.mul(MemoryArithmetic.u(rules),
                                           reader.driftTrackerVectors(window: window(reader)))
        return MemoryArithmetic.mul(reader.vectorBytes, vectors)
    }

    static func make(reader: TraceReader, rules: Int, budget: Int = memoryBudget) -> Result<ReplayDrift,
        DriftUnavailable> {
        let window = window(reader)
        let groups = max(1, reader.header.groups.count)
        let floatsPerGroup = reader.header.effectiveDriftRecent == .exponential ? 5 : window + 3
        let bytes = budgetedBytes(reader: reader, rules: rules)
        guard bytes <= budget else {
            return .failure(DriftUnavailable(reason: "drift not computed: \(rules) rules × \(groups) groups × "
                + "\(floatsPerGroup) × d floats would take "
                + "\(bytes / (1 << 20)) MB (budget \(budget / (1 << 20)) MB); replay fewer rules at once for drift"))
        }
        return .success(ReplayDrift(trackers: (0..<rules).map { _ in
            DriftTracker(config: reader.header.config, dimension: reader.parameterCount, window: window,
                         recent: reader.header.effectiveDriftRecent)
        }))
    }

    struct DriftUnavailable: Error { var reason: String }

    /// Sets rule `k`'s drift on its rows of one round (one row and one output per aggregation).
    func add(_ input: RoundInputs, rule k: Int, rows: [ReplayRow], outputs: [[Float]]) -> [ReplayRow] {
        let (groups, model) = trackers[k].add(input.aggregations.indices.map {
            DriftTracker.Aggregation(classIndex: input.aggregations[$0].classIndex, output: outputs[$0],
                                     honestMean: input.aggregations[$0].honest.mean)
        })
        var rows = rows
        for i in rows.indices {
            rows[i].metrics.drift = groups[i]
            rows[i].modelDrift = model
        }
        return rows
    }
}
