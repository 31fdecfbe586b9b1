import DesgdAudit
@testable import DesgdFuzzing
import DesgdNumerics
import DesgdResimulation
import DesgdSimulation
@testable import DesgdTrace
import Foundation
import Testing

/// Headers rewritten by a hostile party, every digest recomputed (traces/FORMAT.md §6): spec strings
/// that once overflowed the parser's stack, record types newer than the file states, and a data
/// set's provenance that does not hold together.
@Suite struct HostileHeaderTests {
    /// A full trace of 3 rounds with a state checkpoint before every round.
    static let checkpointed: [UInt8] = {
        let (path, _, _) = try! record(tinyConfig { $0.rounds = 3 }, keyframes: 100, checkpoints: 1)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }()

    func open(_ bytes: [UInt8]) throws(TraceError) -> TraceReader {
        try TraceReader(source: MemorySource(bytes, name: "hostile.trace"))
    }

    func refusal(_ bytes: [UInt8]?) -> String? {
        guard let bytes else { return "the case could not be built" }
        do {
            _ = try open(bytes)
            return nil
        } catch {
            return error.message
        }
    }

    /// `config` of the header edited.
    func editingConfig(_ edit: @escaping (inout [String: Any]) -> Void) -> [UInt8]? {
        TraceRewriting.rewrite(Self.checkpointed) { json in
            var config = json["config"] as! [String: Any]
            edit(&config)
            json["config"] = config
        }
    }

    @Test func theRewrittenTraceOpens() throws {
        let bytes = try #require(TraceRewriting.rewrite(Self.checkpointed))
        let reader = try open(bytes)
        #expect(reader.verifyChain().holds && reader.roundCount == 3)
    }

