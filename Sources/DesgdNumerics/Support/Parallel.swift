import Dispatch
import Foundation

/// Runs independent pieces of work on a fixed number of threads.
///
/// Determinism rule of desgd: the *decomposition* of work into pieces never depends on the thread
/// count, only the scheduling does. Each piece writes its own output slot and results are combined
/// afterwards in piece order, so outputs are bit-identical for any `threads`.
public struct ParallelExecutor: Sendable {
    /// Number of threads (≥ 1). 1 runs everything on the caller's thread.
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
    }

    /// The machine's active processor count.
    public static var machineThreads: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Calls `body(i)` for every i in 0..<count, on up to `threads` threads; returns when all are done.
    public func forEach(_ count: Int, _ body: @Sendable (Int) -> Void) {
        forEach(count) { i, _ in body(i) }
    }

    /// Calls `body(i, slot)` for every i in 0..<count; `slot` in 0..<threads names the thread, so
    /// that work items can reuse per-thread scratch memory (e.g. one model workspace per slot).
    public func forEach(_ count: Int, _ body: @Sendable (_ item: Int, _ slot: Int) -> Void) {
        guard count > 0 else { return }
        if threads == 1 || count == 1 {
            for i in 0..<count { body(i, 0) }
            return
        }
        let workers = min(threads, count)
        let next = AtomicCounter()
        DispatchQueue.concurrentPerform(iterations: workers) { slot in
            ThreadNiceness.inheritProcessNiceness()
            while true {
                let i = next.fetchAdd()
                if i >= count { break }
                body(i, slot)
            }
        }
    }
}

/// A lock-protected counter used to hand out work items (cheap next to the work items themselves).
final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func fetchAdd() -> Int {
        lock.lock(); defer { lock.unlock() }
        let v = value
        value += 1
        return v
    }
}

/// A pointer that may be captured by `@Sendable` work items. The caller guarantees that concurrent
/// work items touch disjoint parts of the memory.
public struct SendablePointer<T>: @unchecked Sendable {
    public let base: UnsafeMutablePointer<T>
    public init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
