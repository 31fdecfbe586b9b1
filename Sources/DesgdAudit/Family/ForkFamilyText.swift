import DesgdReplay
import Foundation

/// The terminal and CSV renderings of a ``ForkFamilyReport``.
public enum ForkFamilyText {
    static func percent(_ x: Double?) -> String { x.map { String(format: "%.2f%%", 100 * $0) } ?? "—" }

    public static func render(_ r: ForkFamilyReport) -> String {
        let r = r.forDisplay
        let wrap = { (text: String) in TextFormat.wrap(text, indent: "  ") }
        // Text from the files inside a wrapped line: never broken, never at a line's start.
        let a = TextFormat.atom
        var out = wrap("fork family of \(a(r.parent)): \(r.branches.count - 1) fork\(r.branches.count == 2 ? "" : "s")"
            + " at round\(r.forkRounds.count == 1 ? "" : "s") \(r.forkRounds.map(String.init).joined(separator: ", ")),"
            + " compared from round \(r.start)") + "\n"
        if let to = r.recoverTo {
            out += "recovery: the first evaluation from the fork round on at or above \(TextFormat.number(to))%\n"
        } else if let reference = r.reference, let round = r.referenceRound {
            out += wrap("recovery: the first evaluation from the fork round on within "
                + "\(TextFormat.number(r.recoverWithin)) points of the parent's best before round \(r.start), "
                + "\(percent(reference)) at round \(round)") + "\n"
        } else {
            out += "recovery: not measured (the parent has no evaluation before round \(r.start))\n"
        }
        for b in r.branches where !b.chainHolds {
            out += wrap("WARNING: the digest chain of \(a(b.trace)) is broken: desgd-audit it alone") + "\n"
        }
        for b in r.branches {
            guard let descent = b.descent, let summary = b.descentSummary, !descent.isVerified else { continue }
            out += wrap("\(descent.differs ? "FAILED" : "WARNING"): \(a(b.trace)): \(a(summary))") + "\n"
        }
        out += "\n"
        let rows = r.branches.map { b -> [String] in
            let s = b.summary
            return [b.name, b.forkRound.map(String.init) ?? "—",
                    s.accuracyAtFork.map { "\(percent($0)) (\(s.accuracyAtForkRound!))" } ?? "—",
                    s.bestAfter.map { "\(percent($0)) (\(s.bestAfterRound!))" } ?? "—",
                    s.finalAfter.map { "\(percent($0)) (\(s.finalAfterRound!))" } ?? "—",
                    s.roundsToRecover.map { "\($0) (round \(s.recoveredAtRound!))" } ?? "no",
                    TextFormat.number(s.meanGap), TextFormat.number(s.meanLambda)]
        }
        out += TextFormat.panels(["branch", "fork at", "acc. at fork (round)", "best after (round)", "final (round)",
                                 "rounds to recover",
                                 "mean gap", "mean λ̂"], rows, units: [1, 2, 2, 1, 2])
        out += "\n\nbranches:\n"
        for b in r.branches {
            var line = "  \(a(b.name)): \(a(b.trace)), rule \(a(b.aggregator)), attack \(a(b.attack))"
            if !b.changes.isEmpty {
                line += "; " + b.changes.map {
                    "\(a($0.option)) \(a($0.parent)) → \(a($0.fork))" }.joined(separator: ", ")
            }
            out += TextFormat.wrap(line, indent: "    ") + "\n"
            // A verified descent's sentence is desgd's own; the others may quote the files.
            if let summary = b.descentSummary {
                let sentence = b.descent?.isVerified == true ? summary : a(summary)
                out += TextFormat.wrap("    " + sentence, indent: "    ") + "\n"
            }
        }
        out += wrap("(gap and λ̂ per round: the mean over the round's aggregations; mean gap and λ̂: over the"
            + " branch's rounds from its fork round on; the parent's series in the CSV, JSON and HTML outputs start at"
            + " round \(r.contextStart))") + "\n"
        return out
    }

    /// One line per branch and round from the family's start:
    /// `branch,trace,fork_round,round,accuracy,gap,lambda,descent` (accuracy empty outside evaluation
    /// rounds, λ̂ empty when undefined; descent: the fork's ``ForkDescent/Outcome/summary``, empty for
    /// the parent).
    public static func csv(_ r: ForkFamilyReport) -> String {
        var out = "branch,trace,fork_round,round,accuracy,gap,lambda,descent\n"
        for b in r.branches {
            let accuracy = Dictionary(b.accuracy.map { ($0.round, $0.value) }, uniquingKeysWith: { a, _ in a })
            for (g, l) in zip(b.gap, b.lambda) {
                out += [TextFormat.csvField(b.name), TextFormat.csvField(b.trace), b.forkRound.map(String.init) ?? "",
                        String(g.round),
                        TextFormat.csv(accuracy[g.round] ?? nil), TextFormat.csv(g.value), TextFormat.csv(l.value),
                        TextFormat.csvField(b.descentSummary ?? "")].joined(separator: ",") + "\n"
            }
        }
        return out
    }
}
