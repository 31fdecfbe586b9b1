import Foundation

// Small inline-SVG charts for the HTML audit report: line charts over rounds and a box plot per
// rule. Everything is computed from the data with fixed rules (no clock, no dictionary order, no
// locale), so the same data gives the same bytes.

/// Text and number formatting of the HTML report and its charts.
enum AuditFormat {
    /// Four significant digits (`%.4g`: `0.1235`, `12.35`, `1.235e+05`); `—` for undefined.
    static func sig4(_ x: Double?) -> String {
        guard let x else { return "—" }
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x < 0 ? "−∞" : "∞" }
        if x == 0 { return "0" }
        return String(format: "%.4g", x)
    }

    /// A percentage with one decimal (`83.4%`).
    static func percent(_ x: Double) -> String {
        x.isFinite ? String(format: "%.1f%%", 100 * x) : sig4(x)
    }

    /// An SVG coordinate: one decimal, computed with integers (`12.5`, `-3`, `40`).
    static func coord(_ x: Double) -> String {
        let clamped = Swift.max(-1e7, Swift.min(1e7, x.isFinite ? x : 0))
        let tenths = Int((clamped * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        let a = abs(tenths)
        return a % 10 == 0 ? "\(sign)\(a / 10)" : "\(sign)\(a / 10).\(a % 10)"
    }

    /// `&`, `<`, `>`, `"` and `'` as character references: safe in text and in quoted attributes.
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// `s` shortened to `limit` characters with a trailing ellipsis.
    static func shortened(_ s: String, _ limit: Int) -> String {
        s.count <= limit ? s : String(s.prefix(Swift.max(1, limit - 1))) + "…"
    }
}

/// The report's fixed palette: colour i belongs to rule column i (the recorded rule is column 0).
/// Twenty distinguishable colours; beyond them the colours repeat with a dash pattern.
enum ChartPalette {
    static let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#e7969c", "#7b4173", "#3182bd",
        "#e6550d", "#31a354", "#756bb1", "#636363",
    ]
    static func colour(_ index: Int) -> String { colours[index % colours.count] }
    /// `nil` for the first twenty columns, then a dash pattern so repeated colours stay apart.
    static func dash(_ index: Int) -> String? { index < colours.count ? nil : "2 3" }
}

/// One point of a line: `y == nil` is a gap in the line.
struct ChartPoint: Equatable {
    var x: Double
    var y: Double?
}

/// Rows grouped into at most `limit` buckets of consecutive rounds, for lines that stay light with
/// thousands of rounds: a bucket's point is the maximum of its defined values, at the round where it
/// is reached; a bucket with no defined value is a gap.
struct RoundBuckets {
    /// The bucket of each input position.
    let bucketOf: [Int]
    /// The first round of each bucket.
    let firstRound: [Int]
    let distinctRounds: Int
    /// The largest number of input positions (aggregations) sharing one round.
    let maxPerRound: Int
    /// Fewest and most rounds in one bucket.
    let roundsPerBucket: (min: Int, max: Int)

    var count: Int { firstRound.count }
    var isDownsampled: Bool { count < distinctRounds }

    init(rounds: [Int], limit: Int) {
        let distinct = Array(Set(rounds)).sorted()
        let b = Swift.max(1, Swift.min(limit, distinct.count))
        var bucketOfRound: [Int: Int] = [:]
        var first: [Int] = []
        var sizes: [Int] = []
        for (rank, r) in distinct.enumerated() {
            let k = rank * b / distinct.count
            bucketOfRound[r] = k
            if k == first.count { first.append(r); sizes.append(0) }
            sizes[k] += 1
        }
        var perRound: [Int: Int] = [:]
        for r in rounds { perRound[r, default: 0] += 1 }
        bucketOf = rounds.map { bucketOfRound[$0]! }
        firstRound = first
        distinctRounds = distinct.count
        maxPerRound = perRound.values.max() ?? 0
        roundsPerBucket = (sizes.min() ?? 0, sizes.max() ?? 0)
    }

