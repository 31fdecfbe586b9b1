import DesgdRobust
import DesgdTrace
import Foundation

/// One rule over the replayed rounds: distributions of its metrics, its flags and its worst rounds.
public struct ReplayRuleSummary: Sendable, Codable, Equatable {
    public var rule: String
    public var bound: Double?
    public var aggregations: Int
    public var gap: SeriesStatistics
    public var lambda: SeriesStatistics
    public var kappa: SeriesStatistics
    public var byzantineShare: SeriesStatistics
    public var distanceToRecorded: SeriesStatistics
    /// Rounds where λ̂ exceeded the rule's proven bound.
    public var flaggedRounds: [Int]
    /// Rounds with a non-finite metric (NaN or ±∞), left out of the statistics above.
    public var nonFiniteRounds: [Int] = []
    /// Aggregations whose counterfactual state could not be carried (``ReplayState/notCarried``).
    public var stateNotCarried: Int = 0
    /// The five worst rows in ``WorstFirst`` order: non-finite metrics first, then the largest λ̂,
    /// then the largest gap.
    public var worst: [ReplayRow]
    /// Windowed drift persistence over the replayed aggregations, and the model's drift after the
    /// last replayed round (FORMAT.md §5.4; absent past a round without vectors).
    public var windowPersistence: SeriesStatistics? = nil
    public var finalModelDrift: ModelDrift? = nil
    /// With `--adversary worst`: the worst case found per aggregation, summarised.
    public var worstCase: WorstCaseSummary? = nil
}

/// One rule's worst cases over the replayed aggregations (``WorstCaseSearch``): how the worst λ̂
/// found is distributed, how close it came to the rule's proven bound, and which search family
/// found it.
public struct WorstCaseSummary: Sendable, Codable, Equatable {
    public var lambda: SeriesStatistics
    public var kappa: SeriesStatistics
    /// Worst λ̂ / proven bound (rules with a bound).
    public var boundRatio: SeriesStatistics
    /// Worst λ̂ over recorded λ̂, per aggregation: how much worse than the recorded attack it could be.
    public var overRecorded: SeriesStatistics
    /// Rounds whose worst λ̂ came within 10 % of the bound (ratio ≥ ``approachRatio``), and rounds
    /// where it exceeded the bound: a bug in the rule or in the bound, never expected.
    public var approachedRounds: [Int]
    public var exceededRounds: [Int]
    /// Rounds where the best inputs lie on the search radius (the rule may have no bound there).
    public var atReachRounds: Int
    /// How many aggregations each family won (`family` up to its first ':').
    public var families: [String: Int]
    public var evaluations: Int

    public static let approachRatio = 0.9
}

/// Collects rows as they are emitted and summarises them per rule. Keeps five numbers per row
/// (for exact percentiles) and the five worst rows per rule.
public struct ReplaySummaryBuilder {
    var rules: [String] = []
    var series: [String: [[Double?]]] = [:]
    var flagged: [String: [Int]] = [:]
    var nonFinite: [String: [Int]] = [:]
    var notCarried: [String: Int] = [:]
    var worst: [String: [ReplayRow]] = [:]
    var bounds: [String: Double?] = [:]
    var persistence: [String: [Double?]] = [:]
    var modelDrift: [String: ModelDrift] = [:]
    var worstCases: [String: [(round: Int, recordedLambda: Double?, worst: WorstCase)]] = [:]

    public init() {}

    public mutating func add(_ rows: [ReplayRow]) {
        for r in rows {
            if series[r.rule] == nil {
                rules.append(r.rule)
                series[r.rule] = Array(repeating: [], count: 5)
                bounds[r.rule] = r.metrics.bound
            }
            let m = r.metrics
            let values: [Double?] = [m.gap, m.lambda, m.kappa, m.byzantineWeight ?? m.byzantineCoordinateShare,
                r.distanceToRecorded]
            for k in 0..<5 { series[r.rule]![k].append(values[k]) }
            if m.exceedsBound { flagged[r.rule, default: []].append(r.round) }
            if r.nonFinite { nonFinite[r.rule, default: []].append(r.round) }
            if r.state == .notCarried { notCarried[r.rule, default: 0] += 1 }
            persistence[r.rule, default: []].append(m.drift?.windowPersistence)
            if let d = r.modelDrift { modelDrift[r.rule] = d }
            if let w = r.worstCase { worstCases[r.rule, default: []].append((r.round, m.lambda, w)) }
            var w = worst[r.rule, default: []]
            w.append(r)
            w.sort { ReplaySummaryBuilder.worse($0, than: $1) }
            worst[r.rule] = Array(w.prefix(5))
        }
    }

