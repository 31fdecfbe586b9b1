import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

extension TraceParsing {
    /// The largest body a state checkpoint of this run can have (FORMAT.md §6 item 5):
    /// B_c = min(2³², 2²⁶ + 4·d·(H + F + 2·C + G·(W + 8) + 8)), with H the honest momenta (the sum
    /// of the groups' honest workers), F the Byzantine momenta (f·C in DeSGD, f otherwise), C = 10,
    /// G the groups and W the drift window (0 without one): one model, H + F momenta, C buffer and
    /// C shadow entries, two server momenta, at most 3 vectors per rule and attack state, and per
    /// group W window terms and 2 words-vectors of its sum, plus 4 of the model sums. Computed with
    /// overflow-checked arithmetic (an overflow means 2³²).
    public static func checkpointBodyLimit(_ header: TraceHeader) -> UInt64 {
        func mul(_ a: UInt64, _ b: UInt64) -> UInt64? {
            let (r, o) = a.multipliedReportingOverflow(by: b); return o ? nil : r
        }
        func add(_ a: UInt64, _ b: UInt64) -> UInt64? { let (r, o) = a.addingReportingOverflow(b); return o ? nil : r }
        let d = UInt64(max(1, header.model.parameterCount))
        var h: UInt64 = 0
        for g in header.groups {
            guard let x = add(h, UInt64(g.honestWorkers.count)) else { return TraceFormat.maximumBody }; h = x
        }
        let C = UInt64(max(0, header.config.classes)), G = UInt64(header.groups.count)
        let W = UInt64(max(0, min(header.driftWindow ?? 0, DriftTracker.maxWindow)))
        let f = UInt64(max(0, header.config.byzantineWorkers))
        guard let F = mul(f, header.config.mode == .desgd ? C : 1), let perGroup = add(W, 8).flatMap({ mul(G, $0) }),
              let vectors = add(h, F).flatMap({ add($0, 2 * C) }).flatMap({ add($0, perGroup) })
                  .flatMap({ add($0, 8) }),
              let bytes = mul(4, d).flatMap({ mul($0, vectors) }), let total = add(1 << 26, bytes)
        else { return TraceFormat.maximumBody }
        return min(TraceFormat.maximumBody, total)
    }

    /// A state checkpoint's body, validated against the header (FORMAT.md §5.5, §6 items 6–8).
    /// `expectedRound` is the number of round records before it.
    public static func checkpoint(_ body: [UInt8], header: TraceHeader, expectedRound: Int,
                                  decoder: JSONDecoder) throws(ParseFailure) -> ParsedBody<CheckpointContent> {
        let parsed = try ParsedBody<CheckpointContent>.parse(body, decoder: decoder).get()
        try parsed.content.validate(against: header, expectedRound: expectedRound)
        return parsed
    }
}

extension TraceHeader {
    /// The rows of a checkpoint's honest momenta (``Simulation/honestMomentumRows``), from the groups:
    /// worker w holds class c when it is one of c's honest workers.
    public var honestMomentumRows: [MomentumRow] {
        let n = config.honestWorkers
        guard config.mode == .desgd else { return (0..<n).map { MomentumRow(worker: $0, classIndex: -1) } }
        var classes = [[Int]](repeating: [], count: n)
        for g in groups { for w in g.honestWorkers where w >= 0 && w < n { classes[w].append(g.classIndex) } }
        return classes.enumerated().flatMap { w, cs in cs.sorted().map { MomentumRow(worker: w, classIndex: $0) } }
    }

    /// The rows of a checkpoint's Byzantine momenta (``Simulation/byzantineMomentumRows``).
    public var byzantineMomentumRows: [MomentumRow] {
        let n = config.honestWorkers
        return (0..<config.byzantineWorkers).flatMap { j in
            config.mode == .desgd ? (0..<config.classes).map { MomentumRow(worker: n + j, classIndex: $0) }
                : [MomentumRow(worker: n + j, classIndex: -1)]
        }
    }
}

