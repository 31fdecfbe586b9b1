/// Phase 2 of the batched pass: the fully connected layers over a chunk of the round's samples.
extension CNN {
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
        backend.sgemm(.none, .none, m: m, n: s.hidden, k: s.classes, alpha: 1, a: ws.dLogits + r * s.classes,
                      lda: s.classes,
                      b: w4, ldb: s.hidden, beta: 0, c: dHidden, ldc: s.hidden)
        reluBackward(dHidden, output: ws.hidden + r * s.hidden, m * s.hidden)
        backend.sgemm(.none, .none, m: m, n: s.flat, k: s.hidden, alpha: 1, a: dHidden, lda: s.hidden,
                      b: w3, ldb: s.flat, beta: 0, c: ws.dFlat + r * s.flat, ldc: s.flat)
    }

    /// dx ← dx where the ReLU output was positive, else 0.
    func reluBackward(_ dx: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        let zero = SIMD8<Float>()
        while i + 8 <= n {
            let d = UnsafeMutableRawPointer(dx + i)
            let o = UnsafeRawPointer(output + i).loadUnaligned(as: SIMD8<Float>.self)
            d.storeBytes(of: d.loadUnaligned(as: SIMD8<Float>.self).replacing(with: 0, where: o .<= zero),
                as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { if !(output[i] > 0) { dx[i] = 0 }; i += 1 }
    }
}
