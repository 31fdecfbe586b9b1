/// A setting of a run, a recording, a replay or a grid that a message can name.
///
/// Libraries name settings by case and never by a front end's spelling: an ``Explanation`` holds the
/// case, and each front end renders it its own way (the command line and the live ABI's options as
/// the option, `--honest`; a library caller with ``words``). docs/design.md, "Errors are data".
public enum Setting: String, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    // A run's configuration (the simulation's fields, in their declaration order).
    case mode, momentum, model, backend, honestWorkers, byzantineWorkers, declaredF, partition, batchSize
    case beta, bufferDecay, gamma, learningRate, weightDecay, rounds, classesPerRound, schedule
    case aggregator, preAggregators, attack, evaluationInterval, seed, threads
    /// The synthetic data set instead of Fashion-MNIST.
    case syntheticImages
    /// The directory of the data set.
    case dataDirectory
    // A recording.
    case output, overwrite, recordingMode, keyframeInterval, checkpointInterval, compressionLevel, driftWindow
    case signingKey, resume, forkParent, forkRound
    // Reading a recording back.
    case trustedKey, compareRules, adversary, recoverWithin, recoverTo
    // A grid.
    case gridDirectory, gridCell, gridJobs, cpusPerTask, maxConcurrent, slurmTime, slurmPartition, slurmMemory

    /// ``words``: a setting interpolated into a plain string (which no front end renders) still reads.
    public var description: String { words }

    /// How a message names the setting for a caller without a command line.
    public var words: String {
        switch self {
        case .mode: "the mode"
        case .momentum: "the momentum placement"
        case .model: "the model"
        case .backend: "the backend"
        case .honestWorkers: "the honest workers"
        case .byzantineWorkers: "the Byzantine workers"
        case .declaredF: "the declared f"
        case .partition: "the partition"
        case .batchSize: "the batch size"
        case .beta: "the momentum coefficient beta"
        case .bufferDecay: "the buffer decay"
        case .gamma: "gamma"
        case .learningRate: "the learning rate"
        case .weightDecay: "the weight decay"
        case .rounds: "the rounds"
        case .classesPerRound: "the classes per round"
        case .schedule: "the class schedule"
        case .aggregator: "the aggregation rule"
        case .preAggregators: "the pre-aggregators"
        case .attack: "the attack"
        case .evaluationInterval: "the evaluation interval"
        case .seed: "the seed"
        case .threads: "the threads"
        case .syntheticImages: "the synthetic data set"
        case .dataDirectory: "the data directory"
        case .output: "the output path"
        case .overwrite: "overwriting"
        case .recordingMode: "the recording mode"
        case .keyframeInterval: "the keyframe interval"
        case .checkpointInterval: "the checkpoint interval"
        case .compressionLevel: "the zstd level"
        case .driftWindow: "the drift window"
        case .signingKey: "the signing key"
        case .resume: "resuming"
        case .forkParent: "the fork's parent"
        case .forkRound: "the fork round"
        case .trustedKey: "the trusted key"
        case .compareRules: "the compared rules"
        case .adversary: "the adversary"
        case .recoverWithin: "the recovery margin"
        case .recoverTo: "the recovery accuracy"
        case .gridDirectory: "the grid's directory"
        case .gridCell: "the cell"
        case .gridJobs: "the jobs"
        case .cpusPerTask: "the CPUs per task"
        case .maxConcurrent: "the concurrent tasks"
        case .slurmTime: "the time limit"
        case .slurmPartition: "the Slurm partition"
        case .slurmMemory: "the memory per task"
        }
    }
}
