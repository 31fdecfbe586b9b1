import DesgdNumerics

/// One aggregation whose worst case is searched: the honest messages a rule received (in the
/// recorded row order), how many Byzantine inputs join them, and everything the rule's output
/// depends on besides its inputs (declared f, state, random-stream keys, backend).
public struct WorstCaseProblem: Sendable {
    /// The honest messages, one row each (h × d, h ≥ 1), in the order the rule received them.
    public var honest: Matrix
    /// f_actual ≥ 0: how many Byzantine inputs the rule receives after the honest rows.
    public var byzantineCount: Int
    /// The Byzantine inputs the recorded run sent (f_actual × d), when known: evaluated as they are
    /// and their mean offset from x̄_S is one of the search's directions.
    public var recordedByzantine: Matrix?
    /// The rule (with its pre-aggregators) and the state it starts the aggregation from; every
    /// evaluation starts from a fresh copy of it.
    public var rule: any Aggregator
    public var state: AggregatorState
    /// The f the rule is told, and the keys of its random streams (the adversary is omniscient:
    /// it knows the server's randomness, as the optimal attacks assume).
    public var declaredF: Int
    public var seed: UInt64
    public var round: Int
    public var classIndex: Int
    public var backend: NumericBackend
    /// The rule's proven λ for (n, f), when it has one.
    public var bound: Double?
    /// x̄_S, Δ_S and σ²_S of `honest` when the caller has them already (a replay measures every
    /// rule against the same ones); nil: computed here, O(h²·d).
    public var statistics: HonestStatistics?

    public init(honest: Matrix, byzantineCount: Int, recordedByzantine: Matrix? = nil, rule: any Aggregator,
                state: AggregatorState = .empty, declaredF: Int, seed: UInt64 = 0, round: Int = 0, classIndex: Int = 0,
                backend: NumericBackend = .openblas, bound: Double? = nil, statistics: HonestStatistics? = nil) {
        precondition(honest.rows >= 1 && byzantineCount >= 0, "WorstCaseProblem: needs an honest row")
        precondition(recordedByzantine.map { $0.rows == byzantineCount && $0.columns == honest.columns } ?? true,
                     "WorstCaseProblem: recorded Byzantine inputs of another shape")
        self.honest = honest
        self.byzantineCount = byzantineCount
        self.recordedByzantine = recordedByzantine
        self.rule = rule
        self.state = state
        self.declaredF = declaredF
        self.seed = seed
        self.round = round
        self.classIndex = classIndex
        self.backend = backend
        self.bound = bound
        self.statistics = statistics
    }
}

/// The largest deviation the search found for one aggregation, and how.
public struct WorstCase: Sendable, Equatable, Codable {
    /// ‖F(S ∪ B*) − x̄_S‖ for the best Byzantine inputs B* found.
    public var gap: Double
    /// gap / Δ_S and gap² / σ²_S (nil when the denominator is 0), as ``DeviationMetrics``.
    public var lambda: Double?
    public var kappa: Double?
    /// The rule's proven λ, and λ̂ / bound.
    public var bound: Double?
    public var boundRatio: Double?
    /// λ̂ > bound (relative slack 1e-6): the rule or its bound is wrong on this input. Never
    /// expected; a replay flags it loudly.
    public var exceedsBound: Bool
    /// The family that found B* (``WorstCaseSearch``'s list) and its parameters: `tau` is the
    /// offset from x̄_S in units of `scale` (= Δ_S, or max(‖x̄_S‖, 1) when Δ_S = 0), and so on.
    public var family: String
    public var parameters: [String: Double]
    /// Rule evaluations spent.
    public var evaluations: Int
    /// Some Byzantine input of B* lies on the search radius (``WorstCaseSearch/reach`` scales from
    /// x̄_S): a larger radius would likely find more (a rule with no bound, such as the mean).
    public var atReach: Bool
}

