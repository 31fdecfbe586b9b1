import DesgdRobust
import DesgdSimulation

extension AuditReport {
    /// Drift beside accuracy (docs/design.md §12): per rule, the drift over rounds; the collapse onsets
    /// of the recorded run with the recorded rule's drift before each; and the flags where windowed
    /// persistence stayed high while λ̂ looked harmless.
    public struct DriftSection: Sendable, Codable, Equatable {
        /// W of the trace (nil in traces of format 1.0, which have no drift).
        public var window: Int?
        /// How the trace sums recent deviations (FORMAT.md §5.4): a window of the last W, or
        /// exponential weights of horizon W (nil without drift).
        public var recent: RecentDrift? = nil
        public var criteria: AuditDrift.Criteria
        public var series: [DriftSeries]
        public var onsets: [CollapseOnset]
        public var flags: [PersistenceFlag]
        /// Why the compared rules have no drift, when replay left it out (memory budget).
        public var note: String? = nil
    }

    /// One rule's drift after each round it has drift for. Group figures are the mean over the
    /// groups aggregated so far of each group's latest value (in DeSGD one group per class, so the
    /// line does not jump with the class of the round).
    public struct DriftSeries: Sendable, Codable, Equatable {
        public var rule: String
        public var points: [DriftPoint]
    }

    public struct DriftPoint: Sendable, Codable, Equatable {
        public var round: Int
        public var windowed: Double
        public var windowPersistence: Double?
        public var cumulative: Double
        public var cumulativePersistence: Double?
        public var modelDisplacement: Double?
        public var modelRelative: Double?
        public var modelPersistence: Double?
    }

    /// A drop of accuracy by more than `criteria.collapseDrop` points between two evaluations, with
    /// the recorded rule's drift at the evaluation before the drop.
    public struct CollapseOnset: Sendable, Codable, Equatable {
        /// The evaluation that saw the drop, and the one before it.
        public var round: Int
        public var previousRound: Int
        public var accuracyBefore: Double
        public var accuracyAfter: Double
        public var windowPersistence: Double?
        public var windowed: Double?
        public var modelRelative: Double?
        public var modelDisplacement: Double?
        /// The first round of the run of rounds, ending at `previousRound`, during which windowed
        /// persistence stayed at or above the threshold; nil when it was below it at `previousRound`.
        public var persistentSince: Int?
        /// `round − persistentSince`: by how many rounds the drift's rise led the collapse.
        public var leadRounds: Int?
    }

    /// A group's run of at least W consecutive aggregations with windowed persistence at or above
    /// the threshold while λ̂ looked harmless (at most 1 and not above the rule's bound).
    public struct PersistenceFlag: Sendable, Codable, Equatable {
        public var rule: String
        public var classIndex: Int
        public var firstRound: Int
        public var lastRound: Int
        public var aggregations: Int
        public var meanWindowPersistence: Double
        public var maxLambda: Double?
    }
}

/// Builds the audit's drift section from its rows (every aggregation's recorded or replayed drift)
/// and its accuracy series.
public enum AuditDrift {
    /// What counts as a collapse and as persistent drift.
    public struct Criteria: Sendable, Codable, Equatable {
        /// Accuracy points (percent) lost between two evaluations that make a collapse onset.
        public var collapseDrop: Double
        /// Windowed persistence at or above this is "persistent": independent deviations give about
        /// 1/√W (0.32 for W = 10), deviations that keep one direction 1.
        public var persistenceThreshold: Double

        public init(collapseDrop: Double = 10, persistenceThreshold: Double = 0.7) {
            self.collapseDrop = collapseDrop
            self.persistenceThreshold = persistenceThreshold
        }
    }

    /// The section, or nil when no row has drift (traces of format 1.0).
    public static func section(_ r: AuditReport, window: Int?, recent: RecentDrift?,
        criteria: Criteria) -> AuditReport.DriftSection? {
        guard r.rows.contains(where: { $0.cells.contains { $0?.drift != nil } }) else { return nil }
        let series = r.rules.indices.map { k in
            AuditReport.DriftSeries(rule: r.rules[k], points: points(r, column: k)) }
        let onsets = collapseOnsets(r.accuracy, criteria: criteria).map { onset in
            describe(onset, series: series.first?.points ?? [], threshold: criteria.persistenceThreshold)
        }
        let flags = r.rules.indices.flatMap { k in
            persistenceFlags(r, column: k, minimumRun: window ?? DriftTracker.defaultWindow,
                threshold: criteria.persistenceThreshold)
        }
        return AuditReport.DriftSection(window: window, recent: window == nil ? nil : recent, criteria: criteria,
                                        series: series,
                                        onsets: onsets, flags: flags)
    }

