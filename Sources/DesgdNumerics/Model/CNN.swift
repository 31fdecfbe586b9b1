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

/// The network of ``ModelArchitecture``: initialisation, forward and backward passes and
/// evaluation, on a flat parameter vector (see ``ParameterLayout``).
///
/// Implementation: activations of the convolutional part are stored channel-major across the
/// batch ([C][B][H][W]), so each convolution is *one* im2col and *one* GEMM for the whole
/// mini-batch (W[Cout × Cin·k²] · col[Cin·k² × B·H·W]); the backward pass uses three GEMMs per
/// convolution (weight gradient, column gradient, and col2im). All products go through the
/// chosen ``NumericBackend``; everything else is plain Swift with a fixed operation order, so the
/// result of a pass depends only on (parameters, batch, backend).
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

    /// Mean cross-entropy loss of the batch and its gradient with respect to the parameters
    /// (written to `gradient`, which is overwritten). Returns the loss.
    @discardableResult
    public func lossAndGradient(parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batch: MiniBatch,
                                gradient: UnsafeMutableBufferPointer<Float>, workspace ws: CNNWorkspace) -> Float {
        precondition(parameters.count == layout.count && gradient.count == layout.count)
        let b = batch.indices.count
        ws.reserve(batch: b)
        gather(data: data, batch: batch, ws: ws)
        forward(parameters.baseAddress!, batch: b, ws: ws)
        let loss = softmaxCrossEntropy(batch: b, ws: ws, wantGradient: true)
        backward(parameters.baseAddress!, batch: b, gradient: gradient.baseAddress!, ws: ws)
        return loss
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

    /// Sum of per-sample losses and number of correct predictions of a batch (forward only).
    public func evaluateBatch(parameters: UnsafeBufferPointer<Float>, data: LabeledImages, batch: MiniBatch,
                              workspace ws: CNNWorkspace) -> (lossSum: Double, correct: Int) {
        let b = batch.indices.count
        ws.reserve(batch: b)
        gather(data: data, batch: batch, ws: ws)
        forward(parameters.baseAddress!, batch: b, ws: ws)
        let loss = softmaxCrossEntropy(batch: b, ws: ws, wantGradient: false)
        var correct = 0
        let C = shape.classes
        for i in 0..<b {
            let row = ws.logits + i * C
            var best = 0
            for c in 1..<C where row[c] > row[best] { best = c }
            if best == Int(ws.labels[i]) { correct += 1 }
        }
        return (Double(loss) * Double(b), correct)
    }

    /// Test loss and accuracy over a whole data set, in batches of `batchSize`, on `threads`
    /// threads. Batches are fixed by the data set order and combined in that order, so the result
    /// does not depend on the thread count.
    public func evaluate(parameters: [Float], data: LabeledImages, threads: Int = 1, batchSize: Int = 250,
                         pool: WorkspacePool? = nil) -> Evaluation {
        let batches = (data.count + batchSize - 1) / batchSize
        let pool = pool ?? WorkspacePool(model: self, slots: threads)
        let results = UnsafeMutableBufferPointer<(Double, Int)>.allocate(capacity: batches)
        defer { results.deallocate() }
        let out = SendablePointer(results.baseAddress!)
        parameters.withUnsafeBufferPointer { p in
            let params = SendableBuffer(p)
            ParallelExecutor(threads: threads).forEach(batches) { i, slot in
                let lo = i * batchSize, hi = min(data.count, lo + batchSize)
                out.base[i] = self.evaluateBatch(parameters: params.buffer, data: data,
                                                 batch: MiniBatch(indices: Array(lo ..< hi)), workspace: pool[slot])
            }
        }
        var loss = 0.0, correct = 0
        for r in results { loss += r.0; correct += r.1 }
        return Evaluation(loss: loss / Double(data.count), accuracy: Double(correct) / Double(data.count))
    }

    // MARK: Forward

    func gather(data: LabeledImages, batch: MiniBatch, ws: CNNWorkspace) {
        let size = shape.imageSize
        precondition(data.imageSize * 1 == size, "data set images do not match the model's input")
        data.pixels.withUnsafeBufferPointer { px in
            for (i, s) in batch.indices.enumerated() {
                (ws.input + i * size).update(from: px.baseAddress! + s * size, count: size)
                let y = data.labels[s]
                ws.labels[i] = batch.flipLabels ? UInt8(data.classes - 1) - y : y
            }
        }
    }

    func forward(_ p: UnsafePointer<Float>, batch b: Int, ws: CNNWorkspace) {
        let s = shape, k = s.kernel
        let w1 = p + layout.tensors[0].offset, b1 = p + layout.tensors[1].offset
        let w2 = p + layout.tensors[2].offset, b2 = p + layout.tensors[3].offset
        let w3 = p + layout.tensors[4].offset, b3 = p + layout.tensors[5].offset
        let w4 = p + layout.tensors[6].offset, b4 = p + layout.tensors[7].offset
        let n1 = b * s.side1 * s.side1, n2 = b * s.side2 * s.side2

        // conv1 (input [Cin][B][H][W]; for Cin = 1 this is the gathered batch as is).
        Im2Col.forward(ws.input, channels: s.inChannels, batch: b, side: s.inputSize, kernel: k, into: ws.col1)
        fillRows(ws.out1, rows: s.conv1, columns: n1, with: b1)
        backend.sgemm(.none, .none, m: s.conv1, n: n1, k: s.inChannels * k * k, alpha: 1, a: w1, lda: s.inChannels * k * k,
                      b: ws.col1, ldb: n1, beta: 1, c: ws.out1, ldc: n1)
        ReLUMaxPool2.forward(ws.out1, planes: s.conv1 * b, side: s.side1, into: ws.pool1, argmax: ws.arg1)

        // conv2.
        Im2Col.forward(ws.pool1, channels: s.conv1, batch: b, side: s.pooled1, kernel: k, into: ws.col2)
        fillRows(ws.out2, rows: s.conv2, columns: n2, with: b2)
        backend.sgemm(.none, .none, m: s.conv2, n: n2, k: s.conv1 * k * k, alpha: 1, a: w2, lda: s.conv1 * k * k,
                      b: ws.col2, ldb: n2, beta: 1, c: ws.out2, ldc: n2)
        ReLUMaxPool2.forward(ws.out2, planes: s.conv2 * b, side: s.side2, into: ws.pool2, argmax: ws.arg2)

        // Flatten [C][B][h][w] → [B][C·h·w] (PyTorch's per-sample order c, y, x).
        let hw = s.pooled2 * s.pooled2
        for c in 0..<s.conv2 { for i in 0..<b {
            let dst: UnsafeMutablePointer<Float> = ws.flat + (i * s.flat + c * hw)
            let src: UnsafeMutablePointer<Float> = ws.pool2 + ((c * b + i) * hw)
            dst.update(from: src, count: hw)
        } }

        // fc1 + ReLU, fc2.
        fillRows(ws.hidden, rows: b, columns: s.hidden, with: b3, broadcastBias: true)
        backend.sgemm(.none, .transposed, m: b, n: s.hidden, k: s.flat, alpha: 1, a: ws.flat, lda: s.flat,
                      b: w3, ldb: s.flat, beta: 1, c: ws.hidden, ldc: s.hidden)
        relu(ws.hidden, b * s.hidden)
        fillRows(ws.logits, rows: b, columns: s.classes, with: b4, broadcastBias: true)
        backend.sgemm(.none, .transposed, m: b, n: s.classes, k: s.hidden, alpha: 1, a: ws.hidden, lda: s.hidden,
                      b: w4, ldb: s.hidden, beta: 1, c: ws.logits, ldc: s.classes)
    }

    /// Mean softmax cross-entropy; with `wantGradient`, ws.dLogits ← (softmax − onehot)/B.
    func softmaxCrossEntropy(batch b: Int, ws: CNNWorkspace, wantGradient: Bool) -> Float {
        let C = shape.classes
        var total = 0.0
        let invB = 1 / Float(b)
        for i in 0..<b {
            let row = ws.logits + i * C
            var m = row[0]
            for c in 1..<C { m = max(m, row[c]) }
            var sum: Float = 0
            for c in 0..<C { sum += ElementaryFunctions.exp(row[c] - m) }
            let y = Int(ws.labels[i])
            total += ElementaryFunctions.log(Double(sum)) - Double(row[y] - m)
            if wantGradient {
                let g = ws.dLogits + i * C
                let inv = 1 / sum
                for c in 0..<C { g[c] = ElementaryFunctions.exp(row[c] - m) * inv * invB }
                g[y] -= invB
            }
        }
        return Float(total / Double(b))
    }

    // MARK: Backward

    func backward(_ p: UnsafePointer<Float>, batch b: Int, gradient g: UnsafeMutablePointer<Float>, ws: CNNWorkspace) {
        let s = shape, k = s.kernel
        let w2 = p + layout.tensors[2].offset
        let w3 = p + layout.tensors[4].offset, w4 = p + layout.tensors[6].offset
        let gw1 = g + layout.tensors[0].offset, gb1 = g + layout.tensors[1].offset
        let gw2 = g + layout.tensors[2].offset, gb2 = g + layout.tensors[3].offset
        let gw3 = g + layout.tensors[4].offset, gb3 = g + layout.tensors[5].offset
        let gw4 = g + layout.tensors[6].offset, gb4 = g + layout.tensors[7].offset
        let n1 = b * s.side1 * s.side1, n2 = b * s.side2 * s.side2

        // fc2: dW4 = dLogitsᵀ·hidden, db4 = Σ_b dLogits, dHidden = dLogits·W4.
        backend.sgemm(.transposed, .none, m: s.classes, n: s.hidden, k: b, alpha: 1, a: ws.dLogits, lda: s.classes,
                      b: ws.hidden, ldb: s.hidden, beta: 0, c: gw4, ldc: s.hidden)
        columnSums(ws.dLogits, rows: b, columns: s.classes, into: gb4)
        backend.sgemm(.none, .none, m: b, n: s.hidden, k: s.classes, alpha: 1, a: ws.dLogits, lda: s.classes,
                      b: w4, ldb: s.hidden, beta: 0, c: ws.dHidden, ldc: s.hidden)
        reluBackward(ws.dHidden, output: ws.hidden, b * s.hidden)

        // fc1.
        backend.sgemm(.transposed, .none, m: s.hidden, n: s.flat, k: b, alpha: 1, a: ws.dHidden, lda: s.hidden,
                      b: ws.flat, ldb: s.flat, beta: 0, c: gw3, ldc: s.flat)
        columnSums(ws.dHidden, rows: b, columns: s.hidden, into: gb3)
        backend.sgemm(.none, .none, m: b, n: s.flat, k: s.hidden, alpha: 1, a: ws.dHidden, lda: s.hidden,
                      b: w3, ldb: s.flat, beta: 0, c: ws.dFlat, ldc: s.flat)

        // Un-flatten into [C][B][h][w], then pool2 and ReLU backward.
        let hw = s.pooled2 * s.pooled2
        for c in 0..<s.conv2 { for i in 0..<b {
            let dst: UnsafeMutablePointer<Float> = ws.dPool2 + ((c * b + i) * hw)
            let src: UnsafeMutablePointer<Float> = ws.dFlat + (i * s.flat + c * hw)
            dst.update(from: src, count: hw)
        } }
        ReLUMaxPool2.backward(ws.dPool2, output: ws.pool2, argmax: ws.arg2, planes: s.conv2 * b, side: s.side2, into: ws.dOut2)

        // conv2: dW2 = dOut2·col2ᵀ, db2 = row sums, dCol2 = W2ᵀ·dOut2, col2im → dPool1.
        backend.sgemm(.none, .transposed, m: s.conv2, n: s.conv1 * k * k, k: n2, alpha: 1, a: ws.dOut2, lda: n2,
                      b: ws.col2, ldb: n2, beta: 0, c: gw2, ldc: s.conv1 * k * k)
        rowSums(ws.dOut2, rows: s.conv2, columns: n2, into: gb2)
        backend.sgemm(.transposed, .none, m: s.conv1 * k * k, n: n2, k: s.conv2, alpha: 1, a: w2, lda: s.conv1 * k * k,
                      b: ws.dOut2, ldb: n2, beta: 0, c: ws.col2, ldc: n2)  // col2 is no longer needed: reuse it
        Im2Col.backward(ws.col2, channels: s.conv1, batch: b, side: s.pooled1, kernel: k, into: ws.dPool1)
        ReLUMaxPool2.backward(ws.dPool1, output: ws.pool1, argmax: ws.arg1, planes: s.conv1 * b, side: s.side1, into: ws.dOut1)

        // conv1 (no input gradient).
        backend.sgemm(.none, .transposed, m: s.conv1, n: s.inChannels * k * k, k: n1, alpha: 1, a: ws.dOut1, lda: n1,
                      b: ws.col1, ldb: n1, beta: 0, c: gw1, ldc: s.inChannels * k * k)
        rowSums(ws.dOut1, rows: s.conv1, columns: n1, into: gb1)
    }

    // MARK: Small kernels

    /// Each row r of a rows×columns matrix ← bias[r] (conv layout), or each row ← bias (dense layout).
    func fillRows(_ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, with bias: UnsafePointer<Float>,
                  broadcastBias: Bool = false) {
        for r in 0..<rows {
            if broadcastBias { (out + r * columns).update(from: bias, count: columns) }
            else { (out + r * columns).update(repeating: bias[r], count: columns) }
        }
    }

    func relu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let zero = SIMD8<Float>()
        while i + 8 <= n {
            let p = UnsafeMutableRawPointer(x + i)
            p.storeBytes(of: pointwiseMax(p.loadUnaligned(as: SIMD8<Float>.self), zero), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { x[i] = max(x[i], 0); i += 1 }
    }

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

    /// out[r] = Σ_c m[r][c], accumulated left to right in 8 lanes then a fixed tree.
    func rowSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            out[r] = Float(VectorMath.sum(UnsafeBufferPointer(start: m + r * columns, count: columns)))
        }
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

/// An `UnsafeBufferPointer` that `@Sendable` work items may share for reading.
public struct SendableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeBufferPointer<T>
    public init(_ buffer: UnsafeBufferPointer<T>) { self.buffer = buffer }
}
