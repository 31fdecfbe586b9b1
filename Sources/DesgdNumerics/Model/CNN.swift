import Foundation

/// A mini-batch: sample indices into a data set, and whether labels are flipped y ↦ C−1−y (the
/// label-flip attack trains on flipped labels).
public struct MiniBatch: Sendable, Equatable {
    public var indices: [Int]
    public var flipLabels: Bool
    public init(indices: [Int], flipLabels: Bool = false) {
        self.indices = indices
        self.flipLabels = flipLabels
    }
}

/// The network of ``ModelArchitecture``: initialisation, batched forward and backward passes and
/// evaluation, on a flat parameter vector (see ``ParameterLayout``).
///
/// Implementation (``lossAndGradients(parameters:data:batches:executor:workspace:consume:)``):
/// the mini-batches of a round go through the model together, in three phases: convolutions per
/// batch, the fully connected layers over every sample at once, weight gradients per batch.
/// All products go through the chosen ``NumericBackend``; everything else is plain Swift with a
/// fixed operation order, so the result of a pass depends only on (parameters, batches, backend).
/// This is the engine's *numerics version 2* (desgd 0.8.0): version 1 (up to 0.7.0) ran every
/// batch through its own pass with dense backward products; the two agree to rounding.
///
/// Thread safety: a `CNN` is immutable; each concurrent pass needs its own ``CNNWorkspace``.
public struct CNN: Sendable {
    public let shape: CNNShape
    public let layout: ParameterLayout
    public let backend: NumericBackend

    /// `CNN(.lenet, backend:)`: desgd's networks by their sizes (``CNNShape/lenet``, ``CNNShape/small``).
    public init(_ shape: CNNShape, backend: NumericBackend) { self.init(shape: shape, backend: backend) }

    /// A network of any two-convolution shape (tests use tiny ones).
    public init(shape: CNNShape, backend: NumericBackend) {
        precondition(shape.side1 % 2 == 0 && shape.side2 % 2 == 0 && shape.side2 > 0, "pooling needs even sides")
        self.shape = shape
        self.layout = ParameterLayout(shape)
        self.backend = backend
    }

    public var parameterCount: Int { layout.count }

    /// Floats per kernel row of conv2's channels-last patch (k·conv1: 100 on lenet, 30 on small)
    /// rounded up to a multiple of 8: the conv2 backward works on whole vectors of padded rows.
    var conv2RowStride: Int { (shape.kernel * shape.conv1 + 7) / 8 * 8 }

    /// PyTorch's default initialisation (`kaiming_uniform_(a=√5)` for weights, the same bound for
    /// biases): every parameter of a layer ~ U(−1/√fan_in, 1/√fan_in), drawn in layout order from
    /// `RandomStream(seed, .initialization, worker: tensor index)`.
    public func initialParameters(seed: UInt64) -> [Float] {
        var p = [Float](repeating: 0, count: layout.count)
        for (t, tensor) in layout.tensors.enumerated() {
            var r = RandomStream(seed: seed, purpose: .initialization, worker: t)
            let bound = Float(1.0 / Double(tensor.fanIn).squareRoot())
            for i in tensor.range { p[i] = r.nextFloat(in: -bound, bound) }
        }
        return p
    }

    // MARK: Passes

    /// Rows of each product of the fully connected phase. A fixed decomposition: which samples
    /// share a product never depends on the thread count.
    static let denseChunkRows = 256
    /// Samples of one batched pass at most: a round with more (more workers or larger batches
    /// than the paper's 3 000) goes through the model in consecutive groups of whole batches,
    /// fixed by the batches' sizes, so that the round store (about 26 KB per sample on lenet)
    /// stays near 100 MB whatever the configuration.
    static let passRows = 4_096
    /// Samples per forward-only group of ``evaluate(parameters:data:threads:batchSize:workspace:)``
    /// (bounds its memory whatever the size of the data set).
    static let evaluationGroupRows = 2_000

