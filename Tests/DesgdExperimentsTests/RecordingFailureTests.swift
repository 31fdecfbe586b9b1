import Foundation
import Testing

/// A disk that fills while `desgd-record` writes is an I/O failure, not bad input: exit code 1, one
/// line naming the file, and the rounds written before it kept. The file-size limit (`ulimit -f`,
/// with SIGXFSZ ignored so that the write fails with EFBIG instead of killing the process) stands in
/// for a full disk after the trace was created.
@Suite struct RecordingFailureTests {
    @Test func aFullDiskWhileRecordingExitsOne() throws {
        let directory = NSTemporaryDirectory() + "desgd-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = Executables.directory.appendingPathComponent("desgd-record").path
        let trace = directory + "/full.trace"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "trap '' XFSZ; ulimit -f 200; exec \"$0\" --preset quick --synthetic 600 --rounds 5 --out \"$1\"",
            record, trace,
        ]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1, "\(message)")
        #expect(message.hasPrefix("desgd-record: writing \(trace) failed: File too large"), "\(message)")
        #expect(message.split(separator: "\n").count == 1)
        #expect(FileManager.default.fileExists(atPath: trace))
    }
}
