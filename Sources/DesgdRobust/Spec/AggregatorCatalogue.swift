import DesgdNumerics

/// The one place that turns spec text into aggregation objects (rules, pre-aggregators,
/// pipelines), lists them for `--help`, expands `--agg all`, and validates (n, f).
///
/// Syntax (``ComponentSpec``): `name[:key=value,…]`; a `+` chain is pre-aggregators followed by
/// a rule (`clip:c=2+nnm+krum`). Values of count parameters are integer expressions over n and f
/// (`krum:q=n-f-1`). Every object's `spec` is canonical — all parameters written out — and parses
/// back to an equal object, so a trace can record it.
public enum AggregatorCatalogue {
    /// One documented parameter of a catalogue entry.
    public struct Parameter: Sendable {
        public let key: String
        public let defaultValue: String
        public let meaning: String
    }

    /// A rule or pre-aggregator: its name, aliases, one-line summary and parameters.
    public struct Entry: Sendable {
        public let name: String
        public let aliases: [String]
        public let summary: String
        public let parameters: [Parameter]

        /// `name:key=default,…` — the entry with its defaults written out.
        public var defaultSpec: String {
            SpecText.spec(name, parameters.map { ($0.key, $0.defaultValue) })
        }

        func matches(_ name: String) -> Bool { self.name == name || aliases.contains(name) }
    }

    // MARK: Tables

    /// Every aggregation rule, in `--help` and `--agg all` order.
    public static let rules: [Entry] = [
        Entry(name: "mean", aliases: ["average", "avg"], summary: "plain average (not robust)", parameters: []),
        Entry(name: "clipmean", aliases: ["clippedmean"],
              summary: "clip every input to the round's median norm, then average", parameters: []),
        Entry(name: "median", aliases: ["cwmed", "cm"],
              summary: "coordinate-wise median (even n: mean of the two middle values)", parameters: []),
        Entry(name: "trmean", aliases: ["trimmedmean", "tm", "cwtm"],
              summary: "coordinate-wise trimmed mean: drop b smallest and b largest values",
              parameters: [Parameter(key: "b", defaultValue: "f",
                  meaning: "values dropped on each side (expression)")]),
        Entry(name: "krum", aliases: [],
              summary: "the input with the smallest sum of squared distances to its q nearest others",
              parameters: [Parameter(key: "q", defaultValue: "n-f-2",
                  meaning: "neighbours (paper n-f-2; ByzFL n-f-1)")]),
        Entry(name: "mkrum", aliases: ["multikrum"],
              summary: "average of the m inputs with the smallest Krum scores",
              parameters: [Parameter(key: "q", defaultValue: "n-f-2", meaning: "neighbours in the score"),
                           Parameter(key: "m", defaultValue: "n-f", meaning: "inputs kept")]),
        Entry(name: "geomed", aliases: ["gm", "rfa", "geometricmedian"],
              summary: "geometric median, smoothed Weiszfeld (ByzFL: nu=0.1,iters=3,tol=0,start=zero)",
              parameters: [Parameter(key: "nu", defaultValue: "1e-06",
                  meaning: "smoothing ν (distances below it are clamped)"),
                           Parameter(key: "iters", defaultValue: "1000", meaning: "maximum iterations"),
                           Parameter(key: "tol", defaultValue: "1e-06",
                               meaning: "stop when a step ≤ tol × mean distance (0: run all iterations)"),
                           Parameter(key: "start", defaultValue: "mean", meaning: "z₀: mean or zero")]),
        Entry(name: "faba", aliases: [],
              summary: "remove the input farthest from the mean, f times; average the rest", parameters: []),
        Entry(name: "dnc", aliases: ["divideandconquer"],
              summary: "divide-and-conquer: filter outliers along the top singular vector of random coordinate subsets",
              parameters: [Parameter(key: "b", defaultValue: "10000", meaning: "coordinates per subset (min(b, d))"),
                           Parameter(key: "niters", defaultValue: "5", meaning: "iterations (kept sets intersected)"),
                           Parameter(key: "c", defaultValue: "1",
                               meaning: "filtering fraction: ⌊c·f⌋ removed per iteration")]),
        Entry(name: "clustering", aliases: ["cluster", "sattler"],
              summary: "cosine similarity, complete linkage into 2 clusters, average the larger", parameters: []),
        Entry(name: "cclip", aliases: ["centeredclipping", "cc"],
              summary: "centered clipping around the previous aggregate (stateful)",
              parameters: [Parameter(key: "tau", defaultValue: "10", meaning: "clipping radius τ"),
                           Parameter(key: "iters", defaultValue: "3", meaning: "clipping iterations L")]),
        Entry(name: "bulyan", aliases: [],
              summary: "n−2f Krum selections, then per coordinate the n−4f values nearest the median",
              parameters: []),
        Entry(name: "mda", aliases: ["minimumdiameter"],
              summary: "mean of the n−f inputs with the smallest diameter", parameters: []),
        Entry(name: "monna", aliases: [],
              summary: "mean of the n−f inputs nearest a trusted pivot input",
              parameters: [Parameter(key: "pivot", defaultValue: "0",
                  meaning: "index of the trusted input (expression)")]),
        Entry(name: "meamed", aliases: ["meanaroundmedian"],
              summary: "coordinate-wise mean of the n−f values nearest the median", parameters: []),
        Entry(name: "caf", aliases: [],
              summary: "covariance-bound agnostic filter: spectral down-weighting", parameters: []),
        Entry(name: "smea", aliases: [],
              summary: "mean of the n−f inputs whose covariance has the smallest top eigenvalue", parameters: []),
        Entry(name: "signguard", aliases: ["sign-guard"],
              summary: "norm filter, then the largest MeanShift cluster of sign statistics on a random block; mean"
                  + " clipped to the median norm (Xu et al., ICDCS 2022)",
              parameters: [Parameter(key: "lower", defaultValue: "0.1",
                  meaning: "norm filter: keep ‖x‖ > lower × median norm"),
                           Parameter(key: "upper", defaultValue: "3",
                               meaning: "norm filter: keep ‖x‖ < upper × median norm"),
                           Parameter(key: "frac", defaultValue: "0.1",
                               meaning: "share of the coordinates in the random block")]),
        Entry(name: "fltrust", aliases: [],
              summary: "trust ReLU(cos) to the server's momentum on a clean root set; inputs rescaled to its norm (Cao"
                  + " et al., NDSS 2021; stateful; replays only on its own traces: fork for a counterfactual)",
              parameters: [Parameter(key: "root", defaultValue: "100",
                  meaning: "root set size, drawn from the training set")]),
    ]

