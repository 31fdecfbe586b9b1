import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import Foundation

struct SimulateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run a simulation without recording: seconds per round, GFLOP/s against the"
            + " measured sgemm rate, accuracy.",
        discussion: """
        The sgemm rate is measured in the same run on as many threads as the simulation uses (independent 1024³ \
        products, one per thread). Evaluation time is excluded from s/round. The options below show both presets' \
        defaults where they differ.

        GFLOP/s counts the dense multiply-adds of every mini-batch's forward and backward pass (the model's \
        forwardFLOPs and backwardFLOPs), so that figures compare across versions: a dense-equivalent rate. Since desgd \
        0.8.0 the backward pass of conv2 skips the outputs max-pooling discarded, whose gradient is zero, so fewer \
        operations are executed than counted.

        Examples:
          desgd-bench simulate --preset paper --rounds 20
          desgd-bench simulate --preset paper --agg krum --attack signflip --mode sgd

        \(SimulationOptions.catalogue)
        """)

    @OptionGroup var options: SimulationOptions
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() throws {
        let config: SimulationConfig
        let simulation: Simulation
        do {
            config = try options.configuration()
            let data = try config.data.load()
            simulation = try Simulation(config: config, dataset: data)
        } catch let e as SimulationError {
            throw CommandFailure.exit("desgd-bench", e.commandLineMessage) } catch let e as DataError {
            throw CommandFailure.exit("desgd-bench", e.commandLineMessage)
        }
        let peak = Benchmarks.parallelSgemmRate(backend: config.backend, threads: config.threads)
        let bar = ProgressBar(total: config.rounds, label: "simulate")
        var lastEval = ""
        let result: SimulationResult
        do {
            result = try simulation.run { t, evaluation in
                if let e = evaluation {
                    lastEval = "acc \(fixed(100 * e.accuracy))%"
                    if !json && !bar.enabled {
                        print("round \(t + 1): test accuracy \(fixed(100 * e.accuracy))%, loss \(fixed(e.loss, 4))")
                        fflush(nil)  // all streams: progress reaches a pipe or file at once
                    }
                }
                bar.update(t + 1, note: lastEval)
            }
        } catch { throw CommandFailure.exit("desgd-bench", error.commandLineMessage) }
        let perRound = (result.seconds - result.evaluationSeconds) / Double(config.rounds)
        let gradientsPerRound = simulation.gradientsPerRound
        let flops = Double(gradientsPerRound) * (simulation.model.shape.forwardFLOPs
            + simulation.model.shape.backwardFLOPs) * Double(config.batchSize)
        let rate = flops / perRound / 1e9
        let summary: [String: String] = [
            "mode": config.mode.rawValue, "aggregator": simulation.pipeline.spec, "attack": simulation.attack.spec,
            "model": config.model.rawValue, "rounds": String(config.rounds), "threads": String(config.threads),
            "seconds_per_round": fixed(perRound, 4), "class_gradients_per_round": String(gradientsPerRound),
            "gflops": fixed(rate, 1), "sgemm_rate_gflops": fixed(peak, 1), "ratio_to_sgemm": fixed(rate / peak, 3),
            "best_accuracy": fixed(100 * result.bestAccuracy), "final_accuracy": fixed(100 * result.finalAccuracy),
            "total_seconds": fixed(result.seconds, 1),
        ]
        if json {
            try printJSON(summary)
        } else {
            print("\(config.mode.rawValue) \(simulation.pipeline.spec) vs \(simulation.attack.spec), "
                + "\(config.model.rawValue), \(config.rounds) rounds on \(config.threads) threads")
            print("  \(fixed(perRound, 3)) s/round (\(gradientsPerRound) mini-batch gradients), \(fixed(rate, 1))"
                + " GFLOP/s = \(fixed(rate / peak, 3)) of the measured sgemm rate \(fixed(peak, 1)) GFLOP/s")
            print("  best test accuracy \(fixed(100 * result.bestAccuracy))%, final "
                + "\(fixed(100 * result.finalAccuracy))%, \(fixed(result.seconds, 1)) s in all")
        }
    }
}
