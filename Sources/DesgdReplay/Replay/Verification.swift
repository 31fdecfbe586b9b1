import DesgdNumerics
import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace

/// The outcome of `desgd-replay --verify`.
public struct VerificationReport: Sendable, Equatable {
    /// Rounds whose aggregates (decision and carried state included) were recomputed and matched.
    public var roundsChecked = 0
    /// Rounds whose model diff was recomputed (eq. 7, 14–16 from the recomputed aggregates and the
    /// buffer restored from keyframe 0) and matched.
    public var diffsChecked = 0
    /// Keyframes the rebuilt model was compared with.
    public var keyframesChecked = 0
    /// The first difference, as a sentence naming the round; nil when everything matched.
    public var mismatch: String?
    public var mismatchRound: Int?
    /// Things the user should know (a different numeric backend, rounds without vectors).
    public var notes: [String] = []
    public var passed: Bool { mismatch == nil }
}

/// Re-runs the recorded rule on every round of a trace, with the recorded state before it, and
/// checks the aggregate, the decision and the state after bit for bit; then re-applies the server
/// step (``ServerStep``: eq. 7, 14–16, restored from keyframe 0) to check every model diff, and
/// compares the rebuilt model with each keyframe. Aggregations run in parallel blocks; the server
/// step runs in round order. Stops at the first difference.
public enum Verification {
    /// An upper estimate, in bytes, of what ``verify(_:threads:memoryLimit:progress:)`` holds at once,
    /// from the header and the record table (docs/bad-input.md): keyframe 0 read and decoded with
    /// the server state restored from it (the model, 2·C buffer entries, the momentum, the update and
    /// diff); per thread a round read (its payload and body) with one aggregation's messages (s),
    /// a copy a rule may make of them, its states before and after, the output and the recorded
    /// aggregate; a block's checked rounds (4 per thread, K aggregates and a diff each) until the
    /// server step; and a keyframe read to compare the model with.
    public static func memoryEstimate(_ reader: TraceReader, threads: Int) -> UInt64 {
        typealias M = MemoryArithmetic
        let threads = M.u(max(1, threads)), s = reader.largestGroup, K = reader.aggregationsPerRound
        let C = M.u(reader.header.config.classes), rounds = M.u(max(1, reader.roundCount))
        let vectors = M.add(M.mul(3, C), 8, M.mul(threads, M.add(M.mul(2, s), 10)),
                            M.mul(min(M.mul(4, threads), rounds), M.add(K, 1)), reader.keyframeVectors)
        return M.add(M.mul(reader.vectorBytes, vectors), M.mul(threads, reader.roundReadBytes),
                     M.mul(2, reader.keyframeReadBytes))
    }

