import Testing
import DesgdNumerics
@testable import DesgdRobust

/// Runs `aggregator` on the given rows with declared f (fresh state).
func run(_ aggregator: any Aggregator, _ rows: [[Float]], f: Int, seed: UInt64 = 1, round: Int = 0,
         threads: Int = 1, backend: NumericBackend = .openblas) -> ([Float], AggregationDecision) {
    aggregator.aggregate(context(rows, f: f, seed: seed, round: round, threads: threads, backend: backend))
}

func context(_ rows: [[Float]], f: Int, seed: UInt64 = 1, round: Int = 0, threads: Int = 1,
             backend: NumericBackend = .openblas) -> AggregationContext {
    AggregationContext(messages: Matrix(rowVectors: rows), f: f, seed: seed, round: round, classIndex: 0,
                       backend: backend, executor: ParallelExecutor(threads: threads))
}

/// The aggregator named by `spec` (test failure if it does not parse).
func make(_ spec: String) -> any Aggregator {
    do { return try AggregatorCatalogue.makeAggregator(spec) } catch {
        Issue.record("\(spec): \(error)")
        return Mean()
    }
}

/// Whether two vectors agree to `tolerance` (absolute, per coordinate).
func close(_ a: [Float], _ b: [Double], _ tolerance: Double = 1e-5) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tolerance }
}

func close(_ a: [Double]?, _ b: [Double], _ tolerance: Double = 1e-9) -> Bool {
    guard let a else { return false }
    return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance }
}

/// Column vector rows from scalars (1-D inputs).
func scalars(_ values: [Float]) -> [[Float]] { values.map { [$0] } }

/// Honest statistics of an instance: mean, diameter Δ_S, per-coordinate range.
struct HonestStats {
    let mean: [Double]
    let diameter: Double
    let range: [Double]
    let scale: Double

    init(_ rows: [[Float]], honest: [Int]) {
        let d = rows[0].count
        var mean = [Double](repeating: 0, count: d)
        var low = [Double](repeating: .infinity, count: d), high = [Double](repeating: -.infinity, count: d)
        for i in honest {
            for k in 0..<d {
                let x = Double(rows[i][k])
                mean[k] += x / Double(honest.count)
                low[k] = min(low[k], x)
                high[k] = max(high[k], x)
            }
        }
        var diameter = 0.0
        for i in honest {
            for j in honest {
                diameter = max(diameter,
                    zip(rows[i], rows[j]).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) })
            }
        }
        self.mean = mean
        self.diameter = diameter.squareRoot()
        self.range = zip(low, high).map { $1 - $0 }
        self.scale = honest.flatMap { rows[$0] }.map { abs(Double($0)) }.max() ?? 0
    }

    func gap(_ output: [Float]) -> Double {
        zip(output, mean).reduce(0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
    }
}

/// Random instances for the property tests: honest Gaussians with random per-coordinate scales
/// around a non-zero centre, and f Byzantine inputs of one of several adversarial kinds.
enum Adversary: CaseIterable, CustomStringConvertible {
    case farOutliers, shiftedCluster, alie, copyOfHonest, onLine, mixedSigns

    var description: String { "\(self)" as String }
}

struct Instance {
    let rows: [[Float]]
    let honest: [Int]
    let f: Int
}

func makeInstance(n: Int, f: Int, d: Int, adversary: Adversary, rng: inout RandomStream) -> Instance {
    let scales = (0..<d).map { _ in 0.1 + 2 * rng.nextDouble() }
    let centre = (0..<d).map { _ in 4 * rng.nextDouble() - 2 }
    let honestCount = n - f
    var rows: [[Float]] = (0..<honestCount).map { _ in
        (0..<d).map { k in Float(centre[k] + scales[k] * rng.nextGaussian()) }
    }
    let stats = HonestStats(rows, honest: Array(0..<honestCount))
    var std = [Double](repeating: 0, count: d)
    for row in rows {
        for k in 0..<d { std[k] += pow2(Double(row[k]) - stats.mean[k]) / Double(max(1, honestCount - 1)) }
    }
    std = std.map { $0.squareRoot() }
    let direction: [Double] = {
        let g = (0..<d).map { _ in rng.nextGaussian() }
        let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return g.map { $0 / norm }
    }()
    var byzantine: [[Float]] = []
    switch adversary {
    case .farOutliers:
        byzantine = (0..<f).map { _ in
            (0..<d).map { k in Float(stats.mean[k] + 1000 * scales[k] * rng.nextGaussian()) } }
    case .shiftedCluster:
        let shift = 3 * rng.nextDouble() * stats.diameter
        byzantine = (0..<f).map { _ in
            (0..<d).map { k in Float(stats.mean[k] + shift * direction[k] + 0.01 * rng.nextGaussian()) } }
    case .alie:
        let z = [0.5, 1, 1.5, 3][rng.nextInt(below: 4)]
        byzantine = Array(repeating: (0..<d).map { k in Float(stats.mean[k] + z * std[k]) }, count: f)
    case .copyOfHonest:
        byzantine = Array(repeating: rows[rng.nextInt(below: honestCount)], count: f)
    case .onLine:
        let a = rows[rng.nextInt(below: honestCount)], b = rows[rng.nextInt(below: honestCount)]
        let t = Float(5 * rng.nextDouble() - 2)
        byzantine = Array(repeating: zip(a, b).map { $0 + t * ($1 - $0) }, count: f)
    case .mixedSigns:
        byzantine = (0..<f).map { j in (0..<d).map { k in Float(stats.mean[k] + (j % 2 == 0 ? 1 : -1) * 4 * std[k]) } }
    }
    rows += byzantine
    // Shuffle so that Byzantine inputs are not always last (ties by index must not favour them).
    let order = rng.permutation(n)
    let shuffled = order.map { rows[$0] }
    let honest = (0..<n).filter { order[$0] < honestCount }
    return Instance(rows: shuffled, honest: honest, f: f)
}

func pow2(_ x: Double) -> Double { x * x }

/// (n, f, d) cells of the property tests, after docs/references.md, robust aggregation §4.4.
let boundCells: [(n: Int, f: Int, d: Int)] = [(7, 1, 5), (9, 2, 5), (10, 3, 4), (11, 2, 20), (13, 4, 3)]