    /// The mean cross-entropy loss of each mini-batch and its gradient with respect to the
    /// parameters, all at the same parameters, in one batched pass (docs/design.md §17):
    ///
    /// 1. *Convolutions, per mini-batch* (parallel over batches): conv1 as one im2col and one GEMM
    ///    (W1 · col1), ReLU + max-pool into a channels-last pool1, conv2 as one channels-last
    ///    im2col and one GEMM (col2 · W2ᵀ), ReLU + max-pool into the batch's rows of `flat`.
    /// 2. *Fully connected layers, over every sample at once* (parallel over fixed chunks of
    ///    ``denseChunkRows`` rows): fc1 + ReLU, fc2, softmax cross-entropy with each sample
    ///    weighted by 1/B of its batch, then the input gradients dHidden = dLogits·W4 and
    ///    dFlat = dHidden·W3. These are the products that share the model across batches.
    /// 3. *Weight gradients, per mini-batch* (parallel over batches): fc2 and fc1 as
    ///    dLogitsᵀ·hidden and dHiddenᵀ·flat over the batch's rows; conv2's weight and input
    ///    gradients from the positions max-pooling kept (the others have a zero gradient, so the
    ///    dense products would only add zeros): each kept output (c, y, x) with gradient g adds
    ///    g·patch to conv2's weight gradient and g·W2[c] to the gradient of pool1; then pool1's
    ///    backward and conv1's weight gradient as one GEMM (dOut1 · col1ᵀ).
    ///
    /// `consume(i, gradient, loss)` receives batch i's gradient (in the parameter layout) and
    /// loss on the thread that finished it; the buffer is reused after it returns.
    ///
    /// Determinism: every product and sum has a fixed order given (parameters, batches,
    /// backend); the thread count only schedules the pieces.
    public func lossAndGradients(parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batches: [MiniBatch],
                                 executor: ParallelExecutor, workspace ws: CNNWorkspace,
                                 consume: @Sendable (_ batch: Int, _ gradient: UnsafeMutableBufferPointer<Float>,
                                     _ loss: Float) -> Void) {
        let p = SendableBuffer(parameters)
        var first = 0
        while first < batches.count {
            // The next group: consecutive batches of at most passRows samples (a larger batch alone).
            var end = first + 1, rows = batches[first].indices.count
            while end < batches.count && rows + batches[end].indices.count <= Self.passRows {
                rows += batches[end].indices.count
                end += 1
            }
            let group = Array(batches[first ..< end]), base = first
            let offsets = forward(parameters, data: data, batches: group, executor: executor, workspace: ws,
                backward: true)
            executor.forEach(group.count) { i, slot in
                let s = ws[slot]
                let loss = self.backward(p.buffer.baseAddress!, data: data, batch: group[i], row: offsets[i], slot: s,
                    workspace: ws)
                consume(base + i, UnsafeMutableBufferPointer(start: s.gradient, count: self.layout.count), loss)
            }
            first = end
        }
    }

    /// Mean cross-entropy loss of one batch and its gradient (written to `gradient`, which is
    /// overwritten): ``lossAndGradients(parameters:data:batches:executor:workspace:consume:)`` of
    /// a single batch on the calling thread. Returns the loss.
    @discardableResult
    public func lossAndGradient(parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batch: MiniBatch,
                                gradient: UnsafeMutableBufferPointer<Float>, workspace ws: CNNWorkspace) -> Float {
        precondition(gradient.count == layout.count)
        let out = SendablePointer(gradient.baseAddress!)
        let lossOut = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        defer { lossOut.deallocate() }
        let l = SendablePointer(lossOut)
        lossAndGradients(parameters: parameters, data: data, batches: [batch], executor: ParallelExecutor(threads: 1),
            workspace: ws) { _, g, loss in
            out.base.update(from: g.baseAddress!, count: g.count)
            l.base.pointee = loss
        }
        return lossOut.pointee
    }

