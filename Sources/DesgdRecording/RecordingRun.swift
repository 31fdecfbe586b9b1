import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// A simulation recorded into a trace: the body of `desgd-record` (whose front end adds a progress
/// bar), of the recording benchmark and of every grid cell, so that each writes the same bytes.
public enum RecordingRun {
    /// Runs `config` into `recorder`: `progress(t, evaluation)` after every round, and the run
    /// ends cleanly after the round in which `shouldStop()` first returns true (the grid runner's
    /// Ctrl-C). Throws a ``SimulationError`` when the run cannot start, and the recorder's first
    /// failure as the ``TraceError`` it is (a disk error is an I/O failure, not bad input).
    /// `simulation`: the run's simulation when the caller has built it already (to check the
    /// configuration against the data before creating the file), built here otherwise.
    public static func run(config: SimulationConfig, dataset: Dataset, simulation: Simulation? = nil,
                           recorder: TraceRecorder, shouldStop: () -> Bool,
                           progress: (Int, Evaluation?) -> Void) throws -> (SimulationResult, RecordingSummary) {
        let simulation = try simulation ?? Simulation(config: config, dataset: dataset)
        let result = try simulation.run(observer: recorder) { t, evaluation in
            if shouldStop() { recorder.stopRequested = true }
            progress(t, evaluation)
        }
        if let failure = recorder.failure { throw failure }
        let s = recorder.statistics
        let summary = RecordingSummary(
            trace: recorder.path, mode: config.mode.rawValue, aggregator: simulation.pipeline.spec,
            attack: simulation.attack.spec,
            model: config.model.rawValue, seed: config.seed, rounds: result.rounds, plannedRounds: config.rounds,
            interrupted: result.rounds < config.rounds, bestAccuracy: result.bestAccuracy,
            finalAccuracy: result.finalAccuracy,
            traceBytes: s.traceBytes, composition: s.composition, rawVectorBytes: s.rawVectorBytes,
            compressionRatio: s.compressionRatio,
            seconds: result.seconds, recordingSeconds: s.seconds)
        return (result, summary)
    }
}
