import CZlib
import Foundation

/// An error reading a data set: names the file and the problem, and says what to do.
public struct DataError: Error, Sendable, Equatable, CustomStringConvertible {
    public var explanation: Explanation
    public init(_ explanation: Explanation) { self.explanation = explanation }
    /// The text for a caller without a command line (the command-line layer renders ``explanation``).
    public var message: String { explanation.description }
    public var description: String { message }
}

/// Reader for the IDX format of LeCun's MNIST files (and Fashion-MNIST), raw or gzip-compressed.
///
/// Layout: a 4-byte magic `00 00 TT DD` (TT = element type, 0x08 = unsigned byte; DD = number of
/// dimensions), then DD big-endian UInt32 sizes, then the elements in row-major order. desgd reads
/// unsigned-byte files only. A reader must reject: a wrong magic or element type, a dimension
/// count other than the one expected, a file shorter or longer than the sizes declare, and
/// (for labels) values outside 0..<classes.
public enum IDX {
    /// Largest decompressed file accepted (Fashion-MNIST's training images are 47 MB).
    public static let maximumBytes = 512 << 20

    /// A decoded unsigned-byte IDX tensor.
    public struct Tensor: Sendable {
        public var dimensions: [Int]
        public var bytes: [UInt8]
    }

    /// Reads `url`, decompressing gzip when the file starts with the gzip magic `1f 8b`.
    public static func read(_ url: URL, expectedDimensions: Int) throws(DataError) -> Tensor {
        let raw: Data
        do { raw = try Data(contentsOf: url) } catch {
            throw DataError("cannot read \(url.path): \(error.localizedDescription)")
        }
        let bytes = raw.count >= 2 && raw[raw.startIndex] == 0x1f && raw[raw.startIndex + 1] == 0x8b
            ? try gunzip(raw, name: url.lastPathComponent) : [UInt8](raw)
        return try parse(bytes, expectedDimensions: expectedDimensions, name: url.lastPathComponent)
    }

    /// Parses the bytes of an (uncompressed) IDX file.
    public static func parse(_ b: [UInt8], expectedDimensions: Int, name: String) throws(DataError) -> Tensor {
        guard b.count >= 4 else { throw DataError("\(name): truncated IDX file (\(b.count) bytes, no header)") }
        guard b[0] == 0, b[1] == 0 else {
            throw DataError("\(name): not an IDX file (magic \(hex(b[0..<4])), expected 00"
                + " 00 08 0\(expectedDimensions))")
        }
        guard b[2] == 0x08 else {
            throw DataError("\(name): IDX element type 0x\(String(b[2], radix: 16)) is not unsigned byte (0x08)")
        }
        guard Int(b[3]) == expectedDimensions else {
            throw DataError("\(name): IDX file has \(b[3]) dimensions, expected \(expectedDimensions)")
        }
        let headerSize = 4 + 4 * expectedDimensions
        guard b.count >= headerSize else { throw DataError("\(name): truncated IDX header") }
        var dims: [Int] = []
        var total = 1
        for i in 0..<expectedDimensions {
            let o = 4 + 4 * i
            let v = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            dims.append(v)
            total = total.multipliedReportingOverflow(by: v).overflow ? Int.max : total * v
        }
        guard total <= maximumBytes else {
            throw DataError("\(name): declared size \(dims) is larger than any data set desgd reads")
        }
        let payload = b.count - headerSize
        guard payload == total else {
            throw DataError("\(name): dimensions \(dims.map(String.init).joined(separator: "×")) need \(total) bytes"
                + " but the file holds \(payload)"
                            + (payload < total ? " (truncated file)" : ""))
        }
        return Tensor(dimensions: dims, bytes: Array(b[headerSize...]))
    }

    /// Decompresses a gzip stream with zlib, refusing more than ``maximumBytes`` of output.
    static func gunzip(_ data: Data, name: String) throws(DataError) -> [UInt8] {
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header and trailer (checks the CRC-32).
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError("\(name): zlib could not be initialised")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        let failure: String? = data.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> String? in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while status != Z_STREAM_END {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { buf in
                    stream.next_out = buf.baseAddress
                    stream.avail_out = uInt(buf.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return buf.count - Int(stream.avail_out)
                }
                if status != Z_OK && status != Z_STREAM_END {
                    if status == Z_BUF_ERROR && stream.avail_in == 0 { return "truncated gzip stream" }
                    return "corrupt gzip stream (zlib status \(status))"
                }
                out.append(contentsOf: chunk[0..<produced])
                if out.count > maximumBytes { return "decompresses to more than \(maximumBytes >> 20) MiB" }
                if produced == 0 && stream.avail_in == 0 && status != Z_STREAM_END { return "truncated gzip stream" }
            }
            return nil
        }
        if let failure { throw DataError("\(name): \(failure)") }
        return out
    }

    static func hex(_ s: ArraySlice<UInt8>) -> String {
        s.map { String(format: "%02x", $0) }.joined(separator: " ")
    }
}
