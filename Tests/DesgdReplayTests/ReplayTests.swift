@testable import DesgdAudit
import DesgdNumerics
@testable import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

let replayData = Dataset.synthetic(trainCount: 1200, testCount: 200, seed: 1)

/// ``SimulationConfig/smoke`` with 12 rounds on 2 threads, centered clipping and IPM.
func smallRun(_ edit: (inout SimulationConfig) -> Void = { _ in }) -> SimulationConfig {
    var c = SimulationConfig.smoke
    c.rounds = 12
    c.evaluationInterval = 4
    c.threads = 2
    c.aggregator = "cclip"
    c.attack = "ipm"
    edit(&c)
    return c
}

/// Forwards to a recorder, optionally altering one round's event first (a trace whose digests
/// are valid but whose content is not what the engine computed).
final class Tampering: SimulationObserver {
    let recorder: TraceRecorder
    let alter: (inout RoundEvent) -> Void
    init(_ recorder: TraceRecorder, alter: @escaping (inout RoundEvent) -> Void) {
        self.recorder = recorder
        self.alter = alter
    }
    func runStarted(_ setup: SimulationSetup) { recorder.runStarted(setup) }
    func roundStarting(_ round: Int, snapshot: () -> ServerSnapshot) {
        recorder.roundStarting(round, snapshot: snapshot)
    }
    func roundFinished(_ event: RoundEvent) {
        var e = event
        alter(&e)
        recorder.roundFinished(e)
    }
    func runFinished(_ result: SimulationResult) { recorder.runFinished(result) }
}

func recordTrace(_ config: SimulationConfig, mode: RecordingMode = .full,
                 alter: @escaping (inout RoundEvent) -> Void = { _ in }) throws -> String {
    let path = NSTemporaryDirectory() + "desgd-replay-\(UUID().uuidString).trace"
    let recorder = try TraceRecorder(path: path, mode: mode, keyframeInterval: 5)
    _ = try Simulation(config: config, dataset: replayData).run(observer: Tampering(recorder, alter: alter))
    return path
}

func replayRows(_ reader: TraceReader, _ rules: [String], threads: Int = 2, f: Int? = nil, pre: String = "",
                range: Range<Int>? = nil, skip: Bool = false) throws -> [ReplayRow] {
    var rows: [ReplayRow] = []
    try Replayer(reader: reader, rules: rules, pre: pre, f: f, threads: threads, skipUnrunnable: skip)
        .run(rounds: range) { rows += $0 }
    return rows
}

