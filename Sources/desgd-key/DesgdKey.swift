import ArgumentParser
import DesgdCLI
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-key`: create the Ed25519 key pair that signs traces (`desgd-record --sign`), and print a
/// public key's fingerprint (what `desgd-audit` reports as the signer).
@main
struct DesgdKey: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-key",
        abstract: "Create an Ed25519 key pair for signed traces, and print a public key's fingerprint.",
        discussion: """
        A signed trace (desgd-record --sign KEY) holds an Ed25519 signature of its digest chain
        after every keyframe and at the end; desgd-audit reports who signed how much of it, and
        desgd-audit --trust KEY.pub exits 1 unless that key signed the whole file.

        Key files are one line of text: `desgd-ed25519-private <base64>` (the private key, mode
        0600) and `desgd-ed25519 <base64>` (the public key). A fingerprint is `SHA256:` and the hex
        of the first 16 bytes of SHA-256 of the 32-byte public key.

        Examples:
          desgd-key generate --out lab.key          # writes lab.key and lab.key.pub
          desgd-key fingerprint lab.key.pub

        Exit codes: 0 done, 2 bad usage or a bad key file (the message says what to change).
        """,
        version: "desgd \(DesgdVersion.current), trace format \(TraceFormat.major).\(TraceFormat.minor)",
        subcommands: [Generate.self, Fingerprint.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new private key to PATH (mode 0600) and its public key to PATH.pub; never overwrites.")

        @Option(help: ArgumentHelp("The private key file to create; the public key goes to this path with .pub appended.", valueName: "path"))
        var out: String

        func run() throws {
            let key = TraceSigningKey.generate()
            do { try key.write(to: out) } catch { throw CommandFailure.exit("desgd-key", error.message) }
            print("private key \(out) (mode 0600, keep it secret), public key \(out).pub")
            print("fingerprint \(key.publicKey.fingerprint)")
        }
    }

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the fingerprint of a public key file.")

        @Argument(help: ArgumentHelp("A public key file (desgd-ed25519 <base64>), e.g. PATH.pub of desgd-key generate.", valueName: "key.pub"))
        var publicKey: String

        func run() throws {
            do { print(try TracePublicKey.read(path: publicKey).fingerprint) } catch {
                throw CommandFailure.exit("desgd-key", error.message)
            }
        }
    }
}
