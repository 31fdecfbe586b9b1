import DesgdNumerics
import Foundation
import Testing

/// The one `flock` wrapper (grid cells' lock files, a resumption's temporary file): what each
/// attempt finds, and that a release, or the holder's end, frees the lock.
@Suite struct FileLockTests {
    @Test func aLockIsBusyWhileHeldAndFreeOnceReleased() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("desgd-filelock-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = "\(dir)/cell.lock"

        guard case .cannotOpen(let e) = FileLock.attempt(on: file) else {
            Issue.record("a missing file opened")
            return
        }
        #expect(e == ENOENT)
        #expect(FileLock.take(file) == nil)
        #expect(!FileLock.isHeldElsewhere(file))

        guard case .held(let first) = FileLock.attempt(on: file, creating: true) else {
            Issue.record("a free lock file was not locked")
            return
        }
        #expect(FileManager.default.fileExists(atPath: file))
        guard case .busy = FileLock.attempt(on: file, creating: true) else {
            Issue.record("a held lock was taken")
            return
        }
        #expect(FileLock.take(file) == nil)
        #expect(FileLock.isHeldElsewhere(file))

        first.release()
        first.release()
        #expect(!FileLock.isHeldElsewhere(file))
        // The deinit frees a lock nobody released.
        do { #expect(FileLock.take(file) != nil) }
        let again = try #require(FileLock.take(file))
        again.release()
    }
}
