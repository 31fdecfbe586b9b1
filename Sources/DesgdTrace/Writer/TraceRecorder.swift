import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// What a recording cost and produced.
public struct RecordingStatistics: Sendable, Equatable {
    /// Bytes of the trace file.
    public var traceBytes: UInt64 = 0
    /// float32 bytes of the messages (every sender's, copies included), aggregates and model
    /// diffs the trace holds: what the trace would take written out raw.
    public var rawVectorBytes: UInt64 = 0
    public var roundRecords = 0
    public var keyframes = 0
    public var checkpoints = 0
    /// Time the recorder's background queue spent measuring, encoding, compressing, hashing and
    /// writing records (it overlaps with the training).
    public var seconds = 0.0
    /// The part of `seconds` spent on the drift metrics (FORMAT.md §5.4).
    public var driftSeconds = 0.0
    /// CPU seconds of that work (the queue's thread CPU clock): what the recorder takes from the
    /// cores, whatever else runs on them.
    public var cpuSeconds = 0.0
    /// Bytes of the round records this recording wrote with their vectors: what `rawVectorBytes`
    /// became.
    public var vectorRoundBytes: UInt64 = 0
    /// The whole file's bytes by record type (set when the run has finished; a resumed trace's
    /// copied records included).
    public var composition = TraceComposition()

    /// Like against like: the round records that hold vectors over the raw float32 bytes of those
    /// vectors (docs/design.md §7: ≤ 0.6 for an IPM run); checkpoints and keyframes, which hold state
    /// rather than messages, are not counted against the messages. 0 without vectors.
    public var compressionRatio: Double { rawVectorBytes > 0 ? Double(vectorRoundBytes) / Double(rawVectorBytes) : 0 }
}

/// The recorder: a ``SimulationObserver`` that writes every event of a run into a trace
/// (traces/FORMAT.md). The file is created when the recorder is, so an existing output or an
/// unwritable directory fails before any training.
///
/// Per round it stores the class set, senders, messages (identical ones once; each predicted by
/// the group's first honest message, FORMAT.md §4.2), attack and aggregator decisions, the carried
/// states before and after, the aggregate, the model diff, the recorded rule's
/// ``DeviationMetrics`` and the evaluation. A keyframe (model, class-momentum buffer, server
/// momentum, carried states) precedes every round t with t mod `keyframeInterval` = 0 and follows
/// the last round; with `checkpointInterval` > 0 a state checkpoint (the complete state of the run
/// and of the drift metrics, ``SimulationState``) precedes every round t with t mod it = 0, before
/// that round's keyframe. With a signing key, a signature record follows every keyframe and precedes
/// the index (FORMAT.md §3.6).
///
/// A write error stops the recording and the run (``shouldStop``); ``failure`` tells why.
///
/// Pipelining: the engine's thread only takes what it hands over (a round event is a value; a
/// keyframe's snapshot is copied at once). Measuring, encoding, compressing, hashing and writing run
/// on one serial background queue, in order, so the bytes are those of a sequential recorder. At
/// most two records wait for the queue: memory stays bounded, and a slow disk slows the run down
/// instead of filling the memory.
public final class TraceRecorder: SimulationObserver, @unchecked Sendable {
    public let mode: RecordingMode
    public let keyframeInterval: Int
    let writer: TraceFileWriter
    let encoder = RecordBody.encoder()
    /// A state checkpoint (FORMAT.md §5.5) precedes every round t with t mod this = 0; 0: none.
    public let checkpointInterval: Int
    /// The bodies of the records (bounds set with the run).
    var encoding: RecordEncoder
    var plannedRounds = 0
    /// W of the drift metrics (FORMAT.md §5.4), and the tracker (created with the run).
    public let driftWindow: Int
    /// How the drift metrics sum recent deviations (a fork keeps its parent's).
    public let driftRecent: RecentDrift
    var drift: DriftTracker?
    /// The last round's vector section (on the queue), whose buffer the next round's is built in.
    var sectionStorage: [UInt8] = []
    let queue = DispatchQueue(label: "desgd.trace-recorder")
    let inFlight = DispatchSemaphore(value: 2)
    let lock = NSLock()
    var _statistics = RecordingStatistics()
    var _failure: TraceError?
    /// zstd level 1: on the paper setup it compresses to 0.547 of the raw float32 bytes against
    /// 0.544 at level 3, at 1.07 against 1.19 times the training time without a recorder
    /// (`desgd-bench record --preset paper --attack ipm --rounds 40`); on the quick preset 0.580
    /// against 0.577.
    public static let defaultCompressionLevel: Int32 = 1
    /// Set (e.g. on Ctrl-C) to end the run after the current round, with the trace finished cleanly.
    public var stopRequested = false

