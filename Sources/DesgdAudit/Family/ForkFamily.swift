import DesgdNumerics
import DesgdResimulation
import DesgdTrace
import Foundation

/// A fork family side by side (`desgd-audit PARENT FORK…`; docs/forks.md): the parent and each fork
/// made of it (`desgd-record --fork`), from the earliest fork round on (the parent's series from a
/// little before it, ``ForkFamilyReport/contextStart``), with per branch test
/// accuracy on evaluation rounds and the recorded rule's gap and λ̂ per round.
///
/// A round of several aggregations (DeSGD with more than one class per round) gives one value per
/// branch: the mean over its aggregations of the gap, and of the λ̂ that are defined (Δ_S > 0); a
/// non-finite value makes the round's value non-finite, as it should stand out.
///
/// Recovery (what a researcher asks of a fork made at a collapse: does the change bring the run
/// back, and how fast): the reference is the parent's best accuracy before the earliest fork round
/// (its pre-collapse best when the fork was made at the collapse); a branch has recovered at its
/// first evaluation at or after its fork round whose accuracy is within `recoverWithin` points of it.
/// A parent that never learned (a collapse from round 0, or a fork made early) makes that target
/// trivial: `recoverTo` replaces it with an absolute accuracy (e.g. 70 %).
public struct ForkFamilyReport: Sendable, Codable, Equatable {
    public struct Point: Sendable, Codable, Equatable {
        public var round: Int
        public var value: Double?
    }

    public struct Summary: Sendable, Codable, Equatable {
        /// The last evaluation before the branch's fork round (the parent's, as the branch starts
        /// from its state), and its round.
        public var accuracyAtFork: Double?
        public var accuracyAtForkRound: Int?
        /// The best and the last evaluation from the fork round on.
        public var bestAfter: Double?
        public var bestAfterRound: Int?
        public var finalAfter: Double?
        public var finalAfterRound: Int?
        /// The first evaluation round at or after the fork round within `recoverWithin` points of the
        /// reference, and the rounds it took (that round + 1 − the fork round); nil: not recovered.
        public var recoveredAtRound: Int?
        public var roundsToRecover: Int?
        /// Mean of the per-round gap and λ̂ from the fork round on (finite values).
        public var meanGap: Double?
        public var meanLambda: Double?
    }

    public struct Branch: Sendable, Codable, Equatable {
        /// `parent`, or what the fork changed (e.g. `agg=geomed`; `unchanged` when nothing).
        public var name: String
        public var trace: String
        public var aggregator: String
        public var attack: String
        /// The fork's first round; nil for the parent.
        public var forkRound: Int?
        public var changes: [TraceHeader.ForkInfo.Change]
        public var chainHolds: Bool
        /// Who signed how much of the branch's file (traces/FORMAT.md §3.6).
        public var signatures: SignatureReport
        /// A fork's descent from the parent (``ForkDescent``); nil for the parent.
        public var descent: ForkDescent.Outcome?
        /// ``descent`` as one sentence (nil for the parent).
        public var descentSummary: String?
        /// Evaluations from the family's start on.
        public var accuracy: [Point]
        /// Per round from the family's start on (the branch's own rounds).
        public var gap: [Point]
        public var lambda: [Point]
        public var summary: Summary
    }

    public var parent: String
    /// The earliest fork round: the family is compared from it.
    public var start: Int
    /// The parent's series begin here, a quarter of the compared rounds before `start` (at least one
    /// round, not before its first), so that the plots show the run the forks leave.
    public var contextStart: Int
    /// The distinct fork rounds, increasing.
    public var forkRounds: [Int]
    /// The parent's best accuracy before `start`, and its round (nil without an evaluation there).
    public var reference: Double?
    public var referenceRound: Int?
    /// Accuracy points of the recovery criterion.
    public var recoverWithin: Double
    /// An absolute recovery target in accuracy points (%), replacing the relative one; nil: relative.
    public var recoverTo: Double?

    /// The accuracy (a fraction) a branch must reach to have recovered: `recoverTo`, else the
    /// parent's best before the fork less `recoverWithin` points; nil when neither exists.
    public var recoveryTarget: Double? { recoverTo.map { $0 / 100 } ?? reference.map { $0 - recoverWithin / 100 } }
    /// The parent first, then the forks in the order given.
    public var branches: [Branch]
}

public enum ForkFamily {
    /// Accepted values of the recovery criterion (accuracy points).
    public static let recoverWithinRange = 0.0...100.0
    public static let defaultRecoverWithin = 2.0

