import DesgdNumerics
import DesgdRecording
import DesgdSimulation
import DesgdTrace
import Foundation

/// A grid of recorded trainings: methods × attacks × seeds, each cell one `desgd-record` run.
///
/// A spec is a small JSON document (``GridSpec/decode(_:)``), or one of the built-in grids
/// (``GridSpec/builtin(_:)``: the paper's Table I and Table II, and the reduced reproduction that
/// fits a 2-core machine). Options are `desgd-record`'s own, written as on its command line, so
/// every cell is a command a user can run by hand, and they are parsed by the one parser of
/// simulation options, `desgd-record`'s, which the front end hands to ``GridPlan`` (a
/// ``SimulationOptionsParser``):
///
/// ```json
/// {
///   "name": "krum-vs-desgd",
///   "options": "--preset paper --rounds 600",
///   "seeds": [1, 2, 3],
///   "methods": [
///     {"label": "Krum",  "options": "--mode sgd --agg krum:q=n-f-1"},
///     {"label": "Krum+", "options": "--mode desgd --agg krum:q=n-f-1"}
///   ],
///   "attacks": [{"label": "Sign-Flip", "spec": "signflip"}, {"label": "ALIE", "spec": "alie"}]
/// }
/// ```
///
/// A cell's options are the grid's `options`, then the method's (a later option wins), then
/// `--attack SPEC --seed S`. Without `blocks` the grid is every method × every attack; `blocks`
/// lists sub-grids instead (a cell named twice is run once). Labels name the rows and columns of
/// the report: the paper's labels ("Krum+", "Sign-Flip", "M-Krum + Bucketing") put the published
/// number beside the measured one. `reference` names the method whose no-attack cell the accuracy
/// drops of Table II are measured against.
public struct GridSpec: Sendable, Codable, Equatable {
    public struct Method: Sendable, Codable, Equatable {
        public var label: String
        public var options: String
        public init(_ label: String, _ options: String) { (self.label, self.options) = (label, options) }
    }

    public struct Attack: Sendable, Codable, Equatable {
        public var label: String
        public var spec: String
        public init(_ label: String, _ spec: String) { (self.label, self.spec) = (label, spec) }
    }

    /// A sub-grid: these methods × these attacks.
    public struct Block: Sendable, Codable, Equatable {
        public var methods: [String]
        public var attacks: [String]
        public init(methods: [String], attacks: [String]) { (self.methods, self.attacks) = (methods, attacks) }
    }

    /// The cell against which Table II's accuracy drops are measured.
    public struct Reference: Sendable, Codable, Equatable {
        public var method: String
        public var attack: String
    }

    public var name: String
    public var description: String?
    /// `desgd-record` options shared by every cell.
    public var options: String
    /// What each cell's trace stores (`desgd-record --record`); ``GridDefaults/recording`` when
    /// the spec does not say.
    public var record: String
    public var seeds: [UInt64]
    public var methods: [Method]
    public var attacks: [Attack]
    public var blocks: [Block]?
    public var reference: Reference?

    public init(name: String, description: String? = nil, options: String, record: String = GridDefaults.recording,
                seeds: [UInt64], methods: [Method], attacks: [Attack], blocks: [Block]? = nil,
                reference: Reference? = nil) {
        self.name = name
        self.description = description
        self.options = options
        self.record = record
        self.seeds = seeds
        self.methods = methods
        self.attacks = attacks
        self.blocks = blocks
        self.reference = reference
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, options, record, seeds, methods, attacks, blocks, reference
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        options = try c.decodeIfPresent(String.self, forKey: .options) ?? ""
        record = try c.decodeIfPresent(String.self, forKey: .record) ?? GridDefaults.recording
        seeds = try c.decodeIfPresent([UInt64].self, forKey: .seeds) ?? [1]
        methods = try c.decode([Method].self, forKey: .methods)
        attacks = try c.decode([Attack].self, forKey: .attacks)
        blocks = try c.decodeIfPresent([Block].self, forKey: .blocks)
        reference = try c.decodeIfPresent(Reference.self, forKey: .reference)
    }

