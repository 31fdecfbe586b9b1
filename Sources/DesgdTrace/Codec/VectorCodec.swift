/// The vector encoding of the trace format (FORMAT.md §4.2): the float32 bit patterns w, or with a
/// prediction p (an earlier vector of the record, possibly scaled) the zigzag-mapped difference
/// z = zigzag(w − bits(p) mod 2³²), split into four byte planes (byte 0 of every element, then
/// byte 1, 2, 3).
///
/// Why: sign/exponent bytes compress far better apart from noisy mantissa bytes (0.53 against 0.62
/// of the raw size on an IPM round); an honest message predicted by the first honest message of its
/// aggregation, and a Byzantine message or an aggregate predicted by a least-squares multiple of it,
/// leave small differences whose high bytes are mostly zero (−2.5 points on an IPM trace, against
/// −1.4 for XOR without scaling, measured on the quick preset).
///
/// Lossless for every bit pattern, NaN payloads included. O(d) time, no allocation besides the output.
public enum VectorCodec {
    @inline(__always) static func zigzag(_ d: UInt32) -> UInt32 {
        (d << 1) ^ UInt32(bitPattern: Int32(bitPattern: d) >> 31)
    }
    @inline(__always) static func unzigzag(_ z: UInt32) -> UInt32 { (z >> 1) ^ (0 &- (z & 1)) }

