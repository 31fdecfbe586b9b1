import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdRecording
import DesgdSimulation
import DesgdTrace
import Foundation

/// The trace figures of docs/design.md §7, as ratios measured in one run: recording overhead (the same
/// training with and without a recorder), trace bytes over raw float32 bytes, write and read MB/s.
struct RecordBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Recording overhead, trace size over raw float32 bytes, and write/read MB/s of traces.",
        discussion: """
        Runs the configured training without and with a recorder in one process, --repetitions times each, alternating \
        the order (ABBA: without, with, with, without, …) so that neither pass always runs on a warmer or a cooler \
        machine; then reads every round of the last trace back (all messages, aggregates and diffs decoded).

        Both passes are timed the same way: from building the simulation until its run has returned, which for the \
        recorded pass is after the recorder has drained its queue and closed the file; evaluation time is subtracted \
        from both. The overhead is reported per repetition (with / without) and as their median.

        Both passes are also measured in CPU seconds of the process (evaluation included), and the recorder's queue in \
        CPU seconds of its thread: figures a busy or noisy machine distorts less than wall time.

        The recorder works on a background queue: write MB/s is raw float32 megabytes recorded per second that queue \
        was busy, while the training shares the cores; read MB/s is raw float32 megabytes decoded per second, \
        digests checked.

        Examples:
          desgd-bench record --attack ipm
          desgd-bench record --preset paper --attack ipm --rounds 40
        """)

    @OptionGroup var options: SimulationOptions
    @Option(help: "Where to write the trace (deleted afterwards unless --keep).") var out: String?
    @Flag(help: "Keep the trace.") var keep = false
    @Option(help: ArgumentHelp("zstd level of the recorder, "
        + "\(rangeText(TraceRecorder.compressionLevelRange)).")) var zstdLevel: Int32 =
        TraceRecorder.defaultCompressionLevel
    @Option(help: "Pairs of runs (without and with a recorder), in alternating order; 1...100.") var repetitions = 2
    @Flag(help: "Print the figures as JSON.") var json = false

    func run() throws {
        let program = "desgd-bench"
        guard (1...100).contains(repetitions) else {
            throw CommandFailure.exit(program, "--repetitions must be in 1...100 (got \(repetitions))")
        }
        let config: SimulationConfig, dataset: Dataset
        do {
            config = try options.configuration()
            try TraceRecorder.checkOptions(keyframeInterval: 100, compressionLevel: zstdLevel)
            dataset = try config.data.load()
        } catch let e as SimulationError {
            throw CommandFailure.exit(program, e.commandLineMessage) } catch let e as DataError {
            throw CommandFailure.exit(program, e.commandLineMessage)
        } catch let e as TraceError { throw CommandFailure.exit(program, e.commandLineMessage) }
        let path = out ?? NSTemporaryDirectory() + "desgd-bench-\(ProcessInfo.processInfo.processIdentifier).trace"
        defer { if !keep { try? FileManager.default.removeItem(atPath: path) } }
        // One pass: seconds of training from building the simulation until run() has returned
        // (recorded: after the recorder drained and closed the trace), evaluation excluded.
        var plainSeconds: [Double] = [], recordedSeconds: [Double] = []
        // The same passes in process CPU seconds (evaluation included in both): the recorder's
        // share of the work, which a noisy machine does not distort as it distorts wall time.
        var plainCPU: [Double] = [], recordedCPU: [Double] = []
        var finalModels = Set<[UInt32]>()
        var summary: RecordingSummary?
        var lastRecorder: TraceRecorder?
        do {
            for k in 0..<repetitions {
                for recorded in k % 2 == 0 ? [false, true] : [true, false] {
                    if recorded {
                        let recorder = try TraceRecorder(path: path, overwrite: out == nil || !recordedSeconds.isEmpty,
                                                         compressionLevel: zstdLevel)
                        let t0 = Stopwatch.now(), c0 = Stopwatch.processCPU()
                        let (result, s) = try RecordingRun.run(config: config, dataset: dataset, recorder: recorder,
                                                               program: program,
                                                               showProgress: false)
                        recordedSeconds.append(Stopwatch.now() - t0 - result.evaluationSeconds)
                        recordedCPU.append(Stopwatch.processCPU() - c0)
                        finalModels.insert(result.finalParameters.map(\.bitPattern))
                        summary = s
                        lastRecorder = recorder
                    } else {
                        let t0 = Stopwatch.now(), c0 = Stopwatch.processCPU()
                        let result = try Simulation(config: config, dataset: dataset).run()
                        plainSeconds.append(Stopwatch.now() - t0 - result.evaluationSeconds)
                        plainCPU.append(Stopwatch.processCPU() - c0)
                        finalModels.insert(result.finalParameters.map(\.bitPattern))
                    }
                }
            }
        } catch let e as SimulationError {
            throw CommandFailure.exit(program, e.commandLineMessage) } catch let e as TraceError {
            throw CommandFailure.exit(program, e.commandLineMessage)
        }
        guard let summary else { throw CommandFailure.exit(program, "no recorded run") }
        func median(_ xs: [Double]) -> Double {
            let s = xs.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let ratios = zip(recordedSeconds, plainSeconds).map { $0 / $1 }
        let medianRatio = median(ratios)
        let cpuRatios = zip(recordedCPU, plainCPU).map { $0 / $1 }
        let recorderCPU = lastRecorder?.statistics.cpuSeconds ?? 0

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
        let figures: [String: Any] = [
            "config": "\(config.mode.rawValue) \(summary.aggregator) vs \(summary.attack), "
                + "\(config.model.rawValue), \(config.rounds) rounds",
            "order": (0..<repetitions).map { $0 % 2 == 0 ? "without,with" : "with,without" }.joined(separator: ","),
            "train_seconds_without_recorder": plainSeconds.map { fixed($0, 2) },
            "train_seconds_with_recorder": recordedSeconds.map { fixed($0, 2) },
            "recording_overhead_ratios": ratios.map { fixed($0, 3) },
            "recording_overhead_ratio_median": fixed(medianRatio, 3),
            "recorder_seconds": fixed(summary.recordingSeconds, 2),
            "cpu_seconds_without_recorder": plainCPU.map { fixed($0, 2) },
            "cpu_seconds_with_recorder": recordedCPU.map { fixed($0, 2) },
            "cpu_ratio_median": fixed(median(cpuRatios), 3),
            "recorder_cpu_seconds": fixed(recorderCPU, 2),
            "drift_seconds": fixed(lastRecorder?.statistics.driftSeconds ?? 0, 2),
            "trace_mb": fixed(mb(summary.traceBytes), 1), "raw_float32_mb": fixed(mb(summary.rawVectorBytes), 1),
            "trace_over_raw": fixed(summary.compressionRatio, 3),
            "write_mb_per_s": fixed(mb(summary.rawVectorBytes) / summary.recordingSeconds, 0),
            "read_mb_per_s": fixed(mb(decoded) / readSeconds, 0),
            "same_final_model": String(finalModels.count == 1),
        ]
        if json { try printJSON(figures); return }
        print(figures["config"]!)
        for k in ratios.indices {
            print("  repetition \(k + 1) (\(k % 2 == 0 ? "without first" : "with first")): \(fixed(plainSeconds[k], 2))"
                + " s without a recorder, \(fixed(recordedSeconds[k], 2)) s with: ratio \(fixed(ratios[k], 3))")
        }
        print("  recording overhead: median ratio \(fixed(medianRatio, 3)) over \(repetitions) repetition"
            + "\(repetitions == 1 ? "" : "s") (target ≤ 1.10); same final model in every"
            + " run: \(finalModels.count == 1)")
        print("  trace \(figures["trace_mb"]!) MB; its round records over the \(figures["raw_float32_mb"]!) MB of raw"
            + " float32 messages, aggregates and diffs they hold: \(figures["trace_over_raw"]!) (target ≤ 0.6)")
        print("  CPU time of the process: median ratio \(fixed(median(cpuRatios), 3)) with / without a recorder ("
            + "\(cpuRatios.map { fixed($0, 3) }.joined(separator: ", "))); the recorder's own queue "
            + "\(fixed(recorderCPU, 2)) s of CPU in the last recorded pass, "
            + "\(fixed(100 * recorderCPU / max(1e-9, plainCPU.last ?? 0), 1)) % of a pass without it")
        print("  recorder busy \(figures["recorder_seconds"]!) s in the background, \(figures["drift_seconds"]!) s of"
            + " it on drift metrics (\(figures["write_mb_per_s"]!) MB/s of raw float32 while the training runs), read "
            + "\(figures["read_mb_per_s"]!) MB/s (every vector decoded, digests checked)")
    }
}
