import DesgdNumerics
import DesgdRobust
import DesgdSimulation

/// What a reader checks in the JSON of each record before anything uses it (FORMAT.md §6 item 8).
///
/// The header is checked against itself (the configuration goes through the same validation as
/// command-line input; the model, partition and groups must be the ones that configuration
/// implies), and every keyframe and round against the header: the class set is the schedule's,
/// each class is aggregated once, the senders are the group's, and every vector a field names
/// exists with the model's length. What passes here cannot make a consumer trap or allocate
/// beyond the body limit: that is the point, not thoroughness for its own sake.
extension TraceHeader {
    /// The number of training samples the partition may index.
    var trainingSampleCount: Int {
        switch config.data {
        case .fashionMNIST: 60_000
        case .synthetic(let train, _, _): train
        case .external: 0
        }
    }

    /// The honest workers and Byzantine workers that send in group `g`.
    func expectedSenders(group g: GroupInfo) -> [Sender] {
        g.honestWorkers.map { Sender(worker: $0, byzantine: false) }
            + g.byzantineWorkers.map { Sender(worker: $0, byzantine: true) }
    }

    public func validate(signature: TraceParsing.Signature) throws(ParseFailure) {
        guard format == "desgd-trace" else {
            throw ParseFailure("format is '\(DisplayText.quoted(format, limit: 40))', not desgd-trace")
        }
        guard formatVersion == [Int(signature.major), Int(signature.minor)] else {
            throw ParseFailure(
                "formatVersion \(formatVersion.prefix(3)) disagrees with the signature's "
                    + "\(signature.major).\(signature.minor)")
        }
        do { try config.validate() } catch { throw ParseFailure("config: \(error.explanation)") }
        try validateDataset()
        guard keyframeInterval >= 1 else {
            throw ParseFailure("keyframeInterval \(keyframeInterval) is not at least 1")
        }
        if let c = checkpointInterval, !TraceRecorder.checkpointIntervalRange.contains(c) {
            throw ParseFailure("checkpointInterval \(c) is outside \(TraceRecorder.checkpointIntervalRange)")
        }
        if let w = driftWindow, !(1...DriftTracker.maxWindow).contains(w) {
            throw ParseFailure("driftWindow \(w) is outside 1...\(DriftTracker.maxWindow)")
        }
        if driftRecent != nil {
            guard signature.major == 1 && signature.minor >= 4 else {
                throw ParseFailure(
                    "driftRecent appears in a file of format \(signature.major).\(signature.minor) (it is format 1.4)")
            }
            guard driftWindow != nil else { throw ParseFailure("driftRecent without a driftWindow") }
        }
        // A later numerics version is still a readable trace (only re-execution needs the same
        // arithmetic); the bound only keeps the number sane.
        if signature.major == 1 && signature.minor >= 2 && numerics == nil {
            throw ParseFailure("numerics is missing (required from format 1.2)")
        }
        if let v = numerics, !TraceHeader.numericsRange.contains(v) {
            throw ParseFailure("numerics \(v) is outside \(TraceHeader.numericsRange)")
        }

        if let fork {
            guard signature.major == 1 && signature.minor >= 3 else {
                throw ParseFailure(
                    "fork appears in a file of format \(signature.major).\(signature.minor) (forks are format 1.3)")
            }
            guard Self.isDigest(fork.parentDigest) else {
                throw ParseFailure("fork.parentDigest is not 64 lowercase hex digits")
            }
            guard fork.at >= 0 && fork.at < config.rounds else {
                throw ParseFailure("fork.at \(fork.at) is outside 0..<\(config.rounds) (the configured rounds)")
            }
            guard fork.parentFile.utf8.count <= ForkInfo.maximumText else {
                throw ParseFailure("fork.parentFile is longer than \(ForkInfo.maximumText) bytes")
            }
            guard fork.changes.count <= ForkInfo.maximumChanges else {
                throw ParseFailure("fork.changes has \(fork.changes.count) entries, above \(ForkInfo.maximumChanges)")
            }
            for (k, c) in fork.changes.enumerated()
            where [c.option, c.parent, c.fork].contains(where: { $0.utf8.count > ForkInfo.maximumText }) {
                throw ParseFailure("fork.changes[\(k)] has a text longer than \(ForkInfo.maximumText) bytes")
            }
        }

        if let engine { try validateEngine(engine, signature: signature) }

        try validateModel(signature: signature)
        try validatePartition()

        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let C = config.classes
        // The groups the simulator forms: one per class (its holders) in DeSGD, one of every honest worker otherwise.
        let byzantine = Array(n..<n + f)
        let pipeline = try? AggregatorCatalogue.makePipeline(rule: config.aggregator, pre: config.preAggregators)
        let attack = try? AttackCatalogue.makeAttack(config.attack)
        let holders = config.groupHolders(partition: partition)
        let expected: [(Int, [Int])] = config.mode == .desgd ? Array(zip(0..<C, holders)) : [(-1, holders[0])]
        guard groups.count == expected.count else {
            throw ParseFailure("groups: \(groups.count) groups, expected \(expected.count)")
        }
        for (g, (c, holders)) in zip(groups, expected) {
            let which = c >= 0 ? "group of class \(c)" : "the group"
            guard g.classIndex == c else { throw ParseFailure("groups: the \(which) says class \(g.classIndex)") }
            guard g.honestWorkers == holders else {
                throw ParseFailure("groups: the \(which)'s honest workers are not the partition's holders")
            }
            // The metrics compare with the honest mean: a group needs an honest sender.
            guard !holders.isEmpty else { throw ParseFailure("groups: the \(which) has no honest worker") }
            guard g.byzantineWorkers == byzantine else {
                throw ParseFailure("groups: the \(which)'s Byzantine workers are not \(n)..<\(n + f)")
            }
            // What the simulator requires of every aggregation before it runs (Simulation.init):
            // the replayed and verified rule may rely on it.
            if let r = pipeline?.requirement(n: holders.count + f, f: config.effectiveF) {
                throw ParseFailure("groups: the \(which) has \(holders.count) honest + \(f) Byzantine senders: \(r)")
            }
            if f > 0, let r = attack?.requirement(honest: holders.count, byzantine: f) {
                throw ParseFailure("groups: the \(which): \(r)")
            }
            if let b = g.resilienceBound, !(b.isFinite && b >= 0) {
                throw ParseFailure("groups: the \(which)'s resilienceBound \(b) is not a finite non-negative number")
            }
        }
    }

