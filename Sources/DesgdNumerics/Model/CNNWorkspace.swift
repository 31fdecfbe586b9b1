/// Memory of the batched passes of a ``CNN``
/// (``CNN/lossAndGradients(parameters:data:batches:executor:workspace:consume:)``):
/// per-sample activations of every sample of a pass (the *round store*), and per-thread scratch
/// for one mini-batch at a time (the *slots*). Grown on demand and reused, so that the training
/// loop does not allocate its large buffers again.
///
/// Sizes on lenet (floats per sample): stored pool1 2 880 + 2 880 bytes, flat 800 + 800 bytes,
/// hidden 500, dHidden 500, dFlat 800, logits and dLogits 10 each: about 26 KB per sample, 78 MB
/// for a paper round of 3 000 samples. Each slot holds one mini-batch's im2col matrices and
/// conv1 output gradient (about 15 MB for a batch of 50) and one gradient vector.
///
/// Not thread-safe between passes: one pass at a time per workspace; inside a pass, thread slot
/// k uses only slot k's scratch and writes only the store rows of its own batches (phases 1 and
/// 3) or of its own chunk of rows (phase 2).
public final class CNNWorkspace: @unchecked Sendable {
    let shape: CNNShape
    let parameterCount: Int

    // MARK: Round store (rows = samples of the pass, in batch order)
    private(set) var storeRows = 0
    private(set) var storesBackward = false
    private var storeFloats: UnsafeMutablePointer<Float>?
    private var storeBytes: UnsafeMutablePointer<UInt8>?
    private var storeDoubles: UnsafeMutablePointer<Double>?
    /// [row][pooled1²][conv1], channels last (training only).
    var pool1: UnsafeMutablePointer<Float>! = nil
    var arg1: UnsafeMutablePointer<UInt8>! = nil
    /// [row][flat] in PyTorch's per-sample order (c, y, x): the pooled conv2 output.
    var flat: UnsafeMutablePointer<Float>! = nil
    var arg2: UnsafeMutablePointer<UInt8>! = nil
    var hidden: UnsafeMutablePointer<Float>! = nil, logits: UnsafeMutablePointer<Float>! = nil
    var dLogits: UnsafeMutablePointer<Float>! = nil, dHidden: UnsafeMutablePointer<Float>! = nil
    var dFlat: UnsafeMutablePointer<Float>! = nil
    var labels: UnsafeMutablePointer<UInt8>! = nil
    /// 1/B of the sample's mini-batch (the mean loss's weight).
    var sampleWeight: UnsafeMutablePointer<Float>! = nil
    /// Per-sample cross-entropy, in Double.
    var sampleLoss: UnsafeMutablePointer<Double>! = nil

    // MARK: Slots
    private(set) var slotBatch = 0
    private var slots: [Slot] = []
    /// conv2's weights permuted to [conv2][k][k][conv1] (the order of a channels-last im2col row).
    var conv2Weights: UnsafeMutablePointer<Float>
    /// The same as [conv2][k] rows of ``CNN/conv2RowStride`` floats, zero past k·conv1 (the
    /// conv2 backward's padded rows: their extra lanes add nothing).
    var conv2PaddedWeights: UnsafeMutablePointer<Float>

    /// Scratch of one thread for one mini-batch.
    final class Slot {
        let base: UnsafeMutablePointer<Float>
        let bytes: UnsafeMutablePointer<UInt8>
        /// [B][Cin·H·W] gathered images.
        let input: UnsafeMutablePointer<Float>
        /// [Cin·k²][B·side1²] (channel-major im2col of conv1).
        let col1: UnsafeMutablePointer<Float>
        /// [conv1][B·side1²]: conv1's output, then the gradient with respect to it.
        let out1: UnsafeMutablePointer<Float>
        /// [B·side2²][k²·conv1] (channels-last im2col of conv2).
        let col2: UnsafeMutablePointer<Float>
        /// [B·side2²][conv2]: conv2's output, channels last.
        let out2: UnsafeMutablePointer<Float>
        /// [pooled1²][conv1]: one sample's gradient with respect to pool1 (and a padded row's slack).
        let dPool1: UnsafeMutablePointer<Float>
        /// [conv2][k] rows of ``CNN/conv2RowStride``: conv2's weight gradient in the permuted order.
        let gradConv2: UnsafeMutablePointer<Float>
        /// The batch's gradient, in the parameter layout.
        let gradient: UnsafeMutablePointer<Float>
        /// pool1 and its argmax for forward-only passes (no store): [B][pooled1²][conv1].
        let pool1: UnsafeMutablePointer<Float>
        let arg1: UnsafeMutablePointer<UInt8>
        let arg2: UnsafeMutablePointer<UInt8>
        /// The conv2 outputs max-pooling kept, as terms of ``ShortRows/addProducts(_:_:_:terms:to:count:)``:
        /// gradients and offsets ([B·flat] each), grouped by channel for the weight gradient;
        /// `positionScales` and `positionOffsets` ([flat] each) group one sample's by output
        /// position for the input gradient; `counts` has room for max(conv2, side2²) + 1 counters.
        let termScales: UnsafeMutablePointer<Float>
        let termOffsets: UnsafeMutablePointer<Int>
        let positionScales: UnsafeMutablePointer<Float>
        let positionOffsets: UnsafeMutablePointer<Int>
        let counts: UnsafeMutablePointer<Int>