/// The worst-case adversary of one aggregation (docs/design.md §10): keep the honest
/// messages S, replace the Byzantine ones by the f_actual inputs B that maximise the gap
/// ‖F(S ∪ B) − x̄_S‖ of the rule F, within a bounded number of rule evaluations.
///
/// Peers answer this only through "optimal" attacks that line-search one magnitude along one fixed
/// direction (ByzFL's Optimal IPM / ALIE, 20 evaluations, never probing below their best point;
/// the LPD toolbox's `line_maximize`, 16), a loose lower bound of the rule's worst case
/// (docs/references.md, attacks and defences §5.3). The search here keeps the best of several
/// families, each searched in both directions with bracketing:
///
/// 1. `recorded`: the recorded Byzantine inputs, as sent (one evaluation).
/// 2. `ipm-opt`, `alie-opt`, `byzfl-alie`: the optimal attacks' own searches (``LineMaximizer``,
///    −τ·x̄_S, x̄_S − τ·σ and ByzFL's sign x̄_S + τ·σ), so the result is never below theirs.
/// 3. Identical copies v = x̄_S + τ·s·a along unit directions a: `ipm` (−x̄_S), `alie` (−σ, σ the
///    coordinate-wise standard deviation with ddof = 1), `recorded-direction` (the recorded inputs'
///    mean offset), `mimic` (toward each of the honest messages farthest from x̄_S; τ first at
///    that message, a copy of it), `principal` (the top principal direction of the honest
///    messages), `coordinate` (one coordinate: the widest-spread one and the largest-mean one,
///    El-Mhamdi et al.'s hidden vulnerability), `random` (two seeded Gaussian directions). Each
///    line is bracketed on both signs of τ by factors of 4 from |τ| = 1 (continuing over
///    plateaus, which stop ByzFL's and the LPD toolbox's searches), then golden-section searched
///    in log |τ| around its best point; the best lines get a second, longer refinement.
/// 4. Split placements (f_actual ≥ 2), on the best line: `chain` spreads the inputs evenly from the
///    best point back toward x̄_S (v_j = x̄_S + τ·s·a·(1 − ρ·j/(f−1))), which defeats rules that
///    look for one tight cluster; `two-point` puts one input farther out (τ_far) and the others at
///    τ_near.
/// 5. `refined`: a compass search around the best inputs found, shifting them along the best lines'
///    directions with a halving step, until the budget is spent.
///
/// Units and reach: s = Δ_S (the honest diameter; max(‖x̄_S‖, 1) when Δ_S = 0) and every
/// Byzantine input stays within ``reach``·s of x̄_S, so a rule that no input can bound (the mean)
/// reaches exactly gap = (f/n)·reach·s and ``WorstCase/atReach`` says so.
///
/// Determinism: the evaluations are a fixed sequence, the random directions come from the keyed
/// stream (`.worstCase`, round, class), every evaluation runs the rule single-threaded from a copy
/// of the given state: same problem, same result, on any thread count.
///
/// Cost: at most ``budget`` rule evaluations, plus O(h²·d) for the principal direction and O(h·d)
/// for the statistics. Memory: O((h + f)·d) plus the best inputs (f·d).
public struct WorstCaseSearch: Sendable, Equatable {
    /// Rule evaluations per aggregation.
    public var budget: Int

    public static let budgetRange = 80...1_000_000
    /// 61 evaluations go to the recorded inputs and the optimal attacks' searches, the rest to the
    /// search's own families; `--agg all` on the quick trace costs about 0.07 s per aggregation
    /// and rule on 2 busy cores, most of it DnC's (docs/worst-case.md).
    public static let defaultBudget = 150
    /// Byzantine inputs stay within reach·s of x̄_S (2²⁰: far beyond any gradient scale, and still
    /// finite in float32 for any honest scale below ~10³²).
    public static let reach = 1_048_576.0
    /// The smallest |τ| a bracket probes (s·2⁻²⁰).
    static let smallest = 1.0 / 1_048_576.0

    public init(budget: Int = WorstCaseSearch.defaultBudget) {
        precondition(WorstCaseSearch.budgetRange.contains(budget), "WorstCaseSearch: budget out of range")
        self.budget = budget
    }

