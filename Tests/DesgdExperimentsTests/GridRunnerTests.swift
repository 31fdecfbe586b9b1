import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing
@testable import DesgdExperiments

func temporaryDirectory(_ name: String) -> String {
    NSTemporaryDirectory() + "desgd-\(name)-\(UUID().uuidString)"
}

func bytes(_ path: String) -> Data { FileManager.default.contents(atPath: path) ?? Data() }

/// Counts rounds across every running cell and says "stop" once `after` rounds have run.
final class StopAfter: @unchecked Sendable {
    let lock = NSLock()
    var rounds = 0
    let after: Int
    init(_ after: Int) { self.after = after }
    func round() { lock.withLock { rounds += 1 } }
    var stop: Bool { lock.withLock { rounds >= after } }
}

final class EventLog: @unchecked Sendable {
    let lock = NSLock()
    var events: [GridRunner.Event] = []
    func add(_ e: GridRunner.Event) { lock.withLock { events.append(e) } }
    var started: [String] { lock.withLock { events.compactMap { if case .started(let c) = $0 { c.stem } else { nil } } } }
}

@Suite(.serialized) struct GridRunnerTests {
    @Test func runsEveryCellInParallelAndEachTraceIsTheOneDesgdRecordWrites() throws {
        let plan = try GridPlan(spec: smokeSpec())
        let dir = GridDirectory(temporaryDirectory("grid"))
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1, checkpointInterval: 2).run()
        #expect(summary.recorded == 12 && summary.alreadyFinished == 0 && summary.failures.isEmpty && !summary.interrupted)
        #expect(FileManager.default.fileExists(atPath: dir.specPath))
        #expect(try GridSpec.decode(bytes(dir.specPath)) == plan.spec)

        // Cell 3 recorded alone by the real desgd-record executable, with the cell's options,
        // --threads 1 (the header records the thread count), the grid's recording mode and
        // checkpoint interval: the very bytes the grid wrote for that cell next to other cells.
        let cell = plan.cells[3]
        let alone = temporaryDirectory("alone") + ".trace"
        defer { try? FileManager.default.removeItem(atPath: alone) }
        let recorded = try Executables.run("desgd-record", cell.arguments + ["--threads", "1", "--record", plan.spec.record,
                                                                            "--checkpoint-every", "2", "--out", alone, "--json"])
        #expect(recorded.status == 0, "\(recorded.standardError)")
        let gridBytes = bytes(dir.tracePath(cell))
        #expect(!gridBytes.isEmpty && bytes(alone) == gridBytes)

