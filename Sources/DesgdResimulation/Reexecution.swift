import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// The outcome of `desgd-replay --reexecute`.
public struct ReexecutionReport: Sendable, Equatable {
    public var segmentsRun = 0
    public var roundsChecked = 0
    public var keyframesChecked = 0
    public var checkpointsChecked = 0
    /// The first difference, as a sentence naming the round (and class and worker when a message
    /// differs); nil when everything matched.
    public var mismatch: String?
    public var mismatchRound: Int?
    public var passed: Bool { mismatch == nil }
}

/// Re-execution (docs/reexecution.md): re-simulates a recorded run from its state checkpoints with the
/// header's configuration and compares every record it would have written (rounds: messages,
/// attack and rule decisions, carried states, aggregates, metrics, drift, model diffs, evaluations;
/// keyframes; the next checkpoint) with the trace, byte for byte of the decompressed bodies. That
/// checks what `--verify` cannot: that the honest messages are what honest workers compute.
///
/// The run is cut into *segments* at its checkpoints: each starts from the state a checkpoint
/// holds (or from the header's initial state at round 0) and ends at the next one, which it
/// compares; segments are therefore independent, run in parallel (one ``Simulation`` each: memory
/// is one run per thread, whatever the number of rounds), and can be shared out (``share(_:part:of:)``).
/// Exactness needs the same arithmetic: the same engine numerics and backend kernel, checked first.
public enum Reexecution {
    /// Rounds `start..<end` re-simulated from checkpoint `checkpoint` of the reader (nil: from the
    /// initial state of round 0).
    public struct Segment: Sendable, Equatable {
        public var start: Int
        public var end: Int
        public var checkpoint: Int?
        public init(start: Int, end: Int, checkpoint: Int?) {
            self.start = start
            self.end = end
            self.checkpoint = checkpoint
        }
    }

    /// The engine numerics a trace was recorded with: the header's `numerics` (format 1.2), 1 when
    /// absent (every trace before the key existed).
    public static func numerics(of reader: TraceReader) -> Int { reader.header.effectiveNumerics }

    /// Refuses (a usage error, exit 2) a trace whose arithmetic this engine does not reproduce:
    /// other numerics, or another backend kernel than `backend` (this machine's description of the
    /// header's backend).
    public static func checkArithmetic(_ reader: TraceReader, backend: String) throws(TraceError) {
        if let engine = reader.header.engine {
            let name = DisplayText.quoted(engine.name, limit: 40),
                version = DisplayText.quoted(engine.version, limit: 40)
            throw .usage("\(reader.path) was recorded from a live federation (\(name) "
                + "\(version)): its clients computed the "
                         + "messages outside desgd, so it cannot be re-executed, rebuilt, resumed or forked; replay, "
                         + "verify and audit it instead")
        }
        let n = numerics(of: reader)
        guard n == SimulationNumerics.current else {
            throw .usage("\(reader.path) was recorded by engine numerics \(n), this desgd computes numerics "
                + "\(SimulationNumerics.current): re-execution is exact only on the same arithmetic;"
                + " use the desgd that recorded it")
        }
        guard backend == reader.header.backend else {
            throw .usage("\(reader.path) was recorded with the backend kernel '"
                + "\(DisplayText.quoted(reader.header.backend))', this machine runs '\(backend)': re-execution is"
                + " exact only on the same kernel")
        }
    }

    /// The data set the run was recorded on: the header's source (a Fashion-MNIST `directory`
    /// instead of the recorded one when given), refused unless its digest is the header's.
    public static func loadDataset(for header: TraceHeader, directory: String?) throws(TraceError) -> Dataset {
        var source = header.config.data
        if let directory {
            guard case .fashionMNIST = source else {
                throw .usage("\(Setting.dataDirectory): the trace was recorded on "
                    + "\(DisplayText.quoted(source.description)), not on Fashion-MNIST") }
            source = .fashionMNIST(directory: directory)
        }
        let dataset: Dataset
        do { dataset = try source.load() } catch { throw .usage(error.explanation) }
        // The files actually read, their digests and the normalisation derived from them must be the
        // header's (FORMAT.md §5.1, §6): a header whose provenance was rewritten is refused here.
        if let why = dataset.provenance.mismatch(with: header.dataset) {
            throw .usage("the data set \(DisplayText.quoted(dataset.provenance.source)) is not the one the trace was "
                + "recorded on: \(why); pass \(Setting.dataDirectory) DIR with the data it was recorded on")
        }
        return dataset
    }

