import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import Foundation

/// `desgd-bench`: performance figures measured as ratios within one run (build with `-c release`).
@main
struct DesgdBench: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-bench",
        abstract: "Measure desgd's speed and reference accuracy; figures are ratios measured in one run.",
        discussion: """
        Build with `swift build -c release` first: debug builds are 10–50× slower. Every numeric option has a range \
        (shown with the option); a value outside it is one line on standard error and exit code 2.

        Examples:
          desgd-bench numerics
          desgd-bench centralized --epochs 10
          desgd-bench simulate --preset paper --rounds 20
        """,
        subcommands: [NumericsBench.self, AggregatorBench.self, SimulateBench.self, RecordBench.self, ReplayBench.self,
                      CheckpointBench.self,
                      CentralizedRun.self])
}

/// Prints a JSON value (dictionaries with sorted keys), the `--json` output of every subcommand.
func printJSON(_ value: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Formats a number with a fixed number of decimals.
func fixed(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

struct NumericsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "numerics",
        abstract: "Forward+backward time of one mini-batch, its GFLOP/s and the ratio to the measured sgemm peak.")

    @Option(help: "Model: lenet or small.") var model: ModelArchitecture = .lenet
    @Option(help: "Mini-batch size, \(rangeText(SimulationConfig.batchSizeRange)).") var batch = 50
    @Option(help: "Timed mini-batches per backend, \(rangeText(NumericsBench.iterationsRange)).") var iterations = 100
    @Option(help: "Backends to measure (comma-separated: openblas,portable).") var backends = "openblas,portable"
    @Flag(help: "Print the figures as JSON.") var json = false

    static let iterationsRange = 1...100_000

    func run() throws {
        try CommandFailure.check("desgd-bench", "--batch", batch, in: SimulationConfig.batchSizeRange)
        try CommandFailure.check("desgd-bench", "--iterations", iterations, in: NumericsBench.iterationsRange)
        let data = Dataset.synthetic(trainCount: 1000, testCount: 10)
        var rows: [[String: String]] = []
        for name in backends.split(separator: ",") {
            guard let backend = NumericBackend(rawValue: String(name)) else {
                throw CommandFailure.exit("desgd-bench",
                    "--backends: unknown backend '\(name)': use openblas or portable")
            }
            let peak = Benchmarks.sgemmRate(backend: backend)
            guard let shape = model.shape else {
                throw CommandFailure.exit("desgd-bench", "--model: use lenet or small")
            }
            let net = CNN(shape: shape, backend: backend)
            let params = net.initialParameters(seed: 1)
            var grad = [Float](repeating: 0, count: net.parameterCount)
            let ws = CNNWorkspace(model: net, slots: 1)
            let batches = (0..<iterations).map { i in
                MiniBatch(indices: (0..<batch).map { (i * batch + $0 * 13) % data.train.count }) }
            for b in batches.prefix(5) {
                net.lossAndGradient(parameters: params, data: data.train, batch: b, gradient: &grad, workspace: ws)
            }
            var times: [Double] = []
            for b in batches {
                let t0 = Stopwatch.now()
                net.lossAndGradient(parameters: params, data: data.train, batch: b, gradient: &grad, workspace: ws)
                times.append(Stopwatch.now() - t0)
            }
            times.sort()
            let median = times[times.count / 2]
            let flops = (net.shape.forwardFLOPs + net.shape.backwardFLOPs) * Double(batch)
            let rate = flops / median / 1e9
            rows.append(["backend": backend.rawValue, "kernel": backend.description,
                         "ms_per_batch": fixed(median * 1e3, 3), "gflops": fixed(rate, 1),
                         "sgemm_peak_gflops": fixed(peak, 1), "ratio_to_peak": fixed(rate / peak, 3),
                         "flops_per_batch": fixed(flops / 1e6, 1) + "M"])
        }
        if json {
            try printJSON(rows)
        } else {
            print("\(model.rawValue), batch \(batch), forward+backward, one core (median of \(iterations))")
            for r in rows {
                print("  \(r["backend"]!.padding(toLength: 9, withPad: " ", startingAt: 0)) \(r["ms_per_batch"]!)"
                    + " ms/batch  \(r["gflops"]!) GFLOP/s  sgemm peak \(r["sgemm_peak_gflops"]!) GFLOP/s  ratio "
                    + "\(r["ratio_to_peak"]!)  [\(r["kernel"]!)]")
            }
        }
    }
}

