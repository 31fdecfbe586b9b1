/// desgd's portable single-precision GEMM: a Goto-style blocked kernel in Swift SIMD.
///
/// Layout: op(A) is packed into panels of `mr` = 6 rows, op(B) into panels of `nr` = 16 columns,
/// K is blocked by `kc` = 256; a 6×16 micro-kernel keeps 12 `SIMD8<Float>` accumulators in
/// registers and issues one fused multiply-add per lane and k.
///
/// Order of operations (why the bits are portable): C is first scaled by β (or zeroed), then for
/// each K block, in increasing order, the block's product is formed by an FMA chain over k in
/// increasing order starting from 0, and added as C ← fma(α, block, C). Nothing depends on the
/// thread count, the CPU model, the instruction set or the memory alignment: every fma is
/// `addingProduct` (IEEE fma, one rounding), with FMA instructions (Package.swift: x86-64 is
/// compiled for haswell by default, arm64 has them in its baseline) or without (then the C
/// library's `fmaf`, tens of times slower; .ci/baseline-isa re-executes the samples so).
///
/// Complexity: O(m·n·k) time, O(kc·(mc + nc)) scratch memory per call.
public enum PortableGEMM {
    public static let mr = 6
    public static let nr = 16
    public static let kc = 256
    static let mc = 72
    static let nc = 1024

    public static func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                             alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        // C ← β·C (β = 0 writes zeros without reading C).
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 {
                for j in 0..<n { row[j] *= beta }
            }
        }
        if k == 0 || alpha == 0 { return }

        let aRow = transA == .none ? lda : 1, aCol = transA == .none ? 1 : lda   // op(A)[i][p] = a[i*aRow + p*aCol]
        let bRow = transB == .none ? ldb : 1, bCol = transB == .none ? 1 : ldb   // op(B)[p][j] = b[p*bRow + j*bCol]

        let packA = UnsafeMutablePointer<Float>.allocate(capacity: mc * kc)
        let packB = UnsafeMutablePointer<Float>.allocate(capacity: kc * nc)
        defer { packA.deallocate(); packB.deallocate() }
        var tile = [Float](repeating: 0, count: mr * nr)

        var jc = 0
        while jc < n {
            let ncb = min(nc, n - jc)
            var pc = 0
            while pc < k {
                let kcb = min(kc, k - pc)
                // Pack op(B)[pc..<pc+kcb, jc..<jc+ncb] as panels of nr columns, zero-padded.
                var jr = 0
                while jr < ncb {
                    let cols = min(nr, ncb - jr)
                    let dst = packB + jr * kcb
                    for p in 0..<kcb {
                        let src = b + (pc + p) * bRow + (jc + jr) * bCol
                        let d = dst + p * nr
                        if bCol == 1 {
                            d.update(from: src, count: cols)
                        } else {
                            for j in 0..<cols { d[j] = src[j * bCol] }
                        }
                        if cols < nr { (d + cols).update(repeating: 0, count: nr - cols) }
                    }
                    jr += nr
                }
                var ic = 0
                while ic < m {
                    let mcb = min(mc, m - ic)
                    // Pack op(A)[ic..<ic+mcb, pc..<pc+kcb] as panels of mr rows, zero-padded.
                    var ir = 0
                    while ir < mcb {
                        let rows = min(mr, mcb - ir)
                        let dst = packA + ir * kcb
                        for p in 0..<kcb {
                            let d = dst + p * mr
                            for r in 0..<rows { d[r] = a[(ic + ir + r) * aRow + (pc + p) * aCol] }
                            for r in rows..<mr { d[r] = 0 }
                        }
                        ir += mr
                    }
                    // Micro-kernels.
                    jr = 0
                    while jr < ncb {
                        let cols = min(nr, ncb - jr)
                        ir = 0
                        while ir < mcb {
                            let rows = min(mr, mcb - ir)
                            let cTile = c + (ic + ir) * ldc + (jc + jr)
                            if rows == mr && cols == nr {
                                kernel6x16(kcb, packA + ir * kcb, packB + jr * kcb, alpha, cTile, ldc)
                            } else {
                                // Edge tile: compute into a full scratch tile, then add the valid part.
                                tile.withUnsafeMutableBufferPointer { t in
                                    let tp = t.baseAddress!
                                    tp.update(repeating: 0, count: mr * nr)
                                    for r in 0..<rows { (tp + r * nr).update(from: cTile + r * ldc, count: cols) }
                                    kernel6x16(kcb, packA + ir * kcb, packB + jr * kcb, alpha, tp, nr)
                                    for r in 0..<rows { (cTile + r * ldc).update(from: tp + r * nr, count: cols) }
                                }
                            }
                            ir += mr
                        }
                        jr += nr
                    }
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }

    /// C[0..<6, 0..<16] ← fma(α, Σ_p A[:,p]·B[p,:], C), the sum an FMA chain over p from 0.
    @inline(__always)
    static func kernel6x16(_ kcb: Int, _ pa: UnsafePointer<Float>, _ pb: UnsafePointer<Float>,
                           _ alpha: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        var c40 = SIMD8<Float>(), c41 = SIMD8<Float>()
        var c50 = SIMD8<Float>(), c51 = SIMD8<Float>()
        var ap = pa, bp = pb
        for _ in 0..<kcb {
            let b0 = UnsafeRawPointer(bp).loadUnaligned(as: SIMD8<Float>.self)
            let b1 = UnsafeRawPointer(bp + 8).loadUnaligned(as: SIMD8<Float>.self)
            var a = SIMD8<Float>(repeating: ap[0]); c00.addProduct(a, b0); c01.addProduct(a, b1)
            a = SIMD8<Float>(repeating: ap[1]); c10.addProduct(a, b0); c11.addProduct(a, b1)
            a = SIMD8<Float>(repeating: ap[2]); c20.addProduct(a, b0); c21.addProduct(a, b1)
            a = SIMD8<Float>(repeating: ap[3]); c30.addProduct(a, b0); c31.addProduct(a, b1)
            a = SIMD8<Float>(repeating: ap[4]); c40.addProduct(a, b0); c41.addProduct(a, b1)
            a = SIMD8<Float>(repeating: ap[5]); c50.addProduct(a, b0); c51.addProduct(a, b1)
            ap += 6; bp += 16
        }
        let al = SIMD8<Float>(repeating: alpha)
        @inline(__always) func update(_ r: Int, _ v0: SIMD8<Float>, _ v1: SIMD8<Float>) {
            let p = UnsafeMutableRawPointer(c + r * ldc)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self).addingProduct(al, v0), as: SIMD8<Float>.self)
            let q = p + 32
            q.storeBytes(of: q.loadUnaligned(as: SIMD8<Float>.self).addingProduct(al, v1), as: SIMD8<Float>.self)
        }
        update(0, c00, c01); update(1, c10, c11); update(2, c20, c21)
        update(3, c30, c31); update(4, c40, c41); update(5, c50, c51)
    }
}
