/// One slot per parallel work item, written once each by distinct items: the results of
/// ``Reexecution``'s segments here, of the replay's rounds and the verification's checks in DesgdReplay
/// (Sources/DesgdReplay/Replay/Replayer.swift, Sources/DesgdReplay/Replay/Verification.swift).
package final class ResultSlots<T>: @unchecked Sendable {
    private let base: UnsafeMutablePointer<T?>
    package let count: Int
    package init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(1, count))
        base.initialize(repeating: nil, count: max(1, count))
    }
    deinit {
        base.deinitialize(count: max(1, count))
        base.deallocate()
    }
    package subscript(i: Int) -> T? {
        get { base[i] }
        set { base[i] = newValue }
    }
}