    public func search(_ problem: WorstCaseProblem) -> WorstCase {
        var run = WorstCaseRun(problem, budget: budget)
        run.search()
        return run.result()
    }
}

/// One search in progress: the inputs matrix, the evaluation count and the best point so far.
struct WorstCaseRun {
    /// A unit direction of the search and its name.
    struct Line {
        var name: String
        var direction: [Float]
        /// Extra |τ| to probe first (mimic: the honest message itself), or nil.
        var anchor: Double?
        var bestTau = 0.0
        var bestGap = -Double.infinity
    }

    let problem: WorstCaseProblem
    let budget: Int
    let h: Int, f: Int, d: Int
    let mean: [Float]
    /// σ, the coordinate-wise standard deviation of the honest messages around x̄_S (ddof = 1; 0
    /// when h = 1): ByzFL's ALIE family and the `alie` line, computed once.
    let sigma: [Float]
    let statistics: HonestStatistics
    let scale: Double
    var inputs: Matrix
    var evaluations = 0
    var bestGap = -Double.infinity
    var bestFamily = "none"
    var bestParameters: [String: Double] = [:]
    /// The best Byzantine inputs, f rows (f × d), and whether one lies on the reach.
    var bestInputs: Matrix
    var bestAtReach = false

    init(_ problem: WorstCaseProblem, budget: Int) {
        self.problem = problem
        self.budget = budget
        h = problem.honest.rows
        f = problem.byzantineCount
        d = problem.honest.columns
        statistics = problem.statistics
            ?? HonestStatistics(messages: problem.honest, honest: Array(repeating: true, count: h))
        mean = statistics.mean
        var sigma = [Float](repeating: 0, count: d)
        if h > 1 {
            let (honest, mean) = (problem.honest, statistics.mean)
            sigma.withUnsafeMutableBufferPointer { out in
                mean.withUnsafeBufferPointer { VectorMath.standardDeviation(of: honest, mean: $0, ddof: 1, into: out) }
            }
        }
        self.sigma = sigma
        scale = statistics.diameter > 0 && statistics.diameter.isFinite ? statistics.diameter
            : max(statistics.meanNorm, 1)
        inputs = problem.honest
        for _ in 0..<f { inputs.appendRow(statistics.mean) }
        bestInputs = Matrix(rows: f, columns: d)
        for j in 0..<f { bestInputs.setRow(j, statistics.mean) }
    }

    var remaining: Int { budget - evaluations }

    // MARK: Evaluation

    /// g(B) for the Byzantine inputs currently in `inputs`; records B when it is the best so far
    /// (strictly: ties keep the earlier point). Returns nil once the budget is spent.
    mutating func evaluateCurrent(family: String, parameters: [String: Double], atReach: Bool) -> Double? {
        guard evaluations < budget else { return nil }
        evaluations += 1
        var state = problem.state
        let (output, _) = problem.rule.aggregate(
            AggregationContext(messages: inputs, f: problem.declaredF, seed: problem.seed, round: problem.round,
                               classIndex: problem.classIndex, backend: problem.backend,
                               executor: ParallelExecutor(threads: 1)),
            state: &state)
        let gap = output.withUnsafeBufferPointer { o in mean.withUnsafeBufferPointer { VectorMath.distance(o, $0) } }
        if gap > bestGap {  // NaN is never accepted
            bestGap = gap
            bestFamily = family
            bestParameters = parameters
            bestAtReach = atReach
            for j in 0..<f { bestInputs.setRow(j, inputs.row(h + j)) }
        }
        return gap.isNaN ? -Double.infinity : gap
    }

    /// Sets Byzantine input j to x̄_S + t·s·a (t in units of s).
    mutating func place(_ j: Int, along a: [Float], tau t: Double) {
        let alpha = Float(t * scale), mean = self.mean, d = self.d
        inputs.withMutableRow(h + j) { row in
            mean.withUnsafeBufferPointer { m in a.withUnsafeBufferPointer { u in
                for k in 0..<d { row[k] = m[k].addingProduct(alpha, u[k]) }
            } }
        }
    }

