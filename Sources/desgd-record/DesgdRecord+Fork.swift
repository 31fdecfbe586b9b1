import ArgumentParser
import DesgdCLI
import DesgdRecording
import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation

extension DesgdRecord {
    /// `--fork TRACE --at T`: maps the options onto ``TraceFork`` (the parent's configuration with
    /// the options given changed; the recording options default to the parent's).
    func runFork(_ parentPath: String, program: String) throws {
        guard let at else { throw CommandFailure.exit(program, "--fork needs --at T: the round the fork starts at") }
        if options.presetChoice != nil {
            throw CommandFailure.exit(program,
                "--preset: a fork starts from its parent's configuration, not from a preset: drop --preset")
        }
        if options.synthetic != nil {
            throw CommandFailure.exit(program,
                "--synthetic: a fork runs on its parent's data set: drop it (--data DIR says where Fashion-MNIST is)")
        }
        let fork: TraceFork, path: String, mode: RecordingMode, keyframeInterval: Int, checkpointInterval: Int,
            window: Int
        let signingKey: TraceSigningKey?
        do {
            let parent = try TraceReader(path: parentPath).header
            var config = parent.config
            try options.apply(to: &config)
            config.threads = options.threads ?? SimulationConfig.defaultThreads
            try config.validate()
            do {
                mode = try record.map { r throws(TraceError) in try RecordingMode.parse(r) }
                    ?? parent.recording } catch {
                throw TraceError.usage("--record: \(error.explanation)")
            }
            keyframeInterval = keyframeEvery ?? parent.keyframeInterval
            checkpointInterval = checkpointEvery ?? parent.checkpointInterval ?? 0
            try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: zstdLevel,
                checkpointInterval: checkpointInterval)
            // The drift metrics continue the parent's: their state has the parent's window.
            window = parent.driftWindow ?? DriftTracker.defaultWindow
            if let w = driftWindow, w != window {
                let why = "--drift-window: a fork continues its parent's drift metrics, of window "
                    + "\(window) (got \(w)): drop --drift-window"
                throw TraceError.usage("\(why)")
            }
            do { signingKey = try sign.map { p throws(TraceError) in try TraceSigningKey.read(path: p) } } catch {
                throw TraceError.usage("--sign: \(error.explanation)")
            }
            fork = try TraceFork(parentPath: parentPath, at: at, config: config, dataDirectory: options.data)
            if let out {
                path = out
            } else {
                try FileManager.default.createDirectory(atPath: TracePaths.directory, withIntermediateDirectories: true)
                path = TracePaths.forkPath(parent: parentPath, fork: fork.info)
            }
            if sameFile(path, parentPath) {
                let why = "--out \(path) is the parent trace: a fork never replaces its"
                    + " parent; choose another --out"
                throw TraceError.usage("\(why)") }
        } catch let e as SimulationError { throw CommandFailure.exit(program, e) } catch let e as TraceError {
            throw CommandFailure.exit(program, e)
        } catch { throw CommandFailure.exit(program, "\(error.localizedDescription)") }

        InterruptFlag.install()
        let bar = ProgressBar(total: (at - fork.verified.start) + (fork.config.rounds - at), label: "fork")
        let outcome: TraceFork.Outcome
        do {
            outcome = try fork.run(makeRecorder: { info, drift throws(TraceError) in
                try TraceRecorder(path: path, mode: mode, keyframeInterval: keyframeInterval, overwrite: force,
                                  compressionLevel: zstdLevel,
                                  signingKey: signingKey, driftWindow: window, checkpointInterval: checkpointInterval,
                                  fork: info, forkDrift: drift,
                                  driftRecent: fork.parent.header.effectiveDriftRecent)
            }, shouldStop: { InterruptFlag.isRaised }) { done, _ in bar.update(done) }
        } catch { throw CommandFailure.exit(program, error) }
        let changes = fork.info.changes.isEmpty ? "nothing changed"
            : fork.info.changes.map { "\($0.option) \($0.parent) → \($0.fork)" }.joined(separator: ", ")
        let verified = fork.verified.start == at ? "its state checkpoint of round \(at)"
            : "its rounds \(fork.verified.start)..<\(at) re-simulated byte for byte"
        switch outcome {
        case .parentDiffers(let message):
            print("fork FAILED: \(message)")
            throw ExitCode(1)
        case .forked(let end, let best, let final):
            print("forked \(parentPath) at round \(at) (\(verified); \(changes))")
            print("  \(path): rounds \(at)..<\(end), best test accuracy \(String(format: "%.2f", 100 * best))%, final "
                + "\(String(format: "%.2f", 100 * final))%")
        case .interrupted(let end):
            print("interrupted: \(path) holds rounds \(at)..<\(end) of the fork (\(changes)); the parent is unchanged")
            throw ExitCode(130)
        }
    }

    /// Whether two paths name the same existing file.
    func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }
}
