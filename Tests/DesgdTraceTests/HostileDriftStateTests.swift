import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdFuzzing
@testable import DesgdTrace

/// The recent-drift kind of format 1.4 (traces/FORMAT.md §5.4–5.5) under a hostile writer, every
/// digest recomputed: the header's `driftRecent` must be a 1.4 key with a drift window, and each
/// checkpoint's drift groups must hold exactly the keys of the kind the header states.
@Suite struct HostileDriftStateTests {
    /// HostileHeaderTests' trace: 3 rounds with a state checkpoint before every round, as recorded today.
    static var checkpointed: [UInt8] { HostileHeaderTests.checkpointed }

    func open(_ bytes: [UInt8]?) throws -> TraceReader {
        try TraceReader(source: MemorySource(try #require(bytes), name: "hostile.trace"))
    }

    /// The message of reading every checkpoint of `bytes`, nil when all read.
    func checkpointRefusal(_ bytes: [UInt8]?) throws -> String? {
        let reader = try open(bytes)
        do {
            for k in reader.checkpointRecords.indices { _ = try reader.checkpoint(k).driftState() }
            return nil
        } catch {
            return error.message
        }
    }

    @Test func aNewRecordingIsExponentialAndItsCheckpointsRead() throws {
        let reader = try open(Self.checkpointed)
        #expect(reader.header.driftRecent == .exponential && reader.file.signature.minor == TraceFormat.minor)
        let state = try #require(try reader.checkpoint(2).driftState())
        #expect(!state.groups.isEmpty
            && state.groups.allSatisfy { $0.history.window.isEmpty && !$0.history.recentSum.isEmpty })
        #expect(try checkpointRefusal(Self.checkpointed) == nil)
    }

    @Test func driftRecentIsRefusedBeforeFormat1_4AndWithoutAWindow() throws {
        #expect(throws: TraceError.self) { try open(TraceRewriting.rewrite(Self.checkpointed, minor: 3)) }
        do {
            _ = try open(TraceRewriting.rewrite(Self.checkpointed, minor: 3))
        } catch let e as TraceError { #expect(e.message.contains("driftRecent appears in a file of format 1.3")) }
        do {
            _ = try open(TraceRewriting.rewrite(Self.checkpointed) { $0["driftWindow"] = nil })
            Issue.record("a driftRecent without driftWindow was accepted")
        } catch let e as TraceError { #expect(e.message.contains("driftRecent without a driftWindow")) }
        #expect(throws: TraceError.self) {
            try open(TraceRewriting.rewrite(Self.checkpointed) { $0["driftRecent"] = "ring" })
        }
    }

    /// The header says one kind, the checkpoints hold the other: refused when the checkpoint is read,
    /// before any state is restored from it.
    @Test func checkpointsMustHoldTheHeadersKind() throws {
        let saysWindow = TraceRewriting.rewrite(Self.checkpointed) { $0["driftRecent"] = "window" }
        #expect(try checkpointRefusal(saysWindow)?.contains("window terms") == true)
        let saysNothing = TraceRewriting.rewrite(Self.checkpointed) { $0["driftRecent"] = nil }
        #expect(try checkpointRefusal(saysNothing)?.contains("window terms") == true)
        // A checkpoint whose group carries a window beside its recent sum.
        let both = TraceMutator.editingJSON(of: Self.checkpointed, type: .checkpoint, occurrence: 2) { json in
            var drift = json["drift"] as! [String: Any]
            var groups = drift["groups"] as! [[String: Any]]
            groups[0]["window"] = [groups[0]["recentSum"]!]
            groups[0]["windowNorms"] = [1.0]
            drift["groups"] = groups
            json["drift"] = drift
        }
        #expect(try checkpointRefusal(both)?.contains("no window") == true)
        // A recent sum pointing outside the vector table.
        let dangling = TraceMutator.editingJSON(of: Self.checkpointed, type: .checkpoint, occurrence: 2) { json in
            var drift = json["drift"] as! [String: Any]
            var groups = drift["groups"] as! [[String: Any]]
            groups[0]["recentSum"] = 1_000_000
            drift["groups"] = groups
            json["drift"] = drift
        }
        #expect(try checkpointRefusal(dangling)?.contains("recentSum") == true)
    }
}
