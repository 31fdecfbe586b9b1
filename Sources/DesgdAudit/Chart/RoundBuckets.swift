import Foundation

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
            return "Lines are downsampled: \(plural(distinctRounds, "round")) in \(count)"
                + " buckets of \(size); each point is "
                + "the maximum of its bucket's \(unit) (undefined values left out; a bucket with none"
                    + " defined is a gap in the line)."
        }
        if maxPerRound > 1 {
            return "Each point is the maximum over the round's \(unit) (up to \(maxPerRound) per round); "
                + "undefined values are gaps in the lines."
        }
        return "One point per round; undefined values are gaps in the lines."
    }
}
