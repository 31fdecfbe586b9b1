import DesgdAudit
import DesgdNumerics
import DesgdSimulation
import Foundation

/// What a cell summary adds to a result: what the audit found in the trace (collapse onsets,
/// persistence flags) and the trace's identity. Rounds are rounds completed (t + 1), as in
/// ``CellResult``; a summary counts 0-based t, as the audit does.
public struct CellFindings: Sendable, Codable, Equatable {
    public struct Collapse: Sendable, Codable, Equatable {
        /// The evaluation (rounds completed) that saw the drop.
        public var round: Int
        public var accuracyBefore: Double
        public var accuracyAfter: Double
        /// By how many rounds a persistent drift led the drop; nil when drift was not persistent
        /// before it (the audit's `leadRounds`).
        public var leadRounds: Int?
    }

    public var program: String
    public var backend: String
    public var lastDigest: String
    public var collapses: [Collapse]
    public var persistenceFlags: Int
    /// The audit's drop (points of accuracy) that dates a collapse; nil without drift.
    public var collapseDrop: Double?
}

/// Reads committed cell summaries (``CellSummary``, `desgd-grid summarize`) back as the results
/// of a grid, so that `desgd-grid report --summaries DIR` needs no trace: the way a long grid is
/// reported on a machine that did not record it.
///
/// A summary directory is input like a trace: anyone may have written it. A file is read only if
/// it is at most ``maxSummaryBytes``; it must name this grid, the planned method, attack and seed,
/// and hold exactly the planned configuration (with its seed); its accuracy series must be the
/// configuration's evaluation rounds in order, with accuracies in [0, 1]; its collapse onsets must
/// be evaluation rounds. Best, best round and final accuracy are recomputed from the series, not
/// read. A summary that fails any check stops the report (an error naming the file and what is
/// wrong): a report must not mix a checked result with an unchecked one.
///
/// Besides the plan's cells, a file `METHOD__ATTACK__seedS.json` of a planned method and attack
/// with another seed S is read too, checked against the configuration the grid's options give with
/// seed S: extra seeds of collapsing cells (recorded from a spec with other seeds) join their cell's
/// statistics. Other files are not read.
public enum SummaryResults {
    /// A `horizon` summary is about 5 KB; a limit far above it keeps a hostile file from being read
    /// into memory whole.
    public static let maxSummaryBytes = 1 << 20
    /// Entries of the directory looked at for extra seeds (a grid has at most a few thousand).
    public static let maxDirectoryEntries = 100_000
    /// Distinct extra seeds: the grid is expanded once more per seed, so a directory of files with
    /// thousands of seeds would cost that many grids.
    public static let maxExtraSeeds = 64

    /// `parse` is the one parser of simulation options, which gives an extra seed's cell its
    /// configuration (the seed also seeds what depends on it, synthetic data for one).
    public static func read(
        plan: GridPlan, directory: String,
        parse: SimulationOptionsParser
    ) throws(GridError) -> [CellResult] {
        var results: [CellResult] = []
        let extra = try extraSeeds(plan: plan, directory: directory)
        for cell in plan.cells {
            let path = CellSummaries.path(of: cell, in: directory)
            if let result = try read(path: path, cell: cell, grid: plan.spec.name) { results.append(result) }
        }
        guard !extra.isEmpty else { return results }
        var spec = plan.spec
        spec.seeds = Array(Set(extra.map(\.1))).sorted()
        guard spec.seeds.count <= maxExtraSeeds else {
            let (count, limit) = (spec.seeds.count, maxExtraSeeds)
            throw GridError("\(directory) holds summaries of \(count) seeds the grid does not list, "
                            + "more than \(limit); give a directory of one grid's summaries")
        }
        let others = try GridPlan(spec: spec, parse: parse)
        for (cell, seed) in extra {
            guard
                var other = others.cells.first(where: {
                    $0.method == cell.method && $0.attack == cell.attack && $0.seed == seed
                })
            else { continue }
            other.index = cell.index
            if let result = try read(
                path: CellSummaries.path(of: other, in: directory), cell: other, grid: plan.spec.name)
            {
                results.append(result)
            }
        }
        return results
    }

    /// `Method__Attack__`: a cell's stem without its `seedS`.
    static func stemPrefix(_ cell: GridCell) -> String { String(cell.stem.dropLast("seed\(cell.seed)".count)) }

