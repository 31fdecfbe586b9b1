import DesgdNumerics
import Foundation

/// How much memory a run may take: the machine's default (75 % of its physical memory) or a limit
/// a front end was given. A trace's header comes from the party being audited, so the shapes it
/// claims (model, workers, drift window) are checked against this before anything is allocated
/// for them (docs/bad-input.md; traces/FORMAT.md §6).
public struct MemoryLimit: Sendable, Equatable, CustomStringConvertible {
    public var bytes: UInt64
    /// Whether this is the machine's default rather than a limit given.
    public var isMachineDefault: Bool

    public init(bytes: UInt64, isMachineDefault: Bool = false) {
        self.bytes = bytes
        self.isMachineDefault = isMachineDefault
    }

    /// The share of physical memory a run may take by default.
    public static let defaultShare = 0.75

    /// The machine's physical memory (sysconf: pages × page size), nil when it cannot be read.
    public static func physicalMemory() -> UInt64? {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        let (bytes, overflow) = UInt64(pages).multipliedReportingOverflow(by: UInt64(size))
        return overflow ? UInt64.max : bytes
    }

    /// 75 % of the physical memory (16 GiB when it cannot be read).
    public static var machineDefault: MemoryLimit {
        let physical = physicalMemory() ?? (16 << 30)
        return MemoryLimit(bytes: UInt64(Double(physical) * defaultShare), isMachineDefault: true)
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var processLimit: MemoryLimit?

    /// The limit every run of this process obeys unless given another: the machine's default until
    /// a front end (its memory-limit option) or the fuzzer's exercise sets it.
    public static var process: MemoryLimit {
        get { lock.withLock { processLimit } ?? machineDefault }
        set { lock.withLock { processLimit = newValue } }
    }

    /// Throws ``SimulationError`` carrying the shortfall when `needed` bytes exceed the limit.
    public func check(_ needed: UInt64, for what: String) throws(SimulationError) {
        guard needed > bytes else { return }
        let shortfall = MemoryShortfall(needed: needed, limit: self, what: what)
        var error = SimulationError(Explanation(shortfall.description))
        error.memoryShortfall = shortfall
        throw error
    }

    /// A size as the messages write it: `1.5 GB`, `300 MB` (decimal units).
    public static func text(_ bytes: UInt64) -> String {
        let b = Double(bytes)
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        return String(format: "%.0f MB", max(1, (b / 1e6).rounded(.up)))
    }

    public var description: String {
        let share = Int(MemoryLimit.defaultShare * 100)
        return MemoryLimit.text(bytes) + (isMachineDefault ? " (\(share) % of this machine's memory)" : "")
    }
}

/// A run that would need more memory than its limit: what, how much, and the limit. The front ends
/// add how to raise it.
public struct MemoryShortfall: Sendable, Equatable, CustomStringConvertible {
    public var needed: UInt64
    public var limit: MemoryLimit
    public var what: String

    public var description: String {
        "\(what) needs about \(MemoryLimit.text(needed)) of memory, above the limit of \(limit)"
    }
}

/// Saturating byte arithmetic for memory estimates: an overflow is `UInt64.max`, more than any limit.
public enum MemoryArithmetic {
    public static func mul(_ factors: UInt64...) -> UInt64 {
        factors.reduce(1) { a, b in
            let (r, o) = a.multipliedReportingOverflow(by: b)
            return o ? .max : r
        }
    }

    public static func add(_ terms: UInt64...) -> UInt64 {
        terms.reduce(0) { a, b in
            let (r, o) = a.addingReportingOverflow(b)
            return o ? .max : r
        }
    }

    /// A count as an unsigned factor (a negative one as 0).
    public static func u(_ x: Int) -> UInt64 { UInt64(max(0, x)) }
}

extension SimulationConfig {
    /// An upper estimate, in bytes, of what `runs` runs of this configuration hold at once, computed
    /// from the configuration alone before anything is allocated (saturating at `UInt64.max`).
    /// With d the model's parameter count, n and f the workers, C = 10 classes, G the aggregation
    /// groups (C in DeSGD, 1 otherwise), K the groups aggregated per round, H = n·k honest momenta
    /// (k the classes a worker holds: label-skew's k, else C; 1 in the baseline), B = f·G Byzantine
    /// momenta and W the drift window (0 without drift), one run holds 4 bytes times
    /// - 4·d: the model, its initial copy, the snapshot and the update;
    /// - 2·(H + B + C + 1)·d: the momentum stores, the class buffer and the server momentum, and a
    ///   state checkpoint of them captured or being restored;
    /// - 6·G·d: the rules' and attacks' carried vectors, before and after a round;
    /// - 4·K·(n + f)·d: a round's honest and received messages, its event and its encoding;
    /// - 4·d + C·d + G·(W + 2)·d: the drift tracker (two binary64 sums, the honest shadow's buffer,
    ///   per group a window of W deviations and a binary64 sum), when W > 0;
    /// - threads·batch·320 KB + min(4 096, n·k·batch)·26 KB: the batched pass's workspace (lenet's
    ///   sizes, an upper bound for the small model; ``CNNWorkspace``).
    /// The data set is not included (it is loaded, and bounded, apart).
    public func memoryEstimate(driftWindow: Int? = nil, runs: Int = 1) -> UInt64 {
        let u = MemoryArithmetic.u
        func mul(_ a: UInt64, _ b: UInt64) -> UInt64 { MemoryArithmetic.mul(a, b) }
        func add(_ a: UInt64, _ b: UInt64) -> UInt64 { MemoryArithmetic.add(a, b) }
        let desgd = mode == .desgd
        let d = u(clients?.parameterCount ?? model.shape.map { ParameterLayout($0).count } ?? 0), C = u(classes),
            n = u(honestWorkers), f = u(byzantineWorkers)
        let G: UInt64 = desgd ? C : 1, K: UInt64 = desgd ? u(classesPerRound) : 1
        let held: UInt64
        switch partition {
        case .labelSkew(let k): held = desgd ? u(k) : 1
        case .declared: held = desgd ? u(clients?.holdings.map(\.count).max() ?? classes) : 1
        default: held = desgd ? C : 1
        }
        let H = mul(n, held), B = mul(f, G), W = u(driftWindow ?? 0)
        var vectors = add(4, mul(2, add(add(H, B), add(C, 1))))
        vectors = add(vectors, mul(6, G))
        vectors = add(vectors, mul(mul(4, K), add(n, f)))
        if W > 0 { vectors = add(vectors, add(add(4, C), mul(G, add(W, 2)))) }
        var bytes = mul(mul(4, d), vectors)
        let samples = min(4_096, mul(H, u(batchSize)))
        bytes = add(bytes, add(mul(mul(u(threads), u(batchSize)), 320_000), mul(samples, 26_000)))
        return mul(bytes, u(max(1, runs)))
    }

    /// A short description of the shape the estimate is about, for the messages.
    public var shapeDescription: String {
        "\(model.rawValue) with \(honestWorkers) honest and \(byzantineWorkers) Byzantine workers"
    }

    /// Throws when `runs` runs of this configuration (with drift window `driftWindow`) would need
    /// more than `limit`: before any of it is allocated.
    public func checkMemory(driftWindow: Int? = nil, runs: Int = 1,
                            limit: MemoryLimit = .process) throws(SimulationError) {
        let what = runs > 1 ? "\(runs) runs at once of \(shapeDescription)" : "a run of \(shapeDescription)"
        try limit.check(memoryEstimate(driftWindow: driftWindow, runs: runs), for: what)
    }
}
