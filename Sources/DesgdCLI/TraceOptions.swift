import ArgumentParser
import DesgdNumerics
import DesgdResimulation
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
            throw .usage("\(trace) holds rounds \(rounds.lowerBound)..<\(rounds.upperBound) (--rounds "
                + "\(rounds.lowerBound):\(rounds.upperBound)); \(a):\(b) is outside")
        }
        return a..<b
    }

    public static var defaultValueDescription: String { "all" }

    /// The help of `--rounds`, the same in every command that takes it.
    public static let help = "Rounds A:B (B excluded), A:, :B or T, within the trace's rounds (default: all)."

    /// `--rounds` resolved against a trace's rounds (nil: all of them); a selection outside them is
    /// exit 2 with one line naming what the trace holds, for every command alike.
    public static func resolve(_ selection: RoundSelection?, in reader: TraceReader, trace: String,
                               program: String) throws -> Range<Int> {
        do { return try (selection ?? RoundSelection(argument: ":")!).range(in: reader.rounds, trace: trace) } catch {
            throw CommandFailure.exit(program, error)
        }
    }
}

/// Opens a trace for a front end: every failure is one line and exit code 2.
public enum TraceOpening {
    public static func open(_ path: String, program: String) throws -> TraceReader {
        do { return try TraceReader(path: path) } catch { throw CommandFailure.exit(program, error.commandLineMessage) }
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

/// Vectors on demand in the front ends (`desgd-replay --agg/--export`, `desgd-audit --compare`):
/// rounds a trace recorded without vectors are rebuilt by re-simulation (``RoundRebuilder``) unless
/// `--no-rebuild` keeps the old behaviour of skipping them; `--data DIR` points at the data set.
public enum VectorRebuilding {
    /// A rebuilder when some round of `rounds` was recorded without vectors and `noRebuild` is
    /// false; nil otherwise. When rebuilding is impossible (other numerics or kernel, data set
    /// missing or of another digest), exit 2 with one line naming why and the two ways out.
    public static func rebuilder(_ reader: TraceReader, rounds: some Sequence<Int>, data: String?, noRebuild: Bool,
                                 threads: Int, program: String) throws -> RoundRebuilder? {
        guard !noRebuild, RoundRebuilder.isNeeded(reader, rounds: rounds) else { return nil }
        do { return try RoundRebuilder(reader: reader, dataDirectory: data, threads: threads) } catch {
            throw CommandFailure.exit(program,
                                      "cannot rebuild the vectors of rounds \(reader.path) recorded without them ("
                                      + "\(reader.header.recording)): "
                                      + error.commandLineMessage + MemoryLimitOption.hint(error.memoryShortfall)
                                      + "; or pass --no-rebuild to skip those rounds")
        }
    }

    /// A note for standard error on what rebuilding will cost: nil when nothing is rebuilt.
    public static func note(_ rebuilder: RoundRebuilder?, rounds: some Sequence<Int>, program: String) -> String? {
        guard let rebuilder else { return nil }
        let rebuilt = rounds.filter(rebuilder.rebuilds).count
        let from = rebuilder.reader.checkpointRounds.isEmpty ? "round 0 (the trace has no state checkpoint)"
            : "the trace's state checkpoints"
        return "\(program): note: rebuilding the vectors of \(rebuilt) round"
            + "\(rebuilt == 1 ? "" : "s") recorded without them: "
            + "\(rebuilder.simulatedRounds(for: rounds)) rounds re-simulated from \(from) and checked against their"
                + " records (--no-rebuild skips them)\n"
    }

    /// The exit for an error of a run that rebuilt vectors: a rebuilt round that differs from its
    /// record is a finding (exit 1, like a failed --reexecute); anything else is bad input (exit 2).
    public static func failure(_ error: TraceError, program: String) -> ExitCode {
        guard error.kind == .mismatch else { return CommandFailure.exit(program, error) }
        FileHandle.standardError.write(
            Data("\(program): FAILED: \(DisplayText.escaped(error.commandLineMessage))\n".utf8))
        return ExitCode(1)
    }
}

/// `--adversary recorded|worst` of desgd-replay and desgd-audit: the recorded Byzantine inputs only,
/// or also the worst case found by ``WorstCaseSearch`` within `--budget` evaluations.
public enum AdversaryChoice: String, ExpressibleByArgument, CaseIterable, Sendable {
    case recorded, worst

    /// Refuses `--budget` without `--adversary worst`, and a budget outside its range.
    public func check(budget: Int?, program: String) throws {
        if self == .recorded && budget != nil {
            throw CommandFailure.exit(program, "--budget goes with --adversary worst")
        }
        if let budget { try CommandFailure.check(program, "--budget", budget, in: WorstCaseSearch.budgetRange) }
    }

    /// The search `--adversary` and `--budget` ask for (nil: the recorded inputs only).
    public func search(budget: Int?) -> WorstCaseSearch? {
        self == .worst ? WorstCaseSearch(budget: budget ?? WorstCaseSearch.defaultBudget) : nil
    }
}