    /// The model is the configuration's architecture with its exact layout, or the clients' own
    /// (format 1.6): the engine's tensors, laid end to end, of the declared length.
    func validateModel(signature: TraceParsing.Signature) throws(ParseFailure) {
        guard let shape = config.model.shape else {
            guard signature.major == 1 && signature.minor >= 6 else {
                throw ParseFailure(
                    "config.model external appears in a file of format \(signature.major).\(signature.minor) "
                        + "(the clients' own model is format 1.6)")
            }
            guard let engine else {
                throw ParseFailure("config.model is external, but the header names no live engine")
            }
            guard model.architecture == .external, let clients = config.clients,
                model.parameterCount == clients.parameterCount,
                engine.model.count <= LiveEngine.maximumTensors, let layout = engine.tensorLayout,
                engine.parameterCount == clients.parameterCount, model.tensors == layout
            else {
                throw ParseFailure(
                    "model: the clients' model must be engine.model's tensors laid end to end, of "
                        + "config.clients.parameterCount values")
            }
            return
        }
        let layout = ParameterLayout(shape)
        guard model.architecture == config.model, model.parameterCount == layout.count else {
            throw ParseFailure(
                "model: \(model.architecture.rawValue) with \(model.parameterCount) parameters, but the "
                    + "configuration's \(config.model.rawValue) has \(layout.count)")
        }
        let expected = layout.tensors.map { TensorInfo(name: $0.name, offset: $0.offset, shape: $0.shape) }
        guard model.tensors == expected else {
            throw ParseFailure("model.tensors is not the layout of \(config.model.rawValue)")
        }
    }