    /// Convenience for arrays.
    @discardableResult
    public func lossAndGradient(parameters: [Float], data: LabeledImages, batch: MiniBatch, gradient: inout [Float],
                                workspace: CNNWorkspace) -> Float {
        parameters.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { g in
                lossAndGradient(parameters: p, data: data, batch: batch, gradient: g, workspace: workspace)
            }
        }
    }

    /// Test loss and accuracy over a whole data set, in batches of `batchSize` (the convolution
    /// phase's unit) taken in data set order, forward only, in groups of at most
    /// ``evaluationGroupRows`` samples. Per-sample losses are summed in data set order, so the
    /// result does not depend on the thread count.
    public func evaluate(parameters: [Float], data: LabeledImages, threads: Int = 1, batchSize: Int = 250,
                         workspace: CNNWorkspace? = nil) -> Evaluation {
        let ws = workspace ?? CNNWorkspace(model: self, slots: threads)
        let executor = ParallelExecutor(threads: threads)
        let perGroup = max(1, Self.evaluationGroupRows / batchSize) * batchSize
        var loss = 0.0, correct = 0
        var start = 0
        while start < data.count {
            let end = min(data.count, start + perGroup)
            let batches = stride(from: start, to: end, by: batchSize).map {
                MiniBatch(indices: Array($0 ..< min(end, $0 + batchSize)))
            }
            _ = parameters.withUnsafeBufferPointer {
                forward($0, data: data, batches: batches, executor: executor, workspace: ws)
            }
            let C = shape.classes
            for r in 0 ..< (end - start) {
                loss += ws.sampleLoss[r]
                let row = ws.logits + r * C
                var best = 0
                for c in 1..<C where row[c] > row[best] { best = c }
                if best == Int(ws.labels[r]) { correct += 1 }
            }
            start = end
        }
        return Evaluation(loss: loss / Double(max(1, data.count)),
            accuracy: Double(correct) / Double(max(1, data.count)))
    }

    /// Phases 1 and 2 of a pass: logits, labels and per-sample losses of every sample in the
    /// workspace's store, and with `backward` what phase 3 needs (pool1 and the argmaxes kept,
    /// dLogits, dHidden, dFlat). Returns the first row of each batch (and the total).
    @discardableResult
    func forward(_ parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batches: [MiniBatch],
                 executor: ParallelExecutor,
                 workspace ws: CNNWorkspace, backward: Bool = false) -> [Int] {
        precondition(parameters.count == layout.count && data.imageSize == shape.imageSize
            && data.classes == shape.classes,
                     "parameters or images do not fit the model")
        precondition(batches.allSatisfy { b in
            !b.indices.isEmpty && b.indices.allSatisfy { $0 >= 0 && $0 < data.count } },
                     "a mini-batch is empty or names a sample outside the data set")
        let offsets = Self.rowOffsets(batches)
        let rows = offsets.last!
        guard rows > 0 else { return offsets }
        ws.reserve(rows: rows, batch: batches.map(\.indices.count).max()!, threads: executor.threads,
            backward: backward)
        let p = SendableBuffer(parameters)
        permuteConvolutionWeights(parameters.baseAddress!, into: ws.conv2Weights, padded: ws.conv2PaddedWeights)
        executor.forEach(batches.count) { i, slot in
            self.convolutionsForward(p.buffer.baseAddress!, data: data, batch: batches[i], row: offsets[i],
                                     slot: ws[slot],
                                     workspace: ws, keep: backward)
        }
        let chunks = (rows + Self.denseChunkRows - 1) / Self.denseChunkRows
        executor.forEach(chunks) { j, _ in
            let lo = j * Self.denseChunkRows, hi = min(rows, lo + Self.denseChunkRows)
            self.denseForward(p.buffer.baseAddress!, rows: lo ..< hi, workspace: ws)
            self.softmaxCrossEntropy(rows: lo ..< hi, workspace: ws, wantGradient: backward)
            if backward { self.denseBackward(p.buffer.baseAddress!, rows: lo ..< hi, workspace: ws) }
        }
        return offsets
    }

    /// First row of each batch in the store, and the total.
    static func rowOffsets(_ batches: [MiniBatch]) -> [Int] {
        var offsets = [0]
        for b in batches { offsets.append(offsets.last! + b.indices.count) }
        return offsets
    }
}

/// Test loss and accuracy.
public struct Evaluation: Sendable, Codable, Equatable {
    public var loss: Double
    public var accuracy: Double
    public init(loss: Double, accuracy: Double) {
        self.loss = loss
        self.accuracy = accuracy
    }
}

/// An `UnsafeBufferPointer` that `@Sendable` work items may share for reading.
public struct SendableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeBufferPointer<T>
    public init(_ buffer: UnsafeBufferPointer<T>) { self.buffer = buffer }
}
