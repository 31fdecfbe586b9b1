import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// A grid as a Slurm job array: one array task per unfinished cell, every task running
/// `desgd-grid run GRID.json --dir DIR --cell $SLURM_ARRAY_TASK_ID` on a shared directory.
///
/// The resume rule is the local one (``GridRunner``): only cells that are not finished go into
/// the array, a task whose cell was finished meanwhile (by a local run, an earlier array) exits at
/// once, a task killed by its time limit or `scancel` (SIGTERM) finishes its current round and
/// leaves a clean incomplete trace that the next submission resumes from its last state checkpoint
/// (or keeps aside and records again when it has none), and the cell lock keeps two tasks off one
/// cell. `desgd-grid report` collects whatever has finished.
public struct SlurmArray: Sendable, Equatable {
    public struct Options: Sendable, Equatable {
        public var partition: String?
        /// `--time`, e.g. `2:00:00`.
        public var timeLimit: String?
        public var cpusPerTask = 2
        /// `--mem`, e.g. `2G`.
        public var memory: String? = "2G"
        /// At most this many tasks at once (`%N` of `--array`).
        public var maxConcurrent: Int?
        /// `desgd-grid run --keyframe-every` of every task; nil: not passed, each cell's default.
        public var keyframeInterval = GridDefaults.keyframeInterval
        /// `desgd-grid run --checkpoint-every` of every task; nil: not passed, each cell's own.
        public var checkpointInterval = GridDefaults.checkpointInterval
        public init() {}
    }

    /// `%N` of `--array`: at most the grid's size (Slurm's own MaxArraySize is far lower).
    public static let maxConcurrentRange = 1...1_000_000

    /// The grid's cells in the array, by index.
    public var cells: [Int]
    /// The spec the tasks run, saved beside the script (`slurm/grid-N.json`): a later `run` or
    /// `slurm` of another spec on the same directory cannot change what queued tasks do.
    public var spec: GridSpec
    let scriptTemplate: String

