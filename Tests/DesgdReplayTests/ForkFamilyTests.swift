@testable import DesgdAudit
import DesgdNumerics
@testable import DesgdResimulation
import DesgdSimulation
import DesgdTrace
import Foundation
import Testing

/// `desgd-audit PARENT FORK…` (ForkFamily): branches side by side from the fork round, the link to
/// the parent checked, and the page drawn.
@Suite struct ForkFamilyTests {
    /// A 12-round mean/IPM parent (checkpoints every 4 rounds, evaluations every 4) and two forks at
    /// round 6: geomed, and mean with half the learning rate. Paths: parent, forks.
    static let family: (String, [String]) = {
        let config = smallRun { $0.aggregator = "mean" }
        let parent = NSTemporaryDirectory() + "desgd-family-\(UUID().uuidString).trace"
        let recorder = try! TraceRecorder(path: parent, keyframeInterval: 5, checkpointInterval: 4)
        _ = try! Simulation(config: config, dataset: replayData).run(observer: recorder)
        var forks: [String] = []
        for edit in [{ (c: inout SimulationConfig) in c.aggregator = "geomed" },
            { (c: inout SimulationConfig) in c.learningRate /= 2 }] {
            var c = config
            edit(&c)
            let fork = try! TraceFork(parentPath: parent, at: 6, config: c, dataDirectory: nil)
            let path = NSTemporaryDirectory() + "desgd-family-fork-\(UUID().uuidString).trace"
            _ = try! fork.run { info, drift throws(TraceError) in
                try TraceRecorder(path: path, keyframeInterval: 5, checkpointInterval: 4, fork: info, forkDrift: drift)
            }
            forks.append(path)
        }
        return (parent, forks)
    }()

    static func report() throws -> ForkFamilyReport {
        try ForkFamily.report(parent: TraceReader(path: family.0), forks: family.1.map { try TraceReader(path: $0) })
    }

    /// Three branches named by what they changed, each from round 6 on; the recovery reference is
    /// the parent's best before round 6; a fork's first round values are its own (geomed's gap
    /// differs from the parent's at round 6, the halved learning rate's does not: same messages).
    @Test func branchesSideBySide() throws {
        let r = try Self.report()
        #expect(r.start == 6 && r.contextStart == 5 && r.forkRounds == [6])
        #expect(r.branches.map(\.name) == ["parent", "agg=geomed", "lr=\(smallRun().learningRate / 2)"])
        for b in r.branches {
            #expect(b.gap.map(\.round) == Array((b.forkRound == nil ? 5 : 6)..<12), "\(b.name)")
            #expect(b.accuracy.map(\.round) == [7, 11], "\(b.name)")
            #expect(b.chainHolds)
            #expect(b.summary.accuracyAtForkRound == 3)
        }
        let parent = try TraceReader(path: Self.family.0)
        let before = try [3].map { try parent.round($0).content.evaluation!.accuracy }
        #expect(r.reference == before.max() && r.referenceRound == 3)
        #expect(r.branches[1].gap[0].value != r.branches[0].gap[1].value)
        #expect(r.branches[2].gap[0].value == r.branches[0].gap[1].value)
        let recovered = r.branches.map { $0.summary.recoveredAtRound }
        for (b, round) in zip(r.branches, recovered) {
            if let round { #expect(b.accuracy.first { $0.round == round }!.value! >= r.reference! - 0.02) }
        }
        let csv = ForkFamilyText.csv(r)
        #expect(csv.split(separator: "\n").count == 1 + 7 + 2 * 6)
        let text = ForkFamilyText.render(r)
        #expect(text.contains("agg=geomed") && text.contains("rounds to recover"))
        // A fourth branch does not take the palette's red, which is close to the fork line's.
        let four = try ForkFamily.report(parent: TraceReader(path: Self.family.0),
            forks: (Self.family.1 + [Self.family.1[0]]).map { try TraceReader(path: $0) })
        let page = ForkFamilyHTML.render(four)
        #expect(four.branches.count == 4 && !page.contains(ChartPalette.colour(3))
            && page.contains(ChartPalette.colour(4)))
    }

    /// `recoverTo`: an absolute target replaces the parent's best (0 %: every branch recovers at its
    /// first evaluation from the fork on; 100 %: none does), and the page and text say which.
    @Test func anAbsoluteRecoveryTarget() throws {
        let parent = try TraceReader(path: Self.family.0), forks = try Self.family.1.map { try TraceReader(path: $0) }
        let none = try ForkFamily.report(parent: parent, forks: forks, recoverTo: 100)
        #expect(none.recoveryTarget == 1 && none.branches.allSatisfy { $0.summary.recoveredAtRound == nil })
        let all = try ForkFamily.report(parent: parent, forks: forks, recoverTo: 0)
        #expect(all.branches.allSatisfy { $0.summary.recoveredAtRound == 7 && $0.summary.roundsToRecover == 2 })
        #expect(ForkFamilyText.render(all).contains("at or above 0%\n"))
        #expect(ForkFamilyHTML.render(all).contains("at or above 0% test accuracy"))
        let relative = try Self.report()
        #expect(relative.recoverTo == nil && relative.recoveryTarget == relative.reference.map { $0 - 0.02 })
        #expect(throws: TraceError.self) { try ForkFamily.report(parent: parent, forks: forks, recoverTo: .nan) }
    }

    /// A trace that is not a fork, or a fork of another trace, is refused naming it.
    @Test func aForkOfAnotherTraceIsRefused() throws {
        let parent = try TraceReader(path: Self.family.0), fork = try TraceReader(path: Self.family.1[0])
        #expect(throws: TraceError.self) { try ForkFamily.report(parent: parent, forks: [parent]) }
        do {
            _ = try ForkFamily.report(parent: fork, forks: [try TraceReader(path: Self.family.1[1])])
            Issue.record("a fork of another trace was accepted")
        } catch {
            #expect(error.kind == .usage && error.message.contains("is not a fork of"))
        }
        #expect(throws: TraceError.self) { try ForkFamily.report(parent: parent, forks: [fork], recoverWithin: 101) }
    }

    /// The page: three plots of three lines each, drawn, the fork round marked, nothing overflowing
    /// at 1 100 and 700 pixels (headless Chromium, as the audit page's test).
    @Test(.enabled(if: AuditHTMLBrowserTests.browser != nil || AuditHTMLBrowserTests.required,
        "needs Debian's chromium (CI=true makes its absence a failure)"))
    func familyPageIsDrawn() throws {
        try #require(AuditHTMLBrowserTests.browser != nil, "chromium is not installed: apt-get install -y chromium")
        let page = ForkFamilyHTML.render(try Self.report())
        #expect(page.contains("<title>fork at round 6</title>") && !page.contains("<script"))
        for width in [1100, 700] {
            let lines = try AuditHTMLBrowserTests.measure(page, width: width)
            let plots = lines.filter { $0.hasPrefix("svg ") }
            #expect(plots.count == 3, "width \(width): \(lines)")
            for id in ["plot-family-accuracy", "plot-family-gap", "plot-family-lambda"] {
                let line = try #require(plots.first { $0.hasPrefix("svg \(id) ") }, "\(id) at width \(width)")
                #expect(line.contains("paths=3 drawn=3"), "\(line)")
            }
            let scroll = lines.first { $0.hasPrefix("scrollWidth=") }.flatMap { Int($0.dropFirst(12)) }
            let client = lines.first { $0.hasPrefix("clientWidth=") }.flatMap { Int($0.dropFirst(12)) }
            #expect(scroll != nil && client != nil && scroll! <= client!, "width \(width): \(lines)")
        }
    }
}
