import ArgumentParser
import DesgdCLI
import DesgdExperiments
import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-grid`: run a grid of recorded trainings (the paper's Tables I and II, or a spec of your
/// own) locally or on Slurm, resume it, and report it beside the published numbers.
@main
struct DesgdGrid: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-grid",
        abstract: "Run grids of recorded trainings (methods × attacks × seeds) and report them beside"
            + " the paper's Tables I and II.",
        discussion: """
        GRID is a built-in grid (\(GridSpec.builtinNames.joined(separator: ", "))) or a JSON spec file (desgd-grid \
        spec paper prints one to start from). Each cell is one desgd-record run whose trace goes to DIR (default \
        traces/grids/NAME) as METHOD__ATTACK__seedS.trace.

        Examples:
          desgd-grid run reduced
          desgd-grid run paper --keyframe-every 1000
          desgd-grid status reduced
          desgd-grid report reduced --markdown r.md --csv r.csv
          desgd-grid slurm paper --dir /shared/desgd --time 2:00:00 --submit
          desgd-grid summarize horizon
          desgd-grid spec paper > my-grid.json

        The reduced reproduction takes about 2 hours on 2 cores, the paper's Tables I and II in full about 5 days.

        Exit codes: 0 done, 1 summarize refused to overwrite a summary of another trace or could not summarize a \
        finished cell, 2 bad usage or bad input (a value outside its range, a bad spec), 130 stopped by Ctrl-C \
        (finished cells stay, running ones keep a clean incomplete trace that the next run resumes from its last state \
        checkpoint, or records again without one).
        """,
        version: "desgd \(DesgdVersion.current)",
        subcommands: [Run.self, Status.self, Report.self, Summarize.self, Slurm.self, Spec.self, Paper.self])
}

/// What every subcommand that works on a grid takes.
struct GridLocation: ParsableArguments {
    @Argument(help: "A built-in grid (\(GridSpec.builtinNames.joined(separator: ", "))) or a JSON spec file.")
    var grid: String
    @Option(help: "The grid's directory (default: traces/grids/NAME).") var dir: String?

    func open(_ program: String) throws -> (GridPlan, GridDirectory) {
        do {
            let spec = try GridSpec.load(grid)
            let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
            return (plan, GridDirectory(dir ?? GridDirectory.defaultPath(for: spec)))
        } catch { throw CommandFailure.exit(program, error.commandLineMessage) }
    }
}

extension DesgdGrid {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record every unfinished cell of a grid (several at once), resuming"
                + " where an earlier run stopped.",
            discussion: """
            A cell is finished when its trace is complete, has every planned round and holds exactly the cell's \
            configuration; finished cells are never run again. An incomplete trace (Ctrl-C, a kill, a time limit) is \
            resumed from its last state checkpoint as desgd-record --resume does: the rounds recorded after it are \
            re-simulated and checked byte for byte, the rest recorded, into STEM.trace.resuming, which replaces the \
            trace once complete, or once cut short (stopped, or killed and found by the next run) after a later state \
            checkpoint: it then holds the trace byte for byte and more, so each run gets a cell further however long \
            it is. A trace without a checkpoint, or one that cannot be resumed (the line says why), is kept as \
            STEM.incomplete-K.trace and its cell recorded again from round 0. A trace of another configuration at a \
            cell's path stops the run before anything starts.

            Ctrl-C (or SIGTERM) ends every running cell after its current round: a recording with its trace closed \
            cleanly, a resumption with its trace left as it was, or replaced by what it wrote up to its last state \
            checkpoint when that is later than where it started.
            """)

        @OptionGroup var location: GridLocation
        @Option(help: ArgumentHelp("Cells recorded at once, \(rangeText(SimulationConfig.threadsRange)) (default: one"
            + " per core, divided by --threads).")) var jobs: Int?
        @Option(help: ArgumentHelp("Threads per cell, \(rangeText(SimulationConfig.threadsRange)) (results do not"
            + " depend on it).")) var threads = 1
        @Option(name: .customLong("cell"), parsing: .upToNextOption,
            help: "Only these cells (by index, as desgd-grid status lists them; Slurm passes its array index).")
        var cells: [Int] = []
        @Option(help: ArgumentHelp("A keyframe every this many rounds, "
            + "\(rangeText(TraceRecorder.keyframeIntervalRange)). Default: desgd-record's for the cell (100; decisions"
            + " with checkpoints: the first and last round only)."))
        var keyframeEvery: Int?
        @Option(help: ArgumentHelp("A state checkpoint every this many rounds, "
            + "\(rangeText(TraceRecorder.checkpointIntervalRange)); 0: none (an interrupted cell resumes from them,"
            + " desgd-replay --reexecute starts from them). Default: desgd-record's for the cell's options, "
            + "\(SimulationOptions.Preset.quick.checkpointInterval) (quick), "
            + "\(SimulationOptions.Preset.paper.checkpointInterval) (paper)."))
        var checkpointEvery: Int?
        @Flag(help: "Print the summary as JSON (standard output; cell events stay on standard error).") var json = false

        func run() throws {
            let program = "desgd-grid run"
            let jobs = self.jobs ?? max(1, SimulationConfig.defaultThreads / max(1, threads))
            do {
                try GridRunner.checkOptions(jobs: jobs, threadsPerRun: threads, keyframeInterval: keyframeEvery,
                    checkpointInterval: checkpointEvery ?? GridDefaults.checkpointInterval) } catch {
                throw CommandFailure.exit(program, error.commandLineMessage)
            }
            let (plan, directory) = try location.open(program)
            let runner = GridRunner(plan: plan, directory: directory, jobs: jobs, threadsPerRun: threads,
                                    keyframeInterval: keyframeEvery,
                                    checkpointInterval: checkpointEvery ?? GridDefaults.checkpointInterval)
            InterruptFlag.install()
            let display = GridDisplay(total: cells.isEmpty ? plan.cells.count : cells.count)
            let summary: GridRunner.Summary
            do {
                summary = try runner.run(only: cells.isEmpty ? nil : cells, shouldStop: { InterruptFlag.isRaised }) {
                    display.show($0)
                }
            } catch { throw CommandFailure.exit(program, error.commandLineMessage) }
            display.finish()
            if json {
                print(String(decoding: summary.json(grid: plan.spec.name, directory: directory.path), as: UTF8.self))
            } else {
                print(DisplayText.escapedLines(summary.line(grid: plan.spec.name, directory: directory.path)))
            }
            for f in summary.failures { FileHandle.standardError.write(Data("desgd-grid run: \(f)\n".utf8)) }
            if summary.interrupted || InterruptFlag.isRaised { throw ExitCode(130) }
            if !summary.failures.isEmpty { throw ExitCode(2) }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a grid's cells with their state, best accuracy"
            + " and the desgd-record command of each.")
        @OptionGroup var location: GridLocation
        @Flag(help: "Also print each cell's desgd-record command line.") var commands = false
        @Flag(help: "As JSON.") var json = false

        func run() throws {
            let (plan, directory) = try location.open("desgd-grid status")
            let rows = directory.statusRows(of: plan)
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(DisplayText.jsonEscaped(String(decoding: try e.encode(rows), as: UTF8.self)))
            } else {
                // A cell's reason may quote a trace's message: shown escaped (DisplayText).
                print(DisplayText.escapedLines(directory.statusText(of: plan, rows: rows, commands: commands)),
                    terminator: "")
            }
        }
    }

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a grid's measured numbers beside the paper's Tables I and II (markdown and CSV).",
            discussion: """
            Per method and attack: the mean over finished seeds of the best test accuracy, its sample standard \
            deviation, the paper's number and the difference; Table II's accuracy drops against the grid's reference \
            run; the DeSGD effect (X+ minus X). Unfinished cells show as pending.

            Every run follows: best accuracy and its round, final accuracy; read from cell summaries \
            (--summaries), also \
            the collapses the audit dated, whether persistent drift warned of them, and the runs whose best accuracy \
            hides a collapse.

            --summaries reads the committed cell summaries (desgd-grid summarize) instead of the traces: the way \
            a grid \
            whose traces are gone is reported. Summaries of the grid's method and attack pairs with other seeds (files \
            METHOD__ATTACK__seedS.json) join their cells.

            --cell reports only the cells named (by index, as desgd-grid status lists them), for instance a block \
            added to a grid whose other cells were reported before.

            Prints the markdown unless --markdown, --csv or --html name files ('-' is standard output).

            Example (the horizon report of docs/reproduction.md):
              desgd-grid report horizon --summaries traces/reproduction/horizon \\
                --markdown traces/reproduction/horizon.md --csv traces/reproduction/horizon.csv --html horizon.html
            """)
        @OptionGroup var location: GridLocation
        @Option(name: .customLong("cell"), parsing: .upToNextOption,
            help: "Only these cells (by index, as desgd-grid status lists them).")
        var cells: [Int] = []
        @Option(help: "Read the cells' summaries from this directory (desgd-grid summarize) instead of their traces.")
        var summaries: String?
        @Option(help: "Write the markdown report here.") var markdown: String?
        @Option(help: "Write the CSV (one line per cell, then one per run) here.") var csv: String?
        @Option(help: ArgumentHelp("Write the figure here: a page with the runs and accuracy over rounds"
            + " per method.")) var html: String?
        @Flag(help: "Print the report as JSON.") var json = false

        func validate() throws {
            if summaries != nil && location.dir != nil {
                throw ValidationError("--summaries and --dir both say where the results are; give one")
            }
        }

        func run() throws {
            let program = "desgd-grid report"
            let (whole, directory) = try location.open(program)
            let report: ReproductionReport
            do {
                let plan = cells.isEmpty ? whole : try whole.restricted(to: cells)
                let results = try summaries.map { dir throws(GridError) in
                    try SummaryResults.read(plan: plan, directory: dir, parse: SimulationOptions.parseWords) }
                    ?? directory.results(of: plan)
                report = ReproductionReport(plan: plan, results: results)
            } catch {
                throw CommandFailure.exit(program, error.commandLineMessage)
            }
            if json { print(String(decoding: report.json, as: UTF8.self)) }
            if markdown == nil && csv == nil && html == nil {
                if !json { print(report.markdown, terminator: "") }; return
            }
            for (path, text) in [(markdown, report.markdown), (csv, report.csv),
                (html, html.map { _ in report.figure.render() })] {
                guard let path, let text else { continue }
                if path == "-" { print(text, terminator: ""); continue }
                do { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } catch {
                    throw CommandFailure.exit(program, "cannot write \(path): \(error.localizedDescription)")
                }
            }
        }
    }

    struct Summarize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a small JSON summary of every finished cell, to commit in place of its trace.",
            discussion: """
            For every finished cell (a complete trace with every planned round and exactly the cell's configuration), \
            writes OUTDIR/METHOD__ATTACK__seedS.json: the cell (index, labels, seed, desgd-record options, \
            configuration), the trace's provenance (program, format, numerics, backend kernel, data set digest, \
            recording mode, checkpoint interval), its last chain digest and size, the accuracy series with best and \
            final accuracy, and what desgd-audit TRACE finds (collapse onsets, the number of persistence flags, the \
            recorded rule's final drift). Rounds are 0-based, as desgd-audit counts them. The JSON has sorted keys \
            and no timestamps: summarizing the same trace again gives the same bytes.

            Cells not finished are skipped (standard error says which). A summary already there for another trace \
            (its digest differs) is not overwritten: the line names the cell and both digests and the exit code is \
            1; --force replaces it.

            Examples:
              desgd-grid summarize horizon
              desgd-grid summarize horizon --dir /shared/horizon --out traces/reproduction/horizon --cell 3 7
            """)
        @OptionGroup var location: GridLocation
        @Option(help: "Where the summaries go (default: traces/reproduction/NAME).") var out: String?
        @Option(name: .customLong("cell"), parsing: .upToNextOption,
                help: "Only these cells (by index, as desgd-grid status lists them).")
        var cells: [Int] = []
        @Flag(help: "Replace a summary whose trace digest differs from the trace's.") var force = false

        func run() throws {
            let program = "desgd-grid summarize"
            let (plan, directory) = try location.open(program)
            let out = self.out ?? CellSummaries.defaultPath(for: plan.spec)
            let outcome: CellSummaries.Outcome
            do {
                outcome = try CellSummaries.write(plan: plan, directory: directory, out: out,
                                                  only: cells.isEmpty ? nil : cells, force: force)
            } catch { throw CommandFailure.exit(program, error.commandLineMessage) }
            // Reasons may quote a trace's message: shown escaped (DisplayText).
            let lines: [String] = outcome.skipped.map { "skipped #\($0.cell.index) \($0.cell.stem): \($0.reason)" }
                + outcome.refused.map { $0.line + " (--force replaces it)" } + outcome.failures
            for l in lines {
                FileHandle.standardError.write(Data(DisplayText.escapedLines("\(program): \(l)\n").utf8))
            }
            let where_ = "grid \(plan.spec.name) in \(directory.path): summaries in \(out)"
            print(DisplayText.escapedLines("\(where_): \(outcome.line)"))
            if !outcome.refused.isEmpty || !outcome.failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Slurm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write (and with --submit, submit) a Slurm job array of a grid's unfinished cells.",
            discussion: """
            One array task per unfinished cell, each running desgd-grid run on the shared --dir with --cell \
            $SLURM_ARRAY_TASK_ID; the resume rule is the local one (an interrupted cell resumes from its last state \
            checkpoint), so submit again to finish what a time limit cut short, and run desgd-grid report on the \
            directory to collect the finished cells.

            The script goes to DIR/slurm/grid-N.sbatch, task logs to DIR/slurm/JOB_TASK.out.
            """)
        @OptionGroup var location: GridLocation
        @Flag(help: "Submit the script with sbatch and print the job id.") var submit = false
        @Option(help: "Slurm partition.") var partition: String?
        @Option(help: ArgumentHelp("Time limit per task, e.g. 4:00:00 (a lenet cell of 3 000 rounds takes ~25 min on"
            + " 2 cores).")) var time: String?
        @Option(help: ArgumentHelp("CPUs per task (the cell's threads), "
            + "\(rangeText(SimulationConfig.threadsRange)).")) var cpusPerTask = 2
        @Option(help: "Memory per task.") var mem = "2G"
        @Option(help: ArgumentHelp("At most this many tasks at once, \(rangeText(SlurmArray.maxConcurrentRange))"
            + " (default: no limit).")) var maxConcurrent: Int?
        @Option(help: "The desgd-grid executable the tasks run (default: this one).") var executable: String?
        @Option(help: ArgumentHelp("A keyframe every this many rounds (passed to every task), "
            + "\(rangeText(TraceRecorder.keyframeIntervalRange)). Default: each cell's."))
        var keyframeEvery: Int?
        @Option(help: ArgumentHelp("A state checkpoint every this many rounds (passed to every task), "
            + "\(rangeText(TraceRecorder.checkpointIntervalRange)); 0: none. Default: desgd-record's for the cell's"
            + " options, \(SimulationOptions.Preset.quick.checkpointInterval) (quick), "
            + "\(SimulationOptions.Preset.paper.checkpointInterval) (paper)."))
        var checkpointEvery: Int?

        /// This executable's absolute path.
        static var ownPath: String { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path }

        func run() throws {
            let program = "desgd-grid slurm"
            let (plan, directory) = try location.open(program)
            var options = SlurmArray.Options()
            options.partition = partition
            options.timeLimit = time
            options.cpusPerTask = cpusPerTask
            options.memory = mem
            options.maxConcurrent = maxConcurrent
            options.keyframeInterval = keyframeEvery
            options.checkpointInterval = checkpointEvery ?? GridDefaults.checkpointInterval
            do throws(GridError) {
                try SlurmArray.check(options)
                try directory.prepare(plan.spec)
                let open = try directory.openCells(of: plan).map { $0.index }
                let array = try SlurmArray(plan: plan, directory: directory, cells: open,
                                           executable: executable ?? DesgdGrid.Slurm.ownPath, options: options)
                let path = try array.write(in: directory)
                print("\(path): \(open.count) of \(plan.cells.count) cells (array \(SlurmArray.arraySpec(open)))")
                if submit {
                    let job = try SlurmArray.submit(path)
                    print("submitted job \(job); follow it with squeue -j \(job), collect with desgd-grid report "
                        + "\(location.grid) --dir \(directory.path)")
                }
            } catch { throw CommandFailure.exit(program, error.commandLineMessage) }
        }
    }

    struct Spec: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a built-in grid as a JSON spec (to"
            + " edit and pass back as GRID).")
        @Argument(help: "A built-in grid: \(GridSpec.builtinNames.joined(separator: ", ")).") var name: String
        func run() throws {
            guard let spec = GridSpec.builtin(name) else {
                throw CommandFailure.exit("desgd-grid spec",
                    "no built-in grid \(name) (built-in: \(GridSpec.builtinNames.joined(separator: ", ")))")
            }
            print(String(decoding: spec.json(), as: UTF8.self))
        }
    }

    struct Paper: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the paper's published Tables I and II as CSV"
            + " (table,method,attack,value).")
        func run() throws { print(PaperTables.csv, terminator: "") }
    }
}

extension GridError: ExplainedError {}