    /// Parses a spec, refusing unknown keys (a misspelt `"seed"` must not silently mean seed 1).
    public static func decode(_ data: Data, source: String = "the grid spec") throws(GridError) -> GridSpec {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw GridError("\(source) is not valid JSON (\(error.localizedDescription)); see"
                + " desgd-grid spec paper for an example")
        }
        guard let top = object as? [String: Any] else { throw GridError("\(source) must be a JSON object") }
        try checkKeys(top, allowed: CodingKeys.allCases.map(\.rawValue), what: "the grid", source: source)
        for (key, allowed) in [("methods", ["label", "options"]), ("attacks", ["label", "spec"]),
            ("blocks", ["methods", "attacks"])] {
            for entry in top[key] as? [Any] ?? [] {
                guard let e = entry as? [String: Any] else {
                    throw GridError("\(source): every entry of \"\(key)\" must be an object")
                }
                try checkKeys(e, allowed: allowed, what: "an entry of \"\(key)\"", source: source)
            }
        }
        if let r = top["reference"] as? [String: Any] {
            try checkKeys(r, allowed: ["method", "attack"], what: "\"reference\"", source: source)
        }
        do { return try JSONDecoder().decode(GridSpec.self, from: data) } catch let e as DecodingError {
            throw GridError("\(source): \(GridSpec.describe(e))")
        } catch { throw GridError("\(source): \(error.localizedDescription)") }
    }

    /// Reads a spec file, or a built-in grid by name.
    public static func load(_ nameOrPath: String) throws(GridError) -> GridSpec {
        if let builtin = builtin(nameOrPath) { return builtin }
        guard FileManager.default.fileExists(atPath: nameOrPath) else {
            throw GridError("no grid spec file \(nameOrPath) and no built-in grid of that name (built-in: "
                + "\(builtinNames.joined(separator: ", ")))")
        }
        guard let data = FileManager.default.contents(atPath: nameOrPath) else {
            throw GridError("cannot read \(nameOrPath)")
        }
        return try decode(data, source: nameOrPath)
    }

    /// The spec as pretty JSON with sorted keys (what `desgd-grid spec` prints and the grid
    /// directory keeps as `grid.json`).
    public func json() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data()
    }

    static func checkKeys(_ object: [String: Any], allowed: [String], what: String, source: String) throws(GridError) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            throw GridError("\(source): unknown key \"\(key)\" in \(what) (allowed: "
                + "\(allowed.joined(separator: ", ")))")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String {
            c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing key \"\(k.stringValue)\" at "
            + "\(path(ctx.codingPath).isEmpty ? "the top" : path(ctx.codingPath))"
        case .typeMismatch(_, let ctx),
            .valueNotFound(_, let ctx): return "wrong type at \(path(ctx.codingPath)): \(ctx.debugDescription)"
        case .dataCorrupted(let ctx): return ctx.debugDescription
        @unknown default: return "\(e)"
        }
    }
}

/// How a grid records its cells unless told otherwise: the one place to change the defaults (the
/// spec's `record`, `desgd-grid run|slurm --keyframe-every` and `--checkpoint-every` override them).
public enum GridDefaults {
    /// What each cell's trace stores: `sampled:100` (every vector of every 100th round, decisions
    /// and metrics of all), since a full trace of a 3 000-round lenet run holds about 30 GB of vectors.
    public static let recording = "sampled:100"
    /// A keyframe of the model every this many rounds; nil: `desgd-record`'s default for the cell
    /// (``TraceRecorder/defaultKeyframeInterval(mode:checkpointInterval:rounds:)``: 100, or only the
    /// first and last round of a `decisions` trace with checkpoints).
    public static let keyframeInterval: Int? = nil
    /// A state checkpoint every this many rounds; nil: each cell's own, the interval
    /// `desgd-record` gives its options (the preset's: 500 rounds of a paper run, 50 of a quick
    /// one), so that a cell's trace is the one its command line records and an interrupted cell
    /// resumes from at most that many rounds back (``GridRunner``).
    public static let checkpointInterval: Int? = nil
}

/// The one parser of simulation options (`desgd-record`'s, in the command-line layer), handed to
/// ``GridPlan`` by the front end so that this library parses no command line itself: a cell's
/// option words give its configuration and the checkpoint interval `desgd-record` records them
/// with (its preset's). Every error is a ``SimulationError`` of one line naming the option.
public typealias SimulationOptionsParser = @Sendable ([String]) throws(SimulationError) -> (config: SimulationConfig,
    checkpointInterval: Int)

