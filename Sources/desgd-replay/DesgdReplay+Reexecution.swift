import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdResimulation
import DesgdTrace
import Foundation

extension DesgdReplayCommand {
    /// `--parent PARENT`: the fork's descent (``ForkDescent``), checked before anything else; a
    /// difference or a descent that cannot be verified exits 1. Without `--parent`, a fork verified
    /// or re-executed gets a note that its starting checkpoint is taken on trust.
    func checkDescent(_ reader: TraceReader, program: String) throws -> ForkDescent.Outcome? {
        guard let parent else {
            if verify || reexecute, let fork = reader.header.fork {
                let note = "\(program): note: \(trace) is a fork: its starting checkpoint"
                    + " (round \(fork.at)) is taken on "
                    + "trust; --parent PARENT.trace verifies its descent\n"
                FileHandle.standardError.write(Data(note.utf8))
            }
            return nil
        }
        guard reader.header.fork != nil else {
            throw CommandFailure.exit(program, "--parent: \(trace) is not a fork (its header has no fork key)")
        }
        let parentReader = try TraceOpening.open(parent, program: program)
        let outcome: ForkDescent.Outcome
        do {
            outcome = try ForkDescent.check(fork: reader, parent: parentReader, dataDirectory: data, threads: threads)
        } catch {
            throw CommandFailure.exit(program, error)
        }
        if !outcome.isVerified {
            if json {
                struct Failure: Encodable { var trace: String, parent: String, passed = false, descent: String }
                let failure = Failure(trace: trace, parent: parent, descent: outcome.summary)
                print(DisplayText.jsonEscaped(String(decoding: try Self.jsonEncoder.encode(failure), as: UTF8.self)))
            } else {
                print(DisplayText.escaped(outcome.summary))
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
        let range = try RoundSelection.resolve(rounds, in: reader, trace: trace, program: program)
        let segments: [Reexecution.Segment], dataset: Dataset
        do {
            let all = try Reexecution.segments(of: reader, rounds: fromStart ? reader.firstRound..<range.upperBound
                : range)
            segments = Reexecution.share(all, part: share.part, of: share.parts)
            try Reexecution.checkArithmetic(reader, backend: reader.header.config.backend.description)
            try Reexecution.checkMemory(reader, threads: threads, segments: segments.count)
            dataset = try Reexecution.loadDataset(for: reader.header, directory: data)
        } catch { throw CommandFailure.exit(program, error) }
        guard !segments.isEmpty else {
            // A job array with more tasks than the trace has segments: nothing is left for this one.
            print("re-executed nothing of \(trace): part \(share.part)/\(share.parts) holds none of its segments")
            return
        }
        let covered = segments.reduce(0) { $0 + $1.end - $1.start }
        let bar = ProgressBar(total: covered, label: "re-execute")
        let report: ReexecutionReport
        do {
            report = try Reexecution.run(reader, dataset: dataset, segments: segments, threads: threads) {
                bar.update($0)
            }
        } catch {
            throw CommandFailure.exit(program, error)
        }
        let unverified = unverifiedStarts(reader, segments: segments, descent: descent)
        let trusted = trustSentence(reader, unverified: unverified, range: range, share: share)
        let spans = segments.map { "\($0.start)..<\($0.end)" }
        func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
        if json {
            let starts = segments.map { s in
                ReexecutionOutput.Start(round: s.start, verified: !unverified.contains { $0.start == s.start })
            }
            let output = ReexecutionOutput(trace: trace, passed: report.passed, mismatch: report.mismatch,
                                           mismatchRound: report.mismatchRound, roundsChecked: report.roundsChecked,
                                           segments: spans, keyframesChecked: report.keyframesChecked,
                                           checkpointsChecked: report.checkpointsChecked, startingCheckpoints: starts,
                                           trusted: trusted, descent: descent?.summary)
            print(DisplayText.jsonEscaped(String(decoding: try Self.jsonEncoder.encode(output), as: UTF8.self)))
            if !report.passed { throw ExitCode(1) }
            return
        }
        if let m = report.mismatch {
            print("re-execution FAILED: \(DisplayText.escaped(m))")
            if let trusted { print(trusted) }
            throw ExitCode(1)
        }
        let part = share.parts > 1 ? " (part \(share.part)/\(share.parts): \(spans.joined(separator: ", ")))" : ""
        print("re-executed \(count(report.roundsChecked, "round")) of \(trace) in "
            + "\(count(report.segmentsRun, "segment"))"
              + "\(part): every message, decision, state, aggregate, model diff and"
                  + " evaluation matches bit for bit, and "
              + "\(count(report.keyframesChecked, "keyframe")) and \(count(report.checkpointsChecked, "checkpoint"))")
        if let trusted { print(trusted) }
        if let descent { print(DisplayText.escaped(descent.summary)) }
    }

    /// The segments whose starting checkpoint this run took on trust: those no segment of the run
    /// verified, but a fork's first checkpoint when `--parent` proved its descent.
    func unverifiedStarts(_ reader: TraceReader, segments: [Reexecution.Segment],
                          descent: ForkDescent.Outcome?) -> [Reexecution.Segment] {
        Reexecution.unverifiedStarts(segments, of: reader).filter {
            !($0.start == reader.firstRound && descent?.isVerified == true)
        }
    }

    /// What the re-execution took on trust, as one sentence naming the option that verifies it; nil
    /// when it started from round 0's initial state or from verified checkpoints only.
    func trustSentence(_ reader: TraceReader, unverified: [Reexecution.Segment], range: Range<Int>,
                       share: SegmentShare) -> String? {
        guard let c = unverified.first?.start else { return nil }
        let first = reader.firstRound, isFork = reader.header.fork != nil
        let origin = isFork ? "the fork's first round \(first)" : "round 0"
        if share.parts > 1 {
            let s = unverified.count == 1 ? "" : "s"
            let forkStart = isFork && unverified.contains { $0.start == first }
                ? " (the fork's first checkpoint: --parent PARENT.trace verifies it)" : ""
            return "started from the checkpoint\(s) of round\(s) "
                + "\(unverified.map { String($0.start) }.joined(separator: ", ")), "
                + "unverified by this part\(forkStart): the parts re-executing the segments before them verify them, "
                + "so only every part passing verifies the chain of checkpoints back to \(origin)"
        }
        let a = fromStart ? first : range.lowerBound
        if c == first {
            return "re-executed rounds \(a)..<\(range.upperBound) from the fork's first checkpoint (round \(c)), "
                + "itself unverified: --parent PARENT.trace verifies it"
        }
        return "re-executed rounds \(a)..<\(range.upperBound) from the checkpoint before round \(a) (round \(c)), "
            + "itself unverified: --from-start verifies the chain of checkpoints back to \(origin)"
    }
}
