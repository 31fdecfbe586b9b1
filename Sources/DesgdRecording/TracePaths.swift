import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// Where traces go by default, and their descriptive names.
public enum TracePaths {
    /// The default directory, relative to the working directory.
    public static let directory = "traces"

    /// `text` with every character outside `[A-Za-z0-9._-]` (and `extra`) replaced by `_`: a file
    /// name part that needs no quoting in a shell.
    public static func fileSafe(_ text: String, keeping extra: Set<Character> = []) -> String {
        String(text.map {
            ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "-" || extra.contains($0) ? $0 : "_" })
    }

    /// `traces/<mode>-<rule>-<attack>-<model>-seed<s>-<rounds>r.trace`, with characters outside
    /// `[A-Za-z0-9._-]` of the specs replaced by `_`, and `-2`, `-3`, … appended when a file of
    /// that name exists: a default name never overwrites.
    public static func defaultPath(for config: SimulationConfig, in directory: String = directory) -> String {
        let rule = config.preAggregators.isEmpty ? config.aggregator : config.preAggregators + "+" + config.aggregator
        let stem = [config.mode.rawValue, fileSafe(rule), fileSafe(config.attack), config.model.rawValue,
                    "seed\(config.seed)",
                    "\(config.rounds)r"].joined(separator: "-")
        return unusedPath(stem: stem, in: directory)
    }

    /// `directory/stem.trace`, or with `-2`, `-3`, … appended when that file exists.
    static func unusedPath(stem: String, in directory: String) -> String {
        var path = "\(directory)/\(stem).trace"
        var k = 2
        while FileManager.default.fileExists(atPath: path) {
            path = "\(directory)/\(stem)-\(k).trace"
            k += 1
        }
        return path
    }
}

extension TracePaths {
    /// `traces/<parent's name>-fork<T>-<option>=<value>….trace` (e.g.
    /// `desgd-mean-ipm-small-seed1-300r-fork120-agg=cclip.trace`, `-unchanged` when nothing
    /// changed), with `-2`, `-3`, … when taken: a default name never overwrites.
    public static func forkPath(parent: String, fork: TraceHeader.ForkInfo,
        in directory: String = directory) -> String {
        var stem = (parent as NSString).lastPathComponent
        if stem.hasSuffix(".trace") { stem.removeLast(6) }
        let changes = fork.changes.isEmpty ? "unchanged" : fork.changes.map {
            "\($0.option.drop { $0 == "-" })=\($0.fork)" }.joined(separator: "-")
        return unusedPath(stem: fileSafe("\(stem)-fork\(fork.at)-\(changes)", keeping: ["="]), in: directory)
    }
}
