import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace

/// Vectors on demand (docs/complete-record.md): the messages, aggregates, carried states and model diff of the
/// rounds a trace recorded without vectors (`sampled:K`, `decisions`), rebuilt by re-simulating the
/// run from the state checkpoint at or before them (FORMAT.md §5.5) with the header's
/// configuration, on the data set it was recorded on and with the same arithmetic (as
/// ``Reexecution`` does). With checkpoints, `--record decisions` is therefore a complete record of
/// a run: replay, audit and export see every round's vectors.
///
/// Nothing rebuilt is used unchecked: every round re-simulated is encoded the way the recorder
/// encodes it (``RecordEncoder``, the trace's recording mode) and compared with its record, byte for
/// byte of the decompressed body (decisions, states' scalars, metrics, drift, evaluation; the
/// vectors too in the rounds `sampled:K` stores in full). That is stronger than comparing metrics.
/// A difference is a ``TraceError/Kind/mismatch`` naming the round (exit 1).
///
/// Rounds are asked for in increasing order (the replay's): the run in memory goes on from where
/// it is unless a checkpoint lies between it and the round asked for (restoring it is cheaper than
/// simulating up to it) or the round is behind it; then it restarts from the last checkpoint at or
/// before the round, and the rounds from there to the one asked for are re-simulated and checked
/// but not returned. A trace without checkpoints is rebuilt from round 0, whose state is the
/// header's: exact too, only longer (``simulatedRounds(for:)`` says how long).
///
/// Memory: one run (one ``Simulation`` and its drift window) at a time, whatever the trace's
/// length; rounds are handed out one by one and never stored. The run computes each round on all
/// `threads` (the workers in parallel, as the recorder does); its results, like the recorder's, do
/// not depend on the thread count.
public final class RoundRebuilder {
    public let reader: TraceReader
    let dataset: Dataset
    let config: SimulationConfig
    /// What the run may need (checked when the rebuilder is made and again when its run is built).
    let memoryLimit: MemoryLimit
    let decompressor = ZstdDecompressor()
    /// Each round's sequence number among the records (round t is the (t − first round)-th round record).
    let roundSequence: [Int]
    /// The run in memory, at the start of its round `next`.
    var run: SegmentSimulation?
    /// Rounds re-simulated so far.
    public private(set) var roundsSimulated = 0

    /// Checks that this desgd computes the trace's arithmetic (``Reexecution/checkArithmetic(_:backend:)``)
    /// and loads the data set it was recorded on (`dataDirectory`: a Fashion-MNIST directory instead
    /// of the recorded one; its digest must be the header's). Usage errors name the reason.
    public convenience init(reader: TraceReader, dataDirectory: String?, threads: Int,
                            memoryLimit: MemoryLimit = .process) throws(TraceError) {
        try Reexecution.checkArithmetic(reader, backend: reader.header.config.backend.description)
        // Before the data set is loaded: the header's shapes are the audited party's word.
        try RoundRebuilder.checkMemory(reader, threads: threads, limit: memoryLimit)
        let dataset = try Reexecution.loadDataset(for: reader.header, directory: dataDirectory)
        try self.init(reader: reader, dataset: dataset, threads: threads, memoryLimit: memoryLimit)
    }

    /// A rebuilder on `dataset` (already checked against the header).
    public init(reader: TraceReader, dataset: Dataset, threads: Int,
                memoryLimit: MemoryLimit = .process) throws(TraceError) {
        try Reexecution.checkArithmetic(reader, backend: reader.header.config.backend.description)
        try RoundRebuilder.checkMemory(reader, threads: threads, limit: memoryLimit)
        self.reader = reader
        self.dataset = dataset
        self.memoryLimit = memoryLimit
        var config = reader.header.config
        config.threads = max(1, threads)
        self.config = config
        roundSequence = reader.records.indices.filter { reader.records[$0].type == .round }
    }

    /// Whether any round of `rounds` was recorded without vectors (a rebuilder is then needed).
    /// Throws unless the one run a rebuilder holds fits `limit`.
    static func checkMemory(_ reader: TraceReader, threads: Int, limit: MemoryLimit) throws(TraceError) {
        var config = reader.header.config
        config.threads = max(1, threads)
        do { try config.checkMemory(driftWindow: reader.header.driftWindow, limit: limit) } catch {
            throw .setup("\(reader.path): its rounds cannot be rebuilt here: ", error)
        }
    }

    public static func isNeeded(_ reader: TraceReader, rounds: some Sequence<Int>) -> Bool {
        rounds.contains { !reader.header.recording.storesVectors(round: $0) }
    }

    /// Whether round `t` was recorded without vectors.
    public func rebuilds(_ t: Int) -> Bool { !reader.header.recording.storesVectors(round: t) }

    /// The first round of the run that rebuilds round `t`: the last checkpoint at or before it, or 0.
    func startRound(for t: Int) -> (round: Int, checkpoint: Int?) {
        guard let k = reader.lastCheckpoint(atOrBefore: t) else { return (reader.firstRound, nil) }
        return (reader.checkpointRounds[k], k)
    }

    /// How many rounds rebuilding the rounds of `rounds` (in this order) that lack vectors
    /// re-simulates, from the run's current position: the work a progress bar covers.
    public func simulatedRounds(for rounds: some Sequence<Int>) -> Int {
        var position = run?.next, total = 0
        for t in rounds where rebuilds(t) {
            let start = startRound(for: t).round
            let from = position.map { $0 <= t && $0 >= start ? $0 : start } ?? start
            total += t + 1 - from
            position = t + 1
        }
        return total
    }

    /// Round `t` re-simulated and checked against its record. `progress(n)` follows every round
    /// re-simulated (n: ``roundsSimulated``).
    public func round(_ t: Int, progress: (Int) -> Void = { _ in }) throws(TraceError) -> RoundEvent {
        guard reader.rounds.contains(t) else {
            throw .usage("\(reader.path) has no round \(t): it holds \(reader.roundsText)")
        }
        let (start, checkpoint) = startRound(for: t)
        if let run, run.next <= t && run.next >= start {} else {
            run = nil  // the run in memory goes before the next one is built
            run = try SegmentSimulation(reader: reader, dataset: dataset, config: config, start: start,
                                        checkpoint: checkpoint, decompressor: decompressor, memoryLimit: memoryLimit)
        }
        guard let run else { throw .usage("\(reader.path): no run to rebuild round \(t) from") }
        while true {
            let s = run.next
            let (event, body) = try run.advance()
            roundsSimulated += 1
            progress(roundsSimulated)
            let sequence = roundSequence[s - reader.firstRound]
            guard reader.records[sequence].round == s else {
                throw .corrupted("\(reader.path): the round record at position "
                    + "\(s - reader.firstRound) is not round \(s)")
            }
            let recorded = try reader.bodyBytes(ofRecord: sequence, using: decompressor)
            if body != recorded {
                self.run = nil
                let why = try Reexecution.describeRound(s, event: event, encoded: body, reader: reader,
                    decompressor: decompressor)
                throw TraceError(.mismatch,
                    "\(reader.path): re-simulated to rebuild vectors the trace does not store, \(why): the trace does"
                    + " not record what its configuration computes")
            }
            if s == t { return event }
        }
    }
}