@Suite struct MetricsTests {
    /// Honest (0,0) and (2,0), a Byzantine (10,10), output (1,1) with weights ¼, ¼, ½:
    /// x̄_S = (1,0), gap 1, Δ_S 2, λ̂ ½, σ²_S 1, κ̂ 1, cosine 1/√2, Byzantine weight ½.
    @Test func handCheckedRound() {
        let m = Matrix(rows: 3, columns: 2, storage: [0, 0, 2, 0, 10, 10])
        var decision = AggregationDecision()
        decision.weights = [0.25, 0.25, 0.5]
        let output: [Float] = [1, 1]
        let x = output.withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: decision,
                bound: 0.6)
        }
        #expect(x.gap == 1 && x.honestDiameter == 2 && x.lambda == 0.5 && x.honestVariance == 1 && x.kappa == 1)
        #expect(abs(x.cosine! - 0.5.squareRoot()) < 1e-12)
        #expect(x.byzantineWeight == 0.5 && x.byzantineCoordinateShare == nil)
        #expect(!x.exceedsBound)
        let flagged = output.withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: nil, bound: 0.4)
        }
        #expect(flagged.exceedsBound && flagged.byzantineWeight == nil)
        // Coordinate share: 3 of 4 coordinates from honest rows.
        decision = AggregationDecision()
        decision.coordinatesUsed = [2, 1, 1]
        let share = output.withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: decision,
                bound: nil)
        }
        #expect(share.byzantineCoordinateShare == 0.25)
    }

    /// One honest row: Δ_S = σ²_S = 0 and the ratios are undefined, not ∞.
    @Test func undefinedRatios() {
        let m = Matrix(rows: 2, columns: 2, storage: [1, 1, 5, 5])
        let x = [Float](arrayLiteral: 2, 2).withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, false], output: $0, decision: nil, bound: 1)
        }
        #expect(x.honestDiameter == 0 && x.lambda == nil && x.kappa == nil && !x.exceedsBound)
        #expect(abs(x.gap - 2.0.squareRoot()) < 1e-12)
    }

    @Test func seriesStatistics() {
        let s = SeriesStatistics([3, nil, 1, 2, 4, nil])
        #expect(s.count == 4 && s.undefined == 2 && s.nonFinite == 0 && s.mean == 2.5 && s.p50 == 2 && s.p90 == 4
            && s.max == 4)
        #expect(SeriesStatistics([]).mean == nil)
        // NaN and ±∞ are counted apart and left out: the statistics are those of the finite values.
        let n = SeriesStatistics([3, .nan, nil, 1, .infinity, 2, -.infinity, 4, .nan])
        #expect(n.count == 4 && n.undefined == 1 && n.nonFinite == 4)
        #expect(n.mean == 2.5 && n.p50 == 2 && n.p90 == 4 && n.max == 4)
        #expect(SeriesStatistics([.nan]).mean == nil && SeriesStatistics([.nan]).nonFinite == 1)
    }

    /// A NaN output: its metrics are non-finite (λ̂ = NaN compares false with the bound, so
    /// exceedsBound cannot catch it); the row says so.
    @Test func nonFiniteMetricsAreFlagged() {
        let m = Matrix(rows: 3, columns: 2, storage: [0, 0, 2, 0, 10, 10])
        let nan = [Float](arrayLiteral: .nan, 1).withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: nil, bound: 1)
        }
        #expect(nan.gap.isNaN && nan.lambda!.isNaN && !nan.exceedsBound && nan.isNonFinite)
        let inf = [Float](arrayLiteral: .infinity, 1).withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: nil, bound: 1)
        }
        #expect(inf.isNonFinite)
        let fine = [Float](arrayLiteral: 1, 1).withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: m, honest: [true, true, false], output: $0, decision: nil, bound: 1)
        }
        #expect(!fine.isNonFinite)
    }

    /// Worst rounds: NaN (and ±∞) first, then the largest λ̂, whatever order the rows arrive in;
    /// the summary's statistics leave them out; the outputs flag them.
    @Test func worstRoundsWithNaNAreOrderedDeterministically() {
        func row(_ round: Int, gap: Double, lambda: Double?) -> ReplayRow {
            let m = DeviationMetrics(gap: gap, honestDiameter: 1, lambda: lambda, honestVariance: 1, kappa: gap * gap,
                                     cosine: nil,
                                     byzantineWeight: nil, byzantineCoordinateShare: nil, bound: nil,
                                     exceedsBound: false)
            return ReplayRow(round: round, classIndex: -1, rule: "mean", metrics: m, distanceToRecorded: 0,
                nonFinite: m.isNonFinite)
        }
        let rows = [row(0, gap: 0.5, lambda: 0.5), row(1, gap: .nan, lambda: .nan), row(2, gap: 0.9, lambda: 0.9),
                    row(3, gap: 2, lambda: nil), row(4, gap: .infinity, lambda: .infinity),
                    row(5, gap: 0.7, lambda: 0.7),
                    row(6, gap: .nan, lambda: .nan)]
        var orders = [rows, rows.reversed()]
        var rng = RandomStream(seed: 4, purpose: .syntheticData)
        for _ in 0..<8 { orders.append(rng.permutation(rows.count).map { rows[$0] }) }
        for order in orders {
            var b = ReplaySummaryBuilder()
            for r in order { b.add([r]) }
            let s = b.summaries()[0]
            #expect(s.worst.map(\.round) == [1, 4, 6, 2, 5], "\(order.map(\.round))")
            #expect(s.nonFiniteRounds.sorted() == [1, 4, 6])
            #expect(s.gap.nonFinite == 3 && s.gap.count == 4 && s.gap.mean == (0.5 + 0.9 + 2 + 0.7) / 4)
            #expect(s.lambda.undefined == 1 && s.lambda.max == 0.9)
        }
        let table = ReplayOutput.rows(rows, format: .table, first: true)
        #expect(table.split(separator: "\n").filter { $0.contains("non-finite") }.count == 3)
        let csv = ReplayOutput.begin(.csv, trace: "t", rules: ["mean"])
            + ReplayOutput.rows(rows, format: .csv, first: true)
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let column = lines[0].firstIndex(of: "non_finite")!
        #expect(lines.dropFirst().map { $0[column] } == ["0", "1", "0", "0", "1", "0", "1"])
        #expect(ReplayOutput.rows(rows, format: .json, first: true).components(separatedBy: "\"nonFinite\":true").count
            == 4)
    }

    /// Table labels: the rule's name (a pipeline's stage names), numbered when specs share one; a
    /// `+` inside an expression is not a stage; the legend keeps the full spec and fits 120 columns.
    @Test func ruleLabels() {
        let specs = ["geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean", "trmean:b=f",
                     "geomed:nu=1e-06,iters=50,tol=1e-06,start=mean",
                     "bucketing:s=2+krum:q=n-f+1", "trmean:b=f"]
        let labels = RuleLabels(specs)
        #expect(labels.labels == ["geomed#1", "trmean", "geomed#2", "bucket+krum"])
        #expect(labels.label("krum:q=n-f-1") == "krum" && labels.width == 11)
        let legend = labels.legend()
        #expect(legend.count == 5 && legend[1] == "  geomed#1     geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean")
        let long = RuleLabels([(0..<20).map { "krum:q=n-f-\($0)" }.joined(separator: "+")]).legend()
        #expect(long.count > 2 && long.allSatisfy { $0.count <= 120 }, "\(long)")
        #expect(TextFormat.wrap("a b c", width: 3, indent: " ") == "a b\n c")
    }

    /// Text from a file never starts a line where the report's lines start; one longer than a line
    /// (a backend kernel string with a long CPU name) is cut at its spaces, the pieces after the
    /// first two columns further in.
    @Test func aLongAtomIsCutAtItsSpacesOnIndentedLines() {
        let backend = "openblas OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake"
            + " MAX_THREADS=64 core=Cooperlake threads=1"
        let margin = String(repeating: " ", count: 11)
        let text = TextFormat.wrap(margin + "backend \(TextFormat.atom(backend)), numerics 2", indent: margin)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 2 && lines.allSatisfy { $0.unicodeScalars.count <= 120 }, "\(lines)")
        #expect(lines[0].hasPrefix(margin + "backend openblas") && lines[1].hasPrefix(margin + "  "))
        #expect(lines[1].dropFirst(13).first != " ")
        #expect(text.replacingOccurrences(of: "\n" + margin + "  ", with: " ") == margin + "backend " + backend
            + ", numerics 2")
        // Short enough: whole, after the word it follows.
        #expect(TextFormat.wrap("backend \(TextFormat.atom("a b c")) x", width: 13) == "backend a b c\nx")
    }

    @Test func ruleLists() {
        #expect(AggregatorCatalogue.splitList("geomed, trmean:b=2,mkrum:q=n-f-2,m=n-f")
            == ["geomed", "trmean:b=2", "mkrum:q=n-f-2,m=n-f"])
    }
}

