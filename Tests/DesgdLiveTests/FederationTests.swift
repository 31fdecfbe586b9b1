import DesgdAudit
import DesgdFuzzing
import DesgdReplay
import DesgdResimulation
import DesgdTrace
import Foundation
import Testing

/// The Python package and a real Flower federation, run from the test suite with the checkout's
/// virtual environment (`.venv`, made by the README's set-up command): the package's own tests, and
/// a federation of separate processes on 127.0.0.1 (a SuperLink, three SuperNodes, the desgd
/// ServerApp and PyTorch ClientApps) whose trace desgd verifies bit for bit, audits with the server's
/// key, and whose client signatures catch a message altered after the fact. Skipped without the
/// environment, except in CI (CI=true), where that is a failure.
@Suite(.serialized) struct FederationTests {
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python =
        ProcessInfo.processInfo.environment["DESGD_VENV_PYTHON"]
        ?? checkout.appendingPathComponent(".venv/bin/python").path
    static let available =
        ProcessInfo.processInfo.environment["CI"] == "true"
        || FileManager.default.isExecutableFile(atPath: python)
    /// The library `swift test` built beside the test bundle (the same build as this test's code).
    static let library: String = {
        let proc = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return proc.deletingLastPathComponent().appendingPathComponent("libDesgdLive.so").path
    }()

    /// Runs the venv's Python with `arguments` in the checkout, killed after `timeout` seconds.
    static func runPython(_ arguments: [String], timeout: Double) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        process.currentDirectoryURL = checkout
        var environment = ProcessInfo.processInfo.environment
        environment["DESGD_LIBRARY"] = library
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let log = NSTemporaryDirectory() + "desgd-python-\(UUID().uuidString).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.5) }
        if process.isRunning {
            // SIGINT first: run_local stops its SuperLink and SuperNodes by pid on it.
            kill(process.processIdentifier, SIGINT)
            Thread.sleep(forTimeInterval: 10)
            if process.isRunning { process.terminate() }
        }
        process.waitUntilExit()
        try handle.close()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return (process.terminationStatus, output)
    }

    @Test(.enabled(if: available, "the checkout's .venv (README set-up command)"))
    func pythonPackageTests() throws {
        let (status, output) = try Self.runPython(
            ["-m", "unittest", "discover", "-s", "python/tests"],
            timeout: 900)
        #expect(status == 0, "\(output.suffix(4000))")
    }

    @Test(.enabled(if: available, "the checkout's .venv (README set-up command)"))
    func federationTraceVerifiesAuditsAndProvesItsMessages() throws {
        let directory = NSTemporaryDirectory() + "desgd-federation-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let trace = directory + "/live.trace"
        let runDirectory = directory + "/run"
        let (status, output) = try Self.runPython(
            [
                "-m", "desgd.flower.run_local", "--out", trace, "--run-dir", runDirectory, "--sign", "--timeout",
                "400",
                "--options",
                "--model small --honest 3 --byzantine 1 --agg trmean --attack alie --partition iid "
                    + "--rounds 3 --eval-every 3",
            ], timeout: 480)
        try #require(status == 0, "\(output.suffix(4000))")

        // Nothing the federation started is left running.
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: "/bin/ps")
        ps.arguments = ["-eo", "args="]
        let pipe = Pipe()
        ps.standardOutput = pipe
        try ps.run()
        let processes = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ps.waitUntilExit()
        #expect(!processes.split(separator: "\n").contains { $0.contains(runDirectory) && !$0.contains("ps -eo") })

        let reader = try TraceReader(path: trace)
        #expect(reader.header.engine?.name == "flower" && reader.header.engine?.nodes.count == 3)
        let verification = try Verification.verify(reader, threads: 1)
        #expect(verification.passed && verification.roundsChecked == 3 && verification.diffsChecked == 3)
        let serverKey = try TracePublicKey.read(path: runDirectory + "/keys/server.key.pub")
        let report = try Audit.report(reader, threads: 1)
        #expect(report.integrity.signatures?.trustFailure(serverKey) == nil)
        let clients = try #require(report.integrity.clientMessages)
        let aggregations = 3 * reader.header.config.classesPerRound  // 3 rounds; 3 clients, 1 Byzantine each
        #expect(clients.passed && clients.verified == 3 * aggregations && clients.craftedByServer == aggregations)
        #expect(report.accuracy.count == 1)
        #expect(throws: TraceError.self) { try Reexecution.checkArithmetic(reader, backend: reader.header.backend) }

        // A server that records one client's message in another's name: caught by that client's key.
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: trace)))
        let altered = try #require(
            TraceMutator.editingJSON(of: bytes, type: .round, round: 1) { json in
                var aggregations = json["aggregations"] as! [[String: Any]]
                var messages = aggregations[0]["messages"] as! [Int]
                messages.swapAt(0, 2)
                aggregations[0]["messages"] = messages
                json["aggregations"] = aggregations
            })
        let alteredPath = directory + "/altered.trace"
        try Data(altered).write(to: URL(fileURLWithPath: alteredPath))
        let alteredClients = try #require(ClientMessageVerification.verify(try TraceReader(path: alteredPath)))
        #expect(!alteredClients.passed && alteredClients.failed == 2)
    }
}
