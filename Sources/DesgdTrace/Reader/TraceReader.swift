import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

/// How a trace ended (FORMAT.md §7).
public enum TraceCompleteness: Sendable, Equatable {
    /// Index and footer present and valid: the recorder finished (`interrupted`: stopped early, e.g. Ctrl-C).
    case complete(interrupted: Bool)
    /// No valid footer: the records were found by scanning. `reason` says where the scan stopped
    /// (the end of the file, an incomplete last record of a killed recorder, or damage).
    case unfinished(reason: String)
}

/// A reader of one trace file: random access to any round (one positioned read, using the index
/// or, when the recorder did not finish, a scan of the record headers), streaming iteration, and
/// verification of the digest chain.
///
/// Defensive: every size is checked against the file and against limits before anything is
/// allocated; every digest is checked before a payload is decompressed; every failure is a
/// ``TraceError`` naming the round or record. Memory: one record at a time plus 32 bytes per
/// record for the record table.
///
/// Thread safety: everything is immutable after `init` and reads are positioned (`pread`), so
/// several threads may read rounds at once with ``round(_:using:)``, each with its own decompressor.
/// A reader of one trace: random access to any round (one positioned read, using the index or,
/// when the recorder did not finish, a scan of the record headers), streaming iteration, and
/// verification of the digest chain (``verifyChain()``, ChainVerification.swift).
///
/// A trace is hostile input (FORMAT.md §6): the pure checks of every record are ``TraceParsing``'s,
/// the file access (extents checked against the file before anything is read) is ``TraceFile``'s;
/// this type puts them together. Every failure is a ``TraceError`` naming the round or record.
/// Memory: one record at a time plus 32 bytes per record for the record table.
///
/// Thread safety: everything is immutable after `init` and reads are positioned (`pread`), so
/// several threads may read rounds at once with ``round(_:using:)``, each with its own decompressor.
public final class TraceReader: @unchecked Sendable {
    public let path: String
    public let header: TraceHeader
    public let fileSize: UInt64
    public let completeness: TraceCompleteness
    /// Every record found, in file order (index and footer included when present); a record's
    /// position here is its sequence number.
    public let records: [IndexEntry]
    /// Round records in round order, and keyframes (with their sequence numbers).
    public let roundRecords: [IndexEntry]
    public let keyframeRecords: [IndexEntry]
    let roundSequence: [Int]
    let keyframeSequence: [Int]
    /// State checkpoints (format 1.2), in file order, with the round each precedes (the number of
    /// round records before it) and their sequence numbers.
    public let checkpointRecords: [IndexEntry]
    public let checkpointRounds: [Int]
    let checkpointSequence: [Int]
    /// The largest body a checkpoint of this run can have (FORMAT.md §6 item 5).
    let checkpointBodyLimit: UInt64

    let file: TraceFile
    let decompressor = ZstdDecompressor()
    let decoder = RecordBody.decoder()
    /// The largest body a round or keyframe of this run can have (FORMAT.md §6).
    let bodyLimit: UInt64
    /// The largest payloads of its round, keyframe and checkpoint records (``roundReadBytes``).
    let largestRoundPayload: UInt64, largestKeyframePayload: UInt64, largestCheckpointPayload: UInt64

    public convenience init(path: String) throws(TraceError) {
        try self.init(source: try FileSource(path: path))
    }

