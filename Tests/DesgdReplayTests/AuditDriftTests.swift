@testable import DesgdAudit
@testable import DesgdReplay
import DesgdRobust
import Foundation
import Testing

/// The audit's drift section on a report built by hand: a run whose deviations turn persistent at
/// round 100 and whose accuracy collapses at round 160, with λ̂ small throughout.
@Suite struct AuditDriftTests {
    /// 200 rounds, one class per round (c = t mod 10), W = 10. The recorded rule's window
    /// persistence is 0.3 before round 100 and 0.95 from it on; λ̂ stays 0.4. Accuracy (every 20
    /// rounds) climbs to 80 % and falls to 30 % at round 160.
    static func report() -> AuditReport {
        var base = AuditHTMLTests.report(rows: 200)
        base.rows = base.rows.enumerated().map { t, row in
            var row = row
            row.classIndex = t % 10
            let persistent = t >= 100
            let k = t / 10 + 1
            for i in row.cells.indices where row.cells[i] != nil {
                row.cells[i]!.lambda = 0.4
                row.cells[i]!.exceedsBound = false
                let p = i == 0 && persistent ? 0.95 : 0.3
                row.cells[i]!.drift = GroupDrift(count: k, cumulative: p * Double(k), cumulativePersistence: p,
                                                 cumulativeCosine: p,
                                                 window: min(k, 10), windowed: p * 10, windowPersistence: p,
                                                 windowCosine: p)
                row.cells[i]!.modelDrift = ModelDrift(rounds: t + 1, displacement: 0.01 * Double(t + 1), persistence: p,
                                                      relative: persistent ? 0.5 : 0.05, shadowDisplacement: 1,
                                                      step: 0.01)
            }
            return row
        }
        base.accuracy = stride(from: 19, to: 200, by: 20).map { t in
            AuditReport.AccuracyPoint(round: t, accuracy: t < 150 ? min(0.8, 0.2 + 0.1 * Double(t / 20)) : 0.3, loss: 1)
        }
        base.drift = AuditDrift.section(base, window: 10, recent: .exponential, criteria: .init())
        return base
    }

    @Test func onsetLeadAndFlags() throws {
        let drift = try #require(Self.report().drift)
        #expect(drift.series.count == 3 && drift.series[0].points.count == 200)
        #expect(drift.onsets.count == 1)
        let onset = drift.onsets[0]
        #expect(onset.round == 159 && onset.previousRound == 139)
        #expect(abs(onset.accuracyBefore - 0.8) < 1e-12 && abs(onset.accuracyAfter - 0.3) < 1e-12)
        // Group figures are means of the groups' latest values: with n of ten groups at 0.95 and the
        // others at 0.3 the mean reaches 0.7 at n = 7, round 106.
        #expect(onset.persistentSince == 106)
        #expect(onset.leadRounds == 159 - 106)
        #expect(onset.modelRelative == 0.5)
        // One flag per class of the recorded rule (10 persistent aggregations each, rounds 100…199).
        let recorded = drift.flags.filter { $0.rule == AuditHTMLTests.rules[0] }
        #expect(recorded.count == 10 && recorded.allSatisfy { $0.aggregations == 10 && $0.maxLambda == 0.4 })
        #expect(recorded.map(\.classIndex).sorted() == Array(0..<10))
        #expect(drift.flags.count == recorded.count)  // the others stay at 0.3
    }

    /// No drop, no onset; a trace without drift has no drift section.
    @Test func noCollapseNoOnsetAndNoDriftNoSection() throws {
        var r = Self.report()
        r.accuracy = r.accuracy.map { var a = $0; a.accuracy = 0.8; return a }
        #expect(AuditDrift.section(r, window: 10, recent: .exponential, criteria: .init())?.onsets.isEmpty == true)
        let plain = AuditHTMLTests.report()
        #expect(AuditDrift.section(plain, window: nil, recent: nil, criteria: .init()) == nil)
        #expect(!AuditHTML.render(plain).contains("plot-drift"))
        #expect(AuditText.driftText(plain) == nil)
    }

    @Test func renderings() throws {
        let r = Self.report()
        let page = AuditHTML.render(r)
        let svg = try #require(AuditHTMLTests.svg("plot-drift", in: page))
        #expect(AuditHTMLTests.count("class=\"panel\"", in: svg) == 3)
        #expect(AuditHTMLTests.count("<g class=\"onset\">", in: svg) == 1)
        #expect(svg.contains("<title>collapse onset at round 159</title>"))
        #expect(AuditHTMLTests.count("<path class=\"series\"", in: svg) == 1 + 3 + 3)
        let text = AuditText.render(r)
        #expect(text.contains("Collapse onsets") && text.contains("Flags:"))
        let csv = AuditText.csv(r).split(separator: "\n")
        #expect(csv[0].contains("window_persistence") && csv.count == 201)
        let json = try RecordBodyJSON.encode(r)
        #expect(json.contains("\"leadRounds\":53"))
    }
}

