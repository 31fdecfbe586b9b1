import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace

/// Where a stopped live run continues from (docs/federation.md, "Stopping and resuming"): the
/// server's state after the trace's last complete round, rebuilt from the trace itself. The clients
/// keep the other half (their momenta) on their side.
///
/// The rebuild re-applies the server step (eq. 7, 14–16, ``ServerStep``) to the recorded aggregates
/// from keyframe 0 and checks every model diff against its record bit for bit; carried rule states
/// are the rounds' `stateAfter`; the drift metrics are fed the same aggregations, honest means and
/// updates the recorder fed them. So the continued trace is the one an uninterrupted run would have
/// written, byte for byte. Cost: one pass over the recorded rounds (their messages, for the honest
/// means), O(rounds · n · d).
struct LiveResumption {
    let round: Int
    let snapshot: ServerSnapshot
    let drift: DriftTracker
    let runTag: [UInt8]

    init(reader: TraceReader, config: SimulationConfig, engine: LiveEngine) throws(LiveServerError) {
        let h = reader.header
        let path = reader.path
        guard let recorded = h.engine else {
            throw .input("\(path) is not a live federation's trace: resume it with desgd-record \(Setting.resume)")
        }
        var ours = config
        var theirs = h.config
        ours.threads = 1
        theirs.threads = 1
        guard ours == theirs else {
            throw .input(
                "\(path) was recorded with other options (\(h.aggregator) vs \(h.attack), \(h.config.rounds) rounds): "
                    + "resume it with the options it was recorded with")
        }
        guard
            recorded.nodes.map({ [String($0.worker), $0.publicKey] })
                == engine.nodes.map({ [String($0.worker), $0.publicKey] })
        else { throw .input("\(path) registered other clients or keys: resume it with the clients that recorded it") }
        guard h.recording == .full, h.firstRound == 0, let window = h.driftWindow else {
            throw .input(
                "\(path) was not recorded in full from round 0: a live run continues only from its full record")
        }
        // What the rebuild holds, within the memory limit before anything sized by the header.
        do { try reader.checkMemory(Self.memoryEstimate(reader, window: window), operation: "resuming it") } catch {
            throw .trace(error)
        }
        let chain = reader.verifyChain()
        guard chain.holds else {
            throw .input("\(path): its digest chain breaks (\(chain.failure ?? "")): it cannot be continued")
        }
        let done = reader.roundCount
        guard reader.rounds == 0..<done else { throw .input("\(path): its rounds are not 0..<\(done) in order") }
        guard done < config.rounds else { throw .input("\(path) is complete (\(done) rounds): nothing to resume") }
        do {
            guard let tag = Hex.decode(try reader.storedDigest(ofRecord: 0), count: 32) else {
                throw LiveServerError.input("\(path): its header digest does not read")
            }
            runTag = tag
            let d = reader.parameterCount
            let start = try reader.keyframe(atOrBefore: 0)
            var x = try start.parameters()
            var momentum: [Float] = []
            if let m = start.content.serverMomentum { momentum = try start.vector(m) }
            let groups = h.groups.count
            guard
                let server = ServerStep(
                    config: config, dimension: d,
                    restoring: ServerSnapshot(
                        parameters: x, classMomenta: try start.classMomenta(), serverMomentum: momentum,
                        aggregatorStates: [], attackStates: []))
            else {
                throw LiveServerError.input("\(path): keyframe 0 does not fit the configuration")
            }
            var ruleStates = try Self.states(start.content.aggregatorStates, of: start, groups: groups)
            var attackStates = try Self.states(start.content.attackStates, of: start, groups: groups)
            let tracker = DriftTracker(config: config, dimension: d, window: window, recent: h.effectiveDriftRecent)
            for t in 0..<done {
                let round = try reader.round(t)
                var aggregates: [(classIndex: Int, aggregate: [Float])] = []
                var inputs: [DriftTracker.Aggregation] = []
                for (k, a) in round.aggregations.enumerated() {
                    let output = try round.aggregate(k)
                    let honest = HonestStatistics(
                        messages: try round.messages(k), honest: a.senders.map { !$0.byzantine })
                    aggregates.append((a.classIndex, output))
                    inputs.append(.init(classIndex: a.classIndex, output: output, honestMean: honest.mean))
                    ruleStates[max(a.classIndex, 0)] = try round.state(k, after: true)
                }
                let (update, diff) = server.apply(aggregates: aggregates, to: &x)
                guard diff.map(\.bitPattern) == (try round.modelDiff()).map(\.bitPattern) else {
                    throw LiveServerError.input(
                        "\(path): round \(t)'s model diff is not the server step of its recorded "
                            + "aggregates: the trace does not hold its own run")
                }
                _ = tracker.add(inputs, update: update)
            }
            // Attacks' carried states are in keyframes only: a run closed cleanly has one after its last
            // round; a crashed one continues only under an attack that carries nothing.
            if reader.keyframeRecords.contains(where: { $0.round == done }) {
                let end = try reader.keyframe(atOrBefore: done)
                guard (try end.parameters()).map(\.bitPattern) == x.map(\.bitPattern) else {
                    throw LiveServerError.input("\(path): keyframe \(done) is not the model its rounds rebuild")
                }
                attackStates = try Self.states(end.content.attackStates, of: end, groups: groups)
            } else if (0..<groups).contains(where: { h.stateSchemas(group: $0).attack != .none }) {
                throw LiveServerError.input(
                    "\(path) ends without its last keyframe and its attack carries state between "
                        + "rounds: it cannot be continued")
            }
            round = done
            drift = tracker
            snapshot = ServerSnapshot(
                parameters: x, classMomenta: server.classMomenta, serverMomentum: server.serverMomentum,
                aggregatorStates: ruleStates, attackStates: attackStates)
        } catch let e as LiveServerError {
            throw e
        } catch let e as TraceError {
            throw .input("\(path): \(e.explanation): it cannot be continued")
        } catch {
            throw .input("\(path): \(error)")
        }
    }

    /// An upper estimate, in bytes, of what the rebuild holds at once (docs/bad-input.md): keyframe
    /// 0 read and decoded, the model and the server step restored from it (C buffer entries, the
    /// momentum, the update and diff), the drift tracker, and a round read with one aggregation's
    /// messages (s rows), their honest rows and mean, the aggregate, the states and the diff.
    static func memoryEstimate(_ reader: TraceReader, window: Int) -> UInt64 {
        typealias M = MemoryArithmetic
        let C = M.u(reader.header.config.classes)
        let vectors = M.add(reader.keyframeVectors, C, 6, reader.driftTrackerVectors(window: window),
                            M.mul(2, reader.largestGroup), 10)
        return M.add(reader.keyframeReadBytes, reader.roundReadBytes, M.mul(reader.vectorBytes, vectors))
    }

    /// A keyframe's stored states as the engine's, one per group (empty for groups it does not list).
    static func states(
        _ stored: [StoredState], of keyframe: TraceKeyframe, groups: Int
    ) throws(TraceError) -> [AggregatorState] {
        var out = [AggregatorState](repeating: .empty, count: groups)
        for (g, s) in stored.enumerated() where g < groups {
            var vectors: [String: [Float]] = [:]
            for (name, i) in s.vectors ?? [:] { vectors[name] = try keyframe.vector(i) }
            out[g] = AggregatorState(vectors: vectors, scalars: s.scalars)
        }
        return out
    }
}
