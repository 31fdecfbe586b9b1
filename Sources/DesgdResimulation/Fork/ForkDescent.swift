import DesgdNumerics
import DesgdSimulation
import DesgdTrace
import Foundation

/// Whether a fork descends from the parent it names (traces/FORMAT.md §5.1.1). A fork comes from the
/// party being audited and its digests are unkeyed: its header's `fork.parentDigest` can be copied,
/// its `changes` emptied and its starting checkpoint altered, every digest recomputed. So the check
/// does what `desgd-record --fork` did: it re-simulates the parent from its last state checkpoint at
/// or before the fork's round T up to T (every record compared byte for byte), applies the changes
/// the fork's configuration makes exactly as ``TraceFork`` does, encodes the checkpoint the fork must
/// start with and compares it byte for byte with the fork's first checkpoint (decompressed body). The
/// header is checked first, without the data set: the fork's configuration must be the parent's with
/// exactly the declared changes, its other fields the parent's, and `parentDigest` the parent's
/// chain digest before T. `desgd-audit PARENT FORK…` and `desgd-replay --parent` use it.
public enum ForkDescent {
    public typealias Change = TraceHeader.ForkInfo.Change

    /// What differs between a fork and what its parent makes of it.
    public enum Difference: Sendable, Equatable, Codable {
        /// The header names a parent digest before round `at` that the parent does not have.
        case parentDigest(at: Int, named: String)
        /// The configuration changes an option that the header does not declare.
        case undeclaredChange(change: Change)
        /// The header declares `declared`; the configuration changes that option as `actual` (nil:
        /// it keeps the parent's value).
        case misdeclaredChange(declared: Change, actual: Change?)
        /// The header's changes hold every change, but in another order or more than once.
        case changeList(declared: [Change], actual: [Change])
        /// The configuration changes what a fork may not change (the state's shape), and why not.
        case forbiddenChange(change: Change, why: String)
        /// Another header field (data set, partition, model, backend, numerics, drift window) is not
        /// the parent's.
        case headerField(name: String, parent: String, fork: String)
        /// The fork's configuration cannot run from the parent's state.
        case cannotContinue(reason: String)
        /// The parent's rounds re-simulated up to the fork's round differ from its records.
        case parentRounds(reason: String)
        /// The fork has no checkpoint of its first round.
        case noStartingCheckpoint(at: Int)
        /// The fork's first checkpoint is not the parent's state at `at` with the changes applied;
        /// `part` names the first part that differs.
        case startingCheckpoint(at: Int, part: String)

        public var message: String {
            func text(_ c: Change) -> String { "\(c.option) (\(c.parent) → \(c.fork))" }
            switch self {
            case .parentDigest(let at, let named):
                return "the fork names the parent digest \(named.prefix(16))… before round \(at), "
                    + "which its parent does not have"
            case .undeclaredChange(let c):
                return "the fork's configuration changes \(text(c)) but its header declares no change of \(c.option)"
            case .misdeclaredChange(let declared, let actual):
                let made = actual.map { "its configuration changes \(text($0))" }
                    ?? "its configuration keeps the parent's value"
                return "the fork's header declares a change of \(text(declared)) but \(made)"
            case .changeList(let declared, let actual):
                return "the fork's header lists its changes as \(declared.map(text)) instead of \(actual.map(text))"
            case .forbiddenChange(let c, let why):
                return "the fork's configuration changes \(text(c)), which a fork keeps: \(why)"
            case .headerField(let name, let parent, let fork):
                return "the fork's \(name) (\(fork)) is not its parent's (\(parent))"
            case .cannotContinue(let why):
                return why
            case .parentRounds(let why):
                return why
            case .noStartingCheckpoint(let at):
                return "the fork has no state checkpoint of its first round \(at)"
            case .startingCheckpoint(let at, let part):
                return "the fork's starting checkpoint differs from its parent's state at round \(at): \(part)"
            }
        }
    }

    public enum Outcome: Sendable, Equatable, Codable {
        /// The header is the parent's with the declared changes, and the first checkpoint is the
        /// parent's state at `at` (its rounds `from..<at` re-simulated byte for byte) with them applied.
        case verified(from: Int, at: Int)
        /// The fork is not what its parent makes of it.
        case differs(difference: Difference)
        /// The header holds, but the parent could not be re-simulated (`why`: no data set, another
        /// arithmetic…), so the starting checkpoint is taken on trust.
        case notVerified(reason: String)

        /// One sentence for every output format.
        public var summary: String {
            switch self {
            case .verified(let from, let at):
                let how = from == at ? "the parent's checkpoint of round \(at)"
                    : "the parent's rounds \(from)..<\(at) re-simulated byte for byte"
                return "descent verified (\(how); the starting checkpoint and header are the parent's "
                    + "with the declared changes)"
            case .differs(let d): return "descent FAILS: \(d.message)"
            case .notVerified(let why): return "descent not verified (\(why))"
            }
        }

        public var isVerified: Bool { if case .verified = self { true } else { false } }
        public var differs: Bool { if case .differs = self { true } else { false } }
    }