    /// One point per bucket: the maximum defined, finite value (x = its round), or a gap.
    func maxima(rounds: [Int], values: [Double?]) -> [ChartPoint] {
        var best = [ChartPoint](repeating: ChartPoint(x: 0, y: nil), count: count)
        for k in 0..<count { best[k].x = Double(firstRound[k]) }
        for (i, v) in values.enumerated() {
            guard let v, v.isFinite else { continue }
            let k = bucketOf[i]
            if best[k].y == nil || v > best[k].y! || (v == best[k].y! && Double(rounds[i]) < best[k].x) {
                best[k] = ChartPoint(x: Double(rounds[i]), y: v)
            }
        }
        return best
    }

    /// A sentence for a caption: how the lines were reduced, if at all.
    func caption(unit: String) -> String {
        func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        let size = roundsPerBucket.min == roundsPerBucket.max
            ? plural(roundsPerBucket.min, "round") : "\(roundsPerBucket.min)–\(roundsPerBucket.max) rounds"
        if isDownsampled {
            return "Lines are downsampled: \(plural(distinctRounds, "round")) in \(count) buckets of \(size); each point is "
                + "the maximum of its bucket's \(unit) (undefined values left out; a bucket with none defined is a gap in the line)."
        }
        if maxPerRound > 1 {
            return "Each point is the maximum over the round's \(unit) (up to \(maxPerRound) per round); "
                + "undefined values are gaps in the lines."
        }
        return "One point per round; undefined values are gaps in the lines."
    }
}

/// A linear or logarithmic axis mapping data values to pixels. A logarithmic axis with zeros gets a
/// band at its start where zeros are drawn, below the lowest decade.
struct ChartAxis {
    enum Scale: Equatable { case linear, log }

    let scale: Scale
    /// Linear: the domain. Logarithmic: the lowest and highest decade exponents.
    let lo: Double
    let hi: Double
    let hasZeroBand: Bool
    /// Pixel of `lo` (or of the zero band) and of `hi`.
    var start: Double = 0
    var end: Double = 1

    static let zeroBandWidth = 16.0

    /// Logarithmic when asked, or (scale nil) when the positive values span more than two decades;
    /// linear axes include 0 and end on a tick. `fixed` forces a linear domain.
    init(values: [Double], scale: Scale?, fixed: (Double, Double)? = nil) {
        let finite = values.filter(\.isFinite)
        let positive = finite.filter { $0 > 0 }
        if let fixed {
            self.scale = .linear
            lo = fixed.0
            hi = fixed.1
            hasZeroBand = false
            return
        }
        let wantLog: Bool
        switch scale {
        case .log?: wantLog = true
        case .linear?: wantLog = false
        case nil:
            wantLog = finite.allSatisfy { $0 >= 0 } && positive.count > 1
                && positive.max()! / positive.min()! > 100
        }
        if wantLog, let minPos = positive.min(), let maxPos = positive.max(), finite.allSatisfy({ $0 >= 0 }) {
            self.scale = .log
            var l = log10(minPos).rounded(.down)
            var h = log10(maxPos).rounded(.up)
            if h <= l { h = l + 1 }
            if minPos < pow(10, l) { l -= 1 }  // rounding at the edge of a decade
            lo = l
            hi = h
            hasZeroBand = finite.contains(0)
            return
        }
        self.scale = .linear
        hasZeroBand = false
        var l = Swift.min(0, finite.min() ?? 0)
        var h = Swift.max(0, finite.max() ?? 1)
        if h <= l { h = l + 1 }
        let step = ChartAxis.niceStep((h - l) / 5)
        l = (l / step).rounded(.down) * step
        h = (h / step).rounded(.up) * step
        lo = l
        hi = h
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, log10(raw).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * p >= raw * (1 - 1e-12) { return m * p }
        return 10 * p
    }

