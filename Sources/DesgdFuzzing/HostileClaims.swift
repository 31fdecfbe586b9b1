import DesgdNumerics
import DesgdTrace
import Foundation

/// The mutations of what a hostile writer claims rather than breaks: strings that a parser reads
/// made deeply nested or very long, headers that claim large shapes (kept consistent, so that they
/// pass the reader and reach what allocates from them), and checkpoint states holding values no
/// run produces (traces/FORMAT.md §6). Every digest is recomputed afterwards, as in
/// ``TraceMutator/mutate(_:)``.
extension TraceMutator {
    /// The deepest nesting the mutator writes into a spec: far past the parser's bounds (traces/FORMAT.md
    /// §5.1: 1 024 bytes a spec, 64 levels an expression), which must refuse it without recursing.
    public static let nestingCap = 30_000

    /// Run lengths of the long strings (100 000 characters: far beyond any spec).
    static let runLengths = [64, 1_000, 30_000, 100_000]

    /// Characters a spec parser treats specially, and ordinary ones.
    static let runCharacters: [Character] = ["(", ")", "-", "+", ",", ":", "=", "n", "f", "0", "9", ".", "e", " ",
                                             "\\", "\"", "é"]

    /// A string a parser reads, made hostile: a long run of one character (alone, after the
    /// original, or inside it), or a nesting of parentheses around an expression.
    mutating func hostileString(from original: String) -> String {
        let length = Self.runLengths[random.nextInt(below: Self.runLengths.count)]
        let c = Self.runCharacters[random.nextInt(below: Self.runCharacters.count)]
        let run = String(repeating: c, count: length)
        switch random.nextInt(below: 5) {
        case 0: return run
        case 1: return original + run
        case 2:
            let cut = original.index(original.startIndex, offsetBy: random.nextInt(below: original.count + 1))
            return String(original[..<cut]) + run + String(original[cut...])
        default:
            let depth = min(length, Self.nestingCap)
            let head = original.split(separator: ":").first.map(String.init) ?? "krum"
            let inner = ["n", "n-f", "f+1", "2*f", "n/2", ""][random.nextInt(below: 6)]
            let key = ["q", "tau", "z", "eps", "iters", "k"][random.nextInt(below: 6)]
            let open = String(repeating: "(", count: depth), close = String(repeating: ")", count: depth)
            return "\(head):\(key)=" + open + inner + close
        }
    }

    /// (a) One string of a header that a parser reads (the rule, pre-aggregators, attack, the
    /// schedule and mode, the recording mode, the spec echoes) made hostile.
    mutating func mutateSpecString(_ records: inout [Record]) {
        guard let k = records.firstIndex(where: { $0.type == RecordType.header.rawValue && $0.encoding == 1 }) else {
            return
        }
        Self.editJSON(&records, at: k) { json in hostileSpecString(&json) }
    }

    /// ``mutateSpecString(_:)`` on a header's parsed JSON.
    mutating func hostileSpecString(_ json: inout [String: Any]) {
        let configKeys = ["aggregator", "preAggregators", "attack", "schedule", "mode", "momentum", "model", "backend"]
        let topKeys = ["aggregator", "attack", "recording", "backend", "program", "format"]
        if random.nextInt(below: 3) != 0 {
            let key = configKeys[random.nextInt(below: configKeys.count)]
            guard var config = json["config"] as? [String: Any] else { return }
            config[key] = hostileString(from: config[key] as? String ?? "")
            json["config"] = config
        } else {
            let key = topKeys[random.nextInt(below: topKeys.count)]
            json[key] = hostileString(from: json[key] as? String ?? "")
        }
    }

    /// (b) A header claiming a large shape, kept consistent
    /// (``claimingShape(of:model:honest:byzantine:driftWindow:config:)``).
    mutating func mutateShape(_ bytes: [UInt8]) -> [UInt8]? {
        let honest = [11, 100, 1_000][random.nextInt(below: 3)]
        let byzantine = [0, 1, 40, 1_000][random.nextInt(below: 4)]
        let model: ModelArchitecture = random.nextInt(below: 4) == 0 ? .small : .lenet
        let window: Int? = [nil, 1, 1_000][random.nextInt(below: 3)]
        return Self.claimingShape(of: bytes, model: model, honest: honest, byzantine: byzantine,
                                  driftWindow: window) { config in
            switch self.random.nextInt(below: 6) {
            case 0: config["batchSize"] = 4_096
            case 1: config["classesPerRound"] = 10
            case 2: config["partition"] = ["labelSkew": ["classesPerWorker": 10]]
            case 3: config["data"] = ["synthetic": ["train": 100_000, "test": 100_000, "seed": 1]]
            default: break
            }
        }
    }

