import Foundation
import Testing
@testable import DesgdTrace

/// traces/FORMAT.md against the writer: the version the document states as current is the one the
/// writer writes (``TraceFormat/major``, ``TraceFormat/minor``), its history lists every minor
/// version up to it, and every record type the code defines is named in its table (§3.2). A change
/// of the writer's version or a new record type then fails here until the document follows.
@Suite struct FormatDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func document() throws -> [String] {
        let text = try String(contentsOf: root.appendingPathComponent("traces/FORMAT.md"), encoding: .utf8)
        return text.components(separatedBy: "\n")
    }

    static var current: String { "\(TraceFormat.major).\(TraceFormat.minor)" }

    /// The lines of section `heading` (a line starting with it), up to the next heading of its level or above.
    static func section(_ heading: String, in lines: [String]) -> [String] {
        guard let start = lines.firstIndex(where: { $0.hasPrefix(heading) }) else { return [] }
        let level = heading.prefix { $0 == "#" }.count
        let rest = lines[(start + 1)...]
        let end = rest.firstIndex { line in
            let hashes = line.prefix { $0 == "#" }.count
            return hashes > 0 && hashes <= level && line.dropFirst(hashes).hasPrefix(" ")
        } ?? lines.endIndex
        return Array(lines[start..<end])
    }

    /// The table cells of a Markdown row, trimmed (`| a | b |` gives ["a", "b"]).
    static func cells(_ row: String) -> [String] {
        row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
            .map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test func titleStatesTheWritersVersion() throws {
        let lines = try Self.document()
        #expect(lines.first == "# The desgd trace format, version \(Self.current)")
    }

    /// §2: the signature's rows state the major and the minor version the writer writes.
    @Test func signatureStatesTheWritersVersion() throws {
        let rows = Self.section("## 2. Signature", in: try Self.document()).map(Self.cells).filter { $0.count == 4 }
        let major = rows.first { $0[0] == "10" && $0[3].hasPrefix("major version") }
        let minor = rows.first { $0[0] == "12" && $0[3].hasPrefix("minor version") }
        #expect(major?[3].hasPrefix("major version, \(TraceFormat.major)") == true, "§2 major row: \(major ?? [])")
        #expect(minor?[3].hasPrefix("minor version, \(TraceFormat.minor) ") == true, "§2 minor row: \(minor ?? [])")
    }

    /// §10 lists every version 1.0 … current, in order, and nothing later.
    @Test func historyEndsAtTheWritersVersion() throws {
        let history = Self.section("## 10. Version history", in: try Self.document())
        let versions = history.compactMap { line -> String? in
            guard line.hasPrefix("- **"), let end = line.dropFirst(4).firstIndex(of: "*") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 4)..<end])
        }
        #expect(versions == (0...TraceFormat.minor).map { "\(TraceFormat.major).\($0)" })
    }

    /// §3.2 names every record type the code defines, with its number (type 0 reserved).
    @Test func everyRecordTypeIsNamed() throws {
        let table = Self.section("### 3.2 Record types", in: try Self.document())
        let rows = table.map(Self.cells).filter { $0.count >= 2 }
        for type in RecordType.allCases where type != .unknown {
            #expect(rows.contains { $0[0] == "\(type.rawValue)" && $0[1] == type.name },
                    "§3.2 has no row \(type.rawValue) | \(type.name)")
        }
        #expect(table.contains { $0.contains("Type 0 is reserved") })
    }

    /// Every committed sample is of a version the document lists, at most the writer's.
    @Test func samplesAreOfDocumentedVersions() throws {
        let history = Self.section("## 10. Version history", in: try Self.document()).joined(separator: "\n")
        let samples = Self.root.appendingPathComponent("traces/samples")
        let names = try FileManager.default.contentsOfDirectory(atPath: samples.path).filter { $0.hasSuffix(".trace") }
        #expect(!names.isEmpty)
        for name in names {
            let handle = try FileHandle(forReadingFrom: samples.appendingPathComponent(name))
            defer { try? handle.close() }
            let bytes = Array(try handle.read(upToCount: TraceFormat.signatureSize) ?? Data())
            let signature = try TraceParsing.signature(bytes[...])
            #expect(signature.minor <= TraceFormat.minor, "\(name)")
            #expect(history.contains("- **\(signature.major).\(signature.minor)**"), "\(name)")
        }
    }
}
