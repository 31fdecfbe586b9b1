@testable import DesgdNumerics
import Foundation
import Testing

/// `nice` reaches the threads desgd starts (docs/design.md §14): a thread lowers itself to the
/// niceness asked for, and never raises its priority back.
@Suite struct ThreadNicenessTests {
    @Test func aThreadIsLoweredAndNeverRaised() {
        #if os(Linux)
        // A thread of its own, whose niceness ends with it (the test's thread is left as it was).
        final class Seen: @unchecked Sendable { var before: Int32 = 0, lowered: Int32 = 0, kept: Int32 = 0 }
        let seen = Seen()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            seen.before = ThreadNiceness.callingThread
            ThreadNiceness.lowerCallingThread(to: seen.before + 3)
            seen.lowered = ThreadNiceness.callingThread
            ThreadNiceness.lowerCallingThread(to: seen.before + 1)
            seen.kept = ThreadNiceness.callingThread
            done.signal()
        }
        thread.start()
        done.wait()
        #expect(seen.lowered == min(19, seen.before + 3), "\(seen.before) → \(seen.lowered)")
        #expect(seen.kept == seen.lowered)
        #endif
    }
}