    /// The first difference of `fork`'s header from `parent`'s (no data set needed), nil when it is
    /// the parent's with exactly the declared changes. Throws `.usage` when `fork` is not a fork.
    public static func headerDifference(fork: TraceReader, parent: TraceReader) throws(TraceError) -> Difference? {
        guard let info = fork.header.fork else {
            throw .usage("\(fork.path) is not a fork (its header has no fork key)")
        }
        guard let digest = try TraceFork.parentDigest(parent, at: info.at), digest == info.parentDigest else {
            return .parentDigest(at: info.at, named: info.parentDigest)
        }
        let p = parent.header, f = fork.header
        var actual: [Change] = []
        for field in TraceFork.fields {
            let (a, b) = (field.value(p.config), field.value(f.config))
            guard a != b else { continue }
            let change = Change(option: field.option, parent: a, fork: b)
            if let why = field.refusal { return .forbiddenChange(change: change, why: why) }
            actual.append(change)
        }
        for c in actual where !info.changes.contains(c) {
            if let declared = info.changes.first(where: { $0.option == c.option }) {
                return .misdeclaredChange(declared: declared, actual: c)
            }
            return .undeclaredChange(change: c)
        }
        for c in info.changes where !actual.contains(c) {
            return .misdeclaredChange(declared: c, actual: actual.first { $0.option == c.option })
        }
        if info.changes != actual { return .changeList(declared: info.changes, actual: actual) }
        let fields: [(name: String, same: Bool, parent: String, fork: String)] = [
            ("data set digest", p.dataset.digest == f.dataset.digest, p.dataset.digest, f.dataset.digest),
            ("partition", p.partition == f.partition, "the parent's", "another"),
            ("model", p.model == f.model, "\(p.model.architecture), \(p.model.parameterCount) parameters",
             "\(f.model.architecture), \(f.model.parameterCount) parameters"),
            ("backend kernel", p.backend == f.backend, p.backend, f.backend),
            ("numerics", p.effectiveNumerics == f.effectiveNumerics, "\(p.effectiveNumerics)",
             "\(f.effectiveNumerics)"),
            ("drift window", p.driftWindow == f.driftWindow, p.driftWindow.map(String.init) ?? "none",
             f.driftWindow.map(String.init) ?? "none"),
            ("drift recent sum", p.driftWindow == nil || p.effectiveDriftRecent == f.effectiveDriftRecent,
             p.effectiveDriftRecent.rawValue, f.effectiveDriftRecent.rawValue),
        ]
        if let d = fields.first(where: { !$0.same }) {
            return .headerField(name: d.name, parent: d.parent, fork: d.fork)
        }
        if p.config.data != f.config.data, !(p.config.data.isFashionMNIST && f.config.data.isFashionMNIST) {
            return .headerField(name: "data source", parent: "\(p.config.data)", fork: "\(f.config.data)")
        }
        return nil
    }

    /// Checks `fork`'s descent from `parent`: its header (``headerDifference(fork:parent:)``), then
    /// its starting checkpoint against the parent re-simulated on the data set (the recorded one, or
    /// the Fashion-MNIST `dataDirectory`) with `threads` threads. A data set or arithmetic that does
    /// not reproduce the parent is ``Outcome/notVerified(reason:)``; throws for a damaged file.
    /// `progress(rounds)` counts the parent's rounds re-simulated.
    public static func check(fork: TraceReader, parent: TraceReader, dataDirectory: String?, threads: Int,
                             progress: @escaping (Int) -> Void = { _ in }) throws(TraceError) -> Outcome {
        if let d = try headerDifference(fork: fork, parent: parent) { return .differs(difference: d) }
        let at = fork.firstRound
        let dataset: Dataset, segment: Reexecution.Segment
        do throws(TraceError) {
            try Reexecution.checkArithmetic(parent, backend: parent.header.config.backend.description)
            // The parent's run and the fork's are held at once; their shapes are the files' word.
            do { try parent.header.config.checkMemory(driftWindow: parent.header.driftWindow, runs: 2) } catch {
                throw TraceError.setup("re-simulating the parent: ", error)
            }
            dataset = try Reexecution.loadDataset(for: parent.header, directory: dataDirectory)
            segment = try TraceFork.startSegment(parent, at: at)
        } catch {
            return .notVerified(reason: error.message)
        }
        guard let first = fork.records.firstIndex(where: { $0.type == .checkpoint }),
              fork.checkpointRounds.first == at else {
            return .differs(difference: .noStartingCheckpoint(at: at))
        }
        var config = fork.header.config
        config.threads = max(1, threads)
        let simulation: Simulation, drift: DriftTrackerState?
        do {
            switch try TraceFork.start(parent: parent, dataset: dataset, segment: segment, at: at, config: config,
                                       changes: fork.header.fork?.changes ?? [], memoryLimit: .process,
                                       progress: progress) {
            case .parentDiffers(let why): return .differs(difference: .parentRounds(reason: why))
            case .run(let s, let d): (simulation, drift) = (s, d)
            }
        } catch let e where e.kind == .usage {
            return .differs(difference: .cannotContinue(reason: e.message))
        }
        // The checkpoint the fork's recorder writes before round `at` (TraceRecorder): the run's state
        // and the drift state continued by a tracker of the fork's configuration.
        let state = simulation.captureState(round: at)
        var continued: DriftTrackerState?
        if let window = fork.header.driftWindow {
            let tracker = DriftTracker(config: config, dimension: simulation.model.parameterCount, window: window,
                                       recent: fork.header.effectiveDriftRecent)
            if let drift {
                do { try tracker.restore(drift) } catch {
                    let why = "the parent's drift state does not fit the fork: \(error.explanation)"
                    return .differs(difference: .cannotContinue(reason: why))
                }
            }
            continued = tracker.captureState()
        }
        let encoder = RecordEncoder(mode: fork.header.recording, bounds: fork.header.groups.map(\.resilienceBound))
        let expected = Array(encoder.checkpoint(state, drift: continued).joined())
        guard try fork.bodyBytes(ofRecord: first) == expected else {
            let part = try Reexecution.checkpointDifference(state: state, drift: continued,
                                                            recorded: fork.checkpoint(0))
            return .differs(difference: .startingCheckpoint(at: at, part: part))
        }
        return .verified(from: segment.start, at: at)
    }
}