    /// Opens a trace from any source (a file, or bytes in memory).
    public init(source: any TraceSource) throws(TraceError) {
        path = source.name
        fileSize = source.size
        file = try TraceFile(source: source)
        let headerEntry = try file.headerRecord()
        do throws(ParseFailure) {
            let body = try file.body(headerEntry, sequence: 0, limit: TraceParsing.headerBodyLimit,
                decompressor: decompressor)
            header = try TraceParsing.header(body, signature: file.signature, decoder: decoder)
        } catch {
            throw TraceError.corrupted("\(source.name): the header record: \(error.reason)")
        }
        bodyLimit = TraceParsing.bodyLimit(header)
        let first = header.firstRound
        firstRound = first
        let all: [IndexEntry]
        if let (entries, interrupted) = file.indexFromFooter(firstRound: first) {
            all = entries
            completeness = .complete(interrupted: interrupted)
        } else {
            let (entries, reason) = file.scan(after: headerEntry, firstRound: first)
            all = entries
            completeness = .unfinished(reason: reason)
        }
        // A type introduced after the version the file states is a forgery, not a later writer's
        // addition (FORMAT.md §3.2, §6 item 2): a 1.0 file holds no signature, a 1.1 one no checkpoint.
        let stated = file.signature
        if let k = all.firstIndex(where: { $0.type.introducedInMinor > stated.minor }) {
            let t = all[k].type
            throw TraceError.corrupted("\(source.name): record \(k) is a \(t.name) record (type "
                + "\(t.rawValue)), which a file of "
                + "format \(stated.major).\(stated.minor) cannot hold: \(t.name) records are format "
                + "1.\(t.introducedInMinor) and later")
        }
        // A fork starts from its state checkpoint (FORMAT.md §5.1.1): without it, nothing rebuilds
        // the state its first round started from.
        if header.fork != nil, all.count > 1, all[1].type != .checkpoint {
            throw TraceError.corrupted("\(source.name): a fork whose record 1 is a \(all[1].type.name) record, not the"
                + " state checkpoint of round \(first)")
        }
        // A fork whose records start at another round than its `at` stops the scan right after the
        // checkpoint: name it rather than read an empty trace.
        if header.fork != nil, all.count == 2,
            let next = try? source.read(all[1].offset + all[1].size, TraceFormat.recordHeaderSize),
           case .success(let h) = RecordHeader.parse(next[...], fileMinor: file.signature.minor),
           h.type == .keyframe || h.type == .round, h.round != Int64(first) {
            throw TraceError.corrupted("\(source.name): a fork at round \(first) whose first \(h.type.name)"
                + " record is of round \(h.round)")
        }
        records = all
        let rounds = all.indices.filter { all[$0].type == .round }, keyframes = all.indices.filter {
            all[$0].type == .keyframe
        }
        roundSequence = rounds
        keyframeSequence = keyframes
        roundRecords = rounds.map { all[$0] }
        keyframeRecords = keyframes.map { all[$0] }
        var checkpoints: [Int] = [], positions: [Int] = [], roundsBefore = first
        for (k, e) in all.enumerated() {
            if e.type == .round { roundsBefore += 1 }
            if e.type == .checkpoint { checkpoints.append(k); positions.append(roundsBefore) }
        }
        checkpointSequence = checkpoints
        checkpointRecords = checkpoints.map { all[$0] }
        checkpointRounds = positions
        checkpointBodyLimit = TraceParsing.checkpointBodyLimit(header)
        largestRoundPayload = Self.largestPayload(.round, in: all)
        largestKeyframePayload = Self.largestPayload(.keyframe, in: all)
        largestCheckpointPayload = Self.largestPayload(.checkpoint, in: all)
    }

    /// The number of round records.
    public var roundCount: Int { roundRecords.count }
    /// The first round recorded: 0, or a fork's `at` (FORMAT.md §5.1.1).
    public let firstRound: Int
    /// The rounds recorded, in order: `firstRound ..< firstRound + roundCount`.
    public var rounds: Range<Int> { firstRound ..< firstRound + roundRecords.count }
    /// What a message says of the rounds this trace holds, e.g. `rounds 0..<300`.
    public var roundsText: String { "rounds \(rounds.lowerBound)..<\(rounds.upperBound)" }
    public var parameterCount: Int { header.model.parameterCount }

    // MARK: Rounds and keyframes

    /// Round `t`, read with one positioned read and checked (digest, link to the previous record, content).
    public func round(_ t: Int) throws(TraceError) -> TraceRound {
        guard rounds.contains(t), roundRecords[t - firstRound].round == t else {
            throw TraceError(.usage, "\(path) has no round \(t): it holds \(roundsText)")
        }
        return try readRound(t)
    }

    /// Round `t`, decompressed with `decompressor` (one per thread when reading concurrently).
    public func round(_ t: Int, using decompressor: ZstdDecompressor) throws(TraceError) -> TraceRound {
        guard rounds.contains(t), roundRecords[t - firstRound].round == t else {
            throw TraceError(.usage, "\(path) has no round \(t): it holds \(roundsText)")
        }
        return try readRound(t, decompressor: decompressor)
    }