/// The audit page as a reader sees it: rendered by headless Chromium (Debian's `chromium`), with a
/// measuring script injected into the test's copy only (the report itself has no script).
@Suite struct AuditHTMLBrowserTests {
    static let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static let required = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Writes the script's findings into `<pre id="measured">` as `key=value` lines: per SVG plot
    /// the number of series paths and how many have a non-empty bounding box (width or height: a
    /// constant series is a horizontal line), its marked points and dashed reference lines, then
    /// what `extra` (statements pushing to `lines`) measures, then the document's scroll and
    /// client widths.
    static func script(measuring extra: String = "") -> String {
        """
        <script>
        window.addEventListener('load', () => {
          const lines = [];
          for (const svg of document.querySelectorAll('svg.chart')) {
            const paths = svg.querySelectorAll('path.series');
            let drawn = 0;
            for (const p of paths) { const b = p.getBBox(); if (b.width > 0 || b.height > 0) drawn += 1; }
            const markers = svg.querySelectorAll('g.flags > *').length;
            const references = svg.querySelectorAll('g.reference').length;
            const box = svg.getBoundingClientRect();
            lines.push('svg ' + svg.id + ' paths=' + paths.length + ' drawn=' + drawn + ' markers=' + markers
              + ' references=' + references + ' width=' + Math.round(box.width));
          }
          \(extra)
          const root = document.documentElement;
          lines.push('scrollWidth=' + root.scrollWidth);
          lines.push('clientWidth=' + root.clientWidth);
          const pre = document.createElement('pre');
          pre.id = 'measured';
          pre.textContent = lines.join('\\n');
          document.body.appendChild(pre);
        });
        </script>
        """
    }

    /// Renders `page` at `width` pixels and returns the measured lines.
    static func measure(_ page: String, width: Int, script: String = script()) throws -> [String] {
        let path = NSTemporaryDirectory() + "desgd-audit-\(UUID().uuidString).html"
        try page.replacingOccurrences(of: "</body>", with: script + "</body>")
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let profile = NSTemporaryDirectory() + "desgd-chromium-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: profile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: browser!)
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                       "--user-data-dir=\(profile)",
                       "--window-size=\(width),900", "--virtual-time-budget=10000", "--dump-dom", "file://" + path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let dom = String(decoding: data, as: UTF8.self)
        guard let start = dom.range(of: "<pre id=\"measured\">"),
            let end = dom.range(of: "</pre>", range: start.upperBound..<dom.endIndex) else {
            return []
        }
        return dom[start.upperBound..<end.lowerBound].split(separator: "\n").map(String.init)
    }

    @Test(.enabled(if: browser != nil || required, "needs Debian's chromium (CI=true makes its absence a failure)"))
    func plotsAreDrawnAndNothingOverflows() throws {
        try #require(Self.browser != nil, "chromium is not installed: apt-get install -y chromium")
        let page = AuditHTML.render(AuditDriftTests.report())
        for width in [1100, 700] {
            let lines = try Self.measure(page, width: width)
            let plots = lines.filter { $0.hasPrefix("svg ") }
            #expect(plots.count == 6, "width \(width): \(lines)")
            for id in ["plot-gap", "plot-lambda", "plot-accuracy", "plot-byzantine-share", "plot-drift"] {
                let line = try #require(plots.first { $0.hasPrefix("svg \(id) ") }, "\(id) at width \(width)")
                let fields = Dictionary(uniqueKeysWithValues: line.split(separator: " ").dropFirst(2).map {
                    let kv = $0.split(separator: "=")
                    return (String(kv[0]), Int(kv[1]) ?? -1)
                })
                #expect(fields["paths"]! > 0 && fields["drawn"] == fields["paths"], "\(line)")
                #expect(fields["width"]! > 0 && fields["width"]! <= width, "\(line)")
            }
            let scroll = lines.first { $0.hasPrefix("scrollWidth=") }.flatMap { Int($0.dropFirst(12)) }
            let client = lines.first { $0.hasPrefix("clientWidth=") }.flatMap { Int($0.dropFirst(12)) }
            #expect(scroll != nil && client != nil && scroll! <= client!, "width \(width): \(lines)")
        }
    }
}
