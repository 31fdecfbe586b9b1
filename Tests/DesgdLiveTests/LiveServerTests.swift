import DesgdAudit
import DesgdCLI
import DesgdFuzzing
import DesgdLive
import DesgdNumerics
import DesgdReplay
import DesgdResimulation
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// A live federation's server driven as the Python package drives it, without Flower: clients'
/// messages in, a trace out that verifies, audits and refuses re-execution, and whose client
/// signatures catch a message altered after the fact.
@Suite struct LiveServerTests {
    /// The clients of a test federation: a key per worker and messages derived from the model.
    struct Clients {
        var keys: [Int: TraceSigningKey]
        init(workers: [Int]) throws {
            keys = [:]
            for w in workers { keys[w] = try TraceSigningKey(seed: [UInt8](repeating: UInt8(w + 1), count: 32)) }
        }
        var nodes: [LiveEngine.Node] {
            keys.keys.sorted().map {
                LiveEngine.Node(worker: $0, node: "\(1000 + $0)", publicKey: Hex.encode(keys[$0]!.publicKey.raw))
            }
        }
        /// A message as a client would send: a vector that depends on the model, worker and class.
        func message(
            _ server: LiveServer, round t: Int, worker w: Int, classIndex c: Int,
            storage: inout [[Float]]
        ) throws -> LiveServer.Message {
            let x = server.parameters
            let v = x.indices.map { i in Float(0.01) * x[i] + Float(w + 1) * 1e-3 * Float((i + 7 * (c + 2)) % 13 - 6) }
            storage.append(v)
            let payload = v.withUnsafeBufferPointer {
                ClientMessageSignature.payload(runTag: server.runTag, round: t, classIndex: c, worker: w, vector: $0)
            }
            let signature = try keys[w]!.sign(payload)
            return storage.last!.withUnsafeBufferPointer {
                LiveServer.Message(worker: w, classIndex: c, vector: $0, signature: signature)
            }
        }
    }

    static func engine(_ server: (SimulationConfig) -> [Int], config: SimulationConfig, clients: Clients) -> LiveEngine
    {
        let layout = ParameterLayout(config.model.shape ?? .small)
        return LiveEngine(
            name: "test", version: "1", training: "swift-testing", data: "synthetic",
            model: layout.tensors.map { .init(name: "m.\($0.name)", shape: $0.shape) }, nodes: clients.nodes)
    }

    static func options(_ extra: [String]) -> [String] {
        [
            "--model", "small", "--honest", "3", "--byzantine", "1", "--rounds", "4", "--partition", "iid",
            "--eval-every", "2", "--synthetic", "600", "--threads", "1",
        ] + extra
    }

    /// Runs every round with honest clients' messages (and Byzantine clients' under a client-side
    /// attack) and finishes the trace.
    static func run(_ words: [String], path: String) throws -> (LiveServer, Clients) {
        let config = try SimulationOptions.parseWords(options(words)).config
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let clientSide = try AttackCatalogue.makeAttack(config.attack).ownMomentum != .none
        let clients = try Clients(workers: Array(0..<n) + (clientSide ? Array(n..<n + f) : []))
        let server = try LiveServer(
            config: config, engine: engine({ _ in [] }, config: config, clients: clients),
            trace: .init(path: path, keyframeInterval: 2))
        for t in 0..<config.rounds {
            var storage: [[Float]] = []
            storage.reserveCapacity(64)
            let messages = try server.expectedMessages(round: t).map {
                try clients.message(server, round: t, worker: $0.worker, classIndex: $0.classIndex, storage: &storage)
            }
            try server.round(t, messages: messages)
        }
        _ = try server.finish()
        return (server, clients)
    }

    static func temporary(_ name: String) -> String {
        NSTemporaryDirectory() + "desgd-live-\(name)-\(UUID().uuidString).trace"
    }