@Suite struct ReplayTests {
    static let trace = try! recordTrace(smallRun())

    /// The recorded rule replayed: aggregates identical (distance 0), metrics those recorded.
    @Test func recordedRuleReproducesTheRecording() throws {
        let r = try TraceReader(path: Self.trace)
        let rows = try replayRows(r, ["cclip"])
        #expect(rows.count == 12)
        for row in rows {
            #expect(row.distanceToRecorded == 0)
            #expect(row.metrics == (try r.round(row.round)).aggregations[0].metrics)
        }
    }

    /// `--agg all` gives the numbers of separate runs, and the thread count changes nothing.
    @Test func manyRulesInOnePassEqualSeparateRuns() throws {
        let r = try TraceReader(path: Self.trace)
        let all = try replayRows(r, ["all"], skip: true)
        let replayer = try Replayer(reader: r, rules: ["all"], threads: 1, skipUnrunnable: true)
        #expect(replayer.rules.count >= 12 && !replayer.skipped.isEmpty)
        for rule in ["geomed", "trmean", "median", "cclip", "mda"] {
            let spec = try AggregatorCatalogue.makePipeline(rule: rule, pre: "").spec
            let alone = try replayRows(r, [rule], threads: 1)
            #expect(alone == all.filter { $0.rule == spec }, "\(rule)")
        }
        #expect(try replayRows(r, ["all"], threads: 1, skip: true) == all)
        #expect(all.allSatisfy { !$0.metrics.exceedsBound })
    }