    static func worse(_ a: ReplayRow, than b: ReplayRow) -> Bool {
        func key(_ r: ReplayRow) -> DeviationMetricsKey {
            DeviationMetricsKey(gap: r.metrics.gap, lambda: r.metrics.lambda, nonFinite: r.nonFinite)
        }
        return WorstFirst.precedes(key(a), key(b)) ?? ((a.round, a.classIndex) < (b.round, b.classIndex))
    }

    public func summaries() -> [ReplayRuleSummary] {
        rules.map { rule in
            let s = series[rule]!
            return ReplayRuleSummary(rule: rule, bound: bounds[rule] ?? nil, aggregations: s[0].count,
                                     gap: SeriesStatistics(s[0]),
                                     lambda: SeriesStatistics(s[1]), kappa: SeriesStatistics(s[2]),
                                     byzantineShare: SeriesStatistics(s[3]),
                                     distanceToRecorded: SeriesStatistics(s[4]), flaggedRounds: flagged[rule] ?? [],
                                     nonFiniteRounds: nonFinite[rule] ?? [], stateNotCarried: notCarried[rule] ?? 0,
                                     worst: worst[rule] ?? [],
                                     windowPersistence: SeriesStatistics(persistence[rule] ?? []),
                                     finalModelDrift: modelDrift[rule],
                                     worstCase: worstCases[rule].map(ReplaySummaryBuilder.summarise))
        }
    }

    package static func summarise(
        _ cases: [(round: Int, recordedLambda: Double?, worst: WorstCase)]
    ) -> WorstCaseSummary {
        var families: [String: Int] = [:]
        for c in cases { families[String(c.worst.family.prefix { $0 != ":" }), default: 0] += 1 }
        return WorstCaseSummary(
            lambda: SeriesStatistics(cases.map(\.worst.lambda)), kappa: SeriesStatistics(cases.map(\.worst.kappa)),
            boundRatio: SeriesStatistics(cases.map(\.worst.boundRatio)),
            overRecorded: SeriesStatistics(cases.map { c in
                c.recordedLambda.flatMap { r in c.worst.lambda.flatMap { r > 0 ? $0 / r : nil } } }),
            approachedRounds: cases.filter {
                ($0.worst.boundRatio ?? 0) >= WorstCaseSummary.approachRatio }.map(\.round),
            exceededRounds: cases.filter(\.worst.exceedsBound).map(\.round),
            atReachRounds: cases.filter(\.worst.atReach).count, families: families,
            evaluations: cases.reduce(0) { $0 + $1.worst.evaluations })
    }
}

/// The streamed outputs of `desgd-replay`: a table, CSV or JSON, written row by row as rounds
/// are replayed (memory does not grow with the number of rounds), then the summary.
public enum ReplayOutput {
    public enum Format: String, Sendable { case table, csv, json }

    /// The table's columns (docs/commands.md): each rule by its label (``RuleLabels``), and, to fit
    /// in ``TextFormat/lineWidth`` columns, without Δ_S (gap / λ̂, the same for every rule of an
    /// aggregation) and the bound (the summary's); with `--adversary worst` the worst-case columns
    /// take the place of cosine, Byzantine share, distance and drift. CSV and JSON have them all.
    static func columns(worstCase: Bool, ruleWidth: Int) -> (header: [String], widths: [Int]) {
        worstCase
            ? (["round", "class", "rule", "gap", "λ̂", "κ̂", "worst λ̂", "/bound", "flag", "found by"],
               [5, 5, ruleWidth, 9, 9, 9, 9, 7, 10, 0])
            : (["round", "class", "rule", "gap", "λ̂", "κ̂", "cosine", "byz", "to rec.", "persist.", "drift",
                "flag"],
               [5, 5, ruleWidth, 9, 9, 9, 7, 9, 9, 8, 9, 0])
    }

    /// Cells padded to the widths of ``columns(worstCase:ruleWidth:)``: the rule, the flag and the
    /// worst case's family left-aligned after two spaces; numbers right-aligned after one space,
    /// in columns as wide as their longest form (`-1.234e-05`), so that they never touch.
    static func fixed(_ cells: [String], worstCase: Bool, ruleWidth: Int) -> String {
        let (header, widths) = columns(worstCase: worstCase, ruleWidth: ruleWidth)
        let text: Set<String> = ["rule", "flag", "found by"]
        return TextFormat.withoutTrailingWhitespace(cells.enumerated().map { c, s in
            let pad = String(repeating: " ", count: max(0, widths[c] - s.count))
            let separator = c == 0 ? "" : text.contains(header[c]) || c == 1 ? "  " : " "
            return separator + (text.contains(header[c]) ? s + pad : pad + s)
        }.joined())
    }

