import Testing
@testable import DesgdNumerics

@Suite struct RandomTests {
    /// Known-answer vectors of Random123 (`kat_vectors`, philox4x32_10).
    @Test func philoxKnownAnswers() {
        #expect(Philox4x32.block(counter: .zero, key: .zero)
            == SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
        #expect(Philox4x32.block(counter: SIMD4(repeating: 0xffff_ffff), key: SIMD2(repeating: 0xffff_ffff))
                == SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd))
        #expect(Philox4x32.block(counter: SIMD4(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
                                 key: SIMD2(0xa409_3822, 0x299f_31d0))
                == SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1))
    }

    /// A draw depends only on its stream's key and position, not on other streams used before it.
    @Test func streamsAreIndependentOfUseOrder() {
        var a = RandomStream(seed: 7, purpose: .minibatch, worker: 3, round: 11, class: 2)
        let first = (0..<10).map { _ in a.nextUInt32() }

        var noise = RandomStream(seed: 7, purpose: .attack, worker: 3, round: 11, class: 2)
        for _ in 0..<1000 { _ = noise.nextGaussian() }
        var b = RandomStream(seed: 7, purpose: .minibatch, worker: 3, round: 11, class: 2)
        #expect((0..<10).map { _ in b.nextUInt32() } == first)

        // Different purpose, worker, round or class: a different stream.
        for other in [RandomStream(seed: 7, purpose: .attack, worker: 3, round: 11, class: 2),
                      RandomStream(seed: 7, purpose: .minibatch, worker: 4, round: 11, class: 2),
                      RandomStream(seed: 7, purpose: .minibatch, worker: 3, round: 12, class: 2),
                      RandomStream(seed: 7, purpose: .minibatch, worker: 3, round: 11, class: 3),
                      RandomStream(seed: 8, purpose: .minibatch, worker: 3, round: 11, class: 2)] {
            var o = other
            #expect((0..<10).map { _ in o.nextUInt32() } != first)
        }
    }

    @Test func seekGivesRandomAccess() {
        var a = RandomStream(seed: 1, purpose: .partition)
        let all = (0..<23).map { _ in a.nextUInt32() }
        for start in [0, 1, 4, 7, 13, 22] {
            var b = RandomStream(seed: 1, purpose: .partition)
            b.seek(to: UInt64(start))
            #expect(b.nextUInt32() == all[start])
        }
    }

    @Test func derivedDrawsHaveTheRightDistribution() {
        var s = RandomStream(seed: 3, purpose: .attack)
        let n = 200_000
        var sum = 0.0, sumSq = 0.0
        for _ in 0..<n { let g = s.nextGaussian(); sum += g; sumSq += g * g }
        #expect(abs(sum / Double(n)) < 0.01)
        #expect(abs(sumSq / Double(n) - 1) < 0.02)

        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[s.nextInt(below: 7)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })

        var u = 0.0
        for _ in 0..<n { let x = s.nextFloat(); #expect(x >= 0 && x < 1); u += Double(x) }
        #expect(abs(u / Double(n) - 0.5) < 0.005)

        var g = 0.0
        for _ in 0..<20_000 { g += s.nextGamma(shape: 0.5) }
        #expect(abs(g / 20_000 - 0.5) < 0.03)

        var pairs = [Float](repeating: 0, count: 100_001)
        pairs.withUnsafeMutableBufferPointer { s.fillGaussian($0, mean: 3, sigma: 2) }
        let m = pairs.reduce(0.0) { $0 + Double($1) } / Double(pairs.count)
        let v = pairs.reduce(0.0) { $0 + (Double($1) - m) * (Double($1) - m) } / Double(pairs.count)
        #expect(abs(m - 3) < 0.03 && abs(v - 4) < 0.08)

        let p = s.permutation(50)
        #expect(p.sorted() == Array(0..<50))
    }
}
