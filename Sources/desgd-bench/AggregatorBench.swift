import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import Foundation

struct AggregatorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregators",
        abstract: "Time of each aggregation rule against one pass over the same data (the memory-bandwidth floor).",
        discussion: """
        Inputs: n uniform random vectors of dimension d (f = ⌊(n−3)/4⌋ declared so that every rule can run). The \
        floor is one read of the same n·d floats on the same number of threads, measured in the same run.
        """)

    @Option(help: ArgumentHelp("Numbers of inputs (comma-separated), each in "
        + "\(rangeText(AggregatorBench.inputsRange)).")) var n = "10,24"
    @Option(help: ArgumentHelp("Dimension, \(rangeText(AggregatorBench.dimensionRange)); n·d is at most "
        + "\(AggregatorBench.maximumFloats) floats.")) var d = 431_080
    @Option(help: "Rules (comma-separated specs, or all).") var agg = "all"
    @Option(help: ArgumentHelp("Timed repetitions per rule (best is reported), "
        + "\(rangeText(AggregatorBench.repeatsRange)).")) var repeats = 3
    @Option(help: ArgumentHelp("Threads for the rules that split work by coordinates (the floor uses as many), "
        + "\(rangeText(SimulationConfig.threadsRange)).")) var threads = 1
    @Flag(help: "Print the figures as JSON.") var json = false

    static let inputsRange = 3...1_000
    static let dimensionRange = 1...100_000_000
    static let repeatsRange = 1...1_000
    /// n·d floats are held at once: 2³⁰ floats are 4 GB.
    static let maximumFloats = 1 << 30

    func run() throws {
        let program = "desgd-bench"
        try CommandFailure.check(program, "--d", d, in: AggregatorBench.dimensionRange)
        try CommandFailure.check(program, "--repeats", repeats, in: AggregatorBench.repeatsRange)
        try CommandFailure.check(program, "--threads", threads, in: SimulationConfig.threadsRange)
        var counts: [Int] = []
        for nText in n.split(separator: ",", omittingEmptySubsequences: false) {
            guard let count = Int(nText) else {
                throw CommandFailure.exit(program, "--n takes whole numbers separated by commas (got '\(n)')")
            }
            try CommandFailure.check(program, "--n", count, in: AggregatorBench.inputsRange)
            guard count * d <= AggregatorBench.maximumFloats else {
                throw CommandFailure.exit(program,
                    "--n × --d must be at most \(AggregatorBench.maximumFloats) floats (got \(count) × \(d))")
            }
            counts.append(count)
        }
        let specs = agg == "all" ? AggregatorCatalogue.allRuleSpecs : agg.split(separator: ",").map(String.init)
        var rules: [(spec: String, rule: any Aggregator)] = []
        for spec in specs {
            do { rules.append((spec, try AggregatorCatalogue.makeAggregator(spec))) } catch {
                throw CommandFailure.exit(program, "--agg: " + error.commandLineMessage)
            }
        }
        var rows: [[String: String]] = []
        for count in counts {
            let f = max(0, (count - 3) / 4)
            var r = RandomStream(seed: 1, purpose: .attack, worker: count)
            let m = Matrix(rows: count, columns: d, storage: (0..<(count * d)).map { _ in r.nextFloat(in: -1, 1) })
            // The floor: one read of all n·d floats, split into as many pieces as threads.
            let executor = ParallelExecutor(threads: threads)
            let floor = m.storage.withUnsafeBufferPointer { all in
                let shared = SendableBuffer(all)
                return Stopwatch.best(repeats: 5) {
                    executor.forEach(threads) { piece in
                        let total = shared.buffer.count
                        let lo = piece * total / threads, hi = (piece + 1) * total / threads
                        _ = VectorMath.sum(UnsafeBufferPointer(rebasing: shared.buffer[lo ..< hi]))
                    }
                }
            }
            let ctx = AggregationContext(messages: m, f: f, seed: 1, executor: executor)
            if !json {
                print("n=\(count) f=\(f) d=\(d), \(threads) thread(s): one pass over the data \(fixed(floor * 1e3, 3))"
                    + " ms (\(fixed(Double(count * d * 4) / floor / 1e9, 1)) GB/s)") }
            for (spec, rule) in rules {
                if let why = rule.requirement(n: count, f: f) {
                    if !json { print("  \(spec.padding(toLength: 34, withPad: " ", startingAt: 0)) skipped: \(why)") }
                    continue
                }
                var out = [Float](repeating: 0, count: d)
                let t = Stopwatch.best(repeats: repeats) {
                    var state = AggregatorState.empty
                    _ = out.withUnsafeMutableBufferPointer { rule.aggregate(ctx, state: &state, into: $0) }
                }
                rows.append(["n": String(count), "threads": String(threads), "rule": spec, "ms": fixed(t * 1e3, 3),
                             "floor_ms": fixed(floor * 1e3, 3),
                             "ratio_to_floor": fixed(t / floor, 1)])
                if !json {
                    print("  \(spec.padding(toLength: 34, withPad: " ", startingAt: 0)) "
                        + "\(fixed(t * 1e3, 2).leftPadded(9)) ms  \(fixed(t / floor, 1).leftPadded(7))× floor")
                }
            }
        }
        if json {
            try printJSON(rows)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