    func position(_ v: Double) -> Double {
        switch scale {
        case .linear:
            return start + (v - lo) / (hi - lo) * (end - start)
        case .log:
            let direction: Double = end >= start ? 1 : -1
            let s = hasZeroBand ? start + direction * ChartAxis.zeroBandWidth : start
            if v <= 0 { return start }
            let t = Swift.max(0, (log10(v) - lo) / (hi - lo))
            return s + t * (end - s)
        }
    }

    /// Labelled ticks (value, label) and unlabelled minor ticks (values).
    func ticks(integers: Bool = false) -> (major: [(Double, String)], minor: [Double]) {
        switch scale {
        case .linear:
            let step = integers ? Swift.max(1, ChartAxis.niceStep((hi - lo) / 6)) : ChartAxis.niceStep((hi - lo) / 5)
            var major: [(Double, String)] = []
            var k = (lo / step - 1e-9).rounded(.up)
            while k * step <= hi + step * 1e-9 {
                let v = k * step
                let label = integers && abs(v) < 1e15 ? String(Int64(v.rounded())) : AuditFormat.sig4(abs(v) < step * 1e-9 ? 0 : v)
                major.append((v, label))
                k += 1
            }
            return (major, [])
        case .log:
            let decades = Int(hi - lo)
            let every = Swift.max(1, (decades + 7) / 8)
            var major: [(Double, String)] = []
            var minor: [Double] = []
            for e in Int(lo)...Int(hi) {
                if (e - Int(lo)) % every == 0 { major.append((pow(10, Double(e)), ChartAxis.decadeLabel(e))) }
                if decades <= 4, e < Int(hi) {
                    for m in 2...9 { minor.append(Double(m) * pow(10, Double(e))) }
                }
            }
            if hasZeroBand { major.insert((0, "0"), at: 0) }
            return (major, minor)
        }
    }

    /// `0.01`, `1`, `1000`, or `10` with a raised exponent outside [−3, 3] (SVG markup).
    static func decadeLabel(_ e: Int) -> String {
        switch e {
        case -3...(-1): return "0." + String(repeating: "0", count: -e - 1) + "1"
        case 0...3: return "1" + String(repeating: "0", count: e)
        default: return "10<tspan dy=\"-5\" font-size=\"8\">\(e < 0 ? "−" : "")\(abs(e))</tspan>"
        }
    }

    var caption: String {
        switch scale {
        case .linear: return "linear scale"
        case .log: return hasZeroBand ? "log scale; zeros drawn on the band marked 0" : "log scale"
        }
    }
}

/// An entry of a chart legend: a swatch and a label.
struct LegendItem {
    enum Swatch {
        case line(colour: String, dash: String?, width: Double)
        case marker(colour: String)
        case box(colour: String)
        case dot
    }
    var swatch: Swatch
    var label: String
}

/// SVG building blocks shared by the charts.
enum SVGKit {
    static let width = 960.0
    static let font = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""

    /// `text` lowered and smaller, as a subscript (SVG markup).
    static func sub(_ text: String) -> String {
        "<tspan dy=\"3\" font-size=\"9\">\(AuditFormat.escape(text))</tspan>"
    }

    /// A rough width of `text` at 12 px: wide enough that legend entries never overlap.
    static func textWidth(_ text: String, size: Double = 12) -> Double { Double(text.count) * size * 0.6 }

    static func text(_ x: Double, _ y: Double, _ content: String, anchor: String = "start", size: Double = 12,
                     extra: String = "") -> String {
        "<text x=\"\(AuditFormat.coord(x))\" y=\"\(AuditFormat.coord(y))\" text-anchor=\"\(anchor)\" font-size=\"\(AuditFormat.coord(size))\"\(extra.isEmpty ? "" : " " + extra)>\(content)</text>"
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
                     dash: String? = nil) -> String {
        "<line x1=\"\(AuditFormat.coord(x1))\" y1=\"\(AuditFormat.coord(y1))\" x2=\"\(AuditFormat.coord(x2))\" y2=\"\(AuditFormat.coord(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(AuditFormat.coord(width))\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
    }

