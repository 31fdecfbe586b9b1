import Foundation
import Testing

/// Every bad command-line input of every command, run through the real executables: exit code 2,
/// exactly one line on standard error that names the option, nothing on standard output, and no
/// training or data loading first (the whole list runs in seconds). docs/bad-input.md states the
/// rules these are the cases of.
@Suite struct CommandLineTests {
    /// The committed sample trace (traces/samples/), for the commands that read one.
    static let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("traces/samples/v1.0-desgd-cclip-ipm-small-3r.trace").path
    /// The committed 1.2 sample and its 1.3 fork (a fork family).
    static let parentSample = URL(fileURLWithPath: sample).deletingLastPathComponent()
        .appendingPathComponent("v1.2-desgd-cclip-ipm-small-3r-portable-checkpoints.trace").path
    static let forkSample = URL(fileURLWithPath: sample).deletingLastPathComponent()
        .appendingPathComponent("v1.3-fork-at1-geomed-small.trace").path

    struct BadInput: CustomTestStringConvertible, Sendable {
        var program: String
        var arguments: [String]
        /// The whole line expected on standard error.
        var message: String
        /// The option the message must name.
        var option: String
        var testDescription: String {
            let names = [CommandLineTests.sample: "SAMPLE", CommandLineTests.parentSample: "PARENT",
                CommandLineTests.forkSample: "FORK"]
            return ([program] + arguments.map { names[$0] ?? $0 }).joined(separator: " ")
        }

        init(_ program: String, _ arguments: [String], _ option: String, _ message: String) {
            (self.program, self.arguments, self.option, self.message) = (program, arguments, option, message)
        }
    }