    /// Identical copies at x̄_S + τ·s·a.
    mutating func copies(_ line: Line, tau: Double) -> Double? {
        guard f > 0 else { return nil }
        for j in 0..<f { place(j, along: line.direction, tau: tau) }
        return evaluateCurrent(family: line.name, parameters: ["tau": tau, "scale": scale],
                               atReach: abs(tau) >= WorstCaseSearch.reach)
    }

    // MARK: The search

    mutating func search() {
        // With no Byzantine input the rule's output is fixed: one evaluation measures it.
        guard f > 0 else {
            _ = evaluateCurrent(family: "none", parameters: [:], atReach: false)
            return
        }
        if let recorded = problem.recordedByzantine {
            for j in 0..<f { inputs.setRow(h + j, recorded.row(j)) }
            _ = evaluateCurrent(family: "recorded", parameters: [:], atReach: false)
        }
        peerSearches()
        var lines = directions()
        // Stage 3: every line bracketed on both signs with an equal share of half the rest.
        let share = max(4, (remaining / 2) / max(1, lines.count))
        for i in lines.indices where remaining > 0 { bracket(&lines[i], evaluations: share) }
        // The three best lines refined further with a fifth of what is left.
        let ranked = lines.indices.sorted {
            lines[$0].bestGap > lines[$1].bestGap || (lines[$0].bestGap == lines[$1].bestGap && $0 < $1)
        }
        let extra = max(4, (remaining / 5) / 3)
        for i in ranked.prefix(3) where remaining > 0 {
            golden(&lines[i], around: lines[i].bestTau, evaluations: extra)
        }
        // Stage 4: split placements on the best line.
        if f >= 2, let top = ranked.first, lines[top].bestGap > -Double.infinity {
            split(lines[top], evaluations: max(6, remaining / 2))
        }
        // Stage 5: compass search along the best lines' directions.
        refine(ranked.prefix(4).map { lines[$0] })
    }

    /// The optimal attacks' own searches, point for point: `ipm-opt` (−τ·x̄_S), `alie-opt`
    /// (x̄_S − τ·σ) and ByzFL's Optimal ALIE (x̄_S + τ·σ), each ``LineMaximizer`` with ByzFL's
    /// defaults; so the worst case found is never below what they find within the reach (a point
    /// of theirs beyond it is evaluated where its ray crosses the reach).
    mutating func peerSearches() {
        var families: [(name: String, message: (Double) -> [Float])] = [(OptimalIPMAttack.name,
            OptimalIPMAttack().family(problem.honest).message)]
        if h >= 2 {
            families.append((OptimalALIEAttack.name, OptimalALIEAttack().family(problem.honest).message))
            let sigma = self.sigma, mean = self.mean
            families.append(("byzfl-alie", { t in
                var v = mean
                v.withUnsafeMutableBufferPointer { out in
                    sigma.withUnsafeBufferPointer { VectorMath.axpy(Float(t), $0, out) } }
                return v
            }))
        }
        let searcher = LineMaximizer()
        for (name, message) in families {
            guard remaining >= searcher.evaluations else { return }
            let radius = WorstCaseSearch.reach * scale
            _ = searcher.maximize { t in
                var v = message(t)
                // A point beyond the reach is brought back onto it along its own direction.
                let far = v.withUnsafeBufferPointer { x in mean.withUnsafeBufferPointer { VectorMath.distance(x, $0) } }
                if far > radius {
                    let shrink = Float(radius / far)
                    v.withUnsafeMutableBufferPointer { x in mean.withUnsafeBufferPointer { m in
                        for k in 0..<x.count { x[k] = m[k].addingProduct(shrink, x[k] - m[k]) }
                    } }
                }
                for j in 0..<f { inputs.setRow(h + j, v) }
                return evaluateCurrent(family: name, parameters: ["tau": t], atReach: far >= radius) ?? -Double.infinity
            }
        }
    }