    static let worstCSVHeader = ["worst_gap", "worst_lambda", "worst_kappa", "worst_bound_ratio", "worst_exceeds_bound",
                                 "worst_at_reach", "worst_family", "worst_evaluations"]

    static func worstCSVCells(_ w: WorstCase?) -> [String] {
        guard let w else { return Array(repeating: "", count: worstCSVHeader.count) }
        return [TextFormat.csv(w.gap), TextFormat.csv(w.lambda), TextFormat.csv(w.kappa), TextFormat.csv(w.boundRatio),
                w.exceedsBound ? "1" : "0", w.atReach ? "1" : "0", TextFormat.csvField(w.family), String(w.evaluations)]
    }

    /// Text before the first row; `worstCase`: the rows carry worst-case columns. The table starts
    /// with the legend of the rules' labels (``RuleLabels``).
    public static func begin(_ format: Format, trace: String, rules: [String], worstCase: Bool = false) -> String {
        switch format {
        case .table:
            let labels = RuleLabels(rules)
            let note = worstCase
                ? "worst λ̂ = the worst case found, /bound = its ratio to the proven bound"
                : "persist. = windowed drift persistence, drift = model drift from the honest shadow"
            let lines = labels.legend()
                + [TextFormat.wrap(note + "; Δ_S, bound and more in the CSV and JSON outputs"), ""]
            let header = columns(worstCase: worstCase, ruleWidth: labels.width).header
            return (rules.isEmpty ? "" : lines.joined(separator: "\n") + "\n")
                + fixed(header, worstCase: worstCase, ruleWidth: labels.width) + "\n"
        case .csv:
            return (["round", "class", "rule", "gap", "honest_diameter", "lambda", "bound", "honest_variance", "kappa",
                    "cosine",
                    "byzantine_weight", "byzantine_coordinate_share", "distance_to_recorded", "exceeds_bound",
                    "non_finite",
                    "state", "window_drift", "window_persistence", "cumulative_drift", "cumulative_persistence",
                    "model_drift",
                    "model_drift_relative", "model_drift_persistence"] + (worstCase ? worstCSVHeader : []))
                        .joined(separator: ",") + "\n"
        case .json:
            let encoded = (try? RecordBodyJSON.encode(["trace": trace])) ?? "{}"
            return "{\"source\": \(encoded),\n\"rows\": [\n"
        }
    }

    /// The flag column of the table: λ̂ above the bound, a non-finite metric, a counterfactual
    /// state that could not be carried.
    static func flags(_ r: ReplayRow) -> String {
        [r.metrics.exceedsBound ? "λ̂>bound" : nil, r.nonFinite ? "non-finite" : nil,
         r.state == .notCarried ? "state not carried" : nil].compactMap { $0 }.joined(separator: ", ")
    }

    /// The lines of some rows; `first` tells whether they are the first rows written (JSON commas).
    /// `labels`: the rules' labels in the table (default: from these rows' rules, in order; pass
    /// the ones ``begin(_:trace:rules:worstCase:)`` printed).
    public static func rows(_ rows: [ReplayRow], format: Format, first: Bool, worstCase: Bool = false,
                            labels: RuleLabels? = nil) -> String {
        switch format {
        case .table:
            let labels = labels ?? RuleLabels(rows.map(\.rule))
            return rows.map { r in
                let m = r.metrics
                let head = [String(r.round), r.classIndex >= 0 ? String(r.classIndex) : "all", labels.label(r.rule),
                            TextFormat.number(m.gap), TextFormat.number(m.lambda), TextFormat.number(m.kappa)]
                let w = r.worstCase, byzantine = m.byzantineWeight ?? m.byzantineCoordinateShare
                let cells = worstCase
                    ? head + [TextFormat.number(w?.lambda), TextFormat.number(w?.boundRatio), flags(r), w?.family ?? ""]
                    : head
                        + [TextFormat.number(m.cosine), TextFormat.number(byzantine),
                            TextFormat.number(r.distanceToRecorded),
                              TextFormat.number(m.drift?.windowPersistence),
                              TextFormat.number(r.modelDrift?.displacement),
                              flags(r)]
                return fixed(cells, worstCase: worstCase, ruleWidth: labels.width) + "\n"
            }.joined()
        case .csv:
            return rows.map { r in
                let m = r.metrics
                return ([String(r.round), String(r.classIndex), TextFormat.csvField(r.rule), TextFormat.csv(m.gap),
                        TextFormat.csv(m.honestDiameter),
                        TextFormat.csv(m.lambda), TextFormat.csv(m.bound), TextFormat.csv(m.honestVariance),
                        TextFormat.csv(m.kappa),
                        TextFormat.csv(m.cosine), TextFormat.csv(m.byzantineWeight),
                        TextFormat.csv(m.byzantineCoordinateShare),
                        TextFormat.csv(r.distanceToRecorded), m.exceedsBound ? "1" : "0", r.nonFinite ? "1" : "0",
                        r.state?.rawValue ?? "", TextFormat.csv(m.drift?.windowed),
                        TextFormat.csv(m.drift?.windowPersistence), TextFormat.csv(m.drift?.cumulative),
                        TextFormat.csv(m.drift?.cumulativePersistence),
                        TextFormat.csv(r.modelDrift?.displacement), TextFormat.csv(r.modelDrift?.relative),
                        TextFormat.csv(r.modelDrift?.persistence)] + (worstCase ? worstCSVCells(r.worstCase) : []))
                            .joined(separator: ",") + "\n"
            }.joined()
        case .json:
            return rows.enumerated().map { k, r in
                (first && k == 0 ? "" : ",\n") + ((try? RecordBodyJSON.encode(r)) ?? "{}")
            }.joined()
        }
    }