    static func open(id: String, title: String, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"\(id)\" class=\"chart\" viewBox=\"0 0 \(AuditFormat.coord(width)) \(AuditFormat.coord(height))\" width=\"\(AuditFormat.coord(width))\" height=\"\(AuditFormat.coord(height))\" role=\"img\" aria-label=\"\(AuditFormat.escape(title))\" \(font)>\n"
            + "<title>\(AuditFormat.escape(title))</title>\n"
            + "<rect x=\"0\" y=\"0\" width=\"\(AuditFormat.coord(width))\" height=\"\(AuditFormat.coord(height))\" fill=\"#ffffff\"/>\n"
            + text(width / 2, 22, AuditFormat.escape(title), anchor: "middle", size: 15, extra: "font-weight=\"bold\" class=\"chart-title\"") + "\n"
    }

    /// The height a legend of `items` takes when laid out in rows from `left` to `right`.
    static func legendHeight(_ items: [LegendItem], left: Double, right: Double) -> Double {
        legendLayout(items, left: left, right: right).height
    }

    private static func legendLayout(_ items: [LegendItem], left: Double, right: Double)
        -> (positions: [(Double, Double)], height: Double) {
        var x = left
        var row = 0
        var positions: [(Double, Double)] = []
        for item in items {
            let w = 30 + textWidth(item.label) + 18
            if x > left, x + w > right { x = left; row += 1 }
            positions.append((x, Double(row) * 18))
            x += w
        }
        return (positions, items.isEmpty ? 0 : Double(row + 1) * 18)
    }

    /// The legend's SVG, its first row's text baseline at `top + 12`.
    static func legend(_ items: [LegendItem], left: Double, right: Double, top: Double) -> String {
        let layout = legendLayout(items, left: left, right: right)
        var out = "<g class=\"legend\">\n"
        for (item, (x, dy)) in zip(items, layout.positions) {
            let y = top + dy + 8
            switch item.swatch {
            case let .line(colour, dash, width):
                out += line(x, y, x + 24, y, stroke: colour, width: width, dash: dash)
            case let .marker(colour):
                out += marker(x + 12, y, colour: colour, cls: "legend-flag")
            case let .box(colour):
                out += "<rect x=\"\(AuditFormat.coord(x + 4))\" y=\"\(AuditFormat.coord(y - 5))\" width=\"16\" height=\"10\" fill=\"\(colour)\" fill-opacity=\"0.35\" stroke=\"\(colour)\"/>"
            case .dot:
                out += "<circle cx=\"\(AuditFormat.coord(x + 12))\" cy=\"\(AuditFormat.coord(y))\" r=\"3.5\" fill=\"#ffffff\" stroke=\"#111111\" stroke-width=\"1.2\"/>"
            }
            out += text(x + 30, y + 4, AuditFormat.escape(item.label)) + "\n"
        }
        return out + "</g>\n"
    }

    /// The mark of a flagged point: a diamond in the rule's colour with a dark outline.
    static func marker(_ x: Double, _ y: Double, colour: String, cls: String = "flag") -> String {
        let c = AuditFormat.coord
        return "<path class=\"\(cls)\" d=\"M\(c(x)) \(c(y - 5))L\(c(x + 5)) \(c(y))L\(c(x)) \(c(y + 5))L\(c(x - 5)) \(c(y))Z\" fill=\"\(colour)\" stroke=\"#111111\" stroke-width=\"1.2\"/>"
    }

