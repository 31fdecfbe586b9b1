import DesgdReplay
import DesgdRobust
import DesgdTrace

/// Everything `desgd-audit` reports about one trace, as plain data: the terminal, CSV, JSON and
/// HTML outputs are renderings of it.
public struct AuditReport: Sendable, Codable, Equatable {
    /// The run in brief.
    public struct Run: Sendable, Codable, Equatable {
        public var trace: String
        public var program: String
        public var formatVersion: String
        public var mode: String
        public var aggregator: String
        public var attack: String
        public var model: String
        public var parameterCount: Int
        public var honestWorkers: Int
        public var byzantineWorkers: Int
        public var declaredF: Int
        public var configuredRounds: Int
        public var seed: UInt64
        public var backend: String
        /// The engine's numerics version that computed the rounds (1 for traces before format 1.2).
        public var numerics: Int
        public var recording: String
        public var datasetDigest: String
        /// A fork's origin (format 1.3): its rounds start at `fork.at`; nil otherwise (and absent
        /// from the JSON).
        public var fork: TraceHeader.ForkInfo? = nil
        /// A live federation's engine (format 1.5): who carried and computed the messages; nil for
        /// desgd's simulator.
        public var engine: LiveEngine? = nil
    }

    /// Whether the trace is whole: the digest chain, how the file ended, which rounds are missing.
    public struct Integrity: Sendable, Codable, Equatable {
        public var chainHolds: Bool
        public var verifiedRecords: Int
        public var totalRecords: Int
        /// The first record that fails the chain check, as a sentence.
        public var failure: String?
        public var failedRound: Int?
        public var lastDigest: String
        /// Index and footer present (the recorder finished).
        public var finished: Bool
        /// Stopped before its configured number of rounds (Ctrl-C).
        public var interrupted: Bool
        /// How a scan ended, when there was no valid footer.
        public var note: String?
        public var recordedRounds: Int
        /// Configured rounds absent from the file (killed, interrupted or damaged recorder).
        public var missingRounds: Int
        /// Who signed how much of the file (traces/FORMAT.md §3.6); nil when not verified.
        public var signatures: SignatureReport? = nil
        /// A live federation's trace: every recorded message checked against its client's registered
        /// key (FORMAT.md §5.3.1); nil for a simulated run.
        public var clientMessages: ClientMessageReport? = nil
        /// Records of types this reader does not know (a later minor version), skipped as
        /// traces/FORMAT.md §3.2 says; nil when there are none.
        public var skippedRecords: [SkippedRecord]? = nil
    }

    public struct AccuracyPoint: Sendable, Codable, Equatable {
        public var round: Int
        public var accuracy: Double
        public var loss: Double
    }

    /// One rule's figures on one aggregation.
    public struct Cell: Sendable, Codable, Equatable {
        public var gap: Double
        public var lambda: Double?
        public var kappa: Double?
        public var cosine: Double?
        /// Weight given to Byzantine inputs, or share of coordinates taken from them.
        public var byzantineShare: Double?
        /// ‖F(R) − recorded aggregate‖ (0 for the recorded rule).
        public var distanceToRecorded: Double?
        /// λ̂ above the rule's proven bound.
        public var exceedsBound: Bool
        /// Some metric is NaN or ±∞ (``DeviationMetrics/isNonFinite``).
        public var nonFinite: Bool = false
        /// A compared stateful rule: where its state came from (nil otherwise); `.notCarried` marks
        /// a counterfactual that could not be carried across rounds recorded without vectors.
        public var state: ReplayState? = nil

        /// The group's drift up to this aggregation, and the model's after the round (FORMAT.md §5.4;
        /// absent in traces of format 1.0 and in replays past a round without vectors).
        public var drift: GroupDrift? = nil
        public var modelDrift: ModelDrift? = nil
        /// With `--adversary worst`: the worst case the search found for this rule on this
        /// aggregation's honest messages (``WorstCaseSearch``).
        public var worstCase: WorstCase? = nil

        var worstKey: DeviationMetricsKey { DeviationMetricsKey(gap: gap, lambda: lambda, nonFinite: nonFinite) }
    }

    /// One aggregation of one round: the recorded rule's cell first, then one per compared rule
    /// (nil when the round has no vectors to replay).
    public struct Row: Sendable, Codable, Equatable {
        public var round: Int
        public var classIndex: Int
        public var honestDiameter: Double
        public var honestVariance: Double
        public var cells: [Cell?]
    }

    /// One rule over all rows.
    public struct RuleSummary: Sendable, Codable, Equatable {
        public var rule: String
        /// The rule's proven λ (for the first group; groups of different sizes may differ).
        public var bound: Double?
        public var gap: SeriesStatistics
        public var lambda: SeriesStatistics
        public var kappa: SeriesStatistics
        public var byzantineShare: SeriesStatistics
        public var flaggedRounds: [Int]
        /// Rounds with a non-finite metric (left out of the statistics above).
        public var nonFiniteRounds: [Int] = []
        /// Aggregations whose counterfactual state could not be carried (``ReplayState/notCarried``).
        public var stateNotCarried: Int = 0
        /// With `--adversary worst`: the rule's worst cases, summarised.
        public var worstCase: WorstCaseSummary? = nil
    }

    /// The rounds the report covers (`desgd-audit --rounds`), `from..<to`, and the rounds the trace
    /// holds: every part but the integrity covers only the selection.
    public struct RoundsCovered: Sendable, Codable, Equatable {
        public var from: Int
        public var to: Int
        public var traceFrom: Int
        public var traceTo: Int

        public init(from: Int, to: Int, traceFrom: Int, traceTo: Int) {
            (self.from, self.to, self.traceFrom, self.traceTo) = (from, to, traceFrom, traceTo)
        }

        /// Fewer rounds than the trace holds.
        public var isSelection: Bool { from != traceFrom || to != traceTo }

        /// "100..<200 of 0..<3000", or "0..<3000 (all)".
        public var description: String {
            isSelection ? "\(from)..<\(to) of \(traceFrom)..<\(traceTo)" : "\(from)..<\(to) (all)"
        }
    }

    public var run: Run
    /// The rounds covered (``Audit/report`` always sets it; nil: all of them).
    public var rounds: RoundsCovered? = nil
    public var integrity: Integrity
    public var accuracy: [AccuracyPoint]
    /// Column names: the recorded rule's canonical spec, then the compared rules'.
    public var rules: [String]
    public var rows: [Row]
    public var summaries: [RuleSummary]
    /// Indices into `rows` in the recorded rule's ``WorstFirst`` order (non-finite metrics, then the
    /// largest λ̂, then the largest gap), at most 10.
    public var worstRows: [Int]
    /// Rules of `--compare` that could not run, with the reason.
    public var skipped: [String]
    /// Drift beside accuracy: series per rule, collapse onsets, persistence flags (``AuditDrift``).
    public var drift: DriftSection? = nil
}
