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
            let values: [Double?] = [m.gap, m.lambda, m.kappa, m.byzantineWeight ?? m.byzantineCoordinateShare, r.distanceToRecorded]
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
        func key(_ r: ReplayRow) -> DeviationMetricsKey { DeviationMetricsKey(gap: r.metrics.gap, lambda: r.metrics.lambda, nonFinite: r.nonFinite) }
        return WorstFirst.precedes(key(a), key(b)) ?? ((a.round, a.classIndex) < (b.round, b.classIndex))
    }

    public func summaries() -> [ReplayRuleSummary] {
        rules.map { rule in
            let s = series[rule]!
            return ReplayRuleSummary(rule: rule, bound: bounds[rule] ?? nil, aggregations: s[0].count, gap: SeriesStatistics(s[0]),
                                     lambda: SeriesStatistics(s[1]), kappa: SeriesStatistics(s[2]), byzantineShare: SeriesStatistics(s[3]),
                                     distanceToRecorded: SeriesStatistics(s[4]), flaggedRounds: flagged[rule] ?? [],
                                     nonFiniteRounds: nonFinite[rule] ?? [], stateNotCarried: notCarried[rule] ?? 0, worst: worst[rule] ?? [],
                                     windowPersistence: SeriesStatistics(persistence[rule] ?? []), finalModelDrift: modelDrift[rule],
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
            overRecorded: SeriesStatistics(cases.map { c in c.recordedLambda.flatMap { r in c.worst.lambda.flatMap { r > 0 ? $0 / r : nil } } }),
            approachedRounds: cases.filter { ($0.worst.boundRatio ?? 0) >= WorstCaseSummary.approachRatio }.map(\.round),
            exceededRounds: cases.filter(\.worst.exceedsBound).map(\.round),
            atReachRounds: cases.filter(\.worst.atReach).count, families: families,
            evaluations: cases.reduce(0) { $0 + $1.worst.evaluations })
    }
}

/// The streamed outputs of `desgd-replay`: a table, CSV or JSON, written row by row as rounds
/// are replayed (memory does not grow with the number of rounds), then the summary.
public enum ReplayOutput {
    public enum Format: String, Sendable { case table, csv, json }

    static let tableHeader = ["round", "class", "rule", "gap", "Δ_S", "λ̂", "bound", "κ̂", "cosine", "byz", "to recorded", "persist.", "model drift", "flag"]
    static let widths = [6, 5, 28, 10, 10, 10, 8, 10, 8, 7, 11, 8, 11, 7]

    static func fixed(_ cells: [String], worstCase: Bool = false) -> String {
        let w = worstCase ? Array(widths.dropLast()) + worstWidths + [widths.last!] : widths
        return TextFormat.withoutTrailingWhitespace(cells.enumerated().map { c, s in
            let pad = String(repeating: " ", count: max(0, w[c] - s.count))
            return c == 2 ? s + pad : pad + s
        }.joined(separator: "  "))
    }

    /// The worst-case columns (`--adversary worst`), before the flag column.
    static let worstTableHeader = ["worst λ̂", "/bound", "found by"]
    static let worstWidths = [10, 7, 18]
    static let worstCSVHeader = ["worst_gap", "worst_lambda", "worst_kappa", "worst_bound_ratio", "worst_exceeds_bound",
                                 "worst_at_reach", "worst_family", "worst_evaluations"]

    /// A row's cells with the worst-case ones inserted before the flag.
    static func withWorstCase(_ cells: [String], _ w: WorstCase?) -> [String] {
        Array(cells.dropLast()) + [TextFormat.number(w?.lambda), TextFormat.number(w?.boundRatio), w?.family ?? ""] + [cells.last!]
    }

    static func worstCSVCells(_ w: WorstCase?) -> [String] {
        guard let w else { return Array(repeating: "", count: worstCSVHeader.count) }
        return [TextFormat.csv(w.gap), TextFormat.csv(w.lambda), TextFormat.csv(w.kappa), TextFormat.csv(w.boundRatio),
                w.exceedsBound ? "1" : "0", w.atReach ? "1" : "0", TextFormat.csvField(w.family), String(w.evaluations)]
    }

