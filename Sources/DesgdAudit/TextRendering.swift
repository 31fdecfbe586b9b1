import DesgdNumerics
import DesgdReplay
import DesgdRobust
import Foundation

/// The terminal and CSV renderings of an ``AuditReport``.
public enum AuditText {
    /// The readable report: the run, integrity, accuracy, the per-rule summary, the worst rounds
    /// first, then every round.
    public static func render(_ r: AuditReport) -> String {
        let r = r.forDisplay
        var out: [String] = []
        let run = r.run, i = r.integrity
        // Every string of the run comes from the trace's header: shown escaped, one line each, and
        // every line wrapped to TextFormat.lineWidth (docs/commands.md).
        let t = TextFormat.shown
        let margin = String(repeating: " ", count: 11)
        func line(_ text: String) { out.append(TextFormat.wrap(text, indent: margin, keepWhole: [run.aggregator])) }
        // Text from the file inside a wrapped line: never broken, never at a line's start.
        let a = TextFormat.atom
        out.append("desgd audit of \(t(run.trace))")
        line("run        \(a(run.mode)) \(a(run.aggregator)) vs \(a(run.attack)); \(a(run.model)) ("
            + "\(run.parameterCount) parameters); \(run.honestWorkers) honest + \(run.byzantineWorkers) Byzantine"
            + " workers, declared f = \(run.declaredF); \(run.configuredRounds) rounds, seed \(run.seed)")
        line("           backend \(a(run.backend)), numerics \(run.numerics); recorded \(a(run.recording)) by "
            + "\(a(run.program)), format \(a(run.formatVersion)); data "
             + (run.model == ModelArchitecture.external.rawValue
                ? "the clients' own" : "\(a(String(run.datasetDigest.prefix(16))))…"))
        if let f = run.fork {
            let changes = f.changes.isEmpty ? "nothing changed"
                : f.changes.map { "\(a($0.option)) \(a($0.parent)) → \(a($0.fork))" }.joined(separator: ", ")
            line("fork       of \(a(f.parentFile)) at round \(f.at) (parent digest "
                + "\(a(String(f.parentDigest.prefix(16))))…): \(changes)")
        }
        if let engine = run.engine {
            // The data set's description starts a line of its own, so that it stays whole.
            line("live run   \(a(engine.name)) \(a(engine.version)), clients training with \(a(engine.training))")
            line("           on \(a(engine.data)); \(engine.nodes.count) registered clients (nodes "
                 + engine.nodes.prefix(8).map { a($0.node) }.joined(separator: ", ")
                     + (engine.nodes.count > 8 ? ", …)" : ")"))
        }
        if let covered = r.rounds {
            line("rounds     \(covered.description)" + (covered.isSelection
                ? " selected: every part below but the integrity covers only these rounds" : ""))
        }
        let chain = i.chainHolds
            ? "digest chain holds (\(i.verifiedRecords) records, last digest \(i.lastDigest.prefix(16))…)"
            : "DIGEST CHAIN BROKEN: \(a(i.failure ?? "?")) (\(i.verifiedRecords) of \(i.totalRecords) records verified)"
        let ending = i.finished ? (i.interrupted ? "stopped early (Ctrl-C), finished cleanly" : "finished")
            : "not finished: \(a(i.note ?? ""))"
        line("integrity  \(chain)")
        line("           \(ending); \(i.recordedRounds) of \(run.configuredRounds) rounds recorded"
            + (run.fork.map { " (rounds \($0.at)..<\($0.at + i.recordedRounds): a fork)" } ?? "")
            + (i.missingRounds > 0 ? ", \(i.missingRounds) missing" : ""))
        if let s = i.signatures { line("           \(a(s.summary))") }
        if let c = i.clientMessages { line("clients    \(a(c.summary))") }
        if let skipped = i.skippedRecords {
            line("           skipped \(skipped.count) record\(skipped.count == 1 ? "" : "s") "
                + "of types this reader does not know (a later format version): "
                    + skipped.map(\.description).joined(separator: "; "))
        }
        if let best = r.accuracy.max(by: { $0.accuracy < $1.accuracy }), let last = r.accuracy.last {
            line("accuracy   best \(String(format: "%.2f", 100 * best.accuracy)) % (round \(best.round)), final "
                + "\(String(format: "%.2f", 100 * last.accuracy)) % (round \(last.round)); "
                + r.accuracy.map {
                    "\($0.round): \(String(format: "%.1f", 100 * $0.accuracy))" }.joined(separator: ", "))
        }
        if !r.skipped.isEmpty { line("skipped    " + r.skipped.joined(separator: "; ")) }
        let labels = RuleLabels(r.rules)
        out.append("")
        let recordedNote = r.rules.count > 1
            ? "the first rule is the recorded one, the others replayed on the same messages" : "the recorded rule"
        out.append(TextFormat.wrap("Summary per rule (gap = ‖F(R) − honest mean‖, λ̂ = gap / honest diameter,"
            + " κ̂ = gap² / honest variance; \(recordedNote))"))
        out += labels.legend(marks: r.rules.first.map { [$0: "(recorded)"] } ?? [:])
        let header = ["rule", "bound", "gap mean", "p50", "p90", "p99", "max", "λ̂ mean", "p50", "p90", "p99", "max",
                      "κ̂ mean", "byz share", "flagged",
                      "non-finite"]
        out.append(TextFormat.panels(header, r.summaries.map { (s: AuditReport.RuleSummary) -> [String] in
            let head: [String] = [labels.label(s.rule), TextFormat.number(s.bound)]
            let tail: [String] = [TextFormat.number(s.kappa.mean), TextFormat.number(s.byzantineShare.mean),
                                  String(s.flaggedRounds.count), String(s.nonFiniteRounds.count)]
            return head + TextFormat.statistics(s.gap) + TextFormat.statistics(s.lambda) + tail
        }, units: [1, 5, 5, 2, 2]))
        if r.summaries.contains(where: { !$0.nonFiniteRounds.isEmpty }) {
            out.append("non-finite: aggregations with a NaN or ±∞ metric, flagged per round"
                + " and left out of the statistics")
        }
        let worstCases = r.summaries.compactMap { s in s.worstCase.map { (s.rule, s.bound, s.lambda, $0) } }
        out += ReplayOutput.worstCaseLines(worstCases, labels: labels)
        for s in r.summaries where s.stateNotCarried > 0 {
            out.append(TextFormat.wrap("\(labels.label(s.rule)): state not carried in \(s.stateNotCarried) aggregations"
                + " (marked †): a round of their class was recorded without vectors, so this rule's"
                + " counterfactual state skips it"))
        }
        out.append("")
        if let drift = driftText(r, labels: labels) {
            out.append(drift)
            out.append("")
        }
        out.append("Worst rounds (the recorded rule's non-finite metrics first, then largest λ̂)")
        out.append(rowTable(r, rows: r.worstRows, labels: labels))
        out.append("")
        out.append("Every round")
        out.append(rowTable(r, rows: Array(r.rows.indices), labels: labels))
        return out.joined(separator: "\n") + "\n"
    }

