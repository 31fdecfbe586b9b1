import Crypto
import DesgdNumerics

/// What a live federation's client signs for each message it sends (FORMAT.md §5.3.1), so that the
/// trace's messages are provably what the clients sent: a server that alters or invents a client's
/// message cannot produce its signature.
///
/// The payload binds the message to the run (the trace's header record), the round, the class and
/// the worker, and holds the vector through its SHA-256:
///
///     "desgd-client-message-v1" 0x00 ‖ runTag (32) ‖ round ‖ class ‖ worker ‖ SHA-256(vector)
///
/// with round, class (−1 in the baseline) and worker as int64 little-endian and the vector as its
/// float32 little-endian bytes. `runTag` is the chain digest of the trace's header record (FORMAT.md
/// §3.3), which the server gives its clients before the first round: a message signed for another
/// run, round, class or worker does not verify here.
public enum ClientMessageSignature {
    public static let domain: [UInt8] = Array("desgd-client-message-v1".utf8) + [0]
    public static let signatureSize = 64
    public static let publicKeySize = 32

    public static func payload(
        runTag: [UInt8], round: Int, classIndex: Int, worker: Int,
        vector: UnsafeBufferPointer<Float>
    ) -> [UInt8] {
        var bytes = domain + runTag
        for v in [round, classIndex, worker] { withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 } }
        // float32 little-endian: the machine's own layout on every platform desgd builds for.
        bytes += SHA256.hash(data: UnsafeRawBufferPointer(vector))
        return bytes
    }

    /// Whether `signature` is `key`'s signature of the payload, verified strictly
    /// (``TracePublicKey/verifies(_:of:)``).
    public static func verifies(
        _ signature: [UInt8], key: TracePublicKey, runTag: [UInt8], round: Int,
        classIndex: Int, worker: Int, vector: UnsafeBufferPointer<Float>
    ) -> Bool {
        key.verifies(
            signature,
            of: payload(
                runTag: runTag, round: round, classIndex: classIndex, worker: worker,
                vector: vector))
    }
}
