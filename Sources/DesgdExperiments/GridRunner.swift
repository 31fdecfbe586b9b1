import DesgdNumerics
import DesgdRecording
import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation

/// Runs the unfinished cells of a grid, several at once, each recording its trace into the grid
/// directory.
///
/// - **Resume**: a cell whose trace is complete, has every planned round and holds exactly the
///   cell's configuration is finished and never run again. An incomplete trace (Ctrl-C, a kill, a
///   time limit) that holds a state checkpoint is resumed from its last one (``ResumeRun``: the
///   rounds recorded after it are re-simulated and checked byte for byte, the rest recorded, into
///   `<stem>.trace.resuming`, which replaces the trace only once complete), so a killed paper cell
///   loses at most a checkpoint interval of work, and the result is byte-identical to an
///   uninterrupted recording. A trace without a checkpoint after round 0 is not resumed from the
///   initial state: that re-simulates every recorded round, costs what recording again costs, and
///   a difference found late would cost it twice; it is kept as `<stem>.incomplete-K.trace` and the cell
///   recorded again from round 0, as is a trace whose resumption is refused (unreadable, a broken
///   digest chain, another arithmetic or data set, a signed trace, a re-simulated round that
///   differs), each with the reason. A file holding another configuration stops the run before
///   anything starts.
/// - **Concurrency**: `jobs` cells at a time, each on `threadsPerRun` threads (results never
///   depend on either). Every cell takes a `flock` lock first, so two runners on one directory (a
///   local run and Slurm tasks, say) never record or resume the same cell.
/// - **Stopping**: when `shouldStop()` turns true (Ctrl-C, SIGTERM), every running cell ends after
///   its current round and no new cell starts: a recording with its trace finished cleanly, a
///   resumption with its temporary file replacing the trace when it got past a later state
///   checkpoint (``ResumeRun/Outcome/interrupted(at:resumesFrom:)``), removed otherwise. A
///   resumption killed outright leaves its file, which the next run takes over on the same terms
///   (``ResumeRun/adoptLeftover(of:)``): each run gets a cell further, however long the cell.
///
/// Memory: one simulation per job (about 0.5 GB each on the paper setup) and one copy of the data set.
public final class GridRunner: @unchecked Sendable {
    public enum Event: Sendable {
        case started(GridCell)
        /// A resumption of the cell's trace from the state checkpoint of round `from`.
        case resuming(GridCell, from: Int)
        /// The cell's trace was not resumed (`reason`) and is kept as `keptAs`; the cell is recorded again.
        case keptAside(GridCell, keptAs: String, reason: String)
        case round(GridCell, round: Int, accuracy: Double?)
        /// Finished; `resumedFrom` is the checkpoint's round when the cell was resumed.
        case finished(GridCell, CellResult, seconds: Double, resumedFrom: Int?)
        /// Stopped after `rounds` rounds. A stopped resumption (`resuming`) leaves the trace as it
        /// was (`resumesFrom` nil) or replaces it with what it wrote up to round `resumesFrom`'s
        /// state checkpoint, where the next run resumes.
        case stopped(GridCell, rounds: Int, resuming: Bool, resumesFrom: Int?)
        /// A killed resumption's file held the trace and more: it is the trace now, resumed from
        /// the state checkpoint of round `resumesFrom`.
        case tookOver(GridCell, resumesFrom: Int)
        case failed(GridCell, String)
        case skipped(GridCell, String)
    }

    public struct Summary: Sendable, Equatable, Codable {
        /// A cell finished by resuming its trace.
        public struct Resumed: Sendable, Equatable, Codable {
            public var cell: String
            /// The round of the state checkpoint it restarted from.
            public var fromRound: Int
            /// The rounds recorded after the checkpoint, re-simulated and found byte-identical.
            public var checkedRounds: Int
        }

        /// An incomplete trace moved aside and why it was not resumed.
        public struct KeptAside: Sendable, Equatable, Codable {
            public var path: String
            public var reason: String
        }

