import ArgumentParser
import DesgdNumerics
import DesgdRobust
import DesgdTrace
import Foundation

/// Rounds as `A:B` (A inclusive, B exclusive, as a Python slice), `A:` (to the end), `:B`, or `T`.
public struct RoundSelection: ExpressibleByArgument, Sendable, Equatable {
    public var lower: Int?
    public var upper: Int?

    public init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func value(_ s: String) -> Int?? { s.isEmpty ? .some(nil) : Int(s).map { .some($0) } }
        switch parts.count {
        case 1:
            guard let t = Int(parts[0]), t >= 0, t < Int.max else { return nil }
            (lower, upper) = (t, t + 1)
        case 2:
            guard let a = value(parts[0]), let b = value(parts[1]) else { return nil }
            (lower, upper) = (a, b)
            if let l = lower, l < 0 { return nil }
            if let l = lower, let u = upper, u < l { return nil }
        default: return nil
        }
    }

    /// The range within a trace's `rounds` (0..<count, or from a fork's first round), or an error
    /// naming what the trace holds.
    public func range(in rounds: Range<Int>, trace: String) throws(TraceError) -> Range<Int> {
        let a = lower ?? rounds.lowerBound, b = upper ?? rounds.upperBound
        guard a <= b, a >= rounds.lowerBound, b <= rounds.upperBound else {
            throw .usage("\(trace) holds rounds \(rounds.lowerBound)..<\(rounds.upperBound) (--rounds \(rounds.lowerBound):\(rounds.upperBound)); \(a):\(b) is outside")
        }
        return a..<b
    }

    public static var defaultValueDescription: String { "all" }
}

/// Opens a trace for a front end: every failure is one line and exit code 2.
public enum TraceOpening {
    public static func open(_ path: String, program: String) throws -> TraceReader {
        do { return try TraceReader(path: path) } catch { throw CommandFailure.exit(program, error.message) }
    }
}

/// `--segment K/N`: part K of N of a re-execution's segments (a Slurm job array's task K of N).
public struct SegmentShare: ExpressibleByArgument, Sendable, Equatable {
    public var part: Int
    public var parts: Int

    /// N: up to a million tasks (Slurm's own MaxArraySize is far lower).
    public static let partsRange = 1...1_000_000

    public init?(argument: String) {
        let p = argument.split(separator: "/", omittingEmptySubsequences: false)
        guard p.count == 2, let k = Int(p[0]), let n = Int(p[1]) else { return nil }
        (part, parts) = (k, n)
    }

    /// Exits 2 with one line unless N is in ``partsRange`` and K in 1...N.
    public func check(_ program: String) throws {
        try CommandFailure.check(program, "--segment N", parts, in: SegmentShare.partsRange)
        try CommandFailure.check(program, "--segment K", part, in: 1...parts)
    }

    public static var defaultValueDescription: String { "1/1" }
}
