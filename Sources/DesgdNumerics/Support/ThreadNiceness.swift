#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps `nice` meaning what it says on every thread desgd works on (docs/design.md §14).
///
/// On Linux niceness belongs to a thread, and libdispatch's worker threads start at nice 0 whatever
/// the process was started with: under `nice -n 19 desgd-grid run … --jobs 2` one cell ran at nice 19
/// on the main thread and the other at nice 0 on a worker, taking a core from the builds and tests
/// the grid was meant to yield to. Work that may run on a worker thread (a parallel piece, a grid
/// job, the trace recorder's queue) first calls ``inheritProcessNiceness()``, which lowers the
/// calling thread's priority to the process's: the niceness of the main thread, read once.
///
/// Only ever lowers priority (raising niceness needs no privilege); a thread at the process's
/// niceness or nicer is left alone, and a process at nice 0 or below costs one comparison. Niceness
/// changes scheduling, never results. Elsewhere niceness belongs to the process: nothing to do.
public enum ThreadNiceness {
    #if os(Linux)
    /// `PRIO_PROCESS` as glibc's prototypes take it.
    static let processWhich = __priority_which_t(PRIO_PROCESS.rawValue)
    #endif

    /// The main thread's niceness (on Linux its thread id is the process id), read at first use.
    static let process: Int32 = {
        #if os(Linux)
        errno = 0
        let value = getpriority(processWhich, id_t(getpid()))
        return errno == 0 ? value : 0
        #else
        return 0
        #endif
    }()

    /// Lowers the calling thread to the process's niceness when it runs at a higher priority.
    public static func inheritProcessNiceness() {
        let target = process
        guard target > 0 else { return }
        lowerCallingThread(to: target)
    }

    /// The calling thread's niceness (Linux; 0 elsewhere).
    public static var callingThread: Int32 {
        #if os(Linux)
        errno = 0
        let value = getpriority(processWhich, 0)  // who = 0: the calling thread on Linux
        return errno == 0 ? value : 0
        #else
        return 0
        #endif
    }

    /// Sets the calling thread's niceness to `target` if it is lower now.
    static func lowerCallingThread(to target: Int32) {
        #if os(Linux)
        guard callingThread < target else { return }
        _ = setpriority(processWhich, 0, target)
        #endif
    }
}
