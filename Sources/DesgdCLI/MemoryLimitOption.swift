import ArgumentParser
import DesgdSimulation
import DesgdTrace
import Foundation

/// `--memory-limit SIZE` of the commands that simulate or re-simulate (desgd-record, desgd-replay,
/// desgd-audit): the most memory a run may need (docs/bad-input.md). A run, or a
/// trace whose header claims shapes, that would need more is refused with exit 2 before anything
/// is allocated.
public struct MemoryLimitOption: ParsableArguments {
    @Option(name: .customLong("memory-limit"),
            help: ArgumentHelp("The most memory a command may take, e.g. 8G or 500M (K, M, G, T: powers of "
                                   + "1024): a run, a re-simulation, or reading a trace (verify, replay, export, "
                                   + "audit) whose shapes need more is refused before anything is allocated. Default: "
                                       + "\(Int(MemoryLimit.defaultShare * 100)) % of the "
                                   + "machine's memory.",
                               valueName: "size"))
    public var memoryLimit: String?

    public init() {}

    /// The largest limit accepted: 2⁶⁰ bytes (an exbibyte).
    public static let maximum: UInt64 = 1 << 60

    /// Bytes of `SIZE`: digits (a decimal fraction allowed) and an optional K, M, G or T (powers of
    /// 1024, an optional trailing B, any case); nil when malformed, zero or above ``maximum``.
    public static func bytes(_ text: String) -> UInt64? {
        var s = text.uppercased()
        if s.hasSuffix("B") { s.removeLast() }
        var scale: Double = 1
        if let unit = s.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][unit] {
            scale = pow(1024, Double(power))
            s.removeLast()
        }
        guard !s.isEmpty, s.utf8.count <= 24, s.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(s), value.isFinite, value > 0 else { return nil }
        let bytes = (value * scale).rounded(.down)
        guard bytes >= 1, bytes <= Double(maximum) else { return nil }
        return UInt64(bytes)
    }

    /// Installs the limit given (or leaves the machine's default); exit 2 with one line on a bad SIZE.
    public func apply(program: String) throws {
        guard let memoryLimit else { return }
        guard let bytes = MemoryLimitOption.bytes(memoryLimit) else {
            throw CommandFailure.exit(program, "--memory-limit must be a size such as 8G or 500M, at most 1048576T "
                                      + "(got '\(memoryLimit.prefix(40))')")
        }
        MemoryLimit.process = MemoryLimit(bytes: bytes)
    }

    /// What to add to the message of an error that carries a memory shortfall: how to raise the limit.
    public static func hint(_ shortfall: MemoryShortfall?) -> String {
        guard let shortfall else { return "" }
        let gib = max(1, (Double(shortfall.needed) / Double(1 << 30)).rounded(.up))
        let example = Int(min(gib, 1e12))
        return "; raise the limit with --memory-limit SIZE (e.g. --memory-limit \(example)G) on a machine that has it"
    }
}

extension CommandFailure {
    /// Exit 2 with the error's one line; a memory shortfall gets the way to raise the limit.
    public static func exit(_ program: String, _ error: TraceError) -> ExitCode {
        exit(program, error.commandLineMessage + MemoryLimitOption.hint(error.memoryShortfall))
    }

    public static func exit(_ program: String, _ error: SimulationError) -> ExitCode {
        exit(program, error.commandLineMessage + MemoryLimitOption.hint(error.memoryShortfall))
    }
}
