import Foundation

/// Wall-clock timing for benchmarks and progress reports.
public enum Stopwatch {
    /// Seconds since an arbitrary fixed point (monotonic).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU seconds the calling thread has used (a figure a busy or noisy machine does not inflate
    /// the way it inflates wall time).
    public static func threadCPU() -> Double { cpu(CLOCK_THREAD_CPUTIME_ID) }

    /// CPU seconds the whole process has used, every thread included.
    public static func processCPU() -> Double { cpu(CLOCK_PROCESS_CPUTIME_ID) }

    static func cpu(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// The best (smallest) wall time of `repeats` runs of `body`, after one warm-up run.
    public static func best(repeats: Int, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = now()
            body()
            best = min(best, now() - t0)
        }
        return best
    }
}

/// Reference measurements the benchmarks divide by.
public enum Benchmarks {
    /// Single-core sgemm rate in GFLOP/s of `backend` on size×size×size products.
    public static func sgemmRate(backend: NumericBackend, size: Int = 1024) -> Double {
        parallelSgemmRate(backend: backend, threads: 1, size: size)
    }

    /// The machine's sgemm rate in GFLOP/s on `threads` threads: `threads` independent
    /// size³ products run at once (how desgd uses the cores: one product per work item).
    public static func parallelSgemmRate(backend: NumericBackend, threads: Int, size: Int = 1024) -> Double {
        var rng = RandomStream(seed: 1, purpose: .initialization)
        let a = (0..<(size * size)).map { _ in rng.nextFloat(in: -1, 1) }
        let outputs = UnsafeMutablePointer<Float>.allocate(capacity: threads * size * size)
        defer { outputs.deallocate() }
        let out = SendablePointer(outputs)
        let executor = ParallelExecutor(threads: threads)
        let t = a.withUnsafeBufferPointer { pa in
            let shared = SendableBuffer(pa)
            return Stopwatch.best(repeats: 3) {
                executor.forEach(threads) { i in
                    let p = shared.buffer.baseAddress!
                    backend.sgemm(.none, .none, m: size, n: size, k: size, alpha: 1, a: p, lda: size, b: p, ldb: size,
                                  beta: 0, c: out.base + i * size * size, ldc: size)
                }
            }
        }
        return Double(threads) * 2.0 * Double(size) * Double(size) * Double(size) / t / 1e9
    }
}