    /// One line per aggregation: the recorded rule's figures, then gap and λ̂ of each compared rule;
    /// split into panels (round and class repeated) when the compared rules do not fit in
    /// ``TextFormat/lineWidth`` columns.
    static func rowTable(_ r: AuditReport, rows: [Int], labels: RuleLabels) -> String {
        var header = ["round", "class", "Δ_S", "gap", "λ̂", "κ̂", "byz", "flag"]
        for rule in r.rules.dropFirst() { header += ["\(labels.label(rule)) gap", "λ̂"] }
        return TextFormat.panels(header, rows.map { k in
            let row = r.rows[k]
            let c = row.cells[0]
            var cells = [String(row.round), row.classIndex >= 0 ? String(row.classIndex) : "all",
                         TextFormat.number(row.honestDiameter),
                         TextFormat.number(c?.gap), TextFormat.number(c?.lambda), TextFormat.number(c?.kappa),
                         TextFormat.number(c?.byzantineShare),
                         [c?.exceedsBound == true ? "λ̂>bound" : nil, c?.nonFinite == true ? "non-finite" : nil]
                             .compactMap { $0 }.joined(separator: ", ")]
            for x in row.cells.dropFirst() {
                cells += [TextFormat.number(x?.gap) + (x?.state == .notCarried ? " †" : ""),
                    TextFormat.number(x?.lambda)]
            }
            return cells
        }, left: 0, keep: 2, units: [6] + Array(repeating: 2, count: max(0, r.rules.count - 1)))
    }