    /// The worst-case summary (`--adversary worst`) of replay and audit: a table per rule (by its
    /// label) of the recorded λ̂, the worst λ̂ found and its ratio to the bound, then a loud line for
    /// every rule whose worst case exceeded its bound. Empty without worst cases.
    public static func worstCaseLines(
        _ items: [(rule: String, bound: Double?, recorded: SeriesStatistics, worst: WorstCaseSummary)],
        labels: RuleLabels? = nil
    ) -> [String] {
        guard !items.isEmpty else { return [] }
        let labels = labels ?? RuleLabels(items.map(\.rule))
        var out = ["",
            TextFormat.wrap("Worst case: on the recorded honest messages, the largest λ̂ that f Byzantine inputs"
                + " reached in the search, against the recorded λ̂ and the rule's proven bound")]
        let approach = "≥ \(TextFormat.number(WorstCaseSummary.approachRatio))·bound"
        out.append(TextFormat.panels(["rule", "bound", "recorded λ̂ p50", "worst λ̂ p50", "p90", "max",
                                      "/bound p50", "max",
                                      approach, "above bound", "at reach", "found most by"],
                                     items.map { i -> [String] in
            let w = i.worst
            let found: String = w.families.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
                .first.map { "\($0.key) (\($0.value))" } ?? ""
            return [labels.label(i.rule), TextFormat.number(i.bound), TextFormat.number(i.recorded.p50),
                    TextFormat.number(w.lambda.p50),
                    TextFormat.number(w.lambda.p90), TextFormat.number(w.lambda.max),
                    TextFormat.number(w.boundRatio.p50),
                    TextFormat.number(w.boundRatio.max), String(w.approachedRounds.count),
                    String(w.exceededRounds.count),
                    String(w.atReachRounds), found]
        }, units: [2, 3, 2, 3, 1]))
        for i in items where !i.worst.exceededRounds.isEmpty {
            let r = i.worst.exceededRounds
            out.append(TextFormat.wrap("WORST CASE ABOVE THE PROVEN BOUND: \(labels.label(i.rule)) in rounds "
                + "\(r.prefix(20).map(String.init).joined(separator: ", "))\(r.count > 20 ? ", …" : ""): inputs exist"
                + " that push it beyond its bound, a bug in the rule or in the bound"))
        }
        return out
    }

