import Foundation
import Testing
@testable import DesgdNumerics

/// A tiny network and data set for exact checks: 14×14 inputs, k = 3, conv 1→3→4, FC 16→5→4.
enum Tiny {
    static let shape = CNNShape(inputSize: 14, inChannels: 1, kernel: 3, conv1: 3, conv2: 4, hidden: 5, classes: 4)
    /// conv1 = 12: a kernel row of conv2's channels-last patch is 36 floats, padded to 40: the
    /// 32-wide and the 8-wide paths of the conv2 backward, and padding lanes (lenet's is 100 → 104).
    static let wideShape = CNNShape(inputSize: 14, inChannels: 1, kernel: 3, conv1: 12, conv2: 4, hidden: 5, classes: 4)
    static func data(count: Int = 8, seed: UInt64 = 5) -> LabeledImages {
        var r = RandomStream(seed: seed, purpose: .syntheticData)
        let px = (0..<(count * 196)).map { _ in r.nextFloat() }
        let labels = (0..<count).map { UInt8($0 % 4) }
        return LabeledImages(count: count, height: 14, width: 14, classes: 4, pixels: px, labels: labels)
    }
}

/// Direct (loop) implementation of the forward pass, in Double, as the reference.
func naiveLogits(_ s: CNNShape, _ p: [Float], _ image: ArraySlice<Float>) -> [Double] {
    let L = ParameterLayout(s)
    func w(_ name: String, _ i: Int) -> Double { Double(p[L[name].offset + i]) }
    let k = s.kernel
    var x = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: s.inputSize),
        count: s.inputSize), count: 1)
    for y in 0..<s.inputSize {
        for xx in 0..<s.inputSize { x[0][y][xx] = Double(image[image.startIndex + y * s.inputSize + xx]) }
    }
    func conv(_ x: [[[Double]]], _ cout: Int, _ wname: String, _ bname: String) -> [[[Double]]] {
        let cin = x.count, side = x[0].count, o = side - k + 1
        var out = [[[Double]]](repeating: [[Double]](repeating: [Double](repeating: 0, count: o), count: o),
            count: cout)
        for co in 0..<cout { for oy in 0..<o { for ox in 0..<o {
            var acc = w(bname, co)
            for ci in 0..<cin { for ky in 0..<k { for kx in 0..<k {
                acc += w(wname, ((co * cin + ci) * k + ky) * k + kx) * x[ci][oy + ky][ox + kx]
            } } }
            out[co][oy][ox] = max(0, acc)
        } } }
        return out
    }
    func pool(_ x: [[[Double]]]) -> [[[Double]]] {
        x.map { plane in
            let h = plane.count / 2
            var out = [[Double]](repeating: [Double](repeating: 0, count: h), count: h)
            for y in 0..<h { for xx in 0..<h {
                let top: Double = max(plane[2 * y][2 * xx], plane[2 * y][2 * xx + 1])
                let bottom: Double = max(plane[2 * y + 1][2 * xx], plane[2 * y + 1][2 * xx + 1])
                out[y][xx] = max(top, bottom)
            } }
            return out
        }
    }
    let a = pool(conv(pool(conv(x, s.conv1, "conv1.weight", "conv1.bias")), s.conv2, "conv2.weight", "conv2.bias"))
    let flat = a.flatMap { $0.flatMap { $0 } }
    let hidden = (0..<s.hidden).map { j in
        max(0, w("fc1.bias", j) + (0..<s.flat).reduce(0.0) { $0 + w("fc1.weight", j * s.flat + $1) * flat[$1] }) }
    return (0..<s.classes).map { c in
        w("fc2.bias", c) + (0..<s.hidden).reduce(0.0) { $0 + w("fc2.weight", c * s.hidden + $1) * hidden[$1] } }
}

@Suite struct ModelTests {
    @Test func parameterCounts() {
        #expect(CNN(.lenet, backend: .openblas).parameterCount == 431_080)
        #expect(CNN(.small, backend: .openblas).parameterCount == 19_670)
        let l = ParameterLayout(CNNShape.lenet)
        #expect(l.tensors.map(\.count) == [500, 20, 25_000, 50, 400_000, 500, 5_000, 10])
        #expect(l["fc1.weight"].shape == [500, 800])
    }