    static let badInputs: [BadInput] = {
        let s = sample
        return [
            BadInput("desgd-record", ["--threads", "0"], "--threads",
                "desgd-record: --threads must be in 1...256 (got 0)"),
            BadInput("desgd-record", ["--threads", "257"], "--threads",
                "desgd-record: --threads must be in 1...256 (got 257)"),
            BadInput("desgd-record", ["--rounds", "0"], "--rounds",
                "desgd-record: --rounds must be in 1...10000000 (got 0)"),
            BadInput("desgd-record", ["--rounds", "9223372036854775807"], "--rounds",
                "desgd-record: --rounds must be in 1...10000000 (got 9223372036854775807)"),
            BadInput("desgd-record", ["--rounds", "99999999999999999999"], "--rounds",
                "desgd-record: The value '99999999999999999999' is invalid for '--rounds "
                + "<rounds>' (see desgd-record --help)"),
            BadInput("desgd-record", ["--honest", "0"], "--honest",
                "desgd-record: --honest must be in 1...1000 (got 0)"),
            BadInput("desgd-record", ["--honest", "1001"], "--honest",
                "desgd-record: --honest must be in 1...1000 (got 1001)"),
            BadInput("desgd-record", ["--byzantine=-1"], "--byzantine",
                "desgd-record: --byzantine must be in 0...1000 (got -1)"),
            BadInput("desgd-record", ["--f", "25"], "--f", "desgd-record: --f must be in 0...24 (got 25)"),
            BadInput("desgd-record", ["--batch", "0"], "--batch", "desgd-record: --batch must be in 1...4096 (got 0)"),
            BadInput("desgd-record", ["--batch", "4097"], "--batch",
                "desgd-record: --batch must be in 1...4096 (got 4097)"),
            BadInput("desgd-record", ["--beta", "1"], "--beta",
                "desgd-record: --beta must be a number in [0, 1) (got 1)"),
            BadInput("desgd-record", ["--beta", "nan"], "--beta",
                "desgd-record: --beta must be a number in [0, 1) (got nan)"),
            BadInput("desgd-record", ["--buffer-decay", "1.5"], "--buffer-decay",
                "desgd-record: --buffer-decay must be a number in [0, 1] (got 1.5)"),
            BadInput("desgd-record", ["--gamma=-0.5"], "--gamma",
                "desgd-record: --gamma must be a number in [0, 1] (got -0.5)"),
            BadInput("desgd-record", ["--lr", "0"], "--lr", "desgd-record: --lr must be a number in (0, 1000] (got 0)"),
            BadInput("desgd-record", ["--lr", "inf"], "--lr",
                "desgd-record: --lr must be a number in (0, 1000] (got inf)"),
            BadInput("desgd-record", ["--weight-decay", "1e9"], "--weight-decay",
                "desgd-record: --weight-decay must be a number in [0, 1000] (got 1000000000)"),
            BadInput("desgd-record", ["--classes-per-round", "11"], "--classes-per-round",
                "desgd-record: --classes-per-round must be in 1...10 (got 11)"),
            BadInput("desgd-record", ["--eval-every", "0"], "--eval-every",
                "desgd-record: --eval-every must be in 1...10000000 (got 0)"),
            BadInput("desgd-record", ["--seed=-1"], "--seed",
                "desgd-record: The value '-1' is invalid for '--seed <seed>' (see desgd-record --help)"),
            BadInput("desgd-record", ["--seed", "18446744073709551616"], "--seed",
                "desgd-record: The value '18446744073709551616' is invalid for '--seed "
                + "<seed>' (see desgd-record --help)"),
            BadInput("desgd-record", ["--synthetic", "0"], "--synthetic",
                "desgd-record: --synthetic must be in 1...100000 (got 0)"),
            BadInput("desgd-record", ["--partition", "label-skew:k=11"], "--partition",
                "desgd-record: --partition label-skew:k must be in 1...10 (got 11)"),
            BadInput("desgd-record", ["--partition", "dirichlet:alpha=0.001"], "--partition",
                "desgd-record: --partition dirichlet:alpha must be in 0.01...1000 (got 0.001)"),
            BadInput("desgd-record", ["--keyframe-every", "0"], "--keyframe-every",
                "desgd-record: --keyframe-every must be in 1...10000000 (got 0)"),
            BadInput("desgd-record", ["--checkpoint-every=-1"], "--checkpoint-every",
                "desgd-record: --checkpoint-every must be in 0...10000000 (got -1)"),
            BadInput("desgd-record", ["--checkpoint-every", "10000001"], "--checkpoint-every",
                "desgd-record: --checkpoint-every must be in 0...10000000 (got 10000001)"),
            BadInput("desgd-record", ["--resume", s, "--out", "x.trace"], "--resume",
                "desgd-record: --resume continues the trace in place with its own options: drop --out"),
            BadInput("desgd-record", ["--resume", s, "--threads", "0"], "--threads",
                "desgd-record: --threads must be in 1...256 (got 0)"),
            BadInput("desgd-record", ["--zstd-level", "20"], "--zstd-level",
                "desgd-record: --zstd-level must be in 1...19 (got 20)"),
            BadInput("desgd-record", ["--record", "sampled:0"], "--record",
                "desgd-record: --record: unknown recording mode 'sampled:0': use full,"
                + " decisions or sampled:K with K ≥ 1"),
            BadInput("desgd-record", ["--agg", "krum:q=9223372036854775807+1"], "--agg",
                "desgd-record: --agg: 'krum': q=9223372036854775807+1 must stay within -1099511627776...1099511627776"
                + " for n and f in 0...65536: use smaller numbers"),
            BadInput("desgd-record", ["--agg", "krum:q=99999999999999999999"], "--agg",
                "desgd-record: --agg: 'krum': q=99999999999999999999: 99999999999999999999 does not fit in a 64-bit"
                + " integer (values must stay within -1099511627776...1099511627776)"),
            BadInput("desgd-record", ["--agg", "geomed:iters=1000000000"], "--agg",
                "desgd-record: --agg: 'geomed': iters=1000000000 must be a whole number in 1...100000"),
            BadInput("desgd-record", ["--pre", "bucketing:s=0"], "--pre",
                "desgd-record: --pre: 'bucketing': s=0 must be a whole number in 1...65536"),
            BadInput("desgd-record", ["--attack", "ipm-opt:evals=1000000"], "--attack",
                "desgd-record: --attack: 'ipm-opt': evals=1000000 must be an integer in 1...1000"),
            BadInput("desgd-record", ["--attack", "mimic:target=9223372036854775807"], "--attack",
                "desgd-record: --attack: 'mimic': target=9223372036854775807 must be an integer in 0...65535"),
            BadInput("desgd-record", ["--mode", "fedavg"], "--mode",
                "desgd-record: The value 'fedavg' is invalid for '--mode <mode>'. Please provide one of 'desgd' and"
                + " 'sgd'. (see desgd-record --help)"),
            BadInput("desgd-record", ["--no-such-option"], "--no-such-option",
                "desgd-record: Unknown option '--no-such-option' (see desgd-record --help)"),
            BadInput("desgd-record", ["--synthetic", "100", "--data", "/tmp"], "--synthetic",
                "desgd-record: --synthetic and --data exclude each other: choose one data set"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--threads", "0"], "--threads",
                "desgd-replay: --threads must be in 1...256 (got 0)"),
            // The modes are checked before any file is opened: a trace that does not exist is not reached.
            BadInput("desgd-replay", ["/nonexistent/x.trace", "--verify", "--segment", "1/2"], "--segment",
                "desgd-replay: --segment goes with --reexecute"),
            BadInput("desgd-replay", ["/nonexistent/x.trace", "--agg", "mean", "--round", "1"], "--round",
                "desgd-replay: --round goes with --export; to replay some rounds use --rounds A:B"),
            BadInput("desgd-audit", ["/nonexistent/x.trace", "--data", "/tmp"], "--data",
                "desgd-audit: --data goes with --compare or --adversary worst"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--f", "13"], "--f",
                "desgd-replay: --f must be in 0...12 (got 13)"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--rounds", "9223372036854775807"], "--rounds",
                "desgd-replay: The value '9223372036854775807' is invalid for '--rounds "
                + "<rounds>' (see desgd-replay --help)"),
            BadInput("desgd-replay", [s, "--agg", "fltrust"], "--agg",
                "desgd-replay: fltrust:root=100 cannot run on a trace recorded under cclip:tau=10,iters=3: it needs the"
                + " server's momentum on its root data, which only a trace recorded under fltrust:root=100 holds; for"
                + " the counterfactual, fork the trace (desgd-record --fork TRACE --at T --agg fltrust:root=100)"),
            BadInput("desgd-replay", [s, "--export", NSTemporaryDirectory(), "--round", "3"], "--round",
                "desgd-replay: --round must be in 0...2 (got 3)"),
            BadInput("desgd-replay", [s, "--agg", "krum:q=9223372036854775807+1"], "--agg",
                "desgd-replay: --agg: 'krum': q=9223372036854775807+1 must stay within -1099511627776...1099511627776"
                + " for n and f in 0...65536: use smaller numbers"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--pre", "bucketing:s=99999999"], "--pre",
                "desgd-replay: --pre: 'bucketing': s=99999999 must be a whole number in 1...65536"),
            BadInput("desgd-replay", [s, "--reexecute", "--segment", "0/2"], "--segment",
                "desgd-replay: --segment K must be in 1...2 (got 0)"),
            BadInput("desgd-replay", [s, "--reexecute", "--segment", "3/2"], "--segment",
                "desgd-replay: --segment K must be in 1...2 (got 3)"),
            BadInput("desgd-replay", [s, "--reexecute", "--segment", "1/0"], "--segment",
                "desgd-replay: --segment N must be in 1...1000000 (got 0)"),
            BadInput("desgd-replay", [s, "--reexecute", "--segment", "half"], "--segment",
                "desgd-replay: The value 'half' is invalid for '--segment <segment>' (see desgd-replay --help)"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--segment", "1/2"], "--segment",
                "desgd-replay: --segment goes with --reexecute"),
            BadInput("desgd-replay", [s, "--reexecute", "--rounds", "1:3"], "--rounds",
                "desgd-replay: \(s) has no state checkpoint at or before round 1 (recorded without --checkpoint-every):"
                + " without one, re-execution starts from the initial state, so give --rounds 0:3"),
            BadInput("desgd-replay", [s, "--verify", "--no-rebuild"], "--no-rebuild",
                "desgd-replay: --no-rebuild goes with --agg or --export"),
            BadInput("desgd-replay", [s, "--verify", "--data", "/tmp"], "--data",
                "desgd-replay: --data goes with --reexecute, --agg or --export"),
            BadInput("desgd-replay", [], "<trace>",
                "desgd-replay: Missing expected argument '<trace>' (see desgd-replay --help)"),
            BadInput("desgd-audit", [s, "--threads", "0"], "--threads",
                "desgd-audit: --threads must be in 1...256 (got 0)"),
            BadInput("desgd-audit", [s, "--data", "/tmp"], "--data",
                "desgd-audit: --data goes with --compare or --adversary worst"),
            BadInput("desgd-audit", [s, "--budget", "100"], "--budget",
                "desgd-audit: --budget goes with --adversary worst"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--rounds", "2:9"], "--rounds",
                "desgd-replay: \(s) holds rounds 0..<3 (--rounds 0:3); 2:9 is outside"),
            BadInput("desgd-audit", [s, "--rounds", "2:9"], "--rounds",
                "desgd-audit: \(s) holds rounds 0..<3 (--rounds 0:3); 2:9 is outside"),
            BadInput("desgd-audit", [s, "--rounds", "1:x"], "--rounds",
                "desgd-audit: The value '1:x' is invalid for '--rounds <rounds>' (see desgd-audit --help)"),
            BadInput("desgd-audit", [CommandLineTests.parentSample, CommandLineTests.forkSample, "--rounds", "1:2"],
                "--rounds",
                "desgd-audit: --rounds goes with the audit of one trace, not with a fork family (PARENT FORK…):"
                + " audit one branch with --rounds"),
            BadInput("desgd-audit", [s, "--recover-to", "70"], "--recover-to",
                "desgd-audit: --recover-to goes with a fork family: give PARENT FORK…"),
            BadInput("desgd-audit", [CommandLineTests.parentSample, CommandLineTests.forkSample, "--recover-to", "101"],
                "--recover-to", "desgd-audit: --recover-to must be in 0...100 (test accuracy in %; got 101.0)"),
            BadInput("desgd-audit",
                [CommandLineTests.parentSample, CommandLineTests.forkSample, "--recover-to", "70", "--recover-within",
                    "2"], "--recover-to",
                "desgd-audit: --recover-within and --recover-to exclude each other: choose one"),
            BadInput("desgd-replay", [s, "--agg", "mean", "--adversary", "worst", "--budget", "5"], "--budget",
                "desgd-replay: --budget must be in 80...1000000 (got 5)"),
            BadInput("desgd-replay", [s, "--verify", "--adversary", "worst"], "--adversary",
                "desgd-replay: --adversary worst goes with --agg: it searches the worst case of the replayed rules"),
            BadInput("desgd-audit", [s, "--compare", "trmean:b=n*n*n"], "--compare",
                "desgd-audit: --compare: 'trmean': b=n*n*n must stay within -1099511627776...1099511627776 for n and f"
                + " in 0...65536: use smaller numbers"),
            BadInput("desgd-grid", ["run", "reduced", "--jobs", "0"], "--jobs",
                "desgd-grid run: --jobs must be in 1...256 (got 0)"),
            BadInput("desgd-grid", ["run", "reduced", "--threads", "300"], "--threads",
                "desgd-grid run: --threads must be in 1...256 (got 300)"),
            BadInput("desgd-grid", ["run", "reduced", "--keyframe-every", "0"], "--keyframe-every",
                "desgd-grid run: --keyframe-every must be in 1...10000000 (got 0)"),
            BadInput("desgd-grid", ["run", "reduced", "--checkpoint-every=-1"], "--checkpoint-every",
                "desgd-grid run: --checkpoint-every must be in 0...10000000 (got -1)"),
            BadInput("desgd-grid", ["run", "reduced", "--cell", "60"], "--cell",
                "desgd-grid run: --cell must be in 0...59, the cells of grid reduced (got 60)"),
            BadInput("desgd-grid", ["report", "reduced", "--cell", "60"], "--cell",
                "desgd-grid report: --cell must be in 0...59, the cells of grid reduced (got 60)"),
            BadInput("desgd-grid", ["slurm", "reduced", "--cpus-per-task", "0"], "--cpus-per-task",
                "desgd-grid slurm: --cpus-per-task must be in 1...256 (got 0)"),
            BadInput("desgd-grid", ["slurm", "reduced", "--max-concurrent", "0"], "--max-concurrent",
                "desgd-grid slurm: --max-concurrent must be in 1...1000000 (got 0)"),
            BadInput("desgd-grid", ["slurm", "reduced", "--keyframe-every", "0"], "--keyframe-every",
                "desgd-grid slurm: --keyframe-every must be in 1...10000000 (got 0)"),
            BadInput("desgd-grid", ["slurm", "reduced", "--checkpoint-every=-1"], "--checkpoint-every",
                "desgd-grid slurm: --checkpoint-every must be in 0...10000000 (got -1)"),
            BadInput("desgd-bench", ["aggregators", "--n", "2"], "--n", "desgd-bench: --n must be in 3...1000 (got 2)"),
            BadInput("desgd-bench", ["aggregators", "--n", "1000", "--d", "100000000"], "--d",
                "desgd-bench: --n × --d must be at most 1073741824 floats (got 1000 × 100000000)"),
            BadInput("desgd-bench", ["aggregators", "--repeats", "0"], "--repeats",
                "desgd-bench: --repeats must be in 1...1000 (got 0)"),
            BadInput("desgd-bench", ["aggregators", "--agg", "krum:q=n*n*n"], "--agg",
                "desgd-bench: --agg: 'krum': q=n*n*n must stay within -1099511627776...1099511627776 for n and f in"
                + " 0...65536: use smaller numbers"),
            BadInput("desgd-bench", ["numerics", "--batch", "0"], "--batch",
                "desgd-bench: --batch must be in 1...4096 (got 0)"),
            BadInput("desgd-bench", ["numerics", "--iterations", "0"], "--iterations",
                "desgd-bench: --iterations must be in 1...100000 (got 0)"),
            BadInput("desgd-bench", ["numerics", "--backends", "cuda"], "--backends",
                "desgd-bench: --backends: unknown backend 'cuda': use openblas or portable"),
            BadInput("desgd-bench", ["centralized", "--epochs", "0"], "--epochs",
                "desgd-bench: --epochs must be in 1...1000 (got 0)"),
            BadInput("desgd-bench", ["centralized", "--lr", "nan"], "--lr",
                "desgd-bench: --lr must be a number in (0, 1000] (got nan)"),
            BadInput("desgd-bench", ["simulate", "--threads", "0"], "--threads",
                "desgd-bench: --threads must be in 1...256 (got 0)"),
            BadInput("desgd-bench", ["record", "--zstd-level", "30"], "--zstd-level",
                "desgd-bench: --zstd-level must be in 1...19 (got 30)"),
            BadInput("desgd-bench", ["replay", s, "--threads", "0"], "--threads",
                "desgd-bench: --threads must be in 1...256 (got 0)"),
        ]
    }()

