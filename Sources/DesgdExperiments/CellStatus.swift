import DesgdNumerics
import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation

/// What a finished cell measured, read back from its trace: the evaluations it recorded.
public struct CellResult: Sendable, Codable, Equatable {
    public struct Point: Sendable, Codable, Equatable {
        public var round: Int
        public var accuracy: Double
    }

    public var method: String
    public var attack: String
    public var seed: UInt64
    /// The trace's file name inside the grid directory.
    public var trace: String
    public var rounds: Int
    /// Test accuracy (0…1) at every evaluation, in round order.
    public var curve: [Point]
    /// What the audit found, when the result was read from a cell summary (``SummaryResults``);
    /// nil when it was read from the trace.
    public var findings: CellFindings?

    public init(method: String, attack: String, seed: UInt64, trace: String, rounds: Int, curve: [Point]) {
        (self.method, self.attack, self.seed, self.trace, self.rounds, self.curve) = (method, attack, seed, trace,
            rounds, curve)
    }

    /// The result of `cell` from its evaluations after 0-based rounds t (a point's `round` is t + 1,
    /// the rounds completed).
    init(cell: GridCell, rounds: Int, evaluations: [(round: Int, accuracy: Double)]) {
        self.init(method: cell.method, attack: cell.attack, seed: cell.seed, trace: cell.traceName, rounds: rounds,
                  curve: evaluations.map { Point(round: $0.round + 1, accuracy: $0.accuracy) })
    }

    /// The paper's metric: the best test accuracy during training (0…1).
    public var bestAccuracy: Double { curve.map(\.accuracy).max() ?? 0 }
    /// The first round at which the best accuracy was reached.
    public var bestRound: Int { curve.first(where: { $0.accuracy == bestAccuracy })?.round ?? 0 }
    public var finalAccuracy: Double { curve.last?.accuracy ?? 0 }
}

/// Where a cell stands, judged from the grid directory alone (so that a resumed run, a Slurm task
/// and the report agree).
public enum CellState: Sendable, Equatable {
    /// No trace yet.
    case pending
    /// A complete trace of exactly this configuration, with every planned round.
    case finished(CellResult)
    /// A trace of this configuration that stopped early (Ctrl-C, a kill, a time limit) or cannot be
    /// read. With a state checkpoint after round 0 (`resumesFrom`, the round of the last one) the
    /// next run resumes it from there (``GridRunner``); without one, or when the resumption is
    /// refused, the next run keeps it as `<stem>.incomplete-K.trace` and records the cell again
    /// from round 0.
    case incomplete(reason: String, resumesFrom: Int?)
    /// Another process (a second runner, a Slurm task) holds the cell's lock. `roundsWritten`: the
    /// rounds the trace it is writing holds so far (its resumption's file while it resumes, read as
    /// an unfinished trace is read); nil before its first record or when that file cannot be read.
    case running(roundsWritten: Int?)
    /// The file holds a run of another configuration: the runner refuses to touch it.
    case conflict(String)

    public var isFinished: Bool { if case .finished = self { true } else { false } }

    public var label: String {
        switch self {
        case .pending: "pending"
        case .finished: "finished"
        case .incomplete: "incomplete"
        case .running: "running"
        case .conflict: "conflict"
        }
    }
}

/// A grid's directory: `grid.json` (the spec last run there, for the record), one `<stem>.trace`
/// per cell, kept `<stem>.incomplete-K.trace` files, lock files under `.locks/`, Slurm scripts with
/// the spec each submission runs (`slurm/grid-N.sbatch`, `slurm/grid-N.json`) and task logs; while
/// a cell resumes, `<stem>.trace.resuming` (``ResumeRun/temporaryPath(for:)``), which no state
/// reads: only the renamed, complete file counts, and a runner holding the cell's lock removes one
/// that a killed resumption left.
public struct GridDirectory: Sendable {
    public let path: String

    public init(_ path: String) { self.path = path }

    /// `traces/grids/<grid name>`, relative to the working directory.
    public static func defaultPath(for spec: GridSpec) -> String { "traces/grids/\(spec.name)" }

    public func tracePath(_ cell: GridCell) -> String { "\(path)/\(cell.traceName)" }
    /// Where a resumption of the cell writes until it is complete.
    public func resumingPath(_ cell: GridCell) -> String { ResumeRun.temporaryPath(for: tracePath(cell)) }
    public var specPath: String { "\(path)/grid.json" }
    var locksPath: String { "\(path)/.locks" }

