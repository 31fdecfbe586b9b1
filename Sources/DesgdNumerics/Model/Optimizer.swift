/// The optimiser pieces shared by centralised training and the distributed simulation.
///
/// Conventions (docs/design.md §2): weight decay is added to the gradient before momentum,
/// g ← g + wd·x; momentum is the exponential moving average m ← β·m + (1−β)·g; the step is
/// x ← x − η·d for the update direction d.
public enum SGD {
    /// g ← g + wd·x.
    public static func addWeightDecay(_ gradient: UnsafeMutableBufferPointer<Float>,
                                      parameters: UnsafeBufferPointer<Float>,
                                      weightDecay wd: Float) {
        if wd != 0 { VectorMath.axpy(wd, parameters, gradient) }
    }

    /// m ← β·m + (1−β)·g.
    public static func updateMomentum(_ momentum: UnsafeMutableBufferPointer<Float>,
                                      gradient: UnsafeBufferPointer<Float>,
                                      beta: Float) {
        VectorMath.axpby(1 - beta, gradient, beta, momentum)
    }

    /// x ← x − η·d.
    public static func step(_ parameters: UnsafeMutableBufferPointer<Float>, direction: UnsafeBufferPointer<Float>,
                            learningRate: Float) {
        VectorMath.axpy(-learningRate, direction, parameters)
    }
}