    /// A rule that cannot run is an error naming the requirement; ranges are checked.
    @Test func badRequestsAreErrors() throws {
        let r = try TraceReader(path: Self.trace)
        #expect(throws: TraceError.self) { try Replayer(reader: r, rules: ["bulyan"], threads: 1) }
        #expect(throws: TraceError.self) { try Replayer(reader: r, rules: ["nosuchrule"], threads: 1) }
        #expect(throws: TraceError.self) { try replayRows(r, ["mean"], range: 5..<40) }
        let few = try replayRows(r, ["mean"], range: 3..<5)
        #expect(few.map(\.round) == [3, 4])
        // A different f changes what robust rules do.
        let f0 = try replayRows(r, ["trmean"], f: 0), f2 = try replayRows(r, ["trmean"])
        #expect(f0.map(\.metrics.gap) != f2.map(\.metrics.gap))
    }

    /// FLTrust's reference (the server's root-data momentum) exists only in the recorded states of
    /// its own traces: on another rule's trace it is refused (`all` lists it as unrunnable, with the
    /// fork as the way to the counterfactual); on its own trace it reproduces the recording.
    @Test func fltrustReplaysOnlyOnItsOwnTraces() throws {
        let r = try TraceReader(path: Self.trace)
        do {
            _ = try Replayer(reader: r, rules: ["fltrust"], threads: 1)
            Issue.record("fltrust ran on a cclip trace")
        } catch {
            #expect(error.explanation.rendered {
                "<\($0.rawValue)>"
            }
                == "fltrust:root=100 cannot run on a trace recorded under cclip:tau=10,iters=3: it needs the"
                + " server's momentum on its root data, "
                    + "which only a trace recorded under fltrust:root=100 holds; for the counterfactual, fork the trace"
                        + " (desgd-record <forkParent> TRACE <forkRound> T <aggregator> fltrust:root=100)")
        }
        let all = try Replayer(reader: r, rules: ["all"], threads: 1, skipUnrunnable: true)
        #expect(!all.rules.contains { $0.spec.hasPrefix("fltrust") })
        #expect(all.skipped.contains {
            $0.hasPrefix("fltrust:root=100 cannot run on a trace recorded under cclip") && !$0.contains("fork") })
        let own = try recordTrace(smallRun { $0.aggregator = "fltrust:root=200"; $0.rounds = 4 })
        defer { try? FileManager.default.removeItem(atPath: own) }
        let o = try TraceReader(path: own)
        let rows = try replayRows(o, ["fltrust:root=200"])
        #expect(rows.count == 4 && rows.allSatisfy { $0.distanceToRecorded == 0 && $0.state == .recorded })
        #expect(throws: TraceError.self) { try Replayer(reader: o, rules: ["fltrust:root=30"], threads: 1) }
    }

    /// A sampled trace: the recorded stateful rule re-synchronises from each replayed round's
    /// recorded state (its aggregates are the recorded ones, distance 0, although the rounds in
    /// between were not replayed); another stateful rule carries its state only until the first
    /// round without vectors of its group, and every output says when it could not.
    @Test func statefulRuleOnASampledTrace() throws {
        // The baseline aggregates one group every round, so cclip's centre moves every round.
        let config = smallRun { $0.mode = .sgd }
        let sampled = try TraceReader(path: try recordTrace(config, mode: .sampled(every: 3)))
        let recorded = try replayRows(sampled, ["cclip"])
        #expect(recorded.map(\.round) == [0, 3, 6, 9])
        for row in recorded {
            #expect(row.distanceToRecorded == 0 && row.state == .recorded, "round \(row.round)")
            // Drift stops at the first replayed round without vectors; the per-round metrics are the recorded ones.
            var replayed = row.metrics, stored = (try sampled.round(row.round)).aggregations[0].metrics
            replayed.drift = nil
            stored.drift = nil
            #expect(replayed == stored)
        }
        let other = try replayRows(sampled, ["cclip:tau=5"])
        #expect(other.map(\.state) == [.carried, .notCarried, .notCarried, .notCarried])
        #expect(try replayRows(sampled, ["cclip:tau=5"], range: 3..<4).map(\.state) == [.carried])
        #expect(try replayRows(sampled, ["trmean"]).allSatisfy { $0.state == nil })
        // On the full trace of the same run the counterfactual is carried throughout.
        let full = try TraceReader(path: try recordTrace(config))
        #expect(try replayRows(full, ["cclip:tau=5"]).allSatisfy { $0.state == .carried })
        // Replay outputs: table flag, CSV column, JSON field, summary line.
        #expect(ReplayOutput.rows(other, format: .table, first: true).components(separatedBy: "state not carried").count
            == 4)
        let csv = ReplayOutput.begin(.csv, trace: "t", rules: []) + ReplayOutput.rows(other, format: .csv, first: true)
        let table = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        // Counted from the end: the rule's spec is a quoted field with a comma in it.
        let fromEnd = table[0].count - table[0].firstIndex(of: "state")!
        #expect(table.map {
            $0[$0.count - fromEnd] } == ["state", "carried", "not-carried", "not-carried", "not-carried"])
        #expect(ReplayOutput.rows(other, format: .json, first: true)
            .components(separatedBy: "\"state\":\"not-carried\"").count == 4)
        var builder = ReplaySummaryBuilder()
        builder.add(other)
        let summaries = builder.summaries()
        #expect(summaries[0].stateNotCarried == 3)
        #expect(ReplayOutput.end(.table, summaries: summaries, replayed: 4, skippedRounds: 8, skippedRules: [])
            .contains("state not carried in 3"))
        // The audit's compare columns.
        let report = try Audit.report(sampled, compare: ["cclip:tau=5"], threads: 2)
        #expect(report.rows.compactMap { $0.cells[1]?.state } == [.carried, .notCarried, .notCarried, .notCarried])
        #expect(report.summaries[1].stateNotCarried == 3)
        #expect(AuditText.csv(report).components(separatedBy: "not-carried").count == 4)
        #expect(AuditText.render(report).contains("state not carried in 3"))
    }

    /// A stateful rule replayed from a later round starts from the recorded state when it is the
    /// recorded rule: the aggregates still match the recording exactly.
    @Test func statefulRuleFromTheMiddle() throws {
        let r = try TraceReader(path: Self.trace)
        let rows = try replayRows(r, ["cclip"], range: 7..<12)
        #expect(rows.allSatisfy { $0.distanceToRecorded == 0 })
    }
}