    @Test(arguments: CommandLineTests.badInputs)
    func badInputExitsTwoWithOneLineNamingTheOption(_ input: BadInput) throws {
        let outcome = try Executables.run(input.program, input.arguments)
        #expect(outcome.status == 2)
        let lines = outcome.standardError.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2 && lines[1].isEmpty, "not one line: \(outcome.standardError)")
        #expect(outcome.standardError.contains(input.option))
        #expect(outcome.standardError == input.message + "\n")
        #expect(outcome.standardOutput.isEmpty)
    }

    /// Good inputs finish quickly with exit code 0.
    @Test func goodInputsSucceed() throws {
        let s = CommandLineTests.sample
        let replay = try Executables.run("desgd-replay",
            [s, "--agg", "mean", "--rounds", "0:2", "--csv", "--threads", "1"])
        #expect(replay.status == 0, "\(replay.standardError)")
        #expect(String(decoding: replay.standardOutput, as: UTF8.self).split(separator: "\n").count >= 3)
        let audit = try Executables.run("desgd-audit", [s, "--json"])
        #expect(audit.status == 0, "\(audit.standardError)")
        // The committed fork family, with an absolute recovery target.
        let family = try Executables.run("desgd-audit",
            [CommandLineTests.parentSample, CommandLineTests.forkSample, "--recover-to", "5", "--json"])
        #expect(family.status == 0, "\(family.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: family.standardOutput) as? [String: Any])
        #expect(report["recoverTo"] as? Double == 5 && (report["branches"] as? [[String: Any]])?.count == 2)
        let paper = try Executables.run("desgd-grid", ["paper"])
        #expect(paper.status == 0 && !paper.standardOutput.isEmpty)
        let directory = NSTemporaryDirectory() + "desgd-cli-\(UUID().uuidString)"
        let record = try Executables.run("desgd-record",
                                                          ["--synthetic", "300", "--honest", "10", "--byzantine", "1",
                                                              "--batch", "4",
                                                          "--rounds", "2", "--eval-every", "1", "--threads", "1",
                                                          "--out", "t.trace", "--json",
                                                          "--checkpoint-every", "1"],
                                         in: directory)
        #expect(record.status == 0, "\(record.standardError)")
        #expect(FileManager.default.fileExists(atPath: directory + "/t.trace"))
        let reexecute = try Executables.run("desgd-replay", [directory + "/t.trace", "--reexecute", "--threads", "2"])
        #expect(reexecute.status == 0, "\(reexecute.standardError)")
        #expect(String(decoding: reexecute.standardOutput, as: UTF8.self)
            .hasPrefix("re-executed 2 rounds of \(directory)/t.trace in 2 segments"))
    }

    /// Vectors on demand: a `decisions` trace with checkpoints replays (a stateful counterfactual's
    /// state carried), audits and exports through its rebuilt rounds, with a note on standard error
    /// (rounds 1…3 with checkpoints before 0 and 2: rounds 0, 1 from the first, 2, 3 from the
    /// second); `--no-rebuild` skips them as before.
    @Test func decisionsTracesRebuildTheirVectors() throws {
        let directory = NSTemporaryDirectory() + "desgd-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = try Executables.run("desgd-record",
                                                          ["--synthetic", "300", "--honest", "10", "--byzantine", "1",
                                                              "--batch", "4",
                                                          "--rounds", "4", "--eval-every", "2", "--threads", "1",
                                                          "--out", "d.trace",
                                                          "--record", "decisions", "--checkpoint-every", "2"],
                                         in: directory)
        #expect(record.status == 0, "\(record.standardError)")
        let trace = directory + "/d.trace"
        let replay = try Executables.run("desgd-replay",
            [trace, "--agg", "cclip:tau=5", "--rounds", "1:4", "--csv", "--threads", "2"])
        #expect(replay.status == 0, "\(replay.standardError)")
        let rows = String(decoding: replay.standardOutput, as: UTF8.self).split(separator: "\n").filter {
            !$0.hasPrefix("#") }.dropFirst()
        #expect(rows.count == 3 && rows.allSatisfy { $0.contains(",carried,") }, "\(rows)")
        #expect(replay.standardError.contains("note: rebuilding the vectors of 3 rounds recorded without them: 4 rounds"
            + " re-simulated"), "\(replay.standardError)")
        let skipping = try Executables.run("desgd-replay", [trace, "--agg", "cclip:tau=5", "--csv", "--no-rebuild"])
        #expect(skipping.status == 0
            && String(decoding: skipping.standardOutput, as: UTF8.self).split(separator: "\n").filter {
                !$0.hasPrefix("#") }.count <= 1)
        let audit = try Executables.run("desgd-audit", [trace, "--compare", "trmean", "--json"])
        #expect(audit.status == 0, "\(audit.standardError)")
        let export = try Executables.run("desgd-replay", [trace, "--export", directory + "/out", "--round", "3"])
        #expect(export.status == 0
            && String(decoding: export.standardOutput, as: UTF8.self).contains("(vectors rebuilt by re-simulation)"),
            "\(export.standardError)")
        #expect(FileManager.default.fileExists(atPath: directory + "/out/agg0_messages.npy"))
        let refused = try Executables.run("desgd-replay",
            [trace, "--export", directory + "/out", "--round", "3", "--no-rebuild"])
        #expect(refused.status == 2 && refused.standardError.contains("recorded without vectors"))
    }

    /// A short synthetic trace recorded into a fresh directory (removed by the caller).
    static func shortTrace(rounds: Int, extra: [String] = []) throws -> (directory: String, trace: String) {
        let directory = NSTemporaryDirectory() + "desgd-cli-\(UUID().uuidString)"
        let record = try Executables.run("desgd-record",
                                                          ["--synthetic", "300", "--honest", "10", "--byzantine", "1",
                                                              "--batch", "4",
                                                          "--rounds", String(rounds), "--eval-every", "1", "--threads",
                                                          "1",
                                                          "--out", "t.trace"] + extra,
                                         in: directory)
        #expect(record.status == 0, "\(record.standardError)")
        return (directory, directory + "/t.trace")
    }

    /// Every text table of desgd-replay and desgd-audit fits a 120-column terminal (counting
    /// Unicode scalars, so characters too) with every rule, with long specs that share a name, and with the worst case:
    /// rules appear by label, with a legend of their full specs (docs/commands.md).
    @Test func textTablesFitInOneHundredTwentyColumns() throws {
        // SGD: one aggregation of all 11 workers per round, so that every rule of the list can run.
        let (directory, trace) = try Self.shortTrace(rounds: 3, extra: ["--mode", "sgd"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let longSpecs =
            "geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean,geomed:iters=50,mkrum:q=n-f-2,m=n-f,krum:q=n-f-1,"
            + "trmean:b=f,cclip:tau=5,iters=3,clustering"
        let runs: [(String, [String])] = [
            ("desgd-replay", [trace, "--agg", "all", "--threads", "2"]),
            ("desgd-replay", [trace, "--agg", longSpecs, "--threads", "2"]),
            ("desgd-replay", [trace, "--agg", longSpecs, "--pre", "bucketing:s=2", "--threads", "2"]),
            ("desgd-replay",
                [trace, "--agg", "geomed,geomed:iters=50,krum", "--adversary", "worst", "--budget", "80", "--threads",
                    "2"]),
            ("desgd-audit", [trace, "--compare", longSpecs, "--threads", "2"]),
            ("desgd-audit", [trace, "--compare", "all", "--threads", "2"]),
            ("desgd-audit",
                [trace, "--compare", "geomed,geomed:iters=50", "--adversary", "worst", "--budget", "80", "--threads",
                    "2"]),
        ]
        for (program, arguments) in runs {
            let outcome = try Executables.run(program, arguments)
            #expect(outcome.status == 0, "\(program) \(arguments): \(outcome.standardError)")
            let text = String(decoding: outcome.standardOutput, as: UTF8.self)
            #expect(text.split(separator: "\n").count > 10)
            // Unicode scalars: at least the characters (λ̂ is one character, two scalars).
            for line in text.split(separator: "\n") {
                #expect(line.unicodeScalars.count <= 120,
                    "\(program) \(arguments.dropFirst()): \(line.unicodeScalars.count) scalars: \(line)")
            }
            if arguments.contains(longSpecs) {
                // Labels in the tables, the full specs once in the legend.
                #expect(text.contains("geomed#1") && text.contains("geomed#2"), "\(text)")
                #expect(text.contains("geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean"))
            }
        }
        // CSV keeps the full specs.
        let csv = try Executables.run("desgd-audit", [trace, "--compare", longSpecs, "--csv", "--threads", "2"])
        #expect(csv.status == 0, "\(csv.standardError)")
        #expect(String(decoding: csv.standardOutput, as: UTF8.self)
            .contains("\"geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean gap\""))
    }

    /// `desgd-audit --rounds A:B`: the rows, accuracy and compared columns of those rounds only, in
    /// CSV and JSON, the integrity still of the whole file, and the rounds named in each output.
    @Test func auditRoundsSelectsRounds() throws {
        let (directory, trace) = try Self.shortTrace(rounds: 5)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = try Executables.run("desgd-audit",
            [trace, "--rounds", "1:3", "--compare", "trmean", "--csv", "--threads", "2"])
        #expect(csv.status == 0, "\(csv.standardError)")
        let lines = String(decoding: csv.standardOutput, as: UTF8.self).split(separator: "\n")
        #expect(lines.contains("# rounds: 1..<3 of 0..<5"))
        let rows = lines.filter { !$0.hasPrefix("#") }.dropFirst()
        #expect(!rows.isEmpty && Set(rows.map { $0.split(separator: ",")[0] }) == ["1", "2"], "\(rows)")
        let json = try Executables.run("desgd-audit",
            [trace, "--rounds", "3:", "--compare", "trmean", "--json", "--threads", "2"])
        #expect(json.status == 0, "\(json.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: json.standardOutput) as? [String: Any])
        let covered = try #require(report["rounds"] as? [String: Int])
        #expect(covered == ["from": 3, "to": 5, "traceFrom": 0, "traceTo": 5])
        let jsonRows = try #require(report["rows"] as? [[String: Any]])
        #expect(!jsonRows.isEmpty && Set(jsonRows.compactMap { $0["round"] as? Int }) == [3, 4])
        #expect(jsonRows.allSatisfy { ($0["cells"] as? [Any])?.count == 2 })
        let accuracy = try #require(report["accuracy"] as? [[String: Any]])
        #expect(Set(accuracy.compactMap { $0["round"] as? Int }) == [3, 4])
        #expect((report["integrity"] as? [String: Any])?["recordedRounds"] as? Int == 5)
        let text = try Executables.run("desgd-audit", [trace, "--rounds", "2"])
        #expect(text.status == 0
            && String(decoding: text.standardOutput, as: UTF8.self).contains("\nrounds     2..<3 of 0..<5 selected"))
    }

    static let commands: [[String]] = [
        ["desgd-record"], ["desgd-replay"], ["desgd-audit"],
        ["desgd-grid"], ["desgd-grid", "run"], ["desgd-grid", "status"], ["desgd-grid", "report"],
        ["desgd-grid", "slurm"],
        ["desgd-bench"], ["desgd-bench", "simulate"], ["desgd-bench", "numerics"], ["desgd-bench", "aggregators"],
        ["desgd-bench", "record"], ["desgd-bench", "replay"], ["desgd-bench", "centralized"],
        ["desgd-key"], ["desgd-key", "generate"], ["desgd-key", "fingerprint"], ["desgd-key", "public"],
    ]

    /// `--help` at 80 columns: exit 0, and every paragraph of the overview is wrapped once, at the
    /// terminal's width — no line of a paragraph could have taken the next line's first word
    /// (text hard-wrapped in the source and wrapped again breaks mid-sentence and fails this).
    /// Indented lines (examples, the catalogue) are left as written and must fit in 80 columns.
    @Test(arguments: CommandLineTests.commands)
    func helpReadsWellAtEightyColumns(_ command: [String]) throws {
        let outcome = try Executables.run(command[0], Array(command.dropFirst()) + ["--help"])
        #expect(outcome.status == 0)
        let text = String(decoding: outcome.standardOutput, as: UTF8.self)
        let overview = text.components(separatedBy: "\nUSAGE:")[0]
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(overview.count > 1)
        for (a, b) in zip(overview, overview.dropFirst()) where !a.isEmpty && !b.isEmpty {
            if a.hasPrefix(" ") || b.hasPrefix(" ") {
                #expect(a.count <= 80, "\(command): \(a)")
                continue
            }
            let word = b.split(separator: " ").first.map(String.init) ?? ""
            #expect(a.count + 1 + word.count >= 80, "\(command): '\(a)' is followed by '\(b)'")
        }
        if !["desgd-grid", "desgd-bench"].contains(command.joined(separator: " ")), text.contains("--threads") {
            #expect(text.contains("1...256"), "\(command): --help shows no range for --threads")
        }
    }
}