    /// The keyframe interval a recording gets when none is asked for: 100, except that a
    /// `decisions` trace with state checkpoints gets keyframes only before its first round and
    /// after its last (an interval of the run's length). There a keyframe holds nothing a
    /// checkpoint does not (model, buffer, server momentum, carried states), and on the paper setup
    /// costs ~15 MB, against ~1 KB for a decisions round: 31 of them were 0.49 GB of a 3 000-round
    /// run. The last one stays: it is the final model, which no checkpoint holds.
    public static func defaultKeyframeInterval(mode: RecordingMode, checkpointInterval: Int, rounds: Int) -> Int {
        mode == .decisions && checkpointInterval > 0 ? max(1, min(rounds, keyframeIntervalRange.upperBound)) : 100
    }

    /// Keyframe intervals: up to the longest run (``SimulationConfig/roundsRange``).
    public static let keyframeIntervalRange = 1...SimulationConfig.roundsRange.upperBound
    /// zstd's regular levels (20–22 are its "ultra" levels, with windows of hundreds of MB).
    public static let compressionLevelRange: ClosedRange<Int32> = 1...19

    /// Checkpoint intervals: 0 (none), or up to the longest run.
    public static let checkpointIntervalRange = 0...SimulationConfig.roundsRange.upperBound

    /// Drift windows W (``DriftTracker``).
    public static let driftWindowRange = 1...DriftTracker.maxWindow

    /// Checks the keyframe and checkpoint intervals, the zstd level and the drift window (front ends
    /// call it before loading data).
    public static func checkOptions(keyframeInterval: Int, compressionLevel: Int32, checkpointInterval: Int = 0,
                                    driftWindow: Int = DriftTracker.defaultWindow) throws(TraceError) {
        guard keyframeIntervalRange.contains(keyframeInterval) else {
            throw .usage(SimulationError.outOfRange(.keyframeInterval, keyframeInterval, keyframeIntervalRange)
                .explanation)
        }
        guard checkpointIntervalRange.contains(checkpointInterval) else {
            throw .usage(SimulationError.outOfRange(.checkpointInterval, checkpointInterval, checkpointIntervalRange)
                .explanation)
        }
        guard compressionLevelRange.contains(compressionLevel) else {
            throw .usage(SimulationError.outOfRange(.compressionLevel, compressionLevel, compressionLevelRange)
                .explanation)
        }
        guard driftWindowRange.contains(driftWindow) else {
            throw .usage(SimulationError.outOfRange(.driftWindow, driftWindow, driftWindowRange).explanation)
        }
    }

