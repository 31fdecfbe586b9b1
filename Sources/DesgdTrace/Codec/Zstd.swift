import CZstd

/// A reusable zstd compression context (one per writer: contexts are expensive to create).
///
/// Output is one frame with its content size declared and a content checksum, deterministic for a
/// given input and level (single-threaded compression).
public final class ZstdCompressor {
    let context: OpaquePointer
    public let level: Int32
    /// The output buffer ``withCompressed(_:_:)`` reuses from one call to the next: a fresh buffer
    /// of a paper round's size (11.6 MB written) cost a page fault per 4 KiB, zeroing and an unmap
    /// every round, about 2 ms of the 30 ms the round's compression takes.
    var output: UnsafeMutableRawBufferPointer?
    /// A frame bound above this is compressed into a buffer of its own, freed after the call: a
    /// writer keeps at most this much between records, whatever a rare large record (a state
    /// checkpoint holds every worker's momentum) needed.
    public static let retainedOutputLimit = 64 << 20

    public init(level: Int32) {
        context = ZSTD_createCCtx()
        self.level = level
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit {
        ZSTD_freeCCtx(context)
        output?.deallocate()
    }

    /// Compresses the concatenation of `parts` into one frame (without concatenating them first).
    public func compress(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        let bound = ZSTD_compressBound(parts.reduce(0) { $0 + $1.count })
        // zstd writes the output: no zero fill of a bound as large as the input (20 MB a paper round).
        return [UInt8](unsafeUninitializedCapacity: bound) { o, written in
            written = stream(parts, into: UnsafeMutableRawBufferPointer(o))
        }
    }

    /// Calls `body` with the frame of the concatenation of `parts` (the same bytes as
    /// ``compress(_:)``), in a buffer that stays valid for the call only: the next call reuses it.
    public func withCompressed<R, E: Error>(_ parts: [UnsafeRawBufferPointer],
                                            _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let bound = ZSTD_compressBound(parts.reduce(0) { $0 + $1.count })
        if bound > Self.retainedOutputLimit {
            let o = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 64)
            defer { o.deallocate() }
            return try body(UnsafeRawBufferPointer(rebasing: o[..<stream(parts, into: o)]))
        }
        if (output?.count ?? -1) < bound {
            output?.deallocate()
            output = .allocate(byteCount: bound, alignment: 64)
        }
        let o = output!
        return try body(UnsafeRawBufferPointer(rebasing: o[..<stream(parts, into: o)]))
    }

    /// Streams `parts` into one frame in `o` (at least ZSTD_compressBound of their total: with less
    /// room zstd stages blocks in its own buffer and the frame's bytes differ); returns its size.
    /// Every record ever written went through this sequence (the parts fed in turn, the last one
    /// with ZSTD_e_end): re-execution and resumption compare re-encoded records byte for byte.
    func stream(_ parts: [UnsafeRawBufferPointer], into o: UnsafeMutableRawBufferPointer) -> Int {
        let total = parts.reduce(0) { $0 + $1.count }
        precondition(o.count >= ZSTD_compressBound(total))
        ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        ZSTD_CCtx_setPledgedSrcSize(context, UInt64(total))
        var output = ZSTD_outBuffer(dst: o.baseAddress, size: o.count, pos: 0)
        for (k, part) in parts.enumerated() {
            var input = ZSTD_inBuffer(src: part.baseAddress, size: part.count, pos: 0)
            let last = k == parts.count - 1
            while true {
                let r = ZSTD_compressStream2(context, &output, &input, last ? ZSTD_e_end : ZSTD_e_continue)
                precondition(ZSTD_isError(r) == 0, "zstd: \(String(cString: ZSTD_getErrorName(r)))")
                if last ? r == 0 : input.pos == input.size { break }
            }
        }
        return output.pos
    }
}

/// A reusable zstd decompression context that refuses frames claiming more than a limit.
/// One context serves one thread at a time.
public final class ZstdDecompressor: @unchecked Sendable {
    let context: OpaquePointer

    public init() { context = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses exactly one frame whose declared content size is at most `limit`.
    /// The reason on failure is a phrase for a ``TraceError``.
    public func decompress(_ input: UnsafeRawBufferPointer, limit: UInt64) -> Result<[UInt8], ParseFailure> {
        let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if declared == ZSTD_CONTENTSIZE_ERROR { return .failure(ParseFailure("the payload is not a zstd frame")) }
        if declared == ZSTD_CONTENTSIZE_UNKNOWN {
            return .failure(ParseFailure("the zstd frame does not declare its size"))
        }
        if declared > limit {
            return .failure(ParseFailure("the zstd frame declares \(declared) bytes, above the limit of \(limit)"))
        }
        let frame = ZSTD_findFrameCompressedSize(input.baseAddress, input.count)
        if ZSTD_isError(frame) != 0 || frame != input.count {
            return .failure(ParseFailure("the payload is not exactly one complete zstd frame"))
        }
        var n = 0
        let out = [UInt8](unsafeUninitializedCapacity: Int(declared)) { o, count in
            n = ZSTD_decompressDCtx(context, o.baseAddress, o.count, input.baseAddress, input.count)
            count = ZSTD_isError(n) != 0 ? 0 : n
        }
        if ZSTD_isError(n) != 0 {
            return .failure(ParseFailure("zstd: \(String(cString: ZSTD_getErrorName(n)))"))
        }
        if UInt64(n) != declared { return .failure(ParseFailure("the zstd frame is shorter than it declares")) }
        return .success(out)
    }
}