    /// The segments that re-execute rounds `rounds`: from the last checkpoint at or before its
    /// start, cut at every checkpoint, the last one ending at the range's end.
    public static func segments(of reader: TraceReader, rounds: Range<Int>) throws(TraceError) -> [Segment] {
        guard !rounds.isEmpty else { throw .usage("no rounds to re-execute: give \(Setting.rounds) A:B with A < B") }
        let cuts = reader.checkpointRounds
        let first: (round: Int, checkpoint: Int?)
        if let k = reader.lastCheckpoint(atOrBefore: rounds.lowerBound) {
            first = (cuts[k], k)
        } else if rounds.lowerBound == 0 {
            first = (0, nil)
        } else {
            throw .usage("\(reader.path) has no state checkpoint at or before round \(rounds.lowerBound) (recorded"
                + " without \(Setting.checkpointInterval)): without one, re-execution starts from the initial state, so"
                + " give \(Setting.rounds) 0:\(rounds.upperBound)")
        }
        var out: [Segment] = []
        var start = first
        for (k, c) in cuts.enumerated() where c > start.round && c < rounds.upperBound {
            out.append(Segment(start: start.round, end: c, checkpoint: start.checkpoint))
            start = (c, k)
        }
        out.append(Segment(start: start.round, end: rounds.upperBound, checkpoint: start.checkpoint))
        return out
    }

    /// The segments of `run` (of `reader`) whose starting checkpoint the run takes on trust: a
    /// checkpoint is compared by the segment that ends at it, so a run verifies its segments' starts
    /// only when it also holds the segment before; at round 0 the run starts from the header's
    /// initial state and compares the checkpoint there. A fork's first checkpoint is its starting
    /// state: ``ForkDescent`` checks it.
    public static func unverifiedStarts(_ run: [Segment], of reader: TraceReader) -> [Segment] {
        run.filter { s in
            s.checkpoint != nil && !(s.start == 0 && reader.header.fork == nil)
                && !run.contains { $0.end == s.start && $0.start < s.start }
        }
    }

    /// Part `k` (1...n) of `n` of the segments: those whose position i (from 0) has i mod n = k − 1.
    /// The parts k = 1…n together hold every segment exactly once.
    public static func share(_ segments: [Segment], part k: Int, of n: Int) -> [Segment] {
        segments.enumerated().filter { $0.offset % n == k - 1 }.map(\.element)
    }

    /// Re-executes `segments` on up to `threads` threads (segments in parallel, each run with the
    /// threads left over). `progress(rounds)` reports rounds re-executed so far (from any thread,
    /// one call at a time).
    /// `memoryLimit`: what the runs held at once may need (checked before any is built).
    public static func run(_ reader: TraceReader, dataset: Dataset, segments: [Segment], threads: Int,
                           memoryLimit: MemoryLimit = .process,
                           progress: @escaping (Int) -> Void = { _ in }) throws(TraceError) -> ReexecutionReport {
        let threads = max(1, threads)
        let parallel = max(1, min(threads, segments.count))
        var segmentConfig = reader.header.config
        segmentConfig.threads = max(1, threads / parallel)
        let config = segmentConfig
        // One run per segment in parallel: all of them must fit before any is built.
        try checkMemory(reader, threads: threads, segments: segments.count, limit: memoryLimit)
        let slots = ResultSlots<Result<SegmentResult, TraceError>>(count: segments.count)
        let shared = Shared(progress: progress)
        let positions = roundsBefore(reader.records, first: reader.firstRound)
        ParallelExecutor(threads: parallel).forEach(segments.count) { i, _ in
            do throws(TraceError) {
                slots[i] = .success(try runSegment(segments[i], reader: reader, dataset: dataset, config: config,
                                                   positions: positions, shared: shared, memoryLimit: memoryLimit))
            } catch {
                slots[i] = .failure(error)
            }
        }
        var report = ReexecutionReport()
        for i in segments.indices {
            let r: SegmentResult
            switch slots[i]! {
            case .success(let x): r = x
            case .failure(let e): throw e
            }
            report.segmentsRun += 1
            report.roundsChecked += r.rounds
            report.keyframesChecked += r.keyframes
            report.checkpointsChecked += r.checkpoints
            if let m = r.mismatch, report.mismatchRound.map({ m.round < $0 }) ?? true {
                report.mismatch = m.message
                report.mismatchRound = m.round
            }
        }
        return report
    }

