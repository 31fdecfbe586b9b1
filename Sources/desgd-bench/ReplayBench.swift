import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// The replay figures of docs/design.md §7, measured in one run on an existing trace.
struct ReplayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay MB/s with mean and trimmed mean, and --agg all against the sum of single-rule replays.",
        discussion: """
        MB/s counts the raw float32 bytes of the received messages (every sender's row, as the rule sees them) \
        replayed per second of wall time, reading, decompressing, checking digests, decoding, aggregating and \
        measuring included. The all-rules pass reads every round once; the single-rule passes each read the whole trace.

        Example:
          desgd-record --attack ipm --out traces/bench.trace
          desgd-bench replay traces/bench.trace
        """)

    @Argument(help: "A trace recorded in full.") var trace: String
    @Option(help: ArgumentHelp("Threads, \(rangeText(SimulationConfig.threadsRange)) (default: every"
        + " core).")) var threads = SimulationConfig.defaultThreads
    @Option(help: ArgumentHelp("Rules for the all-rules comparison (default: every rule that can run on"
        + " the trace).")) var rules = "all"
    @Flag(help: "Print the figures as JSON.") var json = false

    func run() throws {
        try CommandFailure.check("desgd-bench", "--threads", threads, in: SimulationConfig.threadsRange)
        let reader = try TraceOpening.open(trace, program: "desgd-bench")
        let d = reader.parameterCount
        /// Wall time of one replay of the whole trace with `specs` (rows discarded).
        func timed(_ specs: [String]) throws -> Double {
            let t0 = Stopwatch.now()
            try Replayer(reader: reader, rules: specs, threads: threads, skipUnrunnable: true).run { _ in }
            return Stopwatch.now() - t0
        }
        // Raw message bytes of the trace: senders × d × 4 per aggregation.
        var messageBytes = 0.0
        try reader.forEachRound { r in
            if r.hasVectors { for a in r.aggregations { messageBytes += Double(4 * d * a.senders.count) } }
        }
        var figures: [String: String] = ["trace": trace, "rounds": String(reader.roundCount),
                                         "threads": String(threads),
                                         "raw_message_mb": fixed(messageBytes / 1e6, 1)]
        var lines: [String] = ["\(trace): \(reader.roundCount) rounds, \(fixed(messageBytes / 1e6, 1)) MB of raw"
            + " float32 messages, \(threads) threads"]
        for rule in ["mean", "trmean"] {
            let s = try timed([rule])
            figures["\(rule)_mb_per_s"] = fixed(messageBytes / 1e6 / s, 0)
            lines.append("  \(rule): \(fixed(s, 2)) s = \(fixed(messageBytes / 1e6 / s, 0)) MB/s (target ≥ 500)")
        }
        let all = try Replayer(reader: reader, rules: AggregatorCatalogue.splitList(rules), threads: threads,
            skipUnrunnable: true)
        let specs = all.rules.map(\.spec)
        let together = try timed(specs)
        var separate = 0.0
        for spec in specs { separate += try timed([spec]) }
        figures["all_rules"] = String(specs.count)
        figures["all_in_one_pass_seconds"] = fixed(together, 2)
        figures["sum_of_single_rule_seconds"] = fixed(separate, 2)
        figures["one_pass_over_sum"] = fixed(together / separate, 3)
        lines.append("  \(specs.count) rules in one pass: \(fixed(together, 2)) s; one replay per rule: "
            + "\(fixed(separate, 2)) s in all; ratio \(fixed(together / separate, 3))")
        if json { try printJSON(figures) } else { print(lines.joined(separator: "\n")) }
    }
}
