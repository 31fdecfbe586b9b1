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

/// A live federation on the clients' own model and data: a model desgd does not know (two tensors,
/// 18 values), three classes held as the clients declare, x_0 and the evaluations given by the
/// caller. The trace verifies, replays and audits like any other, and a reader refuses such a
/// header without its engine, its declared setup or its tensors.
@Suite struct ClientModelTests {
    typealias Clients = LiveServerTests.Clients

    static let holdings = [[0, 1], [1, 2], [0, 2], [0, 1, 2]]
    static let tensors = [LiveEngine.Tensor(name: "fc.weight", shape: [5, 3]), .init(name: "fc.bias", shape: [3])]
    static let initial: [Float] = (0..<18).map { Float($0 % 7) * 0.05 - 0.1 }

    static func config(_ words: [String]) throws -> SimulationConfig {
        var config = try SimulationOptions.parseWords(
            ["--honest", "4", "--byzantine", "1", "--rounds", "4", "--eval-every", "2", "--threads", "1"] + words
        ).config
        config.model = .external
        config.data = .external
        config.partition = .declared
        config.clients = .init(parameterCount: 18, classes: 3, holdings: holdings)
        return config
    }

    static func engine(_ clients: Clients) -> LiveEngine {
        LiveEngine(
            name: "test", version: "1", training: "swift-testing", data: "the clients' own three-class data",
            model: tensors, nodes: clients.nodes)
    }

    /// The caller's evaluation of x_{t+1}: values that depend on the model, so the test can check them.
    static func evaluate(_ x: UnsafeBufferPointer<Float>) throws(LiveServerError) -> Evaluation {
        Evaluation(loss: Double(x.reduce(0, +)), accuracy: 0.5)
    }

    static func open(_ config: SimulationConfig, _ clients: Clients, path: String) throws -> LiveServer {
        try LiveServer(
            clients: config, initialParameters: initial, engine: engine(clients),
            trace: .init(path: path, keyframeInterval: 2))
    }

    static func play(_ server: LiveServer, _ clients: Clients, rounds: Range<Int>) throws {
        for t in rounds {
            var storage: [[Float]] = []
            storage.reserveCapacity(64)
            let messages = try server.expectedMessages(round: t).map {
                try clients.message(server, round: t, worker: $0.worker, classIndex: $0.classIndex, storage: &storage)
            }
            try server.round(t, messages: messages, evaluate: evaluate)
        }
    }

    @Test(arguments: [["--agg", "trmean", "--attack", "alie"], ["--agg", "cclip", "--attack", "signflip"]])
    func traceVerifiesReplaysAndAudits(_ words: [String]) throws {
        let path = LiveServerTests.temporary("clients")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Self.config(words)
        let clientSide = words.contains("signflip")
        let clients = try Clients(workers: Array(0..<(clientSide ? 5 : 4)))
        let server = try Self.open(config, clients, path: path)
        #expect(server.simulation == nil && server.parameters == Self.initial)
        // Class 0 is held by workers 0, 2, 3: round 0's messages are theirs (and the Byzantine one's).
        #expect(server.expectedMessages(round: 0).map(\.worker) == [0, 2, 3] + (clientSide ? [4] : []))
        try Self.play(server, clients, rounds: 0..<4)
        _ = try server.finish()

        let reader = try TraceReader(path: path)
        let h = reader.header
        #expect(h.formatVersion == [1, 6] && h.config.model == .external && h.config.clients?.classes == 3)
        #expect(h.model.parameterCount == 18 && h.model.tensors.map(\.offset) == [0, 15])
        #expect(h.dataset.kind == "external" && h.partition.samples.isEmpty)
        #expect(h.groups.map(\.honestWorkers) == [[0, 2, 3], [0, 1, 3], [1, 2, 3]])
        let verification = try Verification.verify(reader, threads: 1)
        #expect(verification.passed && verification.roundsChecked == 4 && verification.diffsChecked == 4)
        let signatures = try #require(ClientMessageVerification.verify(reader))
        #expect(signatures.passed && signatures.failed == 0 && signatures.verified > 0)
        var rows: [ReplayRow] = []
        try Replayer(reader: reader, rules: ["median", "geomed"], threads: 1).run(rounds: nil) { rows += $0 }
        #expect(rows.count == 8)
        let report = try Audit.report(reader, threads: 1)
        #expect(report.integrity.chainHolds && report.accuracy.count == 2)
        let recorded = try (0..<4).compactMap { try reader.round($0).content.evaluation }
        #expect(recorded.map(\.accuracy) == [0.5, 0.5])
        #expect(AuditText.render(report).contains("external"))
        #expect(throws: TraceError.self) { try Reexecution.checkArithmetic(reader, backend: h.backend) }
    }