        init(shape s: CNNShape, batch b: Int, parameterCount d: Int, rowStride: Int) {
            let k2 = s.kernel * s.kernel
            let a1 = b * s.side1 * s.side1, a2 = b * s.side2 * s.side2
            let p1 = s.pooled1 * s.pooled1 * s.conv1
            // dPool1 is written in whole padded patch rows, up to rowStride floats past its end.
            let sizes = [b * s.imageSize, s.inChannels * k2 * a1, s.conv1 * a1, a2 * k2 * s.conv1, a2 * s.conv2,
                         p1 + rowStride, s.conv2 * s.kernel * rowStride, d, b * p1]
            // Each buffer starts on a 64-byte boundary.
            let padded = sizes.map { ($0 + 15) / 16 * 16 }
            base = .allocate(capacity: padded.reduce(0, +) + 16)
            var p = UnsafeMutablePointer<Float>(bitPattern: (Int(bitPattern: base) + 63) / 64 * 64)!
            var parts: [UnsafeMutablePointer<Float>] = []
            for n in padded { parts.append(p); p += n }
            (input, col1, out1, col2, out2, dPool1, gradConv2, gradient, pool1) =
                (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], parts[7], parts[8])
            bytes = .allocate(capacity: b * p1 + b * s.flat)
            arg1 = bytes
            arg2 = bytes + b * p1
            termScales = .allocate(capacity: b * s.flat)
            termOffsets = .allocate(capacity: b * s.flat)
            positionScales = .allocate(capacity: s.flat)
            positionOffsets = .allocate(capacity: s.flat)
            counts = .allocate(capacity: max(s.conv2, s.side2 * s.side2) + 1)
        }

        deinit {
            base.deallocate()
            bytes.deallocate()
            termScales.deallocate(); termOffsets.deallocate()
            positionScales.deallocate(); positionOffsets.deallocate(); counts.deallocate()
        }
    }

    /// A workspace for `slots` threads (``ParallelExecutor/threads``).
    public init(model: CNN, slots: Int) {
        shape = model.shape
        parameterCount = model.parameterCount
        conv2Weights = .allocate(capacity: model.layout.tensors[2].count)
        conv2PaddedWeights = .allocate(capacity: model.shape.conv2 * model.shape.kernel * model.conv2RowStride)
        conv2PaddedWeights.initialize(repeating: 0,
            count: model.shape.conv2 * model.shape.kernel * model.conv2RowStride)
        rowStride = model.conv2RowStride
        minimumSlots = max(1, slots)
    }

    private let minimumSlots: Int
    private let rowStride: Int

    deinit {
        storeFloats?.deallocate()
        storeBytes?.deallocate()
        storeDoubles?.deallocate()
        conv2Weights.deallocate()
        conv2PaddedWeights.deallocate()
    }

    subscript(slot: Int) -> Slot { slots[slot] }

    /// Makes room for a pass of `rows` samples in mini-batches of at most `batch`, on up to
    /// `threads` threads (no-op when already large enough).
    func reserve(rows: Int, batch: Int, threads: Int, backward: Bool) {
        let threads = max(threads, minimumSlots)
        if batch > slotBatch || slots.count < threads {
            let b = max(batch, slotBatch)
            slots = (0..<threads).map { _ in
                Slot(shape: shape, batch: b, parameterCount: parameterCount, rowStride: rowStride) }
            slotBatch = b
        }
        guard rows > storeRows || (backward && !storesBackward) else { return }
        let r = max(rows, storeRows), s = shape
        let backward = backward || storesBackward
        let p1 = s.pooled1 * s.pooled1 * s.conv1
        storeFloats?.deallocate(); storeBytes?.deallocate(); storeDoubles?.deallocate()
        let forwardFloats = [s.flat, s.hidden, s.classes, 1].map { $0 * r }
        let backwardFloats = backward ? [p1, s.classes, s.hidden, s.flat].map { $0 * r } : []
        let sizes = (forwardFloats + backwardFloats).map { ($0 + 15) / 16 * 16 }
        let base = UnsafeMutablePointer<Float>.allocate(capacity: sizes.reduce(0, +) + ShortRows.readPadding)
        var parts: [UnsafeMutablePointer<Float>] = []
        var p = base
        for n in sizes { parts.append(p); p += n }
        (flat, hidden, logits, sampleWeight) = (parts[0], parts[1], parts[2], parts[3])
        if backward { (pool1, dLogits, dHidden, dFlat) = (parts[4], parts[5], parts[6], parts[7]) }
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: r * (1 + (backward ? p1 + s.flat : 0)))
        labels = bytes
        if backward { arg1 = bytes + r; arg2 = bytes + r + r * p1 }
        storeFloats = base
        storeBytes = bytes
        storeDoubles = .allocate(capacity: r)
        sampleLoss = storeDoubles
        storeRows = r
        storesBackward = backward
    }
}
