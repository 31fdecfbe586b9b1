/// Phase 1 of the batched pass (``CNN/lossAndGradients(parameters:data:batches:executor:workspace:consume:)``):
/// the convolutions of one mini-batch.
extension CNN {
    /// conv2's weights [c2][c1][k][k] → [c2][k][k][c1], the order of a channels-last im2col row.
    /// and, for the backward pass, into [c2][k] rows of ``conv2RowStride`` (zero-padded).
    func permuteConvolutionWeights(_ p: UnsafePointer<Float>, into w: UnsafeMutablePointer<Float>,
        padded: UnsafeMutablePointer<Float>) {
        let s = shape, k = s.kernel, w2 = p + layout.tensors[2].offset, run = k * s.conv1, stride = conv2RowStride
        for co in 0..<s.conv2 { for ci in 0..<s.conv1 { for t in 0..<(k * k) {
            w[(co * k * k + t) * s.conv1 + ci] = w2[(co * s.conv1 + ci) * k * k + t]
        } } }
        for co in 0..<s.conv2 { for ky in 0..<k {
            (padded + (co * k + ky) * stride).update(from: w + co * k * run + ky * run, count: run)
        } }
    }

    /// The batch's images, one after another: [B][H·W], which is also the [C][B][H][W] layout of
    /// ``Im2Col`` for the one input channel (``CNN/init(shape:backend:)`` requires it).
    func gather(data: LabeledImages, batch: MiniBatch, into input: UnsafeMutablePointer<Float>) {
        let size = shape.imageSize
        data.pixels.withUnsafeBufferPointer { px in
            for (i, s) in batch.indices.enumerated() {
                (input + i * size).update(from: px.baseAddress! + s * size, count: size)
            }
        }
    }

    func convolutionsForward(_ p: UnsafePointer<Float>, data: LabeledImages, batch: MiniBatch, row: Int,
                             slot: CNNWorkspace.Slot,
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
        backend.sgemm(.none, .transposed, m: n2, n: s.conv2, k: k2, alpha: 1, a: slot.col2, lda: k2, b: ws.conv2Weights,
                      ldb: k2,
                      beta: 0, c: slot.out2, ldc: s.conv2)
        ReLUMaxPool2.forwardChannelsLast(slot.out2, batch: b, side: s.side2, channels: s.conv2, bias: b2,
                                         into: ws.flat + row * s.flat, argmax: keep ? ws.arg2 + row * s.flat
                                             : slot.arg2)
    }
}