        // The result read back from the grid's trace is the one desgd-record reports.
        let reported = try JSONDecoder().decode(RecordingSummary.self, from: recorded.standardOutput)
        guard case .finished(let r) = dir.state(of: cell) else { Issue.record("cell 3 not finished"); return }
        #expect(r.curve.map(\.round) == [3, 6])
        #expect(reported.rounds == 6 && r.bestAccuracy == reported.bestAccuracy && r.finalAccuracy == reported.finalAccuracy)
        #expect(try dir.results(of: plan).count == 12)
    }

    @Test func aSecondRunRedoesNothing() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]))
        let dir = GridDirectory(temporaryDirectory("grid"))
        _ = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run()
        let before = plan.cells.map { try? FileManager.default.attributesOfItem(atPath: dir.tracePath($0))[.modificationDate] as? Date }
        let log = EventLog()
        let again = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run(events: log.add)
        #expect(again.recorded == 0 && again.alreadyFinished == 6 && log.events.isEmpty)
        let after = plan.cells.map { try? FileManager.default.attributesOfItem(atPath: dir.tracePath($0))[.modificationDate] as? Date }
        #expect(before == after)
    }

    @Test func ctrlCStopsCleanlyAndTheNextRunKeepsTheIncompleteTraceAsideAndFinishes() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]))
        let dir = GridDirectory(temporaryDirectory("grid"))
        let stopper = StopAfter(4)
        let log = EventLog()
        let first = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run(shouldStop: { stopper.stop }) { e in
            if case .round = e { stopper.round() }
            log.add(e)
        }
        #expect(first.interrupted && first.recorded == 0)
        // At most the two cells that were running have traces, each closed cleanly and readable.
        let touched = plan.cells.filter { FileManager.default.fileExists(atPath: dir.tracePath($0)) }
        #expect(touched.count == first.stopped && (1...2).contains(touched.count))
        #expect(log.started.count == touched.count)
        for cell in touched {
            let reader = try TraceReader(path: dir.tracePath(cell))
            #expect(reader.completeness == .complete(interrupted: true))
            #expect(reader.roundCount >= 1 && reader.roundCount < 6)
            #expect(dir.state(of: cell) == .incomplete(reason: "stopped after \(reader.roundCount) of 6 rounds"))
        }
        let stoppedBytes = touched.map { bytes(dir.tracePath($0)) }

        let second = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run()
        #expect(second.recorded == 6 && second.keptAside.count == touched.count && !second.interrupted)
        for (cell, data) in zip(touched, stoppedBytes) {
            #expect(bytes("\(dir.path)/\(cell.stem).incomplete-1.trace") == data)  // nothing recorded is lost
            #expect(dir.state(of: cell).isFinished)
        }
        #expect(try dir.results(of: plan).count == 6)
    }

    @Test func aTruncatedTraceIsRecordedAgainAndAForeignOneStopsTheRun() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]))
        let dir = GridDirectory(temporaryDirectory("grid"))
        _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(dir.state(of: plan.cells[2]) == .pending)
        let path = dir.tracePath(plan.cells[0])
        let full = bytes(path)
        try full.prefix(full.count * 2 / 3).write(to: URL(fileURLWithPath: path))  // a killed recorder
        guard case .incomplete = dir.state(of: plan.cells[0]) else { Issue.record("a cut trace must be incomplete"); return }
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(summary.recorded == 1 && summary.alreadyFinished == 1)
        #expect(bytes(path) == full)  // recorded again: the same bytes

        // Cell 1's trace where cell 2's belongs: another configuration, refused before anything runs.
        try FileManager.default.copyItem(atPath: dir.tracePath(plan.cells[1]), toPath: dir.tracePath(plan.cells[2]))
        guard case .conflict(let why) = dir.state(of: plan.cells[2]) else { Issue.record("expected a conflict"); return }
        #expect(why.contains("attack") && why.contains("another configuration"))
        #expect(throws: GridError.self) { try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run() }
        #expect(dir.state(of: plan.cells[3]) == .pending)
        #expect(throws: GridError.self) { try dir.results(of: plan) }  // the report does not show it as pending
        #expect(throws: GridError.self) { try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1, keyframeInterval: 0).run(only: [3]) }
    }

    @Test func aLockedCellIsLeftToItsHolder() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]))
        let dir = GridDirectory(temporaryDirectory("grid"))
        try dir.prepare(plan.spec)
        let held = try #require(try dir.lock(plan.cells[0]))
        #expect(dir.state(of: plan.cells[0]) == .running)
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(summary.runningElsewhere == 1 && summary.recorded == 1)
        held.release()
        #expect(dir.state(of: plan.cells[0]) == .pending)
    }

    @Test func preflightNamesACellWhoseRuleCannotRun() throws {
        var spec = smokeSpec(seeds: [1])
        spec.options = spec.options.replacingOccurrences(of: "--byzantine 1", with: "--byzantine 2")
        let plan = try GridPlan(spec: spec)
        let dir = GridDirectory(temporaryDirectory("grid"))
        do { _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(); Issue.record("ran") } catch {
            #expect(error.message.hasPrefix("Krum+ under Non: ") && error.message.contains("krum needs"))
        }
        #expect(plan.cells.allSatisfy { dir.state(of: $0) == .pending })
        do { _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [99]); Issue.record("ran") } catch {
            #expect(error.message == "--cell must be in 0...5, the cells of grid smoke (got 99)")
        }
    }
}

@Suite struct SlurmArrayTests {
    @Test func arraySpecCompressesRuns() {
        #expect(SlurmArray.arraySpec([0, 1, 2, 3]) == "0-3")
        #expect(SlurmArray.arraySpec([7, 0, 1, 2, 5, 9, 10, 11]) == "0-2,5,7,9-11")
        #expect(SlurmArray.arraySpec([4]) == "4")
    }