extension CheckpointContent {
    /// FORMAT.md §5.5: the round is the checkpoint's place, one of the header's checkpoint rounds;
    /// every row is the run's, in order; every vector exists with d elements; states are one per
    /// group and carry their vectors; the drift state is present exactly when the header has a
    /// drift window, with the shapes that window and the configuration imply.
    public func validate(against h: TraceHeader, expectedRound t: Int) throws(ParseFailure) {
        guard round == t else {
            throw ParseFailure("its content says round \(round), but it follows \(t) round records")
        }
        let d = h.model.parameterCount, desgd = h.config.mode == .desgd, C = desgd ? h.config.classes : 0
        try checkVector(parameters, "parameters", table: vectors, count: d, required: true)
        guard classMomenta.count == C else {
            throw ParseFailure("classMomenta has \(classMomenta.count) entries, expected \(C)")
        }
        for (c, i) in classMomenta.enumerated() {
            try checkVector(i, "class momentum \(c)", table: vectors, count: d, required: true)
        }
        let global = h.config.momentum == .global
        guard (serverMomentum != nil) == global else {
            throw ParseFailure("serverMomentum is \(global ? "missing" : "present without global momentum")")
        }
        try checkVector(serverMomentum, "server momentum", table: vectors, count: d, required: false)
        for (what, rows, expected) in [("honestMomenta", honestMomenta, h.honestMomentumRows),
            ("byzantineMomenta", byzantineMomenta, h.byzantineMomentumRows)] {
            guard rows.count == expected.count else {
                throw ParseFailure("\(what) has \(rows.count) rows, the run has \(expected.count)")
            }
            for (k, (row, e)) in zip(rows, expected).enumerated() {
                guard row.worker == e.worker && row.classIndex == e.classIndex else {
                    throw ParseFailure("\(what)[\(k)] is of worker \(row.worker), class \(row.classIndex); expected"
                        + " worker \(e.worker), class \(e.classIndex)")
                }
                try checkVector(row.vector, "\(what)[\(k)]", table: vectors, count: d, required: true)
            }
        }
        // Every state is what its rule or attack declares (FORMAT.md §6): nothing is restored unchecked.
        let kinds = [("aggregatorStates", aggregatorStates, true), ("attackStates", attackStates, false)]
        for (what, states, rule) in kinds {
            guard states.count == h.groups.count else {
                throw ParseFailure("\(what) has \(states.count) entries for \(h.groups.count) groups")
            }
            for (g, s) in states.enumerated() {
                guard s.vectors != nil else { throw ParseFailure("\(what)[\(g)] has no vectors table") }
                let schemas = h.stateSchemas(group: g)
                try checkState(s, "\(what)[\(g)]", table: vectors, d: d, schema: rule ? schemas.rule : schemas.attack)
            }
        }
        guard (drift != nil) == (h.driftWindow != nil) else {
            throw ParseFailure(drift == nil ? "the drift state is missing (the header has a driftWindow)"
                : "a drift state in a trace without driftWindow")
        }
        try validateDrift(against: h, round: t, global: global, classes: C)
        // Last, so that a fuzzer's bodies checked against a header without checkpoints still reach
        // every check above.
        // A fork's first checkpoint is its starting state, whatever the interval (FORMAT.md §5.1.1).
        if h.fork != nil && t == h.firstRound { return }
        let interval = h.checkpointInterval ?? 0
        guard interval >= 1 else {
            throw ParseFailure("a checkpoint in a trace whose header declares no checkpointInterval")
        }
        guard t % interval == 0, t < h.config.rounds else {
            throw ParseFailure("a checkpoint before round \(t), which is not a multiple of checkpointInterval "
                + "\(interval) below \(h.config.rounds) rounds")
        }
    }

