import DesgdNumerics
import DesgdAudit
import DesgdSimulation
import DesgdTrace
import Foundation

/// What a finished cell leaves to commit: a small JSON document that keeps the run's identity
/// (configuration, provenance, the chain digest that names its trace), its accuracy and the
/// audit's drift findings, so that a grid whose traces are too large to commit (`horizon`:
/// 0.08–1.06 GB a cell) loses nothing but the bytes when the machine that recorded it goes.
///
/// Rounds are 0-based round indices t, as traces/FORMAT.md and `desgd-audit` count them (the grid
/// report and `status` count rounds completed, t + 1): a summary is read beside the audit.
public struct CellSummary: Sendable, Codable, Equatable {
    /// Raised when a field changes meaning, so that a reader of committed summaries can tell.
    public static let currentVersion = 1

    public struct Cell: Sendable, Codable, Equatable {
        public var index: Int
        public var method: String
        public var attack: String
        public var seed: UInt64
        public var stem: String
        /// The `desgd-record` option words of the cell (without `--out`, `--record`, `--threads`).
        public var options: [String]
        /// The configuration, `threads` = 1 (results do not depend on it).
        public var config: SimulationConfig
    }

    /// From the trace header (traces/FORMAT.md §5.1).
    public struct Provenance: Sendable, Codable, Equatable {
        /// The program that recorded the trace, e.g. `desgd 0.12.0`.
        public var program: String
        /// `major.minor` of the trace format.
        public var traceFormat: String
        public var numerics: Int
        /// The numeric backend's exact kernel (results differ between kernels).
        public var backend: String
        public var datasetDigest: String
        public var recording: String
        public var keyframeInterval: Int
        /// 0: no state checkpoints.
        public var checkpointInterval: Int
    }

    public struct Trace: Sendable, Codable, Equatable {
        /// The file name inside the grid directory.
        public var file: String
        /// The last record's chain digest (lowercase hex), as `desgd-audit` prints it: it names the
        /// exact bytes of the trace (traces/FORMAT.md §3.3).
        public var lastDigest: String
        public var records: Int
        public var bytes: UInt64
        public var rounds: Int
    }

    /// One evaluation, encoded as `[round, accuracy]` to keep long series short.
    public struct Point: Sendable, Codable, Equatable {
        public var round: Int
        public var accuracy: Double

        public init(round: Int, accuracy: Double) { (self.round, self.accuracy) = (round, accuracy) }

        public init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            round = try c.decode(Int.self)
            accuracy = try c.decode(Double.self)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.unkeyedContainer()
            try c.encode(round)
            try c.encode(accuracy)
        }
    }

    /// Test accuracy (0…1).
    public struct Accuracy: Sendable, Codable, Equatable {
        public var best: Double
        /// The first evaluation round at which `best` was reached.
        public var bestRound: Int
        public var final: Double
        public var finalRound: Int
        public var series: [Point]
    }

    /// The recorded rule's drift after the last round that has drift (traces/FORMAT.md §5.4): the
    /// audit's own point, so that the summary says what `desgd-audit` says.
    public typealias FinalDrift = AuditReport.DriftPoint

    /// What `desgd-audit TRACE` (without `--compare`) finds, with its default criteria.
    public struct AuditFindings: Sendable, Codable, Equatable {
        public var chainHolds: Bool
        /// nil when the trace has no drift (format 1.0).
        public var criteria: AuditDrift.Criteria?
        public var collapseOnsets: [AuditReport.CollapseOnset]
        public var persistenceFlags: Int
        public var finalDrift: FinalDrift?
    }

    public var version: Int
    public var grid: String
    public var cell: Cell
    public var provenance: Provenance
    public var trace: Trace
    public var accuracy: Accuracy
    public var audit: AuditFindings

    /// The summary of `cell`'s complete trace, read through `reader` (the audit reads every round).
    public init(grid: String, cell: GridCell, reader: TraceReader) throws(GridError) {
        let report: AuditReport
        do { report = try Audit.report(reader, threads: 1) } catch {
            throw GridError("\(cell.stem): cannot audit \(reader.path): \(error.explanation)")
        }
        guard report.integrity.chainHolds else {
            throw GridError("\(cell.stem): the digest chain of \(reader.path) is broken "
                            + "(\(report.integrity.failure ?? "unknown record")); nothing summarized")
        }
        let h = reader.header
        version = CellSummary.currentVersion
        self.grid = grid
        self.cell = Cell(index: cell.index, method: cell.method, attack: cell.attack, seed: cell.seed, stem: cell.stem,
                         options: cell.arguments, config: cell.config)
        provenance = Provenance(program: h.program,
                                traceFormat: h.formatVersion.map(String.init).joined(separator: "."),
                                numerics: h.effectiveNumerics, backend: h.backend, datasetDigest: h.dataset.digest,
                                recording: h.recording.description, keyframeInterval: h.keyframeInterval,
                                checkpointInterval: h.checkpointInterval ?? 0)
        trace = Trace(file: cell.traceName, lastDigest: report.integrity.lastDigest,
                      records: report.integrity.totalRecords,
                      bytes: reader.fileSize, rounds: reader.roundCount)
        let series = report.accuracy.map { Point(round: $0.round, accuracy: $0.accuracy) }
        // A finished cell has every scheduled evaluation (GridDirectory.state), so the series is not empty.
        let best = series.map(\.accuracy).max() ?? 0
        accuracy = Accuracy(best: best, bestRound: series.first { $0.accuracy == best }?.round ?? 0,
                            final: series.last?.accuracy ?? 0, finalRound: series.last?.round ?? 0, series: series)
        let drift = report.drift
        let last = drift?.series.first?.points.last
        audit = AuditFindings(
            chainHolds: true, criteria: drift?.criteria, collapseOnsets: drift?.onsets ?? [],
            persistenceFlags: drift?.flags.count ?? 0,
            finalDrift: last)
    }

    /// Deterministic bytes (sorted keys, no timestamps): a summary rewritten from the same trace is
    /// byte-identical, so a commit shows only what changed.
    public func json() -> Data {
        let e = RecordBody.encoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return ((try? e.encode(self)) ?? Data()) + Data("\n".utf8)
    }

    public static func decode(_ data: Data) throws -> CellSummary {
        try RecordBody.decoder().decode(CellSummary.self, from: data)
    }
}