    /// Grid, ticks and tick labels of a vertical (value) axis at the left of a plot area.
    static func valueAxis(_ axis: ChartAxis, left: Double, right: Double) -> String {
        var out = "<g class=\"y-axis\">\n"
        let (major, minor) = axis.ticks()
        for v in minor {
            let y = axis.position(v)
            out += line(left - 3, y, left, y, stroke: "#555555") + line(left, y, right, y, stroke: "#f0f0f0") + "\n"
        }
        for (v, label) in major {
            let y = axis.position(v)
            out += line(left - 6, y, left, y, stroke: "#555555") + line(left, y, right, y, stroke: "#dddddd") + "\n"
            out += text(left - 9, y + 4, label, anchor: "end", size: 11) + "\n"
        }
        if axis.hasZeroBand {
            let y = axis.start + (axis.end >= axis.start ? 1 : -1) * ChartAxis.zeroBandWidth / 2
            out += line(left, y, right, y, stroke: "#bbbbbb", dash: "2 3") + "\n"
        }
        return out + "</g>\n"
    }

    /// Ticks and labels of a horizontal axis along the bottom of a plot area.
    static func horizontalAxis(_ axis: ChartAxis, bottom: Double, top: Double, integers: Bool) -> String {
        var out = "<g class=\"x-axis\">\n"
        let (major, minor) = axis.ticks(integers: integers)
        for v in minor {
            let x = axis.position(v)
            out += line(x, bottom, x, bottom + 3, stroke: "#555555") + "\n"
        }
        for (v, label) in major {
            let x = axis.position(v)
            out += line(x, top, x, bottom, stroke: "#eeeeee") + line(x, bottom, x, bottom + 6, stroke: "#555555") + "\n"
            out += text(x, bottom + 19, label, anchor: "middle", size: 11) + "\n"
        }
        if axis.hasZeroBand {
            let x = axis.start + ChartAxis.zeroBandWidth / 2
            out += line(x, top, x, bottom, stroke: "#bbbbbb", dash: "2 3") + "\n"
        }
        return out + "</g>\n"
    }
}

/// A line chart over rounds: one line per series (undefined values are gaps), optional dashed
/// horizontal reference lines and marked points, axes with ticks, a title and a legend.
struct LineChart {
    struct Series {
        var name: String
        var colour: String
        var dash: String?
        var width: Double = 1.5
        var points: [ChartPoint]
        var markers: [(x: Double, y: Double)] = []
    }

    struct Reference {
        var value: Double
        var colour: String
        var label: String
    }

    var id: String
    var title: String
    var xLabel: String
    /// SVG markup: escape any text from the report.
    var yLabel: String
    var yScale: ChartAxis.Scale?
    var yFixed: (Double, Double)?
    var series: [Series]
    var references: [Reference] = []
    var extraLegend: [LegendItem] = []

    /// The y axis the chart uses (also for its caption).
    var yAxis: ChartAxis {
        var values = series.flatMap { s in s.points.compactMap(\.y) + s.markers.map(\.y) }
        values += references.map(\.value)
        return ChartAxis(values: values, scale: yScale, fixed: yFixed)
    }

