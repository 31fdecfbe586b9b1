import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdTrace

/// The format's compatibility promise (traces/FORMAT.md §9): every trace in traces/samples/,
/// written by an earlier version, still reads, with the same content.
@Suite struct CompatibilityTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/samples")

    /// Format 1.0, written by desgd 0.6.0: `desgd-record --agg cclip --attack ipm --honest 10
    /// --byzantine 2 --rounds 3 --eval-every 3` on Fashion-MNIST (normalised inputs).
    @Test func version1_0Sample() throws {
        let path = Self.samples.appendingPathComponent("v1.0-desgd-cclip-ipm-small-3r.trace").path
        let r = try TraceReader(path: path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 0])
        #expect(r.header.program == "desgd 0.6.0")
        #expect(r.header.aggregator == "cclip:tau=10,iters=3" && r.header.attack == "ipm:eps=0.1")
        #expect(r.header.config.honestWorkers == 10 && r.header.config.byzantineWorkers == 2
            && r.header.config.rounds == 3)
        #expect(r.header.dataset.kind == "fashion-mnist" && abs(r.header.dataset.normalization.mean - 0.2860) < 1e-4)
        #expect(r.parameterCount == 19_670 && r.roundCount == 3)
        #expect(r.keyframeRecords.map(\.round) == [0, 3])

        // The whole file is what was written: the chain holds and ends at the recorded digest.
        let chain = r.verifyChain()
        #expect(chain.holds && chain.verifiedRecords == chain.totalRecords)
        #expect(chain.lastDigest == "6f5bb7d89677ae766a183dc602b0ec5102d3b4db26f85110827db1e492595a30")

        for t in 0..<3 {
            let round = try r.round(t)
            #expect(round.content.classes == [t])
            let a = round.aggregations[0]
            #expect(a.senders.filter(\.byzantine).map(\.worker) == [10, 11])
            let messages = try round.messages(0)
            #expect(messages.rows == a.senders.count && messages.columns == 19_670)
            #expect(a.messages![messages.rows - 1] == a.messages![messages.rows - 2])  // IPM copies stored once
            // The recorded metrics are those of the recorded vectors.
            let aggregate = try round.aggregate(0)
            let m = aggregate.withUnsafeBufferPointer {
                DeviationMetrics.measure(messages: messages, honest: a.senders.map { !$0.byzantine }, output: $0,
                                         decision: a.decision, bound: a.metrics.bound)
            }
            #expect(m == a.metrics)
            // Format 1.0 has no drift metrics (FORMAT.md §5.4): they read as absent.
            #expect(a.metrics.drift == nil && round.content.drift == nil && r.header.driftWindow == nil)
            // Centered clipping's carried centre: the state after is the aggregate.
            #expect(try round.state(0, after: true).vectors["centre"].map(bits) == bits(aggregate))
        }
        // Keyframe 0 plus the three diffs is the final keyframe, bit for bit.
        var x = try r.keyframe(atOrBefore: 0).parameters()
        for t in 0..<3 {
            let diff = try r.round(t).modelDiff()
            x.withUnsafeMutableBufferPointer { p in diff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        }
        #expect(bits(x) == bits(try r.keyframe(atOrBefore: 3).parameters()))
        #expect(try r.round(2).content.evaluation != nil)
    }
}

