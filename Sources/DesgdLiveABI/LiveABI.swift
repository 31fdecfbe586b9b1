import DesgdCLI
import DesgdLive
import DesgdNumerics
import DesgdRobust
import DesgdSimulation
import DesgdTrace
import Foundation

// The C ABI of libDesgdLive.so: what the Python package (`desgd.live`, loaded with ctypes) calls to run
// a live federation's server with desgd's own code (docs/federation.md). A thin front end over
// ``LiveServer``: it parses the request (desgd-record's option words, through the same parser),
// turns errors into status codes and one-line messages, and copies nothing the caller can pass by
// pointer. Every function returns 0 (done), 2 (bad input: the message names it) or 1 (a failure:
// writing the trace, or an internal error). Handles are used from one thread at a time.

/// A live run behind an opaque handle.
final class LiveSession {
    let server: LiveServer
    init(server: LiveServer) { self.server = server }
}

/// The request of `desgd_live_open` (docs/federation.md).
struct LiveRequest: Decodable {
    var trace: String
    var overwrite: Bool?
    var options: [String]
    var record: String?
    var keyframeEvery: Int?
    var signingKey: String?
    var resume: Bool?
    var engine: LiveEngine
    /// Present on the clients' own model and data (`desgd_live_open_clients`): what they declare.
    var clients: Clients?

    struct Clients: Decodable {
        var classes: Int
        var holdings: [[Int]]
    }
}

/// What `desgd_live_describe` answers: what the clients need to compute their messages.
struct LiveDescription: Encodable {
    var parameterCount: Int
    var classes: Int
    var honest: Int
    var byzantine: Int
    var mode: String
    var rounds: Int
    var batch: Int
    var beta: Float
    var weightDecay: Float
    var seed: UInt64
    var aggregator: String
    var attack: String
    var clientSideAttack: Bool
    var byzantineLabels: String?
    var signflipScale: Double?
    var holdings: [[Int]]
    /// desgd's partition (sample indices per worker and class); absent on the clients' own data.
    var partition: [[[Int]]]?
    /// desgd's input normalisation; absent on the clients' own data.
    var normalization: [String: Double]?
    var evaluationInterval: Int
    var runTag: String
    var model: [LiveEngine.Tensor]
    /// Whether the run is on the clients' own model and data (the caller gives x_0 and evaluates).
    var external: Bool
    /// The first round this run executes: 0, or where a resumed run continues.
    var nextRound: Int
}

enum Status {
    static let ok: Int32 = 0
    static let failure: Int32 = 1
    static let badInput: Int32 = 2
}

/// The largest request accepted (the engine's texts and keys; far above any real one).
let maximumRequestBytes = 16 << 20

/// Copies `text` into the caller's buffer as a NUL-terminated C string, cut to fit `capacity`.
func report(_ text: String, _ out: UnsafeMutablePointer<CChar>?, _ capacity: Int64) {
    guard let out, capacity > 0 else { return }
    let bytes = Array(text.utf8.prefix(Int(capacity) - 1))
    for (i, b) in bytes.enumerated() { out[i] = CChar(bitPattern: b) }
    out[bytes.count] = 0
}

func status(of e: LiveServerError, _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64) -> Int32 {
    report(e.explanation.commandLine, message, capacity)
    switch e {
    case .input: return Status.badInput
    case .trace(let t): return t.kind == .usage ? Status.badInput : Status.failure
    }
}

func session(_ handle: UnsafeMutableRawPointer?) -> LiveSession? {
    handle.map { Unmanaged<LiveSession>.fromOpaque($0).takeUnretainedValue() }
}

/// The program's name and version as a C string that lives as long as the library.
nonisolated(unsafe) let versionText: UnsafeMutablePointer<CChar> = strdup("desgd \(DesgdVersion.current)")!

@_cdecl("desgd_live_version")
public func desgdLiveVersion() -> UnsafePointer<CChar> { UnsafePointer(versionText) }

@_cdecl("desgd_live_open")
public func desgdLiveOpen(
    _ request: UnsafePointer<CChar>?, _ handle: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    open(request, initialParameters: nil, handle, message, capacity)
}

