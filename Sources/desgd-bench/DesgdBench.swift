import ArgumentParser
import DesgdNumerics

/// `desgd-bench`: performance figures measured as ratios within one run (build with `-c release`).
struct DesgdBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "desgd-bench",
        abstract: "Measure desgd's speed as ratios within one run (use a release build).",
        subcommands: [GEMMBench.self])
}

struct GEMMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "Single-core sgemm rate of each backend.")
    @Option(help: "Matrix size.") var size = 1024
    func run() {
        for backend in NumericBackend.allCases {
            let g = Benchmarks.sgemmRate(backend: backend, size: size)
            print("\(backend.rawValue): \(String(format: "%.1f", g)) GFLOP/s  (\(backend.description))")
        }
    }
}
