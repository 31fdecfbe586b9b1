import DesgdNumerics
import DesgdReplay
import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// Builds the ``AuditReport`` of a trace: the digest chain and the signatures, the run in brief, accuracy over rounds,
/// the recorded rule's metrics per round (as recorded), and with `compare` the counterfactual
/// metrics of other rules replayed on the same messages (``Replayer``).
///
/// Memory: the report keeps one row per aggregation (a few hundred bytes with a few rules), and
/// one round's vectors at a time while replaying.
public enum Audit {
    /// `rebuilder` rebuilds, for the compared rules, the vectors of rounds recorded without them
    /// (nil: their compare cells stay empty). `rounds` (default: every round of the trace) limits
    /// the rows, accuracy, summaries, replays, worst case and drift to those rounds; the integrity
    /// part always covers the whole file (docs/commands.md, desgd-audit).
    public static func report(_ reader: TraceReader, compare: [String] = [], pre: String = "", threads: Int,
                              driftCriteria: AuditDrift.Criteria = .init(), adversary: WorstCaseSearch? = nil,
                              rebuilder: RoundRebuilder? = nil,
                              memoryLimit: MemoryLimit = .process,
                              rounds: Range<Int>? = nil,
                              progress: (String, Int) -> Void = { _, _ in }) throws(TraceError) -> AuditReport {
        let selected = rounds ?? reader.rounds
        guard selected.lowerBound >= reader.rounds.lowerBound && selected.upperBound <= reader.rounds.upperBound else {
            throw .usage("\(reader.path) holds \(reader.roundsText); "
                + "\(selected.lowerBound)..<\(selected.upperBound) were asked for")
        }
        let h = reader.header, config = h.config
        // With the worst case the recorded rule is replayed too: its column keeps the recorded
        // metrics and gains the worst case found on the same honest messages. (A recorded
        // pipeline with pre-aggregators, or a --pre for the compared rules, cannot be replayed
        // as one --agg spec: its column then has no worst case.)
        let replayRecorded = adversary != nil && pre.isEmpty && !h.aggregator.contains("+")
        let replayer = compare.isEmpty && adversary == nil ? nil
            : try Replayer(reader: reader, rules: (replayRecorded ? [h.aggregator] : []) + compare, pre: pre,
                           threads: threads, skipUnrunnable: true, rebuilder: rebuilder, adversary: adversary)
        // What it reads, and then replays, within the memory limit, before anything sized by the header.
        try reader.checkMemory(max(memoryEstimate(reader), replayer?.memoryEstimate(rounds: selected) ?? 0),
                               operation: "auditing it", limit: memoryLimit)
        let chain = reader.verifyChain()
        var finished = false, interrupted = false, note: String?
        switch reader.completeness {
        case .complete(let i): finished = true; interrupted = i
        case .unfinished(let reason): note = reason
        }
        var integrity = AuditReport.Integrity(
            chainHolds: chain.holds, verifiedRecords: chain.verifiedRecords, totalRecords: chain.totalRecords,
            failure: chain.failure,
            failedRound: chain.failedRound, lastDigest: chain.lastDigest, finished: finished, interrupted: interrupted,
            note: note,
            recordedRounds: reader.roundCount, missingRounds: max(0, config.rounds - reader.rounds.upperBound),
            signatures: reader.verifySignatures(chain: chain))
        integrity.clientMessages = ClientMessageVerification.verify(reader)
        let skippedRecords = reader.skippedRecords()
        if !skippedRecords.isEmpty { integrity.skippedRecords = skippedRecords }
        let run = AuditReport.Run(
            trace: reader.path, program: h.program,
            formatVersion: h.formatVersion.map(String.init).joined(separator: "."),
            mode: config.mode.rawValue, aggregator: h.aggregator, attack: h.attack, model: config.model.rawValue,
            parameterCount: h.model.parameterCount, honestWorkers: config.honestWorkers,
            byzantineWorkers: config.byzantineWorkers,
            declaredF: config.effectiveF, configuredRounds: config.rounds, seed: config.seed,
            backend: h.backend, numerics: h.effectiveNumerics,
            recording: h.recording.description, datasetDigest: h.dataset.digest, fork: h.fork, engine: h.engine)

        // The recorded rule, as recorded; rounds damaged beyond reading are left out (the
        // integrity section names the first).
        var rows: [AuditReport.Row] = []
        var rowIndex: [Int: Int] = [:]  // round·(C+1) + class+1 → row
        var accuracy: [AuditReport.AccuracyPoint] = []
        let key = { (t: Int, c: Int) in t * (config.classes + 1) + c + 1 }
        for t in selected {
            guard let round = try? reader.round(t) else { continue }
            if let e = round.content.evaluation { accuracy.append(.init(round: t, accuracy: e.accuracy, loss: e.loss)) }
            for a in round.aggregations {
                let m = a.metrics
                rowIndex[key(t, a.classIndex)] = rows.count
                rows.append(.init(round: t, classIndex: a.classIndex, honestDiameter: m.honestDiameter,
                                  honestVariance: m.honestVariance,
                                  cells: [cell(m, distance: 0, model: round.content.drift)]))
            }
            if t % 50 == 49 { progress("reading rounds", t + 1 - selected.lowerBound) }
        }
        var rules = [h.aggregator], skipped: [String] = [], driftNote: String?
        var bounds: [Double?] = [h.groups.first?.resilienceBound]
        if let replayer {
            let asked = Set(compare.flatMap { AggregatorCatalogue.expand($0) }.compactMap {
                try? AggregatorCatalogue.makePipeline(rule: $0, pre: pre).spec })
            let specs = replayer.rules.map(\.spec).filter {
                !replayRecorded || $0 != h.aggregator || asked.contains($0)
            }
            rules += specs
            skipped = replayer.skipped
            bounds += specs.map { spec in
                replayer.rules.first { $0.spec == spec }.flatMap {
                    replayer.bound($0, classIndex: h.groups.first?.classIndex ?? 0) } }
            for i in rows.indices { rows[i].cells += Array(repeating: nil, count: specs.count) }
            try replayer.run(rounds: selected, memoryLimit: memoryLimit,
                progress: { progress("replaying", $0) }) { replayed in
                for r in replayed {
                    guard let i = rowIndex[key(r.round, r.classIndex)] else { continue }
                    if replayRecorded && r.rule == h.aggregator { rows[i].cells[0]?.worstCase = r.worstCase }
                    guard let k = specs.firstIndex(of: r.rule) else { continue }
                    var c = cell(r.metrics, distance: r.distanceToRecorded, state: r.state, model: r.modelDrift)
                    c.worstCase = r.worstCase
                    rows[i].cells[1 + k] = c
                }
            }
            driftNote = replayer.driftNote
        }
        let summaries = rules.indices.map { k in
            let cells = rows.map { $0.cells[k] }
            let worstCases = rows.compactMap { row in
                row.cells[k].flatMap { c in
                    c.worstCase.map { (round: row.round, recordedLambda: c.lambda, worst: $0) } } }
            return AuditReport.RuleSummary(
                rule: rules[k], bound: bounds[k],
                gap: SeriesStatistics(cells.map { $0?.gap }), lambda: SeriesStatistics(cells.map { $0?.lambda }),
                kappa: SeriesStatistics(cells.map { $0?.kappa }),
                byzantineShare: SeriesStatistics(cells.map { $0?.byzantineShare }),
                flaggedRounds: rows.indices.filter { rows[$0].cells[k]?.exceedsBound == true }.map { rows[$0].round },
                nonFiniteRounds: rows.indices.filter { rows[$0].cells[k]?.nonFinite == true }.map { rows[$0].round },
                stateNotCarried: cells.filter { $0?.state == .notCarried }.count,
                worstCase: worstCases.isEmpty ? nil : ReplaySummaryBuilder.summarise(worstCases))
        }
        // WorstFirst: non-finite first, then λ̂, then gap; rows without a recorded cell last.
        let worst = rows.indices.sorted { a, b in
            switch (rows[a].cells[0], rows[b].cells[0]) {
            case let (x?, y?): return WorstFirst.precedes(x.worstKey, y.worstKey) ?? (a < b)
            case (nil, nil): return a < b
            case (let x, _): return x != nil
            }
        }.prefix(10)
        var report = AuditReport(run: run, integrity: integrity, accuracy: accuracy, rules: rules, rows: rows,
                                 summaries: summaries, worstRows: Array(worst), skipped: skipped)
        report.rounds = .init(from: selected.lowerBound, to: selected.upperBound, traceFrom: reader.rounds.lowerBound,
                              traceTo: reader.rounds.upperBound)
        report.drift = AuditDrift.section(report, window: h.driftWindow, recent: h.effectiveDriftRecent,
            criteria: driftCriteria)
        report.drift?.note = driftNote
        return report
    }

    /// An upper estimate, in bytes, of what reading the trace for its report holds at once, replays
    /// aside (docs/bad-input.md): a round read (its payload and body) and, checking a live
    /// federation's client messages, one aggregation's messages (s rows) and a reference decoded apart.
    public static func memoryEstimate(_ reader: TraceReader) -> UInt64 {
        typealias M = MemoryArithmetic
        return M.add(reader.roundReadBytes, M.mul(reader.vectorBytes, M.add(reader.largestGroup, 2)))
    }

    static func cell(_ m: DeviationMetrics, distance: Double, state: ReplayState? = nil,
        model: ModelDrift? = nil) -> AuditReport.Cell {
        AuditReport.Cell(gap: m.gap, lambda: m.lambda, kappa: m.kappa, cosine: m.cosine,
                         byzantineShare: m.byzantineWeight ?? m.byzantineCoordinateShare, distanceToRecorded: distance,
                         exceedsBound: m.exceedsBound, nonFinite: m.isNonFinite || !distance.isFinite, state: state,
                         drift: m.drift, modelDrift: model)
    }
}
