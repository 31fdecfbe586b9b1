import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdReplay
import DesgdTrace
import Foundation

extension DesgdReplayCommand {
    /// `--parent PARENT`: the fork's descent (``ForkDescent``), checked before anything else; a
    /// difference or a descent that cannot be verified exits 1. Without `--parent`, a fork verified
    /// or re-executed gets a note that its starting checkpoint is taken on trust.
    func checkDescent(_ reader: TraceReader, program: String) throws -> ForkDescent.Outcome? {
        guard let parent else {
            if (verify || reexecute), let fork = reader.header.fork {
                FileHandle.standardError.write(Data("\(program): note: \(trace) is a fork: its starting checkpoint (round \(fork.at)) is taken on trust; --parent PARENT.trace verifies its descent\n".utf8))
            }
            return nil
        }
        guard reader.header.fork != nil else {
            throw CommandFailure.exit(program, "--parent: \(trace) is not a fork (its header has no fork key)")
        }
        let parentReader = try TraceOpening.open(parent, program: program)
        let outcome: ForkDescent.Outcome
        do { outcome = try ForkDescent.check(fork: reader, parent: parentReader, dataDirectory: data, threads: threads) } catch {
            throw CommandFailure.exit(program, error.message)
        }
        if !outcome.isVerified {
            if json {
                struct Failure: Encodable { var trace: String, parent: String, passed = false, descent: String }
                print(String(decoding: try Self.jsonEncoder.encode(Failure(trace: trace, parent: parent, descent: outcome.summary)),
                             as: UTF8.self))
            } else {
                print(outcome.summary)
            }
            throw ExitCode(1)
        }
        return outcome
    }

    static var jsonEncoder: JSONEncoder {
        let e = RecordBody.encoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return e
    }

    /// What `--reexecute --json` prints.
    struct ReexecutionOutput: Encodable {
        struct Start: Encodable {
            var round: Int
            /// Whether this run verified the checkpoint (or re-created the initial state).
            var verified: Bool
        }
        var trace: String
        var passed: Bool
        var mismatch: String?
        var mismatchRound: Int?
        var roundsChecked: Int
        var segments: [String]
        var keyframesChecked: Int
        var checkpointsChecked: Int
        var startingCheckpoints: [Start]
        /// What the run took on trust, as a sentence (nil: nothing).
        var trusted: String?
        var descent: String?
    }

    func runReexecution(_ reader: TraceReader, descent: ForkDescent.Outcome?, program: String) throws {
        let share = segment ?? SegmentShare(argument: "1/1")!
        let segments: [Reexecution.Segment], dataset: Dataset, range: Range<Int>
        do {
            range = try (rounds ?? RoundSelection(argument: ":")!).range(in: reader.rounds, trace: trace)
            let all = try Reexecution.segments(of: reader, rounds: fromStart ? reader.firstRound..<range.upperBound : range)
            segments = Reexecution.share(all, part: share.part, of: share.parts)
            try Reexecution.checkArithmetic(reader, backend: reader.header.config.backend.description)
            dataset = try Reexecution.loadDataset(for: reader.header, directory: data)
        } catch { throw CommandFailure.exit(program, error.message) }
        guard !segments.isEmpty else {
            // A job array with more tasks than the trace has segments: nothing is left for this one.
            print("re-executed nothing of \(trace): part \(share.part)/\(share.parts) holds none of its segments")
            return
        }
        let covered = segments.reduce(0) { $0 + $1.end - $1.start }
        let bar = ProgressBar(total: covered, label: "re-execute")
        let report: ReexecutionReport
        do { report = try Reexecution.run(reader, dataset: dataset, segments: segments, threads: threads) { bar.update($0) } } catch {
            throw CommandFailure.exit(program, error.message)
        }
        let trusted = trustSentence(reader, segments: segments, range: range, share: share, descent: descent)
        let unverified = Set(Reexecution.unverifiedStarts(segments).map(\.start))
        let forkVerified = descent?.isVerified == true
        func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
        if json {
            let starts = segments.map { s in
                ReexecutionOutput.Start(round: s.start, verified: !unverified.contains(s.start) || (s.start == reader.firstRound && forkVerified))
            }
            let output = ReexecutionOutput(trace: trace, passed: report.passed, mismatch: report.mismatch, mismatchRound: report.mismatchRound,
                                           roundsChecked: report.roundsChecked, segments: segments.map { "\($0.start)..<\($0.end)" },
                                           keyframesChecked: report.keyframesChecked, checkpointsChecked: report.checkpointsChecked,
                                           startingCheckpoints: starts, trusted: trusted, descent: descent?.summary)
            print(String(decoding: try Self.jsonEncoder.encode(output), as: UTF8.self))
            if !report.passed { throw ExitCode(1) }
            return
        }
        if let m = report.mismatch {
            print("re-execution FAILED: \(m)")
            if let trusted { print(trusted) }
            throw ExitCode(1)
        }
        let part = share.parts > 1 ? " (part \(share.part)/\(share.parts): \(segments.map { "\($0.start)..<\($0.end)" }.joined(separator: ", ")))" : ""
        print("re-executed \(count(report.roundsChecked, "round")) of \(trace) in \(count(report.segmentsRun, "segment"))\(part): every message, decision, state, aggregate, model diff and evaluation matches bit for bit, and \(count(report.keyframesChecked, "keyframe")) and \(count(report.checkpointsChecked, "checkpoint"))")
        if let trusted { print(trusted) }
        if let descent { print(descent.summary) }
    }

    /// What the re-execution took on trust, as one sentence naming the option that verifies it; nil
    /// when it started from round 0's initial state or from verified checkpoints only.
    func trustSentence(_ reader: TraceReader, segments: [Reexecution.Segment], range: Range<Int>, share: SegmentShare,
                       descent: ForkDescent.Outcome?) -> String? {
        let first = reader.firstRound
        let forkStart = reader.header.fork != nil ? " (a fork's first checkpoint: --parent PARENT.trace verifies it)" : ""
        let origin = reader.header.fork != nil ? "the fork's first round \(first)" : "round 0"
        // The fork's own first checkpoint, checked by its descent when --parent gave one.
        let unverified = Reexecution.unverifiedStarts(segments).filter { !($0.start == first && descent?.isVerified == true) }
        guard !unverified.isEmpty else { return nil }
        if share.parts > 1 {
            let rounds = unverified.map { String($0.start) }.joined(separator: ", ")
            return "started from the checkpoint\(unverified.count == 1 ? "" : "s") of round\(unverified.count == 1 ? "" : "s") \(rounds), unverified by this part\(unverified.contains { $0.start == first } ? forkStart : ""): the parts re-executing the segments before them verify them, so only every part passing verifies the chain of checkpoints back to \(origin)"
        }
        let c = unverified[0].start, a = fromStart ? first : range.lowerBound
        if c == first {
            return "re-executed rounds \(a)..<\(range.upperBound) from the fork's first checkpoint (round \(c)), itself unverified: --parent PARENT.trace verifies it"
        }
        return "re-executed rounds \(a)..<\(range.upperBound) from the checkpoint before round \(a) (round \(c)), itself unverified: --from-start verifies the chain of checkpoints back to \(origin)"
    }
}