    /// With `fork` (`desgd-record --fork`, FORMAT.md §5.1.1) the header names the parent, the run
    /// starts at round `fork.at` (restored by the caller), a state checkpoint and a keyframe precede
    /// that round whatever the intervals, and the drift metrics continue from `forkDrift` (the
    /// parent's drift state at that round).
    public init(path: String, mode: RecordingMode = .full, keyframeInterval: Int = 100, overwrite: Bool = false,
                compressionLevel: Int32 = TraceRecorder.defaultCompressionLevel, signingKey: TraceSigningKey? = nil,
                driftWindow: Int = DriftTracker.defaultWindow, checkpointInterval: Int = 0,
                fork: TraceHeader.ForkInfo? = nil, forkDrift: DriftTrackerState? = nil,
                driftRecent: RecentDrift = DriftTracker.defaultRecent, engine: LiveEngine? = nil) throws(TraceError) {
        try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: compressionLevel,
                                       checkpointInterval: checkpointInterval, driftWindow: driftWindow)
        self.driftWindow = driftWindow
        self.driftRecent = driftRecent
        self.mode = mode
        self.keyframeInterval = keyframeInterval
        self.checkpointInterval = checkpointInterval
        encoding = RecordEncoder(mode: mode, bounds: [])
        resumedAt = nil
        copiedCheckpoint = nil
        self.fork = fork
        self.forkDrift = forkDrift
        self.engine = engine
        writer = try TraceFileWriter(path: path, overwrite: overwrite, compressionLevel: compressionLevel,
            signingKey: signingKey)
        _statistics.traceBytes = writer.bytesWritten
    }

    /// Continues `reader`'s trace into a new file at `path`
    /// (``TraceFileWriter/init(path:continuing:records:checkedUpTo:compressionLevel:signingKey:)``):
    /// its records up to checkpoint `checkpoint` (nil: up to the header record) are copied, and the
    /// run restored from that checkpoint (by the caller) records from its round on, every byte up to
    /// `checkedUpTo` checked against the original. The header's recording options are the trace's;
    /// the drift state is the checkpoint's. `runStarted` writes nothing (the header is copied).
    public init(resuming reader: TraceReader, from checkpoint: Int?, path: String, checkedUpTo: UInt64,
                compressionLevel: Int32 = TraceRecorder.defaultCompressionLevel,
                signingKey: TraceSigningKey? = nil) throws(TraceError) {
        let h = reader.header
        mode = h.recording
        keyframeInterval = h.keyframeInterval
        checkpointInterval = h.checkpointInterval ?? 0
        driftWindow = h.driftWindow ?? DriftTracker.defaultWindow
        driftRecent = h.effectiveDriftRecent
        try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: compressionLevel,
            checkpointInterval: checkpointInterval)
        encoding = RecordEncoder(mode: mode, bounds: h.groups.map(\.resilienceBound))
        plannedRounds = h.config.rounds
        let last = checkpoint.map { reader.checkpointSequence[$0] } ?? 0
        fork = h.fork
        forkDrift = nil
        engine = h.engine
        resumedAt = checkpoint.map { reader.checkpointRounds[$0] } ?? reader.firstRound
        copiedCheckpoint = checkpoint.map { reader.checkpointRounds[$0] }
        if let w = h.driftWindow {
            let tracker = DriftTracker(config: h.config, dimension: h.model.parameterCount, window: w,
                recent: h.effectiveDriftRecent)
            if let k = checkpoint, let state = try reader.checkpoint(k).driftState() {
                do { try tracker.restore(state) } catch {
                    throw .corrupted("\(reader.path): the checkpoint's drift state: \(error.explanation)")
                }
            }
            drift = tracker
        }
        writer = try TraceFileWriter(path: path, continuing: reader.file.source,
                                     records: Array(reader.records[...last]),
                                     checkedUpTo: checkedUpTo, compressionLevel: compressionLevel,
                                     signingKey: signingKey)
        _statistics.traceBytes = writer.bytesWritten
        _statistics.roundRecords = resumedAt! - reader.firstRound
    }

    /// Continues a live federation's trace (FORMAT.md §5.1.2) into a new file at `path`: its records up
    /// to and including its last round record are copied (the keyframe after it, the signature, index
    /// and footer of a run that was stopped are not: an uninterrupted run has none there), and rounds go
    /// on from `round`, the drift metrics from `drift` (rebuilt by the caller from the recorded rounds).
    /// The header is the trace's, so the run tag its clients sign with is unchanged.
    public init(continuingLive reader: TraceReader, round: Int, drift tracker: DriftTracker, path: String,
                compressionLevel: Int32 = TraceRecorder.defaultCompressionLevel,
                signingKey: TraceSigningKey? = nil) throws(TraceError) {
        let h = reader.header
        guard h.engine != nil else { throw .usage("\(reader.path) is not a live federation's trace") }
        mode = h.recording
        keyframeInterval = h.keyframeInterval
        checkpointInterval = 0
        driftWindow = h.driftWindow ?? DriftTracker.defaultWindow
        driftRecent = h.effectiveDriftRecent
        try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: compressionLevel)
        encoding = RecordEncoder(mode: mode, bounds: h.groups.map(\.resilienceBound))
        plannedRounds = h.config.rounds
        fork = nil
        forkDrift = nil
        engine = h.engine
        resumedAt = round
        copiedCheckpoint = nil
        drift = tracker
        guard let last = reader.records.lastIndex(where: { $0.type == .round }) ?? (round == 0 ? 0 : nil),
              round == 0 || reader.records[last].round == round - 1 else {
            throw .corrupted("\(reader.path): its last round record is not of round \(round - 1)")
        }
        let copied = Array(reader.records[...last])
        let end = copied.last.map { $0.offset + $0.size } ?? 0
        writer = try TraceFileWriter(path: path, continuing: reader.file.source, records: copied, checkedUpTo: end,
                                     compressionLevel: compressionLevel, signingKey: signingKey)
        _statistics.traceBytes = writer.bytesWritten
        _statistics.roundRecords = round
    }

    /// The round a resumed recorder starts at, nil otherwise; the round of the checkpoint it copied
    /// (not written again), nil when it started from the header.
    let resumedAt: Int?
    let copiedCheckpoint: Int?
    /// A fork's origin (nil otherwise), and the drift state its run continues from.
    let fork: TraceHeader.ForkInfo?
    let forkDrift: DriftTrackerState?
    /// A live federation's engine (the header's `engine`, FORMAT.md §5.1.2), nil for the simulator.
    let engine: LiveEngine?

    /// The chain digest of the header record once ``runStarted(_:)`` has written it (waits for the
    /// queue): the run tag a live federation's clients sign their messages with.
    public func headerDigest() -> [UInt8] { queue.sync { writer.lastDigest } }

    /// The first round of the trace: a fork's `at`, else 0.
    var firstRound: Int { fork?.at ?? 0 }

    public var path: String { writer.path }
    /// When resuming: the sequence number of the first re-written record that differed from the
    /// original's (read after the run).
    public var mismatchedRecord: Int? { queue.sync { writer.mismatchedRecord } }
    public var shouldStop: Bool { stopRequested || failure != nil }
    /// What was written so far (complete once `runFinished` returned).
    public var statistics: RecordingStatistics { lock.withLock { _statistics } }
    /// The first write error, if any.
    public var failure: TraceError? { lock.withLock { _failure } }

    /// Runs `body` on the recorder's queue unless a write already failed, timing it and keeping the
    /// first error. Waits while two records are already queued.
    func guarded(_ body: @escaping @Sendable () throws(TraceError) -> Void) {
        guard failure == nil else { return }
        inFlight.wait()
        queue.async { [self] in
            defer { inFlight.signal() }
            ThreadNiceness.inheritProcessNiceness()
            guard failure == nil else { return }
            let t0 = Stopwatch.now(), c0 = Stopwatch.threadCPU()
            var error: TraceError?
            do throws(TraceError) { try body() } catch let e { error = e }
            let elapsed = Stopwatch.now() - t0, cpu = Stopwatch.threadCPU() - c0, bytes = writer.bytesWritten
            lock.withLock {
                if _failure == nil { _failure = error }
                _statistics.seconds += elapsed
                _statistics.cpuSeconds += cpu
                _statistics.traceBytes = bytes
            }
        }
    }

    /// Updates the statistics (on the recorder's queue).
    func count(_ update: (inout RecordingStatistics) -> Void) { lock.withLock { update(&_statistics) } }

    public func runStarted(_ setup: SimulationSetup) {
        guard resumedAt == nil else { return }
        do {
            let config = setup.config
            let pipeline = try? AggregatorCatalogue.makePipeline(rule: config.aggregator, pre: config.preAggregators)
            let n = config.honestWorkers, f = config.byzantineWorkers
            let byzantine = Array(n ..< n + f)
            let groups: [TraceHeader.GroupInfo] = config.groupHolders(partition: setup.partition).enumerated()
                .map { g, holders in
                    .init(classIndex: config.mode == .desgd ? g : -1, honestWorkers: holders,
                          byzantineWorkers: byzantine,
                          resilienceBound: pipeline?.resilienceBound(n: holders.count + f, f: config.effectiveF))
                }
            encoding = RecordEncoder(mode: mode, bounds: groups.map(\.resilienceBound))
            let tracker = DriftTracker(config: config, dimension: setup.parameterCount, window: driftWindow,
                recent: driftRecent)
            if let forkDrift {
                do { try tracker.restore(forkDrift) } catch {
                    lock.withLock {
                        _failure = .usage("the parent's drift state does not fit the fork: \(error.explanation)")
                    }
                }
            }
            drift = tracker
            plannedRounds = config.rounds
            // desgd's network's layout, or the clients' model as the engine names it.
            let tensors: [TraceHeader.TensorInfo] =
                config.model.shape.map { shape in
                    ParameterLayout(shape).tensors.map { .init(name: $0.name, offset: $0.offset, shape: $0.shape) }
                } ?? engine?.tensorLayout ?? []
            let header = TraceHeader(
                format: "desgd-trace", formatVersion: [Int(TraceFormat.major), Int(TraceFormat.minor)],
                program: "desgd \(DesgdVersion.current)", config: config, partition: setup.partition,
                dataset: setup.dataset,
                model: .init(architecture: config.model, parameterCount: setup.parameterCount, tensors: tensors),
                backend: setup.backendDescription, aggregator: setup.aggregatorSpec, attack: setup.attackSpec,
                recording: mode, keyframeInterval: keyframeInterval, groups: groups, vectors: [],
                driftWindow: driftWindow,
                numerics: SimulationNumerics.current,
                checkpointInterval: checkpointInterval, fork: fork, driftRecent: driftRecent, engine: engine)
            guarded { [self] () throws(TraceError) in
                try writer.append(.header, round: -1, parts: [RecordBody.jsonPart(header, encoder: encoder)],
                    compress: true)
            }
        }
    }

    public func stateAvailable(atStartOf round: Int, state: () -> SimulationState) {
        // A fork's first round always has one: the fork's starting state (FORMAT.md §5.1.1).
        let due = (checkpointInterval > 0 && round % checkpointInterval == 0) || (fork != nil && round == firstRound)
        guard due, round < plannedRounds, !shouldStop, round != copiedCheckpoint else { return }
        let s = state()
        guarded { [self] () throws(TraceError) in
            // On the queue: the drift tracker has added every round before this one, and no later one.
            let parts = encoding.checkpoint(s, drift: drift?.captureState())
            try writer.append(.checkpoint, round: -1, parts: parts, compress: true)
            self.count { $0.checkpoints += 1 }
        }
    }

    public func roundStarting(_ round: Int, snapshot: () -> ServerSnapshot) {
        guard round % keyframeInterval == 0 || round == firstRound || round == plannedRounds || shouldStop else {
            return
        }
        let s = snapshot()
        guarded { [self] () throws(TraceError) in
            try writer.append(.keyframe, round: round, parts: encoding.keyframe(round: round, snapshot: s),
                compress: true)
            try writer.appendCheckpointSignature()
            self.count { $0.keyframes += 1 }
        }
    }

    public func roundFinished(_ event: RoundEvent) {
        guarded { [self] () throws(TraceError) in
            var (parts, raw, driftSeconds) = encoding.round(event, drift: drift, reusing: &sectionStorage)
            let entry = try writer.append(.round, round: event.round, parts: parts, compress: true)
            sectionStorage = parts.removeLast()
            self.count {
                $0.rawVectorBytes += raw
                if raw > 0 { $0.vectorRoundBytes += entry.size }
                $0.roundRecords += 1
                $0.driftSeconds += driftSeconds
            }
        }
    }

    public func runFinished(_ result: SimulationResult) {
        let interrupted = result.rounds < plannedRounds
        guarded { [self] () throws(TraceError) in
            try self.writer.finish(roundRecords: self.statistics.roundRecords, interrupted: interrupted)
            var composition = TraceComposition(entries: self.writer.entries, mode: self.mode)
            let known = composition.roundBytes + composition.keyframeBytes + composition.checkpointBytes
            composition.otherBytes = self.writer.bytesWritten
                - min(known, self.writer.bytesWritten)  // the footer is no entry
            self.count { $0.composition = composition }
        }
        queue.sync {}  // everything written (or failed) when this returns
    }
}
