import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// Runs the unfinished cells of a grid, several at once, each recording its trace into the grid
/// directory.
///
/// - **Resume**: a cell whose trace is complete, has every planned round and holds exactly the
///   cell's configuration is finished and never run again; an incomplete trace (Ctrl-C, a kill, a
///   time limit) is kept as `<stem>.incomplete-K.trace` and the cell is recorded again from round
///   0 (a training cannot continue from a trace: the workers' own momenta are not in it). A file
///   holding another configuration stops the run before anything starts.
/// - **Concurrency**: `jobs` cells at a time, each on `threadsPerRun` threads (results never
///   depend on either). Every cell takes a `flock` lock first, so two runners on one directory (a
///   local run and Slurm tasks, say) never record the same cell.
/// - **Stopping**: when `shouldStop()` turns true (Ctrl-C, SIGTERM), every running cell ends after
///   its current round with its trace finished cleanly and no new cell starts.
///
/// Memory: one simulation per job (about 0.5 GB each on the paper setup) and one copy of the data set.
public final class GridRunner: @unchecked Sendable {
    public enum Event: Sendable {
        case started(GridCell)
        case round(GridCell, round: Int, accuracy: Double?)
        case finished(GridCell, CellResult, seconds: Double)
        case stopped(GridCell, rounds: Int)
        case failed(GridCell, String)
        case skipped(GridCell, String)
    }

    public struct Summary: Sendable, Equatable {
        /// Cells finished before this run started.
        public var alreadyFinished = 0
        /// Cells this run recorded to the end.
        public var recorded = 0
        /// Cells stopped early by `shouldStop`.
        public var stopped = 0
        /// Cells left because another process holds them.
        public var runningElsewhere = 0
        /// Incomplete traces moved aside (paths).
        public var keptAside: [String] = []
        /// Cells that failed, with the reason.
        public var failures: [String] = []
        public var interrupted: Bool { stopped > 0 }
    }

    public let plan: GridPlan
    public let directory: GridDirectory
    public let jobs: Int
    public let threadsPerRun: Int
    public let keyframeInterval: Int
    /// A state checkpoint every this many rounds (0: none).
    public let checkpointInterval: Int

    let lock = NSLock()

    public init(plan: GridPlan, directory: GridDirectory, jobs: Int, threadsPerRun: Int, keyframeInterval: Int = 100,
                checkpointInterval: Int = 0) {
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
    public func preflight(only: [Int]? = nil) throws(GridError) -> (pending: [GridCell], finished: Int, data: [String: Dataset]) {
        let selected = try select(only)
        var pending: [GridCell] = [], finished = 0
        for cell in selected {
            switch directory.state(of: cell) {
            case .finished: finished += 1
            case .conflict(let why): throw GridError(why)
            case .pending, .incomplete, .running: pending.append(cell)
            }
        }
        var data: [String: Dataset] = [:]  // one copy per data source, shared by every cell
        for cell in pending {
            let source = cell.config.data
            if data[source.description] == nil {
                do { data[source.description] = try source.load() } catch { throw GridError(error.message) }
            }
            do { _ = try Simulation(config: cell.config, dataset: data[source.description]!) } catch {
                throw GridError("\(cell.method) under \(cell.attack): \(error.message)")
            }
        }
        return (pending, finished, data)
    }

    func select(_ only: [Int]?) throws(GridError) -> [GridCell] {
        guard let only else { return plan.cells }
        var cells: [GridCell] = []
        for i in only {
            guard plan.cells.indices.contains(i) else {
                throw GridError("--cell must be in 0...\(plan.cells.count - 1), the cells of grid \(plan.spec.name) (got \(i))")
            }
            cells.append(plan.cells[i])
        }
        return cells
    }

    /// Checks `--jobs`, `--threads`, `--keyframe-every` and `--checkpoint-every` (each in its range,
    /// as one-line errors).
    public static func checkOptions(jobs: Int, threadsPerRun: Int, keyframeInterval: Int, checkpointInterval: Int = 0) throws(GridError) {
        guard SimulationConfig.threadsRange.contains(jobs) else {
            throw GridError(SimulationError.outOfRange("--jobs", jobs, SimulationConfig.threadsRange).message)
        }
        guard SimulationConfig.threadsRange.contains(threadsPerRun) else {
            throw GridError(SimulationError.outOfRange("--threads", threadsPerRun, SimulationConfig.threadsRange).message)
        }
        do {
            try TraceRecorder.checkOptions(keyframeInterval: keyframeInterval, compressionLevel: TraceRecorder.defaultCompressionLevel,
                                           checkpointInterval: checkpointInterval)
        } catch {
            throw GridError(error.message)
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
            while !shouldStop(), let cell = queue.next() {
                queue.count(self.record(cell, dataset: data[cell.config.data.description]!, shouldStop: shouldStop, emit: emit))
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
                switch outcome {
                case .recorded(let kept): _summary.recorded += 1; _summary.keptAside += kept
                case .stopped(let kept): _summary.stopped += 1; _summary.keptAside += kept
                case .elsewhere: _summary.runningElsewhere += 1
                case .alreadyDone: _summary.alreadyFinished += 1
                case .failed(let why, let kept): _summary.failures.append(why); _summary.keptAside += kept
                }
            }
        }

        var summary: Summary { lock.withLock { _summary } }
    }

    enum Outcome {
        case recorded([String]), stopped([String]), elsewhere, alreadyDone, failed(String, [String])
    }

    /// Records one cell under its lock.
    func record(_ cell: GridCell, dataset: Dataset, shouldStop: @escaping @Sendable () -> Bool,
                emit: @Sendable (Event) -> Void) -> Outcome {
        let held: CellLock?
        do { held = try directory.lock(cell) } catch {
            emit(.failed(cell, error.message))
            return .failed(error.message, [])
        }
        guard let held else {
            emit(.skipped(cell, "running in another process"))
            return .elsewhere
        }
        defer { held.release() }
        var kept: [String] = []
        // The state again, under the lock: another runner may have finished the cell meanwhile.
        switch directory.state(of: cell, checkLock: false) {
        case .finished:
            emit(.skipped(cell, "finished by another process"))
            return .alreadyDone
        case .conflict(let why):
            emit(.failed(cell, why))
            return .failed(why, [])
        case .incomplete:
            do { kept.append(try directory.keepAside(cell)) } catch {
                emit(.failed(cell, error.message))
                return .failed(error.message, kept)
            }
        case .pending, .running: break
        }
        var config = cell.config
        config.threads = threadsPerRun
        emit(.started(cell))
        do {
            let recorder = try TraceRecorder(path: directory.tracePath(cell), mode: plan.recording, keyframeInterval: keyframeInterval,
                                             checkpointInterval: checkpointInterval)
            let (result, summary) = try RecordingRun.run(config: config, dataset: dataset, recorder: recorder, shouldStop: shouldStop) { t, e in
                emit(.round(cell, round: t + 1, accuracy: e?.accuracy))
            }
            if summary.interrupted {
                emit(.stopped(cell, rounds: result.rounds))
                return .stopped(kept)
            }
            let cellResult = CellResult(cell: cell, rounds: result.rounds,
                                        evaluations: result.evaluations.map { ($0.round, $0.evaluation.accuracy) })
            emit(.finished(cell, cellResult, seconds: result.seconds))
            return .recorded(kept)
        } catch {
            let why = (error as? TraceError)?.message ?? (error as? SimulationError)?.message ?? "\(error)"
            emit(.failed(cell, why))
            return .failed("\(cell.stem): \(why)", kept)
        }
    }
}
