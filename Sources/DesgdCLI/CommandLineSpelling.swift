import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace

extension Setting {
    /// The option that sets it on the command line (the live ABI's options are the same words).
    public var option: String {
        switch self {
        case .mode: "--mode"
        case .momentum: "--momentum"
        case .model: "--model"
        case .backend: "--backend"
        case .honestWorkers: "--honest"
        case .byzantineWorkers: "--byzantine"
        case .declaredF: "--f"
        case .partition, .slurmPartition: "--partition"
        case .batchSize: "--batch"
        case .beta: "--beta"
        case .bufferDecay: "--buffer-decay"
        case .gamma: "--gamma"
        case .learningRate: "--lr"
        case .weightDecay: "--weight-decay"
        case .rounds: "--rounds"
        case .classesPerRound: "--classes-per-round"
        case .schedule: "--schedule"
        case .aggregator: "--agg"
        case .preAggregators: "--pre"
        case .attack: "--attack"
        case .evaluationInterval: "--eval-every"
        case .seed: "--seed"
        case .threads: "--threads"
        case .syntheticImages: "--synthetic"
        case .dataDirectory: "--data"
        case .output: "--out"
        case .overwrite: "--force"
        case .recordingMode: "--record"
        case .keyframeInterval: "--keyframe-every"
        case .checkpointInterval: "--checkpoint-every"
        case .compressionLevel: "--zstd-level"
        case .driftWindow: "--drift-window"
        case .signingKey: "--sign"
        case .resume: "--resume"
        case .forkParent: "--fork"
        case .forkRound: "--at"
        case .trustedKey: "--trust"
        case .compareRules: "--compare"
        case .adversary: "--adversary"
        case .recoverWithin: "--recover-within"
        case .recoverTo: "--recover-to"
        case .gridDirectory: "--dir"
        case .gridCell: "--cell"
        case .gridJobs: "--jobs"
        case .cpusPerTask: "--cpus-per-task"
        case .maxConcurrent: "--max-concurrent"
        case .slurmTime: "--time"
        case .slurmMemory: "--mem"
        }
    }
}

extension Explanation {
    /// The text as a command reports it: every setting named by its option.
    public var commandLine: String { rendered { $0.option } }

    /// The text with each setting named by its option, those in `renamed` by another (the audit's
    /// `--compare` takes rules as `--agg` does).
    public func commandLine(renaming renamed: [Setting: String]) -> String {
        rendered { renamed[$0] ?? $0.option }
    }
}

/// An error whose text names settings: the library's errors.
public protocol ExplainedError: Error {
    var explanation: Explanation { get }
}

extension SimulationError: ExplainedError {}
extension TraceError: ExplainedError {}
extension AggregationError: ExplainedError {}
extension DataError: ExplainedError {}

extension Error {
    /// The one line a command prints for this error: a library error with its settings named by
    /// their options, any other error as it describes itself.
    public var commandLineMessage: String {
        (self as? any ExplainedError)?.explanation.commandLine ?? "\(self)"
    }
}

/// The catalogues of rules, pre-aggregators and attacks under the headings that name their options.
public enum CatalogueHelp {
    public static var rules: String {
        let text = AggregatorCatalogue.helpText
        return "Aggregation rules (--agg NAME[:key=value,...]; integer values may use n and f, e.g. krum:q=n-f-1):\n"
            + text.rules + "\nPre-aggregators (--pre A+B+..., applied in order before the rule):\n"
                + text.preAggregators
    }

    public static var attacks: String { "Attacks (--attack NAME[:key=value,...]):\n" + AttackCatalogue.helpText }
}