    /// The unit directions of stage 3, in a fixed order; zero or non-finite ones are left out.
    func directions() -> [Line] {
        var lines: [Line] = []
        func add(_ name: String, _ v: [Float], anchor: Double? = nil) {
            let norm = v.withUnsafeBufferPointer { VectorMath.norm($0) }
            guard norm > 0 && norm.isFinite else { return }
            var u = v
            u.withUnsafeMutableBufferPointer { VectorMath.scale($0, by: Float(1 / norm)) }
            lines.append(Line(name: name, direction: u, anchor: anchor))
        }
        add("ipm", mean.map { -$0 })
        add("alie", sigma.map { -$0 })
        if let recorded = problem.recordedByzantine {
            var m = VectorMath.mean(of: recorded)
            m.withUnsafeMutableBufferPointer { out in mean.withUnsafeBufferPointer { VectorMath.axpy(-1, $0, out) } }
            add("recorded-direction", m)
        }
        // Mimic: toward the honest messages farthest from the mean (up to three), τ first at the
        // message itself.
        let distances = (0..<h).map { i in
            problem.honest.withRow(i) { r in mean.withUnsafeBufferPointer { VectorMath.distance(r, $0) } } }
        for i in (0..<h).sorted(by: { distances[$0] > distances[$1] || (distances[$0] == distances[$1] && $0 < $1) })
            .prefix(3) {
            var v = problem.honest.row(i)
            v.withUnsafeMutableBufferPointer { out in mean.withUnsafeBufferPointer { VectorMath.axpy(-1, $0, out) } }
            add("mimic:\(i)", v, anchor: distances[i] / scale)
        }
        if let principal = principalDirection() { add("principal", principal) }
        // One coordinate: the widest spread, and the largest |mean| (the hidden vulnerability).
        var widest = 0, largest = 0
        for k in 0..<d {
            if sigma[k] > sigma[widest] { widest = k }
            if abs(mean[k]) > abs(mean[largest]) { largest = k }
        }
        for k in Set([widest, largest]).sorted() {
            var e = [Float](repeating: 0, count: d)
            e[k] = 1
            add("coordinate:\(k)", e)
        }
        var stream = RandomStream(seed: problem.seed, purpose: .worstCase, round: problem.round,
            class: problem.classIndex)
        for r in 0..<2 {
            var g = [Float](repeating: 0, count: d)
            g.withUnsafeMutableBufferPointer { stream.fillGaussian($0, mean: 0, sigma: 1) }
            add("random:\(r)", g)
        }
        return lines
    }

    /// The top eigenvector of the honest messages' scatter Σᵢ (xᵢ − x̄)(xᵢ − x̄)ᵀ, through the h×h
    /// Gram matrix of the centred rows (its nonzero spectrum is the scatter's), nil for h < 2.
    func principalDirection() -> [Float]? {
        guard h >= 2 else { return nil }
        var centred = problem.honest
        for i in 0..<h {
            centred.withMutableRow(i) { row in mean.withUnsafeBufferPointer { VectorMath.axpy(-1, $0, row) } }
        }
        let gram = VectorMath.gram(centred, backend: problem.backend).map(Double.init)
        let eigen = SymmetricEigen(gram, n: h)
        guard let top = eigen.values.first, top > 0 && top.isFinite else { return nil }
        var v = [Float](repeating: 0, count: d)
        v.withUnsafeMutableBufferPointer {
            VectorMath.combination(of: centred, coefficients: Array(eigen.vector(0)), into: $0)
        }
        return v
    }