    /// The partition: one row per honest worker, one list per class, indices of training samples, no
    /// sample twice; none at all when the clients declare their own holdings.
    func validatePartition() throws(ParseFailure) {
        let n = config.honestWorkers
        let C = config.classes
        guard (partition.scheme == .declared) == (config.partition == .declared), partition.classes == C else {
            throw ParseFailure("partition: not over the configuration's \(C) classes, or declared in one place only")
        }
        if config.partition == .declared {
            guard partition.samples.isEmpty else {
                throw ParseFailure(
                    "partition: the clients declare their holdings (config.clients); it holds no samples")
            }
            return
        }
        guard partition.workers == n, partition.samples.allSatisfy({ $0.count == C }) else {
            throw ParseFailure("partition: expected \(n) workers × \(C) classes")
        }
        let population = trainingSampleCount
        guard population >= 1 && population <= 1 << 24 else {
            throw ParseFailure("config.data: \(population) training samples is out of range")
        }
        var seen = [Bool](repeating: false, count: population)
        for (w, row) in partition.samples.enumerated() {
            for (c, list) in row.enumerated() {
                for i in list {
                    guard i >= 0 && i < population else {
                        throw ParseFailure(
                            "partition: worker \(w), class \(c) holds sample \(i), outside 0..<\(population)")
                    }
                    guard !seen[i] else { throw ParseFailure("partition: sample \(i) is held twice") }
                    seen[i] = true
                }
            }
        }
    }
}

/// Checks one vector reference of a record: in the table and with `count` elements.
func checkVector(_ i: Int?, _ what: String, table: [VectorEntry], count: Int?, required: Bool) throws(ParseFailure) {
    guard let i else {
        if required { throw ParseFailure("the \(what) is missing") }
        return
    }
    guard i >= 0 && i < table.count else {
        throw ParseFailure("the \(what) refers to vector \(i), but the record has \(table.count)")
    }
    if let count, table[i].count != count {
        throw ParseFailure("the \(what) has \(table[i].count) elements, the model \(count)")
    }
}

/// Checks a carried state: what it holds is what the rule or attack declares (`schema`: known names
/// only, so a file cannot alias one vector under many names; scalars finite, in range and integer
/// where they count), and every vector it names exists with the model's length.
func checkState(
    _ s: StoredState, _ what: String, table: [VectorEntry], d: Int,
    schema: StateSchema
) throws(ParseFailure) {
    let names = Array((s.vectors ?? [:]).keys)
    if let p = schema.problem(scalars: s.scalars, vectorNames: names, vectorsStored: s.vectors != nil) {
        throw ParseFailure("the \(what) \(p)")
    }
    for (name, i) in (s.vectors ?? [:]).sorted(by: { $0.key < $1.key }) {
        try checkVector(
            i, "\(what) vector '\(DisplayText.quoted(name, limit: 40))'", table: table, count: d, required: true)
    }
}

extension TraceHeader {
    /// What the carried states of group `g` may hold: the header's rule's and attack's
    /// ``StateSchema`` with the group's honest senders and the configured rounds (stateless when
    /// a spec does not parse: the header's own validation refuses that first).
    public func stateSchemas(group g: Int) -> (rule: StateSchema, attack: StateSchema) {
        let honest = g >= 0 && g < groups.count ? groups[g].honestWorkers.count : 0
        let bounds = StateBounds(honest: honest, rounds: config.rounds)
        let pipeline = try? AggregatorCatalogue.makePipeline(rule: config.aggregator, pre: config.preAggregators)
        let rule = pipeline?.stateSchema(bounds)
        let attack = (try? AttackCatalogue.makeAttack(config.attack))?.stateSchema(bounds)
        return (rule ?? .none, attack ?? .none)
    }
}