    /// One point per round with drift: group figures averaged over each group's latest value.
    static func points(_ r: AuditReport, column k: Int) -> [AuditReport.DriftPoint] {
        var latest: [Int: GroupDrift] = [:]
        var out: [AuditReport.DriftPoint] = []
        var i = 0
        while i < r.rows.count {
            let round = r.rows[i].round
            var model: ModelDrift?
            var any = false
            while i < r.rows.count && r.rows[i].round == round {
                if k < r.rows[i].cells.count, let c = r.rows[i].cells[k], let g = c.drift {
                    latest[r.rows[i].classIndex] = g
                    model = c.modelDrift ?? model
                    any = true
                }
                i += 1
            }
            guard any else { continue }
            let groups = latest.keys.sorted().map { latest[$0]! }
            func mean(_ v: [Double?]) -> Double? {
                let d = v.compactMap { $0 }
                return d.isEmpty ? nil : d.reduce(0, +) / Double(d.count)
            }
            out.append(.init(round: round, windowed: mean(groups.map(\.windowed)) ?? 0,
                             windowPersistence: mean(groups.map(\.windowPersistence)),
                             cumulative: mean(groups.map(\.cumulative)) ?? 0,
                             cumulativePersistence: mean(groups.map(\.cumulativePersistence)),
                             modelDisplacement: model?.displacement,
                             modelRelative: model?.relative, modelPersistence: model?.persistence))
        }
        return out
    }

    /// Consecutive evaluations whose accuracy fell by more than `collapseDrop` points.
    static func collapseOnsets(_ accuracy: [AuditReport.AccuracyPoint],
        criteria: Criteria) -> [(AuditReport.AccuracyPoint, AuditReport.AccuracyPoint)] {
        var onsets: [(AuditReport.AccuracyPoint, AuditReport.AccuracyPoint)] = []
        for i in accuracy.indices.dropFirst() {
            let drop: Double = 100 * (accuracy[i - 1].accuracy - accuracy[i].accuracy)
            if drop > criteria.collapseDrop { onsets.append((accuracy[i - 1], accuracy[i])) }
        }
        return onsets
    }

    static func describe(_ onset: (AuditReport.AccuracyPoint, AuditReport.AccuracyPoint),
                         series: [AuditReport.DriftPoint],
                         threshold: Double) -> AuditReport.CollapseOnset {
        let (before, after) = onset
        var result = AuditReport.CollapseOnset(round: after.round, previousRound: before.round,
                                               accuracyBefore: before.accuracy,
                                               accuracyAfter: after.accuracy)
        guard var j = series.lastIndex(where: { $0.round <= before.round }) else { return result }
        let p = series[j]
        result.windowPersistence = p.windowPersistence
        result.windowed = p.windowed
        result.modelRelative = p.modelRelative
        result.modelDisplacement = p.modelDisplacement
        guard let v = p.windowPersistence, v >= threshold else { return result }
        while j > 0, let w = series[j - 1].windowPersistence, w >= threshold { j -= 1 }
        result.persistentSince = series[j].round
        result.leadRounds = after.round - series[j].round
        return result
    }

    /// Per group, runs of at least `minimumRun` aggregations with windowed persistence ≥ threshold
    /// and λ̂ harmless (≤ 1, not above the bound).
    static func persistenceFlags(_ r: AuditReport, column k: Int, minimumRun: Int,
        threshold: Double) -> [AuditReport.PersistenceFlag] {
        struct Run { var first: Int; var last: Int; var count: Int; var persistence: Double; var maxLambda: Double? }
        var open: [Int: Run] = [:]
        var flags: [AuditReport.PersistenceFlag] = []
        func close(_ c: Int) {
            if let run = open.removeValue(forKey: c), run.count >= minimumRun {
                flags.append(.init(rule: r.rules[k], classIndex: c, firstRound: run.first, lastRound: run.last,
                                   aggregations: run.count,
                                   meanWindowPersistence: run.persistence / Double(run.count),
                                   maxLambda: run.maxLambda))
            }
        }
        for row in r.rows {
            guard k < row.cells.count, let cell = row.cells[k], let g = cell.drift, let p = g.windowPersistence else {
                close(row.classIndex)
                continue
            }
            let harmless = !cell.exceedsBound && (cell.lambda ?? 0) <= 1
            guard p >= threshold && harmless else { close(row.classIndex); continue }
            var run = open[row.classIndex]
                ?? Run(first: row.round, last: row.round, count: 0, persistence: 0, maxLambda: nil)
            run.last = row.round
            run.count += 1
            run.persistence += p
            if let l = cell.lambda { run.maxLambda = max(run.maxLambda ?? l, l) }
            open[row.classIndex] = run
        }
        for c in open.keys.sorted() { close(c) }
        return flags.sorted { ($0.firstRound, $0.classIndex) < ($1.firstRound, $1.classIndex) }
    }
}

extension AuditReport.DriftSection {
    /// What a group's recent drift covers, for a reader: "last 10 aggregations", or the exponential
    /// weights of format 1.4.
    public var recentDescription: String {
        let w = window.map(String.init) ?? "W"
        return recent == .exponential ? "exponentially weighted aggregations (λ = 1 − 1/W per later one, W = \(w))"
            : "last \(w) aggregations"
    }

    /// The recent persistence of independent deviations: 1/√W, or 1/√(2W − 1) with exponential weights.
    public var independentLevelText: String { recent == .exponential ? "1/√(2W−1)" : "1/√W" }
}