    func validateDrift(against h: TraceHeader, round t: Int, global: Bool, classes C: Int) throws(ParseFailure) {
        let d = h.model.parameterCount
        guard let drift, let W = h.driftWindow else { return }
        guard drift.rounds == t else { throw ParseFailure("drift.rounds is \(drift.rounds), expected \(t)") }
        for (what, w) in [("differenceSum", drift.differenceSum), ("shadowSum", drift.shadowSum)] {
            try checkVector(w.high, "drift.\(what).high", table: vectors, count: d, required: true)
            try checkVector(w.low, "drift.\(what).low", table: vectors, count: d, required: true)
        }
        guard drift.shadowClassMomenta.count == C else {
            throw ParseFailure("drift.shadowClassMomenta has \(drift.shadowClassMomenta.count) entries, expected "
                + "\(C)") }
        for (c, i) in drift.shadowClassMomenta.enumerated() {
            try checkVector(i, "drift shadow class momentum \(c)", table: vectors, count: d, required: true)
        }
        guard (drift.shadowServerMomentum != nil) == global else {
            throw ParseFailure("drift.shadowServerMomentum does not match the momentum placement")
        }
        try checkVector(drift.shadowServerMomentum, "drift shadow server momentum", table: vectors, count: d,
            required: false)
        var previous = Int.min
        for (k, g) in drift.groups.enumerated() {
            guard h.groups.contains(where: { $0.classIndex == g.classIndex }), g.classIndex > previous else {
                throw ParseFailure("drift.groups[\(k)] is of class \(g.classIndex): not a group of the"
                    + " run, or not in increasing order")
            }
            previous = g.classIndex
            guard g.count >= 1, g.count <= t * max(1, h.config.classesPerRound) else {
                throw ParseFailure("drift.groups[\(k)]: count \(g.count) is not in 1..."
                    + "\(t * max(1, h.config.classesPerRound)) at round \(t)")
            }
            try checkVector(g.cumulativeSum.high, "drift.groups[\(k)].cumulativeSum.high", table: vectors, count: d,
                required: true)
            try checkVector(g.cumulativeSum.low, "drift.groups[\(k)].cumulativeSum.low", table: vectors, count: d,
                required: true)
            switch h.effectiveDriftRecent {
            case .window:
                guard let window = g.window, let norms = g.windowNorms, window.count == min(g.count, W),
                    norms.count == window.count,
                      g.recentSum == nil, g.recentNorms == nil else {
                    throw ParseFailure("drift.groups[\(k)]: count \(g.count) needs \(min(g.count, W))"
                        + " window terms and norms (W = \(W)) "
                                       + "and no recentSum, as the header's driftRecent is window")
                }
                for (j, i) in window.enumerated() {
                    try checkVector(i, "drift.groups[\(k)].window[\(j)]", table: vectors, count: d, required: true)
                }
            case .exponential:
                guard let recent = g.recentSum, g.recentNorms != nil, g.window == nil, g.windowNorms == nil else {
                    throw ParseFailure("drift.groups[\(k)] needs recentSum and recentNorms and no window, as the"
                        + " header's driftRecent is exponential")
                }
                try checkVector(recent, "drift.groups[\(k)].recentSum", table: vectors, count: d, required: true)
            }
        }
    }
}

/// A state checkpoint read back from a trace: the complete state of the run at the start of ``round``.
public struct TraceCheckpoint: Sendable {
    let body: ParsedBody<CheckpointContent>
    let path: String

    public var round: Int { body.content.round }
    public var content: CheckpointContent { body.content }

    public func vector(_ i: Int) throws(TraceError) -> [Float] {
        switch body.vector(i) {
        case .success(let v): return v
        case .failure(let f): throw TraceError.corrupted("\(path): checkpoint \(round): \(f.reason)")
        }
    }

    func wide(_ w: CheckpointContent.Wide) throws(TraceError) -> [Double] {
        let high = try vector(w.high), low = try vector(w.low)
        return zip(high, low).map { Double(bitPattern: UInt64($0.bitPattern) << 32 | UInt64($1.bitPattern)) }
    }

    func state(_ s: StoredState) throws(TraceError) -> AggregatorState {
        var vectors: [String: [Float]] = [:]
        for (name, i) in s.vectors ?? [:] { vectors[name] = try vector(i) }
        return AggregatorState(vectors: vectors, scalars: s.scalars)
    }