    /// Brackets `line` on both signs of τ: from |τ| = 1 (or the anchor) up by factors of 4 while
    /// the gap does not decrease (plateaus included), else down by factors of 4 while it
    /// increases; then golden-section in log |τ| around the better sign's best point.
    mutating func bracket(_ line: inout Line, evaluations share: Int) {
        let stop = min(budget, evaluations + share)
        var best: (tau: Double, gap: Double) = (0, -Double.infinity)
        for (n, sign) in [1.0, -1.0].enumerated() {
            // Each sign gets half of the share; the second also what the first left.
            let signStop = n == 0 ? min(stop, evaluations + share / 2) : stop
            let start = line.anchor.map { min(max($0, WorstCaseSearch.smallest), WorstCaseSearch.reach) } ?? 1
            guard evaluations < signStop, let g0 = copies(line, tau: sign * start) else { break }
            var signBest = (tau: sign * start, gap: g0)
            var t = start
            while evaluations < signStop && t < WorstCaseSearch.reach {
                t = min(t * 4, WorstCaseSearch.reach)
                guard let g = copies(line, tau: sign * t) else { break }
                if g >= signBest.gap { signBest = (sign * t, g) } else { break }
            }
            if abs(signBest.tau) == start {
                t = start
                while evaluations < signStop && t > WorstCaseSearch.smallest {
                    t /= 4
                    guard let g = copies(line, tau: sign * t) else { break }
                    if g > signBest.gap { signBest = (sign * t, g) } else { break }
                }
            }
            if signBest.gap > best.gap { best = signBest }
        }
        line.bestTau = best.tau
        line.bestGap = best.gap
        golden(&line, around: best.tau, evaluations: stop - evaluations)
    }