extension CompatibilityTests {
    /// Format 1.1, written by desgd 0.7.0: the same command as the 1.0 sample with `--threads 1 --sign`
    /// (its public key is `v1.1-sample.key.pub`; the private key was not kept). Signature records after
    /// each keyframe and a final one, drift metrics in every round.
    @Test func version1_1SignedSample() throws {
        let path = Self.samples.appendingPathComponent("v1.1-desgd-cclip-ipm-small-3r-signed.trace").path
        let r = try TraceReader(path: path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 1] && r.header.program == "desgd 0.7.0" && r.header.driftWindow == 10)
        #expect(r.header.numerics == nil && r.header.effectiveNumerics == 1)
        #expect(r.roundCount == 3 && r.keyframeRecords.map(\.round) == [0, 3])
        #expect(r.records.filter { $0.type == .signature }.count == 3)
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "463bd497f4df475e2d77d2c455251c2ff601ada79e2c9d464990831fb59e0dd9")
        let key = try TracePublicKey.read(path: Self.samples.appendingPathComponent("v1.1-sample.key.pub").path)
        let signatures = r.verifySignatures(chain: chain)
        #expect(signatures.status == .whole && signatures.signers == [key.fingerprint]
            && signatures.trustFailure(key) == nil)
        for t in 0..<3 {
            let round = try r.round(t)
            let a = round.aggregations[0]
            #expect(a.metrics.drift?.count == 1)  // class t's first aggregation (cyclic schedule)
            #expect(round.content.drift?.rounds == t + 1)
            try Self.expectMetricsRecomputed(round)
        }
    }

    /// The first aggregation's recorded metrics equal those recomputed from its recorded messages
    /// and aggregate (drift carried over: it needs the earlier rounds).
    static func expectMetricsRecomputed(_ round: TraceRound) throws {
        let a = round.aggregations[0]
        let messages = try round.messages(0)
        let aggregate = try round.aggregate(0)
        var m = aggregate.withUnsafeBufferPointer {
            DeviationMetrics.measure(messages: messages, honest: a.senders.map { !$0.byzantine }, output: $0,
                                     decision: a.decision, bound: a.metrics.bound)
        }
        m.drift = a.metrics.drift
        #expect(m == a.metrics, "round \(round.round)")
    }
}

extension CompatibilityTests {
    static let version1_2Sample = "v1.2-desgd-cclip-ipm-small-3r-portable-checkpoints.trace"

    /// The 1.2 sample of desgd 0.8.0 (numerics 2, the portable backend, state checkpoints before
    /// rounds 0 and 2): read, chain pinned, metrics recomputed. `ReexecutionTests` re-executes it
    /// bit for bit, which pins the engine's arithmetic.
    @Test func version1_2Sample() throws {
        let r = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_2Sample).path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 2] && r.header.program == "desgd 0.8.0" && r.header.numerics == 2)
        #expect(r.header.config.backend == .portable && r.header.checkpointInterval == 2 && r.header.driftWindow == 2)
        #expect(r.roundCount == 3 && r.checkpointRounds == [0, 2])
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "3c0cf739f8aa7412ad5ea9d440780a9daa1b17ad878a456af9f85f5d33873e3e")
        for t in 0..<3 { try Self.expectMetricsRecomputed(try r.round(t)) }
    }
}

extension CompatibilityTests {
    static let version1_3ForkSample = "v1.3-fork-at1-geomed-small.trace"

    /// The 1.3 sample of desgd 0.10.0: `desgd-record --fork v1.2-…-portable-checkpoints.trace --at 1
    /// --agg geomed --threads 1 --checkpoint-every 0`. Its header names the 1.2 sample by the chain
    /// digest of its round 0; it starts with a checkpoint of round 1 (its only one, which keeps the
    /// file small) and holds rounds 1 and 2. `SampleReexecutionTests`
    /// re-executes it bit for bit.
    @Test func version1_3ForkSample() throws {
        let r = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_3ForkSample).path)
        let parent = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_2Sample).path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 3] && r.header.program == "desgd 0.10.0" && r.header.numerics == 2)
        let fork = try #require(r.header.fork)
        #expect(fork.at == 1 && fork.parentFile == Self.version1_2Sample)
        #expect(fork.changes == [.init(option: "--agg", parent: "cclip", fork: "geomed")])
        #expect(r.header.aggregator == "geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean")
        let anchor = try #require(parent.records.firstIndex { $0.type == .round && $0.round == 0 })
        #expect(fork.parentDigest == (try parent.storedDigest(ofRecord: anchor)))
        #expect(r.firstRound == 1 && r.rounds == 1..<3 && r.roundCount == 2 && r.checkpointRounds == [1])
        #expect(r.records[1].type == .checkpoint && r.records[2].type == .keyframe && r.records[2].round == 1)
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "03185d21539094b3d0e9d7c8cff05bdf57d7ceb3834304d5ef549566e5209ab5")
        for t in 1..<3 { try Self.expectMetricsRecomputed(try r.round(t)) }
        // The fork's starting model is the parent's after round 0 (the keyframe of round 1 is
        // the parent's keyframe 0 plus its round 0's model diff).
        var x = try parent.keyframe(atOrBefore: 0).parameters()
        let diff = try parent.round(0).modelDiff()
        x.withUnsafeMutableBufferPointer { p in diff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        #expect(bits(x) == bits(try r.keyframe(atOrBefore: 1).parameters()))
    }
}

