#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin
private let systemRead = Darwin.read
#endif

/// Reading a small file from a hostile party (a key file, a committed cell summary) whole, within
/// a limit: opened without blocking (O_NONBLOCK: a FIFO without a writer would block `open`),
/// refused at once unless `fstat` says it is a regular file (a FIFO, device or directory is
/// not), read without following the file's own idea of its size, and refused when longer than
/// the limit. Errors are data; each caller words them for what the file should have been.
public enum SmallFile {
    public enum Failure: Error, Equatable {
        /// `open` failed (`errno`; ENOENT: there is no such file).
        case cannotOpen(errno: Int32)
        case cannotStat(errno: Int32)
        /// A FIFO, device or directory.
        case notRegular
        case cannotRead(errno: Int32)
        /// More than the limit's bytes.
        case tooLarge

        /// `strerror`'s text for the failures that carry an `errno`.
        public var systemMessage: String {
            switch self {
            case .cannotOpen(let e), .cannotStat(let e), .cannotRead(let e): String(cString: strerror(e))
            case .notRegular: "not a regular file"
            case .tooLarge: "too large"
            }
        }
    }

    /// The file's bytes, at most `limit` of them.
    public static func read(_ path: String, limit: Int) throws(Failure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .cannotOpen(errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotStat(errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notRegular }
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .cannotRead(errno: errno) }
            if n == 0 { break }
            count += n
        }
        guard count <= limit else { throw .tooLarge }
        return Array(buffer[0..<count])
    }
}
