import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// Resumption (`desgd-record --resume TRACE`, and `desgd-grid run` for an incomplete cell):
/// continues an interrupted recording from its last state checkpoint (from round 0 without one).
/// The records after the checkpoint are re-simulated and checked byte for byte against the
/// original as they are written (the check of ``Reexecution``), then the run goes on to its
/// configured number of rounds. Everything is written to a temporary file beside the trace, which
/// replaces it once complete, byte-identical to an uninterrupted recording of the same configuration
/// (same arithmetic, same zstd level, same signing key), or earlier when stopped or killed past a
/// later state checkpoint (``Outcome/interrupted(at:resumesFrom:)``, ``adoptLeftover(of:)``): the
/// temporary file then holds every record the original keeps, checked byte for byte, and more, so
/// that a run longer than any one session's time still finishes. Nothing else replaces the original.
public enum ResumeRun {
    public enum Outcome: Sendable, Equatable {
        /// The trace was complete already; nothing was written.
        case alreadyComplete(rounds: Int)
        /// The trace now holds every round: `from` is the round the run restarted at, `checked` the
        /// rounds already recorded after it, re-simulated and found byte-identical.
        case resumed(from: Int, checked: Int, rounds: Int)
        /// Stopped (Ctrl-C) before the end. `resumesFrom` nil: the temporary file was removed, the
        /// trace is unchanged. Otherwise the resumption had written a state checkpoint after the
        /// one it started from, so it replaced the trace (closed as a stopped recording is) and the
        /// next resumption starts from round `resumesFrom` instead of re-simulating those rounds.
        case interrupted(at: Int, resumesFrom: Int?)
    }

    /// Where the resumed file is written until it is complete.
    public static func temporaryPath(for path: String) -> String { path + ".resuming" }

    /// Where a resumption of `reader` starts: the last state checkpoint among the records an
    /// uninterrupted run writes too (`checkpoint`, its index in the reader's table; nil: none, the
    /// run restarts from the header's initial state at round 0), the round it holds, and the byte
    /// up to which the original is kept and its re-simulated records checked.
    public struct StartingPoint: Sendable, Equatable {
        public var checkpoint: Int?
        public var round: Int
        public var checkedUpTo: UInt64
    }

    public static func startingPoint(of reader: TraceReader) -> StartingPoint {
        // The original's records that an uninterrupted run writes too: all complete records of a
        // killed recorder; up to the last round of a stopped one (its closing keyframe, signature,
        // index and footer are those of a run that stopped).
        let kept: ArraySlice<IndexEntry>
        switch reader.completeness {
        case .unfinished: kept = reader.records[...]
        case .complete: kept = reader.records[...(reader.records.lastIndex { $0.type == .round } ?? 0)]
        }
        let checkedUpTo = kept.last.map { $0.offset + $0.size } ?? 0
        // The last checkpoint among the kept records (its sequence number is its index in the table).
        let checkpoint = reader.checkpointRecords.indices.last { k in reader.checkpointRecords[k].offset < checkedUpTo }
        return StartingPoint(checkpoint: checkpoint, round: checkpoint.map { reader.checkpointRounds[$0] } ?? 0,
            checkedUpTo: checkedUpTo)
    }