    @Test(arguments: NumericBackend.allCases)
    func forwardMatchesDirectConvolution(backend: NumericBackend) {
        let model = CNN(shape: Tiny.shape, backend: backend)
        let data = Tiny.data()
        let p = model.initialParameters(seed: 3)
        let ws = CNNWorkspace(model: model, slots: 1)
        p.withUnsafeBufferPointer {
            model.forward($0, data: data, batches: [MiniBatch(indices: Array(0..<3)), MiniBatch(indices: Array(3..<8))],
                          executor: ParallelExecutor(threads: 1), workspace: ws)
        }
        for i in 0..<8 {
            let ref = naiveLogits(model.shape, p, data.pixels[i * 196 ..< (i + 1) * 196])
            for c in 0..<4 { #expect(abs(Double(ws.logits[i * 4 + c]) - ref[c]) < 1e-5) }
        }
    }

    /// Every layer's analytic gradient against central finite differences of the loss. A central
    /// difference is only meaningful inside one linear region of the ReLUs and max-pools, so an
    /// element whose ±h evaluations change an activation pattern (a kink) is skipped; at most a
    /// few are.
    @Test(arguments: NumericBackend.allCases, [Tiny.shape, Tiny.wideShape])
    func gradientMatchesFiniteDifferences(backend: NumericBackend, shape: CNNShape) {
        let model = CNN(shape: shape, backend: backend)
        let s = model.shape
        let data = Tiny.data()
        // Larger initial weights than the default, so that activations are not all tiny.
        var p = model.initialParameters(seed: 9).map { $0 * 3 }
        let batch = MiniBatch(indices: Array(0..<8))
        let ws = CNNWorkspace(model: model, slots: 1)
        var g = [Float](repeating: 0, count: model.parameterCount)
        var dummy = g
        /// The loss and the activation pattern (ReLU signs and pooling choices) it was computed in.
        func loss(_ q: [Float]) -> (Double, [Bool]) {
            let l = Double(model.lossAndGradient(parameters: q, data: data, batch: batch, gradient: &dummy,
                workspace: ws))
            var pattern: [Bool] = []
            // The kinks of the function: which pooled outputs are positive, which window element
            // won, which hidden units are active.
            let p1 = s.conv1 * 8 * s.pooled1 * s.pooled1, p2 = 8 * s.flat
            for i in 0..<p1 {
                pattern.append(ws.pool1[i] > 0); pattern.append(ws.arg1[i] & 1 == 1);
                pattern.append(ws.arg1[i] & 2 == 2) }
            for i in 0..<p2 {
                pattern.append(ws.flat[i] > 0); pattern.append(ws.arg2[i] & 1 == 1);
                pattern.append(ws.arg2[i] & 2 == 2) }
            for i in 0..<(8 * s.hidden) { pattern.append(ws.hidden[i] > 0) }
            return (l, pattern)
        }
        let base = loss(p).1
        model.lossAndGradient(parameters: p, data: data, batch: batch, gradient: &g, workspace: ws)
        let h: Float = 1e-3
        var skipped = 0
        for tensor in model.layout.tensors {
            var num = 0.0, den = 0.0, checked = 0
            for i in tensor.range {
                let saved = p[i]
                p[i] = saved + h; let up = loss(p)
                p[i] = saved - h; let down = loss(p)
                p[i] = saved
                if up.1 != base || down.1 != base { skipped += 1; continue }
                let fd = (up.0 - down.0) / Double(2 * h)
                checked += 1
                num += (fd - Double(g[i])) * (fd - Double(g[i]))
                den += Double(g[i]) * Double(g[i])
            }
            let rel = (num / max(den, 1e-20)).squareRoot()
            #expect(checked * 2 >= tensor.count && den > 0,
                "\(tensor.name): \(checked) elements checked, gradient norm² \(den)")
            #expect(rel < 1e-2, "\(tensor.name): relative error \(rel) (\(backend))")
        }
        // The wide shape has 4× more pooled conv1 outputs, so more elements sit near a kink.
        #expect(skipped < model.parameterCount / (shape == Tiny.shape ? 10 : 6),
            "\(skipped) of \(model.parameterCount) elements at a kink")
    }

    /// Flipped labels train on y ↦ C−1−y.
    @Test func labelFlipChangesTheTarget() {
        let model = CNN(shape: Tiny.shape, backend: .portable)
        let data = Tiny.data()
        let p = model.initialParameters(seed: 2)
        let ws = CNNWorkspace(model: model, slots: 1)
        var g1 = [Float](repeating: 0, count: model.parameterCount), g2 = g1
        model.lossAndGradient(parameters: p, data: data, batch: MiniBatch(indices: [0, 1], flipLabels: true),
            gradient: &g1, workspace: ws)
        #expect(ws.labels[0] == 3 && ws.labels[1] == 2)
        let flipped = LabeledImages(count: 8, height: 14, width: 14, classes: 4, pixels: data.pixels,
            labels: data.labels.map { 3 - $0 })
        model.lossAndGradient(parameters: p, data: flipped, batch: MiniBatch(indices: [0, 1]), gradient: &g2,
            workspace: ws)
        #expect(g1 == g2)
    }

    /// Same inputs, same bits: across repeated runs and across thread counts, for each backend
    /// (the batched pass's pieces are fixed; threads only schedule them).
    @Test(arguments: NumericBackend.allCases)
    func gradientsAreBitIdenticalAcrossRunsAndThreads(backend: NumericBackend) {
        let model = CNN(.lenet, backend: backend)
        let data = Dataset.synthetic(trainCount: 400, testCount: 10).train
        let p = model.initialParameters(seed: 1)
        // 7 batches (350 samples: two chunks of the fully connected phase), one of label-flip.
        let batches = (0..<7).map { b in
            MiniBatch(indices: (0..<50).map { (b * 97 + $0 * 7) % 400 }, flipLabels: b == 3) }
        let n = model.parameterCount
        func run(threads: Int) -> ([[Float]], [Float]) {
            let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: batches.count * (n + 1))
            defer { out.deallocate() }
            let o = SendablePointer(out.baseAddress!)
            p.withUnsafeBufferPointer { pp in
                model.lossAndGradients(parameters: pp, data: data, batches: batches,
                                       executor: ParallelExecutor(threads: threads),
                                       workspace: CNNWorkspace(model: model, slots: threads)) { i, g, loss in
                    (o.base + i * n).update(from: g.baseAddress!, count: n)
                    o.base[batches.count * n + i] = loss
                }
            }
            return ((0..<batches.count).map { Array(out[$0 * n ..< ($0 + 1) * n]) },
                Array(out[batches.count * n ..< batches.count * (n + 1)]))
        }
        let a = run(threads: 1), b = run(threads: 1), c = run(threads: 2), d = run(threads: 3)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0 == c.0 && a.1 == c.1)
        #expect(a.0 == d.0 && a.1 == d.1)
    }

    /// A batch's gradient from a batched pass of many batches equals its gradient alone to
    /// rounding (the fully connected products group samples differently), and each batch's
    /// gradient belongs to its own samples and labels.
    @Test(arguments: NumericBackend.allCases)
    func batchedPassAgreesWithSingleBatches(backend: NumericBackend) {
        let model = CNN(.lenet, backend: backend)
        let data = Dataset.synthetic(trainCount: 400, testCount: 10).train
        let p = model.initialParameters(seed: 6)
        let batches = (0..<6).map { b in
            MiniBatch(indices: (0..<(40 + 3 * b)).map { (b * 61 + $0 * 11) % 400 }, flipLabels: b == 2) }
        let n = model.parameterCount
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: batches.count * n)
        defer { out.deallocate() }
        let o = SendablePointer(out.baseAddress!)
        p.withUnsafeBufferPointer { pp in
            model.lossAndGradients(parameters: pp, data: data, batches: batches, executor: ParallelExecutor(threads: 2),
                                   workspace: CNNWorkspace(model: model, slots: 2)) { i, g, _ in
                (o.base + i * n).update(from: g.baseAddress!, count: n)
            }
        }
        let ws = CNNWorkspace(model: model, slots: 1)
        for (i, batch) in batches.enumerated() {
            var alone = [Float](repeating: 0, count: n)
            model.lossAndGradient(parameters: p, data: data, batch: batch, gradient: &alone, workspace: ws)
            var diff = 0.0, norm = 0.0
            for j in 0..<n {
                let e = Double(out[i * n + j] - alone[j])
                diff += e * e
                norm += Double(alone[j]) * Double(alone[j])
            }
            #expect(norm > 0 && (diff / norm).squareRoot() < 1e-5,
                "batch \(i): relative difference \((diff / norm).squareRoot())")
        }
    }

    /// A round of more than `passRows` samples goes through the model in groups of whole batches:
    /// every batch is consumed once, with its own gradient, whatever the thread count.
    @Test func largeRoundsGoInGroupsOfWholeBatches() {
        let model = CNN(.small, backend: .openblas)
        let data = Dataset.synthetic(trainCount: 400, testCount: 10).train
        let p = model.initialParameters(seed: 2)
        let batches = (0..<100).map { b in MiniBatch(indices: (0..<50).map { (b * 37 + $0 * 3) % 400 }) }
        #expect(batches.count * 50 > CNN.passRows)
        let n = model.parameterCount
        func run(threads: Int) -> [[Float]] {
            let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: batches.count * n)
            let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: batches.count)
            defer { out.deallocate(); seen.deallocate() }
            seen.initialize(repeating: 0)
            let o = SendablePointer(out.baseAddress!), s = SendablePointer(seen.baseAddress!)
            p.withUnsafeBufferPointer { pp in
                model.lossAndGradients(parameters: pp, data: data, batches: batches,
                                       executor: ParallelExecutor(threads: threads),
                                       workspace: CNNWorkspace(model: model, slots: threads)) { i, g, _ in
                    (o.base + i * n).update(from: g.baseAddress!, count: n)
                    s.base[i] += 1
                }
            }
            #expect(seen.allSatisfy { $0 == 1 })
            return (0..<batches.count).map { Array(out[$0 * n ..< ($0 + 1) * n]) }
        }
        let one = run(threads: 1)
        #expect(one == run(threads: 2))
        let ws = CNNWorkspace(model: model, slots: 1)
        for i in [0, 80, 81, 99] {
            var alone = [Float](repeating: 0, count: n)
            model.lossAndGradient(parameters: p, data: data, batch: batches[i], gradient: &alone, workspace: ws)
            let diff = zip(one[i], alone).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let norm = alone.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(norm > 0 && (diff / norm).squareRoot() < 1e-5, "batch \(i)")
        }
    }

    /// The register-blocked accumulation of the conv2 backward against a scalar loop, for every
    /// block path (32 elements, then 8, 16 or 24) and term count.
    @Test func addProductsMatchesScalarFusedSums() {
        var r = RandomStream(seed: 8, purpose: .syntheticData)
        let base = (0 ..< 400 + ShortRows.readPadding).map { _ in r.nextFloat(in: -1, 1) }
        for n in [8, 16, 24, 32, 40, 48, 56, 64, 104] { for terms in [0, 1, 2, 9] {
            let scales = (0..<terms).map { _ in r.nextFloat(in: -2, 2) }
            let offsets = (0..<terms).map { _ in r.nextInt(below: 400 - n) }
            let start = (0..<n).map { _ in r.nextFloat(in: -1, 1) }
            var expected = start
            for i in 0..<n {
                for t in 0..<terms { expected[i] = expected[i].addingProduct(scales[t], base[offsets[t] + i]) }
            }
            var y = start
            base.withUnsafeBufferPointer { b in
                ShortRows.addProducts(scales, b.baseAddress!, offsets, terms: terms, to: &y, count: n)
            }
            #expect(y == expected, "n = \(n), terms = \(terms)")
        } }
    }

    @Test func backendsAgreeToFloatTolerance() {
        let data = Dataset.synthetic(trainCount: 100, testCount: 10).train
        let batch = MiniBatch(indices: Array(0..<50))
        var grads: [[Float]] = []
        for backend in NumericBackend.allCases {
            let model = CNN(.lenet, backend: backend)
            var g = [Float](repeating: 0, count: model.parameterCount)
            model.lossAndGradient(parameters: model.initialParameters(seed: 4), data: data, batch: batch, gradient: &g,
                                  workspace: CNNWorkspace(model: model, slots: 1))
            grads.append(g)
        }
        let diff = zip(grads[0], grads[1]).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +).squareRoot()
        let norm = grads[0].map { Double($0) * Double($0) }.reduce(0, +).squareRoot()
        #expect(norm > 0)
        #expect(diff / norm < 1e-5, "relative difference \(diff / norm)")
    }

    @Test func initialisationIsFanInUniform() {
        let model = CNN(.lenet, backend: .openblas)
        let p = model.initialParameters(seed: 1)
        #expect(p == model.initialParameters(seed: 1))
        #expect(p != model.initialParameters(seed: 2))
        for t in model.layout.tensors {
            let bound = Float(1 / Double(t.fanIn).squareRoot())
            let slice = p[t.range]
            #expect(slice.allSatisfy { abs($0) <= bound })
            if t.count >= 500 { #expect(slice.map { abs($0) }.max()! > 0.9 * bound) }
        }
    }

    @Test func exponentialIsAccurate() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let ref = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(ElementaryFunctions.exp(x)) - ref) / ref)
            x += 0.0137
        }
        #expect(worst < 3e-7)
        #expect(ElementaryFunctions.exp(-100 as Float) == 0)
        #expect(ElementaryFunctions.exp(100 as Float) == .infinity)
        #expect(ElementaryFunctions.exp(Float.nan).isNaN)
        #expect(ElementaryFunctions.exp(0 as Float) == 1)
    }
}
