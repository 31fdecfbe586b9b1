import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// The trace figures of PRODUCT.md §7, as ratios measured in one run: recording overhead (the same
/// training with and without a recorder), trace bytes over raw float32 bytes, write and read MB/s.
struct RecordBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Recording overhead, trace size over raw float32 bytes, and write/read MB/s of traces.",
        discussion: """
        Runs the configured training twice in one process, without and then with a recorder, then
        reads every round of the trace back (all messages, aggregates and diffs decoded). The
        overhead is the ratio of the two runs' training time (evaluation excluded from both). The
        recorder works on a background queue: write MB/s is raw float32 megabytes recorded per second
        that queue was busy, while the training shares the cores; read MB/s is raw float32 megabytes
        decoded per second, digests checked.

        Examples:
          desgd-bench record --attack ipm                      # quick preset
          desgd-bench record --preset paper --attack ipm --rounds 40
        """)

    @OptionGroup var options: SimulationOptions
    @Option(help: "Where to write the trace (deleted afterwards unless --keep).") var out: String?
    @Flag(help: "Keep the trace.") var keep = false
    @Option(help: "zstd level of the recorder.") var zstdLevel: Int32 = TraceRecorder.defaultCompressionLevel
    @Flag(help: "Print the figures as JSON.") var json = false

    func run() throws {
        let program = "desgd-bench"
        let config: SimulationConfig, dataset: Dataset
        do {
            config = try options.configuration()
            dataset = try config.data.load()
        } catch let e as SimulationError { throw CommandFailure.exit(program, e.message) } catch let e as DataError {
            throw CommandFailure.exit(program, e.message)
        }
        let path = out ?? NSTemporaryDirectory() + "desgd-bench-\(ProcessInfo.processInfo.processIdentifier).trace"
        defer { if !keep { try? FileManager.default.removeItem(atPath: path) } }
        let plain: SimulationResult, recorded: SimulationResult, summary: RecordingSummary, recorder: TraceRecorder
        do {
            plain = try Simulation(config: config, dataset: dataset).run()
            recorder = try TraceRecorder(path: path, overwrite: out == nil, compressionLevel: zstdLevel)
            (recorded, summary) = try RecordingRun.run(config: config, dataset: dataset, recorder: recorder, program: program,
                                                       showProgress: false)
        } catch let e as SimulationError { throw CommandFailure.exit(program, e.message) } catch let e as TraceError {
            throw CommandFailure.exit(program, e.message)
        }
        let plainSeconds = plain.seconds - plain.evaluationSeconds
        let recordedSeconds = recorded.seconds - recorded.evaluationSeconds

        // Read back: every round, every vector decoded.
        let t0 = Stopwatch.now()
        var decoded: UInt64 = 0
        let reader = try TraceReader(path: path)
        try reader.forEachRound { round in
            for k in round.aggregations.indices {
                decoded += UInt64(4 * (try round.messages(k).storage.count + round.aggregate(k).count))
            }
            decoded += UInt64(4 * (try round.modelDiff().count))
        }
        let readSeconds = Stopwatch.now() - t0

        let mb = { (b: UInt64) in Double(b) / 1e6 }
        let figures: [String: String] = [
            "config": "\(config.mode.rawValue) \(summary.aggregator) vs \(summary.attack), \(config.model.rawValue), \(config.rounds) rounds",
            "train_seconds_without_recorder": fixed(plainSeconds, 2), "train_seconds_with_recorder": fixed(recordedSeconds, 2),
            "recording_overhead_ratio": fixed(recordedSeconds / plainSeconds, 3),
            "recorder_seconds": fixed(summary.recordingSeconds, 2),
            "drift_seconds": fixed(recorder.statistics.driftSeconds, 2),
            "trace_mb": fixed(mb(summary.traceBytes), 1), "raw_float32_mb": fixed(mb(summary.rawVectorBytes), 1),
            "trace_over_raw": fixed(summary.compressionRatio, 3),
            "write_mb_per_s": fixed(mb(summary.rawVectorBytes) / summary.recordingSeconds, 0),
            "read_mb_per_s": fixed(mb(decoded) / readSeconds, 0),
            "same_final_model": String(plain.finalParameters.map(\.bitPattern) == recorded.finalParameters.map(\.bitPattern)),
        ]
        if json { try printJSON(figures); return }
        print(figures["config"]!)
        print("  training \(figures["train_seconds_without_recorder"]!) s without a recorder, \(figures["train_seconds_with_recorder"]!) s with: overhead ratio \(figures["recording_overhead_ratio"]!) (target ≤ 1.10); same final model: \(figures["same_final_model"]!)")
        print("  trace \(figures["trace_mb"]!) MB for \(figures["raw_float32_mb"]!) MB of raw float32 messages, aggregates and diffs: \(figures["trace_over_raw"]!) (target ≤ 0.6)")
        print("  recorder busy \(figures["recorder_seconds"]!) s in the background, \(figures["drift_seconds"]!) s of it on drift metrics (\(figures["write_mb_per_s"]!) MB/s of raw float32 while the training runs), read \(figures["read_mb_per_s"]!) MB/s (every vector decoded, digests checked)")
    }
}
