import DesgdNumerics
import DesgdRobust

/// Short labels for rules in the text tables of replay and audit (docs/commands.md): a canonical
/// spec such as `geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean` is shown as `geomed`, a pipeline
/// as its stages' names (`bucketing+krum`), and specs that share a label are numbered in order
/// (`geomed#1`, `geomed#2`). A legend, printed once, maps each label to its full spec. CSV and
/// JSON keep the full specs.
public struct RuleLabels: Sendable, Equatable {
    /// The specs in the order they were given, and their labels.
    public let specs: [String]
    public let labels: [String]

    /// Labels longer than this are cut (with `…`) before they are numbered.
    static let longestBase = 16

    public init(_ specs: [String] = []) {
        var unique: [String] = []
        for s in specs where !unique.contains(s) { unique.append(s) }
        let bases = unique.map(RuleLabels.base)
        var counts: [String: Int] = [:], seen: [String: Int] = [:]
        for b in bases { counts[b, default: 0] += 1 }
        self.specs = unique
        self.labels = bases.map { b in
            guard counts[b]! > 1 else { return b }
            seen[b, default: 0] += 1
            return "\(b)#\(seen[b]!)"
        }
    }

    /// The label of `spec`; a spec not given at init gets its unnumbered base label.
    public func label(_ spec: String) -> String {
        specs.firstIndex(of: spec).map { labels[$0] } ?? RuleLabels.base(spec)
    }

    /// The widest label (at least 4, the width of the header "rule").
    public var width: Int { max(4, labels.map(\.count).max() ?? 0) }

    /// The stage names of a spec joined by `+`, a pre-aggregator by its shortest name (`bucket`):
    /// `+` inside a parameter expression (`q=n-f+1`) is not a stage, since every stage starts with
    /// a name from the catalogue. A spec without a known name (a hostile header) is shown by its
    /// escaped start.
    static func base(_ spec: String) -> String {
        var short: [String: String] = [:]
        for e in AggregatorCatalogue.rules { for n in [e.name] + e.aliases { short[n] = e.name } }
        for e in AggregatorCatalogue.preAggregators {
            let shortest = ([e.name] + e.aliases).min { ($0.count, $0) < ($1.count, $1) }!
            for n in [e.name] + e.aliases { short[n] = shortest }
        }
        let names = spec.split(separator: "+", omittingEmptySubsequences: false).compactMap { stage -> String? in
            short[String(stage.prefix { $0 != ":" })]
        }
        let text = names.isEmpty ? DisplayText.escaped(String(spec.prefix { $0 != ":" })) : names.joined(separator: "+")
        let cut = text.count > longestBase ? String(text.prefix(longestBase - 1)) + "…" : text
        return cut.isEmpty ? "rule" : cut
    }

    /// The legend: one line per label with its full spec, specs longer than the line wrapped after a
    /// `,` or `+`, every line at most `width` characters when the spec's pieces allow it. `marks`
    /// adds a note after a spec (e.g. "(recorded)").
    public func legend(title: String = "Rules (label: canonical spec)", marks: [String: String] = [:],
                       width: Int = TextFormat.lineWidth) -> [String] {
        guard !specs.isEmpty else { return [] }
        let column = self.width + 4
        var out = [title]
        for (spec, label) in zip(specs, labels) {
            let lead = "  " + label + String(repeating: " ", count: column - 2 - label.count)
            let text = DisplayText.escaped(spec) + (marks[spec].map { " " + $0 } ?? "")
            // Only a spec of the catalogue's characters is broken: one from a hostile header could
            // otherwise start a line with text of its choosing.
            let catalogue = "0123456789=,:+-*/()._".unicodeScalars
            let plain = spec.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || catalogue.contains($0))
            }
            guard plain else {
                out.append(TextFormat.withoutTrailingWhitespace(lead + text))
                continue
            }
            var pieces: [String] = [], piece = ""
            for ch in text {
                piece.append(ch)
                if ch == "," || ch == "+" || ch == " " {
                    pieces.append(piece)
                    piece = ""
                }
            }
            if !piece.isEmpty { pieces.append(piece) }
            var line = lead
            for p in pieces {
                if TextFormat.length(line) + TextFormat.length(p) > width && line.count > column {
                    out.append(TextFormat.withoutTrailingWhitespace(line))
                    line = String(repeating: " ", count: column)
                }
                line += p
            }
            out.append(TextFormat.withoutTrailingWhitespace(line))
        }
        return out
    }
}
