import DesgdAudit
import DesgdFuzzing
import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// A header is the audited party's word: the memory limit applies to every operation on a trace,
/// reading included (docs/bad-input.md, docs/trust.md). The committed 1.6 sample (a live
/// federation on the clients' own model) with its header claiming d = 2³¹ − 1 parameters (every
/// digest recomputed; the records still hold the recorded model's vectors) is the smallest file
/// that gets past validation to a reader's allocations: it opens, and verifying, replaying,
/// exporting and auditing it are each refused where they start, with the shortfall as data.
@Suite struct HostileTraceMemoryTests {
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/samples")
    static let sample = samples.appendingPathComponent("v1.6-live-flower-own-model-trmean-alie-3r-signed.trace").path
    static let limit = MemoryLimit(bytes: 64 << 20)
    /// The honest sample's estimates count each record read at its body limit (2²⁶ bytes of JSON and
    /// its vectors): a few records at once.
    static let honestLimit = MemoryLimit(bytes: 512 << 20)

    static func claiming(_ d: Int) throws -> TraceReader {
        let bytes = [UInt8](try #require(FileManager.default.contents(atPath: sample)))
        let claimed = try #require(TraceMutator.claimingParameterCount(of: bytes, d))
        return try TraceReader(source: MemorySource(claimed, name: "claimed.trace"))
    }

    /// Refused with a usage error carrying the shortfall against `limit`, naming the shape.
    func expectShortfall(_ operation: String, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: () throws(TraceError) -> Void) {
        do {
            try body()
            Issue.record("\(operation) ran on a header claiming 2³¹ − 1 parameters", sourceLocation: sourceLocation)
        } catch {
            #expect(error.kind == .usage, sourceLocation: sourceLocation)
            let shortfall = error.memoryShortfall
            #expect(shortfall?.limit == Self.limit, "\(error.message)", sourceLocation: sourceLocation)
            #expect((shortfall?.needed ?? 0) > 8 << 30, "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.hasPrefix("claimed.trace: \(operation): a trace of 2147483647 parameters"),
                    "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains("of memory, above the limit of 68 MB"), "\(error.message)",
                    sourceLocation: sourceLocation)
            #expect(!error.message.contains("--"), "library messages name no flag: \(error.message)",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func aClaimedHugeModelOpensButEveryReadingOperationIsRefused() throws {
        let reader = try Self.claiming(Int(Int32.max))
        #expect(reader.parameterCount == Int(Int32.max))
        expectShortfall("verifying it") { () throws(TraceError) in
            _ = try Verification.verify(reader, threads: 2, memoryLimit: Self.limit)
        }
        expectShortfall("replaying 1 rule on it") { () throws(TraceError) in
            let replayer = try Replayer(reader: reader, rules: ["geomed"], threads: 2)
            try replayer.run(memoryLimit: Self.limit) { _ in }
        }
        expectShortfall("replaying 1 rule on it") { () throws(TraceError) in
            let replayer = try Replayer(reader: reader, rules: ["trmean"], threads: 1,
                                        adversary: WorstCaseSearch(budget: WorstCaseSearch.defaultBudget))
            try replayer.run(memoryLimit: Self.limit) { _ in }
        }
        let directory = NSTemporaryDirectory() + "desgd-claimed-\(UUID().uuidString)"
        expectShortfall("exporting round 0") { () throws(TraceError) in
            try RoundExport.export(reader, round: 0, to: directory, memoryLimit: Self.limit)
        }
        #expect(!FileManager.default.fileExists(atPath: directory), "nothing is written before the check")
        expectShortfall("auditing it") { () throws(TraceError) in
            _ = try Audit.report(reader, threads: 1, memoryLimit: Self.limit)
        }
        expectShortfall("auditing it") { () throws(TraceError) in
            _ = try Audit.report(reader, compare: ["trmean"], threads: 1, memoryLimit: Self.limit)
        }
    }

    /// The estimates grow with the claim and hold what the operation allocates: a claimed d of
    /// 10⁷ (40 MB a vector; replay would keep its drift trackers) needs more than
    /// a gigabyte to replay, and every estimate is checked with overflow-checked arithmetic.
    @Test func theEstimatesFollowTheClaim() throws {
        let reader = try Self.claiming(10_000_000)
        let replayer = try Replayer(reader: reader, rules: ["geomed"], threads: 2)
        let replay = replayer.memoryEstimate(rounds: reader.rounds)
        #expect(replay > 25 * 40_000_000, "\(replay)")
        #expect(Verification.memoryEstimate(reader, threads: 2) > 10 * 40_000_000)
        #expect(RoundExport.memoryEstimate(reader) > 3 * 40_000_000)
        #expect(Audit.memoryEstimate(reader) > 40_000_000)
        let huge = try Self.claiming(Int(Int32.max))
        #expect(Verification.memoryEstimate(huge, threads: 256) > 1 << 40)
    }

    /// The honest sample's operations fit a limit of 512 MiB: the estimates are upper bounds, not
    /// refusals of ordinary traces (CompatibilityTests read every sample under the default limit).
    @Test func theHonestSampleFitsASmallLimit() throws {
        let reader = try TraceReader(path: Self.sample)
        let report = try Verification.verify(reader, threads: 2, memoryLimit: Self.honestLimit)
        #expect(report.passed)
        let replayer = try Replayer(reader: reader, rules: ["geomed"], threads: 2)
        let (replayed, _) = try replayer.run(memoryLimit: Self.honestLimit) { _ in }
        #expect(replayed == reader.roundCount)
        _ = try Audit.report(reader, compare: ["trmean"], threads: 2, memoryLimit: Self.honestLimit)
    }
}
