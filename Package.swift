// swift-tools-version: 6.2
// desgd: replayable, auditable Byzantine-robust distributed learning (see README.md).
// Tools version 6.2, not 6.0: SwiftPM (6.2 and later) lets another package depend on a version of this one
// despite the unsafe `-target-cpu` flag below only if this manifest's tools version is 6.2 or later; with 6.0
// it says "the target 'DesgdNumerics' in product 'DesgdNumerics' contains unsafe build flags".
import PackageDescription

/// The CPU every Swift target is compiled for, chosen by the manifest (it runs on the host, so `#if arch` is
/// the architecture being built for, except in a cross build).
///
/// - x86-64, by default: `haswell` (x86-64-v3: AVX2 + FMA). The kernels' fused multiply-adds
///   (`addingProduct`, Sources/DesgdNumerics/Linear/PortableGEMM.swift) are IEEE fma: without the FMA
///   instructions each lane becomes a call to the C library's software `fmaf`, and the portable GEMM kernel
///   drops from ~40 to ~1 GFLOP/s. Swift has no per-function target attribute (only a C kernel with one,
///   chosen at run time, could be fast without the flag), so the whole target is compiled for haswell.
/// - arm64 (Apple silicon, Graviton): no flag; FMA is in the baseline ISA.
/// - `DESGD_TARGET_CPU=NAME` overrides both: `-target-cpu NAME`, e.g. `x86-64` for the baseline ISA (SSE2, no
///   AVX2/FMA; .ci/baseline-isa re-executes the portable samples with it: the bits do not depend on the ISA,
///   only the speed). `DESGD_TARGET_CPU=none` passes no flag at all: the compiler's default CPU, no unsafe
///   flags (a cross build, e.g. for arm64 from an x86-64 host, whose manifest would otherwise say haswell).
let cpu: [SwiftSetting] = {
    let name: String?
    if let requested = Context.environment["DESGD_TARGET_CPU"] {
        name = requested.isEmpty || requested == "none" ? nil : requested
    } else {
        #if arch(x86_64)
        name = "haswell"
        #else
        name = nil
        #endif
    }
    return name.map { [.unsafeFlags(["-target-cpu", $0])] } ?? []
}()

