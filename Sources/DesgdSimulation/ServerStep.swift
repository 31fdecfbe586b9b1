import DesgdNumerics

/// The server's side of a round once the aggregates are known: eq. 7 (mean over S_t), eq. 14
/// (buffer average), eq. 16 (the update), the exact model step, and eq. 15 (buffer refresh); or, in
/// the baseline, the aggregate itself, with the server-momentum EMA in the global-momentum variant.
///
/// One implementation serves the engine and replay's `--verify`, which restores it from a keyframe
/// and re-applies recorded aggregates: the same operations in the same order give the same bits.
/// O(C·d) per round (the buffer average).
public final class ServerStep {
    public let config: SimulationConfig
    public let dimension: Int
    /// The global class-momentum buffer M (DeSGD only).
    public let buffer: ClassMomentumBuffer?
    /// The server momentum (global-momentum variant only, else empty).
    public private(set) var serverMomentum: [Float]

    /// The state at the start of a run: M = 0, server momentum 0.
    public init(config: SimulationConfig, dimension d: Int) {
        self.config = config
        dimension = d
        buffer = config.mode == .desgd
            ? ClassMomentumBuffer(classes: config.classes, dimension: d, decay: config.effectiveBufferDecay) : nil
        serverMomentum = config.momentum == .global ? [Float](repeating: 0, count: d) : []
    }

    /// The state recorded in a snapshot (a keyframe). Returns nil when the snapshot's shapes do not
    /// fit the configuration.
    public convenience init?(config: SimulationConfig, dimension d: Int, restoring s: ServerSnapshot) {
        self.init(config: config, dimension: d)
        if let buffer {
            guard s.classMomenta.count == buffer.classes, s.classMomenta.allSatisfy({ $0.count == d }) else {
                return nil
            }
            for (c, m) in s.classMomenta.enumerated() { buffer.set(c, to: m) }
        } else if !s.classMomenta.isEmpty { return nil }
        guard s.serverMomentum.count == serverMomentum.count else { return nil }
        serverMomentum = s.serverMomentum
    }

    /// Applies one round: computes the update direction Δ from `aggregates` (class, m̂^c) in the
    /// order given, steps `parameters` (x ← x − η·Δ, taken so that x_{t+1} = fl(x_t + diff)),
    /// refreshes the buffer, and returns Δ and the diff.
    public func apply(aggregates: [(classIndex: Int, aggregate: [Float])],
                      to parameters: inout [Float]) -> (update: [Float], diff: [Float]) {
        let d = dimension
        // Eq. 7 (average over S_t), eq. 14 and eq. 16 for DeSGD.
        var update = [Float](repeating: 0, count: d)
        update.withUnsafeMutableBufferPointer { u in
            let w = 1 / Float(aggregates.count)
            for a in aggregates { a.aggregate.withUnsafeBufferPointer { VectorMath.axpy(w, $0, u) } }
            if let buffer {
                var average = [Float](repeating: 0, count: d)
                average.withUnsafeMutableBufferPointer { buffer.average(into: $0) }
                average.withUnsafeBufferPointer { VectorMath.axpby(config.gamma, $0, 1 - config.gamma, u) }
            }
        }
        if config.momentum == .global {
            serverMomentum.withUnsafeMutableBufferPointer { m in
                update.withUnsafeBufferPointer { SGD.updateMomentum(m, gradient: $0, beta: config.beta) }
            }
            update = serverMomentum
        }
        // The step x ← x − η·u, taken so that the recorded diff is exactly what was applied:
        // q = fl(x − η·u), Δx = fl(q − x), x ← fl(x + Δx). Δx is the true difference q − x (exact
        // whenever |x| ≥ |η·u|, FastTwoSum), so x_{t+1} = q nearly always, and x_{t+1} is rebuilt bit
        // for bit from x_t and Δx by anyone. Δx also carries only the bits that changed, which makes
        // it compress like the model diff it is (0.57 of raw against 0.87 for fl(−η·u)).
        var diff = parameters
        diff.withUnsafeMutableBufferPointer { q in
            update.withUnsafeBufferPointer { SGD.step(q, direction: $0, learningRate: config.learningRate) }
            parameters.withUnsafeBufferPointer { x in VectorMath.subtract(UnsafeBufferPointer(q), x, into: q) }
        }
        parameters.withUnsafeMutableBufferPointer { p in diff.withUnsafeBufferPointer { VectorMath.add($0, to: p) } }
        buffer?.refresh(Dictionary(uniqueKeysWithValues: aggregates.map { ($0.classIndex, $0.aggregate) }))
        return (update, diff)
    }

    /// Sets the class-momentum buffer and the server momentum (a checkpoint's); false, and nothing
    /// changed, when their shapes do not fit the configuration.
    public func restore(classMomenta: [[Float]], serverMomentum: [Float]) -> Bool {
        let d = dimension
        guard classMomenta.count == (buffer?.classes ?? 0), classMomenta.allSatisfy({ $0.count == d }),
              serverMomentum.count == self.serverMomentum.count else { return false }
        for (c, m) in classMomenta.enumerated() { buffer?.set(c, to: m) }
        self.serverMomentum = serverMomentum
        return true
    }

    /// m_g^c for every class (empty outside DeSGD).
    public var classMomenta: [[Float]] { buffer.map { b in (0..<b.classes).map { b.entry($0) } } ?? [] }
}