/// `desgd-grid summarize`: a ``CellSummary`` per finished cell, written to a directory meant to be
/// committed.
public enum CellSummaries {
    /// `traces/reproduction/<grid name>`, relative to the working directory.
    public static func defaultPath(for spec: GridSpec) -> String { "traces/reproduction/\(spec.name)" }

    public static func path(of cell: GridCell, in out: String) -> String { "\(out)/\(cell.stem).json" }

    /// What one `summarize` did.
    public struct Outcome: Sendable, Equatable {
        /// A summary that differs from the one on disk only by the trace it names.
        public struct Refusal: Sendable, Equatable {
            public var cell: GridCell
            public var path: String
            public var committedDigest: String
            public var traceDigest: String

            public var line: String {
                "#\(cell.index) \(cell.stem): \(path) summarizes the trace with digest \(committedDigest), "
                    + "the trace now has \(traceDigest); not overwritten"
            }
        }

        /// Summaries written (new, or replaced with --force).
        public var written: [String] = []
        /// Summaries already there for the same trace, rewritten.
        public var unchanged: [String] = []
        /// A cell not finished, with its state.
        public struct Skip: Sendable, Equatable {
            public var cell: GridCell
            public var reason: String
        }

        public var skipped: [Skip] = []
        public var refused: [Refusal] = []
        /// Finished cells whose summary could not be made (a broken chain, an unreadable round).
        public var failures: [String] = []

        /// One line for the terminal.
        public var line: String {
            var parts = ["\(written.count) written", "\(unchanged.count) unchanged", "\(skipped.count) not finished"]
            if !refused.isEmpty { parts.append("\(refused.count) refused (digest differs)") }
            if !failures.isEmpty { parts.append("\(failures.count) failed") }
            return parts.joined(separator: ", ")
        }
    }

    /// Writes `out/<stem>.json` for every finished selected cell (all when `only` is nil). A file
    /// already there whose chain digest differs is refused unless `force`: a summary is the only
    /// record once its trace is gone, so replacing it takes a decision. A cell whose file holds
    /// another configuration stops everything before anything is written, as it stops a run.
    public static func write(plan: GridPlan, directory: GridDirectory, out: String, only: [Int]? = nil,
                             force: Bool = false,
                             progress: (GridCell) -> Void = { _ in }) throws(GridError) -> Outcome {
        let selected = try plan.select(only)
        var finished: [GridCell] = []
        var outcome = Outcome()
        for cell in selected {
            switch directory.state(of: cell) {
            case .finished: finished.append(cell)
            case .conflict(let why): throw GridError(Explanation(why))
            case .pending: outcome.skipped.append(.init(cell: cell, reason: "pending"))
            case .running: outcome.skipped.append(.init(cell: cell, reason: "running in another process"))
            case .incomplete(let reason, _): outcome.skipped.append(.init(cell: cell, reason: "incomplete: \(reason)"))
            }
        }
        guard !finished.isEmpty else { return outcome }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw GridError("cannot create the summary directory \(out): \(error.localizedDescription)")
        }
        for cell in finished {
            progress(cell)
            let summary: CellSummary
            do throws(GridError) {
                let reader: TraceReader
                do { reader = try TraceReader(path: directory.tracePath(cell)) } catch {
                    throw GridError(error.explanation)
                }
                summary = try CellSummary(grid: plan.spec.name, cell: cell, reader: reader)
            } catch {
                outcome.failures.append("#\(cell.index) \(cell.stem): \(error.explanation)")
                continue
            }
            let target = path(of: cell, in: out)
            var replacing = false
            if let existing = FileManager.default.contents(atPath: target) {
                // An unreadable file is treated as a different summary: it is not overwritten blindly.
                let committed = (try? CellSummary.decode(existing))?.trace.lastDigest ?? "unreadable"
                if committed != summary.trace.lastDigest {
                    guard force else {
                        outcome.refused.append(.init(cell: cell, path: target, committedDigest: committed,
                                                     traceDigest: summary.trace.lastDigest))
                        continue
                    }
                    replacing = true
                } else {
                    outcome.unchanged.append(target)
                }
            } else {
                replacing = true
            }
            do { try summary.json().write(to: URL(fileURLWithPath: target), options: .atomic) } catch {
                throw GridError("cannot write \(target): \(error.localizedDescription)")
            }
            if replacing { outcome.written.append(target) }
        }
        return outcome
    }
}
