import DesgdCLI
import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing
@testable import DesgdExperiments
import DesgdRecording

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
    var started: [String] {
        lock.withLock { events.compactMap { if case .started(let c) = $0 { c.stem } else { nil } } }
    }
}

/// Cuts the trace at `path` inside the record of round `t` (the last round by default: a recorder
/// killed while writing it) and returns what is left.
func cutInsideTheLastRound(_ path: String, round t: Int? = nil) throws -> Data {
    let last = try #require(try TraceReader(path: path).records.last {
        $0.type == .round && (t == nil || $0.round == t) })
    let cut = bytes(path).prefix(Int(last.offset + last.size / 2))
    try cut.write(to: URL(fileURLWithPath: path))
    return cut
}

/// Cell 0 of the one-seed smoke grid recorded whole with a state checkpoint every 2 rounds: its plan,
/// directory, cell, trace path and the trace's bytes.
func recordedSmokeCell() throws -> (GridPlan, GridDirectory, GridCell, String, Data) {
    let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
    let dir = GridDirectory(temporaryDirectory("grid"))
    let cell = plan.cells[0], path = dir.tracePath(cell)
    _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1, checkpointInterval: 2).run(only: [0])
    return (plan, dir, cell, path, bytes(path))
}

@Suite(.serialized) struct GridRunnerTests {
    @Test func runsEveryCellInParallelAndEachTraceIsTheOneDesgdRecordWrites() throws {
        let plan = try GridPlan(spec: smokeSpec(), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1, checkpointInterval: 2).run()
        #expect(summary.recorded == 12 && summary.alreadyFinished == 0 && summary.failures.isEmpty
            && !summary.interrupted)
        #expect(FileManager.default.fileExists(atPath: dir.specPath))
        #expect(try GridSpec.decode(bytes(dir.specPath)) == plan.spec)

        // Cell 3 recorded alone by the real desgd-record executable, with the cell's options,
        // --threads 1 (the header records the thread count), the grid's recording mode and
        // checkpoint interval: the very bytes the grid wrote for that cell next to other cells.
        let cell = plan.cells[3]
        let alone = temporaryDirectory("alone") + ".trace"
        defer { try? FileManager.default.removeItem(atPath: alone) }
        let recorded = try Executables.run("desgd-record", cell.arguments
            + ["--threads", "1", "--record", plan.spec.record,
                                                                            "--checkpoint-every", "2", "--out", alone,
                                                                            "--json"])
        #expect(recorded.status == 0, "\(recorded.standardError)")
        let gridBytes = bytes(dir.tracePath(cell))
        #expect(!gridBytes.isEmpty && bytes(alone) == gridBytes)