    /// Text before the first row; `worstCase`: the rows carry worst-case columns.
    public static func begin(_ format: Format, trace: String, rules: [String], worstCase: Bool = false) -> String {
        switch format {
        case .table:
            return fixed(worstCase ? Array(tableHeader.dropLast()) + worstTableHeader + [tableHeader.last!] : tableHeader,
                         worstCase: worstCase) + "\n"
        case .csv:
            return (["round", "class", "rule", "gap", "honest_diameter", "lambda", "bound", "honest_variance", "kappa", "cosine",
                    "byzantine_weight", "byzantine_coordinate_share", "distance_to_recorded", "exceeds_bound", "non_finite",
                    "state", "window_drift", "window_persistence", "cumulative_drift", "cumulative_persistence", "model_drift",
                    "model_drift_relative", "model_drift_persistence"] + (worstCase ? worstCSVHeader : [])).joined(separator: ",") + "\n"
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
    public static func rows(_ rows: [ReplayRow], format: Format, first: Bool, worstCase: Bool = false) -> String {
        switch format {
        case .table:
            return rows.map { r in
                let m = r.metrics
                let cells = [String(r.round), r.classIndex >= 0 ? String(r.classIndex) : "all", r.rule, TextFormat.number(m.gap),
                              TextFormat.number(m.honestDiameter), TextFormat.number(m.lambda), TextFormat.number(m.bound),
                              TextFormat.number(m.kappa), TextFormat.number(m.cosine),
                              TextFormat.number(m.byzantineWeight ?? m.byzantineCoordinateShare), TextFormat.number(r.distanceToRecorded),
                              TextFormat.number(m.drift?.windowPersistence), TextFormat.number(r.modelDrift?.displacement),
                              flags(r)]
                return fixed(worstCase ? withWorstCase(cells, r.worstCase) : cells, worstCase: worstCase) + "\n"
            }.joined()
        case .csv:
            return rows.map { r in
                let m = r.metrics
                return ([String(r.round), String(r.classIndex), TextFormat.csvField(r.rule), TextFormat.csv(m.gap), TextFormat.csv(m.honestDiameter),
                        TextFormat.csv(m.lambda), TextFormat.csv(m.bound), TextFormat.csv(m.honestVariance), TextFormat.csv(m.kappa),
                        TextFormat.csv(m.cosine), TextFormat.csv(m.byzantineWeight), TextFormat.csv(m.byzantineCoordinateShare),
                        TextFormat.csv(r.distanceToRecorded), m.exceedsBound ? "1" : "0", r.nonFinite ? "1" : "0",
                        r.state?.rawValue ?? "", TextFormat.csv(m.drift?.windowed),
                        TextFormat.csv(m.drift?.windowPersistence), TextFormat.csv(m.drift?.cumulative), TextFormat.csv(m.drift?.cumulativePersistence),
                        TextFormat.csv(r.modelDrift?.displacement), TextFormat.csv(r.modelDrift?.relative),
                        TextFormat.csv(r.modelDrift?.persistence)] + (worstCase ? worstCSVCells(r.worstCase) : [])).joined(separator: ",") + "\n"
            }.joined()
        case .json:
            return rows.enumerated().map { k, r in
                (first && k == 0 ? "" : ",\n") + ((try? RecordBodyJSON.encode(r)) ?? "{}")
            }.joined()
        }
    }

    /// The worst-case summary (`--adversary worst`) of replay and audit: a table per rule of the
    /// recorded λ̂, the worst λ̂ found and its ratio to the bound, then a loud line for every rule
    /// whose worst case exceeded its bound. Empty without worst cases.
    public static func worstCaseLines(_ items: [(rule: String, bound: Double?, recorded: SeriesStatistics, worst: WorstCaseSummary)]) -> [String] {
        guard !items.isEmpty else { return [] }
        var out = ["", "Worst case: on the recorded honest messages, the largest λ̂ that f Byzantine inputs reached in the search, against the recorded λ̂ and the rule's proven bound"]
        out.append(TextFormat.table(["rule", "bound", "recorded λ̂ p50", "worst λ̂ p50", "p90", "max", "/bound p50", "max",
                                     "≥ \(TextFormat.number(WorstCaseSummary.approachRatio))·bound", "above bound", "at reach", "found most by"],
                                    items.map { i in
            let w = i.worst
            return [i.rule, TextFormat.number(i.bound), TextFormat.number(i.recorded.p50), TextFormat.number(w.lambda.p50),
                    TextFormat.number(w.lambda.p90), TextFormat.number(w.lambda.max), TextFormat.number(w.boundRatio.p50),
                    TextFormat.number(w.boundRatio.max), String(w.approachedRounds.count), String(w.exceededRounds.count),
                    String(w.atReachRounds), w.families.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.first.map { "\($0.key) (\($0.value))" } ?? ""]
        }))
        for i in items where !i.worst.exceededRounds.isEmpty {
            let r = i.worst.exceededRounds
            out.append("WORST CASE ABOVE THE PROVEN BOUND: \(i.rule) in rounds \(r.prefix(20).map(String.init).joined(separator: ", "))\(r.count > 20 ? ", …" : ""): inputs exist that push it beyond its bound, a bug in the rule or in the bound")
        }
        return out
    }

    /// Text after the last row: the summary per rule (and the JSON's closing).
    public static func end(_ format: Format, summaries: [ReplayRuleSummary], replayed: Int, skippedRounds: Int, skippedRules: [String]) -> String {
        switch format {
        case .json:
            struct Tail: Encodable {
                var replayedRounds: Int
                var skippedRounds: Int
                var skippedRules: [String]
                var summary: [ReplayRuleSummary]
            }
            let tail = (try? RecordBodyJSON.encode(Tail(replayedRounds: replayed, skippedRounds: skippedRounds, skippedRules: skippedRules,
                                                       summary: summaries))) ?? "{}"
            return "\n],\n\"result\": \(tail)}\n"
        case .csv:
            return ""
        case .table:
            var out = ["", "Summary: \(replayed) rounds replayed" + (skippedRounds > 0 ? ", \(skippedRounds) without vectors skipped" : "")]
            if !skippedRules.isEmpty { out.append("Rules that cannot run on this trace: " + skippedRules.joined(separator: "; ")) }
            out.append(TextFormat.table(
                ["rule", "bound", "gap mean", "p50", "p90", "p99", "max", "λ̂ mean", "p50", "p90", "p99", "max", "κ̂ mean", "byz", "to recorded", "flagged", "non-finite"],
                summaries.map { s in
                    [s.rule, TextFormat.number(s.bound)] + TextFormat.statistics(s.gap) + TextFormat.statistics(s.lambda)
                        + [TextFormat.number(s.kappa.mean), TextFormat.number(s.byzantineShare.mean), TextFormat.number(s.distanceToRecorded.mean),
                           String(s.flaggedRounds.count), String(s.nonFiniteRounds.count)]
                }))
            if summaries.contains(where: { $0.finalModelDrift != nil }) {
                out.append("")
                out.append("Drift, open loop along the recorded inputs (persistence = ‖Σe‖ / Σ‖e‖ over each class's last W aggregations; model drift = ‖η·Σ(u − u_honest)‖ from the honest shadow)")
                out.append(TextFormat.table(["rule", "window persist. p50", "p90", "max", "model drift", "/ shadow", "model persist."], summaries.map { s in
                    [s.rule, TextFormat.number(s.windowPersistence?.p50), TextFormat.number(s.windowPersistence?.p90),
                     TextFormat.number(s.windowPersistence?.max), TextFormat.number(s.finalModelDrift?.displacement),
                     TextFormat.number(s.finalModelDrift?.relative), TextFormat.number(s.finalModelDrift?.persistence)]
                }))
            }
            out += worstCaseLines(summaries.compactMap { s in s.worstCase.map { (s.rule, s.bound, s.lambda, $0) } })
            out.append("")
            out.append("Worst rounds per rule (non-finite metrics first, then largest λ̂): " + summaries.map { s in
                "\(s.rule): " + s.worst.map { "\($0.round)" + ($0.classIndex >= 0 ? "/c\($0.classIndex)" : "") + " (λ̂ \(TextFormat.number($0.metrics.lambda)))" }
                    .joined(separator: ", ")
            }.joined(separator: "; "))
            for s in summaries where !s.nonFiniteRounds.isEmpty {
                out.append("\(s.rule): non-finite metrics (NaN or ±∞, left out of the statistics) in \(s.nonFiniteRounds.count) aggregation\(s.nonFiniteRounds.count == 1 ? "" : "s"), rounds "
                    + s.nonFiniteRounds.prefix(20).map(String.init).joined(separator: ", ") + (s.nonFiniteRounds.count > 20 ? ", …" : ""))
            }
            for s in summaries where s.stateNotCarried > 0 {
                out.append("\(s.rule): state not carried in \(s.stateNotCarried) aggregation\(s.stateNotCarried == 1 ? "" : "s"): a round of their class was recorded without vectors, so this rule's counterfactual state skips it and those rows are not its counterfactual run")
            }
            let flagged = summaries.filter { !$0.flaggedRounds.isEmpty }
            out.append(flagged.isEmpty ? "No round exceeded a rule's proven λ bound."
                : "λ̂ above the proven bound (a bug or a numerical issue worth a look): "
                    + flagged.map { "\($0.rule) in rounds \($0.flaggedRounds.prefix(20).map(String.init).joined(separator: ", "))" }.joined(separator: "; "))
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
