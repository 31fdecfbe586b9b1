import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// The bodies of keyframe, round and checkpoint records (FORMAT.md §4–5), as the recorder writes
/// them: the one place that turns engine events into trace bytes, so that re-execution can encode
/// what it re-simulates and compare it with a trace byte for byte.
public struct RecordEncoder {
    public let mode: RecordingMode
    /// The rule's proven λ bound per aggregation group (the header's `resilienceBound`s).
    public let bounds: [Double?]
    let encoder = RecordBody.encoder()

    public init(mode: RecordingMode, bounds: [Double?]) {
        self.mode = mode
        self.bounds = bounds
    }

    /// A round record's body (JSON part, vector section); `drift` is advanced by the round. Also
    /// the float32 bytes of the vectors stored and the seconds the drift metrics took.
    public func round(_ event: RoundEvent, drift tracker: DriftTracker?) -> (parts: [[UInt8]], rawVectorBytes: UInt64,
        driftSeconds: Double) {
        var none: [UInt8] = []
        return round(event, drift: tracker, reusing: &none)
    }

    /// ``round(_:drift:)`` building the section in `storage`'s buffer, which it takes (leaving an
    /// empty array): a recorder passes the previous round's section back, so that no round faults
    /// in and zeroes a fresh one.
    public func round(_ event: RoundEvent, drift tracker: DriftTracker?,
                      reusing storage: inout [UInt8]) -> (parts: [[UInt8]], rawVectorBytes: UInt64,
                      driftSeconds: Double) {
        let full = mode.storesVectors(round: event.round)
        var section = full ? VectorSectionBuilder(reservingFloats: event.aggregations.reduce(event.modelDiff.count) {
            $0 + $1.messages.storage.count + $1.aggregate.count
        }, reusing: &storage) : VectorSectionBuilder()
        var raw: UInt64 = 0
        var aggregations: [AggregationRecord] = []
        // Drift needs every round's vectors, stored or not (FORMAT.md §5.4).
        let honestStatistics = event.aggregations.map { a in
            HonestStatistics(messages: a.messages, honest: a.senders.map { !$0.byzantine }) }
        let driftStart = Stopwatch.now()
        let drift = tracker?.add(zip(event.aggregations, honestStatistics).map {
            DriftTracker.Aggregation(classIndex: $0.classIndex, output: $0.aggregate, honestMean: $1.mean)
        }, update: event.update)
        let driftSeconds = Stopwatch.now() - driftStart
        for (k, a) in event.aggregations.enumerated() {
            let honest = a.senders.map { !$0.byzantine }
            let group = a.classIndex >= 0 ? a.classIndex : 0
            var metrics = a.aggregate.withUnsafeBufferPointer {
                DeviationMetrics.measure(output: $0, against: honestStatistics[k], decision: a.decision,
                                         bound: group < bounds.count ? bounds[group] : nil)
            }
            metrics.drift = drift?.groups[k]
            var messages: [Int]?, aggregate: Int?
            if full {
                // Honest messages are predicted by the first honest one; Byzantine messages and
                // the aggregate by a multiple of it (FORMAT.md §4.2).
                var firstHonest: Int?
                messages = (0..<a.messages.rows).map { r in
                    let prediction = firstHonest.map {
                        honest[r] ? .copy(of: $0) : .multiple(of: $0) } as VectorSectionBuilder.Prediction?
                    let i = section.add(row: r, of: a.messages, predictedBy: prediction)
                    if honest[r] && firstHonest == nil { firstHonest = i }
                    return i
                }
                aggregate = section.add(a.aggregate, predictedBy: firstHonest.map { .multiple(of: $0) })
                raw += UInt64(4 * (a.messages.storage.count + a.aggregate.count))
            }
            aggregations.append(AggregationRecord(
                classIndex: a.classIndex, senders: a.senders, messages: messages, attack: a.attackDecision,
                decision: a.decision, stateBefore: full ? Self.store(a.stateBefore, in: &section)
                    : Self.scalarsOnly(a.stateBefore),
                stateAfter: full ? Self.store(a.stateAfter, in: &section) : Self.scalarsOnly(a.stateAfter),
                aggregate: aggregate, metrics: metrics,
                signatures: a.signatures.map { $0.map { $0.map(Hex.encode) } }))
        }
        var diff: Int?
        if full {
            diff = section.add(event.modelDiff)
            raw += UInt64(4 * event.modelDiff.count)
        }
        let content = RoundContent(round: event.round, hasVectors: full, classes: event.classes,
                                   aggregations: aggregations,
                                   modelDiff: diff, evaluation: event.evaluation, vectors: section.entries,
                                   drift: drift?.model)
        return ([RecordBody.jsonPart(content, encoder: encoder), section.data], raw, driftSeconds)
    }

    /// A keyframe's body: the server state at the start of `round`.
    public func keyframe(round: Int, snapshot s: ServerSnapshot) -> [[UInt8]] {
        var section = VectorSectionBuilder()
        let parameters = section.add(s.parameters)
        let classMomenta = s.classMomenta.map { section.add($0) }
        let serverMomentum = s.serverMomentum.isEmpty ? nil : section.add(s.serverMomentum)
        let content = KeyframeContent(
            round: round, parameters: parameters, classMomenta: classMomenta, serverMomentum: serverMomentum,
            aggregatorStates: s.aggregatorStates.map { Self.store($0, in: &section) },
            attackStates: s.attackStates.map { Self.store($0, in: &section) }, vectors: section.entries)
        return [RecordBody.jsonPart(content, encoder: encoder), section.data]
    }

