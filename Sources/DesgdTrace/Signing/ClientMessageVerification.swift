import DesgdNumerics

/// The outcome of checking every recorded message of a live federation's trace against its client's
/// registered key (FORMAT.md §5.3.1): what makes "the server received exactly these messages" a
/// claim the clients' keys prove, not the server's word.
public struct ClientMessageReport: Sendable, Codable, Equatable {
    /// Messages whose signature verified.
    public var verified = 0
    /// Messages no client signed: Byzantine messages the server's attack crafted (they are marked
    /// Byzantine; nobody's key vouches for them).
    public var craftedByServer = 0
    /// Rounds recorded without their vectors, whose messages cannot be checked.
    public var roundsWithoutVectors = 0
    /// Rounds that could not be read.
    public var unreadableRounds = 0
    /// Messages whose signature does not verify under the registered key.
    public var failed = 0
    /// The first failures, as (round, class, worker).
    public var failures: [Failure] = []
    /// The registered clients: worker and key fingerprint.
    public var clients: [Client] = []

    public struct Failure: Sendable, Codable, Equatable {
        public var round: Int
        public var classIndex: Int
        public var worker: Int
    }

    public struct Client: Sendable, Codable, Equatable {
        public var worker: Int
        public var node: String
        public var fingerprint: String
    }

    /// At most this many failures are listed (all are counted).
    public static let listedFailures = 20

    public var passed: Bool { failed == 0 && unreadableRounds == 0 }

    /// One line: what verified and what did not.
    public var summary: String {
        var parts = ["\(verified) client messages verified against \(clients.count) registered keys"]
        if craftedByServer > 0 {
            parts.append("\(craftedByServer) crafted by the server's attack (unsigned, Byzantine)")
        }
        if roundsWithoutVectors > 0 { parts.append("\(roundsWithoutVectors) rounds without vectors not checked") }
        if unreadableRounds > 0 { parts.append("\(unreadableRounds) rounds unreadable") }
        if failed > 0 {
            let first =
                failures.first.map { " (first: round \($0.round), class \($0.classIndex), worker \($0.worker))" } ?? ""
            parts.append("\(failed) FAIL their client's signature\(first)")
        }
        return parts.joined(separator: "; ")
    }
}

public enum ClientMessageVerification {
    /// Checks every message of every round with vectors; nil when the trace is not a live
    /// federation's. The run tag is the header record's stored digest: a header rewritten after the
    /// clients signed changes it, and then no message verifies.
    public static func verify(_ reader: TraceReader, progress: (Int) -> Void = { _ in }) -> ClientMessageReport? {
        guard let engine = reader.header.engine else { return nil }
        var report = ClientMessageReport()
        var keys: [Int: TracePublicKey] = [:]
        for node in engine.nodes {
            // validate() checked every key; a key that still fails to parse verifies nothing.
            if let raw = Hex.decode(node.publicKey, count: ClientMessageSignature.publicKeySize),
                let key = try? TracePublicKey(raw: raw)
            {
                keys[node.worker] = key
                report.clients.append(.init(worker: node.worker, node: node.node, fingerprint: key.fingerprint))
            }
        }
        guard let tagText = try? reader.storedDigest(ofRecord: 0),
            let runTag = Hex.decode(tagText, count: 32)
        else {
            report.unreadableRounds = reader.roundCount
            return report
        }
        for t in reader.rounds {
            defer { progress(t + 1 - reader.firstRound) }
            guard let round = try? reader.round(t) else {
                report.unreadableRounds += 1
                continue
            }
            guard round.hasVectors else {
                report.roundsWithoutVectors += 1
                continue
            }
            for (k, a) in round.aggregations.enumerated() {
                guard let messages = try? round.messages(k), let signatures = a.signatures else {
                    report.unreadableRounds += 1
                    break
                }
                for (row, sender) in a.senders.enumerated() {
                    guard let text = signatures[row] else {
                        report.craftedByServer += 1
                        continue
                    }
                    let valid =
                        Hex.decode(text, count: ClientMessageSignature.signatureSize).map { signature in
                            messages.storage.withUnsafeBufferPointer { s in
                                let d = messages.columns
                                let vector = UnsafeBufferPointer(rebasing: s[row * d..<(row + 1) * d])
                                return keys[sender.worker].map {
                                    ClientMessageSignature.verifies(
                                        signature, key: $0, runTag: runTag, round: t,
                                        classIndex: a.classIndex, worker: sender.worker, vector: vector)
                                } ?? false
                            }
                        } ?? false
                    if valid {
                        report.verified += 1
                    } else {
                        report.failed += 1
                        if report.failures.count < ClientMessageReport.listedFailures {
                            report.failures.append(.init(round: t, classIndex: a.classIndex, worker: sender.worker))
                        }
                    }
                }
            }
        }
        return report
    }
}