    /// Creates the directory and writes the spec as `grid.json` (atomically, so a Slurm task never
    /// reads half a file).
    public func prepare(_ spec: GridSpec) throws(GridError) {
        do {
            try FileManager.default.createDirectory(atPath: locksPath, withIntermediateDirectories: true)
            try spec.json().write(to: URL(fileURLWithPath: specPath), options: .atomic)
        } catch { throw GridError("cannot prepare the grid directory \(path): \(error.localizedDescription)") }
    }

    /// The state of `cell` (reading its trace's header, index and evaluation rounds when present).
    /// A complete trace is finished whoever holds the lock; a lock only matters for what is not.
    public func state(of cell: GridCell, checkLock: Bool = true) -> CellState {
        let locked = { checkLock && self.isLocked(cell) }
        let file = tracePath(cell)
        guard FileManager.default.fileExists(atPath: file) else {
            return locked() ? .running(roundsWritten: roundsWritten(cell, trace: nil)) : .pending
        }
        let reader: TraceReader
        do { reader = try TraceReader(path: file) } catch {
            return locked()
                ? .running(roundsWritten: roundsWritten(cell, trace: nil))
                : .incomplete(reason: error.message, resumesFrom: nil)
        }
        var recorded = reader.header.config
        recorded.threads = 1
        guard recorded == cell.config else {
            return .conflict("\(file) holds a run of another configuration ("
                + "\(GridDirectory.difference(recorded, cell.config))); "
                             + "move it away or record the grid in another directory")
        }
        let unfinished: String
        var resumable = true
        switch reader.completeness {
        case .unfinished(let reason): unfinished = reason
        case .complete(interrupted: true): unfinished = "stopped after \(reader.roundCount) of"
            + " \(cell.config.rounds) rounds"
        case .complete(interrupted: false):
            if reader.roundCount == cell.config.rounds {
                // Every round is there but an evaluation is not: nothing to continue.
                do { return .finished(try result(of: cell, reader: reader)) } catch {
                    (unfinished, resumable) = (error.message, false)
                }
            } else {
                unfinished = "\(reader.roundCount) of \(cell.config.rounds) rounds"
            }
        }
        // A checkpoint of round 0 holds the initial state: resuming from it re-simulates every
        // recorded round, which costs what recording again costs (``GridRunner``).
        let start = ResumeRun.startingPoint(of: reader)
        return locked()
            ? .running(roundsWritten: roundsWritten(cell, trace: reader))
            : .incomplete(reason: unfinished, resumesFrom: resumable && start.round > 0 ? start.round : nil)
    }

    /// The rounds a running cell has written: those of its resumption's file while it resumes (the
    /// kept rounds and the new ones), else those of `trace`, its trace read once already, or of the
    /// trace file when there was none to read yet.
    func roundsWritten(_ cell: GridCell, trace: TraceReader?) -> Int? {
        let resuming = resumingPath(cell)
        if FileManager.default.fileExists(atPath: resuming) { return (try? TraceReader(path: resuming))?.roundCount }
        if let trace { return trace.roundCount }
        return (try? TraceReader(path: tracePath(cell)))?.roundCount
    }

    /// The cells of `plan` a new run (or Slurm array) has to take up: pending and incomplete ones
    /// (finished cells are done, running ones held by another process); a file of another
    /// configuration at a cell's path is an error.
    public func openCells(of plan: GridPlan) throws(GridError) -> [GridCell] {
        var open: [GridCell] = []
        for cell in plan.cells {
            switch state(of: cell) {
            case .finished, .running: continue
            case .conflict(let why): throw GridError(Explanation(why))
            case .pending, .incomplete: open.append(cell)
            }
        }
        return open
    }

    /// Reads the evaluations of a complete trace: only the rounds that evaluate are decoded.
    func result(of cell: GridCell, reader: TraceReader) throws(TraceError) -> CellResult {
        var evaluations: [(round: Int, accuracy: Double)] = []
        for t in 0..<reader.roundCount where reader.header.config.evaluates(afterRound: t) {
            guard let e = try reader.round(t).content.evaluation else {
                throw .corrupted("\(reader.path), round \(t): the evaluation the configuration schedules is missing")
            }
            evaluations.append((t, e.accuracy))
        }
        return CellResult(cell: cell, rounds: reader.roundCount, evaluations: evaluations)
    }

