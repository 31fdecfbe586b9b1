/// Scratch memory for one forward/backward pass of a ``CNN``, sized for a batch and grown on
/// demand. Reusing a workspace keeps the training loop allocation-free.
///
/// Not thread-safe: use one workspace per thread (``WorkspacePool``).
public final class CNNWorkspace: @unchecked Sendable {
    let shape: CNNShape
    private(set) var capacity = 0
    private var storage: UnsafeMutablePointer<Float>?
    private var bytes: UnsafeMutablePointer<UInt8>?

    var input: UnsafeMutablePointer<Float>! = nil, col1: UnsafeMutablePointer<Float>! = nil
    var out1: UnsafeMutablePointer<Float>! = nil, pool1: UnsafeMutablePointer<Float>! = nil
    var col2: UnsafeMutablePointer<Float>! = nil, out2: UnsafeMutablePointer<Float>! = nil
    var pool2: UnsafeMutablePointer<Float>! = nil, flat: UnsafeMutablePointer<Float>! = nil
    var hidden: UnsafeMutablePointer<Float>! = nil, logits: UnsafeMutablePointer<Float>! = nil
    var dLogits: UnsafeMutablePointer<Float>! = nil, dHidden: UnsafeMutablePointer<Float>! = nil
    var dFlat: UnsafeMutablePointer<Float>! = nil, dPool2: UnsafeMutablePointer<Float>! = nil
    var dOut2: UnsafeMutablePointer<Float>! = nil, dPool1: UnsafeMutablePointer<Float>! = nil
    var dOut1: UnsafeMutablePointer<Float>! = nil
    var arg1: UnsafeMutablePointer<UInt8>! = nil, arg2: UnsafeMutablePointer<UInt8>! = nil
    var labels: UnsafeMutablePointer<UInt8>! = nil

    public init(shape: CNNShape, batch: Int = 50) {
        self.shape = shape
        reserve(batch: batch)
    }

    deinit {
        storage?.deallocate()
        bytes?.deallocate()
    }

    /// Makes room for a batch of `batch` samples (no-op when already large enough).
    func reserve(batch b: Int) {
        guard b > capacity else { return }
        storage?.deallocate()
        bytes?.deallocate()
        let s = shape, k2 = s.kernel * s.kernel
        let a1 = b * s.side1 * s.side1, p1 = b * s.pooled1 * s.pooled1
        let a2 = b * s.side2 * s.side2, p2 = b * s.pooled2 * s.pooled2
        let sizes = [b * s.imageSize, s.inChannels * k2 * a1, s.conv1 * a1, s.conv1 * p1,
                     s.conv1 * k2 * a2, s.conv2 * a2, s.conv2 * p2, b * s.flat,
                     b * s.hidden, b * s.classes, b * s.classes, b * s.hidden,
                     b * s.flat, s.conv2 * p2, s.conv2 * a2, s.conv1 * p1, s.conv1 * a1]
        // Each buffer starts on a 64-byte boundary.
        let padded = sizes.map { ($0 + 15) / 16 * 16 }
        let base = UnsafeMutablePointer<Float>.allocate(capacity: padded.reduce(0, +) + 16)
        let aligned = UnsafeMutablePointer<Float>(bitPattern: (Int(bitPattern: base) + 63) / 64 * 64)!
        var offsets: [UnsafeMutablePointer<Float>] = []
        var o = 0
        for p in padded { offsets.append(aligned + o); o += p }
        storage = base
        (input, col1, out1, pool1, col2, out2, pool2, flat) = (offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6], offsets[7])
        (hidden, logits, dLogits, dHidden, dFlat, dPool2, dOut2, dPool1, dOut1) =
            (offsets[8], offsets[9], offsets[10], offsets[11], offsets[12], offsets[13], offsets[14], offsets[15], offsets[16])
        let byteCount = s.conv1 * p1 + s.conv2 * p2 + b
        bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: byteCount)
        arg1 = bytes!
        arg2 = bytes! + s.conv1 * p1
        labels = bytes! + s.conv1 * p1 + s.conv2 * p2
        capacity = b
    }
}

/// One ``CNNWorkspace`` per thread slot of a ``ParallelExecutor``.
public final class WorkspacePool: @unchecked Sendable {
    private let workspaces: [CNNWorkspace]
    public init(model: CNN, slots: Int, batch: Int = 50) {
        workspaces = (0..<max(1, slots)).map { _ in CNNWorkspace(shape: model.shape, batch: batch) }
    }
    public subscript(slot: Int) -> CNNWorkspace { workspaces[slot] }
}
