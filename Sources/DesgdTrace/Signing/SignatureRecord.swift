import Foundation

/// The payload of a signature record (type 6, raw; traces/FORMAT.md §3.6): an Ed25519 signature
/// of the digest of the record before it, that is of the whole file up to that record (the digest
/// chain, §3.3, makes the last digest stand for everything before it).
///
/// Layering as in sigstore's model signing: the chain hashes the content, the signed fields are
/// the manifest (which prefix, how many rounds, and for the final signature what the footer will
/// say), and the signature covers the manifest behind a domain-separation prefix, so that no other
/// message signed with the same key can pass for a trace signature.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | algorithm: 1 = Ed25519 (RFC 8032) |
/// | 1 | 1 | kind: 1 checkpoint, 2 final |
/// | 2 | 2 | reserved, 0 |
/// | 4 | 4 | flags: bit 0 (final only) the run stopped early, as in the footer |
/// | 8 | 8 | round records before this record (u64) |
/// | 16 | 8 | records before this record: its sequence number (u64) |
/// | 24 | 32 | the signer's public key |
/// | 56 | 32 | the signed digest: the previous record's digest |
/// | 88 | 64 | Ed25519 signature of ``domain`` ‖ bytes 0–87 |
public struct SignatureRecord: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// Written after every keyframe: covers the file up to it.
        case checkpoint = 1
        /// Written when the run ends, before the index and footer, whose content it commits to.
        case final = 2
    }

    public static let ed25519: UInt8 = 1
    public static let payloadSize = 152
    /// Bytes 0..<88 are signed.
    public static let signedFieldsSize = 88
    /// The domain-separation prefix of every signed message.
    public static let domain = Array("desgd-trace-signature-v1".utf8)

    public var kind: Kind
    /// Final signatures: the run stopped before its configured rounds (the footer's flag bit 0).
    public var interrupted: Bool
    public var roundRecords: UInt64
    /// Records before this one (the header record is record 0), which is its sequence number.
    public var precedingRecords: UInt64
    public var publicKey: TracePublicKey
    public var signedDigest: [UInt8]
    public var signature: [UInt8]

    /// Signs the file up to the record whose digest is `digest`.
    public static func signing(kind: Kind, interrupted: Bool, roundRecords: UInt64, precedingRecords: UInt64,
                               digest: [UInt8],
                               with key: TraceSigningKey) throws(TraceError) -> SignatureRecord {
        var r = SignatureRecord(kind: kind, interrupted: kind == .final && interrupted, roundRecords: roundRecords,
                                precedingRecords: precedingRecords, publicKey: key.publicKey, signedDigest: digest,
                                signature: [])
        r.signature = try key.sign(r.message)
        return r
    }

    /// Bytes 0–87 of the payload.
    public var signedFields: [UInt8] {
        var b = ByteWriter(capacity: Self.signedFieldsSize)
        b.append(Self.ed25519)
        b.append(kind.rawValue)
        b.append(UInt16(0))
        b.append(UInt32(interrupted ? 1 : 0))
        b.append(roundRecords)
        b.append(precedingRecords)
        b.append(publicKey.raw)
        b.append(signedDigest)
        return b.bytes
    }

    /// What the Ed25519 signature signs: ``domain`` followed by the signed fields.
    public var message: [UInt8] { Self.domain + signedFields }

    public var payload: [UInt8] { signedFields + signature }

    /// Whether the signature is the public key's signature of ``message``, verified strictly
    /// (``TracePublicKey/verifies(_:of:)``).
    public var signatureHolds: Bool { publicKey.verifies(signature, of: message) }

    /// Parses a payload, treating it as hostile: its size, every enumerated and reserved field and
    /// the key are checked; the signature itself is checked by ``signatureHolds``.
    public static func parse(_ payload: ArraySlice<UInt8>) -> Result<SignatureRecord, ParseFailure> {
        guard payload.count == payloadSize else {
            return .failure(ParseFailure("a signature payload is \(payloadSize) bytes, this one \(payload.count)"))
        }
        var r = ByteReader(payload)
        let algorithm = r.u8(), rawKind = r.u8(), reserved = r.u16(), flags = r.u32()
        guard algorithm == ed25519 else { return .failure(ParseFailure("unknown signature algorithm \(algorithm)")) }
        guard let kind = Kind(rawValue: rawKind) else {
            return .failure(ParseFailure("unknown signature kind \(rawKind)"))
        }
        guard reserved == 0 else { return .failure(ParseFailure("reserved signature bytes are not zero")) }
        guard flags & ~1 == 0, kind == .final || flags == 0 else {
            return .failure(ParseFailure("undefined signature flags \(flags)"))
        }
        let rounds = r.u64(), preceding = r.u64()
        let key: TracePublicKey
        do { key = try TracePublicKey(raw: r.bytes(32)) } catch {
            return .failure(ParseFailure("its public key is \(error.message)"))
        }
        let digest = r.bytes(32), signature = r.bytes(64)
        return .success(SignatureRecord(kind: kind, interrupted: flags & 1 != 0, roundRecords: rounds,
                                        precedingRecords: preceding,
                                        publicKey: key, signedDigest: digest, signature: signature))
    }
}
