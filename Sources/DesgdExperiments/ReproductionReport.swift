import DesgdReplay
import Foundation

/// The measured numbers of a grid beside the published ones (``PaperTables``): Table I (best test
/// accuracy per method and attack), Table II (accuracy drop against the reference run) and the
/// DeSGD effect (accuracy of "X+" minus that of "X" under each attack), as markdown and CSV.
///
/// A cell's value is the mean over its finished seeds of the best test accuracy (in %), with the
/// sample standard deviation (n − 1) when two or more seeds finished, and the minimum and maximum
/// in the CSV. Differences are measured minus published. Cells of the grid that have not finished
/// are shown as pending and left out of every mean.
public struct ReproductionReport: Sendable {
    /// Statistics of one method × attack over seeds.
    public struct Cell: Sendable, Equatable {
        public var method: String
        public var attack: String
        public var planned: Int
        /// Best accuracy in % per finished seed, in seed order.
        public var values: [Double]
        /// The seed of each value.
        public var seeds: [UInt64]
        public var paper: Double?

        public var count: Int { values.count }
        public var mean: Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        /// Sample standard deviation (n − 1), nil below two values.
        public var standardDeviation: Double? {
            guard values.count >= 2, let m = mean else { return nil }
            return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        }
        public var difference: Double? { mean.flatMap { m in paper.map { m - $0 } } }
    }

    public let spec: GridSpec
    /// The distinct round counts of the grid's runs.
    public let rounds: [Int]
    public let finishedCells: Int
    public let plannedCells: Int
    /// Seeds of finished runs that the spec does not list (summaries of extra seeds, ``SummaryResults``),
    /// and how many cells (method × attack) have one.
    public let extraSeeds: [UInt64]
    public let cellsWithExtraSeeds: Int
    /// The indices of the reported cells when the plan is a selection (``GridPlan/restricted(to:)``)
    /// of a grid of ``gridCells``; nil for the whole grid.
    public let selection: [Int]?
    public let gridCells: Int
    /// Table I: every method of the grid × the attacks it was run under, in grid order.
    public let accuracy: [Cell]
    public let methods: [String]
    public let attacks: [String]
    /// The reference cell (Table II's baseline), when the grid has one.
    public let reference: Cell?
    /// Table II: drops (reference − accuracy) of the Table II rows present in the grid.
    public let drops: [Cell]
    /// DeSGD effect: (X+) − X per attack, for every X whose "X+" is in the grid.
    public let gains: [Cell]
    /// Every finished run in table order (method, attack, then seed), with its findings when it was
    /// read from a summary (``SummaryResults``).
    public let runs: [CellResult]

    public init(plan: GridPlan, results: [CellResult]) {
        spec = plan.spec
        rounds = Array(Set(plan.cells.map(\.config.rounds))).sorted()
        // Summaries of seeds beyond the plan's (``SummaryResults``) are runs the report plans too.
        plannedCells = plan.cells.count + results.filter { r in
            !plan.cells.contains { $0.method == r.method && $0.attack == r.attack && $0.seed == r.seed }
        }.count
        gridCells = plan.gridCellCount
        selection = plan.cells.count == plan.gridCellCount ? nil : plan.cells.map(\.index)
        finishedCells = results.count
        let extra = results.filter { !plan.spec.seeds.contains($0.seed) }
        extraSeeds = Array(Set(extra.map(\.seed))).sorted()
        cellsWithExtraSeeds = Set(extra.map { [$0.method, $0.attack] }).count
        var methods: [String] = [], attacks: [String] = []
        for c in plan.cells {
            if !methods.contains(c.method) { methods.append(c.method) }
            if !attacks.contains(c.attack) { attacks.append(c.attack) }
        }
        // The paper's columns in its order, then the others in the spec's.
        func position(_ a: String) -> (Int, Int) {
            (PaperTables.attacks.firstIndex(of: a) ?? .max, plan.spec.attacks.firstIndex { $0.label == a } ?? .max)
        }
        attacks.sort { position($0) < position($1) }
        self.methods = methods
        self.attacks = attacks
        func cell(_ m: String, _ a: String) -> Cell? {
            let planned = plan.cells.filter { $0.method == m && $0.attack == a }.count
            guard planned > 0 else { return nil }
            let finished = results.filter { $0.method == m && $0.attack == a }.sorted { $0.seed < $1.seed }
            // Summaries of seeds beyond the plan's (``SummaryResults``) count as planned too.
            return Cell(method: m, attack: a, planned: max(planned, finished.count),
                        values: finished.map { 100 * $0.bestAccuracy }, seeds: finished.map(\.seed),
                        paper: PaperTables.accuracy(m, a))
        }
        accuracy = methods.flatMap { m in attacks.compactMap { cell(m, $0) } }
        runs = methods.flatMap { m in
            attacks.flatMap { a in results.filter { $0.method == m && $0.attack == a }.sorted { $0.seed < $1.seed } }
        }
        let table = accuracy
        func lookup(_ m: String, _ a: String) -> Cell? { table.first { $0.method == m && $0.attack == a } }

        reference = spec.reference.flatMap { r in lookup(r.method, r.attack) }.map {
            var c = $0
            c.paper = PaperTables.referenceAccuracy
            return c
        }
        var drops: [Cell] = []
        if let ref = reference, let base = ref.mean {
            for row in PaperTables.tableII {
                let label = methods.first { PaperTables.tableIIName($0) == row.method }
                guard let label else { continue }
                for a in PaperTables.tableIIAttacks {
                    guard let c = lookup(label, a) else { continue }
                    drops.append(Cell(method: row.method, attack: a, planned: c.planned,
                                      values: c.values.map { base - $0 }, seeds: c.seeds,
                                      paper: PaperTables.drop(row.method, a)))
                }
            }
        }
        self.drops = drops
        var gains: [Cell] = []
        for m in methods where methods.contains(m + "+") {
            for a in attacks {
                guard let plain = lookup(m, a), let with = lookup(m + "+", a) else { continue }
                // Seed by seed, on the seeds both have finished.
                let common = with.seeds.filter(plain.seeds.contains)
                let values = common.map { s in
                    with.values[with.seeds.firstIndex(of: s)!] - plain.values[plain.seeds.firstIndex(of: s)!] }
                let paper = PaperTables.accuracy(m + "+", a).flatMap { w in PaperTables.accuracy(m, a).map { w - $0 } }
                gains.append(Cell(method: m, attack: a, planned: min(plain.planned, with.planned), values: values,
                    seeds: common, paper: paper))
            }
        }
        self.gains = gains
    }

