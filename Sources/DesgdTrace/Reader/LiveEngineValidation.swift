import DesgdNumerics
import DesgdRobust

/// What a reader checks of a live federation's header `engine` and of its rounds' client signatures
/// (FORMAT.md §5.1.2, §5.3.1, §6 item 8), before anything prints or verifies them.
extension TraceHeader {
    func validateEngine(_ engine: LiveEngine, signature: TraceParsing.Signature) throws(ParseFailure) {
        guard signature.major == 1 && signature.minor >= 5 else {
            throw ParseFailure(
                "engine appears in a file of format \(signature.major).\(signature.minor) (it is format 1.5)")
        }
        guard fork == nil else {
            throw ParseFailure("engine and fork together: a live federation's trace is never a fork")
        }
        let limit = LiveEngine.maximumText
        for (what, text) in [
            ("name", engine.name), ("version", engine.version), ("training", engine.training),
            ("data", engine.data),
        ] where text.utf8.count > limit {
            throw ParseFailure("engine.\(what) is longer than \(limit) bytes")
        }
        // The clients' model is the header's: the same shapes in the same order (desgd's layout of the
        // configured model, or the clients' own laid end to end, ContentValidation's validateModel).
        guard engine.model.count == model.tensors.count,
            zip(engine.model, model.tensors).allSatisfy({ $0.shape == $1.shape && $0.name.utf8.count <= limit })
        else {
            throw ParseFailure(
                "engine.model does not have the tensor shapes of the header's model (\(config.model.rawValue)), "
                    + "in order")
        }
        let n = config.honestWorkers
        let f = config.byzantineWorkers
        let clientCrafted = (try? AttackCatalogue.makeAttack(config.attack))?.ownMomentum != OwnMomentumNeed.none
        let expected = Array(0..<n) + (clientCrafted ? Array(n..<n + f) : [])
        guard engine.nodes.count <= LiveEngine.maximumNodes, engine.nodes.map(\.worker) == expected else {
            throw ParseFailure(
                "engine.nodes must list the workers \(clientCrafted ? "0..<\(n + f)" : "0..<\(n)") in order, "
                    + "each once (the clients that send messages)")
        }
        for (k, node) in engine.nodes.enumerated() {
            guard node.node.utf8.count <= limit else {
                throw ParseFailure("engine.nodes[\(k)].node is longer than \(limit) bytes")
            }
            guard let raw = Hex.decode(node.publicKey, count: ClientMessageSignature.publicKeySize),
                Ed25519Strictness.publicKeyProblem(raw) == nil
            else {
                throw ParseFailure(
                    "engine.nodes[\(k)].publicKey is not a valid Ed25519 key in 64 lowercase hex digits")
            }
        }
    }
}

extension AggregationRecord {
    /// Signatures are a live round's, one per sender: present exactly for the senders that are
    /// registered clients, as 128 lowercase hex digits.
    func validateSignatures(against h: TraceHeader, index k: Int, hasVectors: Bool) throws(ParseFailure) {
        guard let engine = h.engine else {
            if signatures != nil {
                throw ParseFailure("aggregation \(k) has signatures, but the header names no live engine")
            }
            return
        }
        guard let signatures else {
            if hasVectors { throw ParseFailure("aggregation \(k) of a live federation's round has no signatures") }
            return
        }
        guard signatures.count == senders.count else {
            throw ParseFailure("aggregation \(k) has \(signatures.count) signatures for \(senders.count) senders")
        }
        let signed = Set(engine.nodes.map(\.worker))
        for (s, signature) in zip(senders, signatures) {
            switch (signed.contains(s.worker), signature) {
            case (true, let text?):
                guard Hex.decode(text, count: ClientMessageSignature.signatureSize) != nil else {
                    throw ParseFailure(
                        "aggregation \(k): worker \(s.worker)'s signature is not 128 lowercase hex digits")
                }
            case (true, nil): throw ParseFailure("aggregation \(k): worker \(s.worker)'s message is not signed")
            case (false, .some):
                throw ParseFailure("aggregation \(k): worker \(s.worker) is no registered client but signed")
            case (false, nil): break
            }
        }
    }
}