    /// Checks the options (front ends call it before touching the grid's directory): Slurm values
    /// made of safe characters, counts in their ranges.
    public static func check(_ options: Options) throws(GridError) {
        let values: [(Setting, String?)] = [(.slurmTime, options.timeLimit), (.slurmPartition, options.partition),
                                            (.slurmMemory, options.memory)]
        for (name, value) in values {
            if let v = value, v.isEmpty
                || !v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_:.,".contains($0)) }) {
                throw GridError("\(name) \"\(v)\" is not a Slurm value (letters, digits, - _ : . , only)")
            }
        }
        guard SimulationConfig.threadsRange.contains(options.cpusPerTask) else {
            throw GridError(SimulationError.outOfRange(.cpusPerTask, options.cpusPerTask, SimulationConfig.threadsRange)
                .explanation)
        }
        if let m = options.maxConcurrent, !SlurmArray.maxConcurrentRange.contains(m) {
            throw GridError(SimulationError.outOfRange(.maxConcurrent, m, SlurmArray.maxConcurrentRange).explanation)
        }
        do {
            try TraceRecorder.checkOptions(keyframeInterval: options.keyframeInterval ?? 1,
                                           compressionLevel: TraceRecorder.defaultCompressionLevel,
                                           checkpointInterval: options.checkpointInterval ?? 0)
        } catch {
            throw GridError(error.explanation)
        }
    }

    /// `desgd-grid` must be an absolute path reachable from the compute nodes; `directory` a
    /// shared one (both are made absolute against the current directory).
    public init(plan: GridPlan, directory: GridDirectory, cells: [Int], executable: String,
        options: Options) throws(GridError) {
        guard !cells.isEmpty else {
            throw GridError("no cell of grid \(plan.spec.name) is left to run (all finished or"
                + " running): nothing to submit") }
        try SlurmArray.check(options)
        self.cells = cells
        spec = plan.spec
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : "\(cwd)/\(p)" }
        let dir = absolute(directory.path)
        var lines = [
            "#!/bin/bash",
            "# desgd grid \"\(plan.spec.name)\": \(cells.count) of \(plan.cells.count) cells as a Slurm job array,"
                + " written by desgd-grid slurm.",
            "# Each task records one cell into \(dir); desgd-grid report collects the finished ones.",
            "#SBATCH --job-name=desgd-\(plan.spec.name)",
            "#SBATCH --array=\(SlurmArray.arraySpec(cells))" + (options.maxConcurrent.map { "%\($0)" } ?? ""),
            "#SBATCH --cpus-per-task=\(options.cpusPerTask)",
            "#SBATCH --ntasks=1",
            "#SBATCH --output=\(dir)/slurm/%A_%a.out",
        ]
        if let m = options.memory { lines.append("#SBATCH --mem=\(m)") }
        if let t = options.timeLimit { lines.append("#SBATCH --time=\(t)") }
        if let p = options.partition { lines.append("#SBATCH --partition=\(p)") }
        lines += [
            "set -euo pipefail",
            "cd \(GridCell.shellQuoted(cwd))",
            "exec \(GridCell.shellQuoted(absolute(executable))) run \(GridCell.shellQuoted(dir + "/slurm/")){SPEC}"
                + " --dir \(GridCell.shellQuoted(dir)) \\",
            "  --cell \"$SLURM_ARRAY_TASK_ID\" --jobs 1 --threads \"${SLURM_CPUS_PER_TASK:-1}\""
                + (options.keyframeInterval.map { " --keyframe-every \($0)" } ?? "")
                    + (options.checkpointInterval.map { " --checkpoint-every \($0)" } ?? ""),
        ]
        scriptTemplate = lines.joined(separator: "\n") + "\n"
    }

    /// The batch script, running the spec saved as `slurm/<specName>`.
    public func script(specName: String = "grid.json") -> String {
        scriptTemplate.replacingOccurrences(of: "{SPEC}", with: GridCell.shellQuoted(specName))
    }

    /// Slurm's `--array` syntax for sorted indices: runs become ranges, e.g. `0-3,7,9-11`.
    public static func arraySpec(_ indices: [Int]) -> String {
        let sorted = Array(Set(indices)).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// Writes the spec to `<dir>/slurm/grid-<n>.json` and the script that runs it to
    /// `<dir>/slurm/grid-<n>.sbatch` (n the first free number); returns the script's path.
    public func write(in directory: GridDirectory) throws(GridError) -> String {
        let folder = "\(directory.path)/slurm"
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw GridError("cannot create \(folder): \(error.localizedDescription)")
        }
        var n = 1
        while FileManager.default.fileExists(atPath: "\(folder)/grid-\(n).sbatch")
            || FileManager.default.fileExists(atPath: "\(folder)/grid-\(n).json") {
            n += 1
        }
        let path = "\(folder)/grid-\(n).sbatch"
        do {
            try spec.json().write(to: URL(fileURLWithPath: "\(folder)/grid-\(n).json"))
            try Data(script(specName: "grid-\(n).json").utf8).write(to: URL(fileURLWithPath: path))
        } catch { throw GridError("cannot write \(path): \(error.localizedDescription)") }
        return path
    }

    /// Submits a script with `sbatch --parsable` and returns the job id.
    public static func submit(_ scriptPath: String) throws(GridError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sbatch", "--parsable", scriptPath]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw GridError("cannot run sbatch: \(error.localizedDescription) (is Slurm installed and on PATH?)")
        }
        let output = out.fileHandleForReading.readDataToEndOfFile(),
            errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !text.isEmpty else {
            let why = String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let reason = why.isEmpty
                ? "exit code \(process.terminationStatus)" : why.replacingOccurrences(of: "\n", with: "; ")
            throw GridError("sbatch refused \(scriptPath): \(reason)")
        }
        // `--parsable` prints "jobid" or "jobid;cluster".
        return String(text.split(separator: ";").first ?? Substring(text))
    }
}