extension RoundContent {
    public func validate(against h: TraceHeader, expectedRound t: Int) throws(ParseFailure) {
        guard round == t else { throw ParseFailure("its content says round \(round)") }
        guard hasVectors == h.recording.storesVectors(round: t) else {
            throw ParseFailure(
                "hasVectors is \(hasVectors), but the header's recording mode \(h.recording) says \(!hasVectors)")
        }
        let d = h.model.parameterCount
        // S_t is the configuration's schedule (eq. 6), each class aggregated once, in that order.
        let expectedClasses = h.config.mode == .desgd ? h.config.classSet(round: t) : []
        guard classes == expectedClasses else {
            throw ParseFailure("classes \(classes.prefix(12)) are not the schedule's \(expectedClasses)")
        }
        let groupIndices = h.config.mode == .desgd ? classes : [0]
        guard aggregations.count == groupIndices.count else {
            throw ParseFailure("\(aggregations.count) aggregations for \(groupIndices.count) aggregation groups")
        }
        for (k, (a, g)) in zip(aggregations, groupIndices).enumerated() {
            let group = h.groups[g]
            guard a.classIndex == group.classIndex else {
                throw ParseFailure("aggregation \(k) is of class \(a.classIndex), expected \(group.classIndex)")
            }
            guard a.senders == h.expectedSenders(group: group) else {
                throw ParseFailure(
                    "aggregation \(k): its senders are not the group's (honest holders, then Byzantine workers "
                        + "\(h.config.honestWorkers)..<\(h.config.honestWorkers + h.config.byzantineWorkers))")
            }
            if let m = a.messages {
                guard hasVectors else {
                    throw ParseFailure("aggregation \(k) has messages in a round without vectors")
                }
                guard m.count == a.senders.count else {
                    throw ParseFailure("aggregation \(k) has \(m.count) messages for \(a.senders.count) senders")
                }
                for i in m {
                    try checkVector(i, "message of aggregation \(k)", table: vectors, count: d, required: true)
                }
            } else if hasVectors {
                throw ParseFailure("aggregation \(k) has no messages")
            }
            try checkVector(
                a.aggregate, "aggregate of aggregation \(k)", table: vectors, count: d, required: hasVectors)
            try a.validateSignatures(against: h, index: k, hasVectors: hasVectors)
            let schema = h.stateSchemas(group: g).rule
            try checkState(a.stateBefore, "aggregation \(k)'s stateBefore", table: vectors, d: d, schema: schema)
            try checkState(a.stateAfter, "aggregation \(k)'s stateAfter", table: vectors, d: d, schema: schema)
        }
        try checkVector(modelDiff, "model diff", table: vectors, count: d, required: hasVectors)
        if !hasVectors, modelDiff != nil { throw ParseFailure("a model diff in a round without vectors") }
        if let e = evaluation, !(e.accuracy >= 0 && e.accuracy <= 1) {
            throw ParseFailure("evaluation.accuracy \(e.accuracy) is not in [0, 1]")
        }
    }
}

extension KeyframeContent {
    public func validate(against h: TraceHeader, expectedRound t: Int) throws(ParseFailure) {
        guard round == t else { throw ParseFailure("its content says round \(round)") }
        let d = h.model.parameterCount
        try checkVector(parameters, "parameters", table: vectors, count: d, required: true)
        let C = h.config.mode == .desgd ? h.config.classes : 0
        guard classMomenta.isEmpty || classMomenta.count == C else {
            throw ParseFailure("classMomenta has \(classMomenta.count) entries, expected \(C)")
        }
        for (c, i) in classMomenta.enumerated() {
            try checkVector(i, "class momentum \(c)", table: vectors, count: d, required: true)
        }
        try checkVector(serverMomentum, "server momentum", table: vectors, count: d, required: false)
        let kinds = [("aggregatorStates", aggregatorStates, true), ("attackStates", attackStates, false)]
        for (what, states, rule) in kinds {
            guard states.count <= h.groups.count else {
                throw ParseFailure("\(what) has \(states.count) entries for \(h.groups.count) groups")
            }
            for (g, s) in states.enumerated() {
                let schemas = h.stateSchemas(group: g)
                try checkState(s, "\(what)[\(g)]", table: vectors, d: d, schema: rule ? schemas.rule : schemas.attack)
            }
        }
    }
}
