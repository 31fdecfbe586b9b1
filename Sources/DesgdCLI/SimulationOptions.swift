import ArgumentParser
import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// Every knob of ``SimulationConfig`` as a command-line option, shared by every command that runs
/// a simulation. Options left out keep the preset's value; the preset defaults to `quick`.
public struct SimulationOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("preset"),
        help: ArgumentHelp("Starting point: quick (small model, 300 rounds, ~1 min) or paper (lenet, 3 000 rounds, the"
        + " paper's setup). Default: quick."))
    public var presetChoice: Preset?
    /// The preset given, or quick.
    public var preset: Preset { presetChoice ?? .quick }

    @Option(help: ArgumentHelp("desgd (class-wise momentum and aggregation) or sgd (every worker sends a momentum of"
        + " all its data). Default: desgd."))
    public var mode: SimulationConfig.Mode?
    @Option(help: ArgumentHelp("Where momentum lives: local (on workers, the paper) or global (on the server,"
        + " the ablation). Default: local."))
    public var momentum: SimulationConfig.MomentumPlacement?
    @Option(name: .customLong("agg"),
        help: ArgumentHelp("Aggregation rule, e.g. krum:q=n-f-2 (the catalogue is listed below; "
        + "\(SpecLimits.summary)). Default: mean."))
    public var aggregator: String?
    @Option(name: .customLong("pre"),
        help: ArgumentHelp("Pre-aggregators applied in order, e.g. bucketing:s=2 or clip:c=2+nnm ("
        + "\(SpecLimits.summary)). Default: none."))
    public var preAggregators: String?
    @Option(help: ArgumentHelp("Attack, e.g. ipm, alie:z=1, signflip (the catalogue is listed below; "
        + "\(SpecLimits.summary)). Default: none."))
    public var attack: String?
    @Option(help: "Model: lenet (431 080 parameters) or small (19 670). Default: small (quick), lenet (paper).")
    public var model: ModelArchitecture?
    @Option(help: "Numeric backend: openblas (fast) or portable (same bits on any x86-64 CPU). Default: openblas.")
    public var backend: NumericBackend?
    @Option(help: ArgumentHelp("Honest workers n, \(rangeText(SimulationConfig.honestWorkersRange)). Default:"
        + " 20.")) public var honest: Int?
    @Option(help: ArgumentHelp("Byzantine workers, \(rangeText(SimulationConfig.byzantineWorkersRange)). Default:"
        + " 4.")) public var byzantine: Int?
    @Option(name: .customLong("f"),
        help: "The f the aggregator is told, 0...honest+byzantine. Default: the number of Byzantine workers.")
    public var declaredF: Int?
    @Option(help: ArgumentHelp("Data partition: label-skew[:k=K] (K in 1...10), dirichlet[:alpha=A] (A in 0.01...1000),"
        + " iid. Default: label-skew:k=3."))
    public var partition: String?
    @Option(help: "Mini-batch size, \(rangeText(SimulationConfig.batchSizeRange)). Default: 50.") public var batch: Int?
    @Option(help: ArgumentHelp("Momentum β of m ← β·m + (1−β)·g, in [0, 1) (Algorithm 1's printed β is 1 −"
        + " this). Default: 0.9.")) public var beta: Float?
    @Option(help: ArgumentHelp("Decay of stale class-momentum buffer entries (eq. 15), in [0, 1]. Default:"
        + " β.")) public var bufferDecay: Float?
    @Option(help: ArgumentHelp("Weight γ of the class-momentum buffer average in the update (eq. 16), in [0, 1]."
        + " Default: 0.5.")) public var gamma: Float?
    @Option(help: "Learning rate η, in (0, 1000]. Default: 0.1.") public var lr: Float?
    @Option(help: "Weight decay added to the gradient, in [0, 1000]. Default: 0.0005.") public var weightDecay: Float?
    @Option(help: ArgumentHelp("Rounds, \(rangeText(SimulationConfig.roundsRange)). Default: 300 (quick), 3000"
        + " (paper).")) public var rounds: Int?
    @Option(help: "Classes per round K = |S_t|, 1...10. Default: 1.") public var classesPerRound: Int?
    @Option(help: "Class schedule: cyclic or random. Default: cyclic.") public var schedule: SimulationConfig.Schedule?
    @Option(help: ArgumentHelp("Evaluate on the test set every this many rounds (and after the last), "
        + "\(rangeText(SimulationConfig.roundsRange)). Default: 30 (quick), 50 (paper)."))
    public var evalEvery: Int?
    @Option(help: "Seed of every random stream, any 64-bit unsigned integer. Default: 1.") public var seed: UInt64?
    @Option(help: ArgumentHelp("Threads, \(rangeText(SimulationConfig.threadsRange)) (results do not depend on it)."
        + " Default: every core.")) public var threads: Int?
    @Option(help: "Fashion-MNIST directory (default: $DESGD_DATA, then /usr/share/datasets/fashion-mnist).")
    public var data: String?
    @Option(help: ArgumentHelp("Use the synthetic data set with this many training images, "
        + "\(rangeText(SimulationConfig.syntheticImagesRange)), instead of Fashion-MNIST (tests, demos)."))
    public var synthetic: Int?

    /// The rules, pre-aggregators and attacks with their defaults, for a command's `--help`.
    public static var catalogue: String {
        CatalogueHelp.rules + "\n" + CatalogueHelp.attacks
    }

    public enum Preset: String, ExpressibleByArgument, CaseIterable, Sendable {
        case quick, paper

        /// The preset's `--checkpoint-every`: 500 rounds of a paper run (6 checkpoints in 3 000
        /// rounds, ~130 MB each once training is under way: a `decisions` record of the whole run
        /// stays under 1 GB; a rebuilt, re-executed or resumed segment is at most 499 rounds,
        /// ~2.5 minutes on 2 cores), and 50 of a quick one (its model is 22 times smaller, so
        /// checkpoints cost little; 6 in 300 rounds).
        public var checkpointInterval: Int { self == .paper ? 500 : 50 }
    }

    /// The configuration: the preset, then every option given.
    public func configuration() throws(SimulationError) -> SimulationConfig {
        var c = preset == .paper ? SimulationConfig.paper : SimulationConfig.quick
        try apply(to: &c)
        c.threads = threads ?? SimulationConfig.defaultThreads
        if let v = synthetic {
            if data != nil { throw SimulationError("--synthetic and --data exclude each other: choose one data set") }
            c.data = .synthetic(train: v, test: max(100, v / 6), seed: c.seed)
        } else {
            c.data = .fashionMNIST(directory: data)
        }
        try c.validate()
        return c
    }

    /// Every option of the run given on the command line, over `c`: the preset, threads and data
    /// set aside (what `desgd-record --fork` changes of its parent's configuration).
    public func apply(to c: inout SimulationConfig) throws(SimulationError) {
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
            do { c.partition = try PartitionScheme.parse(v) } catch {
                throw SimulationError("\(Setting.partition): \(error.explanation)")
            }
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
    }
}

