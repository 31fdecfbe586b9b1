import Foundation
import Testing

/// The house style's line lengths hold for the whole repository (docs/testing.md): Swift under
/// Sources and Tests within 120 columns, the Python package within PEP 8's 79 (black and
/// pycodestyle are configured in python/pyproject.toml and python/setup.cfg), and the prose of the
/// hand-written Markdown (README, CHANGELOG, docs/, traces/FORMAT.md, python/README.md) within 120
/// outside code blocks and tables (an install command or a table row is one line whatever its
/// length). A column is a Unicode scalar, so a combining accent counts: stricter than what a
/// terminal shows.
@Suite struct HouseStyleTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// "path:line (N columns)" for every line of the files under `folders` ending in `suffix` that is
    /// longer than `limit`.
    static func longLines(under folders: [String], suffix: String, limit: Int) throws -> [String] {
        var found: [String] = []
        for folder in folders {
            let root = repository + "/" + folder
            guard let walker = FileManager.default.enumerator(atPath: root) else {
                throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: root])
            }
            for case let relative as String in walker
            where relative.hasSuffix(suffix) && !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                let text = try String(contentsOfFile: root + "/" + relative, encoding: .utf8)
                for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                where line.unicodeScalars.count > limit {
                    found.append("\(folder)/\(relative):\(i + 1) (\(line.unicodeScalars.count) columns)")
                }
            }
        }
        return found.sorted()
    }

    /// "path:line (N columns)" for every prose line of the Markdown files longer than `limit`: lines
    /// inside ``` fences and table rows (starting with `|`) are not prose.
    static func longProseLines(in files: [String], limit: Int) throws -> [String] {
        var found: [String] = []
        for file in files {
            let text = try String(contentsOfFile: repository + "/" + file, encoding: .utf8)
            var fenced = false
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.drop { $0 == " " }
                if trimmed.hasPrefix("```") { fenced.toggle(); continue }
                guard !fenced, !trimmed.hasPrefix("|"), line.unicodeScalars.count > limit else { continue }
                found.append("\(file):\(i + 1) (\(line.unicodeScalars.count) columns)")
            }
        }
        return found
    }

    @Test func swiftLinesFitIn120Columns() throws {
        let long = try Self.longLines(under: ["Sources", "Tests"], suffix: ".swift", limit: 120)
        #expect(long.isEmpty, "over 120 columns: \(long.prefix(20).joined(separator: ", "))")
    }

    @Test func pythonLinesFitIn79Columns() throws {
        let long = try Self.longLines(under: ["python"], suffix: ".py", limit: 79)
        #expect(long.isEmpty, "over 79 columns (PEP 8): \(long.prefix(20).joined(separator: ", "))")
    }

    @Test func markdownProseFitsIn120Columns() throws {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Self.repository + "/docs")
            .filter { $0.hasSuffix(".md") }.sorted().map { "docs/" + $0 }
        let files = ["README.md", "CHANGELOG.md", "traces/FORMAT.md", "python/README.md"] + docs
        let long = try Self.longProseLines(in: files, limit: 120)
        #expect(long.isEmpty, "prose over 120 columns: \(long.prefix(20).joined(separator: ", "))")
    }
}