    /// (c) A checkpoint's rule, attack or drift state given a value no run produces: a scalar NaN,
    /// ±∞, huge, negative or fractional; many names aliasing one vector; a vector of another
    /// length; unknown names; negative counts.
    mutating func mutateCheckpointState(_ records: inout [Record]) {
        let candidates = records.indices.filter {
            records[$0].type == RecordType.checkpoint.rawValue && records[$0].encoding == 1
        }
        guard !candidates.isEmpty else { return }
        let k = candidates[random.nextInt(below: candidates.count)]
        Self.editJSON(&records, at: k) { json in hostileState(&json) }
    }

    /// ``mutateCheckpointState(_:)`` on a checkpoint's parsed JSON.
    mutating func hostileState(_ json: inout [String: Any]) {
        let scalars: [Any] = ["nan", "inf", "-inf", 1e300, -1e300, 9.3e18, -9.3e18, -1, 0.5, 1e15, Double(Int64.max)]
        do {
            let vectorCount = (json["vectors"] as? [Any])?.count ?? 0
            let which = ["aggregatorStates", "attackStates"][random.nextInt(below: 2)]
            guard var states = json[which] as? [[String: Any]], !states.isEmpty else { return }
            let g = random.nextInt(below: states.count)
            var state = states[g]
            var names = state["vectors"] as? [String: Any] ?? [:]
            var values = state["scalars"] as? [String: Any] ?? [:]
            switch random.nextInt(below: 7) {
            case 0, 1:
                let name = ["t", "target", "tau", "x"][random.nextInt(below: 4)]
                values[name] = scalars[random.nextInt(below: scalars.count)]
            case 2:
                // Many names for one vector: a decoder that copied per name would multiply memory.
                let count = [3, 1_000, 100_000][random.nextInt(below: 3)]
                let target = vectorCount > 0 ? random.nextInt(below: vectorCount) : 0
                for i in 0..<count { names["v\(i)"] = target }
            case 3:
                // Known names (mimic's, centered clipping's, FLTrust's) pointing at any vector,
                // of whatever length (a drift window term, a model-sized one, or none).
                for name in ["mu", "z", "centre", "reference"] where random.nextInt(below: 2) == 0 {
                    names[name] = vectorCount > 0 ? random.nextInt(below: vectorCount + 2) - 1 : -1
                }
            case 4:
                names.removeValue(forKey: names.keys.sorted().first ?? "")
                values.removeValue(forKey: values.keys.sorted().last ?? "")
            case 5:
                if var drift = json["drift"] as? [String: Any] {
                    let field = ["rounds", "differenceNorms"][random.nextInt(below: 2)]
                    drift[field] = ([-1, Int64.min, "nan", 1e300] as [Any])[random.nextInt(below: 4)]
                    if var groups = drift["groups"] as? [[String: Any]], !groups.isEmpty {
                        let i = random.nextInt(below: groups.count)
                        groups[i]["count"] = [-1, 0, Int64.max, -5][random.nextInt(below: 4)]
                        drift["groups"] = groups
                    }
                    json["drift"] = drift
                }
            default:
                // A vector table entry of another length under a state's name.
                if var table = json["vectors"] as? [[String: Any]], let i = names.values.first as? Int,
                   i >= 0, i < table.count {
                    table[i]["count"] = [0, 1, -1, 1 << 40][random.nextInt(below: 4)]
                    json["vectors"] = table
                }
            }
            state["vectors"] = names
            state["scalars"] = values
            states[g] = state
            json[which] = states
        }
    }