/// A run on the clients' own model and data: the request's `clients` declares C and each honest
/// worker's classes, and `parameters` (`count` values) is x_0 as the clients' framework initialised it.
@_cdecl("desgd_live_open_clients")
public func desgdLiveOpenClients(
    _ request: UnsafePointer<CChar>?, _ parameters: UnsafePointer<Float>?, _ count: Int64,
    _ handle: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    guard let parameters, count >= 1, count <= Int64(SimulationConfig.ClientSetup.parameterCountRange.upperBound)
    else {
        report("the initial parameters need a buffer of 1...\(Int32.max) values", message, capacity)
        return Status.badInput
    }
    let x = Array(UnsafeBufferPointer(start: parameters, count: Int(count)))
    return open(request, initialParameters: x, handle, message, capacity)
}

func open(
    _ request: UnsafePointer<CChar>?, initialParameters: [Float]?,
    _ handle: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
    _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    guard let request, let handle else {
        report("a null pointer", message, capacity)
        return Status.badInput
    }
    let length = strnlen(request, maximumRequestBytes + 1)
    guard length <= maximumRequestBytes else {
        report("the request is larger than \(maximumRequestBytes) bytes", message, capacity)
        return Status.badInput
    }
    let data = Data(bytes: request, count: length)
    let parsed: LiveRequest
    do { parsed = try JSONDecoder().decode(LiveRequest.self, from: data) } catch {
        report("the request is not the JSON docs/federation.md describes: \(error)", message, capacity)
        return Status.badInput
    }
    guard (parsed.clients == nil) == (initialParameters == nil) else {
        report(
            "the clients' own model needs both the request's clients and desgd_live_open_clients' parameters",
            message, capacity)
        return Status.badInput
    }
    do {
        let words = try SimulationOptions.parseWords(parsed.options)
        var config = words.config
        let mode = try RecordingMode.parse(parsed.record ?? "full")
        let key = try parsed.signingKey.map { path throws(TraceError) in try TraceSigningKey.read(path: path) }
        let options = LiveServer.TraceOptions(
            path: parsed.trace, overwrite: parsed.overwrite ?? false, mode: mode,
            keyframeInterval: parsed.keyframeEvery ?? 100, signingKey: key,
            resume: parsed.resume ?? false)
        let server: LiveServer
        if let clients = parsed.clients, let x = initialParameters {
            for word in ["--model", "--data", "--synthetic", "--partition"]
            where parsed.options.contains(where: { $0 == word || $0.hasPrefix(word + "=") }) {
                report("options: \(word) is the clients' own on their model and data: leave it out", message, capacity)
                return Status.badInput
            }
            config.model = .external
            config.data = .external
            config.partition = .declared
            config.clients = .init(parameterCount: x.count, classes: clients.classes, holdings: clients.holdings)
            server = try LiveServer(clients: config, initialParameters: x, engine: parsed.engine, trace: options)
        } else {
            server = try LiveServer(config: config, engine: parsed.engine, trace: options)
        }
        handle.pointee = Unmanaged.passRetained(LiveSession(server: server)).toOpaque()
        return Status.ok
    } catch let e as LiveServerError {
        return status(of: e, message, capacity)
    } catch let e as SimulationError {
        report("options: \(e.explanation.commandLine)", message, capacity)
        return Status.badInput
    } catch let e as TraceError {
        return status(of: .trace(e), message, capacity)
    } catch {
        report("\(error)", message, capacity)
        return Status.failure
    }
}

