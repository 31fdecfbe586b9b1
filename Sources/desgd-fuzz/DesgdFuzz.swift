// desgd-fuzz: the libFuzzer target over the trace reader (Tests/fuzz/fuzz-traces.sh builds and runs it).
//
// Built with `-sanitize=fuzzer -D FUZZING` it is a libFuzzer binary: every input goes through
// TraceExercise (open, chain, every round and keyframe, audit, verify), and TraceMutator mutates
// inputs structurally and recomputes their digests. Built normally it runs the files it is given
// through the same exercise, one line each, which reproduces a crasher outside libFuzzer.
import DesgdFuzzing
import Foundation

#if FUZZING
@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int) -> Int

/// libFuzzer's entry when the program has its own `main` (SwiftPM names the executable's entry).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = TraceExercise.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

@main struct DesgdFuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}

@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzMutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    var mutator = TraceMutator(seed: seed)
    // One input in eight gets libFuzzer's byte-level mutations instead (digests left broken).
    if seed % 8 != 0, let out = mutator.mutate(Array(UnsafeBufferPointer(start: data, count: size))), out.count <= maxSize {
        out.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: out.count) }
        return out.count
    }
    return LLVMFuzzerMutate(data, size, maxSize)
}
#else
@main struct DesgdFuzz {
    static func main() {
        let paths = CommandLine.arguments.dropFirst()
        guard !paths.isEmpty else {
            FileHandle.standardError.write(Data("usage: desgd-fuzz FILE...: runs each file through the trace exercise (build with Tests/fuzz/fuzz-traces.sh to fuzz)\n".utf8))
            exit(2)
        }
        for p in paths {
            guard let d = FileManager.default.contents(atPath: p) else {
                FileHandle.standardError.write(Data("desgd-fuzz: cannot read \(p)\n".utf8))
                exit(2)
            }
            let o = TraceExercise.run([UInt8](d))
            print("\(p): " + (o.refusal.map { "refused: \($0)" } ?? "\(o.rounds) rounds, chain \(o.chainHolds ? "holds" : "broken"), \(o.errors.count) errors"))
        }
    }
}
#endif