    /// `krum:q=` and 30 000 `(` (or 100 000 `-`) made the reader die with SIGSEGV.
    @Test func deeplyNestedSpecsAreRefused() {
        for value in ["krum:q=" + String(repeating: "(", count: 30_000), "krum:q="
            + String(repeating: "-", count: 100_000),
                      "krum:q=" + String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100)] {
            let message = refusal(editingConfig { $0["aggregator"] = value })
            #expect(message?.contains("config:") == true, "\(message ?? "accepted")")
            #expect(message.map { $0.count < 400 && !$0.contains("\n") } == true, "\(message ?? "")")
        }
        let attack = refusal(editingConfig { $0["attack"] = "alie:z=" + String(repeating: "(", count: 30_000) })
        #expect(attack?.contains("characters long") == true, "\(attack ?? "accepted")")
        let pre = refusal(editingConfig {
            $0["preAggregators"] = Array(repeating: "nnm", count: 40).joined(separator: "+") })
        #expect(pre?.contains("at most 16 components") == true, "\(pre ?? "accepted")")
    }

    /// The other recursive parser of file text, the JSON decoder: 100 000 nested arrays under an
    /// unknown key of the header are refused (or skipped), never a stack overflow.
    @Test func deeplyNestedJSONDoesNotCrash() throws {
        let bytes = try #require(TraceMutator.editingBody(of: Self.checkpointed, type: .header) { body in
            let length = TraceMutator.jsonLength(body)
            let json = Array(body[4 ..< 4 + length])
            let deep = Array(("{\"x\":" + String(repeating: "[", count: 100_000)
                + String(repeating: "]", count: 100_000) + ",").utf8)
            let edited = deep + json.dropFirst()
            var out = ByteWriter()
            out.append(UInt32(edited.count))
            out.append(edited)
            out.append(Array(body[(4 + length)...]))
            body = out.bytes
        })
        let message = refusal(bytes)
        #expect(message == nil || message?.contains("the header record") == true, "\(message ?? "")")
    }

    /// A file that says format 1.0 (or 1.1) but holds checkpoint records (types of 1.2) is refused,
    /// naming the record and its type.
    @Test func recordTypesNewerThanTheFileAreRefused() {
        for minor: UInt16 in [0, 1] {
            let message = refusal(TraceRewriting.rewrite(Self.checkpointed, minor: minor) { json in
                json["numerics"] = nil
                json["checkpointInterval"] = nil
                json["driftRecent"] = nil
            })
            #expect(message?.contains("is a checkpoint record (type 7)") == true, "\(message ?? "accepted")")
            #expect(message?.contains("format 1.\(minor)") == true, "\(message ?? "")")
        }
        #expect(refusal(TraceRewriting.rewrite(Self.checkpointed, minor: 2) { $0["driftRecent"] = nil }) == nil)
    }

    /// In a file of a later minor version, a record of an unknown type is skipped, and listed.
    @Test func unknownRecordsAreSkippedAndListed() throws {
        let bytes = try #require(TraceRewriting.rewrite(Self.checkpointed, minor: TraceFormat.minor + 1,
            unknownType: 42))
        let reader = try open(bytes)
        #expect(reader.verifyChain().holds && reader.roundCount == 3)
        let skipped = reader.skippedRecords()
        #expect(skipped.count == 1 && skipped.first?.type == 42, "\(skipped)")
        let report = try Audit.report(reader, threads: 1)
        #expect(report.integrity.skippedRecords == skipped)
        #expect(AuditText.render(report).contains("skipped 1 record of types this reader does not know"))
        #expect(AuditText.csv(report).contains("\n# skipped records of unknown types: record "))
        #expect(AuditHTML.render(report).contains("Skipped 1 record"))
        // The same record in a file of this reader's own version is damage: the scan stops there.
        let own = try #require(TraceRewriting.rewrite(Self.checkpointed, unknownType: 42))
        #expect((try? open(own))?.skippedRecords().isEmpty ?? true)
    }

    /// `dataset`'s fileDigests, kind and normalization rewritten, `digest` kept.
    @Test func datasetProvenanceMustHoldTogether() throws {
        func editingDataset(_ edit: @escaping (inout [String: Any]) -> Void) -> [UInt8]? {
            TraceRewriting.rewrite(Self.checkpointed) { json in
                var d = json["dataset"] as! [String: Any]
                edit(&d)
                json["dataset"] = d
            }
        }
        let digests = refusal(editingDataset { d in
            var f = d["fileDigests"] as! [String: Any]
            f["train"] = String(repeating: "0", count: 64)
            d["fileDigests"] = f
        })
        #expect(digests?.contains("dataset.digest is not the SHA-256 of its fileDigests") == true,
            "\(digests ?? "accepted")")
        let kind = refusal(editingDataset { $0["kind"] = "fashion-mnist" })
        #expect(kind?.contains("dataset.kind") == true, "\(kind ?? "accepted")")
        let names = refusal(editingDataset { d in
            d["fileDigests"] = ["train": String(repeating: "0", count: 64)]
            d["digest"] = Dataset.combinedDigest(["train": String(repeating: "0", count: 64)])
        })
        #expect(names?.contains("dataset.fileDigests must name exactly") == true, "\(names ?? "accepted")")
        let std = refusal(editingDataset { $0["normalization"] = ["mean": 0.5, "std": 0] })
        #expect(std?.contains("normalization") == true, "\(std ?? "accepted")")

        // A consistent rewrite (a plausible normalisation) reads, but the data the run used says otherwise.
        let normalization = try #require(editingDataset { $0["normalization"] = ["mean": 0.25, "std": 0.5] })
        let reader = try open(normalization)
        do {
            _ = try Reexecution.loadDataset(for: reader.header, directory: nil)
            Issue.record("re-execution accepted a rewritten normalisation")
        } catch {
            #expect(error.message.contains("normalisation"), "\(error.message)")
        }
        _ = try Reexecution.loadDataset(for: try open(Self.checkpointed).header, directory: nil)
    }

    /// The committed samples keep reading with the provenance checks.
    @Test func theSamplesStillRead() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("traces/samples")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".trace") }
        #expect(names.count >= 4)
        for name in names {
            let reader = try TraceReader(path: dir.appendingPathComponent(name).path)
            #expect(reader.header.dataset.digest == Dataset.combinedDigest(reader.header.dataset.fileDigests))
        }
    }
}