        /// Cells finished before this run started.
        public var alreadyFinished = 0
        /// Cells this run recorded from round 0 to the end.
        public var recorded = 0
        /// Cells this run finished by resuming their traces.
        public var resumed: [Resumed] = []
        /// Cells stopped early by `shouldStop`.
        public var stopped = 0
        /// Cells left because another process holds them.
        public var runningElsewhere = 0
        /// Incomplete traces moved aside.
        public var keptAside: [KeptAside] = []
        /// Cells that failed, with the reason.
        public var failures: [String] = []
        public var interrupted: Bool { stopped > 0 }
    }

    public let plan: GridPlan
    public let directory: GridDirectory
    public let jobs: Int
    public let threadsPerRun: Int
    public let keyframeInterval: Int?
    /// A state checkpoint every this many rounds (0: none); nil: each cell's own
    /// (``GridCell/checkpointInterval``, what `desgd-record` records its options with). A resumed
    /// trace keeps the intervals it was recorded with.
    public let checkpointInterval: Int?

    let lock = NSLock()

    public init(plan: GridPlan, directory: GridDirectory, jobs: Int, threadsPerRun: Int,
                keyframeInterval: Int? = GridDefaults.keyframeInterval,
                checkpointInterval: Int? = GridDefaults.checkpointInterval) {
        self.plan = plan
        self.directory = directory
        self.jobs = max(1, jobs)
        self.threadsPerRun = max(1, threadsPerRun)
        self.keyframeInterval = keyframeInterval
        self.checkpointInterval = checkpointInterval
    }

    /// Checks the selected cells (all when `only` is nil) before anything runs: conflicts and
    /// configurations that cannot run on the data (a rule's requirement, a missing data set) are a
    /// ``GridError``. Returns the cells that need recording and the count of finished ones.
    public func preflight(only: [Int]? = nil) throws(GridError) -> (pending: [GridCell], finished: Int,
        data: [String: Dataset]) {
        let selected = try plan.select(only)
        var pending: [GridCell] = [], finished = 0
        for cell in selected {
            switch directory.state(of: cell) {
            case .finished: finished += 1
            case .conflict(let why): throw GridError(Explanation(why))
            case .pending, .incomplete, .running: pending.append(cell)
            }
        }
        var data: [String: Dataset] = [:]  // one copy per data source, shared by every cell
        for cell in pending {
            let source = cell.config.data
            if data[source.description] == nil {
                do { data[source.description] = try source.load() } catch { throw GridError(error.explanation) }
            }
            do { _ = try Simulation(config: cell.config, dataset: data[source.description]!) } catch {
                throw GridError("\(cell.method) under \(cell.attack): \(error.explanation)")
            }
        }
        return (pending, finished, data)
    }

