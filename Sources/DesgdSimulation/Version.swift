/// The program's version, written into trace headers and printed by `--version`.
public enum DesgdVersion {
    public static let current = "0.15.0"
}

/// The version of the engine's arithmetic: which operations, in which order, compute a round.
/// Two runs of the same configuration, seed and backend kernel give the same bits exactly when
/// their numerics versions are equal; traces record it (header key `numerics`, format 1.2): a
/// trace's rounds can be recomputed bit for bit only by an engine of the same version (on the
/// same backend kernel). Checking recorded aggregates (`desgd-replay --verify`) does not depend
/// on it.
///
/// - 1 (desgd ≤ 0.7.0; traces of format 1.0 and 1.1): every mini-batch through its own forward
///   and backward pass, dense backward products.
/// - 2 (desgd 0.8.0): a round's mini-batches through one batched pass
///   (``CNN/lossAndGradients(parameters:data:batches:executor:workspace:consume:)``),
///   bias after max-pooling, conv2's backward from the outputs max-pooling kept.
public enum SimulationNumerics {
    public static let current = 2
    /// What a trace without the key was computed with.
    public static let beforeFormat1_2 = 1
}
