import Foundation

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
                let label = integers && abs(v) < 1e15 ? String(Int64(v.rounded()))
                    : AuditFormat.sig4(abs(v) < step * 1e-9 ? 0 : v)
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
