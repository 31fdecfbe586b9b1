import DesgdAudit
import DesgdCLI
import Foundation
import Testing

@testable import DesgdExperiments

/// `desgd-grid report --summaries`: a grid reported from its committed cell summaries says what the
/// traces say, adds what the audit found, takes extra seeds, and refuses summaries that do not hold.
@Suite(.serialized) struct SummaryReportTests {
    /// Cells 0 and 1 (Krum under Non, seeds 1 and 2) and 4 (Krum+ under Non, seed 1) of the tiny
    /// grid with seeds 1 and 2, recorded and summarized.
    func summarizedGrid() throws -> (both: GridPlan, dir: GridDirectory, out: String) {
        let both = try GridPlan(
            spec: smokeSpec(seeds: [1, 2], record: "decisions"), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid-report"))
        let run = try GridRunner(plan: both, directory: dir, jobs: 2, threadsPerRun: 1, checkpointInterval: 2).run(
            only: [0, 1, 4])
        #expect(run.recorded == 3 && run.failures.isEmpty)
        let out = temporaryDirectory("summaries")
        let written = try CellSummaries.write(plan: both, directory: dir, out: out)
        #expect(written.written.count == 3)
        return (both, dir, out)
    }

    @Test func summariesGiveTheTracesNumbersTheAuditsFindingsAndExtraSeeds() throws {
        let (both, dir, out) = try summarizedGrid()
        let fromTraces = ReproductionReport(plan: both, results: try dir.results(of: both))
        // The seed-1 grid reads seed 2's summary too, as an extra seed of its cell.
        let one = try GridPlan(spec: smokeSpec(seeds: [1], record: "decisions"), parse: SimulationOptions.parseWords)
        let results = try SummaryResults.read(plan: one, directory: out, parse: SimulationOptions.parseWords)
        #expect(results.map(\.seed) == [1, 1, 2])
        let fromSummaries = ReproductionReport(plan: one, results: results)
        #expect(fromSummaries.accuracy.map(\.values) == fromTraces.accuracy.map(\.values))
        #expect(fromSummaries.accuracy.map(\.planned) == [2, 1, 1, 1, 1, 1])
        #expect(fromSummaries.plannedCells == 7 && fromSummaries.finishedCells == 3)
        #expect(fromSummaries.runs.map(\.curve) == fromTraces.runs.map(\.curve))
        #expect(fromSummaries.runs.map(\.bestRound) == fromTraces.runs.map(\.bestRound))
        #expect(fromTraces.runs.allSatisfy { $0.findings == nil })
        for r in fromSummaries.runs {
            let cell = try #require(
                both.cells.first { $0.method == r.method && $0.attack == r.attack && $0.seed == r.seed })
            let s = try CellSummary.decode(bytes(CellSummaries.path(of: cell, in: out)))
            let f = try #require(r.findings)
            #expect(f.lastDigest == s.trace.lastDigest && f.program == s.provenance.program)
            #expect(f.persistenceFlags == s.audit.persistenceFlags)
            #expect(f.collapses.map(\.round) == s.audit.collapseOnsets.map { $0.round + 1 })
        }

        let markdown = fromSummaries.markdown
        #expect(fromSummaries.extraSeeds == [2] && fromSummaries.cellsWithExtraSeeds == 1)
        #expect(markdown.contains("rounds per run; seeds 1; seeds 2 of 1 cell, from their summaries."))
        #expect(fromTraces.extraSeeds.isEmpty && fromTraces.markdown.contains("rounds per run; seeds 1, 2."))
        #expect(markdown.contains("## Every run: best, final and collapses"))
        #expect(markdown.contains("| Krum | Non | 2 | "))
        #expect(markdown.contains("### Where the best accuracy hides a collapse"))
        let csv = fromSummaries.csv.split(separator: "\n")
        #expect(
            csv[0].hasSuffix(",seed,best_round,final,collapses,first_collapse,lead_rounds,persistence_flags,digest"))
        let runs = csv.filter { $0.hasPrefix("run,") }
        #expect(runs.count == 3)
        #expect(
            runs.allSatisfy {
                $0.split(separator: ",", omittingEmptySubsequences: false).count == csv[0].split(separator: ",").count
            })
        #expect(runs[0].hasSuffix("," + (fromSummaries.runs[0].findings?.lastDigest ?? "?")))

        let page = fromSummaries.figure
        #expect(page.panels.map(\.title) == ["Krum", "Krum+"])
        #expect(page.panels[0].curves.map(\.label) == ["Non, seed 1", "Non, seed 2"])
        #expect(page.panels[0].curves.map(\.variant) == [0, 1] && page.panels[0].curves.map(\.slot) == [0, 0])
        #expect(page.tableRows.count == 3)
    }

    /// Each change makes the summary say something the plan does not, or something that cannot
    /// be; the report stops with an error naming the file and what is wrong.
    @Test func aSummaryThatDoesNotHoldStopsTheReport() throws {
        let (both, _, out) = try summarizedGrid()
        let cell = both.cells[4]
        let path = CellSummaries.path(of: cell, in: out)
        let real = try CellSummary.decode(bytes(path))
        func refusal() -> String? {
            do { _ = try SummaryResults.read(plan: both, directory: out, parse: SimulationOptions.parseWords) } catch {
                return error.message
            }
            return nil
        }
        var cases: [(String, (inout CellSummary) -> Void)] = [
            ("names grid", { $0.grid = "other" }),
            ("names \"Mean\"", { $0.cell.method = "Mean" }),
            ("configuration differs", { $0.cell.config.learningRate *= 2 }),
            ("outside [0, 1]", { $0.accuracy.series[0].accuracy = 1.5 }),
            ("outside [0, 1]", { $0.accuracy.series[1].accuracy = .nan }),
            ("evaluation rounds", { $0.accuracy.series.reverse() }),
            ("evaluation rounds", { $0.accuracy.series.removeLast() }),
            ("of 6 rounds", { $0.trace.rounds = 5 }),
            ("64 lowercase hex", { $0.trace.lastDigest = "<b>" }),
            ("printable ASCII", { $0.provenance.program = "desgd \u{1b}[31m0.12.0" }),
            ("flag count", { $0.audit.persistenceFlags = -1 }),
            ("broken digest chain", { $0.audit.chainHolds = false }),
            ("summary version", { $0.version = 2 }),
        ]
        if let onset = real.audit.collapseOnsets.first {
            cases.append(("collapse onset", { $0.audit.collapseOnsets[0].round = onset.round + 1 }))
        } else {
            let json = #"{"round": 3, "previousRound": 2, "accuracyBefore": 0.5, "accuracyAfter": 0.1}"#
            let onset = try JSONDecoder().decode(AuditReport.CollapseOnset.self, from: Data(json.utf8))
            cases.append(("collapse onset", { $0.audit.collapseOnsets = [onset] }))
        }
        for (expected, change) in cases {
            var bad = real
            change(&bad)
            try bad.json().write(to: URL(fileURLWithPath: path))
            #expect(throws: GridError.self) {
                try SummaryResults.read(plan: both, directory: out, parse: SimulationOptions.parseWords)
            }
            do { _ = try SummaryResults.read(plan: both, directory: out, parse: SimulationOptions.parseWords) } catch {
                #expect(
                    error.message.contains(path) && error.message.contains(expected), "\(expected): \(error.message)")
                #expect(error.message.contains("desgd-grid summarize"))
            }
        }
        for (expected, data) in [
            ("not a summary's JSON", Data("{\"version\": 1".utf8)),
            ("larger than", real.json() + Data(repeating: 0x20, count: SummaryResults.maxSummaryBytes)),
        ] {
            try data.write(to: URL(fileURLWithPath: path))
            do {
                _ = try SummaryResults.read(plan: both, directory: out, parse: SimulationOptions.parseWords)
                Issue.record("\(expected): read")
            } catch {
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
        // A FIFO or a directory in a summary's place is refused at once, not waited on.
        try FileManager.default.removeItem(atPath: path)
        #expect(mkfifo(path, 0o600) == 0)
        #expect(refusal()?.contains("not a regular file") == true, "\(refusal() ?? "read")")
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        #expect(refusal()?.contains("not a regular file") == true, "\(refusal() ?? "read")")
        try FileManager.default.removeItem(atPath: path)
        // More extra seeds than a report takes: refused before the grid is expanded for them.
        let many = (100...(100 + SummaryResults.maxExtraSeeds)).map { out + "/Krum__Non__seed\($0).json" }
        for name in many { try Data("{}".utf8).write(to: URL(fileURLWithPath: name)) }
        #expect(refusal()?.contains("more than \(SummaryResults.maxExtraSeeds)") == true, "\(refusal() ?? "read")")
        for name in many { try FileManager.default.removeItem(atPath: name) }
        // Names that only look like another seed's summary are not read.
        try real.json().write(to: URL(fileURLWithPath: path))
        for name in [
            "Krum__Non__seed01.json", "Krum__Non__seed.json", "Krum__Non__seed99999999999999999999.json",
            "Unplanned__Non__seed3.json",
        ] {
            try Data("not json".utf8).write(to: URL(fileURLWithPath: out + "/" + name))
        }
        #expect(try SummaryResults.read(plan: both, directory: out, parse: SimulationOptions.parseWords).count == 3)
    }

    @Test func theCommandReportsFromSummaries() throws {
        let spec = smokeSpec(seeds: [1], record: "decisions")
        let work = temporaryDirectory("grid-report-cli")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try spec.json().write(to: URL(fileURLWithPath: work + "/smoke.json"))
        let run = try Executables.run(
            "desgd-grid", ["run", "smoke.json", "--dir", "g", "--cell", "0", "2", "--jobs", "2"], in: work)
        #expect(run.status == 0, "\(run.standardError)")
        let summarize = try Executables.run(
            "desgd-grid", ["summarize", "smoke.json", "--dir", "g", "--out", "s"], in: work)
        #expect(summarize.status == 0, "\(summarize.standardError)")
        try FileManager.default.removeItem(atPath: work + "/g")

        let args = [
            "report", "smoke.json", "--summaries", "s", "--markdown", "r.md", "--csv", "r.csv", "--html", "r.html",
        ]
        let report = try Executables.run("desgd-grid", args, in: work)
        #expect(report.status == 0, "\(report.standardError)")
        let markdown = String(decoding: bytes(work + "/r.md"), as: UTF8.self)
        #expect(markdown.contains("- Cells finished: 2 of 6;") && markdown.contains("| Krum+ | Non | 1 | "))
        #expect(
            String(decoding: bytes(work + "/r.csv"), as: UTF8.self).split(separator: "\n").filter {
                $0.hasPrefix("run,")
            }.count == 2)
        let page = String(decoding: bytes(work + "/r.html"), as: UTF8.self)
        #expect(page.hasPrefix("<!DOCTYPE html>") && page.contains("<svg") && !page.contains("<script"))

        let both = try Executables.run(
            "desgd-grid", ["report", "smoke.json", "--summaries", "s", "--dir", "g"], in: work)
        #expect(both.status == 2 && both.standardError.contains("--summaries and --dir"))

        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let path = "s/" + plan.cells[2].stem + ".json"
        var bad = try CellSummary.decode(bytes(work + "/" + path))
        bad.cell.attack = "IPM\u{1b}[2J"
        try bad.json().write(to: URL(fileURLWithPath: work + "/" + path))
        let refused = try Executables.run("desgd-grid", ["report", "smoke.json", "--summaries", "s"], in: work)
        #expect(refused.status == 2)
        let lines = refused.standardError.split(separator: "\n")
        #expect(
            lines.count == 1 && lines[0].hasPrefix("desgd-grid report: \(path) is not a summary of cell #2"),
            "\(lines)")
        #expect(!refused.standardError.contains("\u{1b}"))
    }

    /// `horizon-seeds.json` holds the built-in horizon grid's cells with seeds 2 and 3: same grid name,
    /// same configuration but the seed, so that its summaries join their cells in the report (a spec
    /// that drifted from the grid would cost hours of runs before the report refused their summaries).
    @Test func theHorizonSeedsSpecHoldsTheHorizonsCellsWithOtherSeeds() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let spec = try GridSpec.load(repository + "/traces/reproduction/horizon-seeds.json")
        let seeds = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let horizon = try GridPlan(spec: .horizon, parse: SimulationOptions.parseWords)
        #expect(spec.name == GridSpec.horizon.name && spec.record == GridSpec.horizon.record)
        #expect(!seeds.cells.isEmpty && seeds.cells.allSatisfy { $0.seed != 1 })
        for cell in seeds.cells {
            let first = horizon.cells.first { $0.method == cell.method && $0.attack == cell.attack }
            #expect(first != nil, "\(cell.stem) is not a horizon cell")
            guard var expected = first?.config else { continue }
            expected.seed = cell.seed
            #expect(cell.config == expected, "\(cell.stem): \(GridDirectory.difference(cell.config, expected))")
            #expect(cell.checkpointInterval == first?.checkpointInterval)
        }
        // No cell twice (a block appended for another collapse must not repeat one).
        #expect(Set(seeds.cells.map(\.stem)).count == seeds.cells.count)
    }

    /// The committed horizon report is what the README's command makes of the committed summaries:
    /// a summary added without regenerating the report (or an edited report) fails here.
    @Test func theCommittedHorizonReportIsWhatItsSummariesGive() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let committed = repository + "/traces/reproduction/"
        let work = temporaryDirectory("horizon-report")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let args = [
            "report", "horizon", "--summaries", committed + "horizon",
            "--markdown", "horizon.md", "--csv", "horizon.csv", "--html", "horizon.html",
        ]
        let report = try Executables.run("desgd-grid", args, in: work)
        #expect(report.status == 0, "\(report.standardError)")
        for name in ["horizon.md", "horizon.csv", "horizon.html"] {
            #expect(
                bytes(work + "/" + name) == bytes(committed + name),
                "traces/reproduction/\(name) is not what the README's command gives: run it again")
        }
        let summaries = try FileManager.default.contentsOfDirectory(atPath: committed + "horizon").filter {
            $0.hasSuffix(".json")
        }
        let markdown = String(decoding: bytes(committed + "horizon.md"), as: UTF8.self)
        // One line per summary among the runs, whose third column is the seed.
        let runRows = markdown.split(separator: "\n").filter { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            return line.hasPrefix("| ") && cells.count == 8 && UInt64(cells[2]) != nil
        }
        #expect(runRows.count == summaries.count)
    }
}