@_cdecl("desgd_live_describe")
public func desgdLiveDescribe(
    _ handle: UnsafeMutableRawPointer?, _ json: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
    _ needed: UnsafeMutablePointer<Int64>?, _ message: UnsafeMutablePointer<CChar>?,
    _ errorCapacity: Int64
) -> Int32 {
    guard let s = session(handle) else {
        report("no live run (a null handle)", message, errorCapacity)
        return Status.badInput
    }
    let server = s.server
    let config = server.config
    let attack = server.aggregation.attack
    // desgd's own model and data: the partition's sample indices and the normalisation the clients
    // apply; on the clients' own, their declared holdings and nothing of desgd's.
    let simulation = server.simulation
    let normalization = simulation?.dataset.provenance.normalization
    let description = LiveDescription(
        parameterCount: server.parameterCount, classes: config.classes, honest: config.honestWorkers,
        byzantine: config.byzantineWorkers, mode: config.mode == .desgd ? "desgd" : "sgd", rounds: config.rounds,
        batch: config.batchSize, beta: config.beta, weightDecay: config.weightDecay, seed: config.seed,
        aggregator: server.aggregation.pipeline.spec, attack: attack.spec,
        clientSideAttack: attack.ownMomentum != .none,
        byzantineLabels: attack.ownMomentum == .none
            ? nil : (attack.ownMomentum == .flippedLabels ? "flipped" : "true"),
        signflipScale: (attack as? SignFlipAttack)?.scale,
        holdings: config.clients?.holdings
            ?? (0..<config.honestWorkers).map { simulation?.partition.classes(of: $0) ?? [] },
        partition: simulation?.partition.samples,
        normalization: normalization.map { ["mean": $0.mean, "std": $0.std] },
        evaluationInterval: config.evaluationInterval, runTag: Hex.encode(server.runTag),
        model: server.engine.model, external: simulation == nil,
        nextRound: server.nextRound)
    let bytes: [UInt8]
    do { bytes = Array(try JSONEncoder().encode(description)) } catch {
        report("\(error)", message, errorCapacity)
        return Status.failure
    }
    needed?.pointee = Int64(bytes.count + 1)
    guard let json, capacity > Int64(bytes.count) else {
        report("the answer needs \(bytes.count + 1) bytes", message, errorCapacity)
        return Status.badInput
    }
    report(String(decoding: bytes, as: UTF8.self), json, capacity)  // fits: checked above
    return Status.ok
}

@_cdecl("desgd_live_initial_parameters")
public func desgdLiveInitialParameters(
    _ handle: UnsafeMutableRawPointer?, _ out: UnsafeMutablePointer<Float>?,
    _ count: Int64, _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    guard let s = session(handle), let out else {
        report("a null handle or buffer", message, capacity)
        return Status.badInput
    }
    let x = s.server.parameters
    guard count == Int64(x.count) else {
        report("the buffer holds \(count) values, the model \(x.count)", message, capacity)
        return Status.badInput
    }
    x.withUnsafeBufferPointer { out.update(from: $0.baseAddress!, count: x.count) }
    return Status.ok
}

@_cdecl("desgd_live_classes")
public func desgdLiveClasses(
    _ handle: UnsafeMutableRawPointer?, _ round: Int64, _ out: UnsafeMutablePointer<Int64>?,
    _ capacity: Int64, _ count: UnsafeMutablePointer<Int64>?,
    _ message: UnsafeMutablePointer<CChar>?, _ errorCapacity: Int64
) -> Int32 {
    guard let s = session(handle), let count else {
        report("a null handle or count", message, errorCapacity)
        return Status.badInput
    }
    let config = s.server.config
    guard round >= 0 && round < Int64(config.rounds) else {
        report("round \(round) is outside 0..<\(config.rounds)", message, errorCapacity)
        return Status.badInput
    }
    let classes = config.mode == .desgd ? config.classSet(round: Int(round)) : []
    count.pointee = Int64(classes.count)
    guard Int64(classes.count) <= capacity, classes.isEmpty || out != nil else {
        report("the buffer holds \(capacity) classes, the round has \(classes.count)", message, errorCapacity)
        return Status.badInput
    }
    for (i, c) in classes.enumerated() { out![i] = Int64(c) }
    return Status.ok
}

/// The caller's evaluation of x_{t+1} on the clients' own model: (parameters, count, accuracy out,
/// loss out, context) → 0 when it evaluated.
public typealias EvaluationCallback = @convention(c) (
    UnsafePointer<Float>?, Int64, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<Double>?,
    UnsafeMutableRawPointer?
) -> Int32

