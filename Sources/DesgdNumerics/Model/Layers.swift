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
}

/// Copies and sums of short rows (8 or 24 floats in lenet) without a library call per row.
enum ShortRows {
    @inline(__always)
    static func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            UnsafeMutableRawPointer(dst + i)
                .storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { dst[i] = src[i]; i += 1 }
    }

    /// Floats past the end of the round store's pool1 rows that stay readable: the conv2
    /// backward reads whole padded patch rows (``CNN/conv2RowStride``) from them.
    static let readPadding = 32

    /// y[0..<n] += Σ_t scales[t] · (base + offsets[t])[0..<n], n a multiple of 8: each element
    /// accumulates the terms in order t = 0, 1, … with one fused multiply-add each, in registers
    /// (blocks of 32 elements, then the last 8, 16 or 24 in one pass over the terms), so y is read
    /// and written once however many terms there are. Reads and writes exactly n floats of each
    /// source and of y: callers pad their rows to a multiple of 8.
    @inline(__always)
    static func addProducts(_ scales: UnsafePointer<Float>, _ base: UnsafePointer<Float>, _ offsets: UnsafePointer<Int>,
                            terms: Int,
                            to y: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i < n {
            let vectors = min(4, (n - i) / 8)
            let d = UnsafeMutableRawPointer(y + i)
            var a0 = d.loadUnaligned(as: SIMD8<Float>.self)
            var a1 = vectors > 1 ? d.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self) : SIMD8<Float>()
            var a2 = vectors > 2 ? d.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self) : SIMD8<Float>()
            var a3 = vectors > 3 ? d.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self) : SIMD8<Float>()
            accumulate(&a0, &a1, &a2, &a3, vectors: vectors, scales, base + i, offsets, terms: terms)
            d.storeBytes(of: a0, as: SIMD8<Float>.self)
            if vectors > 1 { d.storeBytes(of: a1, toByteOffset: 32, as: SIMD8<Float>.self) }
            if vectors > 2 { d.storeBytes(of: a2, toByteOffset: 64, as: SIMD8<Float>.self) }
            if vectors > 3 { d.storeBytes(of: a3, toByteOffset: 96, as: SIMD8<Float>.self) }
            i += 8 * vectors
        }
    }

    /// a_v += Σ_t scales[t] · (base + offsets[t])[8v ..< 8v+8] for the first `vectors` (1…4) of
    /// a0…a3, terms in order. `vectors` is the same for every term, so the branch is taken
    /// outside the loop over terms.
    @inline(__always)
    static func accumulate(_ a0: inout SIMD8<Float>, _ a1: inout SIMD8<Float>, _ a2: inout SIMD8<Float>,
                           _ a3: inout SIMD8<Float>,
                           vectors: Int, _ scales: UnsafePointer<Float>, _ base: UnsafePointer<Float>,
                           _ offsets: UnsafePointer<Int>,
                           terms: Int) {
        switch vectors {
        case 1:
            for t in 0..<terms {
                a0 = a0.addingProduct(SIMD8<Float>(repeating: scales[t]),
                    UnsafeRawPointer(base + offsets[t]).loadUnaligned(as: SIMD8<Float>.self))
            }
        case 2:
            for t in 0..<terms {
                let s = SIMD8<Float>(repeating: scales[t]), x = UnsafeRawPointer(base + offsets[t])
                a0 = a0.addingProduct(s, x.loadUnaligned(as: SIMD8<Float>.self))
                a1 = a1.addingProduct(s, x.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            }
        case 3:
            for t in 0..<terms {
                let s = SIMD8<Float>(repeating: scales[t]), x = UnsafeRawPointer(base + offsets[t])
                a0 = a0.addingProduct(s, x.loadUnaligned(as: SIMD8<Float>.self))
                a1 = a1.addingProduct(s, x.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                a2 = a2.addingProduct(s, x.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            }
        default:
            for t in 0..<terms {
                let s = SIMD8<Float>(repeating: scales[t]), x = UnsafeRawPointer(base + offsets[t])
                a0 = a0.addingProduct(s, x.loadUnaligned(as: SIMD8<Float>.self))
                a1 = a1.addingProduct(s, x.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                a2 = a2.addingProduct(s, x.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                a3 = a3.addingProduct(s, x.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
            }
        }
    }

    /// y ← max(y + bias, 0).
    @inline(__always)
    static func addBiasAndReLU(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        let zero = SIMD8<Float>()
        while i + 8 <= n {
            let d = UnsafeMutableRawPointer(y + i)
            d.storeBytes(of: pointwiseMax(d.loadUnaligned(as: SIMD8<Float>.self)
                + UnsafeRawPointer(bias + i).loadUnaligned(as: SIMD8<Float>.self), zero),
                         as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] = max(y[i] + bias[i], 0); i += 1 }
    }
}

/// 2×2 max pooling with stride 2, then the bias and ReLU: y = max(0, max(window) + bias). Adding
/// a channel's bias after the max equals adding it before (rounding is monotone), and the ReLU
/// runs on the 4× smaller output. The argmax of each window is stored as 0…3 in row-major window
/// order (ties go to the first maximum); the backward pass routes the gradient to it where the
/// output is positive.
enum ReLUMaxPool2 {
    /// Channel-major planes x[C][B][side][side] → channels-last y[B][side/2][side/2][C].
    static func forward(_ x: UnsafePointer<Float>, channels: Int, batch: Int, side: Int, bias: UnsafePointer<Float>,
                        into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>) {
        let h = side / 2
        for c in 0..<channels {
            let bc = bias[c]
            for b in 0..<batch {
                let src = x + (c * batch + b) * side * side
                let dst = y + b * h * h * channels + c, arg = argmax + b * h * h * channels + c
                for oy in 0..<h {
                    let r0 = src + 2 * oy * side, r1 = r0 + side
                    for ox in 0..<h {
                        var best = r0[2 * ox], which: UInt8 = 0
                        if r0[2 * ox + 1] > best { best = r0[2 * ox + 1]; which = 1 }
                        if r1[2 * ox] > best { best = r1[2 * ox]; which = 2 }
                        if r1[2 * ox + 1] > best { best = r1[2 * ox + 1]; which = 3 }
                        let at = (oy * h + ox) * channels
                        dst[at] = max(best + bc, 0)
                        arg[at] = which
                    }
                }
            }
        }
    }

    /// Channels-last x[B][side][side][C] → per-sample flat rows y[B][C·(side/2)²] in PyTorch's
    /// order (c, y, x).
    static func forwardChannelsLast(_ x: UnsafePointer<Float>, batch: Int, side: Int, channels: Int,
                                    bias: UnsafePointer<Float>,
                                    into y: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<UInt8>) {
        let h = side / 2, hw = h * h
        for b in 0..<batch {
            let dst = y + b * channels * hw, arg = argmax + b * channels * hw
            for oy in 0..<h { for ox in 0..<h {
                let r0 = x + ((b * side + 2 * oy) * side + 2 * ox) * channels
                let r1 = r0 + channels, r2 = r0 + side * channels, r3 = r2 + channels
                for c in 0..<channels {
                    var best = r0[c], which: UInt8 = 0
                    if r1[c] > best { best = r1[c]; which = 1 }
                    if r2[c] > best { best = r2[c]; which = 2 }
                    if r3[c] > best { best = r3[c]; which = 3 }
                    dst[c * hw + oy * h + ox] = max(best + bias[c], 0)
                    arg[c * hw + oy * h + ox] = which
                }
            } }
        }
    }
}

/// im2col for stride-1, unpadded convolutions on channels-last activations x[B][side][side][C]:
/// one row per output position, col[(b·o + oy)·o + ox][(ky·k + kx)·C + c] = x[b][oy+ky][ox+kx][c],
/// o = side − k + 1, so that a convolution is col · Wᵀ with W permuted to [Cout][k][k][C]. Each
/// row is k runs of k·C contiguous floats.
enum ChannelsLastIm2Col {
    static func forward(_ x: UnsafePointer<Float>, batch: Int, side: Int, channels: Int, kernel k: Int,
                        into col: UnsafeMutablePointer<Float>) {
        let o = side - k + 1, run = k * channels, rowLength = k * run
        for b in 0..<batch { for oy in 0..<o { for ox in 0..<o {
            let dst = col + ((b * o + oy) * o + ox) * rowLength
            for ky in 0..<k {
                ShortRows.copy(x + ((b * side + oy + ky) * side + ox) * channels, to: dst + ky * run, count: run)
            }
        } } }
    }
}
