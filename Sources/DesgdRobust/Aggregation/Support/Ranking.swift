/// The one tie rule of the aggregation catalogue (docs/references.md, robust aggregation §7): candidates are ranked
/// by (value, index) lexicographically, smallest first, and a NaN value ranks as +∞. numpy/torch
/// `argpartition`/`topk` leave ties unspecified; this makes every selection a function of the
/// input values alone.
enum Ranking {
    /// The value used for ranking: NaN counts as +∞.
    @inline(__always)
    static func key(_ value: Double) -> Double { value.isNaN ? .infinity : value }

    /// Whether (x, i) comes strictly before (y, j).
    @inline(__always)
    static func precedes(_ x: Double, _ i: Int, _ y: Double, _ j: Int) -> Bool {
        let a = key(x), b = key(y)
        return a < b || (a == b && i < j)
    }

    /// `candidates` ordered by (value(c), c) ascending.
    static func ascending(_ candidates: [Int], by value: (Int) -> Double) -> [Int] {
        let keyed = candidates.map { (key(value($0)), $0) }
        return keyed.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }.map(\.1)
    }

    /// 0..<values.count ordered by (value, index) ascending.
    static func ascending(_ values: [Double]) -> [Int] {
        ascending(Array(values.indices)) { values[$0] }
    }

    /// The candidate with the smallest (value, index).
    static func argmin(_ candidates: [Int], by value: (Int) -> Double) -> Int {
        var best = candidates[0]
        for c in candidates.dropFirst() where precedes(value(c), c, value(best), best) { best = c }
        return best
    }

    /// The candidate with the largest value, the smallest index among equal values (NaN largest).
    static func argmax(_ candidates: [Int], by value: (Int) -> Double) -> Int {
        var best = candidates[0]
        for c in candidates.dropFirst() {
            let x = key(value(c)), y = key(value(best))
            if x > y || (x == y && c < best) { best = c }
        }
        return best
    }
}

/// Text helpers shared by the rules' specs and requirement sentences.
enum SpecText {
    /// A number as a spec value: integers without a decimal point, others in Swift's shortest
    /// round-trip form (`0.1`, `1e-06`).
    static func number(_ x: Double) -> String {
        if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
        return "\(x)"
    }

    /// `name` or `name:k=v,…` from ordered pairs.
    static func spec(_ name: String, _ parameters: [(String, String)]) -> String {
        parameters.isEmpty ? name : name + ":" + parameters.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
    }

    /// The requirement sentence of every rule: "`name` needs `condition`: got n=…, f=…".
    static func violated(_ name: String, _ condition: String, n: Int, f: Int, detail: String = "") -> String {
        "\(name) needs \(condition): got n=\(n), f=\(f)\(detail)"
    }

    /// The basic requirement shared by every rule: at least one input, f ≥ 0, and (when
    /// `honestMajority`) n ≥ 2f+1.
    static func basic(_ name: String, n: Int, f: Int, honestMajority: Bool) -> String? {
        if n < 1 || f < 0 { return violated(name, "n ≥ 1 and f ≥ 0", n: n, f: f) }
        if honestMajority && n < 2 * f + 1 { return violated(name, "n ≥ 2f+1 (an honest majority)", n: n, f: f) }
        return nil
    }
}