    /// A round without the caller's evaluation on an evaluation round, or with an impossible one, is
    /// refused and undone: nothing recorded, the model as before.
    @Test func evaluationRoundsNeedTheCallersEvaluation() throws {
        let path = LiveServerTests.temporary("clients-evaluation")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Self.config(["--agg", "trmean", "--attack", "alie"])
        let clients = try Clients(workers: [0, 1, 2, 3])
        let server = try Self.open(config, clients, path: path)
        try Self.play(server, clients, rounds: 0..<1)
        let before = server.parameters
        var storage: [[Float]] = []
        storage.reserveCapacity(64)
        let messages = try server.expectedMessages(round: 1).map {
            try clients.message(server, round: 1, worker: $0.worker, classIndex: $0.classIndex, storage: &storage)
        }
        #expect(throws: LiveServerError.self) { try server.round(1, messages: messages) }
        let impossible = { (_: UnsafeBufferPointer<Float>) throws(LiveServerError) -> Evaluation in
            Evaluation(loss: .nan, accuracy: 2)
        }
        #expect(throws: LiveServerError.self) { try server.round(1, messages: messages, evaluate: impossible) }
        let failing = { (_: UnsafeBufferPointer<Float>) throws(LiveServerError) -> Evaluation in
            throw .input("the evaluation set is missing")
        }
        #expect(throws: LiveServerError.self) { try server.round(1, messages: messages, evaluate: failing) }
        #expect(server.nextRound == 1 && server.parameters == before)
        try server.round(1, messages: messages, evaluate: Self.evaluate)
        try Self.play(server, clients, rounds: 2..<4)
        _ = try server.finish()
        #expect(try Verification.verify(TraceReader(path: path), threads: 1).passed)
    }