    func svg() -> String {
        let left = 78.0, right = SVGKit.width - 24, top = 40.0, plotHeight = 300.0
        let bottom = top + plotHeight
        let legendItems = series.map {
            LegendItem(swatch: .line(colour: $0.colour, dash: $0.dash, width: Swift.max(2, $0.width)), label: $0.name)
        } + extraLegend
        let legendTop = bottom + 48
        let height = legendTop + SVGKit.legendHeight(legendItems, left: left, right: right) + 10

        let xs = series.flatMap { $0.points.map(\.x) }
        var xAxis = ChartAxis(values: [], scale: .linear,
                              fixed: xs.isEmpty ? (0, 1) : (xs.min()! == xs.max()! ? (xs.min()! - 1, xs.max()! + 1) : (xs.min()!, xs.max()!)))
        xAxis.start = left
        xAxis.end = right
        var yAxis = self.yAxis
        yAxis.start = bottom
        yAxis.end = top

        var out = SVGKit.open(id: id, title: title, height: height)
        out += SVGKit.valueAxis(yAxis, left: left, right: right)
        out += SVGKit.horizontalAxis(xAxis, bottom: bottom, top: top, integers: true)
        out += "<rect x=\"\(AuditFormat.coord(left))\" y=\"\(AuditFormat.coord(top))\" width=\"\(AuditFormat.coord(right - left))\" height=\"\(AuditFormat.coord(plotHeight))\" fill=\"none\" stroke=\"#555555\"/>\n"
        out += SVGKit.text((left + right) / 2, bottom + 38, AuditFormat.escape(xLabel), anchor: "middle") + "\n"
        out += "<text x=\"0\" y=\"0\" transform=\"translate(16 \(AuditFormat.coord((top + bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">\(yLabel)</text>\n"

        for r in references where r.value.isFinite {
            let y = yAxis.position(r.value)
            out += "<g class=\"reference\">" + SVGKit.line(left, y, right, y, stroke: r.colour, width: 1.3, dash: "7 4")
                + "<title>\(AuditFormat.escape(r.label))</title></g>\n"
        }
        if series.allSatisfy({ $0.points.allSatisfy { $0.y == nil } }) {
            out += SVGKit.text((left + right) / 2, (top + bottom) / 2, "no defined values", anchor: "middle", extra: "fill=\"#888888\"") + "\n"
        }
        // Later columns first, so the recorded rule (column 0) is drawn on top.
        for s in series.reversed() {
            let d = LineChart.pathData(s.points, x: xAxis, y: yAxis)
            guard !d.isEmpty else { continue }
            out += "<path class=\"series\" data-series=\"\(AuditFormat.escape(s.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"\(AuditFormat.coord(s.width))\" stroke-linejoin=\"round\" stroke-linecap=\"round\"\(s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")><title>\(AuditFormat.escape(s.name))</title></path>\n"
        }
        for s in series where !s.markers.isEmpty {
            out += "<g class=\"flags\" data-series=\"\(AuditFormat.escape(s.name))\">"
            for m in s.markers { out += SVGKit.marker(xAxis.position(m.x), yAxis.position(m.y), colour: s.colour) }
            out += "</g>\n"
        }
        out += SVGKit.legend(legendItems, left: left, right: right, top: legendTop)
        return out + "</svg>"
    }

    /// `M x y L x y …`: a new move-to after every undefined point; a point alone between gaps is a
    /// zero-length segment (`h0`), drawn as a dot by the round line cap.
    static func pathData(_ points: [ChartPoint], x: ChartAxis, y: ChartAxis) -> String {
        var d = ""
        var runLength = 0
        for p in points {
            guard let v = p.y, v.isFinite else {
                if runLength == 1 { d += "h0" }
                runLength = 0
                continue
            }
            d += (runLength == 0 ? "M" : "L") + AuditFormat.coord(x.position(p.x)) + " " + AuditFormat.coord(y.position(v))
            runLength += 1
        }
        if runLength == 1 { d += "h0" }
        return d
    }
}

/// A horizontal box plot, one row per rule: whiskers from minimum to maximum, the box from the
/// first to the third quartile, the median as a bar, the mean as a white dot and the rule's bound as
/// a dashed tick.
struct BoxPlot {
    struct Row {
        var name: String
        var colour: String
        /// Defined values (undefined ones are counted in `undefined`).
        var values: [Double]
        var undefined: Int
        var bound: Double?
    }

    var id: String
    var title: String
    var xLabel: String
    var rows: [Row]

