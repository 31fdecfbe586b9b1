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
        if recoverWithin != nil && recoverTo != nil {
            throw CommandFailure.exit(program, "--recover-within and --recover-to exclude each other: choose one")
        }
        do {
            report = try ForkFamily.report(parent: readers[0], forks: Array(readers.dropFirst()),
                                           recoverWithin: recoverWithin ?? ForkFamily.defaultRecoverWithin, recoverTo: recoverTo)
        } catch {
            throw CommandFailure.exit(program, error.message)
        }
        try write(report, program: program, page: ForkFamilyHTML.render, csv: ForkFamilyText.csv, text: ForkFamilyText.render)
        if report.branches.contains(where: { !$0.chainHolds }) { throw ExitCode(1) }
    }
}
