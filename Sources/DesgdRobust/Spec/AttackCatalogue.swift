import DesgdNumerics

/// The one place that turns attack spec text (`alie:z=auto`, `ipm:eps=0.5`, `mimic:mode=heuristic`)
/// into ``Attack`` values, and the list of attacks for `--help`.
///
/// Spec syntax is ``ComponentSpec``; names and aliases are case-insensitive. Unknown names and
/// parameters, and out-of-range values, are one-line ``AggregationError``s naming what is known.
public enum AttackCatalogue {
    /// One attack of the catalogue.
    public struct Entry: Sendable {
        /// The canonical name, e.g. `signflip`.
        public let name: String
        /// Other names accepted on the command line, e.g. `sign-flip`.
        public let aliases: [String]
        /// One line for `--help`.
        public let summary: String
        /// `key: meaning` of each parameter, in the order `--help` lists them.
        public let parameters: [String]
        /// Specs whose canonical form `--help` shows as the defaults (e.g. both mimic modes).
        public let examples: [String]
        let make: @Sendable (ComponentSpec) throws(AggregationError) -> any Attack
    }

    /// Every attack, in the order of docs/design.md §4.
    public static let entries: [Entry] = [
        Entry(name: "none", aliases: ["honest"],
              summary: "Byzantine workers send their own honest momentum (true labels)",
              parameters: [], examples: ["none"]) { spec throws(AggregationError) in
            try spec.checkKeys([])
            return NoAttack()
        },
        Entry(name: "constant", aliases: [],
              summary: "every Byzantine worker sends c·1 (paper: c=5)",
              parameters: ["c: the constant"], examples: ["constant"]) { spec throws(AggregationError) in
            try spec.checkKeys(["c"])
            return ConstantAttack(c: try finite(spec, "c", default: 5))
        },
        Entry(name: "gaussian", aliases: ["gauss", "noise"],
              summary: "coordinates drawn from N(mu, sigma²), one stream per worker (paper: sigma=2)",
              parameters: ["mu: mean", "sigma: standard deviation ≥ 0"],
              examples: ["gaussian"]) { spec throws(AggregationError) in
            try spec.checkKeys(["mu", "sigma"])
            let sigma = try finite(spec, "sigma", default: 2)
            guard sigma >= 0 else { throw AggregationError("'gaussian': sigma=\(sigma) must be ≥ 0") }
            return GaussianAttack(mu: try finite(spec, "mu", default: 0), sigma: sigma)
        },
        Entry(name: "signflip", aliases: ["sign-flip", "sf"],
              summary: "−scale × own momentum on true labels (paper: scale=1)",
              parameters: ["scale: the flip factor c₂"], examples: ["signflip"]) { spec throws(AggregationError) in
            try spec.checkKeys(["scale"])
            return SignFlipAttack(scale: try finite(spec, "scale", default: 1))
        },
        Entry(name: "labelflip", aliases: ["label-flip", "lf"],
              summary: "own momentum trained on flipped labels y ↦ C−1−y",
              parameters: [], examples: ["labelflip"]) { spec throws(AggregationError) in
            try spec.checkKeys([])
            return LabelFlipAttack()
        },
        Entry(name: "ipm", aliases: ["empire"],
              summary: "inner-product manipulation −eps·μ_honest (Xie et al.; paper: eps=0.1)",
              parameters: ["eps: the scale ε"], examples: ["ipm"]) { spec throws(AggregationError) in
            try spec.checkKeys(["eps"])
            return IPMAttack(epsilon: try finite(spec, "eps", default: 0.1))
        },
        Entry(name: "alie", aliases: ["little"],
              summary: "a little is enough μ − z·σ, σ with ddof=1 (paper: z=1; z=auto:"
                  + " Baruch et al.'s z from n, f)",
              parameters: ["z: a number, or auto for Φ⁻¹((n−f−s)/(n−f)), s = ⌊n/2+1⌋−f"],
              examples: ["alie", "alie:z=auto"]) { spec throws(AggregationError) in
            try spec.checkKeys(["z"])
            if spec.value("z")?.lowercased() == "auto" { return ALIEAttack(z: .auto) }
            return ALIEAttack(z: .fixed(try finite(spec, "z", default: 1)))
        },
        Entry(name: "mimic", aliases: [],
              summary: "copy one honest worker: fixed index, or chosen by Karimireddy et al.'s heuristic",
              parameters: ["mode: fixed or heuristic", "target: honest index to copy (mode=fixed)",
                           "warmup: rounds spent learning the direction, 1...10000000 (mode=heuristic)"],
              examples: ["mimic", "mimic:mode=heuristic"]) { spec throws(AggregationError) in
            try spec.checkKeys(["mode", "target", "warmup"])
            switch spec.value("mode")?.lowercased() ?? "fixed" {
            case "fixed":
                guard spec.value("warmup") == nil else {
                    throw AggregationError("'mimic': warmup applies to mode=heuristic only")
                }
                return MimicAttack(target: try integer(spec, "target", default: 0,
                    in: 0...(SpecExpression.inputBound - 1)))
            case "heuristic":
                guard spec.value("target") == nil else {
                    throw AggregationError("'mimic': mode=heuristic chooses its own target;"
                        + " target applies to mode=fixed")
                }
                return MimicHeuristicAttack(warmup: try integer(spec, "warmup", default: 1, in: 1...10_000_000))
            case let other:
                throw AggregationError("'mimic': mode=\(DisplayText.quoted(other)) is not one of fixed, heuristic")
            }
        },
        Entry(name: "inf", aliases: ["infinity"],
              summary: "every coordinate +∞", parameters: [], examples: ["inf"]) { spec throws(AggregationError) in
            try spec.checkKeys([])
            return InfAttack()
        },
        Entry(name: "nan", aliases: [],
              summary: "every coordinate NaN", parameters: [], examples: ["nan"]) { spec throws(AggregationError) in
            try spec.checkKeys([])
            return NaNAttack()
        },
        Entry(name: "ipm-opt", aliases: ["optimal-ipm", "opt-ipm"],
              summary: "IPM −τ·μ with τ line-searched against the server's rule (ByzFL Optimal_IPM)",
              parameters: lineSearchParameters, examples: ["ipm-opt"]) { spec throws(AggregationError) in
            OptimalIPMAttack(search: try lineSearch(spec))
        },
        Entry(name: "alie-opt", aliases: ["optimal-alie", "opt-alie"],
              summary: "ALIE μ − τ·σ with τ line-searched against the server's rule (ByzFL Optimal_ALIE)",
              parameters: lineSearchParameters, examples: ["alie-opt"]) { spec throws(AggregationError) in
            OptimalALIEAttack(search: try lineSearch(spec))
        },
        Entry(name: "minmax", aliases: ["min-max"],
              summary: "μ − γ·u with the largest γ keeping every honest message within the honest diameter"
                  + " (Shejwalkar & Houmansadr, NDSS 2021)",
              parameters: minMaxParameters, examples: ["minmax"]) { spec throws(AggregationError) in
            try minMax(spec, criterion: .maxDistance)
        },
        Entry(name: "minsum", aliases: ["min-sum"],
              summary: "μ − γ·u with the largest γ keeping Σ‖v − hᵢ‖² within the honest sums of"
                  + " squared distances (NDSS 2021)",
              parameters: minMaxParameters
                  + ["bound: min (NDSS code) or max (the paper, FLPoison) over i of Σⱼ‖hᵢ − hⱼ‖²"],
              examples: ["minsum"]) { spec throws(AggregationError) in
            try spec.checkKeys(["dev", "ddof", "gamma", "tol", "bound"])
            let text = spec.value("bound")?.lowercased() ?? "min"
            guard let bound = MinMaxAttack.SumBound(rawValue: text) else {
                throw AggregationError("'minsum': bound=\(DisplayText.quoted(text)) is not one of min, max")
            }
            return try minMax(spec, criterion: .sumOfSquares(bound))
        },
        Entry(name: "fang-krum", aliases: ["fangkrum"],
              summary: "−λ·sign(μ) with λ halved from Fang et al.'s bound until Krum picks it (USENIX"
                  + " Security 2020, full knowledge)",
              parameters: ["start: bound (the paper's λ₀) or a first λ > 0",
                  "threshold: halving stops below it, > 0"],
              examples: ["fang-krum"]) { spec throws(AggregationError) in
            try spec.checkKeys(["start", "threshold"])
            let threshold = try finite(spec, "threshold", default: 1e-5)
            guard threshold > 0 else { throw AggregationError("'fang-krum': threshold=\(threshold) must be > 0") }
            guard let text = spec.value("start"), text.lowercased() != "bound" else {
                return FangKrumAttack(start: .bound, threshold: threshold)
            }
            let first = try finite(spec, "start", default: 1)
            guard first > 0 else {
                throw AggregationError("'fang-krum': start=\(DisplayText.quoted(text)) must be bound or a number > 0")
            }
            return FangKrumAttack(start: .fixed(first), threshold: threshold)
        },
        Entry(name: "fang-trmean", aliases: ["fangtrmean", "fang-median"],
              summary: "per coordinate, uniform beyond the honest extreme against the mean's sign (Fang et"
                  + " al. 2020, trimmed mean/median)",
              parameters: ["b: how far beyond the extreme, > 1 (paper: 2)"],
              examples: ["fang-trmean"]) { spec throws(AggregationError) in
            try spec.checkKeys(["b"])
            let b = try finite(spec, "b", default: 2)
            guard b > 1, b <= 1e6 else { throw AggregationError("'fang-trmean': b=\(b) must be in (1, 1e6]") }
            return FangTrimmedMeanAttack(b: b)
        },
    ]

