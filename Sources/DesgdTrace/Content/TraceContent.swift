import DesgdNumerics
import DesgdRobust
import DesgdSimulation

/// What a recorder stores of each round (`--record`).
public enum RecordingMode: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Every round with all its vectors (the default).
    case full
    /// Rounds t with t mod K = 0 in full, the others as decisions.
    case sampled(every: Int)
    /// No vectors in round records: class sets, senders, decisions, scalar state, metrics,
    /// evaluations. Keyframes still hold the model.
    case decisions

    public var description: String {
        switch self {
        case .full: "full"
        case .sampled(let k): "sampled:\(k)"
        case .decisions: "decisions"
        }
    }

    /// Parses `full`, `decisions` or `sampled:K` (K ≥ 1).
    public static func parse(_ text: String) throws(TraceError) -> RecordingMode {
        switch text {
        case "full": return .full
        case "decisions": return .decisions
        default:
            if text.hasPrefix("sampled:"), let k = Int(text.dropFirst(8)), k >= 1 { return .sampled(every: k) }
            throw TraceError.usage("unknown recording mode '\(DisplayText.quoted(text))': use full,"
                + " decisions or sampled:K with K ≥ 1")
        }
    }

    /// Whether round t is stored with its vectors.
    public func storesVectors(round t: Int) -> Bool {
        switch self {
        case .full: true
        case .sampled(let k): t % k == 0
        case .decisions: false
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try RecordingMode.parse(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: error.description))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// The header record's JSON (FORMAT.md §5.1): everything needed to re-run the training from scratch.
public struct TraceHeader: RecordContent, Equatable {
    /// `desgd-trace`.
    public var format: String
    /// `[major, minor]` of the format that wrote the file.
    public var formatVersion: [Int]
    /// The program that wrote the file, e.g. `desgd 0.5.0`.
    public var program: String
    public var config: SimulationConfig
    public var partition: Partition
    public var dataset: DatasetProvenance
    public var model: ModelInfo
    /// The numeric backend's exact kernel (results differ between kernels).
    public var backend: String
    /// Canonical specs of the aggregation pipeline and of the attack (their defaults resolved).
    public var aggregator: String
    public var attack: String
    public var recording: RecordingMode
    /// A keyframe is written before every round t with t mod this = 0, and after the last round.
    public var keyframeInterval: Int
    /// The aggregations of a round: one per class in DeSGD (index = class), one in the baseline.
    public var groups: [GroupInfo]
    public var vectors: [VectorEntry]
    /// W of the drift metrics' window (FORMAT.md §5.4); absent in traces of format 1.0.
    public var driftWindow: Int?
    /// The engine's numerics version (``SimulationNumerics``); required from format 1.2, absent
    /// before (version 1).
    public var numerics: Int?

    /// Values a reader accepts for `numerics`.
    public static let numericsRange = 1...1000

    /// The numerics version the recorded rounds were computed with.
    public var effectiveNumerics: Int { numerics ?? SimulationNumerics.beforeFormat1_2 }

    /// A state checkpoint precedes every round t with t mod this = 0 (FORMAT.md §5.5); absent or 0:
    /// none (format 1.2).
    public var checkpointInterval: Int?

    /// Present in a fork (format 1.3, `desgd-record --fork`): the trace whose state at round `at`
    /// this one starts from; its rounds are `at`, `at` + 1, … (FORMAT.md §5.1.1).
    public var fork: ForkInfo?

    /// How the drift metrics sum a group's recent deviations (FORMAT.md §5.4, format 1.4): absent
    /// means ``RecentDrift/window``, the definition of formats 1.1–1.3.
    public var driftRecent: RecentDrift? = nil

    /// Present when a live federation's clients computed the messages (FORMAT.md §5.1.2, format
    /// 1.5): the framework, the clients' model and data, and the clients' registered keys.
    public var engine: LiveEngine? = nil

    /// The recent-drift definition the trace's metrics and checkpoints use.
    public var effectiveDriftRecent: RecentDrift { driftRecent ?? .window }

    /// The first round a trace of this header records: the fork's `at`, else 0.
    public var firstRound: Int { fork?.at ?? 0 }

    /// Where a fork comes from (FORMAT.md §5.1.1): the parent's chain digest that the fork's starting
    /// state was checked against, the round, the parent's file name, and what the fork changed.
    public struct ForkInfo: Sendable, Equatable, Codable {
        /// Lowercase hex of the parent's chain digest (the SHA-256 ending its record) of its last round
        /// record before `at`, or of its header record when `at` is the parent's first round.
        public var parentDigest: String
        /// The round the fork starts at: its state checkpoint and first round record are of this round.
        public var at: Int
        /// The parent's file name when the fork was made (informative: files move).
        public var parentFile: String
        /// Each option the fork changed, with the parent's value and the fork's, in the order of
        /// ``SimulationConfig``'s fields.
        public var changes: [Change]

        public struct Change: Sendable, Equatable, Codable {
            /// The command-line option, e.g. `--agg`.
            public var option: String
            public var parent: String
            public var fork: String
            public init(option: String, parent: String, fork: String) {
                self.option = option
                self.parent = parent
                self.fork = fork
            }
        }

        public init(parentDigest: String, at: Int, parentFile: String, changes: [Change]) {
            self.parentDigest = parentDigest
            self.at = at
            self.parentFile = parentFile
            self.changes = changes
        }

        /// How a family's branch is named: its changes as `agg=geomed, lr=0.05` (option names without
        /// dashes), or `unchanged`.
        public var label: String {
            changes.isEmpty ? "unchanged" : changes.map {
                "\($0.option.drop { $0 == "-" })=\($0.fork)" }.joined(separator: ", ")
        }

        /// Bounds a reader enforces on the key (FORMAT.md §5.1.1).
        public static let maximumChanges = 64
        public static let maximumText = 1024
    }

    public struct ModelInfo: Sendable, Equatable, Codable {
        public var architecture: ModelArchitecture
        public var parameterCount: Int
        /// The named tensors of the flat parameter vector, in order.
        public var tensors: [TensorInfo]
    }

    public struct TensorInfo: Sendable, Equatable, Codable {
        public var name: String
        public var offset: Int
        public var shape: [Int]
    }

    /// Who sends in one aggregation group, and the rule's proven λ for that (n, f).
    public struct GroupInfo: Sendable, Equatable, Codable {
        /// The class (DeSGD) or −1 (baseline).
        public var classIndex: Int
        public var honestWorkers: [Int]
        public var byzantineWorkers: [Int]
        public var resilienceBound: Double?
    }
}

/// An aggregator's or attack's carried state as stored: scalars inline, vectors by index
/// (absent when the record holds no vectors).
public struct StoredState: Sendable, Equatable, Codable {
    public var scalars: [String: Double]
    public var vectors: [String: Int]?

    public init(scalars: [String: Double], vectors: [String: Int]?) {
        self.scalars = scalars
        self.vectors = vectors
    }
}

/// One aggregation of a round record (FORMAT.md §5.3).
public struct AggregationRecord: Sendable, Equatable, Codable {
    /// The class aggregated (DeSGD) or −1 (baseline).
    public var classIndex: Int
    /// Senders in row order: honest first (worker order), then Byzantine.
    public var senders: [Sender]
    /// Per sender, the index of its message (identical messages share an index); absent without vectors.
    public var messages: [Int]?
    public var attack: AttackDecision?
    public var decision: AggregationDecision
    public var stateBefore: StoredState
    public var stateAfter: StoredState
    /// Index of the aggregate; absent without vectors.
    public var aggregate: Int?
    /// The recorded rule's deviation from the honest mean (docs/design.md §6).
    public var metrics: DeviationMetrics
    /// A live federation's round (format 1.5, FORMAT.md §5.3.1): per sender, the client's Ed25519
    /// signature of its message in 128 lowercase hex digits, or nil for a message no client signed (a
    /// Byzantine message the server's attack crafted); absent in simulated rounds.
    public var signatures: [String?]? = nil

    enum CodingKeys: String, CodingKey {
        case classIndex = "class", senders, messages, attack, decision, stateBefore, stateAfter, aggregate, metrics
        case signatures
    }
}

/// A round record's JSON (FORMAT.md §5.3).
public struct RoundContent: RecordContent, Equatable {
    public var round: Int
    /// Whether this record holds its vectors (`full`) or not (`decisions`).
    public var hasVectors: Bool
    /// S_t (DeSGD), empty in the baseline.
    public var classes: [Int]
    public var aggregations: [AggregationRecord]
    /// Index of the model difference Δx as applied (x_{t+1} = fl(x_t + Δx)); absent without vectors.
    public var modelDiff: Int?
    /// Test-set evaluation after the round's update, on evaluation rounds.
    public var evaluation: Evaluation?
    public var vectors: [VectorEntry]
    /// The model's drift from its honest shadow after the round (FORMAT.md §5.4); absent in traces
    /// of format 1.0.
    public var drift: ModelDrift?
}

/// A keyframe's JSON (FORMAT.md §5.2): the server state at the start of `round`.
public struct KeyframeContent: RecordContent, Equatable {
    public var round: Int
    public var parameters: Int
    /// m_g^c per class (DeSGD), empty otherwise.
    public var classMomenta: [Int]
    public var serverMomentum: Int?
    public var aggregatorStates: [StoredState]
    public var attackStates: [StoredState]
    public var vectors: [VectorEntry]
}
