import Foundation

/// An exclusive `flock` on a file, taken without waiting: nil when another process holds one (or
/// the file cannot be opened). Released by ``release()`` or when the process dies, which is what
/// tells a killed resumption's file from one still being written.
final class FileLock {
    private var descriptor: Int32

    init?(exclusiveOn path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        descriptor = fd
    }

    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
