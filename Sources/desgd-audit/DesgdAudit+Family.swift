import ArgumentParser
import DesgdAudit
import DesgdCLI
import DesgdTrace
import Foundation

extension DesgdAuditCommand {
    /// `desgd-audit PARENT FORK…`: the fork family report (``ForkFamily``), each fork's descent checked
    /// (``ForkDescent``); with `--trust KEY`, every branch must be signed whole by that key.
    func runFamily(trusted: TracePublicKey?, program: String) throws {
        if compare != nil || !pre.isEmpty {
            let option = compare != nil ? "--compare" : "--pre"
            throw CommandFailure.exit(program,
                "\(option) goes with the audit of one trace, not with a fork family (PARENT FORK…)")
        }
        let readers = try traces.map { try TraceOpening.open($0, program: program) }
        let report: ForkFamilyReport
        if recoverWithin != nil && recoverTo != nil {
            throw CommandFailure.exit(program, "--recover-within and --recover-to exclude each other: choose one")
        }
        do {
            report = try ForkFamily.report(parent: readers[0], forks: Array(readers.dropFirst()),
                                           recoverWithin: recoverWithin ?? ForkFamily.defaultRecoverWithin,
                                           recoverTo: recoverTo,
                                           dataDirectory: data, threads: threads)
        } catch {
            throw CommandFailure.exit(program, error)
        }
        try write(report, program: program, page: ForkFamilyHTML.render, csv: ForkFamilyText.csv,
            text: ForkFamilyText.render)
        var failed = report.branches.contains { !$0.chainHolds || $0.descent?.differs == true }
        for b in report.branches {
            if let descent = b.descent, let summary = b.descentSummary, !descent.isVerified {
                FileHandle.standardError.write(Data("\(program): \(b.trace): \(summary)\n".utf8))
                if failOnFlag { failed = true }
            }
            if let trusted, let why = b.signatures.trustFailure(trusted) {
                FileHandle.standardError.write(Data("\(program): not trusted: \(b.trace): \(why.commandLine)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