/// `lenet` or `small`: `external` names a live federation's clients' model, which no command simulates.
extension ModelArchitecture: ExpressibleByArgument {
    public init?(argument: String) {
        guard let model = ModelArchitecture(rawValue: argument), model.shape != nil else { return nil }
        self = model
    }
    public static var allValueStrings: [String] { allCases.filter { $0.shape != nil }.map(\.rawValue) }
}
extension NumericBackend: ExpressibleByArgument {}
extension SimulationConfig.Mode: ExpressibleByArgument {}
extension SimulationConfig.MomentumPlacement: ExpressibleByArgument {}
extension SimulationConfig.Schedule: ExpressibleByArgument {}

/// A range as `--help` and the messages write it: `1...256`.
public func rangeText<T>(_ r: ClosedRange<T>) -> String { "\(r.lowerBound)...\(r.upperBound)" }

/// The one way the front ends report bad input: a one-line message on standard error, exit code 2.
public enum CommandFailure {
    public static func exit(_ program: String, _ message: String) -> ExitCode {
        // One line, whatever a message quotes from a file (DisplayText).
        FileHandle.standardError.write(Data("\(program): \(DisplayText.escaped(message))\n".utf8))
        return ExitCode(2)
    }

    /// Exits 2 with `program: OPTION must be in A...B (got V)` when `value` lies outside `range`:
    /// the check of a front end's own numeric options (the configuration's are in
    /// ``SimulationConfig/validate()``).
    public static func check<T: Comparable>(_ program: String, _ option: String, _ value: T,
        in range: ClosedRange<T>) throws {
        guard range.contains(value) else {
            throw exit(program, SimulationError.outOfRange(what: option, value, range).message)
        }
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
        let line = "\r\(label) \(bar) \(done)/\(total)  \(String(format: "%.1f", rate))/s  ETA "
            + "\(String(format: "%.0f", eta)) s  \(note)"
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// The entry point of every front end: ArgumentParser's, except that a usage error (unknown
/// option, invalid value, missing argument) is one line and exit code 2 like every other bad
/// input (docs/bad-input.md: 0 ok, 1 a check failed, 2 bad usage or bad input), instead of
/// ArgumentParser's usage block and 64.
public enum CommandLineMain {
    public static func main<Command: ParsableCommand>(_ type: Command.Type) {
        do {
            var command = try type.parseAsRoot()
            try command.run()
        } catch {
            if type.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((usageErrorLine(type, error) + "\n").utf8))
                Foundation.exit(2)
            }
            type.exit(withError: error)
        }
    }

    /// `program: message (see program --help)`: the first line of ArgumentParser's message, which
    /// names the option or argument (its other lines repeat the usage).
    static func usageErrorLine<Command: ParsableCommand>(_ type: Command.Type, _ error: Error) -> String {
        let program = type.configuration.commandName ?? "\(type)"
        let first = type.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
        let message = first.hasPrefix("Error: ") ? String(first.dropFirst(7)) : first
        return "\(program): \(message) (see \(program) --help)"
    }
}
