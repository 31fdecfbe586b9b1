import DesgdNumerics
import Foundation

/// The PEM armor of private key files (RFC 7468): `-----BEGIN LABEL-----`, base64 lines,
/// `-----END LABEL-----`. Read as hostile input; the callers bound the file's size first.
enum PEMArmor {
    /// The bytes between the BEGIN and END lines of `label`, or an error naming `source`.
    static func decode(_ text: String, label: String, source: String) throws(TraceError) -> [UInt8] {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard lines.first == "-----BEGIN \(label)-----", lines.count >= 2, lines.last == "-----END \(label)-----" else {
            throw .corrupted("\(source): not a PEM block `-----BEGIN \(label)-----` … `-----END \(label)-----`")
        }
        let body = lines.dropFirst().dropLast()
        // RFC 7468 headers ("Proc-Type: 4,ENCRYPTED", …) mark an encrypted legacy key.
        if body.contains(where: { $0.contains(":") }) {
            throw .usage("\(source) is an encrypted or annotated PEM key: decrypt a copy first "
                         + Explanation("(ssh-keygen -p, or openssl pkey)"))
        }
        guard let data = Data(base64Encoded: body.joined()) else {
            throw .corrupted("\(source): the PEM body is not base64")
        }
        return Array(data)
    }

    /// `bytes` armored as `label`, base64 lines of `width` characters, ending with a newline.
    static func encode(_ bytes: [UInt8], label: String, width: Int) -> String {
        let b64 = Array(Data(bytes).base64EncodedString())
        var out = "-----BEGIN \(label)-----\n"
        var i = 0
        while i < b64.count {
            let end = min(i + width, b64.count)
            out += String(b64[i..<end]) + "\n"
            i = end
        }
        return out + "-----END \(label)-----\n"
    }
}