    /// Appends the encoding of `values` (as differences from `prediction` when given, same length) to `out`.
    /// With `scale`, the prediction is fl(scale × prediction) element by element, computed here as
    /// ``predict(from:scale:into:)`` computes it (one binary32 multiply each), without a buffer for it.
    /// 16 elements at a time with SIMD, like ``decode(_:into:prediction:)``.
    public static func encode(_ values: UnsafeBufferPointer<Float>, prediction: UnsafeBufferPointer<Float>?,
                              scale: Float? = nil,
                              into out: inout [UInt8]) {
        let n = values.count
        if let prediction { precondition(prediction.count == n, "VectorCodec: prediction length differs") }
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 4 * n))
        guard n > 0 else { return }
        out.withUnsafeMutableBufferPointer { o in
            let p0 = o.baseAddress! + start, p1 = p0 + n, p2 = p1 + n, p3 = p2 + n
            let v = UnsafeRawPointer(values.baseAddress!)
            let r = prediction.map { UnsafeRawPointer($0.baseAddress!) }
            @inline(__always) func predicted(_ i: Int) -> UInt32 {
                let x = r!.load(fromByteOffset: 4 * i, as: Float.self)
                return scale.map { ($0 * x).bitPattern } ?? x.bitPattern
            }
            var i = 0
            while i + 16 <= n {
                var w = v.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                if let r {
                    var p = r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
                    if let scale {
                        let x = r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * scale
                        p = unsafeBitCast(x, to: SIMD16<UInt32>.self)
                    }
                    let d = w &- p
                    w = (d &<< 1) ^ SIMD16<UInt32>(truncatingIfNeeded: SIMD16<Int32>(truncatingIfNeeded: d) &>> 31)
                }
                UnsafeMutableRawPointer(p0 + i)
                    .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: w), as: SIMD16<UInt8>.self)
                UnsafeMutableRawPointer(p1 + i)
                    .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: w &>> 8), as: SIMD16<UInt8>.self)
                UnsafeMutableRawPointer(p2 + i)
                    .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: w &>> 16), as: SIMD16<UInt8>.self)
                UnsafeMutableRawPointer(p3 + i)
                    .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: w &>> 24), as: SIMD16<UInt8>.self)
                i += 16
            }
            while i < n {
                let x = v.load(fromByteOffset: 4 * i, as: UInt32.self)
                split(r == nil ? x : zigzag(x &- predicted(i)), i, p0, p1, p2, p3)
                i += 1
            }
        }
    }

    @inline(__always)
    static func split(_ w: UInt32, _ i: Int, _ p0: UnsafeMutablePointer<UInt8>, _ p1: UnsafeMutablePointer<UInt8>,
                      _ p2: UnsafeMutablePointer<UInt8>, _ p3: UnsafeMutablePointer<UInt8>) {
        p0[i] = UInt8(truncatingIfNeeded: w)
        p1[i] = UInt8(truncatingIfNeeded: w >> 8)
        p2[i] = UInt8(truncatingIfNeeded: w >> 16)
        p3[i] = UInt8(truncatingIfNeeded: w >> 24)
    }

    /// The prediction of FORMAT.md §4.2: the reference itself, or fl(scale × reference) element by
    /// element (one binary32 multiply each: the same bits in any IEEE 754 implementation).
    public static func predict(from reference: UnsafeBufferPointer<Float>, scale: Float?,
        into out: UnsafeMutableBufferPointer<Float>) {
        precondition(reference.count == out.count)
        if let scale {
            for i in 0..<out.count { out[i] = scale * reference[i] }
        } else {
            _ = out.update(fromContentsOf: reference)
        }
    }

    /// Decodes `count` elements from `bytes` (exactly 4·count bytes), adding back `prediction` when given.
    public static func decode(_ bytes: UnsafeRawBufferPointer, count n: Int, prediction: [Float]?) -> [Float] {
        var out = [Float](unsafeUninitializedCapacity: n) { _, k in k = n }
        out.withUnsafeMutableBufferPointer { o in
            if let prediction {
                prediction.withUnsafeBufferPointer { decode(bytes, into: o, prediction: $0) }
            } else {
                decode(bytes, into: o, prediction: nil)
            }
        }
        return out
    }

    /// Decodes `out.count` elements from `bytes` (4·count bytes) into `out`, adding back `prediction`.
    /// 16 elements at a time with SIMD (the byte planes are contiguous, so each step is four
    /// 16-byte loads, widenings and shifts).
    public static func decode(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>,
                              prediction: UnsafeBufferPointer<Float>?) {
        let n = out.count
        precondition(bytes.count == 4 * n && (prediction?.count ?? n) == n)
        guard n > 0 else { return }
        let b = bytes.baseAddress!
        let o = UnsafeMutableRawPointer(out.baseAddress!)
        let r = prediction.map { UnsafeRawPointer($0.baseAddress!) }
        var i = 0
        while i + 16 <= n {
            let p0 = SIMD16<UInt32>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self))
            let p1 = SIMD16<UInt32>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: n + i, as: SIMD16<UInt8>.self))
            let p2 = SIMD16<UInt32>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: 2 * n + i,
                as: SIMD16<UInt8>.self))
            let p3 = SIMD16<UInt32>(truncatingIfNeeded: b.loadUnaligned(fromByteOffset: 3 * n + i,
                as: SIMD16<UInt8>.self))
            var w = p0 | p1 &<< 8 | p2 &<< 16 | p3 &<< 24
            if let r {
                w = (w &>> 1) ^ (SIMD16<UInt32>(repeating: 0) &- (w & 1))
                w &+= r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<UInt32>.self)
            }
            o.storeBytes(of: w, toByteOffset: 4 * i, as: SIMD16<UInt32>.self)
            i += 16
        }
        let u = b.assumingMemoryBound(to: UInt8.self)
        while i < n {
            var w = UInt32(u[i]) | UInt32(u[n + i]) << 8 | UInt32(u[2 * n + i]) << 16 | UInt32(u[3 * n + i]) << 24
            if let r { w = unzigzag(w) &+ r.load(fromByteOffset: 4 * i, as: UInt32.self) }
            o.storeBytes(of: w, toByteOffset: 4 * i, as: UInt32.self)
            i += 1
        }
    }

    /// A 64-bit fingerprint of the bit patterns, to find identical vectors before comparing them.
    /// Four independent multiply–xorshift chains over 32 bytes at a time: one chain waited for its
    /// multiply at every 8 bytes and took 6 ms for a paper round's 20 MB, against 2.5 ms.
    /// Not stored in traces: only equal fingerprints for equal vectors matter.
    public static func fingerprint(_ values: UnsafeBufferPointer<Float>) -> UInt64 {
        let n = values.count
        let seed: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        guard n > 0 else { return seed }
        let v = UnsafeRawPointer(values.baseAddress!)
        @inline(__always) func mix(_ h: UInt64, _ w: UInt64) -> UInt64 {
            let m = (h ^ w) &* 0xFF51_AFD7_ED55_8CCD
            return m ^ (m >> 29)
        }
        var h0 = seed, h1 = seed &+ 1, h2 = seed &+ 2, h3 = seed &+ 3
        var i = 0
        while i + 8 <= n {
            h0 = mix(h0, v.loadUnaligned(fromByteOffset: 4 * i, as: UInt64.self))
            h1 = mix(h1, v.loadUnaligned(fromByteOffset: 4 * i + 8, as: UInt64.self))
            h2 = mix(h2, v.loadUnaligned(fromByteOffset: 4 * i + 16, as: UInt64.self))
            h3 = mix(h3, v.loadUnaligned(fromByteOffset: 4 * i + 24, as: UInt64.self))
            i += 8
        }
        while i < n {
            h0 = mix(h0, UInt64(v.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            i += 1
        }
        return mix(mix(mix(h0, h1), h2), h3)
    }
}