    /// The run's state (validated shapes: ``Simulation/restore(state:at:)`` accepts it for the
    /// header's configuration). Rows that name the same vector share one decoded array, so a file
    /// cannot multiply memory by repeating an index: what is allocated is at most the header's rows
    /// (as for a legitimate checkpoint of the run), and at most one array per distinct vector.
    public func simulationState() throws(TraceError) -> SimulationState {
        let c = body.content
        var honest: [[Float]] = [], byzantine: [[Float]] = [], classMomenta: [[Float]] = []
        var aggregatorStates: [AggregatorState] = [], attackStates: [AttackState] = []
        var decoded: [Int: [Float]] = [:]
        func shared(_ i: Int) throws(TraceError) -> [Float] {
            if let v = decoded[i] { return v }
            let v = try vector(i)
            decoded[i] = v
            return v
        }
        for r in c.honestMomenta { honest.append(try shared(r.vector)) }
        for r in c.byzantineMomenta { byzantine.append(try shared(r.vector)) }
        for i in c.classMomenta { classMomenta.append(try vector(i)) }
        func sharedState(_ s: StoredState) throws(TraceError) -> AggregatorState {
            var vectors: [String: [Float]] = [:]
            for (name, i) in s.vectors ?? [:] { vectors[name] = try shared(i) }
            return AggregatorState(vectors: vectors, scalars: s.scalars)
        }
        for s in c.aggregatorStates { aggregatorStates.append(try sharedState(s)) }
        for s in c.attackStates { attackStates.append(try sharedState(s)) }
        return SimulationState(round: c.round, parameters: try vector(c.parameters), classMomenta: classMomenta,
                               serverMomentum: try c.serverMomentum.map { i throws(TraceError) in try vector(i) } ?? [],
                               honestMomenta: honest, honestRows: c.honestMomenta.map {
                                   MomentumRow(worker: $0.worker, classIndex: $0.classIndex) },
                               byzantineMomenta: byzantine, byzantineRows: c.byzantineMomenta.map {
                                   MomentumRow(worker: $0.worker, classIndex: $0.classIndex) },
                               aggregatorStates: aggregatorStates, attackStates: attackStates)
    }

    /// The drift tracker's state, nil when the trace tracks no drift.
    public func driftState() throws(TraceError) -> DriftTrackerState? {
        guard let drift = body.content.drift else { return nil }
        var shadow: [[Float]] = []
        for i in drift.shadowClassMomenta { shadow.append(try vector(i)) }
        var groups: [(classIndex: Int, history: DeviationHistory.State)] = []
        for g in drift.groups {
            var window: [[Float]] = []
            for i in g.window ?? [] { window.append(try vector(i)) }
            groups.append((g.classIndex, DeviationHistory.State(
                count: g.count, sumOfNorms: g.sumOfNorms, cumulativeSum: try wide(g.cumulativeSum), window: window,
                windowNorms: g.windowNorms ?? [], recentSum: try g.recentSum.map { i throws(TraceError) in
                    try vector(i) } ?? [],
                recentNorms: g.recentNorms ?? 0)))
        }
        return DriftTrackerState(rounds: drift.rounds, differenceNorms: drift.differenceNorms,
                                 differenceSum: try wide(drift.differenceSum),
                                 shadowSum: try wide(drift.shadowSum), shadowClassMomenta: shadow,
                                 shadowServerMomentum: try drift.shadowServerMomentum.map { i throws(TraceError) in
                                     try vector(i) } ?? [],
                                 groups: groups)
    }
}

extension TraceReader {
    /// Checkpoint `k` of ``checkpointRecords``, read and validated against the header.
    /// (`decompressor`: one per thread when reading concurrently).
    public func checkpoint(_ k: Int,
        using decompressor: ZstdDecompressor? = nil) throws(TraceError) -> TraceCheckpoint {
        guard k >= 0 && k < checkpointRecords.count else {
            throw TraceError(.usage,
                "\(path) has \(checkpointRecords.count) checkpoints; checkpoint \(k) was asked for")
        }
        let entry = checkpointRecords[k], t = checkpointRounds[k]
        // Its payload and body within the memory limit (what it decodes to is the run's, whose
        // estimate the re-simulation checks; docs/bad-input.md).
        try checkMemory(checkpointReadBytes, operation: "reading the checkpoint before round \(t)")
        do throws(ParseFailure) {
            let body = try file.body(entry, sequence: checkpointSequence[k], limit: checkpointBodyLimit,
                                     decompressor: decompressor ?? self.decompressor)
            return TraceCheckpoint(body: try TraceParsing.checkpoint(body, header: header, expectedRound: t,
                decoder: decoder), path: path)
        } catch {
            throw TraceError.corrupted("\(path): the checkpoint before round \(t): \(error.reason)")
        }
    }

    /// The index in ``checkpointRecords`` of the last checkpoint at or before the start of round `t`.
    public func lastCheckpoint(atOrBefore t: Int) -> Int? { checkpointRounds.lastIndex { $0 <= t } }
}