    // MARK: Markdown

    static func number(_ v: Double?, signed: Bool = false) -> String {
        guard let v else { return "—" }
        let s = String(format: "%.2f", v)
        return signed && v >= 0 ? "+" + s : s
    }

    static func markdownValue(_ c: Cell?) -> String {
        guard let c else { return "" }
        guard let mean = c.mean else { return "pending" }
        var s = number(mean)
        if let sd = c.standardDeviation { s += " ± " + number(sd) }
        if c.count < c.planned { s += " (\(c.count)/\(c.planned) seeds)" }
        if let p = c.paper, let d = c.difference { s += " · \(number(p)) · \(number(d, signed: true))" }
        return s
    }

    /// "46–59" for consecutive indices, "3, 7, 9–11" otherwise.
    static func indexRanges(_ indices: [Int]) -> String {
        var parts: [String] = [], i = 0
        let sorted = indices.sorted()
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count, sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(j == i ? "\(sorted[i])" : "\(sorted[i])–\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }

    public var markdown: String {
        var out: [String] = []
        out.append("# Reproduction report: grid `\(spec.name)`")
        out.append("")
        if let d = spec.description { out.append(d); out.append("") }
        let scope = selection.map {
            " (the cells \(ReproductionReport.indexRanges($0)) of the grid's \(gridCells):"
                + " `desgd-grid report --cell`)" } ?? ""
        out.append("- Cells finished: \(finishedCells) of \(plannedCells)\(scope); "
            + "\(rounds.map(String.init).joined(separator: " or ")) rounds per run; seeds "
            + "\(spec.seeds.map(String.init).joined(separator: ", "))"
            + (extraSeeds.isEmpty ? "" : "; seeds \(extraSeeds.map(String.init).joined(separator: ", ")) of"
                + " \(cellsWithExtraSeeds) \(cellsWithExtraSeeds == 1 ? "cell" : "cells"), from their summaries")
            + ".")
        out.append("- Options of every run: `\(spec.options)`; each method's own options are listed at the end.")
        out.append("- A cell reads `measured · paper · measured − paper`; measured is the mean over finished seeds"
            + " of the best test accuracy during training (%), `± sd` (sample standard deviation) when two or more"
            + " seeds finished; `pending` = not finished yet; `—` = the paper has no such cell.")
        out.append("")
        out.append("## Table I: best test accuracy (%)")
        out.append("")
        out.append("| Method | " + attacks.joined(separator: " | ") + " |")
        out.append("|---|" + String(repeating: "---|", count: attacks.count))
        for m in methods {
            let cells = attacks.map { a in
                ReproductionReport.markdownValue(accuracy.first { $0.method == m && $0.attack == a }) }
            out.append("| \(m) | " + cells.joined(separator: " | ") + " |")
        }
        out += runsMarkdown
        if let ref = reference {
            out.append("")
            out.append("## Table II: accuracy drop (%) against the reference")
            out.append("")
            out.append("Reference (`\(ref.method)` under `\(ref.attack)`, the paper's \"distributed SGD with global"
                + " momentum without any defenses/attacks\"): "
                       + "\(ReproductionReport.markdownValue(ref)). Drop = reference − best accuracy, for measured"
                           + " and published numbers alike "
                       + "(the paper's drops are 90.58 − its Table I accuracy).")
            out.append("")
            if drops.isEmpty {
                out.append(ref.mean == nil ? "The reference has not finished: no drops yet."
                    : "The grid has no Table II row.")
            } else {
                let cols = PaperTables.tableIIAttacks.filter { a in drops.contains { $0.attack == a } }
                out.append("| Method | " + cols.joined(separator: " | ") + " |")
                out.append("|---|" + String(repeating: "---|", count: cols.count))
                var rows: [String] = []
                for d in drops where !rows.contains(d.method) { rows.append(d.method) }
                for r in rows {
                    let cells = cols.map { a in
                        ReproductionReport.markdownValue(drops.first { $0.method == r && $0.attack == a }) }
                    out.append("| \(r) | " + cells.joined(separator: " | ") + " |")
                }
            }
        }
        if !gains.isEmpty {
            out.append("")
            out.append("## DeSGD effect: accuracy of X+ minus accuracy of X (points)")
            out.append("")
            let cols = attacks.filter { a in gains.contains { $0.attack == a } }
            out.append("| Method | " + cols.joined(separator: " | ") + " |")
            out.append("|---|" + String(repeating: "---|", count: cols.count))
            var rows: [String] = []
            for g in gains where !rows.contains(g.method) { rows.append(g.method) }
            for r in rows {
                let cells = cols.map { a -> String in
                    guard let g = gains.first(where: { $0.method == r && $0.attack == a }) else { return "" }
                    guard let mean = g.mean else { return "pending" }
                    var s = ReproductionReport.number(mean, signed: true)
                    if let sd = g.standardDeviation { s += " ± " + ReproductionReport.number(sd) }
                    if let p = g.paper { s += " · " + ReproductionReport.number(p, signed: true) }
                    return s
                }
                out.append("| \(r) → \(r)+ | " + cells.joined(separator: " | ") + " |")
            }
        }
        out.append("")
        out.append("## Methods")
        out.append("")
        for m in spec.methods where methods.contains(m.label) { out.append("- \(m.label): `\(m.options)`") }
        out.append("- Attacks: "
            + spec.attacks.filter { attacks.contains($0.label) }.map {
                "\($0.label) `\($0.spec)`" }.joined(separator: ", "))
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: JSON

    /// The report as JSON (`desgd-grid report --json`): every cell with its values per seed, mean,
    /// standard deviation, published number and difference.
    public var json: Data {
        struct Entry: Encodable {
            var method, attack: String
            var seedsPlanned, seedsFinished: Int
            var values: [Double]
            var mean, sd, paper, difference: Double?
            init(_ c: Cell) {
                (method, attack, seedsPlanned, seedsFinished, values) = (c.method, c.attack, c.planned, c.count,
                    c.values)
                (mean, sd, paper, difference) = (c.mean, c.standardDeviation, c.paper, c.difference)
            }
        }
        struct Document: Encodable {
            var grid: String
            var rounds: [Int]
            var cellsFinished, cellsPlanned: Int
            var cellsSelected: [Int]?
            var tableI: [Entry]
            var reference: Entry?
            var tableII: [Entry]
            var desgdEffect: [Entry]
            var runs: [RunEntry]
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let doc = Document(grid: spec.name, rounds: rounds, cellsFinished: finishedCells, cellsPlanned: plannedCells,
                           cellsSelected: selection,
                           tableI: accuracy.map(Entry.init), reference: reference.map(Entry.init),
                           tableII: drops.map(Entry.init),
                           desgdEffect: gains.map(Entry.init), runs: runs.map {
                               RunEntry($0, paper: PaperTables.accuracy($0.method, $0.attack)) })
        return (try? e.encode(doc)) ?? Data()
    }

    // MARK: CSV

    /// One line per cell: `table,method,attack,seeds_planned,seeds_finished,mean,sd,min,max,paper,difference`
    /// (`I` accuracy %, `II` drop %, `reference`, `gain` points; empty fields are unknown), then one
    /// `run` line per finished run with the columns of ``runCSVColumns`` filled in as well.
    public var csv: String {
        var lines = ["table,method,attack,seeds_planned,seeds_finished,mean,sd,min,max,paper,difference,"
                     + ReproductionReport.runCSVColumns.joined(separator: ",")]
        let noRun = String(repeating: ",", count: ReproductionReport.runCSVColumns.count - 1)
        func add(_ table: String, _ c: Cell) {
            let f = ReproductionReport.csvNumber
            lines.append([table, TextFormat.csvField(c.method), TextFormat.csvField(c.attack), "\(c.planned)",
                          "\(c.count)", f(c.mean),
                          f(c.standardDeviation), f(c.values.min()), f(c.values.max()), f(c.paper), f(c.difference),
                          noRun]
                .joined(separator: ","))
        }
        accuracy.forEach { add("I", $0) }
        if let r = reference { add("reference", r) }
        drops.forEach { add("II", $0) }
        gains.forEach { add("gain", $0) }
        lines += runCSVLines
        return lines.joined(separator: "\n") + "\n"
    }

    static func csvNumber(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "" }
}