    @Test func theScriptRunsOneCellPerTaskOnTheSharedDirectory() throws {
        let plan = try GridPlan(spec: smokeSpec())
        var options = SlurmArray.Options()
        options.timeLimit = "1:00:00"
        options.maxConcurrent = 4
        options.partition = "gpu"
        let array = try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [1, 2, 3, 8],
                                   executable: "/opt/desgd/desgd-grid", options: options)
        let lines = array.script(specName: "grid-1.json").split(separator: "\n").map(String.init)
        #expect(lines.first == "#!/bin/bash")
        for expected in ["#SBATCH --array=1-3,8%4", "#SBATCH --cpus-per-task=2", "#SBATCH --time=1:00:00", "#SBATCH --partition=gpu",
                         "#SBATCH --output=/shared/g/slurm/%A_%a.out", "#SBATCH --mem=2G",
                         "exec /opt/desgd/desgd-grid run /shared/g/slurm/grid-1.json --dir /shared/g \\"] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(array.script().contains("--cell \"$SLURM_ARRAY_TASK_ID\" --jobs 1 --threads \"${SLURM_CPUS_PER_TASK:-1}\" --keyframe-every 100"))
        #expect(throws: GridError.self) {
            try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [], executable: "x", options: options)
        }
        for edit in [{ (o: inout SlurmArray.Options) in o.timeLimit = "1:00\n#SBATCH --x" }, { $0.maxConcurrent = 0 }, { $0.partition = "" }] {
            var bad = options
            edit(&bad)
            #expect(throws: GridError.self) {
                try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [1], executable: "x", options: bad)
            }
        }

        // Written: the spec the tasks run is saved beside the script, numbered with it.
        let dir = GridDirectory(temporaryDirectory("slurm"))
        let first = try array.write(in: dir), second = try array.write(in: dir)
        #expect(first.hasSuffix("/slurm/grid-1.sbatch") && second.hasSuffix("/slurm/grid-2.sbatch"))
        #expect(try GridSpec.decode(bytes("\(dir.path)/slurm/grid-2.json")) == plan.spec)
        #expect(String(decoding: bytes(second), as: UTF8.self).contains("/slurm/grid-2.json --dir "))
    }
}

@Suite struct ReproductionReportTests {
    func result(_ m: String, _ a: String, _ seed: UInt64, _ best: Double) -> CellResult {
        CellResult(method: m, attack: a, seed: seed, trace: "", rounds: 6,
                   curve: [.init(round: 3, accuracy: best - 0.01), .init(round: 6, accuracy: best)])
    }