    /// One line per aggregation: round, class, honest statistics, then per rule gap, λ̂, κ̂,
    /// cosine, Byzantine share, distance to the recorded aggregate, flag, non-finite flag and,
    /// for a compared stateful rule, where its state came from (``ReplayState``). Undefined values
    /// are empty.
    /// A first comment line (`#`) gives the signature verdict.
    public static func csv(_ r: AuditReport) -> String {
        var comments: [String] = []
        if let s = r.integrity.signatures {
            comments.append("# signatures: " + DisplayText.escaped(s.summary.replacingOccurrences(of: "\n", with: " ")))
        }
        if let c = r.integrity.clientMessages { comments.append("# client messages: " + c.summary) }
        if let skipped = r.integrity.skippedRecords {
            comments.append("# skipped records of unknown types: " + skipped.map(\.description).joined(separator: "; "))
        }
        if let covered = r.rounds, covered.isSelection { comments.append("# rounds: \(covered.description)") }
        var header = ["round", "class", "honest_diameter", "honest_variance"]
        // With `--adversary worst`, three columns per rule follow its others.
        let worst = r.summaries.contains { $0.worstCase != nil }
        for rule in r.rules {
            header += ["gap", "lambda", "kappa", "cosine", "byzantine_share", "distance_to_recorded", "exceeds_bound",
                       "non_finite",
                       "state", "window_drift", "window_persistence", "cumulative_drift", "cumulative_persistence",
                       "model_drift",
                       "model_drift_relative", "model_drift_persistence"].map { "\(rule) \($0)" }
            if worst { header += ["worst_lambda", "worst_bound_ratio", "worst_family"].map { "\(rule) \($0)" } }
        }
        var lines = comments + [header.map(TextFormat.csvField).joined(separator: ",")]
        for row in r.rows {
            var f = [String(row.round), String(row.classIndex), TextFormat.csv(row.honestDiameter),
                TextFormat.csv(row.honestVariance)]
            for c in row.cells {
                f += [TextFormat.csv(c?.gap), TextFormat.csv(c?.lambda), TextFormat.csv(c?.kappa),
                      TextFormat.csv(c?.cosine),
                      TextFormat.csv(c?.byzantineShare), TextFormat.csv(c?.distanceToRecorded), c.map {
                          $0.exceedsBound ? "1" : "0" } ?? "",
                      c.map { $0.nonFinite ? "1" : "0" } ?? "", c?.state?.rawValue ?? "",
                      TextFormat.csv(c?.drift?.windowed), TextFormat.csv(c?.drift?.windowPersistence),
                      TextFormat.csv(c?.drift?.cumulative),
                      TextFormat.csv(c?.drift?.cumulativePersistence), TextFormat.csv(c?.modelDrift?.displacement),
                      TextFormat.csv(c?.modelDrift?.relative), TextFormat.csv(c?.modelDrift?.persistence)]
                if worst {
                    f += [TextFormat.csv(c?.worstCase?.lambda), TextFormat.csv(c?.worstCase?.boundRatio),
                        TextFormat.csvField(c?.worstCase?.family ?? "")] }
            }
            lines.append(f.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