    @Test(arguments: [
        ["--agg", "trmean", "--attack", "alie"], ["--agg", "cclip", "--attack", "signflip"],
        ["--mode", "sgd", "--agg", "median", "--attack", "ipm"],
    ])
    func traceVerifiesAndAudits(_ words: [String]) throws {
        let path = Self.temporary("verify")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try Self.run(words, path: path)
        let reader = try TraceReader(path: path)
        #expect(reader.header.engine?.name == "test" && reader.header.formatVersion == [1, 6])
        let verification = try Verification.verify(reader, threads: 1)
        #expect(verification.passed && verification.roundsChecked == 4 && verification.diffsChecked == 4)
        let clients = try #require(ClientMessageVerification.verify(reader))
        #expect(clients.passed && clients.failed == 0 && clients.verified > 0)
        // Server-side attacks craft the Byzantine rows (unsigned); client-side ones are signed.
        #expect((clients.craftedByServer > 0) == !words.contains("signflip"))
        let report = try Audit.report(reader, threads: 1)
        #expect(report.integrity.chainHolds && report.accuracy.count == 2)
        #expect(AuditText.render(report).contains("clients    \(clients.summary)"))
        #expect(AuditText.render(report).contains("live run   test 1"))
        #expect(AuditHTML.render(report).contains("every client message verified"))
        #expect(throws: TraceError.self) { try Reexecution.checkArithmetic(reader, backend: reader.header.backend) }
    }