@Suite struct VerificationTests {
    @Test func recordedRunsVerify() throws {
        for config in [smallRun(), smallRun { $0.classesPerRound = 2; $0.aggregator = "trmean"; $0.attack = "alie" },
                       smallRun {
                           $0.mode = .sgd; $0.momentum = .global; $0.aggregator = "geomed"; $0.attack = "signflip" }] {
            let path = try recordTrace(config)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let report = try Verification.verify(try TraceReader(path: path), threads: 2)
            #expect(report.passed, "\(report.mismatch ?? "")")
            #expect(report.roundsChecked == 12 && report.diffsChecked == 12 && report.keyframesChecked == 3)
        }
    }

    /// A trace whose digests are valid but whose content was altered fails at the altered round.
    @Test func alteredTracesFailAtTheRightRound() throws {
        let aggregate = try recordTrace(smallRun()) { e in if e.round == 4 { e.aggregations[0].aggregate[7] += 1e-3 } }
        let diff = try recordTrace(smallRun()) { e in if e.round == 9 { e.modelDiff[0] = e.modelDiff[0].nextUp } }
        let state = try recordTrace(smallRun()) { e in if e.round == 6 { e.aggregations[0].stateAfter = .empty } }
        defer { for p in [aggregate, diff, state] { try? FileManager.default.removeItem(atPath: p) } }
        let a = try Verification.verify(try TraceReader(path: aggregate), threads: 2)
        #expect(a.mismatchRound == 4 && a.mismatch!.contains("aggregate of class 4"))
        let b = try Verification.verify(try TraceReader(path: diff), threads: 1)
        #expect(b.mismatchRound == 9 && b.mismatch!.contains("model diff"))
        let c = try Verification.verify(try TraceReader(path: state), threads: 2)
        #expect(c.mismatchRound == 6 && c.mismatch!.contains("state"))
    }