    /// Nearest-rank quantile of sorted values (as ``SeriesStatistics``).
    static func quantile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[Swift.min(sorted.count - 1, Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
    }

    var xAxis: ChartAxis {
        ChartAxis(values: rows.flatMap { $0.values + ($0.bound.map { [$0] } ?? []) }, scale: nil)
    }

    func svg() -> String {
        let labelChars = Swift.min(34, rows.map(\.name.count).max() ?? 0)
        let left = Swift.max(110, 16 + SVGKit.textWidth(String(repeating: "m", count: labelChars)))
        let right = SVGKit.width - 150, top = 40.0, rowHeight = 30.0
        let bottom = top + Swift.max(1, Double(rows.count)) * rowHeight + 8
        let legendItems = [
            LegendItem(swatch: .box(colour: "#777777"), label: "quartiles, median bar, whiskers min–max"),
            LegendItem(swatch: .line(colour: "#777777", dash: "4 3", width: 2), label: "proven bound λ"),
            LegendItem(swatch: .dot, label: "mean"),
        ]
        let legendTop = bottom + 48
        let height = legendTop + SVGKit.legendHeight(legendItems, left: left, right: right) + 10
        var axis = xAxis
        axis.start = left
        axis.end = right

        var out = SVGKit.open(id: id, title: title, height: height)
        out += SVGKit.horizontalAxis(axis, bottom: bottom, top: top, integers: false)
        out += "<rect x=\"\(AuditFormat.coord(left))\" y=\"\(AuditFormat.coord(top))\" width=\"\(AuditFormat.coord(right - left))\" height=\"\(AuditFormat.coord(bottom - top))\" fill=\"none\" stroke=\"#555555\"/>\n"
        out += SVGKit.text((left + right) / 2, bottom + 38, AuditFormat.escape(xLabel), anchor: "middle") + "\n"
        let c = AuditFormat.coord
        for (i, row) in rows.enumerated() {
            let mid = top + 4 + (Double(i) + 0.5) * rowHeight
            out += "<g class=\"box\" data-series=\"\(AuditFormat.escape(row.name))\">"
            out += "<title>\(AuditFormat.escape(row.name))</title>"
            out += SVGKit.text(left - 8, mid + 4, AuditFormat.escape(AuditFormat.shortened(row.name, 34)), anchor: "end")
            let sorted = row.values.filter(\.isFinite).sorted()
            if sorted.isEmpty {
                out += SVGKit.text(left + 8, mid + 4, "no defined values", extra: "fill=\"#888888\"")
            } else {
                let q1 = axis.position(BoxPlot.quantile(sorted, 0.25)), q3 = axis.position(BoxPlot.quantile(sorted, 0.75))
                let med = axis.position(BoxPlot.quantile(sorted, 0.5))
                let lo = axis.position(sorted.first!), hi = axis.position(sorted.last!)
                let mean = axis.position(sorted.reduce(0, +) / Double(sorted.count))
                out += SVGKit.line(lo, mid, hi, mid, stroke: row.colour, width: 1.5)
                out += SVGKit.line(lo, mid - 6, lo, mid + 6, stroke: row.colour, width: 1.5)
                out += SVGKit.line(hi, mid - 6, hi, mid + 6, stroke: row.colour, width: 1.5)
                out += "<rect x=\"\(c(Swift.min(q1, q3)))\" y=\"\(c(mid - 9))\" width=\"\(c(Swift.max(1, abs(q3 - q1))))\" height=\"18\" fill=\"\(row.colour)\" fill-opacity=\"0.35\" stroke=\"\(row.colour)\" stroke-width=\"1.5\"/>"
                out += SVGKit.line(med, mid - 9, med, mid + 9, stroke: row.colour, width: 3)
                out += "<circle cx=\"\(c(mean))\" cy=\"\(c(mid))\" r=\"3.5\" fill=\"#ffffff\" stroke=\"#111111\" stroke-width=\"1.2\"/>"
            }
            if let b = row.bound, b.isFinite {
                let x = axis.position(b)
                out += SVGKit.line(x, mid - 13, x, mid + 13, stroke: row.colour, width: 2, dash: "4 3")
            }
            out += SVGKit.text(right + 8, mid + 4, "n=\(sorted.count)" + (row.undefined > 0 ? ", \(row.undefined) undef." : ""),
                               size: 11, extra: "fill=\"#555555\"")
            out += "</g>\n"
        }
        out += SVGKit.legend(legendItems, left: left, right: right, top: legendTop)
        return out + "</svg>"
    }
}
