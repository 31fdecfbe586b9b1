import ArgumentParser
import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// Every knob of ``SimulationConfig`` as a command-line option, shared by every command that runs
/// a simulation. Options left out keep the preset's value; the preset defaults to `quick`.
public struct SimulationOptions: ParsableArguments {
    public init() {}

    @Option(help: "Starting point: quick (small model, 300 rounds, ~1 min) or paper (lenet, 3 000 rounds, the paper's setup).")
    public var preset: Preset = .quick

    @Option(help: "desgd (class-wise momentum and aggregation) or sgd (every worker sends a momentum of all its data).")
    public var mode: SimulationConfig.Mode?
    @Option(help: "Where momentum lives: local (on workers, the paper) or global (on the server, the ablation).")
    public var momentum: SimulationConfig.MomentumPlacement?
    @Option(name: .customLong("agg"), help: "Aggregation rule, e.g. krum:q=n-f-2 (the catalogue is listed below).")
    public var aggregator: String?
    @Option(name: .customLong("pre"), help: "Pre-aggregators applied in order, e.g. bucketing:s=2 or clip:c=2+nnm.")
    public var preAggregators: String?
    @Option(help: "Attack, e.g. ipm, alie:z=1, signflip (the catalogue is listed below).")
    public var attack: String?
    @Option(help: "Model: lenet (431 080 parameters) or small (19 670).")
    public var model: ModelArchitecture?
    @Option(help: "Numeric backend: openblas (fast) or portable (same bits on any AVX2+FMA CPU).")
    public var backend: NumericBackend?
    @Option(help: "Honest workers n.") public var honest: Int?
    @Option(help: "Byzantine workers.") public var byzantine: Int?
    @Option(name: .customLong("f"), help: "The f the aggregator is told (default: the number of Byzantine workers).")
    public var declaredF: Int?
    @Option(help: "Data partition: label-skew[:k=3], dirichlet[:alpha=1], iid.") public var partition: String?
    @Option(help: "Mini-batch size.") public var batch: Int?
    @Option(help: "Momentum β of m ← β·m + (1−β)·g (Algorithm 1's printed β is 1 − this).") public var beta: Float?
    @Option(help: "Decay of stale class-momentum buffer entries (eq. 15; default β).") public var bufferDecay: Float?
    @Option(help: "Weight γ of the class-momentum buffer average in the update (eq. 16).") public var gamma: Float?
    @Option(help: "Learning rate η.") public var lr: Float?
    @Option(help: "Weight decay added to the gradient.") public var weightDecay: Float?
    @Option(help: "Rounds.") public var rounds: Int?
    @Option(help: "Classes per round K = |S_t|.") public var classesPerRound: Int?
    @Option(help: "Class schedule: cyclic or random.") public var schedule: SimulationConfig.Schedule?
    @Option(help: "Evaluate on the test set every this many rounds.") public var evalEvery: Int?
    @Option(help: "Seed of every random stream.") public var seed: UInt64?
    @Option(help: "Threads (results do not depend on it).") public var threads: Int?
    @Option(help: "Fashion-MNIST directory (default: $DESGD_DATA, then /usr/share/datasets/fashion-mnist).")
    public var data: String?
    @Option(help: "Use the synthetic data set with this many training images instead of Fashion-MNIST (tests, demos).")
    public var synthetic: Int?

    /// The rules, pre-aggregators and attacks with their defaults, for a command's `--help`.
    public static var catalogue: String {
        AggregatorCatalogue.helpText + "\n" + AttackCatalogue.helpText
    }

    public enum Preset: String, ExpressibleByArgument, CaseIterable, Sendable { case quick, paper }

    /// The configuration: the preset, then every option given.
    public func configuration() throws(SimulationError) -> SimulationConfig {
        var c = preset == .paper ? SimulationConfig.paper : SimulationConfig.quick
        if let v = mode { c.mode = v }
        if let v = momentum { c.momentum = v }
        if let v = aggregator { c.aggregator = v }
        if let v = preAggregators { c.preAggregators = v }
        if let v = attack { c.attack = v }
        if let v = model { c.model = v }
        if let v = backend { c.backend = v }
        if let v = honest { c.honestWorkers = v }
        if let v = byzantine { c.byzantineWorkers = v }
        if let v = declaredF { c.declaredF = v }
        if let v = partition {
            do { c.partition = try PartitionScheme.parse(v) } catch { throw SimulationError(error.message) }
        }
        if let v = batch { c.batchSize = v }
        if let v = beta { c.beta = v }
        if let v = bufferDecay { c.bufferDecay = v }
        if let v = gamma { c.gamma = v }
        if let v = lr { c.learningRate = v }
        if let v = weightDecay { c.weightDecay = v }
        if let v = rounds { c.rounds = v }
        if let v = classesPerRound { c.classesPerRound = v }
        if let v = schedule { c.schedule = v }
        if let v = evalEvery { c.evaluationInterval = v }
        if let v = seed { c.seed = v }
        c.threads = threads ?? ParallelExecutor.machineThreads
        if let v = synthetic {
            if data != nil { throw SimulationError("--synthetic and --data exclude each other: choose one data set") }
            c.data = .synthetic(train: v, test: max(100, v / 6), seed: c.seed)
        } else {
            c.data = .fashionMNIST(directory: data)
        }
        try c.validate()
        return c
    }
}

extension ModelArchitecture: ExpressibleByArgument {}
extension NumericBackend: ExpressibleByArgument {}
extension SimulationConfig.Mode: ExpressibleByArgument {}
extension SimulationConfig.MomentumPlacement: ExpressibleByArgument {}
extension SimulationConfig.Schedule: ExpressibleByArgument {}

/// The one way the front ends report bad input: a one-line message on standard error, exit code 2.
public enum CommandFailure {
    public static func exit(_ program: String, _ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
        return ExitCode(2)
    }
}

/// A one-line progress bar on a terminal (nothing when standard error is not a terminal).
public final class ProgressBar {
    let total: Int
    let label: String
    let start = Stopwatch.now()
    var last = 0.0
    public let enabled: Bool

    public init(total: Int, label: String) {
        self.total = total
        self.label = label
        enabled = isatty(2) != 0
    }

    /// Redraws at most 10 times a second (always on the last step).
    public func update(_ done: Int, note: String = "") {
        guard enabled else { return }
        let now = Stopwatch.now()
        if done < total && now - last < 0.1 { return }
        last = now
        let elapsed = now - start
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 28, filled = total > 0 ? width * done / total : width
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = "\r\(label) \(bar) \(done)/\(total)  \(String(format: "%.1f", rate))/s  ETA \(String(format: "%.0f", eta)) s  \(note)"
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// The entry point of every front end: ArgumentParser's, except that a usage error (unknown
/// option, invalid value) exits with code 2 like every other bad input (PRODUCT.md §1: 0 ok,
/// 1 a check failed, 2 bad usage or bad input), instead of ArgumentParser's 64.
public enum CommandLineMain {
    public static func main<Command: ParsableCommand>(_ type: Command.Type) {
        do {
            var command = try type.parseAsRoot()
            try command.run()
        } catch {
            if type.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((type.fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            type.exit(withError: error)
        }
    }
}