    /// Throws a ``TraceError``: `.usage` (exit 2) for what the user can change (another data set,
    /// arithmetic, a missing or other signing key), `.mismatch` for a re-simulated record that
    /// differs from the original (exit 1: the trace is not what this configuration records),
    /// `.corrupted` for bytes that fail a check, `.io`
    /// for what the file system refused (a `.resuming` file left by a killed resumption among them).
    /// `dataset`, when given, is the data set already loaded by the caller (a grid shares one copy
    /// between its cells); it must have the header's digest like one loaded here.
    /// `memoryLimit`: what the run may need, checked against the header's shapes before anything is loaded.
    public static func resume(path: String, threads: Int, dataDirectory: String?, dataset given: Dataset? = nil,
                              compressionLevel: Int32, signingKey: TraceSigningKey?,
                              memoryLimit: MemoryLimit = .process,
                              shouldStop: @escaping () -> Bool = { false },
                              progress: @escaping (Int) -> Void = { _ in }) throws(TraceError) -> Outcome {
        _ = try adoptLeftover(of: path)
        let reader = try TraceReader(path: path)
        let h = reader.header
        if case .complete(interrupted: false) = reader.completeness, reader.rounds.upperBound == h.config.rounds {
            return .alreadyComplete(rounds: reader.roundCount)
        }
        let chain = reader.verifyChain()
        guard chain.holds else {
            throw .corrupted("\(path): its digest chain breaks (\(chain.failure ?? "")): it cannot be continued")
        }
        // A signed trace goes on signed by the same key (Ed25519 signatures are deterministic, so the
        // resumed file's signature records are those of an uninterrupted recording).
        let signatures = reader.verifySignatures(chain: chain)
        let signers = signatures.signers.joined(separator: ", ")
        if signatures.status == .invalid { throw .corrupted("\(path): \(signatures.summary): it cannot be continued") }
        if let key = signingKey {
            guard signatures.signers == [key.publicKey.fingerprint] else {
                throw .usage(signatures.signers.isEmpty
                    ? "\(path) is not signed: resume it without \(Setting.signingKey)"
                                                        : "\(path) is signed by \(signers), not by the "
                                                            + "\(Setting.signingKey) key \(key.publicKey.fingerprint)")
            }
        } else if !signatures.signers.isEmpty {
            throw .usage("\(path) is signed by \(signers): pass \(Setting.signingKey) with that key to resume it")
        }
        try Reexecution.checkArithmetic(reader, backend: h.config.backend.description)
        var config = h.config
        config.threads = threads
        // The header's shapes are the audited party's word: they must fit before anything is loaded.
        do { try config.checkMemory(driftWindow: h.driftWindow, limit: memoryLimit) } catch {
            throw .setup("\(path): it cannot be resumed here: ", error)
        }
        let dataset: Dataset
        if let given {
            if let why = given.provenance.mismatch(with: h.dataset) {
                throw .usage("\(path) was recorded on other data than "
                    + "\(DisplayText.quoted(given.provenance.source)): \(why)")
            }
            dataset = given
        } else {
            dataset = try Reexecution.loadDataset(for: h, directory: dataDirectory)
        }
        let point = startingPoint(of: reader)
        let (checkpoint, start, checkedUpTo) = (point.checkpoint, point.round, point.checkedUpTo)
        // A fork starts from its first checkpoint (FORMAT.md §5.1.1), never from the header.
        if checkpoint == nil && h.fork != nil {
            throw .usage("\(path) is a fork stopped before its starting checkpoint was written: fork its parent again")
        }

        let simulation: Simulation
        do {
            simulation = try Simulation(config: config, dataset: dataset, expectedPartition: h.partition,
                                        memoryLimit: memoryLimit)
            if let k = checkpoint {
                try simulation.restore(state: try reader.checkpoint(k).simulationState(), at: start)
            }
        } catch let e as TraceError { throw e } catch let e as SimulationError where e.memoryShortfall != nil {
            throw .setup("\(path): it cannot be resumed here: ", e)
        } catch let e as SimulationError {
            throw .corrupted("\(path): the run cannot be restored: \(e.explanation)")
        } catch { throw .corrupted("\(path): \(error)") }
        guard simulation.partition == h.partition else {
            throw .usage("\(path): this desgd partitions the data otherwise than the recorder did: resume it"
                + " with the desgd that recorded it")
        }

        let temporary = temporaryPath(for: path)
        let recorder = try TraceRecorder(resuming: reader, from: checkpoint, path: temporary, checkedUpTo: checkedUpTo,
                                         compressionLevel: compressionLevel, signingKey: signingKey)
        // Held while this process writes the file: a leftover is one nobody holds (adoptLeftover).
        let writing = FileLock.take(temporary)
        defer { writing?.release() }
        func discard() { try? FileManager.default.removeItem(atPath: temporary) }
        let result: SimulationResult
        do {
            result = try simulation.run(from: start, observer: recorder) { t, _ in
                if shouldStop() { recorder.stopRequested = true }
                progress(t + 1)
            }
        } catch {
            discard()
            throw .corrupted("\(path): round \(error.explanation)")
        }
        if var failure = recorder.failure {
            discard()
            if let seq = recorder.mismatchedRecord, seq < reader.records.count {
                let e = reader.records[seq]
                let what = e.type == .round ? "round \(e.round)" : e.type == .keyframe
                    ? "the keyframe before round \(e.round)" : "record \(seq) (\(e.type.name))"
                failure.kind = .mismatch
                failure.explanation = "\(path): re-simulated from round \(start), \(what) differs from the recorded"
                    + " one: the trace is not what this configuration records here (another "
                    + "\(Setting.compressionLevel), arithmetic or an altered file); it is unchanged"
            }
            throw failure
        }
        let written = recorder.statistics.roundRecords
        guard result.rounds == h.config.rounds else {
            // Any state checkpoint after `start` lies past the original's kept records (`start` is
            // the last among them), so the file holds all of them, each checked as it was written.
            if let later = try? TraceReader(path: temporary), case let point = startingPoint(of: later),
               point.checkpoint != nil, point.round > start, rename(temporary, path) == 0 {
                return .interrupted(at: result.rounds, resumesFrom: point.round)
            }
            discard()
            return .interrupted(at: result.rounds, resumesFrom: nil)
        }
        guard rename(temporary, path) == 0 else {
            let m = String(cString: strerror(errno))
            discard()
            throw .io("cannot replace \(path) with the resumed trace: \(m); it is unchanged")
        }
        return .resumed(from: start, checked: max(0, reader.rounds.upperBound - start), rounds: written)
    }

