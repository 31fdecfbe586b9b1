import ArgumentParser
import DesgdCLI
import DesgdSimulation
import DesgdTrace
import Foundation

/// `desgd-key`: create the Ed25519 key pair that signs traces (`desgd-record --sign`), print a
/// public key's fingerprint (what `desgd-audit` reports as the signer), and print the public key of
/// a private key.
@main
struct DesgdKey: ParsableCommand {
    static func main() { CommandLineMain.main(Self.self) }

    static let configuration = CommandConfiguration(
        commandName: "desgd-key",
        abstract: "Create an Ed25519 key pair for signed traces, print a public key's fingerprint "
            + "or a private key's public key.",
        discussion: """
        A signed trace (desgd-record --sign KEY) holds an Ed25519 signature of its digest chain \
        after every keyframe and at the end; desgd-audit reports who signed how much of it, and \
        desgd-audit --trust KEY.pub exits 1 unless that key signed the whole file.

        Key files are OpenSSH's: generate writes an unencrypted OpenSSH private key (mode 0600) \
        and a public key line `ssh-ed25519 <base64> desgd`, as ssh-keygen -t ed25519 -N '' does, \
        so that standard tools read them. Also read: PKCS#8 private keys (openssl genpkey \
        -algorithm ed25519) and desgd 0.10's `desgd-ed25519` lines. Keys that are not points of \
        the curve, or are of small order, are refused. A fingerprint is OpenSSH's, `SHA256:` and \
        the base64 of SHA-256 of the key's wire form: ssh-keygen -l -f KEY.pub prints the same.

        Examples:
          desgd-key generate --out lab.key          # writes lab.key and lab.key.pub
          desgd-key fingerprint lab.key.pub
          desgd-key public openssl.pem > openssl.pem.pub

        Exit codes: 0 done, 2 bad usage or a bad key file (the message says what to change).
        """,
        version: "desgd \(DesgdVersion.current), trace format \(TraceFormat.major).\(TraceFormat.minor)",
        subcommands: [Generate.self, Fingerprint.self, Public.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new OpenSSH private key to PATH (mode 0600) and its public key line to PATH.pub; "
                + "never overwrites.")

        @Option(help: ArgumentHelp("The private key file to create; the public key goes to this path with .pub"
            + " appended.", valueName: "path"))
        var out: String

        func run() throws {
            let key = TraceSigningKey.generate()
            do { try key.write(to: out) } catch { throw CommandFailure.exit("desgd-key", error.commandLineMessage) }
            print("private key \(out) (mode 0600, keep it secret), public key \(out).pub")
            print("fingerprint \(key.publicKey.fingerprint)")
        }
    }

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the fingerprint of a public key file.")

        @Argument(help: ArgumentHelp("A public key file (ssh-ed25519 <base64> [comment]), "
                                     + "e.g. PATH.pub of desgd-key generate.", valueName: "key.pub"))
        var publicKey: String

        func run() throws {
            do { print(try TracePublicKey.read(path: publicKey).fingerprint) } catch {
                throw CommandFailure.exit("desgd-key", error.commandLineMessage)
            }
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the OpenSSH public key line of a private key file "
                + "(OpenSSH, PKCS#8 or desgd-ed25519-private).")

        @Argument(help: ArgumentHelp("A private key file.", valueName: "key"))
        var privateKey: String

        func run() throws {
            do { print(try TraceSigningKey.read(path: privateKey).publicKey.openSSHLine()) } catch {
                throw CommandFailure.exit("desgd-key", error.commandLineMessage)
            }
        }
    }
}
