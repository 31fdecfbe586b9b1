import ArgumentParser
import DesgdAudit
import DesgdCLI
import DesgdNumerics
import DesgdReplay
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-audit`: the per-round deviation report of a recorded run.
@main
struct DesgdAuditCommand: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-audit",
        abstract: "The per-round deviation report of a recorded run: integrity, configuration, accuracy, gap,"
            + " λ̂, κ̂, Byzantine share.",
        discussion: """
        Checks the digest chain of every record, reports how the trace ended (finished, stopped early, killed) and the \
        rounds missing, the run in brief, the accuracy over rounds, and per round the recorded rule's metrics as \
        recorded, with a summary per rule and the worst rounds first. --compare adds the counterfactual columns of \
        other rules, replayed on the same messages (as desgd-replay does); on a sampled:K or decisions trace the \
        rounds recorded without vectors are rebuilt for them by re-simulating the run from its state checkpoints (from \
        round 0 without any), each checked byte for byte against its record (a difference exits 1 naming the round), \
        which needs the data set the run was recorded on (--data) and the same arithmetic; --no-rebuild leaves those \
        rounds' compare cells empty instead. The drift section (traces of format 1.1) sets the rules' accumulated \
        deviation beside accuracy, marks collapse onsets and flags persistent drift that per-round λ̂ does not show.

        Examples:
          desgd-audit traces/run.trace
          desgd-audit traces/run.trace --compare geomed,trmean --html report.html
          desgd-audit traces/run.trace --compare all --csv > audit.csv
          desgd-audit traces/run.trace --rounds 100:200 --compare geomed --json
          desgd-audit traces/run.trace --trust lab.key.pub
          desgd-audit traces/run.trace --adversary worst --compare geomed --html report.html
          desgd-audit traces/parent.trace traces/parent-fork1000-agg=geomed.trace \
        traces/parent-fork1000-lr=0.05.trace --html family.html

        Rounds (--rounds A:B, as for desgd-replay): the per-round sections, the summaries, the --compare replays (and \
        the rebuilding of rounds without vectors), the worst case and the drift section cover only rounds A..<B, in \
        every output; the integrity part (digest chain, signatures, how the trace ended) still covers the whole file, \
        and every output names the rounds covered (text "rounds", CSV "# rounds:", JSON "rounds"). Accuracy and drift \
        are the recorded values in those rounds; a collapse onset needs two evaluations inside the selection, so none \
        is counted at its start. A compared stateful rule starts from its initial state at A, as in desgd-replay \
        --rounds. Fork families do not take --rounds.

        Live federations (docs/federation.md): the report names the engine (Flower's version, the clients' registered \
        keys) and checks every recorded message against its client's key ("clients  N client messages verified …"; a \
        message that fails exits 1).

        Signatures (desgd-record --sign): the integrity part says "signed by FINGERPRINT, whole file", "signed by \
        FINGERPRINT up to round t only" (a killed recorder, a cut end or records appended after signing), "SIGNATURE \
        INVALID: ..." (naming the record whose signature fails or where the digest chain breaks) or "unsigned". \
        --trust KEY.pub exits 1, with one line saying why, unless that key alone signed the whole file.

        The worst case (--adversary worst [--budget N]): on every aggregation, the search of desgd-replay --adversary \
        worst looks for the f Byzantine inputs that push the recorded rule (replayed on the recorded messages) and \
        each --compare rule farthest from the honest mean. The report adds the worst λ̂ beside the recorded one per \
        rule (text summary, three CSV columns per rule, JSON worstCase) and an HTML plot of the recorded λ̂, the \
        worst λ̂ found and the proven bound over rounds; any round whose worst case exceeds the bound is \
        printed loudly.

        Fork families: with PARENT FORK… (traces written by desgd-record --fork PARENT), the report puts the \
        branches side by side from the earliest fork round: per branch the accuracy at the fork, the best and final \
        accuracy after it, the rounds it took to come within --recover-within points of the parent's best before the \
        fork (its pre-collapse best when the fork was made at a collapse; --recover-to sets an absolute accuracy \
        instead, for a parent that never learned), and the recorded rule's mean gap and λ̂ (per round, the mean over \
        the round's aggregations), in text, --csv (one line per branch and round), --json and --html (one plot per \
        metric, a line per branch, the fork rounds marked). Every FORK must name PARENT by its digest, or the audit \
        stops with exit code 2. Each fork's descent is proven, not taken from its header: its configuration must be \
        the parent's with exactly the changes its header declares (every other field the parent's), and its first \
        checkpoint must be, byte for byte, the parent's state at the fork round, re-simulated from the parent's last \
        checkpoint before it, with those changes applied; any difference exits 1 naming it. That needs the parent's \
        data set (--data) and arithmetic: without them every output says "descent not verified (why)", and \
        --fail-on-flag makes it exit 1. --trust KEY.pub requires every branch, parent and forks, to be signed whole \
        by that key.

        Exit codes: 0 done, 1 the digest chain is broken or --trust is not satisfied (the report is still written), or \
        a live federation's recorded message fails its client's signature, or a round rebuilt for --compare differs \
        from its record, or a fork's descent fails (or, with --fail-on-flag, is not verified), 2 bad usage or bad \
        input (a value outside its range, an unknown rule, an unreadable trace or key).
        """,
        version: "desgd \(DesgdVersion.current), trace format \(TraceFormat.major).\(TraceFormat.minor)")

    @Argument(help: ArgumentHelp("The trace file; or PARENT FORK…: a trace and forks of it, side by side.",
        valueName: "trace"))
    var traces: [String]
    var trace: String { traces[0] }
    @Option(help: ArgumentHelp(RoundSelection.help
                               + " The per-round sections, summaries, --compare, the worst case and drift cover only"
                                   + " these; the integrity part covers the whole file."))
    var rounds: RoundSelection?
    @Option(help: ArgumentHelp("Rules to compare with the recorded one: a comma-separated list or all. Each"
        + " spec: \(SpecLimits.summary)."))
    var compare: String?
    @Option(name: .customLong("pre"),
        help: "Pre-aggregators applied before each compared rule (\(SpecLimits.summary)).") var pre = ""
    @Option(help: ArgumentHelp("With --compare, to rebuild vectors the trace lacks, or for a fork family, to"
        + " re-simulate the parent: the Fashion-MNIST directory the run was recorded on (default: the recorded one,"
        + " $DESGD_DATA, then /usr/share/datasets/fashion-mnist)."))
    var data: String?
    @Flag(help: ArgumentHelp("With --compare: leave the rounds recorded without vectors out of the comparison instead"
        + " of rebuilding them by re-simulation."))
    var noRebuild = false
    @Option(help: ArgumentHelp("recorded (default); worst: also search, on every aggregation, the f Byzantine inputs"
        + " that push the recorded rule (and each --compare rule) farthest from the honest mean, as desgd-replay"
        + " --adversary worst does: worst λ̂ beside the recorded one, a summary and an HTML plot.",
                               valueName: "recorded|worst"))
    var adversary: AdversaryChoice = .recorded
    @Option(help: ArgumentHelp("With --adversary worst: rule evaluations per aggregation, "
        + "\(rangeText(WorstCaseSearch.budgetRange)) (default \(WorstCaseSearch.defaultBudget))."))
    var budget: Int?
    @Flag(help: "One CSV line per aggregation.") var csv = false
    @Flag(help: "The whole report as JSON.") var json = false
    @Option(help: "Also write a self-contained HTML page with SVG plots to this file.") var html: String?
    @Option(help: ArgumentHelp("Threads for the replays, \(rangeText(SimulationConfig.threadsRange)) (the report does"
        + " not depend on it; default: every core).")) var threads = SimulationConfig.defaultThreads
    @OptionGroup var memory: MemoryLimitOption
    @Option(help: ArgumentHelp("Exit 1 unless the trace is signed by this public key (a .pub file of desgd-key generate"
        + " or ssh-keygen) over the whole file.",
                               valueName: "key.pub"))
    var trust: String?
    @Option(help: ArgumentHelp("Drift: a collapse onset is a drop of more than this many accuracy points"
        + " between evaluations (0...100)."))
    var collapseDrop = AuditDrift.Criteria().collapseDrop
    @Option(help: ArgumentHelp("Drift: windowed persistence at or above this (0...1) is persistent; 1/√W is"
        + " typical of independent deviations."))
    var persistenceThreshold = AuditDrift.Criteria().persistenceThreshold
    @Option(help: ArgumentHelp("Fork families: a branch has recovered at its first evaluation within this many accuracy"
        + " points (0...100) of the parent's best before the fork (default "
        + "\(TextFormat.number(ForkFamily.defaultRecoverWithin)))."))
    var recoverWithin: Double?
    @Option(help: ArgumentHelp("Fork families: instead, a branch has recovered at its first evaluation at or above this"
        + " test accuracy (%, 0...100), e.g. when the parent never learned."))
    var recoverTo: Double?
    @Flag(help: ArgumentHelp("Fork families: also exit 1 when a fork's descent could not be verified (e.g. the"
        + " parent's data set is missing)."))
    var failOnFlag = false

    /// Every check the command line alone decides, before any file is opened.
    func validate() throws {
        let program = "desgd-audit"
        guard !traces.isEmpty else { throw CommandFailure.exit(program, "give the trace to audit (or PARENT FORK…)") }
        if csv && json { throw CommandFailure.exit(program, "--csv and --json exclude each other: choose one") }
        try CommandFailure.check(program, "--threads", threads, in: SimulationConfig.threadsRange)
        guard collapseDrop.isFinite && (0...100).contains(collapseDrop) else {
            throw CommandFailure.exit(program,
                "--collapse-drop must be in 0...100 accuracy points (got \(collapseDrop))")
        }
        guard persistenceThreshold.isFinite && (0...1).contains(persistenceThreshold) else {
            throw CommandFailure.exit(program, "--persistence-threshold must be in 0...1 (got \(persistenceThreshold))")
        }
        try adversary.check(budget: budget, program: program)
        if traces.count > 1 {
            if rounds != nil {
                throw CommandFailure.exit(
                    program,
                    "--rounds goes with the audit of one trace, not with a fork family (PARENT FORK…):"
                    + " audit one branch with --rounds")
            }
            if adversary == .worst {
                throw CommandFailure.exit(program, "--adversary worst audits one trace: give one TRACE")
            }
            return
        }
        if recoverWithin != nil || recoverTo != nil || failOnFlag {
            let option = recoverTo != nil ? "recover-to" : recoverWithin != nil ? "recover-within" : "fail-on-flag"
            throw CommandFailure.exit(program, "--\(option) goes with a fork family: give PARENT FORK…")
        }
        let replays = !(compare.map { AggregatorCatalogue.splitList($0) } ?? []).isEmpty || adversary == .worst
        if !replays && (data != nil || noRebuild) {
            throw CommandFailure.exit(
                program, "--\(data != nil ? "data" : "no-rebuild") goes with --compare or --adversary worst")
        }
    }

    func run() throws {
        let program = "desgd-audit"
        try memory.apply(program: program)
        let trusted: TracePublicKey?
        do { trusted = try trust.map { path throws(TraceError) in try TracePublicKey.read(path: path) } } catch {
            throw CommandFailure.exit(program, "--trust: \(error.commandLineMessage)")
        }
        if traces.count > 1 {
            try runFamily(trusted: trusted, program: program)
            return
        }
        let reader = try TraceOpening.open(trace, program: program)
        let specs = compare.map { AggregatorCatalogue.splitList($0) } ?? []
        let replays = !specs.isEmpty || adversary == .worst
        let selected = try RoundSelection.resolve(rounds, in: reader, trace: trace, program: program)
        if !specs.isEmpty {
            // The rules are checked before a data set is loaded to rebuild vectors for them.
            do {
                _ = try Replayer(reader: reader, rules: specs, pre: pre, threads: threads,
                    skipUnrunnable: true) } catch {
                throw CommandFailure.exit(program, error.explanation.commandLine(renaming: [.aggregator: "--compare"]))
            }
        }
        let rebuilder = !replays ? nil
            : try VectorRebuilding.rebuilder(reader, rounds: selected, data: data, noRebuild: noRebuild,
                threads: threads, program: program)
        if let note = VectorRebuilding.note(rebuilder, rounds: selected, program: program) {
            FileHandle.standardError.write(Data(note.utf8))
        }
        let bar = ProgressBar(total: selected.count + (rebuilder?.simulatedRounds(for: selected) ?? 0), label: "audit")
        let report: AuditReport
        do { report = try Audit.report(reader, compare: specs, pre: pre, threads: threads,
                                      driftCriteria: .init(collapseDrop: collapseDrop,
                                          persistenceThreshold: persistenceThreshold),
                                      adversary: adversary.search(budget: budget), rebuilder: rebuilder,
                                      rounds: selected) { _, done in bar.update(done) } } catch {
            guard error.kind != .mismatch else { throw VectorRebuilding.failure(error, program: program) }
            // Here the rules come from --compare.
            let message = error.explanation.commandLine(renaming: [.aggregator: "--compare"])
            throw CommandFailure.exit(program, message + MemoryLimitOption.hint(error.memoryShortfall))
        }
        if bar.enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        try write(report, program: program, page: AuditHTML.render, csv: AuditText.csv, text: AuditText.render)
        if let trusted, let why = report.integrity.signatures.map({ $0.trustFailure(trusted) })
            ?? "the signatures were not verified" {
            FileHandle.standardError.write(Data("\(program): not trusted: \(why.commandLine)\n".utf8))
            throw ExitCode(1)
        }
        if let c = report.integrity.clientMessages, !c.passed {
            FileHandle.standardError.write(Data("\(program): client messages: \(c.summary)\n".utf8))
            throw ExitCode(1)
        }
        if !report.integrity.chainHolds { throw ExitCode(1) }
    }

    /// Writes `--html` (the page), then the report on standard output as `--json`, `--csv` or text:
    /// the one output path of the single-trace and the fork-family reports.
    func write<Report: Encodable>(_ report: Report, program: String, page: (Report) -> String,
                                  csv renderCSV: (Report) -> String,
                                  text: (Report) -> String) throws {
        if let html {
            guard FileManager.default.createFile(atPath: html, contents: Data(page(report).utf8)) else {
                throw CommandFailure.exit(program, "cannot write \(html): check the directory exists and is writable")
            }
        }
        let output: String
        if json {
            let e = RecordBody.encoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            output = DisplayText.jsonEscaped(String(decoding: try e.encode(report), as: UTF8.self)) + "\n"
        } else if csv {
            output = DisplayText.escapedLines(renderCSV(report))
        } else {
            output = DisplayText.escapedLines(text(report) + (html.map { "\nHTML report written to \($0)\n" } ?? ""))
        }
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