    /// The results of every finished cell of `plan` (unfinished ones are left out); a cell whose
    /// file holds another configuration is an error, not a pending cell.
    public func results(of plan: GridPlan) throws(GridError) -> [CellResult] {
        var results: [CellResult] = []
        for cell in plan.cells {
            switch state(of: cell) {
            case .finished(let r): results.append(r)
            case .conflict(let why): throw GridError(Explanation(why))
            case .pending, .running, .incomplete: continue
            }
        }
        return results
    }

    /// Settles `<stem>.trace.resuming`, the partial file of a resumption that was killed (a clean
    /// stop settles its own): it becomes the cell's trace when it holds the trace byte for byte and
    /// a later state checkpoint (``ResumeRun/adoptLeftover(of:)``; the round returned), and is
    /// removed otherwise. Only under the cell's lock, which no other runner can then be resuming under.
    func settleLeftoverResumption(_ cell: GridCell) throws(GridError) -> Int? {
        do { if let from = try ResumeRun.adoptLeftover(of: tracePath(cell)) { return from } } catch {
            throw GridError(error.explanation)
        }
        let file = resumingPath(cell)
        guard unlink(file) == 0 || errno == ENOENT else {
            throw GridError("cannot remove \(file), left by a killed resumption: "
                + "\(String(cString: strerror(errno))); remove it by hand")
        }
        return nil
    }

    /// Moves an incomplete trace aside as `<stem>.incomplete-K.trace` (K the first free number):
    /// nothing recorded is deleted.
    func keepAside(_ cell: GridCell) throws(GridError) -> String {
        var k = 1
        var target = "\(path)/\(cell.stem).incomplete-\(k).trace"
        while FileManager.default.fileExists(atPath: target) {
            k += 1
            target = "\(path)/\(cell.stem).incomplete-\(k).trace"
        }
        guard rename(tracePath(cell), target) == 0 else {
            throw GridError("cannot move the incomplete trace \(tracePath(cell)) aside: "
                + "\(String(cString: strerror(errno)))")
        }
        return target
    }

    /// Takes the cell's lock (`flock` on `.locks/<stem>.lock`, released when the descriptor is
    /// closed or the process dies): nil when another process holds it. A `status` elsewhere holds
    /// it for an instant (``isLocked(_:)``), so a busy lock is tried again for about a second
    /// before the cell is left to its holder. A file system without `flock` is an error, not "busy".
    func lock(_ cell: GridCell) throws(GridError) -> FileLock? {
        let file = "\(locksPath)/\(cell.stem).lock"
        for attempt in 0..<20 {
            switch FileLock.attempt(on: file, creating: true) {
            case .held(let lock): return lock
            case .busy: if attempt < 19 { usleep(50_000) }
            case .cannotLock(let e):
                throw GridError("cannot lock \(file): \(String(cString: strerror(e)))"
                                + " (the grid directory needs a file system with flock)")
            case .cannotOpen(let e):
                throw GridError("cannot create the lock file \(file): \(String(cString: strerror(e)))")
            }
        }
        return nil
    }

    /// Whether another process holds the cell's lock (takes and drops it at once when free).
    func isLocked(_ cell: GridCell) -> Bool { FileLock.isHeldElsewhere("\(locksPath)/\(cell.stem).lock") }

    /// The fields in which two configurations differ, for the conflict message.
    static func difference(_ a: SimulationConfig, _ b: SimulationConfig) -> String {
        func fields(_ c: SimulationConfig) -> [String: String] {
            guard let o = try? JSONSerialization.jsonObject(with: c.canonicalJSON()) as? [String: Any] else {
                return [:]
            }
            return o.mapValues { "\($0)" }
        }
        let fa = fields(a), fb = fields(b)
        let keys = Set(fa.keys).union(fb.keys).filter { fa[$0] != fb[$0] }.sorted()
        return keys.isEmpty ? "differs" : keys.map {
            "\($0) \(fa[$0] ?? "unset") instead of \(fb[$0] ?? "unset")" }.joined(separator: ", ")
    }
}
