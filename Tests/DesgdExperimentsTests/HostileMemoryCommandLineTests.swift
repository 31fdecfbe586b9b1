import DesgdFuzzing
import Foundation
import Testing

/// The memory limit applies to every operation on a trace, reading included (docs/bad-input.md):
/// the committed 1.6 sample with its header claiming a model of d parameters (every digest
/// recomputed, 12 KB) is refused by `desgd-replay --verify`, `--agg`, `--export` and `desgd-audit`
/// (with and without `--compare`) with exit 2 and one line naming the need and the limit, at once.
/// Before, `--agg geomed` on the d = 10⁷ claim built drift trackers of 0.46 GB (peak RSS) under
/// `--memory-limit 64M` before reading a round.
@Suite struct HostileMemoryCommandLineTests {
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/samples")
        .appendingPathComponent("v1.6-live-flower-own-model-trmean-alie-3r-signed.trace").path

    static func claiming(_ d: Int) -> String {
        let bytes = [UInt8](FileManager.default.contents(atPath: sample)!)
        let directory = NSTemporaryDirectory() + "desgd-claimed-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/claimed-\(d).trace"
        let claimed = TraceMutator.claimingParameterCount(of: bytes, d)!
        _ = FileManager.default.createFile(atPath: path, contents: Data(claimed))
        return path
    }

    static let largest = claiming(Int(Int32.max))
    static let tenMillion = claiming(10_000_000)

    static func commands(_ t: String) -> [(String, [String], String)] {
        let limit = ["--threads", "1", "--memory-limit", "64M"]
        let export = NSTemporaryDirectory() + "desgd-export-\(UUID().uuidString)"
        return [("desgd-replay", [t, "--verify"] + limit, "verifying it"),
                ("desgd-replay", [t, "--agg", "geomed"] + limit, "replaying 1 rule on it"),
                ("desgd-replay", [t, "--export", export, "--round", "0"] + limit, "exporting round 0"),
                ("desgd-audit", [t] + limit, "auditing it"),
                ("desgd-audit", [t, "--compare", "trmean"] + limit, "auditing it")]
    }

    @Test(arguments: [Int(Int32.max), 10_000_000])
    func aClaimedHugeModelIsRefusedByEveryReader(_ d: Int) throws {
        let t = d == 10_000_000 ? Self.tenMillion : Self.largest
        for (program, arguments, operation) in Self.commands(t) {
            let start = Date()
            let outcome = try Executables.run(program, arguments)
            let seconds = Date().timeIntervalSince(start)
            let error = outcome.standardError
            #expect(outcome.status == 2, "\(program) \(arguments): \(outcome.status): \(error)")
            let lines = error.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(error)")
            for phrase in ["\(program): \(t): \(operation): a trace of \(d) parameters with",
                           "GB of memory, above the limit of 68 MB", "; raise the limit with --memory-limit SIZE"] {
                #expect(error.contains(phrase), "\(error)")
            }
            #expect(outcome.standardOutput.isEmpty)
            #expect(seconds < 10, "\(program) \(arguments) took \(seconds) s")
        }
    }

    /// The refusal allocates nothing the header sizes: the peak resident memory of each command
    /// stays below the 64 MiB limit, measured with GNU time (Debian's `time`).
    static let gnuTime = FileManager.default.isExecutableFile(atPath: "/usr/bin/time")
    static let required = ProcessInfo.processInfo.environment["CI"] == "true"

    @Test(.enabled(if: gnuTime || required, "needs GNU time (CI=true makes its absence a failure)"))
    func theRefusalStaysWithinTheLimit() throws {
        for (program, arguments, _) in Self.commands(Self.tenMillion) {
            let report = NSTemporaryDirectory() + "desgd-rss-\(UUID().uuidString)"
            let executable = Executables.directory.appendingPathComponent(program).path
            let outcome = try Executables.run("time", ["-f", "%M", "-o", report, executable] + arguments,
                                              executable: URL(fileURLWithPath: "/usr/bin/time"))
            #expect(outcome.status == 2, "\(program) \(arguments): \(outcome.standardError)")
            let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
            let kilobytes = Int(text.split(separator: "\n").last.map(String.init) ?? "") ?? 0
            #expect(kilobytes > 0 && kilobytes < 64 << 10, "\(program) \(arguments): peak \(kilobytes) KB")
        }
    }
}