    /// Every pre-aggregator.
    public static let preAggregators: [Entry] = [
        Entry(name: "bucketing", aliases: ["bucket"],
              summary: "average random buckets of s inputs (⌈n/s⌉ rows, f kept as declared)",
              parameters: [Parameter(key: "s", defaultValue: "2", meaning: "bucket size")]),
        Entry(name: "nnm", aliases: ["mixing"],
              summary: "replace each input by the mean of its n−f nearest inputs (itself included)", parameters: []),
        Entry(name: "clip", aliases: ["clipping"],
              summary: "static clipping to norm c",
              parameters: [Parameter(key: "c", defaultValue: "2", meaning: "clipping radius")]),
        Entry(name: "arc", aliases: [],
              summary: "adaptive robust clipping: the ⌊2f(n−f)/n⌋ largest inputs clipped to the next norm",
              parameters: []),
    ]

    // MARK: Construction

    /// A rule, or a pipeline when `text` is a `+` chain (pre-aggregators first, rule last).
    public static func makeAggregator(_ text: String) throws(AggregationError) -> any Aggregator {
        let chain = try ComponentSpec.parseChain(text)
        guard let last = chain.last else {
            throw AggregationError("no aggregator given: known rules are \(ruleNames)")
        }
        let rule = try makeRule(last)
        if chain.count == 1 { return rule }
        return AggregationPipeline(pre: try chain.dropLast().map { (spec) throws(AggregationError) in
            try makePreAggregator(spec) },
                                   rule: rule)
    }

    /// A pipeline from a rule spec and a `+` chain of pre-aggregators (`none` or empty: no
    /// pre-aggregation); an error names the setting it is about (the rule or the pre-aggregators).
    public static func makePipeline(rule: String, pre: String) throws(AggregationError) -> AggregationPipeline {
        let made: any Aggregator
        do throws(AggregationError) {
            let ruleChain = try ComponentSpec.parseChain(rule)
            guard ruleChain.count == 1 else {
                throw AggregationError(
                    "'\(DisplayText.quoted(rule))': \(Setting.aggregator) takes one rule; "
                        + "put pre-aggregators in \(Setting.preAggregators)")
            }
            made = try makeRule(ruleChain[0])
        } catch {
            throw AggregationError(error.explanation.settings.isEmpty ? "\(Setting.aggregator): \(error.explanation)"
                : error.explanation)
        }
        let stages: [any PreAggregator]
        do throws(AggregationError) {
            stages = try ComponentSpec.parseChain(pre).map { (spec) throws(AggregationError) in
                try makePreAggregator(spec) }
        } catch {
            throw AggregationError("\(Setting.preAggregators): \(error.explanation)")
        }
        return AggregationPipeline(pre: stages, rule: made)
    }