    public static func verify(_ reader: TraceReader, threads: Int, memoryLimit: MemoryLimit = .process,
                              progress: (Int) -> Void = { _ in }) throws(TraceError) -> VerificationReport {
        try reader.checkMemory(memoryEstimate(reader, threads: threads), operation: "verifying it", limit: memoryLimit)
        let header = reader.header, config = header.config, d = reader.parameterCount
        var report = VerificationReport()
        let pipeline: AggregationPipeline
        do {
            pipeline = try AggregatorCatalogue.makePipeline(rule: config.aggregator,
                pre: config.preAggregators) } catch {
            throw .corrupted("\(reader.path): the recorded rule '\(DisplayText.quoted(config.aggregator))' does not"
                + " parse here: \(error.explanation)")
        }
        if pipeline.spec != header.aggregator {
            report.notes.append("the recorded rule is \(header.aggregator); this desgd reads"
                + " its spec as \(pipeline.spec)")
        }
        if config.backend.description != header.backend {
            report.notes.append("recorded with backend '\(DisplayText.quoted(header.backend))', verified with '"
                + "\(config.backend.description)': openblas bits can differ between CPU kernels")
        }
        // The model and server state to re-apply diffs from: the first keyframe (of round 0, or of a
        // fork's first round; a full recording only).
        var x: [Float] = []
        var server: ServerStep?
        if header.recording == .full {
            let k = try reader.keyframe(atOrBefore: reader.firstRound)
            x = try k.parameters()
            var momentum: [Float] = []
            if let m = k.content.serverMomentum { momentum = try k.vector(m) }
            let snapshot = ServerSnapshot(parameters: x, classMomenta: try k.classMomenta(), serverMomentum: momentum,
                                          aggregatorStates: [], attackStates: [])
            server = ServerStep(config: config, dimension: d, restoring: snapshot)
            if server == nil {
                throw .corrupted("\(reader.path): keyframe \(reader.firstRound) does not fit the configuration")
            }
        } else {
            report.notes.append("recording mode \(header.recording): model diffs are not verified,"
                + " aggregates of rounds with vectors are")
        }
        let keyframeRounds = Set(reader.keyframeRecords.map(\.round))

        let threads = max(1, threads)
        let executor = ParallelExecutor(threads: threads)
        let decompressors = (0..<threads).map { _ in ZstdDecompressor() }
        var t = reader.firstRound, withoutVectors = 0
        let end = reader.rounds.upperBound
        while t < end {
            let block = Array(t ..< min(end, t + 4 * threads))
            let slots = ResultSlots<Result<RoundCheck, TraceError>>(count: block.count)
            executor.forEach(block.count) { i, slot in
                do throws(TraceError) {
                    slots[i] = .success(try check(round: block[i], reader: reader, pipeline: pipeline,
                        decompressor: decompressors[slot]))
                } catch {
                    slots[i] = .failure(error)
                }
            }
            for i in block.indices {
                let round = block[i]
                let result: RoundCheck
                switch slots[i]! {
                case .success(let r): result = r
                case .failure(let e): throw e
                }
                if let m = result.mismatch {
                    report.mismatch = m
                    report.mismatchRound = round
                    return report
                }
                guard let aggregates = result.aggregates else {
                    withoutVectors += 1
                    server = nil  // the model chain is broken by a round without its diff
                    continue
                }
                report.roundsChecked += 1
                guard let s = server, let recordedDiff = result.recordedDiff else { continue }
                let (_, diff) = s.apply(aggregates: aggregates, to: &x)
                if let i = firstDifference(diff, recordedDiff) {
                    report.mismatch = "round \(round): the model diff differs from the recorded one at coordinate \(i)"
                        + " (recomputed \(diff[i]), recorded \(recordedDiff[i]))"
                    report.mismatchRound = round
                    return report
                }
                report.diffsChecked += 1
                if keyframeRounds.contains(round + 1) {
                    let stored = try reader.keyframe(atOrBefore: round + 1).parameters()
                    if let i = firstDifference(x, stored) {
                        report.mismatch = "round \(round): the model rebuilt after this round differs from keyframe "
                            + "\(round + 1) at coordinate \(i)"
                        report.mismatchRound = round
                        return report
                    }
                    report.keyframesChecked += 1
                }
            }
            t += block.count
            progress(t - reader.firstRound)
        }
        if withoutVectors > 0 {
            report.notes.append("\(withoutVectors) rounds were recorded without vectors and could not be re-run")
        }
        return report
    }

    struct RoundCheck: Sendable {
        var mismatch: String?
        /// Recomputed aggregates (class, m̂), nil when the round has no vectors.
        var aggregates: [(classIndex: Int, aggregate: [Float])]?
        var recordedDiff: [Float]?
    }

    static func check(round t: Int, reader: TraceReader, pipeline: AggregationPipeline,
                      decompressor: ZstdDecompressor) throws(TraceError) -> RoundCheck {
        let round = try reader.round(t, using: decompressor)
        guard round.hasVectors else { return RoundCheck() }
        let config = reader.header.config
        var aggregates: [(classIndex: Int, aggregate: [Float])] = []
        for (k, a) in round.aggregations.enumerated() {
            var state = try round.state(k, after: false)
            let context = AggregationContext(messages: try round.messages(k), f: config.effectiveF, seed: config.seed,
                                             round: t,
                                             classIndex: a.classIndex, backend: config.backend,
                                             executor: ParallelExecutor(threads: 1))
            let (output, decision) = pipeline.aggregate(context, state: &state)
            let recorded = try round.aggregate(k)
            let which = a.classIndex >= 0 ? "class \(a.classIndex)" : "the round"
            if let i = firstDifference(output, recorded) {
                return RoundCheck(mismatch: "round \(t): the aggregate of \(which) differs from the recorded one at"
                    + " coordinate \(i) (recomputed \(output[i]), recorded \(recorded[i]))")
            }
            if decision != a.decision {
                return RoundCheck(mismatch: "round \(t): the decision of \(which) differs from the recorded one")
            }
            if state != (try round.state(k, after: true)) {
                return RoundCheck(mismatch: "round \(t): the state carried out of \(which)"
                    + " differs from the recorded one")
            }
            aggregates.append((a.classIndex, output))
        }
        return RoundCheck(mismatch: nil, aggregates: aggregates, recordedDiff: try round.modelDiff())
    }

    /// The first index where the bit patterns differ (or where the lengths differ).
    static func firstDifference(_ a: [Float], _ b: [Float]) -> Int? {
        guard a.count == b.count else { return min(a.count, b.count) }
        for i in a.indices where a[i].bitPattern != b[i].bitPattern { return i }
        return nil
    }
}