    /// Checks that every fork names `parent` (its `fork` key's digest is the parent's at its round),
    /// then reads every round of each. A trace that is not a fork, or a fork of another trace, is a
    /// usage error (exit 2) naming it. Each fork's descent is then checked (``ForkDescent``: the
    /// parent re-simulated on its data set, the Fashion-MNIST `dataDirectory` when given, with
    /// `threads` threads) and reported with its branch.
    public static func report(parent: TraceReader, forks: [TraceReader], recoverWithin: Double = defaultRecoverWithin,
                              recoverTo: Double? = nil, dataDirectory: String? = nil,
                              threads: Int = 1) throws(TraceError) -> ForkFamilyReport {
        guard !forks.isEmpty else { throw .usage("a fork family needs PARENT and at least one FORK") }
        guard recoverWithin.isFinite && recoverWithinRange.contains(recoverWithin) else {
            throw .usage("\(Setting.recoverWithin) must be in 0...100 accuracy points (got \(recoverWithin))")
        }
        if let recoverTo, !(recoverTo.isFinite && recoverWithinRange.contains(recoverTo)) {
            throw .usage("\(Setting.recoverTo) must be in 0...100 (test accuracy in %; got \(recoverTo))")
        }
        for f in forks { try checkLink(f, parent: parent) }
        let forkRounds = Array(Set(forks.map { $0.firstRound })).sorted()
        let start = forkRounds[0]
        let end = ([parent] + forks).map(\.rounds.upperBound).max()!
        let contextStart = max(parent.firstRound, start - max(1, (end - start) / 4))
        let parentAccuracy = evaluations(parent, from: parent.firstRound)
        let before = parentAccuracy.filter { $0.round < start }
        let best = before.max { ($0.value ?? -1, $1.round) < ($1.value ?? -1, $0.round) }
        var report = ForkFamilyReport(parent: parent.path, start: start, contextStart: contextStart,
                                      forkRounds: forkRounds, reference: best?.value,
                                      referenceRound: best?.round, recoverWithin: recoverWithin, recoverTo: recoverTo,
                                      branches: [])
        let target = report.recoveryTarget
        report.branches = [branch(parent, name: "parent", forkRound: nil, start: contextStart, forkRoundsStart: start,
                                  parentAccuracy: parentAccuracy,
                                  target: target)]
        for f in forks {
            var b = branch(f, name: f.header.fork!.label, forkRound: f.firstRound, start: start, forkRoundsStart: start,
                           parentAccuracy: parentAccuracy, target: target)
            let descent = try ForkDescent.check(fork: f, parent: parent, dataDirectory: dataDirectory, threads: threads)
            b.descent = descent
            b.descentSummary = descent.summary
            report.branches.append(b)
        }
        return report
    }

    /// `fork` must be a fork whose `parentDigest` is `parent`'s digest of the record it names.
    static func checkLink(_ fork: TraceReader, parent: TraceReader) throws(TraceError) {
        guard let info = fork.header.fork else {
            throw .usage("\(fork.path) is not a fork (its header has no fork key): give PARENT and forks of it"
                + " (recorded with \(Setting.forkParent))")
        }
        guard let digest = try TraceFork.parentDigest(parent, at: info.at), digest == info.parentDigest else {
            throw .usage("\(fork.path) is not a fork of \(parent.path): it names the parent digest "
                         + "\(info.parentDigest.prefix(16))… before round \(info.at), which "
                             + "\(parent.path) does not have")
        }
    }

    /// The evaluations of `reader` from round `from` on (rounds that do not read are left out).
    static func evaluations(_ reader: TraceReader, from: Int) -> [ForkFamilyReport.Point] {
        reader.rounds.filter { $0 >= from }.compactMap { t in
            guard let e = (try? reader.round(t))?.content.evaluation else { return nil }
            return .init(round: t, value: e.accuracy)
        }
    }

    /// A branch's series from round `start` on, and its summary from its fork round (the parent's:
    /// from `forkRoundsStart`, the earliest fork round).
    static func branch(_ reader: TraceReader, name: String, forkRound: Int?, start: Int, forkRoundsStart: Int,
                       parentAccuracy: [ForkFamilyReport.Point], target: Double?) -> ForkFamilyReport.Branch {
        var accuracy: [ForkFamilyReport.Point] = [], gap: [ForkFamilyReport.Point] = [],
            lambda: [ForkFamilyReport.Point] = []
        for t in reader.rounds where t >= start {
            guard let round = try? reader.round(t) else { continue }
            if let e = round.content.evaluation { accuracy.append(.init(round: t, value: e.accuracy)) }
            let metrics = round.aggregations.map(\.metrics)
            gap.append(.init(round: t, value: mean(metrics.map(\.gap))))
            lambda.append(.init(round: t, value: mean(metrics.compactMap(\.lambda))))
        }
        let from = forkRound ?? forkRoundsStart
        var s = ForkFamilyReport.Summary()
        if let last = parentAccuracy.last(where: { $0.round < from }) {
            s.accuracyAtFork = last.value
            s.accuracyAtForkRound = last.round
        }
        let after = accuracy.filter { $0.round >= from }
        if let b = after.max(by: { ($0.value ?? -1, $1.round) < ($1.value ?? -1, $0.round) }) {
            s.bestAfter = b.value
            s.bestAfterRound = b.round
        }
        s.finalAfter = after.last?.value
        s.finalAfterRound = after.last?.round
        if let target, let r = after.first(where: { ($0.value ?? -1) >= target }) {
            s.recoveredAtRound = r.round
            s.roundsToRecover = r.round + 1 - from
        }
        s.meanGap = mean(gap.filter { $0.round >= from }.compactMap(\.value).filter(\.isFinite))
        s.meanLambda = mean(lambda.filter { $0.round >= from }.compactMap(\.value).filter(\.isFinite))
        let h = reader.header, chain = reader.verifyChain()
        return .init(name: name, trace: reader.path, aggregator: h.aggregator, attack: h.attack, forkRound: forkRound,
                     changes: h.fork?.changes ?? [], chainHolds: chain.holds,
                     signatures: reader.verifySignatures(chain: chain), descent: nil, descentSummary: nil,
                     accuracy: accuracy, gap: gap, lambda: lambda, summary: s)
    }

    /// The mean (nil for none), summed in order.
    static func mean(_ xs: [Double]) -> Double? { xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count) }
}
