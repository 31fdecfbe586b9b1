import DesgdNumerics
import DesgdRecording
import DesgdSimulation
import DesgdTrace
import Foundation

/// Ctrl-C (SIGINT) or SIGTERM (what Slurm's `scancel` and time limits send) while recording: the
/// first one ends the run after the current round with the trace finished cleanly (index and
/// footer written); a second one kills the process as usual (the trace is still readable up to
/// its last complete round).
public enum InterruptFlag {
    nonisolated(unsafe) static var raised: sig_atomic_t = 0

    public static func install() {
        for s in [SIGINT, SIGTERM] {
            signal(s) { received in
                InterruptFlag.raised = 1
                signal(received, SIG_DFL)
            }
        }
    }

    public static var isRaised: Bool { raised != 0 }
}

/// Runs a simulation into a trace with a progress bar (or one line per evaluation when standard
/// error is not a terminal): the body of `desgd-record`, shared with the recording benchmark.
extension RecordingRun {
    public static func run(config: SimulationConfig, dataset: Dataset, simulation: Simulation? = nil,
                           recorder: TraceRecorder, program: String,
                           showProgress: Bool) throws -> (SimulationResult, RecordingSummary) {
        let bar = ProgressBar(total: config.rounds, label: program)
        var lastEvaluation = ""
        let outcome = try run(config: config, dataset: dataset, simulation: simulation, recorder: recorder,
                              shouldStop: { InterruptFlag.isRaised }) { t, evaluation in
            guard showProgress else { return }
            if let e = evaluation {
                lastEvaluation = "acc \(String(format: "%.2f", 100 * e.accuracy))%"
                if !bar.enabled {
                    print("round \(t + 1): test accuracy \(String(format: "%.2f", 100 * e.accuracy))%, loss "
                        + "\(String(format: "%.4f", e.loss))")
                    fflush(nil)
                }
            }
            bar.update(t + 1, note: lastEvaluation)
        }
        if bar.enabled && outcome.0.rounds < config.rounds { FileHandle.standardError.write(Data("\n".utf8)) }
        return outcome
    }
}