        // The result read back from the grid's trace is the one desgd-record reports.
        let reported = try JSONDecoder().decode(RecordingSummary.self, from: recorded.standardOutput)
        guard case .finished(let r) = dir.state(of: cell) else { Issue.record("cell 3 not finished"); return }
        #expect(r.curve.map(\.round) == [3, 6])
        #expect(reported.rounds == 6 && r.bestAccuracy == reported.bestAccuracy
            && r.finalAccuracy == reported.finalAccuracy)
        #expect(try dir.results(of: plan).count == 12)
    }

    @Test func aSecondRunRedoesNothing() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        _ = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run()
        let before = plan.cells.map {
            try? FileManager.default.attributesOfItem(atPath: dir.tracePath($0))[.modificationDate] as? Date
        }
        let log = EventLog()
        let again = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run(events: log.add)
        #expect(again.recorded == 0 && again.alreadyFinished == 6 && log.events.isEmpty)
        let after = plan.cells.map {
            try? FileManager.default.attributesOfItem(atPath: dir.tracePath($0))[.modificationDate] as? Date
        }
        #expect(before == after)
    }

    @Test func ctrlCStopsCleanlyAndTheNextRunKeepsTheIncompleteTraceAsideAndFinishes() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        let stopper = StopAfter(4)
        let log = EventLog()
        let first = try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1)
            .run(shouldStop: { stopper.stop }) { e in
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
            #expect(dir.state(of: cell)
                == .incomplete(reason: "stopped after \(reader.roundCount) of 6 rounds", resumesFrom: nil))
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
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(dir.state(of: plan.cells[2]) == .pending)
        let path = dir.tracePath(plan.cells[0])
        let full = bytes(path)
        try full.prefix(full.count * 2 / 3).write(to: URL(fileURLWithPath: path))  // a killed recorder
        guard case .incomplete = dir.state(of: plan.cells[0]) else {
            Issue.record("a cut trace must be incomplete"); return
        }
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(summary.recorded == 1 && summary.alreadyFinished == 1)
        #expect(bytes(path) == full)  // recorded again: the same bytes

        // Cell 1's trace where cell 2's belongs: another configuration, refused before anything runs.
        try FileManager.default.copyItem(atPath: dir.tracePath(plan.cells[1]), toPath: dir.tracePath(plan.cells[2]))
        guard case .conflict(let why) = dir.state(of: plan.cells[2]) else {
            Issue.record("expected a conflict"); return
        }
        #expect(why.contains("attack") && why.contains("another configuration"))
        #expect(throws: GridError.self) { try GridRunner(plan: plan, directory: dir, jobs: 2, threadsPerRun: 1).run() }
        #expect(dir.state(of: plan.cells[3]) == .pending)
        #expect(throws: GridError.self) { try dir.results(of: plan) }  // the report does not show it as pending
        #expect(throws: GridError.self) {
            try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1, keyframeInterval: 0).run(only: [3])
        }
    }

    /// A cell killed mid-run (its trace cut at every record, at the record's start or inside it,
    /// as ResumeTests cuts them) is resumed from its last state checkpoint to the very bytes of an
    /// uninterrupted recording, and the summary says from where; cut before the first checkpoint
    /// it is kept aside and recorded again, to the same bytes.
    @Test func aKilledCellResumesFromItsLastCheckpointToTheUninterruptedBytes() throws {
        let (plan, dir, cell, path, full) = try recordedSmokeCell()
        let reader = try TraceReader(path: path)
        #expect(reader.checkpointRounds == [0, 2, 4])
        let lastRound = try #require(reader.records.lastIndex { $0.type == .round })
        var starts: Set<Int> = [], keptAside = 0
        for (k, e) in reader.records.enumerated() where k >= 1 && k <= lastRound {
            let cut = Int(e.offset) + (k % 2 == 0 ? 0 : Int(e.size) / 2)
            try full.prefix(cut).write(to: URL(fileURLWithPath: path))
            guard case .incomplete(_, let from) = dir.state(of: cell) else {
                Issue.record("cut at \(cut): not incomplete"); continue
            }
            let log = EventLog()
            // Resumed, another --checkpoint-every and --threads change nothing (the trace keeps the
            // intervals and header it was recorded with); recorded again, the first run's are needed.
            let (threads, every) = from == nil ? (1, 2) : (2, 3)
            let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: threads,
                checkpointInterval: every)
                .run(only: [0], events: log.add)
            #expect(bytes(path) == full, "cut at byte \(cut) (record \(k), \(e.type.name))")
            #expect(!FileManager.default.fileExists(atPath: dir.resumingPath(cell)))
            #expect(summary.failures.isEmpty && !summary.interrupted)
            if let from {
                #expect(summary.resumed.map(\.cell) == [cell.stem] && summary.resumed.first?.fromRound == from
                    && summary.recorded == 0)
                #expect(summary.keptAside.isEmpty && log.started.isEmpty)
                #expect(summary.line(grid: "smoke", directory: dir.path)
                    .contains("0 recorded, 1 resumed (from round \(from)), 0 already finished"))
                let finished = log.lock.withLock {
                    log.events.compactMap { if case .finished(_, let r, _, let f) = $0 { (r, f) } else { nil } }
                }
                #expect(finished.count == 1 && finished.first?.1 == from
                    && finished.first?.0.curve.map(\.round) == [3, 6])
                #expect(log.lock.withLock { log.events.compactMap { GridDisplay.line($0) } }.contains {
                    $0.contains("resumed from round \(from)") })
                starts.insert(from)
            } else {
                #expect(summary.recorded == 1 && summary.resumed.isEmpty && summary.keptAside.count == 1)
                #expect(summary.keptAside.first?.reason.contains("no state checkpoint") == true)
                for kept in summary.keptAside { try FileManager.default.removeItem(atPath: kept.path) }
                keptAside += 1
            }
        }
        #expect(starts == [2, 4] && keptAside > 0)
        guard case .finished(let r) = dir.state(of: cell) else { Issue.record("not finished"); return }
        #expect(r.rounds == 6)
    }

    /// Ctrl-C while a cell resumes leaves its trace as it was (no temporary file); a `.resuming`
    /// file left by a killed resumption does not count as the cell's state and the next run, which
    /// holds the cell's lock, removes it and resumes.
    @Test func aStoppedOrKilledResumptionLeavesTheTraceAndTheNextRunResumes() throws {
        let (plan, dir, cell, path, full) = try recordedSmokeCell()
        let cut = try cutInsideTheLastRound(path, round: 2)  // resumes from round 2, the stop comes after round 3
        guard case .incomplete(_, let from?) = dir.state(of: cell), from == 2 else {
            Issue.record("no checkpoint to resume from"); return
        }

        let stopper = StopAfter(1)
        let log = EventLog()
        let stopped = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1)
            .run(only: [0], shouldStop: { stopper.stop }) { e in
            if case .round = e { stopper.round() }
            log.add(e)
        }
        #expect(stopped.interrupted && stopped.resumed.isEmpty && stopped.keptAside.isEmpty)
        #expect(log.lock.withLock {
            log.events.contains {
                if case .stopped(_, _, resuming: true, resumesFrom: nil) = $0 { true } else { false }
            }
        })
        #expect(bytes(path) == cut && !FileManager.default.fileExists(atPath: dir.resumingPath(cell)))

        // A resumption killed outright leaves its partial file: not the cell's state, removed by the next run.
        try Data(full.prefix(100)).write(to: URL(fileURLWithPath: dir.resumingPath(cell)))
        guard case .incomplete(_, from) = dir.state(of: cell) else {
            Issue.record("the .resuming file changed the state"); return
        }
        let resumed = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0])
        #expect(resumed.resumed.map(\.fromRound) == [from] && bytes(path) == full)
        #expect(!FileManager.default.fileExists(atPath: dir.resumingPath(cell)))
    }

    /// A resumption cut short after a state checkpoint later than its start keeps what it wrote:
    /// stopped, its file replaces the trace; killed, its leftover file is taken over by the next run
    /// when it holds the trace byte for byte, and removed when it does not. Either way the next run
    /// resumes to the uninterrupted bytes.
    @Test func aResumptionCutShortAfterALaterCheckpointKeepsWhatItWrote() throws {
        let (plan, dir, cell, path, full) = try recordedSmokeCell()  // checkpoints at rounds 0, 2, 4
        let cut = try cutInsideTheLastRound(path, round: 2)
        // Stopped after round 4 (StopAfter counts rounds 2 and 3; the stop, asked in round 4's
        // callback, ends the run there): the checkpoint of round 4 is written, the trace replaced.
        let stopper = StopAfter(2)
        let log = EventLog()
        let stopped = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(
            only: [0], shouldStop: { stopper.stop }
        ) { e in
            if case .round = e { stopper.round() }
            log.add(e)
        }
        #expect(stopped.interrupted && stopped.resumed.isEmpty)
        let lines = log.lock.withLock { log.events.compactMap { GridDisplay.line($0) } }
        let stops = lines.filter { $0.hasPrefix("stopped") }
        #expect(stops.count == 1 && stops[0].contains("up to the state checkpoint of round 4"), "\(stops)")
        #expect(dir.state(of: cell) == .incomplete(reason: "stopped after 5 of 6 rounds", resumesFrom: 4))
        #expect(bytes(path).prefix(cut.count) == cut && !FileManager.default.fileExists(atPath: dir.resumingPath(cell)))
        let finished = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0])
        #expect(finished.resumed.map(\.fromRound) == [4] && bytes(path) == full)

        // Killed: what a resumption killed inside round 5 leaves is the uninterrupted file cut there.
        let killed = { () throws -> Data in
            try full.write(to: URL(fileURLWithPath: path))
            let leftover = try cutInsideTheLastRound(path, round: 5)
            try cut.write(to: URL(fileURLWithPath: path))
            return leftover
        }
        var leftover = try killed()
        try leftover.write(to: URL(fileURLWithPath: dir.resumingPath(cell)))
        let events = EventLog()
        let tookOver = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(
            only: [0], shouldStop: { false }
        ) { events.add($0) }
        #expect(tookOver.resumed.map(\.fromRound) == [4] && bytes(path) == full)
        #expect(events.lock.withLock {
            events.events.contains { if case .tookOver(_, resumesFrom: 4) = $0 { true } else { false } }
        })
        #expect(!FileManager.default.fileExists(atPath: dir.resumingPath(cell)))

        // A leftover that does not hold the trace (one byte of the kept part changed) is removed,
        // and the cell resumes from the trace's own checkpoint.
        leftover = try killed()
        leftover[cut.count / 2] ^= 1
        try leftover.write(to: URL(fileURLWithPath: dir.resumingPath(cell)))
        let removed = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0])
        #expect(removed.resumed.map(\.fromRound) == [2] && bytes(path) == full)
        #expect(!FileManager.default.fileExists(atPath: dir.resumingPath(cell)))
    }

    /// A trace with a checkpoint that cannot be resumed (here signed, and the grid signs nothing)
    /// is kept aside byte for byte with the reason, and the cell recorded again from round 0.
    @Test func aTraceThatCannotBeResumedIsKeptAsideAndRecordedAgain() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        let cell = plan.cells[0], path = dir.tracePath(cell)
        let reference = GridDirectory(temporaryDirectory("grid"))
        _ = try GridRunner(plan: plan, directory: reference, jobs: 1, threadsPerRun: 1).run(only: [0])

        try dir.prepare(plan.spec)
        let key = try TraceSigningKey(seed: [UInt8](repeating: 3, count: 32))
        let recorder = try TraceRecorder(path: path, mode: plan.recording, signingKey: key, checkpointInterval: 2)
        var rounds = 0
        _ = try RecordingRun.run(config: cell.config, dataset: try cell.config.data.load(), recorder: recorder,
                                 shouldStop: { rounds >= 4 }) { _, _ in rounds += 1 }
        let signed = bytes(path)
        #expect(dir.state(of: cell) == .incomplete(reason: "stopped after 5 of 6 rounds", resumesFrom: 4))

        let log = EventLog()
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1)
            .run(only: [0], events: log.add)
        #expect(summary.recorded == 1 && summary.resumed.isEmpty && summary.failures.isEmpty)
        let kept = try #require(summary.keptAside.first)
        #expect(kept.path == "\(dir.path)/\(cell.stem).incomplete-1.trace" && bytes(kept.path) == signed)
        #expect(kept.reason.hasPrefix("not resumed: ") && kept.reason.contains("signed by"), "\(kept.reason)")
        #expect(log.lock.withLock { log.events.compactMap { GridDisplay.line($0) } }.contains {
            $0.contains("kept") && $0.contains(kept.reason) })
        #expect(bytes(path) == bytes(reference.tracePath(cell)) && dir.state(of: cell).isFinished)
    }

    /// `desgd-grid run --checkpoint-every` reaches the traces, `status` says where an interrupted
    /// cell resumes, and the next `run` resumes it (the summary, as text and JSON, says so).
    @Test func theCommandResumesACellAndSaysSo() throws {
        let spec = smokeSpec(seeds: [1])
        let work = temporaryDirectory("grid-cli")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try spec.json().write(to: URL(fileURLWithPath: work + "/smoke.json"))
        let args = ["smoke.json", "--dir", "g", "--cell", "0", "--jobs", "1"]
        let first = try Executables.run("desgd-grid", ["run"] + args + ["--checkpoint-every", "2"], in: work)
        #expect(first.status == 0, "\(first.standardError)")
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let path = work + "/g/" + plan.cells[0].traceName
        #expect(try TraceReader(path: path).checkpointRounds == [0, 2, 4])
        let full = bytes(path)
        _ = try cutInsideTheLastRound(path)

        let status = try Executables.run("desgd-grid", ["status", "smoke.json", "--dir", "g"], in: work)
        let line = String(decoding: status.standardOutput, as: UTF8.self).split(separator: "\n").first {
            $0.hasPrefix("0 ") } ?? ""
        #expect(line.contains("incomplete") && line.contains("resumes from round 4"), "\(line)")

        let again = try Executables.run("desgd-grid", ["run"] + args + ["--json"], in: work)
        #expect(again.status == 0, "\(again.standardError)")
        #expect(again.standardError.contains("resuming #0 Krum under Non, seed 1 from the state checkpoint of round 4"))
        #expect(again.standardError.contains("resumed from round 4"))
        let json = try #require(try JSONSerialization.jsonObject(with: again.standardOutput) as? [String: Any])
        let resumed = try #require(json["resumed"] as? [[String: Any]])
        #expect(resumed.count == 1 && resumed[0]["fromRound"] as? Int == 4 && json["recorded"] as? Int == 0
            && json["grid"] as? String == "smoke")
        #expect(bytes(path) == full)

        // Without --checkpoint-every a cell gets desgd-record's interval for its options (quick: 50).
        let other = try Executables.run("desgd-grid", ["run", "smoke.json", "--dir", "g", "--cell", "1", "--jobs", "1"],
            in: work)
        #expect(other.status == 0
            && String(decoding: other.standardOutput, as: UTF8.self)
            .hasPrefix("grid smoke in g: 1 recorded, 0 already finished"))
        #expect(plan.cells[1].checkpointInterval == 50)
        #expect(try TraceReader(path: work + "/g/" + plan.cells[1].traceName).checkpointRounds == [0])
    }

    @Test func aLockedCellIsLeftToItsHolder() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1]), parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        try dir.prepare(plan.spec)
        let held = try #require(try dir.lock(plan.cells[0]))
        #expect(dir.state(of: plan.cells[0]) == .running(roundsWritten: nil))
        let summary = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [0, 1])
        #expect(summary.runningElsewhere == 1 && summary.recorded == 1)
        held.release()
        #expect(dir.state(of: plan.cells[0]) == .pending)
    }

    /// `desgd-grid status` says how far a running cell is: the rounds its trace holds so far, or
    /// while it resumes those of the resumption's file, half-written last record left out.
    @Test func aRunningCellShowsTheRoundsItsTraceHoldsSoFar() throws {
        let (plan, dir, cell, path, full) = try recordedSmokeCell()
        _ = try cutInsideTheLastRound(path, round: 4)  // rounds 0–3 whole, round 4 half-written
        let held = try #require(try dir.lock(cell))
        #expect(dir.state(of: cell) == .running(roundsWritten: 4))
        let row = try #require(dir.statusRows(of: plan).first)
        #expect(row.state == "running" && row.detail == "4 of \(cell.config.rounds) rounds written")
        // A resumption that has not written its header yet: nothing to count (not the trace's 4 rounds).
        try full.prefix(100).write(to: URL(fileURLWithPath: dir.resumingPath(cell)))
        #expect(dir.state(of: cell) == .running(roundsWritten: nil))
        try full.write(to: URL(fileURLWithPath: dir.resumingPath(cell)))
        #expect(dir.state(of: cell) == .running(roundsWritten: cell.config.rounds))
        held.release()
        #expect(dir.state(of: cell).label == "incomplete")
    }

    @Test func preflightNamesACellWhoseRuleCannotRun() throws {
        var spec = smokeSpec(seeds: [1])
        spec.options = spec.options.replacingOccurrences(of: "--byzantine 1", with: "--byzantine 2")
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let dir = GridDirectory(temporaryDirectory("grid"))
        do {
            _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run();
            Issue.record("ran") } catch {
            #expect(error.message.hasPrefix("Krum+ under Non: ") && error.message.contains("krum needs"))
        }
        #expect(plan.cells.allSatisfy { dir.state(of: $0) == .pending })
        do {
            _ = try GridRunner(plan: plan, directory: dir, jobs: 1, threadsPerRun: 1).run(only: [99]);
            Issue.record("ran") } catch {
            #expect(error.explanation.rendered {
                "<\($0.rawValue)>" } == "<gridCell> must be in 0...5, the cells of grid smoke (got 99)")
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
        let plan = try GridPlan(spec: smokeSpec(), parse: SimulationOptions.parseWords)
        var options = SlurmArray.Options()
        options.timeLimit = "1:00:00"
        options.maxConcurrent = 4
        options.partition = "gpu"
        let array = try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [1, 2, 3, 8],
                                   executable: "/opt/desgd/desgd-grid", options: options)
        let lines = array.script(specName: "grid-1.json").split(separator: "\n").map(String.init)
        #expect(lines.first == "#!/bin/bash")
        for expected in ["#SBATCH --array=1-3,8%4", "#SBATCH --cpus-per-task=2", "#SBATCH --time=1:00:00",
                         "#SBATCH --partition=gpu",
                         "#SBATCH --output=/shared/g/slurm/%A_%a.out", "#SBATCH --mem=2G",
                         "exec /opt/desgd/desgd-grid run /shared/g/slurm/grid-1.json --dir /shared/g \\"] {
            #expect(lines.contains(expected), "\(expected)")
        }
        // Keyframes: each cell's default unless given, then passed on.
        #expect(array.script()
            .contains("--cell \"$SLURM_ARRAY_TASK_ID\" --jobs 1 --threads \"${SLURM_CPUS_PER_TASK:-1}\"\n"))
        var every250 = options
        every250.checkpointInterval = 250  // passed on; without it each task's cells take their own
        every250.keyframeInterval = 100
        #expect(try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [1], executable: "x",
            options: every250)
            .script().contains("--keyframe-every 100 --checkpoint-every 250\n"))
        #expect(throws: GridError.self) {
            try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [], executable: "x",
                options: options)
        }
        for edit in [{ (o: inout SlurmArray.Options) in o.timeLimit = "1:00\n#SBATCH --x" }, { $0.maxConcurrent = 0 },
            { $0.partition = "" }] {
            var bad = options
            edit(&bad)
            #expect(throws: GridError.self) {
                try SlurmArray(plan: plan, directory: GridDirectory("/shared/g"), cells: [1], executable: "x",
                    options: bad)
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
        spec.methods = [.init("Krum", "--mode sgd --agg krum:q=n-f-1"),
                        .init("Krum+", "--mode desgd --agg krum:q=n-f-1"),
                        .init("No defence", "--mode sgd --momentum global --agg mean")]
        spec.attacks = [.init("Non", "none"), .init("Sign-Flip", "signflip")]
        spec.reference = .init(method: "No defence", attack: "Non")
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
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
        #expect(csv[0] == "table,method,attack,seeds_planned,seeds_finished,mean,sd,min,max,paper,difference,"
                + "seed,best_round,final,collapses,first_collapse,lead_rounds,persistence_flags,digest")
        let runColumns = String(repeating: ",", count: ReproductionReport.runCSVColumns.count)
        #expect(csv.contains("I,Krum,Sign-Flip,2,2,42.0000,2.8284,40.0000,44.0000,42.8600,-0.8600" + runColumns))
        #expect(csv.contains("I,Krum,Non,2,0,,,,,89.1800," + runColumns))
        #expect(csv.contains("reference,No defence,Non,2,2,91.0000,1.4142,90.0000,92.0000,90.5800,0.4200" + runColumns))
        // A run line per finished run (read from traces: no findings).
        #expect(csv.contains("run,Krum,Sign-Flip,1,1,44.0000,,44.0000,44.0000,42.8600,1.1400,2,6,44.0000,,,,,"))
        #expect(csv.filter { $0.hasPrefix("run,") }.count == 7)
        let json = try #require(try JSONSerialization.jsonObject(with: report.json) as? [String: Any])
        let tableI = try #require(json["tableI"] as? [[String: Any]])
        let entry = try #require(tableI.first {
            $0["method"] as? String == "Krum" && $0["attack"] as? String == "Sign-Flip" })
        #expect(entry["values"] as? [Double] == [40, 44] && entry["paper"] as? Double == 42.86
            && entry["seedsFinished"] as? Int == 2)
        #expect(json["cellsFinished"] as? Int == 7 && (json["reference"] as? [String: Any])?["mean"] as? Double == 91)
    }

    @Test func aReportOfSelectedCellsNamesThemAndLeavesTheOthersOut() throws {
        let whole = try GridPlan(spec: smokeSpec(), parse: SimulationOptions.parseWords)
        let plan = try whole.restricted(to: [7, 4, 5, 6, 5])
        #expect(plan.cells.map(\.index) == [4, 5, 6, 7] && plan.gridCellCount == 12 && whole.gridCellCount == 12)
        let report = ReproductionReport(plan: plan, results: [
            result("Krum+", "Non", 1, 0.70), result("Krum+", "IPM", 1, 0.60), result("Krum+", "IPM", 2, 0.62),
        ])
        #expect(report.methods == ["Krum+"] && report.reference == nil && report.gains.isEmpty)
        #expect(report.finishedCells == 3 && report.plannedCells == 4 && report.selection == [4, 5, 6, 7])
        #expect(report.markdown.contains("- Cells finished: 3 of 4 (the cells 4–7 of the grid's 12:"
            + " `desgd-grid report --cell`)"))
        #expect(!report.markdown.contains("| Krum |") && !report.markdown.contains("Table II"))
        let json = try #require(try JSONSerialization.jsonObject(with: report.json) as? [String: Any])
        #expect(json["cellsSelected"] as? [Int] == [4, 5, 6, 7])
        #expect(ReproductionReport(plan: whole, results: []).selection == nil)
        #expect(ReproductionReport.indexRanges([9, 3, 10, 11, 7]) == "3, 7, 9–11")
        // Columns: the paper's attacks in its order, then the others in the spec's.
        var spec = smokeSpec(seeds: [1])
        spec.attacks = [.init("Min-Sum", "minsum"), .init("IPM", "ipm"), .init("Min-Max", "minmax"),
            .init("Non", "none")]
        let mixed = ReproductionReport(plan: try GridPlan(spec: spec, parse: SimulationOptions.parseWords), results: [])
        #expect(mixed.attacks == ["Non", "IPM", "Min-Sum", "Min-Max"])
        #expect(throws: GridError.self) { try whole.restricted(to: [12]) }
        do { _ = try whole.select([3, 12]) } catch {
            #expect(error.explanation.rendered {
                "<\($0.rawValue)>" } == "<gridCell> must be in 0...11, the cells of grid smoke (got 12)") }
    }

    @Test func theDeSGDEffectPairsSeedsItDoesNotMatchByPosition() throws {
        let plan = try GridPlan(spec: smokeSpec(seeds: [1, 2, 3]), parse: SimulationOptions.parseWords)
        let report = ReproductionReport(plan: plan, results: [
            result("Krum", "IPM", 1, 0.40), result("Krum", "IPM", 2, 0.50),
            result("Krum+", "IPM", 2, 0.80), result("Krum+", "IPM", 3, 0.90),
        ])
        let gain = try #require(report.gains.first { $0.attack == "IPM" })
        #expect(gain.seeds == [2] && gain.values.map { $0.rounded() } == [30])
    }

    @Test func tableIIDropsOfBucketingAndDeSGDRows() throws {
        var spec = smokeSpec(seeds: [1])
        spec.methods = [.init("TrMean + Bucketing", "--mode sgd --pre bucketing:s=2 --agg trmean"),
                        .init("TrMean+", "--mode desgd --agg trmean"),
                        .init("No defence", "--mode sgd --momentum global --agg mean")]
        spec.attacks = [.init("Non", "none"), .init("ALIE", "alie")]
        spec.reference = .init(method: "No defence", attack: "Non")
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        let report = ReproductionReport(plan: plan, results: [
            result("No defence", "Non", 1, 0.90), result("TrMean + Bucketing", "ALIE", 1, 0.80),
            result("TrMean+", "ALIE", 1, 0.85),
        ])
        #expect(report.drops.map(\.method) == ["TrMean + Bucketing", "TrMean + DeSGD"])
        #expect(report.drops.map(\.attack) == ["ALIE", "ALIE"])
        #expect(report.drops.map { ($0.mean! * 100).rounded() / 100 } == [10, 5])
        #expect(report.drops.map(\.paper) == [11.59, 10.14])
        #expect(report.markdown.contains("| TrMean + DeSGD | 5.00 · 10.14 · -5.14 |"))
    }
}