/// A grid error: one line naming the problem and what to do (exit code 2 in `desgd-grid`).
public struct GridError: Error, Sendable, Equatable, CustomStringConvertible {
    public var explanation: Explanation
    public init(_ explanation: Explanation) { self.explanation = explanation }
    /// The text for a caller without a command line (the command-line layer renders ``explanation``).
    public var message: String { explanation.description }
    public var description: String { message }
}

/// One run of a grid: a method under an attack with a seed.
public struct GridCell: Sendable, Equatable {
    /// Position in the grid (blocks in order, then methods, attacks, seeds): the Slurm array index.
    public var index: Int
    public var method: String
    public var attack: String
    public var seed: UInt64
    /// The `desgd-record` options of this run (without `--out`, `--record` and `--threads`).
    public var arguments: [String]
    /// The configuration, with `threads` = 1 (results do not depend on it; runners set their own).
    public var config: SimulationConfig
    /// The state checkpoint interval `desgd-record` records these options with (their preset's),
    /// the cell's unless a runner is given another (``GridDefaults/checkpointInterval``).
    public var checkpointInterval: Int
    /// `Method__Attack__seedS`, file-safe: the cell's trace is `<stem>.trace` in the grid directory.
    public var stem: String

    public var traceName: String { stem + ".trace" }

    /// The `desgd-record` command line that records this cell by hand.
    public func commandLine(out: String, record: String) -> String {
        (["desgd-record"] + arguments + ["--record", record, "--out", out]).map(GridCell.shellQuoted)
            .joined(separator: " ")
    }

