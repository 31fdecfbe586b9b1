import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// ``SimulationConfig/smoke`` with 7 rounds, centered clipping (a carried state) and IPM (colluding copies).
func tinyConfig(_ edit: (inout SimulationConfig) -> Void = { _ in }) -> SimulationConfig {
    var c = SimulationConfig.smoke
    c.rounds = 7
    c.aggregator = "cclip"
    c.attack = "ipm"
    edit(&c)
    return c
}

let tinyData = Dataset.synthetic(trainCount: 1200, testCount: 200, seed: 1)

/// A fresh temporary file path (the file does not exist).
func temporaryPath(_ name: String = "t") -> String {
    NSTemporaryDirectory() + "desgd-\(name)-\(UUID().uuidString).trace"
}

/// Forwards to the recorder and keeps the events and snapshots for comparison.
final class Tee: SimulationObserver {
    let recorder: TraceRecorder
    var events: [RoundEvent] = []
    var snapshots: [Int: ServerSnapshot] = [:]
    /// The complete state at the start of every round (when `keepStates`).
    var states: [Int: SimulationState] = [:]
    var keepStates = false
    var stopAfter: Int?
    init(_ recorder: TraceRecorder) { self.recorder = recorder }
    func runStarted(_ setup: SimulationSetup) { recorder.runStarted(setup) }
    func stateAvailable(atStartOf round: Int, state: () -> SimulationState) {
        if keepStates { states[round] = state() }
        recorder.stateAvailable(atStartOf: round, state: state)
    }
    func roundStarting(_ round: Int, snapshot: () -> ServerSnapshot) {
        snapshots[round] = snapshot()
        recorder.roundStarting(round, snapshot: snapshot)
    }
    func roundFinished(_ event: RoundEvent) {
        events.append(event)
        recorder.roundFinished(event)
        if let s = stopAfter, events.count >= s { recorder.stopRequested = true }
    }
    func runFinished(_ result: SimulationResult) { recorder.runFinished(result) }
    var shouldStop: Bool { recorder.shouldStop }
}

/// Records `config` into a new file; returns the path and what the engine reported.
func record(_ config: SimulationConfig, mode: RecordingMode = .full, keyframes: Int = 3, stopAfter: Int? = nil,
            checkpoints: Int = 0, keepStates: Bool = false, path: String = temporaryPath()) throws -> (String, Tee,
            SimulationResult) {
    let recorder = try TraceRecorder(path: path, mode: mode, keyframeInterval: keyframes,
        checkpointInterval: checkpoints)
    let tee = Tee(recorder)
    tee.stopAfter = stopAfter
    tee.keepStates = keepStates
    let result = try Simulation(config: config, dataset: tinyData).run(observer: tee)
    #expect(recorder.failure == nil)
    return (path, tee, result)
}

func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

@Suite struct TraceRoundTripTests {
    /// Every field written comes back: header, senders, messages (bit for bit), decisions, states
    /// before and after, aggregate, model diff, evaluation, metrics, keyframes, and the model
    /// rebuilt from a keyframe and the diffs equals the engine's.
    @Test func everyFieldRoundTrips() throws {
        let config = tinyConfig()
        let (path, tee, result) = try record(config)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TraceReader(path: path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.config == config)
        #expect(r.header.program == "desgd \(DesgdVersion.current)")
        #expect(r.header.aggregator == "cclip:tau=10,l=1" || r.header.aggregator.hasPrefix("cclip"))
        #expect(r.header.groups.count == 10)
        #expect(r.header.model.parameterCount == 19_670)
        #expect(r.roundCount == config.rounds)
        #expect(r.keyframeRecords.map(\.round) == [0, 3, 6, 7])
        for e in tee.events {
            let t = try r.round(e.round)
            #expect(t.content.classes == e.classes)
            #expect(t.content.evaluation == e.evaluation)
            #expect(bits(try t.modelDiff()) == bits(e.modelDiff))
            for (k, a) in e.aggregations.enumerated() {
                let stored = t.aggregations[k]
                #expect(stored.classIndex == a.classIndex)
                #expect(stored.senders == a.senders)
                #expect(bits(try t.messages(k).storage) == bits(a.messages.storage))
                #expect(stored.decision == a.decision)
                #expect(stored.attack == a.attackDecision)
                #expect(try t.state(k, after: false) == a.stateBefore)
                #expect(try t.state(k, after: true) == a.stateAfter)
                #expect(bits(try t.aggregate(k)) == bits(a.aggregate))
                let expected = a.aggregate.withUnsafeBufferPointer {
                    DeviationMetrics.measure(messages: a.messages, honest: a.senders.map { !$0.byzantine }, output: $0,
                                             decision: a.decision, bound: r.header.groups[a.classIndex].resilienceBound)
                }
                var storedWithoutDrift = stored.metrics
                storedWithoutDrift.drift = nil  // checked in DriftRecordingTests
                #expect(storedWithoutDrift == expected)
                // The two colluding IPM copies are stored once.
                let m = try #require(stored.messages)
                #expect(m[m.count - 1] == m[m.count - 2])
            }
        }
        for (round, snapshot) in tee.snapshots {
            let k = try r.keyframe(atOrBefore: round)
            if k.round == round {
                #expect(bits(try k.parameters()) == bits(snapshot.parameters))
                #expect(try k.classMomenta().map(bits) == snapshot.classMomenta.map(bits))
            }
            #expect(bits(try r.parameters(atStartOf: round)) == bits(snapshot.parameters))
        }
        #expect(bits(try r.parameters(atStartOf: config.rounds)) == bits(result.finalParameters))
        #expect(r.verifyChain().holds)
    }