    /// The rule named by one spec.
    public static func makeRule(_ spec: ComponentSpec) throws(AggregationError) -> any Aggregator {
        guard let entry = rules.first(where: { $0.matches(spec.name) }) else {
            let hint = preAggregators.contains(where: { $0.matches(spec.name) })
                ? " ('\(spec.name)' is a pre-aggregator: put it before the rule, e.g. \(spec.name)+krum)" : ""
            throw AggregationError("unknown aggregator '\(spec.name)': known rules are \(ruleNames)\(hint)")
        }
        try spec.checkKeys(entry.parameters.map(\.key))
        switch entry.name {
        case "mean": return Mean()
        case "clipmean": return ClippedMean()
        case "median": return CoordinateWiseMedian()
        case "trmean": return TrimmedMean(b: try spec.expression("b", default: "f"))
        case "krum": return Krum(q: try spec.expression("q", default: "n-f-2"))
        case "mkrum": return MultiKrum(q: try spec.expression("q", default: "n-f-2"),
            m: try spec.expression("m", default: "n-f"))
        case "geomed":
            let startText = spec.value("start") ?? "mean"
            guard let start = GeometricMedian.Start(rawValue: startText.lowercased()) else {
                throw AggregationError("'geomed': start=\(DisplayText.quoted(startText)) is not one of mean, zero")
            }
            return GeometricMedian(nu: try spec.positive("nu", default: 1e-6),
                                   maxIterations: try spec.count("iters", default: 1000, in: 1...100_000),
                                   tolerance: try spec.nonNegative("tol", default: 1e-6), start: start)
        case "faba": return FABA()
        case "dnc":
            return DnC(subDimension: try spec.count("b", default: 10000, in: 1...100_000_000),
                       iterations: try spec.count("niters", default: 5, in: 1...1_000),
                       filterFraction: try spec.nonNegative("c", default: 1.0, atMost: 1_000))
        case "clustering": return Clustering()
        case "cclip":
            return CenteredClipping(tau: try spec.positive("tau", default: 10),
                iterations: try spec.count("iters", default: 3, in: 1...1_000))
        case "bulyan": return Bulyan()
        case "mda": return MDA()
        case "monna": return MoNNA(pivot: try spec.expression("pivot", default: "0"))
        case "meamed": return MeaMed()
        case "caf": return CAF()
        case "signguard":
            let lower = try spec.positive("lower", default: 0.1), upper = try spec.positive("upper", default: 3)
            guard lower < upper else {
                throw AggregationError("'signguard': lower=\(SpecText.number(lower)) must be below"
                    + " upper=\(SpecText.number(upper))") }
            let fraction = try spec.positive("frac", default: 0.1)
            guard fraction <= 1 else {
                throw AggregationError("'signguard': frac=\(SpecText.number(fraction)) must be in (0, 1]")
            }
            return SignGuard(lower: lower, upper: upper, fraction: fraction)
        case "fltrust": return FLTrust(rootSize: try spec.count("root", default: 100, in: 1...100_000))
        default: return SMEA()
        }
    }

    /// The pre-aggregator named by one spec.
    public static func makePreAggregator(_ spec: ComponentSpec) throws(AggregationError) -> any PreAggregator {
        guard let entry = preAggregators.first(where: { $0.matches(spec.name) }) else {
            let hint = rules.contains(where: { $0.matches(spec.name) }) ? " ('\(spec.name)' is a rule: it goes last)"
                : ""
            throw AggregationError("unknown pre-aggregator '\(spec.name)': known ones are \(preAggregatorNames)\(hint)")
        }
        try spec.checkKeys(entry.parameters.map(\.key))
        switch entry.name {
        case "bucketing": return Bucketing(s: try spec.count("s", default: 2, in: 1...SpecExpression.inputBound))
        case "nnm": return NearestNeighbourMixing()
        case "clip": return StaticClipping(c: try spec.positive("c", default: 2.0))
        default: return AdaptiveRobustClipping()
        }
    }

    // MARK: Listing and validation

    public static var ruleNames: String { rules.map(\.name).joined(separator: ", ") }
    public static var preAggregatorNames: String { preAggregators.map(\.name).joined(separator: ", ") }