    /// Checks `--jobs`, `--threads`, `--keyframe-every` and `--checkpoint-every` when given (each in
    /// its range, as one-line errors).
    public static func checkOptions(jobs: Int, threadsPerRun: Int, keyframeInterval: Int?,
        checkpointInterval: Int?) throws(GridError) {
        guard SimulationConfig.threadsRange.contains(jobs) else {
            throw GridError(SimulationError.outOfRange(.gridJobs, jobs, SimulationConfig.threadsRange).explanation)
        }
        guard SimulationConfig.threadsRange.contains(threadsPerRun) else {
            throw GridError(SimulationError.outOfRange(.threads, threadsPerRun, SimulationConfig.threadsRange)
                .explanation)
        }
        do {
            try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval ?? 1,
                                           compressionLevel: TraceRecorder.defaultCompressionLevel,
                                           checkpointInterval: checkpointInterval ?? 0)
        } catch {
            throw GridError(error.explanation)
        }
    }

    /// Runs every unfinished selected cell. `events` is called from worker threads, one call at a time.
    public func run(only: [Int]? = nil, shouldStop: @escaping @Sendable () -> Bool = { false },
                    events: @escaping @Sendable (Event) -> Void = { _ in }) throws(GridError) -> Summary {
        try GridRunner.checkOptions(jobs: jobs, threadsPerRun: threadsPerRun, keyframeInterval: keyframeInterval,
                                    checkpointInterval: checkpointInterval)
        let (pending, finished, data) = try preflight(only: only)
        try directory.prepare(plan.spec)
        let queue = WorkQueue(pending: pending, alreadyFinished: finished)
        let emit: @Sendable (Event) -> Void = { [lock] e in lock.withLock { events(e) } }
        let work: @Sendable (Int) -> Void = { [self] _ in
            ThreadNiceness.inheritProcessNiceness()
            while !shouldStop(), let cell = queue.next() {
                queue.count(self.record(cell, dataset: data[cell.config.data.description]!, shouldStop: shouldStop,
                    emit: emit))
            }
        }
        let threads = min(jobs, pending.count)
        if threads <= 1 { work(0) } else { DispatchQueue.concurrentPerform(iterations: threads, execute: work) }
        return queue.summary
    }

    /// Hands out the pending cells in order and gathers the outcomes.
    final class WorkQueue: @unchecked Sendable {
        let lock = NSLock()
        let pending: [GridCell]
        var position = 0
        var _summary = Summary()

        init(pending: [GridCell], alreadyFinished: Int) {
            self.pending = pending
            _summary.alreadyFinished = alreadyFinished
        }

        func next() -> GridCell? {
            lock.withLock {
                defer { position += 1 }
                return position < pending.count ? pending[position] : nil
            }
        }

        func count(_ outcome: Outcome) {
            lock.withLock {
                _summary.keptAside += outcome.kept
                switch outcome.end {
                case .recorded: _summary.recorded += 1
                case .resumed(let r): _summary.resumed.append(r)
                case .stopped: _summary.stopped += 1
                case .elsewhere: _summary.runningElsewhere += 1
                case .alreadyDone: _summary.alreadyFinished += 1
                case .failed(let why): _summary.failures.append(why)
                }
            }
        }

        var summary: Summary { lock.withLock { _summary } }
    }

    /// How one cell ended, and the traces moved aside on the way.
    struct Outcome {
        enum End { case recorded, resumed(Summary.Resumed), stopped, elsewhere, alreadyDone, failed(String) }
        var end: End
        var kept: [Summary.KeptAside] = []
        init(_ end: End, kept: [Summary.KeptAside] = []) { (self.end, self.kept) = (end, kept) }
    }

    /// Records one cell under its lock: resumes its incomplete trace when it can, records it from
    /// round 0 otherwise.
    func record(_ cell: GridCell, dataset: Dataset, shouldStop: @escaping @Sendable () -> Bool,
                emit: @escaping @Sendable (Event) -> Void) -> Outcome {
        func failed(_ why: String, kept: [Summary.KeptAside] = []) -> Outcome {
            emit(.failed(cell, why))
            return Outcome(.failed("\(cell.stem): \(why)"), kept: kept)
        }
        let held: FileLock?
        do { held = try directory.lock(cell) } catch { return failed(error.message) }
        guard let held else {
            emit(.skipped(cell, "running in another process"))
            return Outcome(.elsewhere)
        }
        defer { held.release() }
        // Under the lock no other runner resumes the cell: a `.resuming` file is a killed one's.
        do {
            if let from = try directory.settleLeftoverResumption(cell) { emit(.tookOver(cell, resumesFrom: from)) }
        } catch { return failed(error.message) }
        var kept: [Summary.KeptAside] = []
        // The state again, under the lock: another runner may have finished the cell meanwhile.
        switch directory.state(of: cell, checkLock: false) {
        case .finished:
            emit(.skipped(cell, "finished by another process"))
            return Outcome(.alreadyDone)
        case .conflict(let why):
            return failed(why)
        case .incomplete(let reason, let checkpoint):
            var why = "\(reason); no state checkpoint after round 0 to resume from"
            if let checkpoint {
                switch resume(cell, from: checkpoint, dataset: dataset, shouldStop: shouldStop, emit: emit) {
                case .ended(let outcome): return outcome
                case .refused(let refusal): why = refusal
                }
            }
            do { kept.append(Summary.KeptAside(path: try directory.keepAside(cell), reason: why)) } catch {
                return failed(error.message)
            }
            emit(.keptAside(cell, keptAs: kept[0].path, reason: why))
        case .pending, .running: break
        }
        var config = cell.config
        config.threads = threadsPerRun
        emit(.started(cell))
        do {
            let checkpoints = checkpointInterval ?? cell.checkpointInterval
            let keyframes = keyframeInterval
                ?? TraceRecorder.defaultKeyframeInterval(mode: plan.recording, checkpointInterval: checkpoints,
                    rounds: cell.config.rounds)
            let recorder = try TraceRecorder(path: directory.tracePath(cell), mode: plan.recording,
                                             keyframeInterval: keyframes,
                                             checkpointInterval: checkpoints)
            let (result, summary) = try RecordingRun.run(config: config, dataset: dataset, recorder: recorder,
                shouldStop: shouldStop) { t, e in
                emit(.round(cell, round: t + 1, accuracy: e?.accuracy))
            }
            if summary.interrupted {
                emit(.stopped(cell, rounds: result.rounds, resuming: false, resumesFrom: nil))
                return Outcome(.stopped, kept: kept)
            }
            let cellResult = CellResult(cell: cell, rounds: result.rounds,
                                        evaluations: result.evaluations.map { ($0.round, $0.evaluation.accuracy) })
            emit(.finished(cell, cellResult, seconds: result.seconds, resumedFrom: nil))
            return Outcome(.recorded, kept: kept)
        } catch {
            return failed((error as? TraceError)?.message ?? (error as? SimulationError)?.message ?? "\(error)",
                kept: kept)
        }
    }

    enum Resumption {
        /// Resumed to the end, stopped (the trace as it was) or failed on the file system.
        case ended(Outcome)
        /// Not resumable, why: the cell is recorded again.
        case refused(String)
    }

    /// Resumes the cell's incomplete trace (from the state checkpoint of round `from`) under its
    /// lock. A refusal leaves the trace as it was: ``ResumeRun`` writes only its temporary file.
    func resume(_ cell: GridCell, from checkpoint: Int, dataset: Dataset, shouldStop: @escaping @Sendable () -> Bool,
                emit: @escaping @Sendable (Event) -> Void) -> Resumption {
        let path = directory.tracePath(cell)
        emit(.resuming(cell, from: checkpoint))
        let start = Stopwatch.now()
        let outcome: ResumeRun.Outcome
        do {
            outcome = try ResumeRun.resume(path: path, threads: threadsPerRun, dataDirectory: nil, dataset: dataset,
                                           compressionLevel: TraceRecorder.defaultCompressionLevel, signingKey: nil,
                                           shouldStop: shouldStop) { emit(.round(cell, round: $0, accuracy: nil)) }
        } catch {
            // The file system refused (no space, no permission): recording again would fail alike.
            guard error.kind != .io else {
                emit(.failed(cell, error.message))
                return .ended(Outcome(.failed("\(cell.stem): \(error.explanation)")))
            }
            return .refused("not resumed: \(error.explanation)")
        }
        switch outcome {
        case .alreadyComplete: return .refused("complete, but not a finished cell")
        case .interrupted(let at, let resumesFrom):
            emit(.stopped(cell, rounds: at, resuming: true, resumesFrom: resumesFrom))
            return .ended(Outcome(.stopped))
        case .resumed(let from, let checked, _):
            let result: CellResult
            do { result = try directory.result(of: cell, reader: try TraceReader(path: path)) } catch {
                emit(.failed(cell, error.message))
                return .ended(Outcome(.failed("\(cell.stem): \(error.explanation)")))
            }
            emit(.finished(cell, result, seconds: Stopwatch.now() - start, resumedFrom: from))
            return .ended(Outcome(.resumed(Summary.Resumed(cell: cell.stem, fromRound: from, checkedRounds: checked))))
        }
    }
}