    /// The same configuration recorded twice gives byte-identical files, whatever the thread count
    /// of the run (threads are part of the configuration, so the header differs: the round and
    /// keyframe records, compared by their digests' inputs, do not).
    @Test func sameConfigurationSameBytes() throws {
        let config = tinyConfig()
        let (a, _, _) = try record(config)
        let (b, _, _) = try record(config)
        defer { for p in [a, b] { try? FileManager.default.removeItem(atPath: p) } }
        let x = try Data(contentsOf: URL(fileURLWithPath: a)), y = try Data(contentsOf: URL(fileURLWithPath: b))
        #expect(x.count > 100_000)
        #expect(x == y)

        let (c, _, _) = try record(tinyConfig { $0.threads = 2 })
        defer { try? FileManager.default.removeItem(atPath: c) }
        let ra = try TraceReader(path: a), rc = try TraceReader(path: c)
        for t in 0..<ra.roundCount {
            let p = try ra.round(t), q = try rc.round(t)
            #expect(p.content == q.content)
            #expect(bits(try p.modelDiff()) == bits(try q.modelDiff()))
            #expect(bits(try p.messages(0).storage) == bits(try q.messages(0).storage))
        }
    }

    /// `decisions` keeps no vectors but every decision and metric; `sampled:K` keeps vectors of
    /// rounds t with t mod K = 0; keyframes are there in both.
    @Test func recordingModes() throws {
        let (full, _, _) = try record(tinyConfig())
        let (decisions, _, _) = try record(tinyConfig(), mode: .decisions)
        let (sampled, _, _) = try record(tinyConfig(), mode: .sampled(every: 3))
        defer { for p in [full, decisions, sampled] { try? FileManager.default.removeItem(atPath: p) } }
        let f = try TraceReader(path: full), d = try TraceReader(path: decisions), s = try TraceReader(path: sampled)
        #expect(d.header.recording == .decisions && s.header.recording == .sampled(every: 3))
        for t in 0..<f.roundCount {
            let a = try f.round(t), b = try d.round(t), c = try s.round(t)
            #expect(!b.hasVectors && b.content.modelDiff == nil && b.content.vectors.isEmpty)
            #expect(b.aggregations.map(\.decision) == a.aggregations.map(\.decision))
            #expect(b.aggregations.map(\.metrics) == a.aggregations.map(\.metrics))
            #expect(c.hasVectors == (t % 3 == 0))
            if c.hasVectors { #expect(bits(try c.modelDiff()) == bits(try a.modelDiff())) }
            #expect(throws: TraceError.self) { try b.modelDiff() }
        }
        let roundBytes = { (r: TraceReader) in r.roundRecords.reduce(UInt64(0)) { $0 + $1.size } }
        #expect(roundBytes(d) * 20 < roundBytes(f))
        #expect(bits(try d.keyframe(atOrBefore: 7).parameters()) == bits(try f.keyframe(atOrBefore: 7).parameters()))
    }

    /// A stopped run (Ctrl-C) ends with a final keyframe, the index and a footer marked interrupted.
    @Test func interruptedRunFinishesCleanly() throws {
        let (path, _, result) = try record(tinyConfig(), stopAfter: 4)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(result.rounds == 4)
        let r = try TraceReader(path: path)
        #expect(r.completeness == .complete(interrupted: true))
        #expect(r.roundCount == 4)
        #expect(r.keyframeRecords.last?.round == 4)
        #expect(bits(try r.keyframe(atOrBefore: 4).parameters()) == bits(result.finalParameters))
    }

    @Test func neverOverwritesWithoutForce() throws {
        let (path, _, _) = try record(tinyConfig { $0.rounds = 1 })
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(throws: TraceError.self) { try TraceRecorder(path: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        _ = try TraceRecorder(path: path, overwrite: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == TraceFormat.signatureSize)
    }

    @Test func recordingModeParsing() throws {
        #expect(try RecordingMode.parse("full") == .full)
        #expect(try RecordingMode.parse("sampled:5") == .sampled(every: 5))
        #expect(try RecordingMode.parse("decisions") == .decisions)
        for bad in ["", "sampled", "sampled:0", "sampled:x", "all"] {
            #expect(throws: TraceError.self) { try RecordingMode.parse(bad) }
        }
    }
}

@Suite struct TraceDefenceTests {
    /// One recorded trace shared by the damage tests (read-only).
    static let trace: (path: String, bytes: [UInt8], events: [RoundEvent]) = {
        let (path, tee, _) = try! record(tinyConfig { $0.rounds = 9 })
        return (path, [UInt8](try! Data(contentsOf: URL(fileURLWithPath: path))), tee.events)
    }()

    func write(_ bytes: ArraySlice<UInt8>) -> String {
        let p = temporaryPath("damaged")
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    /// A trace cut at any byte opens (once its header is complete) and yields exactly the rounds
    /// whose records are complete, each bit for bit; before that, a clear truncation error.
    @Test func truncatedAtManyOffsets() throws {
        let (path, bytes, events) = Self.trace
        let full = try TraceReader(path: path)
        let headerEnd = Int(full.records[0].offset + full.records[0].size)
        var offsets = Set((0..<80).map { k in (k * 7_919_113) % bytes.count })
        for e in full.records { offsets.formUnion([Int(e.offset), Int(e.offset + e.size) - 1, Int(e.offset + e.size)]) }
        offsets.formUnion([0, 1, 15, 16, 17, headerEnd - 1, headerEnd])
        for cut in offsets.sorted() where cut <= bytes.count {
            let p = write(bytes[0..<cut])
            defer { try? FileManager.default.removeItem(atPath: p) }
            if cut < headerEnd {
                do {
                    _ = try TraceReader(path: p)
                    Issue.record("a trace cut at \(cut) before its header's end opened")
                } catch {
                    #expect(error.kind == .truncated, "cut at \(cut): \(error.message)")
                }
                continue
            }
            let r = try TraceReader(path: p)
            let complete = full.roundRecords.filter { Int($0.offset + $0.size) <= cut }.count
            #expect(r.roundCount == complete, "cut at \(cut)")
            if cut < bytes.count - TraceFormat.footerRecordSize + 1 {
                #expect(r.completeness != .complete(interrupted: false))
            }
            for t in 0..<r.roundCount {
                #expect(bits(try r.round(t).modelDiff()) == bits(events[t].modelDiff))
            }
            #expect(r.verifyChain().holds)
        }
    }

    /// A flipped byte in a round's payload is reported with that round; the other rounds still read.
    @Test func flippedBytesNameTheRound() throws {
        let (path, bytes, _) = Self.trace
        let full = try TraceReader(path: path)
        for t in [0, 4, 8] {
            let e = full.roundRecords[t]
            for position in [Int(e.offset) + 70, Int(e.offset + e.size) / 2 + Int(e.offset) / 2,
                Int(e.offset + e.size) - 40, Int(e.offset + e.size) - 1] {
                var damaged = bytes
                damaged[position] ^= 0x10
                let p = write(damaged[...])
                defer { try? FileManager.default.removeItem(atPath: p) }
                let r = try TraceReader(path: p)
                do {
                    _ = try r.round(t)
                    Issue.record("round \(t) read despite a flipped byte at \(position)")
                } catch {
                    #expect(error.kind == .corrupted)
                    #expect(error.message.contains("round \(t):"), "\(error.message)")
                }
                for other in 0..<r.roundCount where other != t { _ = try r.round(other) }
                let chain = r.verifyChain()
                #expect(!chain.holds && chain.failedRound == t)
            }
        }
    }

    /// A flipped byte in a round's record header (its round number, its length) is caught too:
    /// by the index when there is one, by the scan otherwise, naming the round.
    @Test func damagedRecordHeaders() throws {
        let (_, bytes, _) = Self.trace
        let full = try TraceReader(path: Self.trace.path)
        let e = full.roundRecords[5]
        for field in [16, 24, 30] {  // round, payload length (low byte), payload length (high bytes)
            var damaged = bytes
            damaged[Int(e.offset) + field] ^= 0x41
            let p = write(damaged[...])
            defer { try? FileManager.default.removeItem(atPath: p) }
            let r = try TraceReader(path: p)
            #expect(throws: TraceError.self) { try r.round(5) }
            // Without the footer the scan stops at the damaged record, keeping the rounds before it.
            let cutFooter = write(damaged[0 ..< Int(full.records.first { $0.type == .index }!.offset)])
            defer { try? FileManager.default.removeItem(atPath: cutFooter) }
            let s = try TraceReader(path: cutFooter)
            #expect(s.roundCount == 5 || s.roundCount == 6)  // a wrong length is found by the next header
            for t in 0..<5 { _ = try s.round(t) }
            if s.roundCount == 6 { #expect(throws: TraceError.self) { try s.round(5) } }
            guard case .unfinished(let reason) = s.completeness else {
                Issue.record("footer expected missing"); continue
            }
            #expect(reason.contains("round 4") || reason.contains("round 5"), "\(reason)")
        }
    }

    /// Absurd declared sizes are refused before anything is allocated.
    @Test func absurdSizesAreRejected() throws {
        let (_, bytes, _) = Self.trace
        let full = try TraceReader(path: Self.trace.path)
        let e = full.roundRecords[2]
        var damaged = Array(bytes[0 ..< Int(e.offset + e.size)])
        // Payload length 2^62 in round 2's header: the scan stops there, naming the limit.
        for k in 0..<8 { damaged[Int(e.offset) + 24 + k] = k == 7 ? 0x40 : 0 }
        let p = write(damaged[...])
        defer { try? FileManager.default.removeItem(atPath: p) }
        let r = try TraceReader(path: p)
        #expect(r.roundCount == 2)
        guard case .unfinished(let reason) = r.completeness else { Issue.record("expected a scan"); return }
        #expect(reason.contains("above the format's limit"), "\(reason)")

        // A zstd frame declaring more than the limit is refused without decompressing it.
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let frame = ZstdCompressor(level: 1).compress([zeros.withUnsafeBytes { $0 }])
        let d = ZstdDecompressor()
        guard case .failure(let f) = frame.withUnsafeBytes({ d.decompress($0, limit: 1000) }) else {
            Issue.record("oversized frame accepted"); return
        }
        #expect(f.reason.contains("above the limit"))
        guard case .success(let back) = frame.withUnsafeBytes({ d.decompress($0, limit: 1 << 20) }) else {
            Issue.record("valid frame refused"); return
        }
        #expect(back == zeros)

        // A vector entry pointing outside its section is refused.
        var content = RoundContent(round: 0, hasVectors: true, classes: [], aggregations: [], modelDiff: nil,
                                   evaluation: nil,
                                   vectors: [VectorEntry(offset: 0, count: 1 << 40)])
        var body = RecordBody.jsonPart(content, encoder: RecordBody.encoder())
        body += [0, 0, 0, 0]
        guard case .failure(let g) = ParsedBody<RoundContent>.parse(body, decoder: RecordBody.decoder()) else {
            Issue.record("out-of-bounds vector accepted"); return
        }
        #expect(g.reason.contains("outside"))
        content.vectors = [VectorEntry(offset: 0, count: 1, ref: 0)]
        body = RecordBody.jsonPart(content, encoder: RecordBody.encoder()) + [0, 0, 0, 0]
        guard case .failure = ParsedBody<RoundContent>.parse(body, decoder: RecordBody.decoder()) else {
            Issue.record("self-referencing prediction accepted"); return
        }
    }

    /// Not a trace, another major version, an empty file, a missing file: one clear error each.
    @Test func wrongFilesAreRefused() throws {
        let (_, bytes, _) = Self.trace
        var newer = bytes
        newer[10] = 2
        let cases: [([UInt8], TraceError.Kind, String)] = [
            (newer, .version, "format 2.\(TraceFormat.minor)"),
            (Array("hello, world, this is text".utf8), .version, "not a desgd trace"),
            ([], .truncated, "shorter than a trace signature"),
        ]
        for (content, kind, phrase) in cases {
            let p = write(content[...])
            defer { try? FileManager.default.removeItem(atPath: p) }
            do {
                _ = try TraceReader(path: p)
                Issue.record("accepted: \(phrase)")
            } catch {
                #expect(error.kind == kind && error.message.contains(phrase), "\(error.message)")
            }
        }
        #expect(throws: TraceError.self) { try TraceReader(path: "/nonexistent/x.trace") }
    }
}

@Suite struct VectorCodecTests {
    /// Every bit pattern survives, NaN payloads and infinities included, with and without a
    /// prediction (any prediction: a random one, and a scaled one).
    @Test func losslessForEveryBitPattern() {
        var stream = RandomStream(seed: 3, purpose: .syntheticData)
        let values = (0..<1001).map { _ in Float(bitPattern: stream.nextUInt32()) }
            + [.nan, .infinity, -.infinity, -0.0, 0]
        let random = (0..<values.count).map { _ in Float(bitPattern: stream.nextUInt32()) }
        var scaled = [Float](repeating: 0, count: values.count)
        random.withUnsafeBufferPointer { r in
            scaled.withUnsafeMutableBufferPointer { VectorCodec.predict(from: r, scale: -0.37, into: $0) } }
        #expect(scaled[5] == -0.37 * random[5])
        for prediction in [nil, random, scaled] {
            var out: [UInt8] = []
            values.withUnsafeBufferPointer { v in
                if let prediction {
                    prediction.withUnsafeBufferPointer { VectorCodec.encode(v, prediction: $0, into: &out) } } else {
                    VectorCodec.encode(v, prediction: nil, into: &out)
                }
            }
            #expect(out.count == 4 * values.count)
            let back = out.withUnsafeBytes { VectorCodec.decode($0, count: values.count, prediction: prediction) }
            #expect(bits(back) == bits(values))
        }
        // Byte planes: byte k of element i is at k·n + i.
        var out: [UInt8] = []
        [Float(bitPattern: 0x0403_0201), Float(bitPattern: 0x0807_0605)].withUnsafeBufferPointer {
            VectorCodec.encode($0, prediction: nil, into: &out)
        }
        #expect(out == [1, 5, 2, 6, 3, 7, 4, 8])
        // Zigzag differences: +1 → 2, −1 → 1.
        out = []
        [Float(bitPattern: 11), Float(bitPattern: 9)].withUnsafeBufferPointer { v in
            [Float(bitPattern: 10), Float(bitPattern: 10)].withUnsafeBufferPointer {
                VectorCodec.encode(v, prediction: $0, into: &out)
            }
        }
        #expect(out == [2, 1, 0, 0, 0, 0, 0, 0])
        // A scaled prediction computed inside `encode` (16 lanes, then the tail) gives the bytes of
        // one computed first by `predict`, for every length around the SIMD width.
        for n in [0, 1, 15, 16, 17, 33, 1006] {
            let v = Array(values.prefix(n)), r = Array(random.prefix(n)), p = Array(scaled.prefix(n))
            var inline: [UInt8] = [], ahead: [UInt8] = [], copy: [UInt8] = [], scalar: [UInt8] = []
            v.withUnsafeBufferPointer { v in
                r.withUnsafeBufferPointer { VectorCodec.encode(v, prediction: $0, scale: -0.37, into: &inline) }
                p.withUnsafeBufferPointer { VectorCodec.encode(v, prediction: $0, into: &ahead) }
                r.withUnsafeBufferPointer { VectorCodec.encode(v, prediction: $0, into: &copy) }
            }
            #expect(inline == ahead, "n = \(n)")
            // The same bytes element by element, as FORMAT.md §4.2 defines them.
            scalar = [UInt8](repeating: 0, count: 4 * n)
            for i in 0..<n {
                let d = v[i].bitPattern &- r[i].bitPattern
                let z = (d << 1) ^ UInt32(bitPattern: Int32(bitPattern: d) >> 31)
                for k in 0..<4 { scalar[k * n + i] = UInt8(truncatingIfNeeded: z >> (8 * UInt32(k))) }
            }
            #expect(copy == scalar, "n = \(n)")
        }
    }

    @Test func identicalVectorsAreStoredOnce() {
        var s = VectorSectionBuilder()
        let a: [Float] = [1, 2, 3], b: [Float] = [1, 2, 4], c: [Float] = [-2, -4, -6.5]
        #expect(s.add(a) == 0)
        #expect(s.add(b, predictedBy: .copy(of: 0)) == 1)
        #expect(s.add(a) == 0)
        #expect(s.add([Float](a)) == 0)
        #expect(s.add(c, predictedBy: .multiple(of: 0)) == 2)
        #expect(s.add([Float](repeating: .nan, count: 3), predictedBy: .multiple(of: 0)) == 3)  // not finite: plain
        let expected = [VectorEntry(offset: 0, count: 3), VectorEntry(offset: 12, count: 3, ref: 0),
                        VectorEntry(offset: 24, count: 3, ref: 0, scaleBits: Float(-29.5 / 14).bitPattern),
                        VectorEntry(offset: 36, count: 3)]
        #expect(s.entries == expected)
    }

    /// Matrix rows, arrays and copied buffers give the same section; a section built in the previous
    /// one's buffer (the recorder's reuse) is the same too, in the same memory.
    @Test func sectionBuiltInAReusedBuffer() {
        var g = RandomStream(seed: 7, purpose: .syntheticData)
        let d = 37  // not a multiple of the fingerprint's 8 floats
        let m = Matrix(rows: 4, columns: d, storage: (0 ..< 4 * d).map { _ in Float(g.nextDouble()) - 0.5 })
        func build(_ s: inout VectorSectionBuilder, rows: Bool) {
            for r in 0..<m.rows {
                let p: VectorSectionBuilder.Prediction? = r == 0 ? nil : r == 3 ? .multiple(of: 0) : .copy(of: 0)
                if rows {
                    _ = s.add(row: r, of: m, predictedBy: p)
                } else {
                    _ = m.withRow(r) { s.add($0, predictedBy: p) }
                }
            }
            #expect(s.add(Array(m.storage[d ..< 2 * d])) == 1)  // identical to row 1
        }
        var copied = VectorSectionBuilder()
        build(&copied, rows: false)
        var storage: [UInt8] = []
        var first = VectorSectionBuilder(reservingFloats: 5 * d, reusing: &storage)
        build(&first, rows: true)
        #expect(first.entries == copied.entries && first.data == copied.data)
        storage = first.data
        first = VectorSectionBuilder()
        let address = storage.withUnsafeBytes { $0.baseAddress }
        var second = VectorSectionBuilder(reservingFloats: 5 * d, reusing: &storage)
        #expect(storage.isEmpty)
        build(&second, rows: true)
        #expect(second.entries == copied.entries && second.data == copied.data)
        #expect(second.data.withUnsafeBytes { $0.baseAddress } == address)
        // The fingerprint sees the last, odd elements.
        var other = m.storage
        other[4 * d - 1] += 1
        let fingerprint = { (v: [Float]) in v.withUnsafeBufferPointer { VectorCodec.fingerprint($0) } }
        #expect(fingerprint(other) != fingerprint(m.storage))
    }

    /// The reused output buffer holds the frame ``ZstdCompressor/compress(_:)`` returns, whatever
    /// the sizes before it; a frame bound above the retained limit gets a buffer of its own.
    @Test func compressorReusesItsOutputBuffer() {
        var g = RandomStream(seed: 3, purpose: .syntheticData)
        let z = ZstdCompressor(level: 1), reference = ZstdCompressor(level: 1)
        var retained: UnsafeMutableRawPointer?
        for n in [100_000, 3_000, 1 << 20, 0, 250_000] {
            let a = (0..<n).map { _ in UInt8(truncatingIfNeeded: g.nextUInt32() % 7) }, b: [UInt8] = Array("json".utf8)
            let expected = b.withUnsafeBytes { pb in a.withUnsafeBytes { pa in reference.compress([pb, pa]) } }
            let frame = b.withUnsafeBytes { pb in a.withUnsafeBytes { pa in z.withCompressed([pb, pa]) { Array($0) } } }
            #expect(frame == expected, "n = \(n)")
            if n < 1 << 20, let r = retained { #expect(z.output?.baseAddress == r, "n = \(n)") }
            retained = z.output?.baseAddress
        }
        let big = [UInt8](repeating: 1, count: ZstdCompressor.retainedOutputLimit + 1)
        let frame = big.withUnsafeBytes { p in z.withCompressed([p]) { Array($0) } }
        #expect(frame == big.withUnsafeBytes { reference.compress([$0]) })
        #expect(z.output?.baseAddress == retained)
    }
}