    /// The canonical spec of every rule with its defaults: what `--agg all` runs.
    public static var allRuleSpecs: [String] {
        rules.map { entry in (try? makeRule(ComponentSpec.parse(entry.name)).spec) ?? entry.name }
    }

    /// Splits a comma-separated list of rule specs (`geomed,trmean:b=2,mkrum:q=n-f-2,m=n-f`): a
    /// piece of the form `key=value` without a rule name continues the previous spec's parameters.
    public static func splitList(_ text: String) -> [String] {
        var out: [String] = []
        for piece in text.split(separator: ",", omittingEmptySubsequences: true).map({ String($0).trimmingSpaces }) {
            if piece.contains("="), !piece.contains(":"), let last = out.popLast() {
                out.append(last + "," + piece)
            } else {
                out.append(piece)
            }
        }
        return out
    }

    /// `all` → every rule (``allRuleSpecs``); anything else → itself.
    public static func expand(_ text: String) -> [String] {
        text.trimmingSpaces.lowercased() == "all" ? allRuleSpecs : [text]
    }

    /// The catalogue for a front end's help, rules and pre-aggregators apart: each with its
    /// defaults on one line and its summary indented below (the front end writes the headings).
    public static var helpText: (rules: String, preAggregators: String) {
        // The spec with its defaults, then the summary indented below it.
        func lines(_ entries: [Entry]) -> [String] {
            entries.map { entry in
                let aliases = entry.aliases.isEmpty ? "" : " (also: \(entry.aliases.joined(separator: ", ")))"
                return (["  \(entry.defaultSpec)"] + helpLines(entry.summary + aliases, indent: 6))
                    .joined(separator: "\n")
            }
        }
        return (lines(rules).joined(separator: "\n"), lines(preAggregators).joined(separator: "\n"))
    }

    /// `text` broken at spaces into lines of at most 79 columns, each after `indent` spaces: an
    /// indented catalogue line that ArgumentParser (which wraps `--help` at the terminal's width,
    /// without indenting) leaves alone on 80 columns.
    static func helpLines(_ text: String, indent: Int) -> [String] {
        let width = 79 - indent, pad = String(repeating: " ", count: indent)
        var lines: [String] = [], line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty && line.count + 1 + word.count > width {
                lines.append(pad + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(pad + line) }
        return lines
    }

    /// Throws the requirement of the aggregator named by `text` when it cannot run on (n, f).
    public static func check(_ text: String, n: Int, f: Int) throws(AggregationError) {
        try makeAggregator(text).check(n: n, f: f)
    }
}

extension Aggregator {
    /// Throws ``requirement(n:f:)`` as an ``AggregationError`` when the rule cannot run on (n, f).
    public func check(n: Int, f: Int) throws(AggregationError) {
        if let message = requirement(n: n, f: f) { throw AggregationError(Explanation(message)) }
    }
}

extension ComponentSpec {
    /// A whole number in `range`: iteration counts and sizes are bounded so that a spec cannot
    /// make a rule loop or allocate absurdly.
    fileprivate func count(_ key: String, default def: Int,
        in range: ClosedRange<Int>) throws(AggregationError) -> Int {
        let x = try double(key, default: Double(def))
        guard x == x.rounded(), x >= Double(range.lowerBound), x <= Double(range.upperBound) else {
            throw AggregationError("'\(name)': \(key)=\(DisplayText.quoted(value(key) ?? "")) must be a whole number in"
                + " \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(x)
    }

    fileprivate func positive(_ key: String, default def: Double) throws(AggregationError) -> Double {
        let x = try double(key, default: def)
        guard x > 0, x.isFinite else {
            throw AggregationError("'\(name)': \(key)=\(DisplayText.quoted(value(key) ?? ""))"
                + " must be a positive number") }
        return x
    }

    fileprivate func nonNegative(_ key: String, default def: Double) throws(AggregationError) -> Double {
        let x = try double(key, default: def)
        guard x >= 0, x.isFinite else {
            throw AggregationError("'\(name)': \(key)=\(DisplayText.quoted(value(key) ?? "")) must be a number ≥ 0")
        }
        return x
    }

    /// A number in [0, upper].
    fileprivate func nonNegative(_ key: String, default def: Double,
        atMost upper: Double) throws(AggregationError) -> Double {
        let x = try double(key, default: def)
        guard x >= 0, x <= upper else {
            throw AggregationError("'\(name)': \(key)=\(DisplayText.quoted(value(key) ?? "")) must be a number in [0, "
                + "\(SpecNumber.format(upper))]") }
        return x
    }
}
