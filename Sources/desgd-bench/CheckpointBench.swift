import ArgumentParser
import DesgdCLI
import DesgdNumerics
import DesgdReplay
import DesgdTrace
import Foundation

/// What a trace's state checkpoint is made of: each part's raw float32 bytes and what it takes
/// compressed alone, beside the record's size.
struct CheckpointBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "What each part of a trace's state checkpoint costs: raw float32 bytes and zstd bytes, part by part.",
        discussion: """
        Reads the state checkpoint at or before --round (default: the last) and groups its vectors by the part of the \
        state they hold (model, class-momentum buffer, honest and Byzantine momenta, carried states, drift state), \
        each as the checkpoint encodes it (predictions included), compressed alone at the recorder's zstd level.

        Example:
          desgd-record --preset paper --attack ipm --record decisions --checkpoint-every 100 --rounds 110 --out p.trace
          desgd-bench checkpoint p.trace --round 100
        """)

    @Argument(help: "A trace with state checkpoints.") var trace: String
    @Option(help: "The checkpoint at or before this round (default: the last).") var round: Int?
    @Flag(help: "Print the parts as JSON.") var json = false

    func run() throws {
        let program = "desgd-bench checkpoint"
        let reader = try TraceOpening.open(trace, program: program)
        guard let k = round.flatMap({ reader.lastCheckpoint(atOrBefore: $0) })
            ?? (round == nil ? reader.checkpointRounds.indices.last : nil) else {
            throw CommandFailure.exit(program, "\(DisplayText.escaped(trace)) holds no state checkpoint"
                                      + (round.map { " at or before round \($0)" } ?? "")
                                          + ": record with --checkpoint-every")
        }
        let checkpoint: TraceCheckpoint
        do { checkpoint = try reader.checkpoint(k) } catch { throw CommandFailure.exit(program, error) }
        let parts = checkpoint.composition()
        let record = reader.checkpointRecords[k].size
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(parts), as: UTF8.self))
            return
        }
        let mb = { (b: Int) in String(format: "%.1f", Double(b) / 1e6) }
        print("checkpoint before round \(checkpoint.round): record \(mb(Int(record))) MB")
        print(TextFormat.table(["part", "vectors", "raw MB", "zstd MB", "ratio"], parts.map { p in
            [p.name, String(p.vectors), mb(p.rawBytes), mb(p.compressedBytes),
             p.rawBytes > 0 ? String(format: "%.3f", Double(p.compressedBytes) / Double(p.rawBytes)) : "—"]
        } + [["total", String(parts.reduce(0) { $0 + $1.vectors }), mb(parts.reduce(0) { $0 + $1.rawBytes }),
              mb(parts.reduce(0) { $0 + $1.compressedBytes }), ""]]))
    }
}
