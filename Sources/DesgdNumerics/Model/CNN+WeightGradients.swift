/// Phase 3 of the batched pass: one mini-batch's weight gradients.
extension CNN {
    /// Batch `batch`'s gradient into `slot.gradient`; returns its mean loss.
    func backward(_ p: UnsafePointer<Float>, data: LabeledImages, batch: MiniBatch, row: Int, slot: CNNWorkspace.Slot,
                  workspace ws: CNNWorkspace) -> Float {
        let s = shape, k = s.kernel, b = batch.indices.count, g = slot.gradient
        let t = layout.tensors
        // fc2 and fc1: dW = dOutᵀ·in over the batch's rows, db = column sums.
        backend.sgemm(.transposed, .none, m: s.classes, n: s.hidden, k: b, alpha: 1, a: ws.dLogits + row * s.classes,
                      lda: s.classes,
                      b: ws.hidden + row * s.hidden, ldb: s.hidden, beta: 0, c: g + t[6].offset, ldc: s.hidden)
        columnSums(ws.dLogits + row * s.classes, rows: b, columns: s.classes, into: g + t[7].offset)
        backend.sgemm(.transposed, .none, m: s.hidden, n: s.flat, k: b, alpha: 1, a: ws.dHidden + row * s.hidden,
                      lda: s.hidden,
                      b: ws.flat + row * s.flat, ldb: s.flat, beta: 0, c: g + t[4].offset, ldc: s.flat)
        columnSums(ws.dHidden + row * s.hidden, rows: b, columns: s.hidden, into: g + t[5].offset)

        // conv2, weights and input, from the outputs max-pooling kept (pooled value > 0); each
        // kept output j of sample i is a term (its gradient, where its k×k patch starts).
        let stride = conv2RowStride, p1 = s.pooled1 * s.pooled1 * s.conv1
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
            let gradient = slot.gradConv2 + co * k * stride
            gradient.update(repeating: 0, count: k * stride)
            for ky in 0..<k {
                ShortRows.addProducts(slot.termScales + start, ws.pool1 + ky * s.pooled1 * s.conv1, slot.termOffsets
                    + start,
                                      terms: end - start, to: gradient + ky * stride, count: stride)
            }
            start = end
        }
        // Input gradient, sample by sample: terms grouped by output position, then for each
        // position and kernel row, dPool1[patch row] += Σ g · W2[c][ky] over whole padded rows
        // (the padding lanes of W2 are zero: they add g·0 to the next entries, or to dPool1's
        // slack past its end); then pool1's backward
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
                slot.positionOffsets[at] = co * k * stride
            }
            slot.dPool1.update(repeating: 0, count: p1)
            var start = 0
            for q in 0..<(o2 * o2) {
                let end = counts[q]
                if end > start {
                    let oy = q / o2, ox = q % o2
                    for ky in 0..<k {
                        ShortRows.addProducts(slot.positionScales + start, ws.conv2PaddedWeights + ky * stride,
                                              slot.positionOffsets + start,
                                              terms: end - start, to: slot.dPool1
                                                  + ((oy + ky) * s.pooled1 + ox) * s.conv1, count: stride)
                    }
                }
                start = end
            }
            let pool1 = ws.pool1 + r * p1, arg1 = ws.arg1 + r * p1
            for q in 0 ..< s.pooled1 * s.pooled1 {
                let y = q / s.pooled1, x = q % s.pooled1
                for c in 0..<s.conv1 where pool1[q * s.conv1 + c] > 0 {
                    let a = Int(arg1[q * s.conv1 + c])
                    slot.out1[c * n1 + i * plane1 + (2 * y + a >> 1) * s.side1 + 2 * x
                        + a & 1] = slot.dPool1[q * s.conv1 + c]
                }
            }
        }
        for c in 0..<s.conv1 {
            g[t[1].offset + c] = Float(VectorMath.sum(UnsafeBufferPointer(start: slot.out1 + c * n1, count: n1)))
        }
        // conv2's weight gradient back to [c2][c1][k][k].
        let gw2 = g + t[2].offset
        for co in 0..<s.conv2 { for ky in 0..<k { for kx in 0..<k { for ci in 0..<s.conv1 {
            gw2[((co * s.conv1 + ci) * k + ky) * k + kx] = slot.gradConv2[(co * k + ky) * stride + kx * s.conv1 + ci]
        } } } }
        // conv1: dW1 = dOut1 · col1ᵀ (col1 rebuilt from the images), db1 from the bias sums above.
        let k1 = s.inChannels * k * k
        gather(data: data, batch: batch, into: slot.input)
        Im2Col.forward(slot.input, channels: s.inChannels, batch: b, side: s.inputSize, kernel: k, into: slot.col1)
        backend.sgemm(.none, .transposed, m: s.conv1, n: k1, k: n1, alpha: 1, a: slot.out1, lda: n1, b: slot.col1,
                      ldb: n1,
                      beta: 0, c: g + t[0].offset, ldc: k1)
        var loss = 0.0
        for i in 0..<b { loss += ws.sampleLoss[row + i] }
        return Float(loss / Double(b))
    }

    /// out[c] = Σ_r m[r][c], rows in increasing order.
    func columnSums(_ m: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: columns)
        for r in 0..<rows { for c in 0..<columns { out[c] += m[r * columns + c] } }
    }
}