/// The Python reader (python/src/desgd/trace.py, written from FORMAT.md alone) reads the sample and
/// passes its checks: the chain, the model rebuilt from keyframes and diffs, the recorded gap
/// recomputed in numpy, truncation and a flipped byte. Runs where the interpreter (`$DESGD_PYTHON`, default
/// Debian's /usr/bin/python3, which `python3-numpy` and `python3-zstandard` serve) has zstandard and numpy,
/// and always in CI (CI=true), where a missing module is a failure, not a skip.
@Suite struct PythonReaderTests {
    static let interpreter = ProcessInfo.processInfo.environment["DESGD_PYTHON"] ?? "/usr/bin/python3"
    static let python: Bool = {
        if ProcessInfo.processInfo.environment["CI"] == "true" { return true }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: interpreter)
        p.arguments = ["-c", "import zstandard, numpy"]
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()

    @Test(.enabled(if: python, "python3 with zstandard and numpy")) func pythonReaderChecksTheSample() throws {
        for sample in ["v1.0-desgd-cclip-ipm-small-3r.trace", "v1.1-desgd-cclip-ipm-small-3r-signed.trace",
                       CompatibilityTests.version1_2Sample,
                       CompatibilityTests.version1_3ForkSample, CompatibilityTests.version1_4Sample,
                       CompatibilityTests.version1_5LiveSample] {
            let (status, text) = try Self.check(CompatibilityTests.samples.appendingPathComponent(sample).path)
            #expect(status == 0, "\(sample): \(text)")
        }
    }

    /// Runs python/src/desgd/check_trace.py on `path`: its exit status and its output.
    static func check(_ path: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: PythonReaderTests.interpreter)
        let checker = CompatibilityTests.samples.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/src/desgd/check_trace.py")
        p.arguments = [checker.path, path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// The Python reader reads state checkpoints (format 1.2): check 6 of desgd/check_trace.py
    /// compares each with the keyframe of its round, bit for bit.
    @Test(.enabled(if: python, "python3 with zstandard and numpy")) func pythonReaderReadsCheckpoints() throws {
        let (path, _, _) = try record(tinyConfig(), keyframes: 3, checkpoints: 3)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, text) = try Self.check(path)
        #expect(status == 0, "\(text)")
        #expect(text.contains("checkpoint 3: model and buffer equal keyframe 3"), "\(text)")
    }
}

extension CompatibilityTests {
    static let version1_4Sample = "v1.4-desgd-cclip-ipm-small-3r-portable-decisions.trace"

    /// The 1.4 sample of desgd 0.12.0 (numerics 2, the portable backend, `decisions` with state
    /// checkpoints before rounds 0 and 2, exponentially weighted recent drift): read, chain pinned,
    /// its checkpoints' drift state of the 1.4 kind. `SampleReexecutionTests` re-executes it.
    @Test func version1_4Sample() throws {
        let r = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_4Sample).path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 4] && r.header.program == "desgd 0.12.0" && r.header.numerics == 2)
        #expect(r.header.driftRecent == .exponential && r.header.recording == .decisions && r.header.driftWindow == 2)
        #expect(r.roundCount == 3 && r.checkpointRounds == [0, 2] && r.keyframeRecords.map(\.round) == [0, 3])
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "9d0795f73951c802048d32de1bf479daeba018fc9c6ff0fefdf673f5cbf15362")
        let drift = try #require(try r.checkpoint(1).driftState())
        #expect(!drift.groups.isEmpty
            && drift.groups.allSatisfy { $0.history.window.isEmpty && $0.history.recentSum.count == r.parameterCount })
    }
}

