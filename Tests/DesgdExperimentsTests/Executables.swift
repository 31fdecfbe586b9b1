import Foundation

/// The package's command-line executables as built for this test run: `swift test` builds them
/// next to the test bundle (`.build/<triple>/release/` or `debug/`), so the directory is the test
/// binary's own.
enum Executables {
    static let directory: URL = {
        // Linux: the test bundle is the running executable. macOS: xctest loads the bundle, which
        // sits in the build directory.
        let proc = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if proc.lastPathComponent.hasSuffix(".xctest") { return proc.deletingLastPathComponent() }
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            return URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent()
        }
        return proc.deletingLastPathComponent()
    }()

    /// What one run of an executable printed and how it exited.
    struct Outcome {
        var status: Int32
        var standardOutput: Data
        var standardError: String
    }

    /// Runs `name` (e.g. `desgd-record`) with `arguments` in `directory` (default: a fresh
    /// temporary one, so that nothing lands in the source tree) and waits for it.
    /// `executable` runs another program instead (e.g. GNU time wrapping one of ours).
    static func run(_ name: String, _ arguments: [String], in workingDirectory: String? = nil,
                    executable: URL? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = executable ?? directory.appendingPathComponent(name)
        process.arguments = arguments
        let cwd = workingDirectory ?? NSTemporaryDirectory() + "desgd-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        process.currentDirectoryURL = URL(fileURLWithPath: cwd)
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = "80"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Standard output is drained on another thread so that neither pipe can fill and block.
        nonisolated(unsafe) var output = Data()
        let reading = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            output = out.fileHandleForReading.readDataToEndOfFile()
            reading.signal()
        }
        let error = err.fileHandleForReading.readDataToEndOfFile()
        reading.wait()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, standardOutput: output,
            standardError: String(decoding: error, as: UTF8.self))
    }
}