    /// A trace whose header claims `honest` honest and `byzantine` Byzantine workers on `model`
    /// (and drift window `driftWindow` when given), with a partition and groups consistent with
    /// those counts (honest worker w holds training sample w, of class w mod 10 as the partition
    /// says), every digest recomputed and the index and footer rebuilt: it opens, and everything
    /// that allocates from the header meets the claim. `config` changes further fields of the
    /// configuration. Nil when the header's JSON does not parse.
    public static func claimingShape(of bytes: [UInt8], model: ModelArchitecture, honest: Int, byzantine: Int,
                                     driftWindow: Int? = nil,
                                     config edit: (inout [String: Any]) -> Void = { _ in }) -> [UInt8]? {
        guard let shape = model.shape else { return nil }
        return editingJSON(of: bytes, type: .header) { json in
            guard var config = json["config"] as? [String: Any] else { return }
            let classes = 10
            config["honestWorkers"] = honest
            config["byzantineWorkers"] = byzantine
            config["model"] = model.rawValue
            edit(&config)
            json["config"] = config
            let layout = ParameterLayout(shape)
            json["model"] = ["architecture": model.rawValue, "parameterCount": layout.count,
                             "tensors": layout.tensors.map {
                                 ["name": $0.name, "offset": $0.offset, "shape": $0.shape] as [String: Any]
                             }]
            var partition = json["partition"] as? [String: Any] ?? [:]
            partition["samples"] = (0..<honest).map { w in (0..<classes).map { c in c == w % classes ? [w] : [Int]() } }
            json["partition"] = partition
            let byzantineIDs = Array(honest ..< honest + byzantine)
            if (config["mode"] as? String) == "sgd" {
                json["groups"] = [["classIndex": -1, "honestWorkers": Array(0..<honest),
                                   "byzantineWorkers": byzantineIDs] as [String: Any]]
            } else {
                json["groups"] = (0..<classes).map { c in
                    ["classIndex": c, "honestWorkers": Array(stride(from: c, to: honest, by: classes)),
                     "byzantineWorkers": byzantineIDs] as [String: Any]
                }
            }
            if let driftWindow { json["driftWindow"] = driftWindow }
            // Every honest worker holds a sample of its own: a synthetic set claims enough of them.
            if var data = config["data"] as? [String: Any], var synthetic = data["synthetic"] as? [String: Any],
               (synthetic["train"] as? Int ?? 0) < honest {
                synthetic["train"] = honest
                data["synthetic"] = synthetic
                config["data"] = data
                json["config"] = config
            }
        }
    }

    /// A live federation's trace on the clients' own model (format 1.6) whose header claims a model of
    /// `parameterCount` parameters (one tensor of that many elements, in `config.clients`, `model`
    /// and the engine's tensors alike), every digest recomputed and the index and footer rebuilt:
    /// the header validates and the file opens, while its records still hold the recorded model's
    /// vectors. What reads it allocates from the claim unless the memory limit stops it first
    /// (docs/bad-input.md). Nil when the header is not such a trace's.
    public static func claimingParameterCount(of bytes: [UInt8], _ parameterCount: Int) -> [UInt8]? {
        var found = false
        let out = editingJSON(of: bytes, type: .header) { json in
            guard var config = json["config"] as? [String: Any], var clients = config["clients"] as? [String: Any],
                  var engine = json["engine"] as? [String: Any], var model = json["model"] as? [String: Any]
            else { return }
            clients["parameterCount"] = parameterCount
            config["clients"] = clients
            json["config"] = config
            model["parameterCount"] = parameterCount
            model["tensors"] = [["name": "weight", "offset": 0, "shape": [parameterCount]] as [String: Any]]
            json["model"] = model
            engine["model"] = [["name": "weight", "shape": [parameterCount]] as [String: Any]]
            json["engine"] = engine
            found = true
        }
        return found ? out : nil
    }

    /// Record `k`'s JSON changed by `edit` in place (nothing when it does not parse).
    static func editJSON(_ records: inout [Record], at k: Int, _ edit: (inout [String: Any]) -> Void) {
        guard let body = decompress(records[k].payload), body.count >= 4 else { return }
        let length = jsonLength(body)
        guard length <= body.count - 4,
              let parsed = try? JSONSerialization.jsonObject(with: Data(body[4 ..< 4 + length])),
              var json = parsed as? [String: Any] else { return }
        edit(&json)
        guard let out = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) else { return }
        var newBody = ByteWriter()
        newBody.append(UInt32(truncatingIfNeeded: out.count))
        newBody.append([UInt8](out))
        newBody.append(Array(body[(4 + length)...]))
        records[k].payload = ZstdCompressor(level: 1).compress([newBody.bytes.withUnsafeBytes { $0 }])
    }
}
