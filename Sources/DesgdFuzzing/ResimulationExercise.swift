import DesgdNumerics
import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation

/// What the commands that re-simulate do with a trace they were handed, on small inputs and
/// bounded in time: `desgd-replay --reexecute` of the first segment (two rounds at most), a
/// decisions round rebuilt (`--agg` on a `decisions` trace), `desgd-record --resume` (restoration
/// from the last checkpoint, stopped after one round) and `desgd-record --fork` (the parent checked
/// up to the fork's round, the fork stopped after one round). Every run obeys ``memoryLimit``, so a
/// header claiming a huge shape is refused before anything is allocated, never allocated; only
/// synthetic data sets of at most ``maximumImages`` images are used (Fashion-MNIST is not loaded),
/// and a shape that fits the limit but would take long per round is skipped.
public enum ResimulationExercise {
    /// The memory the re-simulations may need: far below any machine's default.
    public static let memoryLimit = MemoryLimit(bytes: 256 << 20)
    /// Synthetic training plus test images generated at most.
    public static let maximumImages = 4_000
    /// Mini-batch samples per round at most (honest momenta × batch size).
    public static let maximumSamplesPerRound = 4_000

    /// Runs the re-simulations of `bytes` (already opened as `reader`), appending each refusal or
    /// error to `errors`.
    public static func run(_ bytes: [UInt8], reader: TraceReader, errors: inout [String]) {
        let h = reader.header
        guard case .synthetic(let train, let test, _) = h.config.data, train + test <= maximumImages else { return }
        func attempt(_ what: String, _ body: () throws -> Void) {
            do { try body() } catch { errors.append("\(what): \(error)") }
        }
        // A shape that fits the limit but would take long is skipped; one that does not fit goes
        // on, to be refused by the library before anything is allocated.
        var config = h.config
        config.threads = 1
        let fits = (try? config.checkMemory(driftWindow: h.driftWindow, runs: 2, limit: memoryLimit)) != nil
        let held: Int
        switch config.partition {
        case .labelSkew(let k): held = config.mode == .desgd ? k : 1
        default: held = config.mode == .desgd ? config.classes : 1
        }
        let samples = config.honestWorkers.multipliedReportingOverflow(by: held).partialValue
            .multipliedReportingOverflow(by: config.batchSize).partialValue
        if fits && samples > maximumSamplesPerRound { return }

        // As the commands do: the memory check first, then the data set (its digest checked), then the runs.
        attempt("reexecute") {
            guard let first = try Reexecution.segments(of: reader, rounds: reader.rounds).first else { return }
            try Reexecution.checkMemory(reader, threads: 1, segments: 1, limit: memoryLimit)
            let dataset = try Reexecution.loadDataset(for: h, directory: nil)
            let segment = Reexecution.Segment(start: first.start, end: min(first.end, first.start + 2),
                                              checkpoint: first.checkpoint)
            _ = try Reexecution.run(reader, dataset: dataset, segments: [segment], threads: 1, memoryLimit: memoryLimit)
        }
        attempt("rebuild") {
            guard let t = reader.rounds.first(where: { !h.recording.storesVectors(round: $0) }) else { return }
            let rebuilder = try RoundRebuilder(reader: reader, dataDirectory: nil, threads: 1, memoryLimit: memoryLimit)
            guard rebuilder.simulatedRounds(for: [t]) <= 3 else { return }
            _ = try rebuilder.round(t)
        }
        let directory = NSTemporaryDirectory() + "desgd-fuzz-\(UUID().uuidString)"
        let files = FileManager.default
        do { try files.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch { return }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/hostile.trace", cut = directory + "/interrupted.trace"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return }
        // A complete trace has nothing to resume: its last round, index and footer cut off, it
        // has (the run restores its last checkpoint and re-simulates from there).
        if var records = TraceMutator.split(bytes) {
            while let last = records.last,
                  last.type == RecordType.index.rawValue || last.type == RecordType.footer.rawValue {
                records.removeLast()
            }
            if let last = records.lastIndex(where: { $0.type == RecordType.round.rawValue }) {
                records.removeSubrange(last...)
            }
            let interrupted = TraceMutator.join(Array(bytes.prefix(TraceFormat.signatureSize)), records)
            _ = FileManager.default.createFile(atPath: cut, contents: Data(interrupted))
        }
        attempt("adopt") {
            // The hostile file as a killed resumption's leftover of the cut trace: taken over only
            // when it holds the cut trace byte for byte; otherwise removed, as the grid does.
            let leftover = ResumeRun.temporaryPath(for: cut)
            defer { try? FileManager.default.removeItem(atPath: leftover) }
            guard FileManager.default.createFile(atPath: leftover, contents: Data(bytes)) else { return }
            _ = try ResumeRun.adoptLeftover(of: cut)
        }
        attempt("resume") {
            // Stopped after the first round past those recorded (a stop among the rounds being checked
            // is reported as a difference by the resumption: not what is exercised here).
            let recorded = (try? TraceReader(path: cut))?.rounds.upperBound ?? 0
            let done = Counter()
            _ = try ResumeRun.resume(path: cut, threads: 1, dataDirectory: nil, compressionLevel: 1, signingKey: nil,
                                     memoryLimit: memoryLimit, shouldStop: { done.value > recorded },
                                     progress: { done.value = $0 })
        }
        attempt("fork") {
            let at = min(reader.firstRound + 1, reader.rounds.upperBound)
            config.rounds = max(config.rounds, at + 1)
            let fork = try TraceFork(parentPath: path, at: at, config: config, dataDirectory: nil,
                                     memoryLimit: memoryLimit)
            _ = try fork.run(makeRecorder: { info, drift throws(TraceError) in
                try TraceRecorder(path: directory + "/fork.trace", mode: h.recording,
                                  keyframeInterval: max(1, h.keyframeInterval), overwrite: true, compressionLevel: 1,
                                  driftWindow: h.driftWindow ?? DriftTracker.defaultWindow,
                                  checkpointInterval: h.checkpointInterval ?? 0, fork: info, forkDrift: drift,
                                  driftRecent: h.effectiveDriftRecent)
            }, shouldStop: { true })
        }
    }
}

/// A count shared with the escaping closures of a resumption.
final class Counter: @unchecked Sendable {
    var value = 0
}
