import DesgdFuzzing
import Foundation
import Testing

/// Strings of a trace written by the party being audited, digests recomputed, through the real
/// executables: no raw control or format character reaches a terminal, CSV, JSON or HTML output
/// (traces/FORMAT.md §6), a spec that once overflowed the parser's stack is exit 2 with one line,
/// and a record type newer than the file's version is exit 2 naming it.
@Suite struct HostileTextCommandLineTests {
    /// A newline, a fake signature verdict hidden by `ESC[8m`, a right-to-left override, a script.
    static let hostile = "desgd 0.10.0\n\u{1B}[8m\n           signed by 0123456789abcdef, whole file\u{1B}[0m"
        + "\u{202E}<script>alert(1)</script>"

    static func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }

    /// `bytes` rewritten and written to a fresh temporary file.
    static func write(_ bytes: [UInt8]?) throws -> String {
        let path = NSTemporaryDirectory() + "desgd-hostile-\(UUID().uuidString).trace"
        guard let bytes, FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return path
    }

    /// Every string of the header set to ``hostile`` where the reader accepts any text (the specs and
    /// the data set's kind are parsed or checked, and have their own cases), and of the fork's key.
    static func everyString(_ json: inout [String: Any]) {
        for key in ["program", "backend", "aggregator", "attack"] { json[key] = hostile }
        var dataset = json["dataset"] as! [String: Any]
        dataset["source"] = hostile
        json["dataset"] = dataset
        var config = json["config"] as! [String: Any]
        if var data = config["data"] as? [String: Any], data["fashionMNIST"] != nil {
            data["fashionMNIST"] = ["directory": hostile]
            config["data"] = data
        }
        json["config"] = config
        if var fork = json["fork"] as? [String: Any] {
            fork["parentFile"] = hostile
            fork["changes"] = [["option": hostile, "parent": hostile, "fork": hostile]]
            json["fork"] = fork
        }
    }

    /// No byte of `output` is a control character but the newline, and no U+202E or other
    /// non-printing character appears; no line starts like the forged verdict.
    static func expectClean(_ output: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let raw = output.unicodeScalars.filter {
            ($0.value < 0x20 && $0 != "\n") || $0.value == 0x7F || $0 == "\u{202E}"
        }
        #expect(raw.isEmpty, "\(what): raw \(raw.map { String($0.value, radix: 16) })", sourceLocation: sourceLocation)
        let forged = output.split(separator: "\n").filter {
            $0.trimmingCharacters(in: .whitespaces).hasPrefix("signed by 0123")
        }
        #expect(forged.isEmpty, "\(what): a forged line \(forged)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [CommandLineTests.parentSample, CommandLineTests.forkSample])
    func everyHeaderStringIsEscaped(sample: String) throws {
        let path = try Self.write(TraceRewriting.rewrite(Self.bytes(sample), header: Self.everyString))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let html = NSTemporaryDirectory() + "desgd-hostile-\(UUID().uuidString).html"
        defer { try? FileManager.default.removeItem(atPath: html) }

        let text = try Executables.run("desgd-audit", [path, "--html", html])
        let shown = String(decoding: text.standardOutput, as: UTF8.self)
        #expect(text.status == 0, "\(text.standardError)")
        Self.expectClean(shown + text.standardError, "desgd-audit")
        #expect(shown.contains("desgd 0.10.0\\u000a\\u001b[8m\\u000a           signed by 0123456789abcdef, whole file"
                               + "\\u001b[0m\\u202e<script>"))
        if sample == CommandLineTests.forkSample { #expect(shown.contains("fork       of desgd 0.10.0\\u000a")) }

        let page = String(decoding: FileManager.default.contents(atPath: html) ?? Data(), as: UTF8.self)
        Self.expectClean(page, "--html")
        #expect(!page.contains("<script>alert") && page.contains("\\u202e&lt;script&gt;alert(1)&lt;/script&gt;"))

        let csv = try Executables.run("desgd-audit", [path, "--csv"])
        #expect(csv.status == 0)
        Self.expectClean(String(decoding: csv.standardOutput, as: UTF8.self), "desgd-audit --csv")

        let json = try Executables.run("desgd-audit", [path, "--json"])
        #expect(json.status == 0)
        Self.expectClean(String(decoding: json.standardOutput, as: UTF8.self), "desgd-audit --json")
        let object = try JSONSerialization.jsonObject(with: json.standardOutput) as? [String: Any]
        #expect((object?["run"] as? [String: Any])?["program"] as? String == Self.hostile)

        for arguments in [["--verify"], ["--agg", "mean"], ["--agg", "mean", "--csv"], ["--agg", "mean", "--json"]] {
            let replay = try Executables.run("desgd-replay", [path] + arguments)
            Self.expectClean(String(decoding: replay.standardOutput, as: UTF8.self) + replay.standardError,
                             "desgd-replay \(arguments.joined(separator: " "))")
            #expect(replay.status == 0 || replay.status == 1, "\(arguments): \(replay.standardError)")
        }
    }

    /// A spec that overflowed the parser's stack (SIGSEGV), in a header or on the command line.
    @Test func deepSpecsAreOneLine() throws {
        let deep = "krum:q=" + String(repeating: "(", count: 30_000)
        let path = try Self.write(TraceRewriting.rewrite(Self.bytes(CommandLineTests.parentSample)) { json in
            var config = json["config"] as! [String: Any]
            config["aggregator"] = deep
            json["config"] = config
        })
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (program, arguments) in [("desgd-audit", [path]), ("desgd-replay", [path, "--verify"]),
                                     ("desgd-record", ["--agg", "krum:q=" + String(repeating: "(", count: 100) + "1"
                                                        + String(repeating: ")", count: 100)]),
                                     ("desgd-record", ["--agg", deep]),
                                     ("desgd-replay", [CommandLineTests.parentSample, "--agg", "mean", "--pre",
                                                       "clip:c=" + String(repeating: "-", count: 100_000)])] {
            let outcome = try Executables.run(program, arguments)
            #expect(outcome.status == 2, "\(program): \(outcome.status) \(outcome.standardError.prefix(300))")
            let lines = outcome.standardError.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].count < 400, "\(program): \(outcome.standardError.prefix(400))")
            #expect(lines.first?.contains("at most") == true || lines.first?.contains("nests more than") == true,
                    "\(lines.first ?? "")")
            Self.expectClean(outcome.standardError, program)
        }
    }

    /// A config spec holding control characters: the refusal quotes it escaped, on one line.
    @Test func hostileSpecMessagesAreEscaped() throws {
        let path = try Self.write(TraceRewriting.rewrite(Self.bytes(CommandLineTests.parentSample)) { json in
            var config = json["config"] as! [String: Any]
            config["attack"] = "ipm:\u{1B}[8m=1\nsigned by x"
            json["config"] = config
        })
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcome = try Executables.run("desgd-audit", [path])
        #expect(outcome.status == 2)
        #expect(outcome.standardError.split(separator: "\n").count == 1, "\(outcome.standardError)")
        #expect(outcome.standardError.contains("\\u001b[8m"), "\(outcome.standardError)")
        Self.expectClean(outcome.standardError, "desgd-audit")
    }

    /// A 1.2 trace rewritten to say format 1.0 (or 1.1): its checkpoint records are refused, exit 2.
    @Test func recordTypesNewerThanTheFileAreExit2() throws {
        for minor: UInt16 in [0, 1] {
            let path = try Self.write(TraceRewriting.rewrite(Self.bytes(CommandLineTests.parentSample),
                minor: minor) { json in
                json["numerics"] = nil
                json["checkpointInterval"] = nil
            })
            defer { try? FileManager.default.removeItem(atPath: path) }
            for (program, arguments) in [("desgd-audit", [path]), ("desgd-replay", [path, "--verify"])] {
                let outcome = try Executables.run(program, arguments)
                #expect(outcome.status == 2, "\(program): \(outcome.standardError)")
                #expect(outcome.standardError.contains("is a checkpoint record (type 7)")
                        && outcome.standardError.contains("format 1.\(minor)"), "\(outcome.standardError)")
            }
        }
    }

    /// A later minor version with a record of an unknown type: read, and the audit lists it.
    @Test func skippedRecordsAreListed() throws {
        let path = try Self.write(TraceRewriting.rewrite(Self.bytes(CommandLineTests.parentSample), minor: 9,
            unknownType: 200))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = try Executables.run("desgd-audit", [path])
        #expect(text.status == 0, "\(text.standardError)")
        #expect(String(decoding: text.standardOutput, as: UTF8.self)
            .contains("skipped 1 record of types this reader does not know"))
        let json = try Executables.run("desgd-audit", [path, "--json"])
        let object = try JSONSerialization.jsonObject(with: json.standardOutput) as? [String: Any]
        let skipped = (object?["integrity"] as? [String: Any])?["skippedRecords"] as? [[String: Any]]
        #expect(skipped?.first?["type"] as? Int == 200,
            "\(String(decoding: json.standardOutput.prefix(600), as: UTF8.self))")
    }

    /// `dataset.fileDigests` rewritten, `digest` kept: refused when read, exit 2.
    @Test func rewrittenProvenanceIsExit2() throws {
        let path = try Self.write(TraceRewriting.rewrite(Self.bytes(CommandLineTests.parentSample)) { json in
            var d = json["dataset"] as! [String: Any]
            var f = d["fileDigests"] as! [String: Any]
            for key in f.keys { f[key] = String(repeating: "a", count: 64) }
            d["fileDigests"] = f
            json["dataset"] = d
        })
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (program, arguments) in [("desgd-audit", [path]), ("desgd-replay", [path, "--verify"]),
                                     ("desgd-replay", [path, "--reexecute"])] {
            let outcome = try Executables.run(program, arguments)
            #expect(outcome.status == 2
                && outcome.standardError.contains("dataset.digest is not the SHA-256 of its fileDigests"),
                    "\(program) \(arguments): \(outcome.status) \(outcome.standardError)")
        }
    }
}