    /// Golden-section search of log |τ| on [|τ₀|/4, 4|τ₀|] (within the reach), τ's sign fixed:
    /// keeps the line's best point.
    mutating func golden(_ line: inout Line, around tau0: Double, evaluations count: Int) {
        guard tau0 != 0, count >= 2 else { return }
        let sign: Double = tau0 < 0 ? -1 : 1
        var lo = (abs(tau0) / 4).logMagnitude, hi = min(abs(tau0) * 4, WorstCaseSearch.reach).logMagnitude
        let ratio = (5.0.squareRoot() - 1) / 2
        let stop = min(budget, evaluations + count)
        func value(_ u: Double, _ run: inout WorstCaseRun, _ line: inout Line) -> Double {
            let t = sign * ElementaryFunctions.exp(u)
            guard let g = run.copies(line, tau: t) else { return -Double.infinity }
            if g > line.bestGap { line.bestGap = g; line.bestTau = t }
            return g
        }
        var a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo)
        var ga = value(a, &self, &line), gb = value(b, &self, &line)
        while evaluations < stop {
            if ga >= gb {
                hi = b; b = a; gb = ga
                a = hi - ratio * (hi - lo)
                ga = value(a, &self, &line)
            } else {
                lo = a; a = b; ga = gb
                b = lo + ratio * (hi - lo)
                gb = value(b, &self, &line)
            }
        }
    }

    /// Split placements along `line` around its best τ*: a chain spread back toward x̄_S
    /// (ρ ∈ {1, ½}, each scaled by a short golden search of its outer τ), then one input farther
    /// out than the others (a pattern search over log τ_far and log τ_near).
    mutating func split(_ line: Line, evaluations share: Int) {
        let stop = min(budget, evaluations + share)
        let tauStar = line.bestTau
        guard tauStar != 0 else { return }
        for rho in [1.0, 0.5] where evaluations < stop {
            // The chain's outer point scanned over factors 1/4…4 of τ*.
            for factor in [1.0, 4.0, 0.25, 2.0, 0.5] where evaluations < stop {
                let outer = max(-WorstCaseSearch.reach, min(WorstCaseSearch.reach, tauStar * factor))
                for j in 0..<f { place(j, along: line.direction, tau: outer * (1 - rho * Double(j) / Double(f - 1))) }
                _ = evaluateCurrent(family: "chain:" + line.name,
                                    parameters: ["tau": outer, "rho": rho, "scale": scale],
                                    atReach: abs(outer) >= WorstCaseSearch.reach)
            }
        }
        var near = abs(tauStar).logMagnitude, far = min(abs(tauStar) * 2, WorstCaseSearch.reach).logMagnitude
        var step = 4.0.logMagnitude
        let sign: Double = tauStar < 0 ? -1 : 1
        var current = -Double.infinity
        func evaluate(_ run: inout WorstCaseRun, near: Double, far: Double) -> Double {
            let tn = sign * min(ElementaryFunctions.exp(near), WorstCaseSearch.reach)
            let tf = sign * min(ElementaryFunctions.exp(far), WorstCaseSearch.reach)
            run.place(0, along: line.direction, tau: tf)
            for j in 1..<run.f { run.place(j, along: line.direction, tau: tn) }
            return run.evaluateCurrent(family: "two-point:" + line.name,
                                       parameters: ["tauNear": tn, "tauFar": tf, "scale": run.scale],
                                       atReach: max(abs(tn), abs(tf)) >= WorstCaseSearch.reach) ?? -Double.infinity
        }
        if evaluations < stop { current = evaluate(&self, near: near, far: far) }
        while evaluations < stop && step > 1e-3 {
            var moved = false
            for (dn, df) in [(0.0, step), (0.0, -step), (step, 0.0), (-step, 0.0)] where evaluations < stop {
                let g = evaluate(&self, near: near + dn, far: far + df)
                if g > current { current = g; near += dn; far += df; moved = true; break }
            }
            if !moved { step /= 2 }
        }
    }

    /// Compass search from the best inputs: shift all of them by ±α·s along each of `lines`'
    /// directions, keep a strict improvement, halve α after a pass without one.
    mutating func refine(_ lines: [Line]) {
        guard f > 0, !lines.isEmpty, bestGap > -Double.infinity else { return }
        // The step starts at a quarter of the best inputs' distance from x̄_S (in units of s).
        var reference = 1e-3
        for j in 0..<f {
            reference = max(reference,
                bestInputs.withRow(j) { b in mean.withUnsafeBufferPointer { VectorMath.distance(b, $0) } } / scale)
        }
        var alpha = reference / 4
        var base = bestInputs
        var current = bestGap
        while remaining > 0 && alpha > reference * 1e-4 {
            var improved = false
            for line in lines where remaining > 0 {
                for sign in [1.0, -1.0] where remaining > 0 {
                    let shift = Float(sign * alpha * scale), mean = self.mean, d = self.d
                    var far = 0.0
                    for j in 0..<f {
                        inputs.withMutableRow(h + j) { row in
                            base.withRow(j) { b in line.direction.withUnsafeBufferPointer { u in
                                for k in 0..<d { row[k] = b[k].addingProduct(shift, u[k]) }
                            } }
                            far = max(far,
                                mean.withUnsafeBufferPointer { VectorMath.distance(UnsafeBufferPointer(row), $0) })
                        }
                    }
                    guard far <= WorstCaseSearch.reach * scale else { continue }
                    guard let g = evaluateCurrent(family: "refined:" + line.name,
                                                  parameters: ["step": sign * alpha, "scale": scale],
                                                  atReach: far >= WorstCaseSearch.reach * scale * (1 - 1e-6)) else {
                                                      return
                                                  }
                    if g > current {
                        current = g
                        for j in 0..<f { base.setRow(j, inputs.row(h + j)) }
                        improved = true
                    }
                }
            }
            if !improved { alpha /= 2 }
        }
    }

    func result() -> WorstCase {
        let gap = bestGap.isFinite || bestGap == .infinity ? bestGap : 0
        let lambda = statistics.diameter > 0 ? gap / statistics.diameter : nil
        let bound = problem.bound
        return WorstCase(
            gap: gap, lambda: lambda, kappa: statistics.variance > 0 ? gap * gap / statistics.variance : nil,
            bound: bound, boundRatio: lambda.flatMap { l in bound.flatMap { $0 > 0 ? l / $0 : nil } },
            exceedsBound: lambda.map { l in bound.map { l > $0 * (1 + 1e-6) } ?? false } ?? false,
            family: bestFamily, parameters: bestParameters, evaluations: evaluations, atReach: bestAtReach)
    }
}

private extension Double {
    /// ln(max(self, 2⁻⁴⁰)): the log-scale coordinate of a magnitude.
    var logMagnitude: Double { ElementaryFunctions.log(Swift.max(self, 0x1p-40)) }
}
