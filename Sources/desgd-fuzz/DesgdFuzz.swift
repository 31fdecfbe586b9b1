// desgd-fuzz: the libFuzzer targets over the trace reader (Tests/fuzz/fuzz-traces.sh builds and runs them).
//
// Built with `-sanitize=fuzzer -D FUZZING` it is a libFuzzer binary with two targets:
// - whole files (the default): every input goes through TraceExercise (open, chain, every round and
//   keyframe, audit, verification); TraceMutator mutates inputs structurally and recomputes digests;
// - record bodies (DESGD_FUZZ_TARGET=records, DESGD_FUZZ_HEADER=a seed trace whose header validates
//   rounds and keyframes): every input goes through the pure parser (RecordBodyExercise).
// Built normally it runs files through the same exercises, one line each (a crasher reproduced
// outside libFuzzer), and writes the records target's seed corpus (--bodies TRACE DIR).
import DesgdFuzzing
import DesgdTrace
import Foundation

enum Target {
    static let records = ProcessInfo.processInfo.environment["DESGD_FUZZ_TARGET"] == "records"
    nonisolated(unsafe) static var header: TraceHeader?
    /// DESGD_FUZZ_RESIMULATE=0: whole files are read, audited and verified but not re-simulated
    /// (ResimulationExercise trains rounds: ~50× fewer inputs a second), to spend a run on the reader.
    static let resimulate = ProcessInfo.processInfo.environment["DESGD_FUZZ_RESIMULATE"] != "0"

    static func loadHeader() {
        guard records else { return }
        guard let path = ProcessInfo.processInfo.environment["DESGD_FUZZ_HEADER"], let r = try? TraceReader(path: path)
            else {
            FileHandle.standardError.write(
                Data("desgd-fuzz: DESGD_FUZZ_TARGET=records needs DESGD_FUZZ_HEADER=TRACE (a valid trace)\n".utf8))
            exit(2)
        }
        header = r.header
    }

    static func run(_ bytes: [UInt8]) -> String {
        if records, let header {
            return RecordBodyExercise.run(bytes, header: header).map { "refused: \($0)" } ?? "parsed"
        }
        let o = TraceExercise.run(bytes, resimulate: resimulate)
        // DESGD_FUZZ_VERBOSE=1: every error, one per line (outside libFuzzer, to read what a file met).
        let details = ProcessInfo.processInfo.environment["DESGD_FUZZ_VERBOSE"] == "1"
            ? o.errors.map { "\n  " + $0.prefix(300) }.joined() : ""
        return o.refusal.map { "refused: \($0)" }
            ?? "\(o.rounds) rounds, chain \(o.chainHolds ? "holds" : "broken"), \(o.errors.count) errors" + details
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// libFuzzer's entry when the program has its own `main` (SwiftPM names the executable's entry).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    // Loaded on the first input, once libFuzzer's driver runs: reading it before the driver started
    // crashed in malloc here.
    if Target.records && Target.header == nil { Target.loadHeader() }
    _ = Target.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var mutator = TraceMutator(seed: seed)
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // One input in eight gets libFuzzer's byte-level mutations instead (digests left broken).
    if seed % 8 != 0, let out = Target.records ? mutator.mutateBody(input) : mutator.mutate(input),
        out.count <= maxSize {
        out.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: out.count) }
        return out.count
    }
    return LLVMFuzzerMutate(data, size, maxSize)
}

@main struct DesgdFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}
#else
@main struct DesgdFuzz {
    static func fail(_ m: String) -> Never {
        FileHandle.standardError.write(Data("desgd-fuzz: \(m)\n".utf8))
        exit(2)
    }

    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--bodies" {
            guard args.count == 3 else { fail("usage: desgd-fuzz --bodies TRACE DIR") }
            let reader: TraceReader
            do { reader = try TraceReader(path: args[1]) } catch { fail(error.message) }
            for (k, b) in RecordBodyExercise.bodies(of: reader).enumerated() {
                let name = (args[1] as NSString).lastPathComponent + ".body\(k)"
                guard FileManager.default.createFile(atPath: args[2] + "/" + name, contents: Data(b)) else {
                    fail("cannot write \(args[2])/\(name)")
                }
            }
            return
        }
        guard !args.isEmpty else {
            fail("usage: desgd-fuzz FILE... (runs each file through the trace exercise; DESGD_FUZZ_TARGET=records for"
                + " record bodies), or desgd-fuzz --bodies TRACE DIR")
        }
        Target.loadHeader()
        for p in args {
            guard let d = FileManager.default.contents(atPath: p) else { fail("cannot read \(p)") }
            print("\(p): " + Target.run([UInt8](d)))
        }
    }
}
#endif