@_cdecl("desgd_live_round")
public func desgdLiveRound(
    _ handle: UnsafeMutableRawPointer?, _ round: Int64, _ messageCount: Int64,
    _ workers: UnsafePointer<Int64>?, _ classes: UnsafePointer<Int64>?,
    _ vectors: UnsafePointer<UnsafePointer<Float>?>?, _ signatures: UnsafePointer<UInt8>?,
    _ parametersOut: UnsafeMutablePointer<Float>?, _ count: Int64,
    _ accuracy: UnsafeMutablePointer<Double>?, _ loss: UnsafeMutablePointer<Double>?,
    _ evaluated: UnsafeMutablePointer<Int32>?,
    _ evaluate: EvaluationCallback?, _ context: UnsafeMutableRawPointer?,
    _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    guard let s = session(handle) else {
        report("no live run (a null handle)", message, capacity)
        return Status.badInput
    }
    let server = s.server
    let d = server.parameterCount
    guard messageCount >= 0 && messageCount <= 1 << 20 else {
        report("\(messageCount) messages is out of range", message, capacity)
        return Status.badInput
    }
    let m = Int(messageCount)
    guard m == 0 || (workers != nil && classes != nil && vectors != nil && signatures != nil),
        let parametersOut, count == Int64(d)
    else {
        report(
            "null message arrays, or an output buffer that does not hold the model's \(d) values", message, capacity)
        return Status.badInput
    }
    var messages: [LiveServer.Message] = []
    messages.reserveCapacity(m)
    let size = ClientMessageSignature.signatureSize
    for i in 0..<m {
        guard let v = vectors![i] else {
            report("message \(i) has a null vector", message, capacity)
            return Status.badInput
        }
        let signature = Array(UnsafeBufferPointer(start: signatures! + i * size, count: size))
        messages.append(
            .init(
                worker: Int(workers![i]), classIndex: Int(classes![i]),
                vector: UnsafeBufferPointer(start: v, count: d), signature: signature))
    }
    do {
        var evaluation: Evaluation?
        if let evaluate {
            func callerEvaluation(_ x: UnsafeBufferPointer<Float>) throws(LiveServerError) -> Evaluation {
                var accuracy = Double.nan
                var loss = Double.nan
                guard evaluate(x.baseAddress, Int64(x.count), &accuracy, &loss, context) == 0 else {
                    throw .input("round \(round): the caller's evaluation failed")
                }
                return Evaluation(loss: loss, accuracy: accuracy)
            }
            evaluation = try server.round(Int(round), messages: messages, evaluate: callerEvaluation)
        } else {
            evaluation = try server.round(Int(round), messages: messages)
        }
        server.parameters.withUnsafeBufferPointer { parametersOut.update(from: $0.baseAddress!, count: d) }
        evaluated?.pointee = evaluation == nil ? 0 : 1
        accuracy?.pointee = evaluation?.accuracy ?? .nan
        loss?.pointee = evaluation?.loss ?? .nan
        return Status.ok
    } catch {
        return status(of: error, message, capacity)
    }
}

@_cdecl("desgd_live_close")
public func desgdLiveClose(
    _ handle: UnsafeMutableRawPointer?, _ summary: UnsafeMutablePointer<CChar>?, _ summaryCapacity: Int64,
    _ message: UnsafeMutablePointer<CChar>?, _ capacity: Int64
) -> Int32 {
    guard let handle else {
        report("no live run (a null handle)", message, capacity)
        return Status.badInput
    }
    let s = Unmanaged<LiveSession>.fromOpaque(handle).takeRetainedValue()
    do {
        let statistics = try s.server.finish()
        let text =
            "{\"rounds\":\(s.server.nextRound),\"traceBytes\":\(statistics.traceBytes),"
            + "\"roundRecords\":\(statistics.roundRecords),\"keyframes\":\(statistics.keyframes)}"
        report(text, summary, summaryCapacity)
        return Status.ok
    } catch {
        return status(of: error, message, capacity)
    }
}
