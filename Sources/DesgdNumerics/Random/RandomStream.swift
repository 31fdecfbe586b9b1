import Foundation

/// What a stream of random numbers is for. Part of the stream's key, so that, for example, the
/// mini-batch draws of a worker never depend on whether an attack drew Gaussian noise before them.
///
/// The raw values are part of the trace format's determinism contract: never renumber a case.
public enum RandomPurpose: UInt32, Sendable, Codable, CaseIterable {
    /// Model parameter initialisation (worker = layer index).
    case initialization = 1
    /// Mini-batch sampling (worker, round, class).
    case minibatch = 2
    /// Data partitioning across workers (Dirichlet draws, shuffles).
    case partition = 3
    /// Attack randomness, e.g. Gaussian noise (worker, round, class).
    case attack = 4
    /// Bucketing permutations (round, class).
    case bucketing = 5
    /// Randomised aggregation rules: DnC coordinate subsets, power-iteration starts (round, class).
    case aggregator = 6
    /// Random class schedules of the server (round).
    case classSchedule = 7
    /// The synthetic test data set (worker = split, round = sample index block).
    case syntheticData = 8
    /// Data shuffles for centralised training (round = epoch).
    case shuffle = 9
    /// The trace fuzzer's structure-aware mutations (round = libFuzzer's mutation seed).
    case fuzzing = 10
    /// The worst-case adversary's random search directions (round, class).
    case worstCase = 11
    /// The server's root data set of FLTrust, drawn once from the training set.
    case rootData = 12
}

/// A stream of random numbers keyed by `(seed, purpose, worker, round, class)`.
///
/// Draw `i` of a stream is Philox4x32-10 block `⌊i/4⌋` with
/// key = (seed low 32 bits, seed high 32 bits) and
/// counter = (block low 32 bits, block high 32 bits, stream id low, stream id high),
/// where the 64-bit stream id mixes purpose, worker, round and class (see ``streamID``). Two
/// streams with different keys are independent, and creating or using one never changes another:
/// there is no global generator in desgd.
///
/// All derived draws (uniform floats, bounded integers, Gaussians, shuffles) are specified here
/// bit for bit, so they do not change with the Swift standard library's algorithms.
public struct RandomStream: Sendable {
    public let seed: UInt64
    public let id: UInt64
    /// Index of the next 32-bit draw.
    public private(set) var position: UInt64 = 0
    private var buffer: SIMD4<UInt32> = .zero

    /// A stream for `purpose` at `(worker, round, class)`. Use 0 for a coordinate that does not apply.
    public init(seed: UInt64, purpose: RandomPurpose, worker: Int = 0, round: Int = 0, class cls: Int = 0) {
        self.seed = seed
        self.id = RandomStream.streamID(purpose: purpose, worker: worker, round: round, class: cls)
    }

    /// The 64-bit stream id: a SplitMix64-finalised hash chain over (purpose, worker, round, class).
    public static func streamID(purpose: RandomPurpose, worker: Int, round: Int, class cls: Int) -> UInt64 {
        var h: UInt64 = 0x6465_7367_6421_0001  // "desgd!" + version 1
        for x in [UInt64(purpose.rawValue), UInt64(bitPattern: Int64(worker)),
                  UInt64(bitPattern: Int64(round)), UInt64(bitPattern: Int64(cls))] {
            h = splitMix64(h ^ x)
        }
        return h
    }

    /// The SplitMix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
    @inlinable
    public static func splitMix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Moves the stream to draw index `position` (random access within the stream).
    public mutating func seek(to position: UInt64) {
        self.position = position
        if position & 3 != 0 { refill() }
    }

