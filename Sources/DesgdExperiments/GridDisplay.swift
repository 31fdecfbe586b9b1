import DesgdNumerics
import Foundation

/// Accuracy (0…1) as the grid's texts write it: a percentage with two decimals, no sign.
func percent(_ v: Double) -> String { String(format: "%.2f", 100 * v) }

/// What `desgd-grid run` shows of a running grid on standard error: one line per cell event, and
/// on a terminal one status line (cells done, each running cell's round) redrawn at most five
/// times a second under them.
public final class GridDisplay: @unchecked Sendable {
    let total: Int
    let terminal: Bool
    let write: (String) -> Void
    var done = 0
    var running: [String: String] = [:]
    var last = 0.0

    /// `write` receives the text to show (default: standard error, a terminal when it is one).
    public init(total: Int, terminal: Bool = isatty(2) != 0,
                write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.total = total
        self.terminal = terminal
        self.write = write
    }

    /// The line an event prints, nil for a round (which only moves the status line).
    public static func line(_ event: GridRunner.Event) -> String? {
        func name(_ c: GridCell) -> String { "#\(c.index) \(c.method) under \(c.attack), seed \(c.seed)" }
        switch event {
        case .started(let c): return "started  \(name(c))"
        case .resuming(let c, let from): return "resuming \(name(c)) from the state checkpoint of round \(from)"
        case .keptAside(let c, let path, let why):
            return "kept     \(name(c)): its trace is kept as \(path) (\(why)); recorded again from round 0"
        case .round: return nil
        case .finished(let c, let r, let s, let from):
            let resumed = from.map { ", resumed from round \($0)" } ?? ""
            return "finished \(name(c)): best \(percent(r.bestAccuracy))% (round \(r.bestRound)), "
                + "\(String(format: "%.0f", s)) s\(resumed)"
        case .stopped(let c, let rounds, false, _):
            return "stopped  \(name(c)) after \(rounds) rounds (trace closed; resumed or recorded again next run)"
        case .stopped(let c, let rounds, true, nil):
            return "stopped  \(name(c)) while resuming, at round \(rounds) "
                + "(trace left as it was; resumed again next run)"
        case .stopped(let c, let rounds, true, let from?):
            return "stopped  \(name(c)) while resuming, at round \(rounds) (the trace now holds its rounds up to the "
                + "state checkpoint of round \(from); resumed from there next run)"
        case .tookOver(let c, let from):
            return "kept     \(name(c)): the file of a killed resumption holds its trace byte for byte and more, "
                + "up to the state checkpoint of round \(from): it replaces the trace"
        case .failed(let c, let why): return "failed   \(name(c)): \(why)"
        case .skipped(let c, let why): return "skipped  \(name(c)): \(why)"
        }
    }

    public func show(_ event: GridRunner.Event) {
        switch event {
        case .started(let c), .resuming(let c, _):
            running[c.stem] = "\(c.method)/\(c.attack)/s\(c.seed) 0/\(c.config.rounds)"
        case .round(let c, let t, _):
            running[c.stem] = "\(c.method)/\(c.attack)/s\(c.seed) \(t)/\(c.config.rounds)"
        case .finished(let c, _, _, _):
            done += 1
            running[c.stem] = nil
        case .stopped(let c, _, _, _), .failed(let c, _):
            running[c.stem] = nil
        case .keptAside, .tookOver, .skipped: break
        }
        if let line = GridDisplay.line(event) { write((terminal ? "\r\u{1B}[K" : "") + line + "\n") }
        guard terminal else { return }
        let now = Stopwatch.now()
        if now - last < 0.2 { return }
        last = now
        write("\rgrid: \(done) finished this run · " + running.values.sorted().joined(separator: " · ") + "\u{1B}[K")
    }

    /// Clears the status line.
    public func finish() { if terminal { write("\r\u{1B}[K") } }
}