    /// Throws unless the runs that re-executing `segments` segments on `threads` threads holds at
    /// once (one per segment in parallel) fit `limit`: the header's shapes are the audited party's
    /// word, so this comes before the data set is loaded or anything is built.
    public static func checkMemory(_ reader: TraceReader, threads: Int, segments: Int,
                                   limit: MemoryLimit = .process) throws(TraceError) {
        let parallel = max(1, min(max(1, threads), segments))
        var config = reader.header.config
        config.threads = max(1, max(1, threads) / parallel)
        do { try config.checkMemory(driftWindow: reader.header.driftWindow, runs: parallel, limit: limit) } catch {
            let what = parallel == 1 ? "it" : "\(parallel) segments at once"
            throw .setup("\(reader.path): re-executing \(what): ", error)
        }
    }

    /// For every record, `first` plus the number of round records before it (a checkpoint's round).
    static func roundsBefore(_ records: [IndexEntry], first: Int) -> [Int] {
        var n = first
        return records.map { e in
            defer { if e.type == .round { n += 1 } }
            return n
        }
    }

    struct Mismatch: Sendable {
        var round: Int
        var message: String
    }

    struct SegmentResult: Sendable {
        var rounds = 0, keyframes = 0, checkpoints = 0
        var mismatch: Mismatch?
    }

    /// What the segments share: the progress count, and the earliest mismatch found so far (a
    /// segment that starts after it stops: its result could not be the first difference).
    final class Shared: @unchecked Sendable {
        let lock = NSLock()
        let progress: (Int) -> Void
        var done = 0
        var earliestMismatch = Int.max
        init(progress: @escaping (Int) -> Void) { self.progress = progress }
        func roundDone() { lock.withLock { done += 1; progress(done) } }
        func found(_ round: Int) { lock.withLock { earliestMismatch = min(earliestMismatch, round) } }
        var earliest: Int { lock.withLock { earliestMismatch } }
    }

    static func runSegment(_ segment: Segment, reader: TraceReader, dataset: Dataset, config: SimulationConfig,
                           positions: [Int], shared: Shared,
                           memoryLimit: MemoryLimit) throws(TraceError) -> SegmentResult {
        let run = try SegmentSimulation(reader: reader, dataset: dataset, config: config, start: segment.start,
                                        checkpoint: segment.checkpoint, decompressor: ZstdDecompressor(),
                                        memoryLimit: memoryLimit)
        return try check(segment, run: run, reader: reader, positions: positions, shared: shared)
    }

    /// Advances `run` (in the state of `segment.start`) through the segment, comparing every
    /// record it would write with the trace's; stops at the first difference.
    static func check(_ segment: Segment, run: SegmentSimulation, reader: TraceReader,
                      positions: [Int], shared: Shared) throws(TraceError) -> SegmentResult {
        let decompressor = ZstdDecompressor()
        let simulation = run.simulation, tracker = run.tracker, encoder = run.encoder
        var result = SegmentResult()
        var t = segment.start
        let lastRound = reader.rounds.upperBound
        for (k, e) in reader.records.enumerated() {
            let p = positions[k]
            let wanted: Bool = switch e.type {
            case .round: e.round >= segment.start && e.round < segment.end
            case .keyframe: e.round >= segment.start
                && (e.round < segment.end || (e.round == segment.end && segment.end == lastRound))
            // The checkpoint a segment starts from was compared by the segment before (or is the
            // initial state at round 0, compared here); the next one is compared here.
            case .checkpoint: (p > segment.start && p <= segment.end)
                || (p == 0 && segment.start == 0 && reader.header.fork == nil)
            default: false
            }
            guard wanted else { continue }
            if shared.earliest < t { return result }
            let recorded = try reader.bodyBytes(ofRecord: k, using: decompressor)
            switch e.type {
            case .round:
                let (event, body) = try run.advance()
                if body != recorded {
                    let message = try describeRound(t, event: event, encoded: body, reader: reader,
                        decompressor: decompressor)
                    shared.found(t)
                    result.mismatch = Mismatch(round: t, message: message)
                    return result
                }
                result.rounds += 1
                t += 1
                shared.roundDone()
            case .keyframe:
                let body = Array(encoder.keyframe(round: t, snapshot: simulation.snapshot()).joined())
                if body != recorded {
                    shared.found(t)
                    result.mismatch = Mismatch(round: t,
                        message: "the keyframe before round \(t) differs from the re-executed server state (model,"
                        + " class-momentum buffer or carried states)")
                    return result
                }
                result.keyframes += 1
            default:
                let state = simulation.captureState(round: t), drift = tracker?.captureState()
                let body = Array(encoder.checkpoint(state, drift: drift).joined())
                if body != recorded {
                    let index = reader.checkpointRecords.firstIndex { $0.offset == e.offset } ?? 0
                    let message = try describeCheckpoint(t, state: state, drift: drift,
                        recorded: reader.checkpoint(index, using: decompressor))
                    shared.found(t)
                    result.mismatch = Mismatch(round: t, message: message)
                    return result
                }
                result.checkpoints += 1
            }
        }
        if t < segment.end {
            throw .corrupted("\(reader.path): rounds \(t)..<\(segment.end) are not in the trace")
        }
        return result
    }