    /// The canonical names, in catalogue order.
    public static var names: [String] { entries.map(\.name) }

    /// The entry for a canonical name or alias (case-insensitive).
    public static func entry(named name: String) -> Entry? {
        let key = name.lowercased()
        return entries.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// Parses `spec` (e.g. `alie:z=auto`) into an attack.
    public static func makeAttack(_ spec: String) throws(AggregationError) -> any Attack {
        let parsed = try ComponentSpec.parse(spec)
        guard let entry = entry(named: parsed.name) else {
            throw AggregationError("unknown attack '\(parsed.name)': known attacks are "
                + "\(names.joined(separator: ", "))")
        }
        return try entry.make(parsed)
    }

    /// The catalogue for a front end's help: one line per attack with its aliases and defaults, then
    /// its parameters (the front end writes the heading).
    public static var helpText: String {
        // Same layout as AggregatorCatalogue.helpText: the spec with its defaults, then the summary.
        entries.map { entry in
            let aliases = entry.aliases.isEmpty ? "" : " (also: \(entry.aliases.joined(separator: ", ")))"
            let defaults = entry.examples.compactMap { try? makeAttack($0).spec }.joined(separator: " | ")
            var lines = ["  \(defaults)"] + AggregatorCatalogue.helpLines(entry.summary + aliases, indent: 6)
            lines += entry.parameters.flatMap { AggregatorCatalogue.helpLines($0, indent: 6) }
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    // MARK: Parameter parsing

    private static let lineSearchParameters = [
        "evals: number of evaluations, 1...1000", "start: first τ", "delta: initial step ≠ 0",
        "ratio: contraction ratio in (0.5, 1)",
    ]

    private static let minMaxParameters = [
        "dev: std (σ, NDSS CIFAR-10), sign (sign(μ), NDSS FEMNIST) or unit (μ/‖μ‖, FLPoison)",
        "ddof: 1 (torch) or 0 (numpy), dev=std only", "gamma: γ_init of the search, in (0, 1e9]",
        "tol: the search's stopping width τ, in [1e-12, gamma)",
    ]

    private static func minMax(_ spec: ComponentSpec,
        criterion: MinMaxAttack.Criterion) throws(AggregationError) -> MinMaxAttack {
        if criterion == .maxDistance { try spec.checkKeys(["dev", "ddof", "gamma", "tol"]) }
        let deviation: MinMaxAttack.Deviation
        switch spec.value("dev")?.lowercased() ?? "std" {
        case "std": deviation = .std(ddof: try integer(spec, "ddof", default: 1, in: 0...1))
        case let other:
            guard spec.value("ddof") == nil else {
                throw AggregationError("'\(spec.name)': ddof applies to dev=std only")
            }
            switch other {
            case "sign": deviation = .sign
            case "unit": deviation = .unit
            default: throw AggregationError("'\(spec.name)': dev=\(other) is not one of std, sign, unit")
            }
        }
        let gamma = try finite(spec, "gamma", default: 10)
        guard gamma > 0, gamma <= 1e9 else {
            throw AggregationError("'\(spec.name)': gamma=\(gamma) must be in (0, 1e9]")
        }
        let tol = try finite(spec, "tol", default: 1e-5)
        guard tol >= 1e-12, tol < gamma else {
            throw AggregationError("'\(spec.name)': tol=\(tol) must be in [1e-12, gamma)")
        }
        return MinMaxAttack(criterion: criterion, deviation: deviation,
            search: MinMaxSearch(initial: gamma, tolerance: tol))
    }

    private static func lineSearch(_ spec: ComponentSpec) throws(AggregationError) -> LineMaximizer {
        try spec.checkKeys(["evals", "start", "delta", "ratio"])
        let defaults = LineMaximizer()
        let evals = try integer(spec, "evals", default: defaults.evaluations, in: 1...1_000)
        let delta = try finite(spec, "delta", default: defaults.delta)
        guard delta != 0 else { throw AggregationError("'\(spec.name)': delta must not be 0") }
        let ratio = try finite(spec, "ratio", default: defaults.ratio)
        guard ratio > 0.5, ratio < 1 else {
            throw AggregationError("'\(spec.name)': ratio=\(ratio) must be in (0.5, 1)")
        }
        return LineMaximizer(evaluations: evals, start: try finite(spec, "start", default: defaults.start),
                             delta: delta, ratio: ratio)
    }

    /// Parameter `key` as a finite number.
    private static func finite(_ spec: ComponentSpec, _ key: String,
        default def: Double) throws(AggregationError) -> Double {
        let value = try spec.double(key, default: def)
        guard value.isFinite else { throw AggregationError("'\(spec.name)': \(key)=\(value) must be finite") }
        return value
    }

    /// Parameter `key` as an integer in `range` (bounded: evaluations loop, and counts are kept in
    /// states as Doubles, exact below 2⁵³).
    private static func integer(_ spec: ComponentSpec, _ key: String, default def: Int,
        in range: ClosedRange<Int>) throws(AggregationError) -> Int {
        guard let text = spec.value(key) else { return def }
        guard let value = Int(text), range.contains(value) else {
            throw AggregationError("'\(spec.name)': \(key)=\(DisplayText.quoted(text)) must be an integer in "
                + "\(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
