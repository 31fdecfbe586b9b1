import DesgdFuzzing
import DesgdNumerics
import Foundation
import Testing

/// What a trace claims, through the real executables: a header claiming a huge shape (lenet,
/// n = f = 1 000) is refused by every command that would re-simulate it, before anything is
/// allocated (exit 2, one line saying how much it needs and how to raise the limit; on 0.10.0 it
/// allocated 2 × 17 GB); a checkpoint state holding NaN is refused by `--resume` and
/// `--reexecute` (exit 2; on 0.10.0 a trap, exit 132). docs/bad-input.md.
@Suite struct HostileClaimCommandTests {
    /// A small synthetic trace recorded by desgd-record (`decisions`, a checkpoint before every
    /// round, mimic's heuristic attack, whose state carries scalars), and its directory.
    static let recorded: (directory: String, trace: String) = {
        let directory = NSTemporaryDirectory() + "desgd-claims-\(UUID().uuidString)"
        let arguments = ["--synthetic", "1200", "--honest", "10", "--byzantine", "1", "--batch", "4", "--rounds", "3",
                         "--eval-every", "3", "--threads", "1", "--out", "t.trace", "--record", "decisions",
                         "--checkpoint-every", "1", "--attack", "mimic:mode=heuristic"]
        let outcome = try! Executables.run("desgd-record", arguments, in: directory)
        precondition(outcome.status == 0, outcome.standardError)
        return (directory, directory + "/t.trace")
    }()

    /// The recorded trace with its header claiming lenet, 1 000 honest and 1 000 Byzantine workers
    /// (partition and groups consistent, every digest recomputed) and 6 configured rounds (so that
    /// it can be resumed), written next to it.
    static let hugeShape: String = {
        let bytes = [UInt8](FileManager.default.contents(atPath: recorded.trace)!)
        let claimed = TraceMutator.claimingShape(of: bytes, model: .lenet, honest: 1_000, byzantine: 1_000) { config in
            config["rounds"] = 6
        }!
        let path = recorded.directory + "/huge.trace"
        _ = FileManager.default.createFile(atPath: path, contents: Data(claimed))
        return path
    }()

    /// Exit 2 and exactly one line on standard error containing every phrase.
    func expectOneLine(_ outcome: Executables.Outcome, _ phrases: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) {
        let error = outcome.standardError
        #expect(outcome.status == 2, "\(outcome.status): \(error)", sourceLocation: sourceLocation)
        let lines = error.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(error)", sourceLocation: sourceLocation)
        for p in phrases { #expect(error.contains(p), "\(error)", sourceLocation: sourceLocation) }
    }

    static let refusal = ["lenet with 1000 honest and 1000 Byzantine workers needs about",
                          "GB of memory, above the limit of 2.1 GB", "raise the limit with --memory-limit SIZE"]

    static func run(_ program: String, _ arguments: [String]) throws -> Executables.Outcome {
        try Executables.run(program, arguments)
    }

    @Test func aClaimedHugeShapeIsRefusedByReexecution() throws {
        let t = Self.hugeShape
        expectOneLine(try Self.run("desgd-replay", [t, "--reexecute", "--threads", "1", "--memory-limit", "2G"]),
                      ["desgd-replay: \(t): re-executing it: a run of "] + Self.refusal)
    }

    @Test func aClaimedHugeShapeIsRefusedByRebuilding() throws {
        let t = Self.hugeShape
        expectOneLine(try Self.run("desgd-audit", [t, "--compare", "mean", "--threads", "1", "--memory-limit", "2G"]),
                      ["desgd-audit: cannot rebuild the vectors", "its rounds cannot be rebuilt here"] + Self.refusal
                        + ["--no-rebuild"])
        expectOneLine(try Self.run("desgd-replay", [t, "--agg", "mean", "--threads", "1", "--memory-limit", "2G"]),
                      ["desgd-replay: cannot rebuild the vectors"] + Self.refusal)
    }

    @Test func aClaimedHugeShapeIsRefusedByResumeAndFork() throws {
        let t = Self.hugeShape
        expectOneLine(try Self.run("desgd-record", ["--resume", t, "--threads", "1", "--memory-limit", "2G"]),
                      ["desgd-record: \(t): it cannot be resumed here: a run of "] + Self.refusal)
        let fork = ["--fork", t, "--at", "1", "--threads", "1", "--memory-limit", "2G"]
        expectOneLine(try Self.run("desgd-record", fork),
                      ["desgd-record: \(t): it cannot be forked here: 2 runs at once of "] + Self.refusal)
        #expect(FileManager.default.fileExists(atPath: t) && !FileManager.default.fileExists(atPath: t + ".resuming"))
    }

    /// Recording: a configuration the machine cannot hold is the same one line, before the data
    /// set is loaded (the paper preset reads Fashion-MNIST, which is never reached here).
    @Test func aHugeRecordingIsRefusedBeforeAnythingIsLoaded() throws {
        let arguments = ["--preset", "paper", "--honest", "1000", "--byzantine", "1000", "--agg", "mean",
                         "--memory-limit", "2G"]
        expectOneLine(try Self.run("desgd-record", arguments), ["desgd-record: a run of "] + Self.refusal)
    }

    @Test(arguments: ["8X", "0", "G", "1e3G", "99999999999T"])
    func aBadMemoryLimitIsOneLine(_ size: String) throws {
        expectOneLine(try Self.run("desgd-replay", [Self.recorded.trace, "--reexecute", "--memory-limit", size]),
                      ["desgd-replay: --memory-limit must be a size such as 8G or 500M", "(got '\(size)')"])
    }

    /// A checkpoint whose mimic state holds `t` = NaN (the header claiming more rounds, so that
    /// there is something to resume): `--resume` and `--reexecute` exit 2 naming it.
    @Test func aNaNStateIsRefusedByResumeAndReexecution() throws {
        let bytes = [UInt8](FileManager.default.contents(atPath: Self.recorded.trace)!)
        let state = try #require(TraceMutator.editingJSON(of: bytes, type: .checkpoint, occurrence: 2) { json in
            guard var states = json["attackStates"] as? [[String: Any]] else { return }
            for g in states.indices where (states[g]["scalars"] as? [String: Any])?["t"] != nil {
                states[g]["scalars"] = ["t": "nan", "target": 0]
            }
            json["attackStates"] = states
        })
        let claimed = try #require(TraceMutator.editingJSON(of: state, type: .header) { json in
            guard var config = json["config"] as? [String: Any] else { return }
            config["rounds"] = 4
            json["config"] = config
        })
        let path = Self.recorded.directory + "/nan-state.trace"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(claimed)))
        let message = ["the checkpoint before round 2: the attackStates[0] scalar 't' is nan, not an integer in 0...4"]
        expectOneLine(try Self.run("desgd-record", ["--resume", path, "--threads", "1"]),
                      ["desgd-record: "] + message)
        expectOneLine(try Self.run("desgd-replay", [path, "--reexecute", "--threads", "1"]),
                      ["desgd-replay: "] + message)
    }
}