    /// The first field of round `t` that differs, in the order the server met them: per
    /// aggregation the senders, each sender's message, the attack's decision, the rule's decision
    /// and states, the aggregate and metrics; then the model diff, the evaluation and the drift.
    static func describeRound(_ t: Int, event: RoundEvent, encoded: [UInt8], reader: TraceReader,
                              decompressor: ZstdDecompressor) throws(TraceError) -> String {
        let recorded = try reader.round(t, using: decompressor)
        let mine: RoundContent
        switch ParsedBody<RoundContent>.parse(encoded, decoder: RecordBody.decoder()) {
        case .success(let p): mine = p.content
        case .failure(let f): return "round \(t): the re-executed round does not encode (\(f.reason))"
        }
        let r = recorded.content
        guard r.classes == event.classes, r.aggregations.count == event.aggregations.count else {
            return "round \(t): the recorded class set \(r.classes) differs from the re-executed \(event.classes)"
        }
        for (k, a) in event.aggregations.enumerated() {
            let ra = r.aggregations[k]
            let which = a.classIndex >= 0 ? "round \(t), class \(a.classIndex)" : "round \(t)"
            guard ra.senders == a.senders else { return "\(which): the senders differ" }
            if recorded.hasVectors {
                let messages = try recorded.messages(k)
                for (row, sender) in a.senders.enumerated() {
                    let got = messages.withRow(row) { Array($0) }, want = a.messages.withRow(row) { Array($0) }
                    if let i = firstDifference(got, want) {
                        return "\(which), worker \(sender.worker) (\(sender.byzantine ? "Byzantine" : "honest")): the"
                            + " recorded message differs from the re-executed one at coordinate \(i) (recorded "
                            + "\(got[i]), re-executed \(want[i]))"
                    }
                }
            }
            if ra.attack != a.attackDecision { return "\(which): the attack's decision differs" }
            if ra.decision != a.decision { return "\(which): the rule's decision differs" }
            let before = recorded.hasVectors ? try recorded.state(k, after: false) : nil
            let after = recorded.hasVectors ? try recorded.state(k, after: true) : nil
            if ra.stateBefore.scalars != a.stateBefore.scalars || before.map({ $0 != a.stateBefore }) == true {
                return "\(which): the state carried into the aggregation differs"
            }
            if ra.stateAfter.scalars != a.stateAfter.scalars || after.map({ $0 != a.stateAfter }) == true {
                return "\(which): the state carried out of the aggregation differs"
            }
            if recorded.hasVectors, let i = firstDifference(try recorded.aggregate(k), a.aggregate) {
                return "\(which): the aggregate differs at coordinate \(i)"
            }
            if ra.metrics != mine.aggregations[k].metrics {
                return "\(which): the metrics (gap, λ̂, drift, …) differ"
            }
        }
        if recorded.hasVectors, let i = firstDifference(try recorded.modelDiff(), event.modelDiff) {
            return "round \(t): the model diff differs at coordinate \(i)"
        }
        if r.evaluation != event.evaluation {
            return "round \(t): the evaluation differs (recorded \(r.evaluation.map { "\($0.accuracy)" } ?? "none"),"
                + " re-executed \(event.evaluation.map { "\($0.accuracy)" } ?? "none"))" }
        if r.drift != mine.drift { return "round \(t): the model drift differs" }
        return "round \(t): the record's bytes differ from the re-executed round's, with the"
            + " same content (another encoding)"
    }

    /// The first part of a checkpoint that differs from the re-executed state.
    static func describeCheckpoint(_ t: Int, state: SimulationState, drift: DriftTrackerState?,
                                   recorded: TraceCheckpoint) throws(TraceError) -> String {
        let part = try checkpointDifference(state: state, drift: drift, recorded: recorded)
        return "the checkpoint before round \(t): " + part
    }