    static func shellQuoted(_ s: String) -> String {
        s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_=:.,/+".contains($0)) } ? s
            : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// A spec expanded into its cells, every cell's options parsed and checked.
public struct GridPlan: Sendable {
    public let spec: GridSpec
    /// The grid's cells, or those of ``restricted(to:)``; each keeps its index in the whole grid.
    public let cells: [GridCell]
    public let recording: RecordingMode
    /// The number of cells of the whole grid (``cells`` may be a selection of them).
    public let gridCellCount: Int

    /// Options a grid may not set per cell: the grid sets them itself.
    static let reservedOptions = ["--attack": "attacks", "--seed": "seeds", "--threads": "desgd-grid run --threads"]

    /// `parse` is the one parser of simulation options (``SimulationOptionsParser``).
    public init(spec: GridSpec, parse: SimulationOptionsParser) throws(GridError) {
        self.spec = spec
        let name = spec.name
        guard !name.isEmpty, !name.hasPrefix("."), TracePaths.fileSafe(name) == name else {
            throw GridError("grid name \"\(name)\" must use only letters, digits, '.', '-' and '_', and not start with"
                + " '.' (it names the grid's directory)")
        }
        do { recording = try RecordingMode.parse(spec.record) } catch {
            throw GridError("grid \(name): \(error.explanation)")
        }
        guard !spec.seeds.isEmpty else { throw GridError("grid \(name) lists no seeds") }
        guard Set(spec.seeds).count == spec.seeds.count else { throw GridError("grid \(name) lists a seed twice") }
        guard !spec.methods.isEmpty, !spec.attacks.isEmpty else {
            throw GridError("grid \(name) needs at least one method and one attack")
        }
        var stems: [String: String] = [:]
        for (kind, labels) in [("method", spec.methods.map(\.label)), ("attack", spec.attacks.map(\.label))] {
            var seen = Set<String>()
            for l in labels {
                guard !l.isEmpty, !l.contains("\n") else {
                    throw GridError("grid \(name): a \(kind) label is empty or spans lines")
                }
                guard seen.insert(l).inserted else {
                    throw GridError("grid \(name): the \(kind) label \"\(l)\" is used twice")
                }
                let s = TracePaths.fileSafe(l, keeping: ["+"])
                if let other = stems[kind + s], other != l {
                    throw GridError("grid \(name): the \(kind) labels \"\(other)\" and \"\(l)\" give the"
                        + " same file name \(s); rename one")
                }
                stems[kind + s] = l
            }
        }
        let base = GridPlan.words(spec.options)
        if let (w, by) = GridPlan.reserved(in: base) {
            throw GridError("grid \(name): \"options\" may not contain \(w) (set by the grid: \(by))")
        }
        let blocks = spec.blocks
            ?? [GridSpec.Block(methods: spec.methods.map(\.label), attacks: spec.attacks.map(\.label))]
        var cells: [GridCell] = []
        var seen = Set<String>()  // method, attack, seed
        var files: [String: String] = [:]  // stem → the cell that has it
        for block in blocks {
            for m in block.methods {
                guard let method = spec.methods.first(where: { $0.label == m }) else {
                    throw GridError("grid \(name): a block names the method \"\(m)\", which"
                        + " \"methods\" does not define")
                }
                let methodWords = GridPlan.words(method.options)
                if let (w, by) = GridPlan.reserved(in: methodWords) {
                    throw GridError("grid \(name), method \(m): its options may not contain "
                        + "\(w) (set by the grid: \(by))")
                }
                for a in block.attacks {
                    guard let attack = spec.attacks.first(where: { $0.label == a }) else {
                        throw GridError("grid \(name): a block names the attack \"\(a)\", which"
                            + " \"attacks\" does not define")
                    }
                    for seed in spec.seeds {
                        guard seen.insert("\(m)\u{0}\(a)\u{0}\(seed)").inserted else { continue }
                        let stem = [TracePaths.fileSafe(m, keeping: ["+"]), TracePaths.fileSafe(a, keeping: ["+"]),
                            "seed\(seed)"]
                            .joined(separator: "__")
                        if let other = files[stem] {
                            throw GridError("grid \(name): \(other) and \(m) under \(a) would share the file "
                                + "\(stem).trace; rename a label")
                        }
                        files[stem] = "\(m) under \(a)"
                        let arguments = base + methodWords + ["--attack", attack.spec, "--seed", "\(seed)"]
                        var parsed: (config: SimulationConfig, checkpointInterval: Int)
                        do { parsed = try parse(arguments) } catch {
                            throw GridError("grid \(name), \(m) under \(a): \(error.explanation)")
                        }
                        parsed.config.threads = 1
                        cells.append(GridCell(index: cells.count, method: m, attack: a, seed: seed,
                                              arguments: arguments,
                                              config: parsed.config, checkpointInterval: parsed.checkpointInterval,
                                              stem: stem))
                    }
                }
            }
        }
        if let r = spec.reference {
            guard cells.contains(where: { $0.method == r.method && $0.attack == r.attack }) else {
                throw GridError("grid \(name): the reference \(r.method) under \(r.attack) is not a cell of the grid")
            }
        }
        self.cells = cells
        gridCellCount = cells.count
    }

    /// The cells with these indices (as `desgd-grid status` lists them), in the order given; all
    /// when `only` is nil.
    public func select(_ only: [Int]?) throws(GridError) -> [GridCell] {
        guard let only else { return cells }
        return try only.map { i throws(GridError) in
            guard let cell = cells.first(where: { $0.index == i }) else {
                throw GridError("\(Setting.gridCell) must be in 0...\(gridCellCount - 1), the cells of"
                    + " grid \(spec.name) (got \(i))")
            }
            return cell
        }
    }

    /// The same grid reduced to the cells with these indices (each once, in grid order), e.g.
    /// to report a block that was added to a grid whose other cells ran elsewhere.
    public func restricted(to only: [Int]) throws(GridError) -> GridPlan {
        let chosen = Set(try select(only).map(\.index))
        return GridPlan(spec: spec, cells: cells.filter { chosen.contains($0.index) }, recording: recording,
            gridCellCount: gridCellCount)
    }

    private init(spec: GridSpec, cells: [GridCell], recording: RecordingMode, gridCellCount: Int) {
        (self.spec, self.cells, self.recording, self.gridCellCount) = (spec, cells, recording, gridCellCount)
    }

    /// The first reserved option among `words` (also as `--seed=3`), with what sets it.
    static func reserved(in words: [String]) -> (String, String)? {
        for w in words {
            let name = String(w.split(separator: "=", maxSplits: 1).first ?? Substring(w))
            if let by = reservedOptions[name] { return (name, by) }
        }
        return nil
    }

    static func words(_ options: String) -> [String] {
        options.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
    }
}
