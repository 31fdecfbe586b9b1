@testable import DesgdAudit
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// The signature verdict in every rendering of the audit (text, CSV comment, JSON field, HTML
/// integrity box).
@Suite struct SignedAuditTests {
    @Test func verdictInEveryRendering() throws {
        let key = try TraceSigningKey(seed: [UInt8](repeating: 3, count: 32))
        let path = NSTemporaryDirectory() + "desgd-signed-audit-\(UUID().uuidString).trace"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let recorder = try TraceRecorder(path: path, keyframeInterval: 5, signingKey: key)
        _ = try Simulation(config: smallRun(), dataset: replayData).run(observer: Tampering(recorder, alter: { _ in }))
        let report = try Audit.report(try TraceReader(path: path), threads: 1)
        let verdict = "signed by \(key.publicKey.fingerprint), whole file (12 rounds)"
        #expect(report.integrity.signatures?.status == .whole && report.integrity.signatures?.summary == verdict)
        #expect(AuditText.render(report).contains("\n           \(verdict)\n"))
        #expect(AuditText.csv(report).hasPrefix("# signatures: \(verdict)\n"))
        let json = String(decoding: try RecordBody.encoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"signatures\":{") && json.contains("\"status\":\"whole\""))
        let page = AuditHTML.render(report)
        #expect(page.contains("<li>Signatures: signed by \(key.publicKey.fingerprint), whole file (12 rounds)</li>"))
        #expect(page.contains("<section class=\"integrity ok\"") && page.contains("the trace is complete; signed"))
    }
}