    /// Calls `body` with every round in `range` (default all), in order, one round in memory at a time.
    public func forEachRound(in range: Range<Int>? = nil, _ body: (TraceRound) throws -> Void) throws {
        let r = range ?? rounds
        guard r.isEmpty || (r.lowerBound >= rounds.lowerBound && r.upperBound <= rounds.upperBound) else {
            throw TraceError(.usage,
                "\(path) has \(roundsText); rounds \(r.lowerBound)..<\(r.upperBound) were asked for")
        }
        for t in r { try body(try readRound(t)) }
    }

    /// The last keyframe at or before the start of round `t`.
    public func keyframe(atOrBefore t: Int) throws(TraceError) -> TraceKeyframe {
        guard let k = keyframeRecords.lastIndex(where: { $0.round <= t }) else {
            throw TraceError(.corrupted, "\(path) has no keyframe at or before round \(t)")
        }
        let entry = keyframeRecords[k]
        // Its body, and the vectors it decodes to, within the memory limit (docs/bad-input.md).
        try checkMemory(MemoryArithmetic.add(keyframeReadBytes, MemoryArithmetic.mul(vectorBytes, keyframeVectors)),
                        operation: "reading keyframe \(entry.round)")
        do throws(ParseFailure) {
            let body = try file.body(entry, sequence: keyframeSequence[k], limit: bodyLimit, decompressor: decompressor)
            let parsed = try TraceParsing.keyframe(body, header: header, expectedRound: entry.round, decoder: decoder)
            return TraceKeyframe(body: parsed, path: path)
        } catch {
            throw TraceError.corrupted("\(path): keyframe \(entry.round): \(error.reason)")
        }
    }

    /// The model at the start of round `t`: the keyframe before it plus the recorded diffs
    /// (bit-exact: x_{t+1} = fl(x_t + Δx)). Needs the diffs of the rounds in between.
    public func parameters(atStartOf t: Int) throws(TraceError) -> [Float] {
        let k = try keyframe(atOrBefore: t)
        var x = try k.parameters()
        for s in k.round ..< t {
            let diff = try round(s).modelDiff()
            x.withUnsafeMutableBufferPointer { p in diff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        }
        return x
    }

    /// The checked, decompressed body of record `k` (a header, keyframe or round record): what
    /// ``TraceParsing`` parses. For tools (the fuzzer's seed corpus); readers use ``round(_:)``.
    public func bodyBytes(ofRecord k: Int, using decompressor: ZstdDecompressor? = nil) throws(TraceError) -> [UInt8] {
        guard k >= 0 && k < records.count, [.header, .keyframe, .round, .checkpoint].contains(records[k].type) else {
            throw TraceError.usage("\(path): record \(k) is not a header, keyframe, round or checkpoint record")
        }
        let limit = k == 0 ? TraceParsing.headerBodyLimit : records[k].type == .checkpoint ? checkpointBodyLimit
            : bodyLimit
        do throws(ParseFailure) {
            return try file.body(records[k], sequence: k, limit: limit, decompressor: decompressor
                ?? self.decompressor) } catch {
            throw TraceError.corrupted("\(path): \(TraceFile.describe(records[k])): \(error.reason)")
        }
    }

    /// Round `t` (in ``rounds``: the caller checked).
    func readRound(_ t: Int, decompressor: ZstdDecompressor? = nil) throws(TraceError) -> TraceRound {
        let i = t - firstRound
        try checkMemory(roundReadBytes, operation: "reading round \(t)")
        do throws(ParseFailure) {
            let body = try file.body(roundRecords[i], sequence: roundSequence[i], limit: bodyLimit,
                decompressor: decompressor ?? self.decompressor)
            let parsed = try TraceParsing.round(body, header: header, expectedRound: t, decoder: decoder)
            return TraceRound(body: parsed, path: path, parameterCount: header.model.parameterCount)
        } catch {
            throw TraceError.corrupted("\(path): round \(t): \(error.reason)")
        }
    }
}