    /// Without vectors, nothing to re-run: said so, and the aggregates of sampled rounds still checked.
    @Test func sampledTraces() throws {
        let path = try recordTrace(smallRun(), mode: .sampled(every: 4))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = try Verification.verify(try TraceReader(path: path), threads: 2)
        #expect(report.passed && report.roundsChecked == 3 && report.diffsChecked == 0)
        #expect(report.notes.contains { $0.contains("sampled:4") })
    }
}

@Suite struct ExportTests {
    /// The .npy files have numpy's layout, the shapes and the recorded values.
    @Test func exportedFilesHoldTheRound() throws {
        let r = try TraceReader(path: ReplayTests.trace)
        let dir = NSTemporaryDirectory() + "desgd-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = try RoundExport.export(r, round: 5, to: dir)
        #expect(files == ["agg0_messages.npy", "agg0_honest.npy", "agg0_aggregate.npy", "model_diff.npy", "round.json"])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/agg0_messages.npy")))
        #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: bytes[10 ..< 10 + headerLength], as: UTF8.self)
        #expect(header.contains("'descr': '<f4'") && header.contains("'shape': (5, 19670)") && header.hasSuffix("\n"))
        let values = bytes[(10 + headerLength)...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(values.map(\.bitPattern) == (try r.round(5).messages(0)).storage.map(\.bitPattern))
        let honest = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/agg0_honest.npy")))
        #expect(Array(honest.suffix(5)) == [1, 1, 1, 0, 0])
        #expect(throws: TraceError.self) { try RoundExport.export(r, round: 99, to: dir) }
    }

    /// numpy itself loads them (where python3 has numpy).
    @Test(.enabled(if: numpyAvailable, "python3 with numpy")) func numpyLoadsTheExport() throws {
        let r = try TraceReader(path: ReplayTests.trace)
        let dir = NSTemporaryDirectory() + "desgd-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try RoundExport.export(r, round: 2, to: dir)
        let expected = (try r.round(2).aggregate(0)).map(Double.init).reduce(0, +)
        let script = """
        import json, numpy as np
        d = '\(dir)'
        m = np.load(d + '/agg0_messages.npy'); h = np.load(d + '/agg0_honest.npy'); a = np.load(d \
        + '/agg0_aggregate.npy')
        x = np.load(d + '/model_diff.npy'); meta = json.load(open(d + '/round.json'))
        assert m.shape == (5, 19670) and m.dtype == np.float32, m.shape
        assert h.dtype == np.bool_ and h.tolist() == [True, True, True, False, False]
        assert a.shape == (19670,) and x.shape == (19670,)
        assert meta['round'] == 2 and meta['aggregations'][0]['messages'] == 'agg0_messages.npy'
        assert abs(float(a.astype(np.float64).sum()) - (\(expected))) < 1e-6
        print('ok')
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pythonInterpreter)
        p.arguments = ["-c", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0 && text.contains("ok"), "\(text)")
    }
}

/// `$DESGD_PYTHON`, default Debian's /usr/bin/python3 (which `python3-numpy` serves; the `python3` first on
/// PATH may be another interpreter).
let pythonInterpreter = ProcessInfo.processInfo.environment["DESGD_PYTHON"] ?? "/usr/bin/python3"

/// Whether numpy can be loaded; always true in CI (CI=true), where a missing numpy fails the test.
let numpyAvailable: Bool = {
    if ProcessInfo.processInfo.environment["CI"] == "true" { return true }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: pythonInterpreter)
    p.arguments = ["-c", "import numpy"]
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}()

@Suite struct AuditTests {
    @Test func reportOfARecordedRun() throws {
        let r = try TraceReader(path: ReplayTests.trace)
        let report = try Audit.report(r, compare: ["geomed", "trmean"], threads: 2)
        #expect(report.integrity.chainHolds && report.integrity.finished && report.integrity.missingRounds == 0)
        #expect(report.rules.count == 3 && report.rows.count == 12
            && report.rows.allSatisfy { $0.cells.count == 3 && $0.cells.allSatisfy { $0 != nil } })
        #expect(report.accuracy.map(\.round) == [3, 7, 11])
        // The recorded rule's cells are the recorded metrics; the compared ones the replay's.
        let replayed = try replayRows(r, ["geomed"])
        for (row, x) in zip(report.rows, replayed) {
            #expect(row.cells[0]?.gap == (try r.round(row.round)).aggregations[0].metrics.gap)
            #expect(row.cells[1]?.gap == x.metrics.gap && row.cells[1]?.lambda == x.metrics.lambda)
        }
        let worst = report.worstRows.map { report.rows[$0].cells[0]?.lambda ?? -1 }
        #expect(worst == worst.sorted(by: >) && worst.count == 10)
        let text = AuditText.render(report)
        #expect(text.contains("digest chain holds") && text.contains("Worst rounds"))
        #expect(AuditText.csv(report).split(separator: "\n").count == 14)  // the signature comment, header, 12 rows
        #expect(text.contains("unsigned") && AuditText.csv(report).hasPrefix("# signatures: unsigned\n"))
    }

    /// A run whose aggregate is NaN (mean under the nan attack): every recorded metric is NaN;
    /// the audit flags each such row "non-finite", keeps it out of the statistics, and lists
    /// the worst rounds in a deterministic order (NaN first, by round).
    @Test func nonFiniteRoundsAreFlagged() throws {
        let r = try TraceReader(path: try recordTrace(smallRun {
            $0.aggregator = "mean"; $0.attack = "nan"; $0.rounds = 4 }))
        let report = try Audit.report(r, compare: ["median"], threads: 2)
        #expect(report.rows.allSatisfy { $0.cells[0]?.nonFinite == true })
        #expect(report.summaries[0].nonFiniteRounds == [0, 1, 2, 3] && report.summaries[0].gap.nonFinite == 4)
        #expect(report.summaries[0].gap.mean == nil && report.summaries[0].lambda.mean == nil)
        #expect(report.worstRows == [0, 1, 2, 3])
        for s in report.summaries {
            #expect([s.gap.mean, s.lambda.mean, s.kappa.mean].allSatisfy { $0.map(\.isFinite) ?? true })
        }
        let text = AuditText.render(report)
        #expect(text.contains("non-finite"))
        let csv = AuditText.csv(report).split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        let column = csv[0].firstIndex(of: "mean non_finite")!
        #expect(csv.dropFirst().allSatisfy { $0[column] == "1" })
    }

    /// A damaged trace: the audit names the broken record's round and the rounds still readable.
    @Test func brokenChainIsReported() throws {
        let r0 = try TraceReader(path: ReplayTests.trace)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: ReplayTests.trace)))
        let e = r0.roundRecords[6]
        bytes[Int(e.offset) + 200] ^= 1
        let path = NSTemporaryDirectory() + "desgd-audit-\(UUID().uuidString).trace"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let report = try Audit.report(try TraceReader(path: path), threads: 1)
        #expect(!report.integrity.chainHolds && report.integrity.failedRound == 6)
        #expect(report.rows.count == 11)
        #expect(AuditText.render(report).contains("DIGEST CHAIN BROKEN"))
    }
}