    /// Summary files of planned method × attack pairs with seeds the plan does not have.
    static func extraSeeds(plan: GridPlan, directory: String) throws(GridError) -> [(GridCell, UInt64)] {
        guard let dir = opendir(directory) else {
            throw GridError("cannot read the summary directory \(directory): \(String(cString: strerror(errno)))")
        }
        defer { closedir(dir) }
        var names: [String] = []
        var seen = 0
        while let entry = readdir(dir) {
            seen += 1
            guard seen <= maxDirectoryEntries else {
                let limit = maxDirectoryEntries
                throw GridError(
                    "the summary directory \(directory) has more than \(limit) entries; give one grid's summaries")
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".json") { names.append(name) }
        }
        var planned: [String: GridCell] = [:]
        var plannedSeeds: [String: Set<UInt64>] = [:]
        for cell in plan.cells {
            let prefix = stemPrefix(cell)
            planned[prefix] = planned[prefix] ?? cell
            plannedSeeds[prefix, default: []].insert(cell.seed)
        }
        var extra: [(GridCell, UInt64)] = []
        for name in names.sorted() {
            let stem = name.dropLast(".json".count)
            guard let marker = stem.range(of: "__seed", options: .backwards) else { continue }
            let prefix = String(stem[..<marker.lowerBound]) + "__"
            let digits = stem[marker.upperBound...]
            guard let cell = planned[prefix], !digits.isEmpty, digits.allSatisfy(\.isASCII),
                digits.allSatisfy(\.isNumber),
                digits.count <= 19, let seed = UInt64(digits), String(seed) == digits,
                !(plannedSeeds[prefix]?.contains(seed) ?? true)
            else { continue }
            extra.append((cell, seed))
        }
        return extra
    }

    /// The result of `cell` from its summary at `path`, nil when there is none.
    static func read(path: String, cell: GridCell, grid: String) throws(GridError) -> CellResult? {
        func bad(_ what: String) -> GridError {
            let fix = "write it again with desgd-grid summarize from the cell's trace"
            return GridError(
                "\(path) is not a summary of cell #\(cell.index) \(cell.stem) of grid \(grid): \(what); \(fix)")
        }
        let data: Data
        do { data = Data(try SmallFile.read(path, limit: maxSummaryBytes)) } catch {
            switch error {
            case .cannotOpen(errno: ENOENT): return nil
            case .notRegular:
                let why = "is not a regular file (a FIFO, device or directory): give a directory of cell summaries"
                throw GridError("\(path) \(why)")
            case .tooLarge: throw bad("it is larger than \(maxSummaryBytes) bytes")
            default: throw GridError("cannot read the summary \(path): \(error.systemMessage)")
            }
        }
        let summary: CellSummary
        do { summary = try CellSummary.decode(data) } catch { throw bad("it is not a summary's JSON") }
        guard summary.version == CellSummary.currentVersion else {
            throw bad("summary version \(summary.version), this desgd reads \(CellSummary.currentVersion)")
        }
        guard summary.grid == grid else { throw bad("it names grid \"\(DisplayText.quoted(summary.grid))\"") }
        let s = summary.cell
        guard s.method == cell.method, s.attack == cell.attack, s.seed == cell.seed else {
            throw bad(
                "it names \"\(DisplayText.quoted(s.method))\" under \"\(DisplayText.quoted(s.attack))\", seed \(s.seed)"
            )
        }
        var recorded = s.config
        recorded.threads = 1
        guard recorded == cell.config else {
            throw bad("its configuration differs (\(GridDirectory.difference(recorded, cell.config)))")
        }
        guard summary.trace.rounds == cell.config.rounds else {
            throw bad("its trace has \(summary.trace.rounds) of \(cell.config.rounds) rounds")
        }
        let expected = (0..<cell.config.rounds).filter { cell.config.evaluates(afterRound: $0) }
        let series = summary.accuracy.series
        guard series.map(\.round) == expected else {
            throw bad("its accuracy series is not at the configuration's \(expected.count) evaluation rounds")
        }
        guard series.allSatisfy({ $0.accuracy.isFinite && (0...1).contains($0.accuracy) }) else {
            throw bad("an accuracy is outside [0, 1]")
        }
        let evaluationRounds = Set(expected)
        var collapses: [CellFindings.Collapse] = []
        for onset in summary.audit.collapseOnsets {
            guard evaluationRounds.contains(onset.round),
                [onset.accuracyBefore, onset.accuracyAfter].allSatisfy({ $0.isFinite && (0...1).contains($0) }),
                onset.leadRounds.map({ (0...onset.round).contains($0) }) ?? true
            else {
                throw bad("a collapse onset is not at an evaluation round")
            }
            collapses.append(
                .init(
                    round: onset.round + 1, accuracyBefore: onset.accuracyBefore,
                    accuracyAfter: onset.accuracyAfter, leadRounds: onset.leadRounds))
        }
        guard (0...cell.config.rounds).contains(summary.audit.persistenceFlags) else {
            throw bad("its persistence flag count is out of range")
        }
        guard summary.audit.chainHolds else { throw bad("it records a broken digest chain") }
        guard Hex.decode(summary.trace.lastDigest, count: 32) != nil else {
            throw bad("its trace digest is not 64 lowercase hex digits")
        }
        for text in [summary.provenance.program, summary.provenance.backend] {
            guard text.count <= 200, text.unicodeScalars.allSatisfy({ (32...126).contains($0.value) }) else {
                throw bad("its provenance holds text that is not printable ASCII (or is over 200 characters)")
            }
        }
        let findings = CellFindings(
            program: summary.provenance.program, backend: summary.provenance.backend,
            lastDigest: summary.trace.lastDigest, collapses: collapses,
            persistenceFlags: summary.audit.persistenceFlags,
            collapseDrop: summary.audit.criteria?.collapseDrop)
        var result = CellResult(
            cell: cell, rounds: cell.config.rounds,
            evaluations: series.map { (round: $0.round, accuracy: $0.accuracy) })
        result.findings = findings
        return result
    }
}