    /// How a checkpoint predicts a worker's class momentum from the first holder's of that class: as
    /// a copy. Measured on the quick preset (Fashion-MNIST, small model, IPM, the state at round 50,
    /// zstd level 1, without the drift state): 0.472 of the raw float32 bytes, against 0.496 with a
    /// least-squares multiple and 0.514 stored plain.
    public static let honestMomentumPrediction = MomentumPrediction.copy

    public enum MomentumPrediction: Sendable { case none, copy, multiple }

    /// A state checkpoint's body (FORMAT.md §5.5). Vectors are added in a fixed order (model, honest
    /// momenta, class-momentum buffer, server momentum, Byzantine momenta, states, drift), each
    /// class's momenta after the first predicted by its first holder's, and the buffer entry and
    /// the Byzantine momenta of a class by a multiple of it (FORMAT.md §4.2).
    public func checkpoint(_ s: SimulationState, drift: DriftTrackerState?,
                           prediction: MomentumPrediction = RecordEncoder.honestMomentumPrediction) -> [[UInt8]] {
        var section = VectorSectionBuilder()
        let parameters = section.add(s.parameters)
        var firstOfClass: [Int: Int] = [:]
        let honest = zip(s.honestRows, s.honestMomenta).map { row, v in
            let first = firstOfClass[row.classIndex]
            let p: VectorSectionBuilder.Prediction? = switch prediction {
            case .none: nil
            case .copy: first.map { .copy(of: $0) }
            case .multiple: first.map { .multiple(of: $0) }
            }
            let i = section.add(v, predictedBy: p)
            if first == nil { firstOfClass[row.classIndex] = i }
            return CheckpointContent.Row(worker: row.worker, classIndex: row.classIndex, vector: i)
        }
        let classMomenta = s.classMomenta.enumerated().map { c, v in
            section.add(v, predictedBy: firstOfClass[c].map { .multiple(of: $0) }) }
        let serverMomentum = s.serverMomentum.isEmpty ? nil : section.add(s.serverMomentum)
        let byzantine = zip(s.byzantineRows, s.byzantineMomenta).map { row, v in
            CheckpointContent.Row(worker: row.worker, classIndex: row.classIndex,
                                  vector: section.add(v,
                                      predictedBy: firstOfClass[row.classIndex].map { .multiple(of: $0) }))
        }
        let aggregatorStates = s.aggregatorStates.map { Self.store($0, in: &section) }
        let attackStates = s.attackStates.map { Self.store($0, in: &section) }
        var driftContent: CheckpointContent.Drift?
        if let drift {
            func wide(_ v: [Double]) -> CheckpointContent.Wide {
                CheckpointContent.Wide(high: section.add(v.map {
                    Float(bitPattern: UInt32(truncatingIfNeeded: $0.bitPattern >> 32)) }),
                                       low: section.add(v.map {
                                           Float(bitPattern: UInt32(truncatingIfNeeded: $0.bitPattern)) }))
            }
            let shadow = drift.shadowClassMomenta.enumerated().map { c, v in
                section.add(v, predictedBy: c < classMomenta.count ? .multiple(of: classMomenta[c]) : nil)
            }
            let shadowServer = drift.shadowServerMomentum.isEmpty ? nil : section.add(drift.shadowServerMomentum)
            let differenceSum = wide(drift.differenceSum), shadowSum = wide(drift.shadowSum)
            let groups = drift.groups.map { c, h in
                let exponential = !h.recentSum.isEmpty
                return CheckpointContent.DriftGroup(
                    classIndex: c, count: h.count, sumOfNorms: h.sumOfNorms, cumulativeSum: wide(h.cumulativeSum),
                    window: exponential ? nil : h.window.map { section.add($0) }, windowNorms: exponential ? nil
                        : h.windowNorms,
                    recentSum: exponential ? section.add(h.recentSum) : nil, recentNorms: exponential ? h.recentNorms
                        : nil)
            }
            driftContent = CheckpointContent.Drift(rounds: drift.rounds, differenceNorms: drift.differenceNorms,
                                                   differenceSum: differenceSum,
                                                   shadowSum: shadowSum, shadowClassMomenta: shadow,
                                                   shadowServerMomentum: shadowServer,
                                                   groups: groups)
        }
        let content = CheckpointContent(round: s.round, parameters: parameters, classMomenta: classMomenta,
                                        serverMomentum: serverMomentum,
                                        honestMomenta: honest, byzantineMomenta: byzantine,
                                        aggregatorStates: aggregatorStates,
                                        attackStates: attackStates, drift: driftContent, vectors: section.entries)
        return [RecordBody.jsonPart(content, encoder: encoder), section.data]
    }

    static func store(_ state: AggregatorState, in section: inout VectorSectionBuilder) -> StoredState {
        // Sorted keys: Swift's dictionary order changes between processes, the bytes must not.
        var vectors: [String: Int] = [:]
        for key in state.vectors.keys.sorted() { vectors[key] = section.add(state.vectors[key]!) }
        return StoredState(scalars: state.scalars, vectors: vectors)
    }

    static func scalarsOnly(_ state: AggregatorState) -> StoredState {
        StoredState(scalars: state.scalars, vectors: nil)
    }
}
