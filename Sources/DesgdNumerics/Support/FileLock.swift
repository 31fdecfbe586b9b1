#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on a file, taken without waiting and held until ``release()``, the lock's
/// end, or the process's end: the kernel frees it then, which is what tells a killed writer's file
/// from one still being written. The one wrapper for both of desgd's locks: a grid cell's lock file
/// (`.locks/<stem>.lock`) and the temporary file a resumption writes (`TRACE.resuming`).
///
/// A `flock` belongs to an open file description, so a second attempt from the same process on
/// its own descriptor is refused as well: "busy" means held by anyone but this attempt.
public final class FileLock: @unchecked Sendable {
    /// What an attempt found.
    public enum Attempt {
        case held(FileLock)
        /// Another descriptor holds it.
        case busy
        /// `open` failed (`errno`; ENOENT: there is no such file).
        case cannotOpen(errno: Int32)
        /// `flock` failed otherwise than "busy": the file system has no `flock` (`errno`).
        case cannotLock(errno: Int32)
    }

    private var descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// Tries once. `creating` opens the file for writing and creates it (mode 0644) when missing, for a
    /// lock file; otherwise the file must exist and is opened read-only. O_NONBLOCK: a FIFO put in the
    /// file's place does not block the `open`.
    public static func attempt(on path: String, creating: Bool = false) -> Attempt {
        let fd = creating
            ? open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o644)
            : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .cannotOpen(errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let e = errno
            close(fd)
            return e == EWOULDBLOCK ? .busy : .cannotLock(errno: e)
        }
        return .held(FileLock(descriptor: fd))
    }

    /// The lock when it is free now, nil when busy or the file cannot be opened.
    public static func take(_ path: String) -> FileLock? {
        if case .held(let lock) = attempt(on: path) { return lock }
        return nil
    }

    /// Whether another descriptor holds a lock on an existing file: it is taken and dropped at once
    /// when free. A file that cannot be opened is not held.
    public static func isHeldElsewhere(_ path: String) -> Bool {
        switch attempt(on: path) {
        case .held(let lock):
            lock.release()
            return false
        case .busy: return true
        case .cannotOpen, .cannotLock: return false
        }
    }

    /// Frees the lock (closes its descriptor); a second call does nothing.
    public func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
