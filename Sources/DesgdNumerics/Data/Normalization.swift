/// The input normalisation of a data set: every pixel x (scaled to [0, 1]) is replaced by
/// (x − mean) / std, with `mean` and `std` the mean and standard deviation of *all pixels of the
/// training split* (one scalar pair, as torchvision's `Normalize((0.2860,), (0.3530,))` in the
/// PyTorch scripts of this literature). The same map is applied to the test split, so test data never
/// influences it.
///
/// Every ``Dataset`` built by ``Dataset/fashionMNIST(directory:)`` or
/// ``Dataset/synthetic(trainCount:testCount:seed:noise:)``
/// is normalised this way; the statistics are recorded in ``DatasetProvenance/normalization``.
/// On Fashion-MNIST they are mean 0.28604, std 0.35302.
///
/// Determinism: the statistics are computed in Double in storage order (two passes: the mean, then
/// the mean squared deviation, i.e. the population standard deviation), and each pixel is mapped in
/// Double and rounded once to Float, so the same pixels give the same bits on any machine.
public struct InputNormalization: Sendable, Codable, Equatable {
    public var mean: Double
    public var std: Double

    public init(mean: Double, std: Double) {
        precondition(std > 0 && std.isFinite && mean.isFinite, "normalisation needs a finite mean and a positive std")
        self.mean = mean
        self.std = std
    }

    /// The mean and population standard deviation of every pixel of `images`. A constant image set
    /// (std 0) gets std 1, so that the map is a pure shift.
    ///
    /// Complexity: two sequential passes over the pixels.
    public static func statistics(of images: LabeledImages) -> InputNormalization {
        let px = images.pixels
        precondition(!px.isEmpty, "normalisation statistics of an empty data set")
        var sum = 0.0
        for x in px { sum += Double(x) }
        let mean = sum / Double(px.count)
        var squares = 0.0
        for x in px { let d = Double(x) - mean; squares += d * d }
        let std = (squares / Double(px.count)).squareRoot()
        return InputNormalization(mean: mean, std: std > 0 ? std : 1)
    }

    /// `images` with every pixel x replaced by (x − mean) / std (computed in Double, rounded once).
    public func apply(to images: LabeledImages) -> LabeledImages {
        let (m, s) = (mean, std)
        return LabeledImages(count: images.count, height: images.height, width: images.width, classes: images.classes,
                             pixels: images.pixels.map { Float((Double($0) - m) / s) }, labels: images.labels)
    }
}
