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

    public init(_ architecture: ModelArchitecture, backend: NumericBackend) {
        self.init(shape: architecture.shape, backend: backend)
    }

    /// A network of any two-convolution shape (tests use tiny ones).
    public init(shape: CNNShape, backend: NumericBackend) {
        precondition(shape.side1 % 2 == 0 && shape.side2 % 2 == 0 && shape.side2 > 0, "pooling needs even sides")
        self.shape = shape
        self.layout = ParameterLayout(shape)
        self.backend = backend
    }

    public var parameterCount: Int { layout.count }

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
    /// Samples per forward-only group of ``evaluate(parameters:data:threads:batchSize:workspace:)``
    /// (bounds its memory whatever the size of the data set).
    static let evaluationGroupRows = 2_000

    /// The mean cross-entropy loss of each mini-batch and its gradient with respect to the
    /// parameters, all at the same parameters, in one batched pass (PRODUCT.md §7):
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
                                 consume: @Sendable (_ batch: Int, _ gradient: UnsafeMutableBufferPointer<Float>, _ loss: Float) -> Void) {
        precondition(parameters.count == layout.count && data.imageSize == shape.imageSize, "parameters or images do not fit the model")
        let offsets = Self.rowOffsets(batches)
        let rows = offsets.last!
        guard rows > 0 else { return }
        ws.reserve(rows: rows, batch: batches.map(\.indices.count).max()!, threads: executor.threads, backward: true)
        let p = SendableBuffer(parameters)
        permuteConvolutionWeights(parameters.baseAddress!, into: ws.conv2Weights)
        executor.forEach(batches.count) { i, slot in
            self.convolutionsForward(p.buffer.baseAddress!, data: data, batch: batches[i], row: offsets[i], slot: ws[slot],
                                     workspace: ws, keep: true)
        }
        let chunks = (rows + Self.denseChunkRows - 1) / Self.denseChunkRows
        executor.forEach(chunks) { j, _ in
            let lo = j * Self.denseChunkRows, hi = min(rows, lo + Self.denseChunkRows)
            self.denseForward(p.buffer.baseAddress!, rows: lo ..< hi, workspace: ws)
            self.softmaxCrossEntropy(rows: lo ..< hi, workspace: ws, wantGradient: true)
            self.denseBackward(p.buffer.baseAddress!, rows: lo ..< hi, workspace: ws)
        }
        executor.forEach(batches.count) { i, slot in
            let s = ws[slot]
            let loss = self.backward(p.buffer.baseAddress!, data: data, batch: batches[i], row: offsets[i], slot: s, workspace: ws)
            consume(i, UnsafeMutableBufferPointer(start: s.gradient, count: self.layout.count), loss)
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
        lossAndGradients(parameters: parameters, data: data, batches: [batch], executor: ParallelExecutor(threads: 1), workspace: ws) { _, g, loss in
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
            let batches = stride(from: start, to: end, by: batchSize).map { MiniBatch(indices: Array($0 ..< min(end, $0 + batchSize))) }
            parameters.withUnsafeBufferPointer { forward($0, data: data, batches: batches, executor: executor, workspace: ws) }
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
        return Evaluation(loss: loss / Double(max(1, data.count)), accuracy: Double(correct) / Double(max(1, data.count)))
    }

    /// The forward phases (1 and the first half of 2) of a pass: logits, labels and per-sample
    /// losses of every sample in the workspace's store, nothing kept for a backward pass.
    func forward(_ parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batches: [MiniBatch], executor: ParallelExecutor,
                 workspace ws: CNNWorkspace) {
        precondition(parameters.count == layout.count && data.imageSize == shape.imageSize, "parameters or images do not fit the model")
        let offsets = Self.rowOffsets(batches)
        let rows = offsets.last!
        guard rows > 0 else { return }
        ws.reserve(rows: rows, batch: batches.map(\.indices.count).max()!, threads: executor.threads, backward: false)
        let p = SendableBuffer(parameters)
        permuteConvolutionWeights(parameters.baseAddress!, into: ws.conv2Weights)
        executor.forEach(batches.count) { i, slot in
            self.convolutionsForward(p.buffer.baseAddress!, data: data, batch: batches[i], row: offsets[i], slot: ws[slot],
                                     workspace: ws, keep: false)
        }
        let chunks = (rows + Self.denseChunkRows - 1) / Self.denseChunkRows
        executor.forEach(chunks) { j, _ in
            let lo = j * Self.denseChunkRows, hi = min(rows, lo + Self.denseChunkRows)
            self.denseForward(p.buffer.baseAddress!, rows: lo ..< hi, workspace: ws)
            self.softmaxCrossEntropy(rows: lo ..< hi, workspace: ws, wantGradient: false)
        }
    }

    /// First row of each batch in the store, and the total.
    static func rowOffsets(_ batches: [MiniBatch]) -> [Int] {
        var offsets = [0]
        for b in batches { offsets.append(offsets.last! + b.indices.count) }
        return offsets
    }

    // MARK: Phase 1: convolutions

    /// conv2's weights [c2][c1][k][k] → [c2][k][k][c1], the order of a channels-last im2col row.
    func permuteConvolutionWeights(_ p: UnsafePointer<Float>, into w: UnsafeMutablePointer<Float>) {
        let s = shape, k = s.kernel, w2 = p + layout.tensors[2].offset
        for co in 0..<s.conv2 { for ci in 0..<s.conv1 { for t in 0..<(k * k) {
            w[(co * k * k + t) * s.conv1 + ci] = w2[(co * s.conv1 + ci) * k * k + t]
        } } }
    }

    /// The batch's images, labels (flipped y ↦ C−1−y for label-flip) and 1/B weights.
    func gather(data: LabeledImages, batch: MiniBatch, into input: UnsafeMutablePointer<Float>) {
        let size = shape.imageSize
        data.pixels.withUnsafeBufferPointer { px in
            for (i, s) in batch.indices.enumerated() {
                (input + i * size).update(from: px.baseAddress! + s * size, count: size)
            }
        }
    }

    func convolutionsForward(_ p: UnsafePointer<Float>, data: LabeledImages, batch: MiniBatch, row: Int, slot: CNNWorkspace.Slot,
                             workspace ws: CNNWorkspace, keep: Bool) {
        let s = shape, k = s.kernel, b = batch.indices.count
        let w1 = p + layout.tensors[0].offset, b1 = p + layout.tensors[1].offset, b2 = p + layout.tensors[3].offset
        gather(data: data, batch: batch, into: slot.input)
        for (i, sample) in batch.indices.enumerated() {
            let y = data.labels[sample]
            ws.labels[row + i] = batch.flipLabels ? UInt8(data.classes - 1) - y : y
            ws.sampleWeight[row + i] = 1 / Float(b)
        }
        // conv1: out1[c1][B·side1²] = W1 · col1.
        let n1 = b * s.side1 * s.side1, k1 = s.inChannels * k * k
        Im2Col.forward(slot.input, channels: s.inChannels, batch: b, side: s.inputSize, kernel: k, into: slot.col1)
        backend.sgemm(.none, .none, m: s.conv1, n: n1, k: k1, alpha: 1, a: w1, lda: k1, b: slot.col1, ldb: n1,
                      beta: 0, c: slot.out1, ldc: n1)
        let p1 = s.pooled1 * s.pooled1 * s.conv1
        let pool1 = keep ? ws.pool1 + row * p1 : slot.pool1, arg1 = keep ? ws.arg1 + row * p1 : slot.arg1
        ReLUMaxPool2.forward(slot.out1, channels: s.conv1, batch: b, side: s.side1, bias: b1, into: pool1, argmax: arg1)
        // conv2: out2[B·side2²][c2] = col2 · W2ᵀ, channels last.
        let n2 = b * s.side2 * s.side2, k2 = k * k * s.conv1
        ChannelsLastIm2Col.forward(pool1, batch: b, side: s.pooled1, channels: s.conv1, kernel: k, into: slot.col2)
        backend.sgemm(.none, .transposed, m: n2, n: s.conv2, k: k2, alpha: 1, a: slot.col2, lda: k2, b: ws.conv2Weights, ldb: k2,
                      beta: 0, c: slot.out2, ldc: s.conv2)
        ReLUMaxPool2.forwardChannelsLast(slot.out2, batch: b, side: s.side2, channels: s.conv2, bias: b2,
                                         into: ws.flat + row * s.flat, argmax: keep ? ws.arg2 + row * s.flat : slot.arg2)
    }

    // MARK: Phase 2: fully connected layers over every sample

    func denseForward(_ p: UnsafePointer<Float>, rows: Range<Int>, workspace ws: CNNWorkspace) {
        let s = shape, m = rows.count, r = rows.lowerBound
        let w3 = p + layout.tensors[4].offset, b3 = p + layout.tensors[5].offset
        let w4 = p + layout.tensors[6].offset, b4 = p + layout.tensors[7].offset
        let hidden = ws.hidden + r * s.hidden, logits = ws.logits + r * s.classes
        backend.sgemm(.none, .transposed, m: m, n: s.hidden, k: s.flat, alpha: 1, a: ws.flat + r * s.flat, lda: s.flat,
                      b: w3, ldb: s.flat, beta: 0, c: hidden, ldc: s.hidden)
        for i in 0..<m { ShortRows.addBiasAndReLU(b3, to: hidden + i * s.hidden, count: s.hidden) }
        backend.sgemm(.none, .transposed, m: m, n: s.classes, k: s.hidden, alpha: 1, a: hidden, lda: s.hidden,
                      b: w4, ldb: s.hidden, beta: 0, c: logits, ldc: s.classes)
        for i in 0..<m { for c in 0..<s.classes { logits[i * s.classes + c] += b4[c] } }
    }

    /// Per-sample softmax cross-entropy into `sampleLoss`; with `wantGradient`,
    /// dLogits ← (softmax − onehot)/B, B the sample's batch size.
    func softmaxCrossEntropy(rows: Range<Int>, workspace ws: CNNWorkspace, wantGradient: Bool) {
        let C = shape.classes
        for r in rows {
            let row = ws.logits + r * C
            var m = row[0]
            for c in 1..<C { m = max(m, row[c]) }
            var sum: Float = 0
            for c in 0..<C { sum += ElementaryFunctions.exp(row[c] - m) }
            let y = Int(ws.labels[r])
            ws.sampleLoss[r] = ElementaryFunctions.log(Double(sum)) - Double(row[y] - m)
            if wantGradient {
                let g = ws.dLogits + r * C, weight = ws.sampleWeight[r]
                let inv = 1 / sum
                for c in 0..<C { g[c] = ElementaryFunctions.exp(row[c] - m) * inv * weight }
                g[y] -= weight
            }
        }
    }

    /// dHidden = dLogits·W4 (zero where the ReLU was off), dFlat = dHidden·W3.
    func denseBackward(_ p: UnsafePointer<Float>, rows: Range<Int>, workspace ws: CNNWorkspace) {
        let s = shape, m = rows.count, r = rows.lowerBound
        let w3 = p + layout.tensors[4].offset, w4 = p + layout.tensors[6].offset
        let dHidden = ws.dHidden + r * s.hidden
        backend.sgemm(.none, .none, m: m, n: s.hidden, k: s.classes, alpha: 1, a: ws.dLogits + r * s.classes, lda: s.classes,
                      b: w4, ldb: s.hidden, beta: 0, c: dHidden, ldc: s.hidden)
        reluBackward(dHidden, output: ws.hidden + r * s.hidden, m * s.hidden)
        backend.sgemm(.none, .none, m: m, n: s.flat, k: s.hidden, alpha: 1, a: dHidden, lda: s.hidden,
                      b: w3, ldb: s.flat, beta: 0, c: ws.dFlat + r * s.flat, ldc: s.flat)
    }

    // MARK: Phase 3: weight gradients per batch

    /// Batch `batch`'s gradient into `slot.gradient`; returns its mean loss.
    func backward(_ p: UnsafePointer<Float>, data: LabeledImages, batch: MiniBatch, row: Int, slot: CNNWorkspace.Slot,
                  workspace ws: CNNWorkspace) -> Float {
        let s = shape, k = s.kernel, b = batch.indices.count, g = slot.gradient
        let t = layout.tensors
        // fc2 and fc1: dW = dOutᵀ·in over the batch's rows, db = column sums.
        backend.sgemm(.transposed, .none, m: s.classes, n: s.hidden, k: b, alpha: 1, a: ws.dLogits + row * s.classes, lda: s.classes,
                      b: ws.hidden + row * s.hidden, ldb: s.hidden, beta: 0, c: g + t[6].offset, ldc: s.hidden)
        columnSums(ws.dLogits + row * s.classes, rows: b, columns: s.classes, into: g + t[7].offset)
        backend.sgemm(.transposed, .none, m: s.hidden, n: s.flat, k: b, alpha: 1, a: ws.dHidden + row * s.hidden, lda: s.hidden,
                      b: ws.flat + row * s.flat, ldb: s.flat, beta: 0, c: g + t[4].offset, ldc: s.flat)
        columnSums(ws.dHidden + row * s.hidden, rows: b, columns: s.hidden, into: g + t[5].offset)

        // conv2, weights and input, from the outputs max-pooling kept (pooled value > 0); each
        // kept output j of sample i is a term (its gradient, where its k×k patch starts).
        let run = k * s.conv1, k2 = k * run, p1 = s.pooled1 * s.pooled1 * s.conv1
        let hw2 = s.pooled2 * s.pooled2, o2 = s.side2, plane1 = s.side1 * s.side1, n1 = b * plane1
        let counts = slot.counts
        /// Where kept output j of a sample lands in conv2's output: its channel and position.
        func place(_ j: Int, _ arg2: UnsafeMutablePointer<UInt8>) -> (channel: Int, oy: Int, ox: Int) {
            let q = j % hw2, a = Int(arg2[j])
            return (j / hw2, 2 * (q / s.pooled2) + a >> 1, 2 * (q % s.pooled2) + a & 1)
        }
        // Weight gradient: terms grouped by channel (samples, then j, in order), then for each
        // channel and kernel row, dW2[c][ky] += Σ g · pool1 patch row (one read-write of dW2).
        counts.update(repeating: 0, count: s.conv2 + 1)
        for i in 0..<b {
            let flat = ws.flat + (row + i) * s.flat
            for j in 0..<s.flat where flat[j] > 0 { counts[j / hw2 + 1] += 1 }
        }
        for c in 0..<s.conv2 { counts[c + 1] += counts[c] }
        for i in 0..<b {
            let r = row + i
            let flat = ws.flat + r * s.flat, dFlat = ws.dFlat + r * s.flat, arg2 = ws.arg2 + r * s.flat
            for j in 0..<s.flat where flat[j] > 0 {
                let (co, oy, ox) = place(j, arg2)
                let at = counts[co]
                counts[co] += 1
                slot.termScales[at] = dFlat[j]
                slot.termOffsets[at] = r * p1 + (oy * s.pooled1 + ox) * s.conv1
            }
        }
        var start = 0
        for co in 0..<s.conv2 {
            let end = counts[co]
            var bias = 0.0
            for term in start..<end { bias += Double(slot.termScales[term]) }
            g[t[3].offset + co] = Float(bias)
            let gradient = slot.gradConv2 + co * k2
            gradient.update(repeating: 0, count: k2)
            for ky in 0..<k {
                ShortRows.addProducts(slot.termScales + start, ws.pool1 + ky * s.pooled1 * s.conv1, slot.termOffsets + start,
                                      terms: end - start, to: gradient + ky * run, count: run)
            }
            start = end
        }
        // Input gradient, sample by sample: terms grouped by output position, then for each
        // position and kernel row, dPool1[patch row] += Σ g · W2[c][ky]; then pool1's backward
        // scatters dPool1 into the conv1 output gradient dOut1[c1][B·side1²] (in slot.out1).
        slot.out1.update(repeating: 0, count: s.conv1 * n1)
        for i in 0..<b {
            let r = row + i
            let flat = ws.flat + r * s.flat, dFlat = ws.dFlat + r * s.flat, arg2 = ws.arg2 + r * s.flat
            counts.update(repeating: 0, count: o2 * o2 + 1)
            for j in 0..<s.flat where flat[j] > 0 {
                let (_, oy, ox) = place(j, arg2)
                counts[oy * o2 + ox + 1] += 1
            }
            for q in 0..<(o2 * o2) { counts[q + 1] += counts[q] }
            for j in 0..<s.flat where flat[j] > 0 {
                let (co, oy, ox) = place(j, arg2)
                let at = counts[oy * o2 + ox]
                counts[oy * o2 + ox] += 1
                slot.positionScales[at] = dFlat[j]
                slot.positionOffsets[at] = co * k2
            }
            slot.dPool1.update(repeating: 0, count: p1)
            var start = 0
            for q in 0..<(o2 * o2) {
                let end = counts[q]
                if end > start {
                    let oy = q / o2, ox = q % o2
                    for ky in 0..<k {
                        ShortRows.addProducts(slot.positionScales + start, ws.conv2Weights + ky * run, slot.positionOffsets + start,
                                              terms: end - start, to: slot.dPool1 + ((oy + ky) * s.pooled1 + ox) * s.conv1, count: run)
                    }
                }
                start = end
            }
            let pool1 = ws.pool1 + r * p1, arg1 = ws.arg1 + r * p1
            for q in 0 ..< s.pooled1 * s.pooled1 {
                let y = q / s.pooled1, x = q % s.pooled1
                for c in 0..<s.conv1 where pool1[q * s.conv1 + c] > 0 {
                    let a = Int(arg1[q * s.conv1 + c])
                    slot.out1[c * n1 + i * plane1 + (2 * y + a >> 1) * s.side1 + 2 * x + a & 1] = slot.dPool1[q * s.conv1 + c]
                }
            }
        }
        for c in 0..<s.conv1 {
            g[t[1].offset + c] = Float(VectorMath.sum(UnsafeBufferPointer(start: slot.out1 + c * n1, count: n1)))
        }
        // conv2's weight gradient back to [c2][c1][k][k].
        let gw2 = g + t[2].offset
        for co in 0..<s.conv2 { for tap in 0..<(k * k) { for ci in 0..<s.conv1 {
            gw2[(co * s.conv1 + ci) * k * k + tap] = slot.gradConv2[(co * k * k + tap) * s.conv1 + ci]
        } } }
        // conv1: dW1 = dOut1 · col1ᵀ (col1 rebuilt from the images), db1 from the bias sums above.
        let k1 = s.inChannels * k * k
        gather(data: data, batch: batch, into: slot.input)
        Im2Col.forward(slot.input, channels: s.inChannels, batch: b, side: s.inputSize, kernel: k, into: slot.col1)
        backend.sgemm(.none, .transposed, m: s.conv1, n: k1, k: n1, alpha: 1, a: slot.out1, lda: n1, b: slot.col1, ldb: n1,
                      beta: 0, c: g + t[0].offset, ldc: k1)
        var loss = 0.0
        for i in 0..<b { loss += ws.sampleLoss[row + i] }
        return Float(loss / Double(b))
    }

    // MARK: Small kernels

    /// dx ← dx where the ReLU output was positive, else 0.
    func reluBackward(_ dx: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        let zero = SIMD8<Float>()
        while i + 8 <= n {
            let d = UnsafeMutableRawPointer(dx + i)
            let o = UnsafeRawPointer(output + i).loadUnaligned(as: SIMD8<Float>.self)
            d.storeBytes(of: d.loadUnaligned(as: SIMD8<Float>.self).replacing(with: 0, where: o .<= zero), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { if !(output[i] > 0) { dx[i] = 0 }; i += 1 }
    }

    /// out[c] = Σ_r m[r][c], rows in increasing order.
    func columnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: columns)
        for r in 0..<rows { for c in 0..<columns { out[c] += m[r * columns + c] } }
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

/// An `UnsafeMutableBufferPointer` handed to one `@Sendable` work item for writing.
public struct SendableMutableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeMutableBufferPointer<T>
    public init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

/// An `UnsafeBufferPointer` that `@Sendable` work items may share for reading.
public struct SendableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeBufferPointer<T>
    public init(_ buffer: UnsafeBufferPointer<T>) { self.buffer = buffer }
}
