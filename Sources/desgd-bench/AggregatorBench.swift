import ArgumentParser
import DesgdNumerics
import DesgdRobust
import Foundation

struct AggregatorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregators",
        abstract: "Time of each aggregation rule against one pass over the same data (the memory-bandwidth floor).",
        discussion: """
        Inputs: n uniform random vectors of dimension d (f = ⌊(n−3)/4⌋ declared so that every rule can run).
        The floor is one read of the same n·d floats on the same number of threads, measured in the same run.
        """)

    @Option(help: "Numbers of inputs (comma-separated).") var n = "10,24"
    @Option(help: "Dimension.") var d = 431_080
    @Option(help: "Rules (comma-separated specs, or all).") var agg = "all"
    @Option(help: "Timed repetitions per rule (best is reported).") var repeats = 3
    @Option(help: "Threads for the rules that split work by coordinates (the floor uses as many).") var threads = 1
    @Flag(help: "Print the figures as JSON.") var json = false

    func run() throws {
        var rows: [[String: String]] = []
        for nText in n.split(separator: ",") {
            guard let count = Int(nText), count >= 3 else { throw ValidationError("--n takes whole numbers ≥ 3") }
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
            if !json { print("n=\(count) f=\(f) d=\(d), \(threads) thread(s): one pass over the data \(fixed(floor * 1e3, 3)) ms (\(fixed(Double(count * d * 4) / floor / 1e9, 1)) GB/s)") }
            let specs = agg == "all" ? AggregatorCatalogue.allRuleSpecs : agg.split(separator: ",").map(String.init)
            for spec in specs {
                let rule: any Aggregator
                do { rule = try AggregatorCatalogue.makeAggregator(spec) } catch { throw ValidationError(error.message) }
                if let why = rule.requirement(n: count, f: f) {
                    if !json { print("  \(spec.padding(toLength: 34, withPad: " ", startingAt: 0)) skipped: \(why)") }
                    continue
                }
                var out = [Float](repeating: 0, count: d)
                let t = Stopwatch.best(repeats: repeats) {
                    var state = AggregatorState.empty
                    _ = out.withUnsafeMutableBufferPointer { rule.aggregate(ctx, state: &state, into: $0) }
                }
                rows.append(["n": String(count), "threads": String(threads), "rule": spec, "ms": fixed(t * 1e3, 3), "floor_ms": fixed(floor * 1e3, 3),
                             "ratio_to_floor": fixed(t / floor, 1)])
                if !json {
                    print("  \(spec.padding(toLength: 34, withPad: " ", startingAt: 0)) \(fixed(t * 1e3, 2).leftPadded(9)) ms  \(fixed(t / floor, 1).leftPadded(7))× floor")
                }
            }
        }
        if json {
            try printJSON(rows)
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