    @Test func alteredMessageFailsItsClientsSignature() throws {
        let path = Self.temporary("altered")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try Self.run(["--agg", "trmean", "--attack", "alie"], path: path)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        // A server that records worker 1's message as worker 0's, with the digest chain recomputed.
        let altered = try #require(
            TraceMutator.editingJSON(of: bytes, type: .round, round: 2) { json in
                var aggregations = json["aggregations"] as! [[String: Any]]
                var messages = aggregations[0]["messages"] as! [Int]
                messages[0] = messages[1]
                aggregations[0]["messages"] = messages
                json["aggregations"] = aggregations
            })
        let alteredPath = Self.temporary("altered2")
        defer { try? FileManager.default.removeItem(atPath: alteredPath) }
        try Data(altered).write(to: URL(fileURLWithPath: alteredPath))
        let reader = try TraceReader(path: alteredPath)
        #expect(reader.verifyChain().holds)
        let clients = try #require(ClientMessageVerification.verify(reader))
        #expect(!clients.passed && clients.failed == 1)
        let failure = try #require(clients.failures.first)
        #expect(
            failure.round == 2 && failure.classIndex == reader.header.config.classSet(round: 2)[0]
                && failure.worker == 0)
        let report = try Audit.report(reader, threads: 1)
        #expect(AuditHTML.render(report).contains("client messages fail their signatures"))
    }

    @Test func refusesWhatIsNotTheRoundsSignedMessages() throws {
        let path = Self.temporary("refuse")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try SimulationOptions.parseWords(Self.options(["--agg", "trmean", "--attack", "alie"])).config
        let clients = try Clients(workers: [0, 1, 2])
        let server = try LiveServer(
            config: config, engine: Self.engine({ _ in [] }, config: config, clients: clients),
            trace: .init(path: path))
        var storage: [[Float]] = []
        storage.reserveCapacity(64)
        var messages = try server.expectedMessages(round: 0).map {
            try clients.message(server, round: 0, worker: $0.worker, classIndex: $0.classIndex, storage: &storage)
        }
        func refusal(_ round: Int, _ m: [LiveServer.Message]) -> String? {
            do {
                try server.round(round, messages: m)
                return nil
            } catch {
                if case .input(let why) = error { return why.description }
                return "not an input error"
            }
        }
        #expect(refusal(1, messages)?.contains("expected round 0") == true)
        #expect(refusal(0, Array(messages.dropLast()))?.contains("missing") == true)
        var forged = messages
        forged[0].signature[5] ^= 1
        #expect(refusal(0, forged)?.contains("not signed by its registered key") == true)
        // A message signed for another worker does not pass as this one's.
        forged = messages
        forged[0].worker = 1
        #expect(refusal(0, forged) != nil)
        #expect(server.nextRound == 0)
        try server.round(0, messages: messages)
        messages.removeAll()
        #expect(server.nextRound == 1)
        _ = try server.finish()
        let reader = try TraceReader(path: path)
        #expect(reader.roundCount == 1)
    }

    @Test func refusesClientsThatAreNotTheRunsSenders() throws {
        let config = try SimulationOptions.parseWords(Self.options(["--agg", "trmean", "--attack", "alie"])).config
        let clients = try Clients(workers: [0, 1])
        #expect(throws: LiveServerError.self) {
            _ = try LiveServer(
                config: config, engine: Self.engine({ _ in [] }, config: config, clients: clients),
                trace: .init(path: Self.temporary("senders")))
        }
        var engine = Self.engine({ _ in [] }, config: config, clients: try Clients(workers: [0, 1, 2]))
        engine.model.removeLast()
        #expect(throws: LiveServerError.self) {
            _ = try LiveServer(config: config, engine: engine, trace: .init(path: Self.temporary("model")))
        }
    }
    @Test func readersRefuseHostileEnginesAndSignatures() throws {
        let path = Self.temporary("hostile")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try Self.run(["--agg", "trmean", "--attack", "alie"], path: path)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        func opens(_ edited: [UInt8]?) throws -> Bool {
            let out = Self.temporary("hostile-edit")
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Data(try #require(edited)).write(to: URL(fileURLWithPath: out))
            return (try? TraceReader(path: out)) != nil
        }
        #expect(try opens(TraceRewriting.rewrite(bytes)))
        // The engine is format 1.5; its keys are valid Ed25519 keys; its nodes are the senders.
        #expect(try !opens(TraceRewriting.rewrite(bytes, minor: 4)))
        #expect(
            try !opens(
                TraceRewriting.rewrite(bytes) { json in
                    var engine = json["engine"] as! [String: Any]
                    var nodes = engine["nodes"] as! [[String: Any]]
                    nodes[0]["publicKey"] = String(repeating: "0", count: 64)  // a point of small order
                    engine["nodes"] = nodes
                    json["engine"] = engine
                }))
        #expect(
            try !opens(
                TraceRewriting.rewrite(bytes) { json in
                    var engine = json["engine"] as! [String: Any]
                    engine["nodes"] = Array((engine["nodes"] as! [[String: Any]]).dropLast())
                    json["engine"] = engine
                }))
        #expect(
            try !opens(
                TraceRewriting.rewrite(bytes) { json in
                    json["fork"] = [
                        "parentDigest": String(repeating: "a", count: 64), "at": 1, "parentFile": "p", "changes": [],
                    ]
                }))
        // A live round's signatures: one per sender, hex, present exactly for registered clients.
        func roundReads(_ edit: @escaping (inout [String: Any]) -> Void) throws -> Bool {
            let edited = try #require(TraceMutator.editingJSON(of: bytes, type: .round, round: 1, edit))
            let out = Self.temporary("hostile-round")
            defer { try? FileManager.default.removeItem(atPath: out) }
            try Data(edited).write(to: URL(fileURLWithPath: out))
            return (try? TraceReader(path: out).round(1)) != nil
        }
        func editSignatures(_ change: @escaping ([Any]) -> Any?) -> (inout [String: Any]) -> Void {
            { json in
                var aggregations = json["aggregations"] as! [[String: Any]]
                aggregations[0]["signatures"] = change(aggregations[0]["signatures"] as! [Any])
                json["aggregations"] = aggregations
            }
        }
        #expect(try roundReads(editSignatures { $0 }))
        #expect(try !roundReads(editSignatures { _ in nil }))
        #expect(try !roundReads(editSignatures { Array($0.dropLast()) }))
        #expect(
            try !roundReads(
                editSignatures { s in
                    var s = s
                    s[0] = NSNull()
                    return s
                }))
        #expect(
            try !roundReads(
                editSignatures { s in
                    var s = s
                    s[s.count - 1] = String(repeating: "ab", count: 64)
                    return s
                }))
        #expect(
            try !roundReads(
                editSignatures { s in
                    var s = s
                    s[0] = String(repeating: "AB", count: 64)
                    return s
                }))
    }
    /// Runs rounds `rounds` of an open server with the test clients' messages.
    static func play(_ server: LiveServer, _ clients: Clients, rounds: Range<Int>) throws {
        for t in rounds {
            var storage: [[Float]] = []
            storage.reserveCapacity(64)
            let messages = try server.expectedMessages(round: t).map {
                try clients.message(server, round: t, worker: $0.worker, classIndex: $0.classIndex, storage: &storage)
            }
            try server.round(t, messages: messages)
        }
    }

    /// A run stopped after round 1 (cleanly, or cut after its last round record as a crash leaves it)
    /// and resumed gives the uninterrupted run's trace byte for byte, signed or not.
    @Test(arguments: [false, true]) func resumedRunIsTheUninterruptedOne(_ crashed: Bool) throws {
        let words = ["--agg", "cclip", "--attack", "alie"]
        let whole = Self.temporary("whole")
        let stopped = Self.temporary("stopped")
        defer { for p in [whole, stopped] { try? FileManager.default.removeItem(atPath: p) } }
        let key = try TraceSigningKey(seed: [UInt8](repeating: 9, count: 32))
        let config = try SimulationOptions.parseWords(Self.options(words)).config
        let clients = try Clients(workers: [0, 1, 2])
        let engine = Self.engine({ _ in [] }, config: config, clients: clients)
        let a = try LiveServer(
            config: config, engine: engine, trace: .init(path: whole, keyframeInterval: 2, signingKey: key))
        try Self.play(a, clients, rounds: 0..<4)
        _ = try a.finish()
        let b = try LiveServer(
            config: config, engine: engine, trace: .init(path: stopped, keyframeInterval: 2, signingKey: key))
        try Self.play(b, clients, rounds: 0..<3)
        _ = try b.finish()
        if crashed {
            // Cut after round 2's record: no keyframe, signature, index or footer after it.
            let reader = try TraceReader(path: stopped)
            let last = try #require(reader.records.last { $0.type == .round })
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: stopped))
            try handle.truncate(atOffset: last.offset + last.size)
            try handle.close()
        }
        let c = try LiveServer(
            config: config, engine: engine,
            trace: .init(path: stopped, keyframeInterval: 2, signingKey: key, resume: true))
        #expect(c.nextRound == 3 && c.runTag == a.runTag)
        #expect(FileManager.default.fileExists(atPath: stopped + LiveServer.continuationSuffix))
        try Self.play(c, clients, rounds: 3..<4)
        _ = try c.finish()
        #expect(!FileManager.default.fileExists(atPath: stopped + LiveServer.continuationSuffix))
        #expect(try Data(contentsOf: URL(fileURLWithPath: stopped)) == Data(contentsOf: URL(fileURLWithPath: whole)))
    }

    @Test func resumeRefusesAnotherRunOrAFinishedOne() throws {
        let path = Self.temporary("resume-refusals")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try SimulationOptions.parseWords(Self.options(["--agg", "trmean", "--attack", "alie"])).config
        let clients = try Clients(workers: [0, 1, 2])
        let engine = Self.engine({ _ in [] }, config: config, clients: clients)
        let a = try LiveServer(config: config, engine: engine, trace: .init(path: path))
        try Self.play(a, clients, rounds: 0..<2)
        _ = try a.finish()
        func refusal(_ config: SimulationConfig, _ engine: LiveEngine, key: TraceSigningKey? = nil) -> String? {
            do {
                _ = try LiveServer(
                    config: config, engine: engine, trace: .init(path: path, signingKey: key, resume: true))
                return nil
            } catch {
                return error.message
            }
        }
        var other = config
        other.aggregator = "median"
        #expect(refusal(other, engine)?.contains("other options") == true)
        var strangers = engine
        strangers.nodes[1].publicKey = engine.nodes[2].publicKey
        #expect(refusal(config, strangers) != nil)
        #expect(
            refusal(config, engine, key: try TraceSigningKey(seed: [UInt8](repeating: 4, count: 32)))?.contains(
                "not signed") == true)
        let b = try LiveServer(config: config, engine: engine, trace: .init(path: path, resume: true))
        try Self.play(b, clients, rounds: 2..<4)
        _ = try b.finish()
        #expect(refusal(config, engine)?.contains("nothing to resume") == true)
        let reader = try TraceReader(path: path)
        let verification = try Verification.verify(reader, threads: 1)
        #expect(reader.roundCount == 4 && verification.passed)
    }
}