struct CentralizedRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "centralized",
        abstract: "Centralised SGD on Fashion-MNIST: the accuracy reference for the distributed runs.")

    @Option(help: "Model: lenet or small.") var model: ModelArchitecture = .lenet
    @Option(help: "Numeric backend: openblas or portable.") var backend: NumericBackend = .openblas
    @Option(help: "Epochs over the 60 000 training images, \(rangeText(CentralizedRun.epochsRange)).") var epochs = 10
    @Option(help: "Mini-batch size, \(rangeText(SimulationConfig.batchSizeRange)).") var batch = 50
    @Option(help: "Learning rate, in (0, 1000].") var lr: Float = 0.1
    @Option(help: "Weight decay added to the gradient, in [0, 1000].") var weightDecay: Float = 5e-4
    @Option(help: ArgumentHelp("Evaluate on the 10 000 test images every this many steps, "
        + "\(rangeText(SimulationConfig.roundsRange)).")) var evalEvery = 600
    @Option(help: "Seed of initialisation and shuffling, any 64-bit unsigned integer.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("Fashion-MNIST directory (default: $DESGD_DATA, then"
        + " /usr/share/datasets/fashion-mnist).")) var data: String?
    @Option(help: ArgumentHelp("Threads for evaluation, \(rangeText(SimulationConfig.threadsRange)) (default: every"
        + " core).")) var threads = SimulationConfig.defaultThreads

    /// Epochs: 1 000 lenet epochs take weeks on 2 cores.
    static let epochsRange = 1...1_000

    func run() throws {
        // The same ranges as a simulation's options (the configuration's check, with this run's values).
        var config = SimulationConfig()
        config.batchSize = batch; config.learningRate = lr; config.weightDecay = weightDecay
        config.evaluationInterval = evalEvery; config.threads = threads
        do { try config.validate() } catch { throw CommandFailure.exit("desgd-bench", error.commandLineMessage) }
        try CommandFailure.check("desgd-bench", "--epochs", epochs, in: CentralizedRun.epochsRange)
        let dataset: Dataset
        do { dataset = try Dataset.fashionMNIST(directory: try Dataset.locate(explicit: data)) } catch {
            FileHandle.standardError.write(Data("desgd-bench: \(error)\n".utf8))
            throw ExitCode(2)
        }
        guard let shape = model.shape else { throw CommandFailure.exit("desgd-bench", "--model: use lenet or small") }
        var t = CentralizedTraining()
        t.shape = shape; t.backend = backend; t.batchSize = batch; t.learningRate = lr
        t.weightDecay = weightDecay; t.steps = epochs * (dataset.train.count / batch); t.evaluationInterval = evalEvery
        t.seed = seed; t.threads = threads
        print("centralised \(model.rawValue), \(backend.rawValue), batch \(batch), lr \(lr), wd \(weightDecay), "
            + "\(t.steps) steps; data \(dataset.provenance.digest.prefix(16))…")
        let r = t.run(data: dataset) { p in
            print("  step \(p.step)  train loss \(fixed(p.trainLoss, 4))  test loss \(fixed(p.test.loss, 4))  test"
                + " accuracy \(fixed(100 * p.test.accuracy))%")
            fflush(nil)  // all streams: progress reaches a pipe or file at once
        }
        print("best test accuracy \(fixed(100 * r.bestAccuracy))%, final "
            + "\(fixed(100 * r.finalAccuracy))%, \(fixed(r.seconds, 1)) s")
    }
}

