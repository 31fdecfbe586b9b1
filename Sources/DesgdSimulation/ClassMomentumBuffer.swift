import DesgdNumerics

/// The server's global class-momentum buffer M of DeSGD (paper, eq. 14–15).
///
/// M holds one vector m_g^c per class, all zero at the start (Algorithm 1, line 2). Each round the
/// server reads the average m̄_t = (1/|M|) Σ_c m_g^c (eq. 14) and, after the model update, refreshes
/// the classes it aggregated, m_g^c ← m̂_t^c, and decays the others, m_g^c ← β·m_g^c (eq. 15).
/// The order — average, update the model, then refresh the buffer — is Algorithm 1's (lines 16–18),
/// so m̄_t is built from the buffer as it stood before round t.
public final class ClassMomentumBuffer: @unchecked Sendable {
    public let classes: Int
    public let decay: Float
    let store: VectorStore

    public init(classes: Int, dimension: Int, decay: Float) {
        self.classes = classes
        self.decay = decay
        store = VectorStore(count: classes, dimension: dimension)
    }

    /// m̄ = (1/C) Σ_c m_g^c (eq. 14), accumulated in class order, written to `out`.
    public func average(into out: UnsafeMutableBufferPointer<Float>) {
        VectorMath.fill(out, with: 0)
        let w = 1 / Float(classes)
        for c in 0..<classes { VectorMath.axpy(w, store.readRow(c), out) }
    }

    /// Eq. 15: m_g^c ← m̂^c for the refreshed classes, m_g^c ← β·m_g^c for the others.
    public func refresh(_ aggregates: [Int: [Float]]) {
        for c in 0..<classes {
            if let a = aggregates[c] {
                _ = store.row(c).update(fromContentsOf: a)
            } else if decay != 1 {
                VectorMath.scale(store.row(c), by: decay)
            }
        }
    }

    /// Sets m_g^c (restoring a recorded buffer).
    public func set(_ c: Int, to value: [Float]) {
        _ = store.row(c).update(fromContentsOf: value)
    }

    /// A copy of m_g^c.
    public func entry(_ c: Int) -> [Float] { store.array(c) }
}
