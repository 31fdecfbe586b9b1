import DesgdAudit
import DesgdCLI
@testable import DesgdExperiments
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

@Suite(.serialized) struct CellSummaryTests {
    /// Two cells of the tiny grid recorded as `horizon` records them (decisions with checkpoints),
    /// a third stopped inside its last round, the rest pending.
    func recordedGrid() throws -> (GridPlan, GridDirectory) {
        let spec = smokeSpec(seeds: [1], record: "decisions")
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid-sum"))
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1, checkpointInterval: 2)
            .run(only: [0, 3, 1])
        #expect(summary.recorded == 3 && summary.failures.isEmpty)
        _ = try cutInsideTheLastRound(dir.tracePath(plan.cells[1]))
        return (plan, dir)
    }

    @Test func aSummaryHoldsWhatTheTraceAndItsAuditSay() throws {
        let (plan, dir) = try recordedGrid()
        let out = temporaryDirectory("summaries")
        let outcome = try CellSummaries.write(plan: plan, directory: dir, out: out)
        #expect(outcome.written == [0, 3].map { CellSummaries.path(of: plan.cells[$0], in: out) })
        #expect(outcome.refused.isEmpty && outcome.failures.isEmpty && outcome.unchanged.isEmpty)
        #expect(outcome.skipped.map(\.cell.index) == [1, 2, 4, 5])
        #expect(outcome.skipped[0].reason.hasPrefix("incomplete: ") && outcome.skipped[1].reason == "pending")
        #expect(!FileManager.default.fileExists(atPath: CellSummaries.path(of: plan.cells[1], in: out)))

        for k in [0, 3] {
            let cell = plan.cells[k]
            let s = try CellSummary.decode(bytes(CellSummaries.path(of: cell, in: out)))
            let reader = try TraceReader(path: dir.tracePath(cell))
            let h = reader.header
            #expect(s.version == 1 && s.grid == "smoke")
            #expect(s.cell.index == k && s.cell.method == cell.method && s.cell.attack == cell.attack)
            #expect(s.cell.seed == 1)
            #expect(s.cell.options == cell.arguments && s.cell.config == cell.config && s.cell.stem == cell.stem)
            #expect(s.provenance.program == h.program && s.provenance.backend == h.backend)
            #expect(s.provenance.traceFormat == h.formatVersion.map(String.init).joined(separator: "."))
            #expect(s.provenance.numerics == h.effectiveNumerics && s.provenance.datasetDigest == h.dataset.digest)
            #expect(s.provenance.recording == "decisions" && s.provenance.checkpointInterval == 2)
            let chain = reader.verifyChain()
            #expect(chain.holds && s.trace.lastDigest == chain.lastDigest && s.trace.lastDigest.count == 64)
            #expect(s.trace.bytes == UInt64(bytes(dir.tracePath(cell)).count) && s.trace.rounds == 6)
            #expect(s.trace.records == chain.totalRecords && s.trace.file == cell.traceName)

            // The series at the evaluation rounds as recorded (0-based, as desgd-audit counts), and
            // best and final as the grid's own reading of the trace (which counts rounds completed).
            let recorded = try [2, 5].map { t in try #require(try reader.round(t).content.evaluation).accuracy }
            let series = zip([2, 5], recorded).map { CellSummary.Point(round: $0, accuracy: $1) }
            #expect(s.accuracy.series == series)
            guard case .finished(let r) = dir.state(of: cell) else { Issue.record("cell \(k) not finished"); continue }
            #expect(s.accuracy.best == r.bestAccuracy && s.accuracy.bestRound == r.bestRound - 1)
            #expect(s.accuracy.final == r.finalAccuracy && s.accuracy.finalRound == 5)

            let audit = try Audit.report(reader, threads: 1)
            let drift = try #require(audit.drift)
            #expect(s.audit.chainHolds && s.audit.collapseOnsets == drift.onsets)
            #expect(s.audit.persistenceFlags == drift.flags.count)
            #expect(s.audit.criteria == AuditDrift.Criteria())
            let last = try #require(drift.series.first?.points.last)
            let final = try #require(s.audit.finalDrift)
            #expect(final.round == 5 && final.round == last.round && final.cumulative == last.cumulative)
            #expect(final.cumulativePersistence == last.cumulativePersistence)
            #expect(final.modelRelative == last.modelRelative)
            #expect(final.modelRelative != nil)
        }

        // Deterministic: summarizing again rewrites the very bytes, and says nothing new was written.
        let first = bytes(CellSummaries.path(of: plan.cells[3], in: out))
        let again = try CellSummaries.write(plan: plan, directory: dir, out: out)
        #expect(again.written.isEmpty && again.unchanged.count == 2 && again.refused.isEmpty)
        #expect(bytes(CellSummaries.path(of: plan.cells[3], in: out)) == first)
        let text = String(decoding: first, as: UTF8.self)
        #expect(text.contains("\"series\" : [\n      [\n        2,"))
    }

    @Test func aSummaryOfAnotherTraceIsNotOverwrittenWithoutForce() throws {
        let (plan, dir) = try recordedGrid()
        let out = temporaryDirectory("summaries")
        _ = try CellSummaries.write(plan: plan, directory: dir, out: out, only: [3])
        let path = CellSummaries.path(of: plan.cells[3], in: out)
        let real = try CellSummary.decode(bytes(path))
        var other = real
        other.trace.lastDigest = String(repeating: "ab", count: 32)
        try other.json().write(to: URL(fileURLWithPath: path))

        let refused = try CellSummaries.write(plan: plan, directory: dir, out: out, only: [3, 0])
        #expect(refused.written == [CellSummaries.path(of: plan.cells[0], in: out)])
        #expect(refused.refused.count == 1)
        let r = try #require(refused.refused.first)
        #expect(r.cell.index == 3 && r.committedDigest == other.trace.lastDigest)
        #expect(r.traceDigest == real.trace.lastDigest)
        #expect(r.line.contains(plan.cells[3].stem) && r.line.contains(r.committedDigest))
        #expect(r.line.contains(r.traceDigest))
        #expect(try CellSummary.decode(bytes(path)) == other)

        let forced = try CellSummaries.write(plan: plan, directory: dir, out: out, only: [3], force: true)
        #expect(forced.written == [path] && forced.refused.isEmpty)
        #expect(try CellSummary.decode(bytes(path)) == real)
    }

    @Test func theCommandSummarizesSkipsAndRefuses() throws {
        let spec = smokeSpec(seeds: [1], record: "decisions")
        let work = temporaryDirectory("grid-sum-cli")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try spec.json().write(to: URL(fileURLWithPath: work + "/smoke.json"))
        let args = ["run", "smoke.json", "--dir", "g", "--cell", "0", "2", "--jobs", "2"]
        let run = try Executables.run("desgd-grid", args, in: work)
        #expect(run.status == 0, "\(run.standardError)")

        let first = try Executables.run("desgd-grid", ["summarize", "smoke.json", "--dir", "g"], in: work)
        #expect(first.status == 0, "\(first.standardError)")
        #expect(String(decoding: first.standardOutput, as: UTF8.self)
            == "grid smoke in g: summaries in traces/reproduction/smoke: 2 written, 0 unchanged, 4 not finished\n")
        #expect(first.standardError.contains("desgd-grid summarize: skipped #1 Krum__IPM__seed1: pending"))
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let path = work + "/traces/reproduction/smoke/" + plan.cells[2].stem + ".json"
        let real = try CellSummary.decode(bytes(path))
        let trace = try TraceReader(path: work + "/g/" + plan.cells[2].traceName)
        #expect(real.trace.lastDigest == trace.verifyChain().lastDigest)

        var other = real
        other.trace.lastDigest = String(repeating: "0", count: 64)
        try other.json().write(to: URL(fileURLWithPath: path))
        let refused = try Executables.run("desgd-grid", ["summarize", "smoke.json", "--dir", "g", "--cell", "2"],
                                          in: work)
        #expect(refused.status == 1)
        let why = refused.standardError
        #expect(why.contains("#2 \(plan.cells[2].stem)") && why.contains(other.trace.lastDigest))
        #expect(why.contains(real.trace.lastDigest) && why.contains("--force"))
        let forced = try Executables.run("desgd-grid", ["summarize", "smoke.json", "--dir", "g", "--cell", "2",
                                                        "--force", "--out", "traces/reproduction/smoke"], in: work)
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(try CellSummary.decode(bytes(path)) == real)

        let help = try Executables.run("desgd-grid", ["summarize", "--help"], in: work)
        #expect(String(decoding: help.standardOutput, as: UTF8.self).contains("desgd-grid summarize horizon"))
    }
}
