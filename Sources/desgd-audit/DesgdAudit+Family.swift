import ArgumentParser
import DesgdCLI
import DesgdReplay
import DesgdTrace
import Foundation

extension DesgdAuditCommand {
    /// `desgd-audit PARENT FORK…`: the fork family report (``ForkFamily``).
    func runFamily(program: String) throws {
        if compare != nil || !pre.isEmpty || trust != nil {
            let option = compare != nil ? "--compare" : !pre.isEmpty ? "--pre" : "--trust"
            throw CommandFailure.exit(program, "\(option) goes with the audit of one trace, not with a fork family (PARENT FORK…)")
        }
        let readers = try traces.map { try TraceOpening.open($0, program: program) }
        let report: ForkFamilyReport
        do { report = try ForkFamily.report(parent: readers[0], forks: Array(readers.dropFirst()), recoverWithin: recoverWithin) } catch {
            throw CommandFailure.exit(program, error.message)
        }
        if let html {
            guard FileManager.default.createFile(atPath: html, contents: Data(ForkFamilyHTML.render(report).utf8)) else {
                throw CommandFailure.exit(program, "cannot write \(html): check the directory exists and is writable")
            }
        }
        let output: String
        if json {
            let e = RecordBody.encoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            output = String(decoding: try e.encode(report), as: UTF8.self) + "\n"
        } else if csv {
            output = ForkFamilyText.csv(report)
        } else {
            output = ForkFamilyText.render(report) + (html.map { "\nHTML report written to \($0)\n" } ?? "")
        }
        FileHandle.standardOutput.write(Data(output.utf8))
        if report.branches.contains(where: { !$0.chainHolds }) { throw ExitCode(1) }
    }
}
