/// im2col for stride-1, unpadded convolutions on activations stored [C][B][H][W].
///
/// col[(c·k + ky)·k + kx][(b·Ho + oy)·Wo + ox] = x[c][b][oy + ky][ox + kx], Ho = Wo = side − k + 1,
/// so that a convolution is W[Cout × C·k²] · col.
enum Im2Col {
    static func forward(_ x: UnsafePointer<Float>, channels: Int, batch: Int, side: Int, kernel k: Int,
                        into col: UnsafeMutablePointer<Float>) {
        let o = side - k + 1
        let columns = batch * o * o
        for c in 0..<channels {
            for ky in 0..<k { for kx in 0..<k {
                let row = col + ((c * k + ky) * k + kx) * columns
                for b in 0..<batch {
                    let plane = x + (c * batch + b) * side * side
                    for oy in 0..<o {
                        ShortRows.copy(plane + (oy + ky) * side + kx, to: row + (b * o + oy) * o, count: o)
                    }
                }
            } }
        }
    }

    /// The adjoint: dx[c][b][y][x] = Σ over (ky, kx) of dcol entries that read it, accumulated in
    /// (c, ky, kx) order.
    static func backward(_ dcol: UnsafePointer<Float>, channels: Int, batch: Int, side: Int, kernel k: Int,
                         into dx: UnsafeMutablePointer<Float>) {
        let o = side - k + 1
        let columns = batch * o * o
        dx.update(repeating: 0, count: channels * batch * side * side)
        for c in 0..<channels {
            for ky in 0..<k { for kx in 0..<k {
                let row = dcol + ((c * k + ky) * k + kx) * columns
                for b in 0..<batch {
                    let plane = dx + (c * batch + b) * side * side
                    for oy in 0..<o {
                        ShortRows.add(row + (b * o + oy) * o, to: plane + (oy + ky) * side + kx, count: o)
                    }
                }
            } }
        }
    }
}

/// Copies and sums of short rows (8 or 24 floats in lenet) without a library call per row.
enum ShortRows {
    @inline(__always)
    static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { dst[i] = src[i]; i += 1 }
    }

    @inline(__always)
    static func add(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let d = UnsafeMutableRawPointer(dst + i)
            d.storeBytes(of: d.loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self),
                         as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { dst[i] += src[i]; i += 1 }
    }
}

/// ReLU followed by 2×2 max pooling with stride 2, on planes of side×side (side even), fused:
/// max(0, max(window)) equals the max of the ReLU'd window, so the ReLU runs on the 4× smaller
/// output. The argmax of each window is stored as 0…3 in row-major window order (ties go to the
/// first maximum); the backward pass routes the gradient to it when the output is positive.
enum ReLUMaxPool2 {
    static func forward(_ x: UnsafePointer<Float>, planes: Int, side: Int, into y: UnsafeMutablePointer<Float>,
                        argmax: UnsafeMutablePointer<UInt8>) {
        let h = side / 2
        for p in 0..<planes {
            let src = x + p * side * side, dst = y + p * h * h, arg = argmax + p * h * h
            for oy in 0..<h {
                let r0 = src + 2 * oy * side, r1 = r0 + side
                for ox in 0..<h {
                    var best = r0[2 * ox], which: UInt8 = 0
                    if r0[2 * ox + 1] > best { best = r0[2 * ox + 1]; which = 1 }
                    if r1[2 * ox] > best { best = r1[2 * ox]; which = 2 }
                    if r1[2 * ox + 1] > best { best = r1[2 * ox + 1]; which = 3 }
                    dst[oy * h + ox] = max(best, 0)
                    arg[oy * h + ox] = which
                }
            }
        }
    }

    /// dx ← 0 except dx[argmax] = dy where the pooled output y is positive.
    static func backward(_ dy: UnsafePointer<Float>, output y: UnsafePointer<Float>, argmax: UnsafePointer<UInt8>,
                         planes: Int, side: Int, into dx: UnsafeMutablePointer<Float>) {
        let h = side / 2
        dx.update(repeating: 0, count: planes * side * side)
        for p in 0..<planes {
            let src = dy + p * h * h, out = y + p * h * h, arg = argmax + p * h * h, dst = dx + p * side * side
            for j in 0..<(h * h) where out[j] > 0 {
                let a = Int(arg[j]), oy = j / h, ox = j % h
                dst[(2 * oy + a / 2) * side + 2 * ox + a % 2] = src[j]
            }
        }
    }
}