let package = Package(
    name: "desgd",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "DesgdNumerics", targets: ["DesgdNumerics"]),
        .library(name: "DesgdRobust", targets: ["DesgdRobust"]),
        .library(name: "DesgdSimulation", targets: ["DesgdSimulation"]),
        .library(name: "DesgdTrace", targets: ["DesgdTrace"]),
        .library(name: "DesgdResimulation", targets: ["DesgdResimulation"]),
        .library(name: "DesgdReplay", targets: ["DesgdReplay"]),
        .library(name: "DesgdAudit", targets: ["DesgdAudit"]),
        .library(name: "DesgdExperiments", targets: ["DesgdExperiments"]),
        // The live server's C ABI, loaded by the Python package (python/, docs/federation.md).
        .library(name: "DesgdLive", type: .dynamic, targets: ["DesgdLiveABI"]),
        .executable(name: "desgd-record", targets: ["desgd-record"]),
        .executable(name: "desgd-replay", targets: ["desgd-replay"]),
        .executable(name: "desgd-audit", targets: ["desgd-audit"]),
        .executable(name: "desgd-grid", targets: ["desgd-grid"]),
        .executable(name: "desgd-key", targets: ["desgd-key"]),
        .executable(name: "desgd-bench", targets: ["desgd-bench"]),
        .executable(name: "desgd-fuzz", targets: ["desgd-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries (Debian: libzstd-dev, zlib1g-dev, libopenblas-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),

        // Numerics and model: RNG, vector math, GEMM backends, data, partitions, the CNN.
        .target(
            name: "DesgdNumerics",
            dependencies: ["COpenBLAS", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: cpu),
        // Robust aggregation and attacks.
        .target(name: "DesgdRobust", dependencies: ["DesgdNumerics"], swiftSettings: cpu),

        // Simulation: DeSGD and the SGD baselines (Algorithm 1), workers, server, observers.
        .target(name: "DesgdSimulation", dependencies: ["DesgdNumerics", "DesgdRobust"], swiftSettings: cpu),

        // Traces: the format (traces/FORMAT.md), the recorder (an observer of the engine), the reader.
        .target(
            name: "DesgdTrace",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "CZstd", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: cpu),

        // Re-simulation: a recorded run's segments simulated again from its checkpoints and compared
        // byte for byte; re-execution, rebuilding vectors on demand, resumption, forks and their
        // descent. The recorder links this, never the replay or the audit.
        .target(
            name: "DesgdResimulation",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace"],
            swiftSettings: cpu),

        // Replay: counterfactual aggregation on recorded rounds (rebuilt ones too), verification,
        // export, the replay's summary and text formatting.
        .target(
            name: "DesgdReplay",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace", "DesgdResimulation"],
            swiftSettings: cpu),

        // Audit: the per-round deviation report, its text, HTML and SVG renderings, fork families.
        .target(
            name: "DesgdAudit",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace", "DesgdResimulation",
                           "DesgdReplay"],
            swiftSettings: cpu),

        // Recording as an application: a simulation run into a trace, the summary desgd-record prints,
        // default trace paths. Shared by desgd-record, the grid runner and the recording benchmark.
        .target(
            name: "DesgdRecording",
            dependencies: ["DesgdNumerics", "DesgdSimulation", "DesgdTrace"],
            swiftSettings: cpu),

        // A live federation's server: clients' messages in, desgd's aggregation, server step and
        // recorder (docs/federation.md).
        .target(
            name: "DesgdLive",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace"],
            swiftSettings: cpu),

        // What the command-line front ends share: option groups that map to library values, errors.
        .target(
            name: "DesgdCLI",
            dependencies: ["DesgdSimulation", "DesgdTrace", "DesgdResimulation", "DesgdRecording",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),

        // Experiment grids: specs, the local runner (resume, locks, Ctrl-C), Slurm job arrays, the
        // paper's published tables and the report that puts measured numbers beside them. A library:
        // cells' options are parsed by the parser the front end passes (DesgdCLI's), never here.
        .target(
            name: "DesgdExperiments",
            dependencies: ["DesgdNumerics", "DesgdSimulation", "DesgdTrace", "DesgdRecording", "DesgdResimulation",
                           "DesgdReplay", "DesgdAudit"],
            swiftSettings: cpu),

        // The front ends: thin commands over the libraries.
        .executableTarget(
            name: "desgd-record",
            dependencies: ["DesgdNumerics", "DesgdSimulation", "DesgdTrace", "DesgdRecording", "DesgdResimulation",
                           "DesgdCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),

        .executableTarget(
            name: "desgd-replay",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace", "DesgdResimulation",
                           "DesgdReplay", "DesgdCLI",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),
        .executableTarget(
            name: "desgd-audit",
            dependencies: ["DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace", "DesgdResimulation",
                           "DesgdReplay", "DesgdAudit", "DesgdCLI",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),

        // The trace fuzzer: what an auditor does with a file (TraceExercise) and the structure-aware
        // mutator; `desgd-fuzz` is a libFuzzer target when built by Tests/fuzz/fuzz-traces.sh.
        .target(name: "DesgdFuzzing", dependencies: ["DesgdNumerics", "DesgdTrace", "DesgdResimulation", "DesgdReplay",
                                                     "DesgdAudit",
                                                     .product(name: "Crypto", package: "swift-crypto")], swiftSettings: cpu),
        .executableTarget(name: "desgd-fuzz", dependencies: ["DesgdFuzzing"], swiftSettings: cpu),

        .executableTarget(
            name: "desgd-grid",
            dependencies: ["DesgdNumerics", "DesgdSimulation", "DesgdTrace", "DesgdCLI", "DesgdExperiments",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),

        .executableTarget(
            name: "desgd-key",
            dependencies: ["DesgdSimulation", "DesgdTrace", "DesgdCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: cpu),

        // The C ABI over DesgdLive (the dynamic library libDesgdLive.so).
        .target(
            name: "DesgdLiveABI",
            dependencies: ["DesgdLive", "DesgdCLI", "DesgdSimulation", "DesgdTrace"],
            swiftSettings: cpu),

        // Benchmarks (release build): numerics and aggregation figures as ratios measured in one run.
        .executableTarget(
            name: "desgd-bench",
            dependencies: [
                "DesgdNumerics", "DesgdRobust", "DesgdSimulation", "DesgdTrace", "DesgdRecording", "DesgdReplay", "DesgdCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: cpu),

        .testTarget(name: "DesgdNumericsTests", dependencies: ["DesgdNumerics"], swiftSettings: cpu),
        .testTarget(name: "DesgdRobustTests", dependencies: ["DesgdRobust"], swiftSettings: cpu),
        .testTarget(name: "DesgdSimulationTests", dependencies: ["DesgdSimulation"], swiftSettings: cpu),
        .testTarget(name: "DesgdTraceTests",
                    dependencies: ["DesgdTrace", "DesgdRecording", "DesgdResimulation", "DesgdReplay", "DesgdAudit",
                                   "DesgdFuzzing"],
                    swiftSettings: cpu),
        .testTarget(name: "DesgdLiveTests",
                    dependencies: ["DesgdLive", "DesgdResimulation", "DesgdReplay", "DesgdAudit", "DesgdTrace",
                                   "DesgdCLI", "DesgdFuzzing"],
                    swiftSettings: cpu),
        .testTarget(name: "DesgdReplayTests",
                    dependencies: ["DesgdResimulation", "DesgdReplay", "DesgdAudit", "DesgdTrace", "DesgdFuzzing"],
                    swiftSettings: cpu),
        .testTarget(name: "DesgdExperimentsTests",
                    dependencies: ["DesgdExperiments", "DesgdTrace", "DesgdRecording", "DesgdCLI", "DesgdResimulation",
                                   "DesgdReplay",
                                   "DesgdAudit", "DesgdSimulation", "DesgdFuzzing"],
                    swiftSettings: cpu),
    ]
)