    @Test func cellsMeanSpreadPaperAndDifference() throws {
        var spec = smokeSpec()
        spec.methods = [.init("Krum", "--mode sgd --agg krum:q=n-f-1"), .init("Krum+", "--mode desgd --agg krum:q=n-f-1"),
                        .init("No defence", "--mode sgd --momentum global --agg mean")]
        spec.attacks = [.init("Non", "none"), .init("Sign-Flip", "signflip")]
        spec.reference = .init(method: "No defence", attack: "Non")
        let plan = try GridPlan(spec: spec)
        let results = [
            result("Krum", "Sign-Flip", 1, 0.40), result("Krum", "Sign-Flip", 2, 0.44),
            result("Krum+", "Sign-Flip", 1, 0.88), result("Krum+", "Sign-Flip", 2, 0.86),
            result("Krum+", "Non", 1, 0.87),
            result("No defence", "Non", 1, 0.90), result("No defence", "Non", 2, 0.92),
        ]
        let report = ReproductionReport(plan: plan, results: results)
        let krum = try #require(report.accuracy.first { $0.method == "Krum" && $0.attack == "Sign-Flip" })
        #expect(abs(krum.mean! - 42) < 1e-9)
        #expect(abs(krum.standardDeviation! - 2.8284271247) < 1e-6)  // sample sd of 40 and 44
        #expect(krum.paper == 42.86 && abs(krum.difference! - (42 - 42.86)) < 1e-9)
        let krumPlusNon = try #require(report.accuracy.first { $0.method == "Krum+" && $0.attack == "Non" })
        #expect(krumPlusNon.count == 1 && krumPlusNon.planned == 2 && krumPlusNon.standardDeviation == nil)
        #expect(report.accuracy.first { $0.method == "Krum" && $0.attack == "Non" }?.mean == nil)  // pending

        // Table II: drops against the measured reference (91 %), beside the paper's.
        #expect(report.reference?.mean == 91 && report.reference?.paper == 90.58)
        #expect(report.drops.isEmpty)  // Krum is no Table II row
        // The DeSGD effect pairs seeds: (88 − 40, 86 − 44).
        let gain = try #require(report.gains.first { $0.method == "Krum" && $0.attack == "Sign-Flip" })
        #expect(gain.values.map { $0.rounded() } == [48, 42])
        #expect(abs(gain.paper! - (88.73 - 42.86)) < 1e-9)

        let md = report.markdown
        #expect(md.contains("| Krum | pending | 42.00 ± 2.83 · 42.86 · -0.86 |"))
        #expect(md.contains("| Krum+ | 87.00 (1/2 seeds) · 88.33 · -1.33 | 87.00 ± 1.41 · 88.73 · -1.73 |"))
        #expect(md.contains("| Krum → Krum+ | pending | +45.00 ± 4.24 · +45.87 |"))
        #expect(md.contains("Cells finished: 7 of 12"))
        let csv = report.csv.split(separator: "\n").map(String.init)
        #expect(csv[0] == "table,method,attack,seeds_planned,seeds_finished,mean,sd,min,max,paper,difference")
        #expect(csv.contains("I,Krum,Sign-Flip,2,2,42.0000,2.8284,40.0000,44.0000,42.8600,-0.8600"))
        #expect(csv.contains("I,Krum,Non,2,0,,,,,89.1800,"))
        #expect(csv.contains("reference,No defence,Non,2,2,91.0000,1.4142,90.0000,92.0000,90.5800,0.4200"))
        let json = try #require(try JSONSerialization.jsonObject(with: report.json) as? [String: Any])
        let tableI = try #require(json["tableI"] as? [[String: Any]])
        let entry = try #require(tableI.first { $0["method"] as? String == "Krum" && $0["attack"] as? String == "Sign-Flip" })
        #expect(entry["values"] as? [Double] == [40, 44] && entry["paper"] as? Double == 42.86 && entry["seedsFinished"] as? Int == 2)
        #expect(json["cellsFinished"] as? Int == 7 && (json["reference"] as? [String: Any])?["mean"] as? Double == 91)
    }

    @Test func theDeSGDEffectPairsSeedsItDoesNotMatchByPosition() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1, 2, 3]))
        let report = ReproductionReport(plan: plan, results: [
            result("Krum", "IPM", 1, 0.40), result("Krum", "IPM", 2, 0.50),
            result("Krum+", "IPM", 2, 0.80), result("Krum+", "IPM", 3, 0.90),
        ])
        let gain = try #require(report.gains.first { $0.attack == "IPM" })
        #expect(gain.seeds == [2] && gain.values.map { $0.rounded() } == [30])
    }

    @Test func tableIIDropsOfBucketingAndDeSGDRows() throws {
        var spec = smokeSpec(seeds: [1])
        spec.methods = [.init("TrMean + Bucketing", "--mode sgd --pre bucketing:s=2 --agg trmean"), .init("TrMean+", "--mode desgd --agg trmean"),
                        .init("No defence", "--mode sgd --momentum global --agg mean")]
        spec.attacks = [.init("Non", "none"), .init("ALIE", "alie")]
        spec.reference = .init(method: "No defence", attack: "Non")
        let plan = try GridPlan(spec: spec)
        let report = ReproductionReport(plan: plan, results: [
            result("No defence", "Non", 1, 0.90), result("TrMean + Bucketing", "ALIE", 1, 0.80), result("TrMean+", "ALIE", 1, 0.85),
        ])
        #expect(report.drops.map(\.method) == ["TrMean + Bucketing", "TrMean + DeSGD"])
        #expect(report.drops.map(\.attack) == ["ALIE", "ALIE"])
        #expect(report.drops.map { ($0.mean! * 100).rounded() / 100 } == [10, 5])
        #expect(report.drops.map(\.paper) == [11.59, 10.14])
        #expect(report.markdown.contains("| TrMean + DeSGD | 5.00 · 10.14 · -5.14 |"))
    }
}