    private mutating func refill() {
        let block = position >> 2
        buffer = Philox4x32.block(
            counter: SIMD4(UInt32(truncatingIfNeeded: block), UInt32(truncatingIfNeeded: block >> 32),
                           UInt32(truncatingIfNeeded: id), UInt32(truncatingIfNeeded: id >> 32)),
            key: SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// The next 32 random bits.
    public mutating func nextUInt32() -> UInt32 {
        let lane = Int(position & 3)
        if lane == 0 { refill() }
        let v = buffer[lane]
        position &+= 1
        return v
    }

    /// The next 64 random bits (two draws, high word first).
    public mutating func nextUInt64() -> UInt64 {
        let hi = UInt64(nextUInt32())
        return hi << 32 | UInt64(nextUInt32())
    }

    /// Uniform in [0, 1) with 24 random bits: `(u >> 8) · 2⁻²⁴`.
    public mutating func nextFloat() -> Float {
        Float(nextUInt32() >> 8) * 0x1p-24
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double {
        Double(nextUInt64() >> 11) * 0x1p-53
    }

    /// Uniform in [lower, upper) as Float: `lower + (upper − lower) · nextFloat()`.
    public mutating func nextFloat(in lower: Float, _ upper: Float) -> Float {
        lower + (upper - lower) * nextFloat()
    }

    /// Uniform integer in 0..<bound without bias (Lemire's multiply-and-reject, 32-bit).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0 && bound <= Int(UInt32.max), "bound out of range")
        let s = UInt32(bound)
        var m = UInt64(nextUInt32()) &* UInt64(s)
        if UInt32(truncatingIfNeeded: m) < s {
            let threshold = (0 &- s) % s
            while UInt32(truncatingIfNeeded: m) < threshold {
                m = UInt64(nextUInt32()) &* UInt64(s)
            }
        }
        return Int(m >> 32)
    }

    /// A standard normal draw (Box–Muller on two 53-bit uniforms; the sine branch is discarded so
    /// that each Gaussian uses exactly four 32-bit draws). ln, sin, cos and pow here and below are
    /// ``ElementaryFunctions``', not the C library's, so the draws are the same bits on any machine.
    public mutating func nextGaussian() -> Double {
        let u1 = 1.0 - nextDouble()  // (0, 1]
        let u2 = nextDouble()
        return (-2.0 * ElementaryFunctions.log(u1)).squareRoot() * ElementaryFunctions.cos(2.0 * Double.pi * u2)
    }

    /// Fills `out` with N(mean, σ²) values rounded to Float, two per Box–Muller pair: elements
    /// 2k and 2k+1 are r·cos θ and r·sin θ of the k-th pair of 53-bit uniforms (u₁, u₂), with
    /// r = √(−2 ln(1−u₁)), θ = 2πu₂, computed in Double (four 32-bit draws per pair; an odd last
    /// element uses the cosine of its own pair). About twice as fast as repeated ``nextGaussian()``.
    public mutating func fillGaussian(_ out: UnsafeMutableBufferPointer<Float>, mean: Double, sigma: Double) {
        var i = 0
        let n = out.count
        while i < n {
            let u1 = 1.0 - nextDouble()
            let u2 = nextDouble()
            let r = (-2.0 * ElementaryFunctions.log(u1)).squareRoot() * sigma
            let theta = 2.0 * Double.pi * u2
            out[i] = Float(mean + r * ElementaryFunctions.cos(theta))
            if i + 1 < n { out[i + 1] = Float(mean + r * ElementaryFunctions.sin(theta)) }
            i += 2
        }
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang (2000); for shape < 1 uses the boost
    /// Gamma(a) = Gamma(a+1) · U^(1/a).
    public mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0)
        if shape < 1 {
            let g = nextGamma(shape: shape + 1)
            let u = 1.0 - nextDouble()
            return g * ElementaryFunctions.pow(u, 1.0 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            var x: Double, v: Double
            repeat {
                x = nextGaussian()
                v = 1.0 + c * x
            } while v <= 0
            v = v * v * v
            let u = 1.0 - nextDouble()
            if ElementaryFunctions.log(u) < 0.5 * x * x + d - d * v + d * ElementaryFunctions.log(v) { return d * v }
        }
    }

    /// Fisher–Yates shuffle, from the last element down, with ``nextInt(below:)``.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }

    /// A uniformly random permutation of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }

    /// `k` distinct indices from 0..<n, in draw order (partial Fisher–Yates). O(n) memory.
    public mutating func sample(_ k: Int, from n: Int) -> [Int] {
        precondition(k <= n)
        var p = Array(0..<n)
        for i in 0..<k {
            let j = i + nextInt(below: n - i)
            p.swapAt(i, j)
        }
        return Array(p[0..<k])
    }
}