extension CompatibilityTests {
    static let version1_5LiveSample = "v1.5-live-flower-trmean-alie-small-3r-signed.trace"

    /// The 1.5 sample: a live federation's trace, recorded by desgd 0.13.0 from a real Flower 1.42
    /// federation (a SuperLink, three PyTorch SuperNodes on 127.0.0.1, TrMean under ALIE crafted by the
    /// server, the small model, 3 rounds; `python -m desgd.flower.run_local … --sign`): read, chain
    /// pinned, signed whole by the committed server key, every client message verified against its
    /// registered key. `Tests/DesgdLiveTests` verifies and audits such traces; the Python reader checks
    /// this one above.
    @Test func version1_5LiveSample() throws {
        let r = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_5LiveSample).path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 5] && r.header.program == "desgd 0.13.0")
        let engine = try #require(r.header.engine)
        #expect(engine.name == "flower" && engine.version == "1.42.0" && engine.nodes.map(\.worker) == [0, 1, 2])
        #expect(r.roundCount == 3 && r.header.recording == .full && r.checkpointRounds.isEmpty)
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "fc8645936fa4a9f40a801f0970e2aa2b674ad8940756eaaa48d1b766d7f8c936")
        let key = try TracePublicKey.read(path: Self.samples.appendingPathComponent("v1.5-sample-server.key.pub").path)
        #expect(r.verifySignatures(chain: chain).trustFailure(key) == nil)
        let clients = try #require(ClientMessageVerification.verify(r))
        #expect(clients.passed && clients.verified == 9 && clients.craftedByServer == 3 && clients.clients.count == 3)
    }

    static let version1_6OwnModelSample = "v1.6-live-flower-own-model-trmean-alie-3r-signed.trace"

    /// The 1.6 sample: a live federation on the clients' own model and data, recorded by desgd 0.14.0
    /// from a real Flower 1.42 federation (`python -m desgd.flower.run_local --task blobs_task … --sign`:
    /// four PyTorch SuperNodes training a 67-parameter perceptron on their own Gaussian blobs, TrMean
    /// under ALIE crafted by the server, 3 rounds). Its header declares the clients' setup, the chain is
    /// pinned, the file is signed by the committed server key and every client message verifies.
    @Test func version1_6OwnModelSample() throws {
        let r = try TraceReader(path: Self.samples.appendingPathComponent(Self.version1_6OwnModelSample).path)
        #expect(r.completeness == .complete(interrupted: false))
        #expect(r.header.formatVersion == [1, 6] && r.header.program == "desgd 0.14.0")
        #expect(r.header.config.model == .external && r.header.config.data == .external)
        #expect(r.header.config.clients?.holdings == [[0, 1], [1, 2], [0, 2], [0, 1, 2]])
        #expect(r.header.model.parameterCount == 67 && r.header.dataset.kind == "external")
        let engine = try #require(r.header.engine)
        #expect(engine.name == "flower" && engine.data.contains("(task blobs_task)"))
        let chain = r.verifyChain()
        #expect(chain.holds && chain.lastDigest == "7504a76b09491e618cf16153548f150b5186327577bbdb3d2f537a10e91dff5e")
        let key = try TracePublicKey.read(path: Self.samples.appendingPathComponent("v1.6-sample-server.key.pub").path)
        #expect(r.verifySignatures(chain: chain).trustFailure(key) == nil)
        let clients = try #require(ClientMessageVerification.verify(r))
        #expect(clients.passed && clients.verified == 9 && clients.craftedByServer == 3 && clients.clients.count == 4)
    }
}