    /// Takes over `PATH.resuming`, the file of a resumption that was killed (no clean stop), when it
    /// holds more than the trace: the trace's kept records byte for byte (compared, not taken from
    /// the leftover's index), a digest chain that holds, and a state checkpoint after the trace's
    /// last. It then replaces the trace and the round of that checkpoint is returned: the next
    /// resumption starts there, and checks the rounds after it as every resumption does. Returns
    /// nil and leaves both files as they are otherwise (no leftover, unreadable, another run's
    /// bytes, nothing gained, or a file that a live resumption is writing: it holds a lock on it);
    /// the caller decides what becomes of the leftover. Throws `.io` only when the replacing
    /// rename fails.
    ///
    /// Cost: one read of the leftover (its chain) and of the trace's kept bytes, in 1 MiB pieces.
    public static func adoptLeftover(of path: String) throws(TraceError) -> Int? {
        let temporary = temporaryPath(for: path)
        // A file another resumption is still writing (it holds the lock) is not a leftover.
        guard FileManager.default.fileExists(atPath: temporary), let unused = FileLock.take(temporary),
              let original = try? TraceReader(path: path), let leftover = try? TraceReader(path: temporary)
        else { return nil }
        defer { unused.release() }
        let kept = startingPoint(of: original), offered = startingPoint(of: leftover)
        guard offered.checkpoint != nil, offered.round > kept.round, offered.checkedUpTo >= kept.checkedUpTo,
              leftover.verifyChain().holds,
              (try? sameBytes(path, temporary, count: kept.checkedUpTo)) == true
        else { return nil }
        guard rename(temporary, path) == 0 else {
            throw .io("cannot replace \(path) with \(temporary), a killed resumption that got further: "
                + "\(String(cString: strerror(errno))); it is unchanged")
        }
        return offered.round
    }

    /// Whether the first `count` bytes of the two files are equal (both must have that many).
    static func sameBytes(_ a: String, _ b: String, count: UInt64) throws(TraceError) -> Bool {
        let first = try FileSource(path: a), second = try FileSource(path: b)
        guard first.size >= count, second.size >= count else { return false }
        let piece: UInt64 = 1 << 20
        var offset: UInt64 = 0
        while offset < count {
            let n = Int(min(piece, count - offset))
            guard try first.read(offset, n) == second.read(offset, n) else { return false }
            offset += UInt64(n)
        }
        return true
    }
}