    /// A declared setup that does not hold together is refused before anything is written.
    @Test func declaredSetupIsChecked() throws {
        let clients = try Clients(workers: [0, 1, 2, 3])
        func refusal(_ edit: (inout SimulationConfig) -> Void, initial: [Float] = Self.initial) -> String? {
            let path = LiveServerTests.temporary("clients-refused")
            defer { try? FileManager.default.removeItem(atPath: path) }
            var config = (try? Self.config(["--agg", "trmean", "--attack", "alie"]))!
            edit(&config)
            do {
                _ = try LiveServer(
                    clients: config, initialParameters: initial, engine: Self.engine(clients),
                    trace: .init(path: path))
                return nil
            } catch {
                #expect(!FileManager.default.fileExists(atPath: path))
                return error.message
            }
        }
        #expect(refusal({ _ in }, initial: Array(Self.initial.dropLast()))?.contains("must agree") == true)
        #expect(refusal({ $0.clients?.holdings = [[0], [1]] })?.contains("holdings of 2 workers") == true)
        #expect(refusal({ $0.clients?.holdings[1] = [2, 1] })?.contains("increasing") == true)
        #expect(
            refusal({ $0.clients?.holdings = [[0], [0], [0, 1], [1]] })?.contains("class 2 is held by no") == true)
        #expect(refusal({ $0.partition = .iid })?.contains("go together") == true)
        #expect(refusal({ $0.aggregator = "fltrust" })?.contains("root data") == true)
        #expect(refusal({ _ in }, initial: [Float](repeating: .nan, count: 18))?.contains("finite") == true)
    }

    /// A reader refuses the clients' own model without its engine, its declared setup, or with
    /// tensors that are not the engine's.
    @Test func readerRefusesAnUnsupportedClientModel() throws {
        let path = LiveServerTests.temporary("clients-hostile")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Self.config(["--agg", "trmean", "--attack", "alie"])
        let clients = try Clients(workers: [0, 1, 2, 3])
        let server = try Self.open(config, clients, path: path)
        try Self.play(server, clients, rounds: 0..<4)
        _ = try server.finish()
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let edits: [(String, (inout [String: Any]) -> Void)] = [
            ("no live engine", { $0["engine"] = nil }),
            (
                "go together",
                { json in
                    var c = json["config"] as! [String: Any]
                    c["clients"] = nil
                    json["config"] = c
                }
            ),
            (
                "laid end to end",
                { json in
                    var m = json["model"] as! [String: Any]
                    m["parameterCount"] = 19
                    json["model"] = m
                }
            ),
            (
                "holds no samples",
                { json in
                    var p = json["partition"] as! [String: Any]
                    p["samples"] = [[[Int]]](repeating: [[], [], []], count: 4)
                    json["partition"] = p
                }
            ),
            ("tensor shapes", { json in Self.editEngineModel(&json) { $0[0]["shape"] = [5, 0] } }),
            ("tensor shapes", { json in Self.editEngineModel(&json) { $0[0]["shape"] = [Int.max, 4] } }),
            ("tensor shapes", { json in Self.editEngineModel(&json) { $0.removeLast() } }),
            ("laid end to end", { json in
                var m = json["model"] as! [String: Any]
                var tensors = m["tensors"] as! [[String: Any]]
                tensors[1]["offset"] = 31
                m["tensors"] = tensors
                json["model"] = m
            }),
            ("increasing list", { json in Self.editClients(&json) { $0["holdings"] = [[0, 1], [2, 1], [0, 2], [0]] } }),
            ("increasing list", { json in Self.editClients(&json) { $0["holdings"] = [[0, 1], [1, 3], [0, 2], [0]] } }),
            ("the clients' classes", { json in Self.editClients(&json) { $0["classes"] = 1 } }),
            ("holdings of 3 workers",
                { json in Self.editClients(&json) { $0["holdings"] = [[0, 1], [1, 2], [0, 2]] } }),
            ("honest workers are not",
                { json in Self.editClients(&json) { $0["holdings"] = [[0], [1, 2], [0, 2], [0]] } }),
            ("1.6", { json in json["formatVersion"] = [1, 5] }),
        ]
        for (expected, edit) in edits {
            let altered = try #require(TraceMutator.editingJSON(of: bytes, type: .header, edit))
            let alteredPath = path + ".altered"
            defer { try? FileManager.default.removeItem(atPath: alteredPath) }
            try Data(altered).write(to: URL(fileURLWithPath: alteredPath))
            do {
                _ = try TraceReader(path: alteredPath)
                Issue.record("a header with \(expected) was accepted")
            } catch {
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
    }

    static func editEngineModel(_ json: inout [String: Any], _ edit: (inout [[String: Any]]) -> Void) {
        var engine = json["engine"] as! [String: Any]
        var model = engine["model"] as! [[String: Any]]
        edit(&model)
        engine["model"] = model
        json["engine"] = engine
    }

    static func editClients(_ json: inout [String: Any], _ edit: (inout [String: Any]) -> Void) {
        var config = json["config"] as! [String: Any]
        var clients = config["clients"] as! [String: Any]
        edit(&clients)
        config["clients"] = clients
        json["config"] = config
    }

    /// Stopped after round 2 and resumed, the run on the clients' own model gives the uninterrupted
    /// run's trace byte for byte.
    @Test func resumedRunIsTheUninterruptedOne() throws {
        let whole = LiveServerTests.temporary("clients-whole")
        let stopped = LiveServerTests.temporary("clients-stopped")
        defer { for p in [whole, stopped] { try? FileManager.default.removeItem(atPath: p) } }
        let config = try Self.config(["--agg", "cclip", "--attack", "ipm"])
        let clients = try Clients(workers: [0, 1, 2, 3])
        let a = try Self.open(config, clients, path: whole)
        try Self.play(a, clients, rounds: 0..<4)
        _ = try a.finish()
        let b = try Self.open(config, clients, path: stopped)
        try Self.play(b, clients, rounds: 0..<2)
        _ = try b.finish()
        let c = try LiveServer(
            clients: config, initialParameters: Self.initial, engine: Self.engine(clients),
            trace: .init(path: stopped, keyframeInterval: 2, resume: true))
        #expect(c.nextRound == 2 && c.parameters == b.parameters)
        try Self.play(c, clients, rounds: 2..<4)
        _ = try c.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: stopped)) == Data(contentsOf: URL(fileURLWithPath: whole)))
    }
}