    /// The first part of `recorded` that differs from `state` and `drift`, as a clause ("the model
    /// differs at coordinate 3").
    static func checkpointDifference(state: SimulationState, drift: DriftTrackerState?,
                                     recorded: TraceCheckpoint) throws(TraceError) -> String {
        let r = try recorded.simulationState()
        if let i = firstDifference(r.parameters, state.parameters) { return "the model differs at coordinate \(i)" }
        for (k, row) in state.honestRows.enumerated() where k < r.honestMomenta.count {
            if let i = firstDifference(r.honestMomenta[k], state.honestMomenta[k]) {
                return "class \(row.classIndex), worker \(row.worker) (honest): the momentum differs at "
                    + "coordinate \(i)"
            }
        }
        for (k, row) in state.byzantineRows.enumerated() where k < r.byzantineMomenta.count {
            if let i = firstDifference(r.byzantineMomenta[k], state.byzantineMomenta[k]) {
                return "class \(row.classIndex), worker \(row.worker) (Byzantine): the momentum differs at "
                    + "coordinate \(i)"
            }
        }
        if r.classMomenta != state.classMomenta || r.serverMomentum != state.serverMomentum {
            return "the class-momentum buffer or server momentum differs"
        }
        if r.aggregatorStates != state.aggregatorStates || r.attackStates != state.attackStates {
            return "a rule's or attack's carried state differs"
        }
        if try recorded.driftState() != drift { return "the drift state differs" }
        return "the record's bytes differ from the re-executed state's, with the same content (another encoding)"
    }

    /// The first index where the bit patterns differ (or where the lengths differ).
    static func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
        guard a.count == b.count else { return min(a.count, b.count) }
        for i in a.indices where a[i].bitPattern != b[i].bitPattern { return i }
        return nil
    }
}

/// One run re-simulated from a trace (a segment of ``Reexecution``, or the rounds
/// ``RoundRebuilder`` rebuilds): a ``Simulation`` of the header's configuration restored from a
/// state checkpoint (FORMAT.md §5.5; at round 0 the header's initial state), its drift tracker
/// restored with it, and the recorder's ``RecordEncoder``, so that every round it computes comes
/// with the body the recorder would have written for it, to be compared byte for byte with the
/// trace's. Memory: one run (the model, every worker's momenta, the drift window), whatever the
/// trace's length.
final class SegmentSimulation {
    let simulation: Simulation
    let tracker: DriftTracker?
    let encoder: RecordEncoder
    let path: String
    /// The round ``advance()`` computes next.
    private(set) var next: Int
    private var evaluationSeconds = 0.0

    /// A run at the start of round `start`, from checkpoint `checkpoint` of the reader (nil: the
    /// initial state, `start` = 0; a fork always starts from its first checkpoint, FORMAT.md §5.1.1).
    init(reader: TraceReader, dataset: Dataset, config: SimulationConfig, start: Int, checkpoint: Int?,
         decompressor: ZstdDecompressor, memoryLimit: MemoryLimit = .process) throws(TraceError) {
        let header = reader.header, path = reader.path
        self.path = path
        do {
            try config.checkMemory(driftWindow: header.driftWindow, limit: memoryLimit)
            simulation = try Simulation(config: config, dataset: dataset, expectedPartition: header.partition,
                                        memoryLimit: memoryLimit)
        } catch { throw .setup("\(path): its configuration does not run here: ", error) }
        guard simulation.partition == header.partition else {
            throw .usage("\(path): this desgd partitions the data otherwise than the recorder did: re-execution"
                + " needs the desgd that recorded it")
        }
        let d = simulation.model.parameterCount
        tracker = header.driftWindow.map {
            DriftTracker(config: config, dimension: d, window: $0, recent: header.effectiveDriftRecent)
        }
        encoder = RecordEncoder(mode: header.recording, bounds: header.groups.map(\.resilienceBound))
        next = start
        if start > 0 || header.fork != nil {
            guard let checkpoint else { throw .usage("\(path): no checkpoint to start round \(start) from") }
            let recorded = try reader.checkpoint(checkpoint, using: decompressor)
            do {
                try simulation.restore(state: try recorded.simulationState(), at: start)
                if let tracker, let drift = try recorded.driftState() { try tracker.restore(drift) }
            } catch let e as TraceError { throw e } catch let e as SimulationError {
                throw .corrupted("\(path): the checkpoint before round \(start) does not fit the run: \(e.explanation)")
            } catch { throw .corrupted("\(path): \(error)") }
        }
    }

    /// Round ``next`` computed, with the decompressed body the recorder writes for it.
    func advance() throws(TraceError) -> (event: RoundEvent, body: [UInt8]) {
        let t = next
        let event: RoundEvent
        do { event = try simulation.advance(round: t, evaluationSeconds: &evaluationSeconds) } catch {
            throw .corrupted("\(path): round \(t) does not re-execute: \(error.explanation)")
        }
        next += 1
        return (event, Array(encoder.round(event, drift: tracker).parts.joined()))
    }
}