    /// Text after the last row: the summary per rule (and the JSON's closing). `labels`: the rules'
    /// labels in the table (default: from the summaries, in order).
    /// `fileText`: strings from the trace the lines may quote (the recorded rule's spec, in the
    /// reasons of `skippedRules`), never broken when lines are wrapped (``TextFormat/atom(_:)``).
    public static func end(_ format: Format, summaries: [ReplayRuleSummary], replayed: Int, skippedRounds: Int,
                           skippedRules: [String],
                           labels: RuleLabels? = nil, fileText: [String] = []) -> String {
        switch format {
        case .json:
            struct Tail: Encodable {
                var replayedRounds: Int
                var skippedRounds: Int
                var skippedRules: [String]
                var summary: [ReplayRuleSummary]
            }
            let tail = (try? RecordBodyJSON.encode(Tail(replayedRounds: replayed, skippedRounds: skippedRounds,
                                                       skippedRules: skippedRules,
                                                       summary: summaries))) ?? "{}"
            return "\n],\n\"result\": \(tail)}\n"
        case .csv:
            return ""
        case .table:
            let labels = labels ?? RuleLabels(summaries.map(\.rule))
            let wrap = { (text: String) in TextFormat.wrap(text, indent: "  ", keepWhole: fileText) }
            var out = ["", "Summary: \(replayed) rounds replayed"
                + (skippedRounds > 0 ? ", \(skippedRounds) without vectors skipped" : "")]
            if !skippedRules.isEmpty {
                out.append(wrap("Rules that cannot run on this trace: " + skippedRules.joined(separator: "; ")))
            }
            out.append(TextFormat.panels(
                ["rule", "bound", "gap mean", "p50", "p90", "p99", "max", "λ̂ mean", "p50", "p90", "p99", "max",
                    "κ̂ mean", "byz", "to recorded", "flagged", "non-finite"],
                summaries.map { (s: ReplayRuleSummary) -> [String] in
                    let head: [String] = [labels.label(s.rule), TextFormat.number(s.bound)]
                    let tail: [String] = [TextFormat.number(s.kappa.mean), TextFormat.number(s.byzantineShare.mean),
                                          TextFormat.number(s.distanceToRecorded.mean), String(s.flaggedRounds.count),
                                          String(s.nonFiniteRounds.count)]
                    return head + TextFormat.statistics(s.gap) + TextFormat.statistics(s.lambda) + tail
                }, units: [1, 5, 5, 3, 2]))
            if summaries.contains(where: { $0.finalModelDrift != nil }) {
                out.append("")
                out.append(TextFormat.wrap("Drift, open loop along the recorded inputs (persistence = ‖Σe‖ /"
                    + " Σ‖e‖ over each class's last W aggregations; model drift = ‖η·Σ(u −"
                    + " u_honest)‖ from the honest shadow)"))
                out.append(TextFormat.panels(["rule", "window persist. p50", "p90", "max", "model drift", "/ shadow",
                    "model persist."], summaries.map { s in
                    [labels.label(s.rule), TextFormat.number(s.windowPersistence?.p50),
                     TextFormat.number(s.windowPersistence?.p90),
                     TextFormat.number(s.windowPersistence?.max), TextFormat.number(s.finalModelDrift?.displacement),
                     TextFormat.number(s.finalModelDrift?.relative), TextFormat.number(s.finalModelDrift?.persistence)]
                }, units: [3, 3]))
            }
            out += worstCaseLines(summaries.compactMap { s in s.worstCase.map { (s.rule, s.bound, s.lambda, $0) } },
                labels: labels)
            out.append("")
            out.append("Worst rounds per rule (non-finite metrics first, then largest λ̂):")
            for s in summaries {
                out.append(wrap("  \(labels.label(s.rule)): "
                    + s.worst.map {
                        "\($0.round)" + ($0.classIndex >= 0 ? "/c\($0.classIndex)" : "")
                            + " (λ̂ \(TextFormat.number($0.metrics.lambda)))" }
                    .joined(separator: ", ")))
            }
            for s in summaries where !s.nonFiniteRounds.isEmpty {
                out.append(wrap("\(labels.label(s.rule)): non-finite metrics (NaN or ±∞, left out of the statistics)"
                    + " in \(s.nonFiniteRounds.count) aggregation\(s.nonFiniteRounds.count == 1 ? "" : "s"), rounds "
                    + s.nonFiniteRounds.prefix(20).map(String.init).joined(separator: ", ")
                        + (s.nonFiniteRounds.count > 20 ? ", …" : "")))
            }
            for s in summaries where s.stateNotCarried > 0 {
                out.append(wrap("\(labels.label(s.rule)): state not carried in \(s.stateNotCarried) aggregation"
                    + "\(s.stateNotCarried == 1 ? "" : "s"): a round of their class was recorded without vectors, so"
                    + " this rule's counterfactual state skips it and those rows are not its counterfactual run"))
            }
            let flagged = summaries.filter { !$0.flaggedRounds.isEmpty }
            out.append(flagged.isEmpty ? "No round exceeded a rule's proven λ bound."
                : wrap("λ̂ above the proven bound (a bug or a numerical issue worth a look): "
                    + flagged.map {
                        "\(labels.label($0.rule)) in rounds "
                            + "\($0.flaggedRounds.prefix(20).map(String.init).joined(separator: ", "))" }
                        .joined(separator: "; ")))
            return out.joined(separator: "\n") + "\n"
        }
    }
}

/// One-line JSON with the trace format's conventions (``RecordBody/encoder()``).
enum RecordBodyJSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try RecordBody.encoder().encode(value), as: UTF8.self)
    }
}
