import DesgdSimulation

/// What reading a trace holds at once, estimated from its header and its record table before anything
/// sized by them is allocated. The header's d, workers and classes are the audited party's word and
/// the body limit alone lets one record decompress to 4 GiB, so every operation on a trace, reading
/// included, checks its estimate against the memory limit where it starts (docs/bad-input.md;
/// traces/FORMAT.md §6). These are the parts the operations' estimates are made of; one vector is
/// ``vectorBytes``.
extension TraceReader {
    /// 4·d: one vector of the model's length.
    public var vectorBytes: UInt64 { MemoryArithmetic.mul(4, MemoryArithmetic.u(max(1, parameterCount))) }

    /// s: the most senders (honest and Byzantine) of a group, 1 when there are none.
    public var largestGroup: UInt64 {
        let senders = header.groups.map { $0.honestWorkers.count + $0.byzantineWorkers.count }.max() ?? 1
        return MemoryArithmetic.u(max(1, senders))
    }

    /// K: the aggregations of a round (1 in the baseline).
    public var aggregationsPerRound: UInt64 { MemoryArithmetic.u(max(1, header.config.classesPerRound)) }

    /// What one read of a round record holds: its payload (no larger than this file's largest round
    /// record) and its body (no larger than the body limit, FORMAT.md §6 items 3 and 5).
    public var roundReadBytes: UInt64 { readBytes(largestPayload(.round), limit: bodyLimit) }

    /// The same for a keyframe.
    public var keyframeReadBytes: UInt64 { readBytes(largestPayload(.keyframe), limit: bodyLimit) }

    /// The same for a state checkpoint (its body limit B_c).
    public var checkpointReadBytes: UInt64 { readBytes(largestPayload(.checkpoint), limit: checkpointBodyLimit) }

    func readBytes(_ payload: UInt64, limit: UInt64) -> UInt64 { MemoryArithmetic.add(min(payload, limit), limit) }

    /// The vectors a keyframe decodes to: the model, the class-momentum buffer (C), the server
    /// momentum and at most 3 vectors of carried state per group (FORMAT.md §5.2).
    public var keyframeVectors: UInt64 {
        typealias M = MemoryArithmetic
        return M.add(2, M.u(header.config.classes), M.mul(3, M.u(header.groups.count)))
    }

    /// The vectors one ``DriftTracker`` of this run holds: two server steps (the honest shadow's and
    /// the replayed one: C buffer entries, the momentum and two temporaries each), its scratch and
    /// binary64 sums, and per group its window of W (or one recent sum) and a binary64 cumulative sum.
    public func driftTrackerVectors(window: Int) -> UInt64 {
        typealias M = MemoryArithmetic
        let recent: UInt64 = header.effectiveDriftRecent == .exponential ? 1 : M.u(window)
        let groups = M.u(max(1, header.groups.count))
        return M.add(M.mul(2, M.add(M.u(header.config.classes), 3)), 8, M.mul(groups, M.add(recent, 2)))
    }

    /// The shape an estimate is about, for the messages.
    public var readingShapeDescription: String {
        let c = header.config
        return "a trace of \(parameterCount) parameters with \(c.honestWorkers) honest and \(c.byzantineWorkers) "
            + "Byzantine workers and \(c.classes) classes"
    }

    /// Throws a ``TraceError`` carrying the shortfall when `needed` bytes exceed `limit`; `operation`
    /// says what the reader was about to do ("verifying it").
    public func checkMemory(_ needed: UInt64, operation: String, limit: MemoryLimit = .process) throws(TraceError) {
        guard needed > limit.bytes else { return }  // every record read passes here: no text unless refused
        do { try limit.check(needed, for: readingShapeDescription) } catch {
            throw .setup("\(path): \(operation): ", error)
        }
    }

    /// The largest payload of a record of `type` in this file.
    func largestPayload(_ type: RecordType) -> UInt64 {
        switch type {
        case .round: largestRoundPayload
        case .keyframe: largestKeyframePayload
        case .checkpoint: largestCheckpointPayload
        default: 0
        }
    }

    static func largestPayload(_ type: RecordType, in records: [IndexEntry]) -> UInt64 {
        let overhead = UInt64(TraceFormat.recordOverhead)
        return records.lazy.filter { $0.type == type }.map { $0.size - min($0.size, overhead) }.max() ?? 0
    }
}