extension GridRunner.Summary {
    /// The line `desgd-grid run` prints at the end.
    public func line(grid: String, directory: String) -> String {
        var parts = ["grid \(grid) in \(directory): \(recorded) recorded"]
        if !resumed.isEmpty {
            parts.append("\(resumed.count) resumed (from round\(resumed.count == 1 ? "" : "s") "
                         + resumed.map { String($0.fromRound) }.joined(separator: ", ") + ")")
        }
        parts.append("\(alreadyFinished) already finished")
        if stopped > 0 { parts.append("\(stopped) stopped early (resumed or recorded again by the next run)") }
        if runningElsewhere > 0 { parts.append("\(runningElsewhere) running in another process") }
        if !keptAside.isEmpty {
            parts.append("\(keptAside.count) incomplete trace\(keptAside.count == 1 ? "" : "s") kept aside")
        }
        return parts.joined(separator: ", ")
    }

    /// The summary as `desgd-grid run --json` prints it.
    public func json(grid: String, directory: String) -> Data {
        struct Output: Encodable {
            var grid, directory: String
            var summary: GridRunner.Summary
            func encode(to encoder: Encoder) throws {
                try summary.encode(to: encoder)
                var c = encoder.container(keyedBy: Key.self)
                try c.encode(grid, forKey: .grid)
                try c.encode(directory, forKey: .directory)
            }
            enum Key: String, CodingKey { case grid, directory }
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(Output(grid: grid, directory: directory, summary: self))) ?? Data()
    }
}

/// One line of `desgd-grid status`: a cell, its state and what it measured.
public struct CellStatusRow: Sendable, Codable, Equatable {
    public var index: Int
    public var method: String
    public var attack: String
    public var seed: UInt64
    /// ``CellState/label``.
    public var state: String
    public var bestAccuracy: Double?
    public var detail: String?
    public var trace: String
    /// The `desgd-record` command that records the cell by hand.
    public var command: String
}

extension GridDirectory {
    /// Every cell of `plan` with its state (read as ``state(of:checkLock:)`` reads it).
    public func statusRows(of plan: GridPlan) -> [CellStatusRow] {
        plan.cells.map { cell in
            let state = self.state(of: cell)
            var best: Double?, detail: String?
            switch state {
            case .finished(let r): best = r.bestAccuracy;
                detail = "best at round \(r.bestRound), final \(percent(r.finalAccuracy))%"
            case .incomplete(let why, let from):
                detail = why
                    + (from.map { "; resumes from round \($0)" }
                        ?? "; recorded again from round 0 (no state checkpoint after round 0)")
            case .conflict(let why): detail = why
            case .running(let rounds?): detail = "\(rounds) of \(cell.config.rounds) rounds written"
            case .pending, .running(nil): break
            }
            return CellStatusRow(index: cell.index, method: cell.method, attack: cell.attack, seed: cell.seed,
                                 state: state.label,
                                 bestAccuracy: best, detail: detail, trace: tracePath(cell),
                                 command: cell.commandLine(out: tracePath(cell), record: plan.spec.record))
        }
    }

    /// `desgd-grid status` as text: a count per state, then a line per cell (and its command line
    /// under it with `commands`).
    public func statusText(of plan: GridPlan, rows: [CellStatusRow], commands: Bool) -> String {
        let counts = Dictionary(grouping: rows, by: \.state).mapValues(\.count)
        var lines = ["grid \(plan.spec.name) in \(path): \(plan.cells.count) cells, "
                     + ["finished", "running", "incomplete", "pending", "conflict"].compactMap { s in
                         counts[s].map { "\($0) \(s)" } }.joined(separator: ", ")]
        let w = max(6, rows.map(\.method.count).max() ?? 6), wa = max(6, rows.map(\.attack.count).max() ?? 6)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        for r in rows {
            let best = r.bestAccuracy.map { percent($0) + "%" } ?? ""
            lines.append("\(pad(String(r.index), 4)) \(pad(r.method, w)) \(pad(r.attack, wa)) seed "
                + "\(pad(String(r.seed), 3)) \(pad(r.state, 10)) \(pad(best, 7)) \(r.detail ?? "")")
            if commands { lines.append("     \(r.command)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
