import Testing
import DesgdNumerics
@testable import DesgdRobust

@Suite struct CatalogueTests {
    static let commandLineNames = ["mean", "clipmean", "median", "trmean", "krum", "mkrum", "geomed", "faba", "dnc",
                                   "clustering", "cclip", "bulyan", "mda", "monna", "meamed", "caf", "smea",
                                   "signguard", "fltrust"]

    @Test func everyCommandLineNameAndAliasParses() throws {
        for name in CatalogueTests.commandLineNames {
            #expect(try AggregatorCatalogue.makeAggregator(name).spec.hasPrefix(name))
        }
        for entry in AggregatorCatalogue.rules {
            for alias in entry.aliases {
                #expect(try AggregatorCatalogue.makeAggregator(alias).spec.hasPrefix(entry.name), "\(alias)")
            }
        }
        #expect(try AggregatorCatalogue.makeAggregator("KRUM:Q=n-f-1").spec == "krum:q=n-f-1")
        for name in ["bucketing", "nnm", "clip", "arc"] {
            #expect(try AggregatorCatalogue.makePreAggregator(ComponentSpec.parse(name)).spec.hasPrefix(name))
        }
    }

    @Test func canonicalSpecsRoundTrip() throws {
        #expect(AggregatorCatalogue.allRuleSpecs.count == 19)
        #expect(AggregatorCatalogue.expand("all") == AggregatorCatalogue.allRuleSpecs)
        #expect(AggregatorCatalogue.expand("krum") == ["krum"])
        for spec in AggregatorCatalogue.allRuleSpecs
            + ["geomed:nu=0.1,iters=3,tol=0,start=zero", "clip:c=1.5+nnm+bucketing:s=3+mkrum:q=n-f-1,m=2*f+1"] {
            let rule = try AggregatorCatalogue.makeAggregator(spec)
            #expect(try AggregatorCatalogue.makeAggregator(rule.spec).spec == rule.spec, "\(spec)")
        }
        #expect(try AggregatorCatalogue.makeAggregator("krum").spec == "krum:q=n-f-2")
        #expect(try AggregatorCatalogue.makeAggregator("geomed").spec
            == "geomed:nu=1e-06,iters=1000,tol=1e-06,start=mean")
        #expect(try AggregatorCatalogue.makeAggregator("cclip").spec == "cclip:tau=10,iters=3")
        #expect(try AggregatorCatalogue.makeAggregator("dnc").spec == "dnc:b=10000,niters=5,c=1")
        for entry in AggregatorCatalogue.rules {
            #expect(try AggregatorCatalogue.makeAggregator(entry.name).spec == entry.defaultSpec, "\(entry.name)")
        }
    }

    @Test func unknownNamesListTheKnownOnes() {
        #expect(throws: AggregationError.self) { try AggregatorCatalogue.makeAggregator("krun") }
        do {
            _ = try AggregatorCatalogue.makeAggregator("krun")
        } catch {
            #expect(error.message.contains("unknown aggregator 'krun'"))
            for name in CatalogueTests.commandLineNames { #expect(error.message.contains(name)) }
        }
        do {
            _ = try AggregatorCatalogue.makeAggregator("nnm")
        } catch {
            #expect(error.message.contains("pre-aggregator"))
        }
        do {
            _ = try AggregatorCatalogue.makePipeline(rule: "median", pre: "krum")
        } catch {
            #expect(error.message.contains("unknown pre-aggregator 'krum'")
                && error.message.contains("bucketing, nnm, clip, arc"))
        }
    }

    @Test func unknownParametersListTheAllowedOnes() {
        do {
            _ = try AggregatorCatalogue.makeAggregator("krum:f=2")
            Issue.record("krum:f=2 accepted")
        } catch {
            #expect(error.message == "'krum' has no parameter 'f': its parameters are q")
        }
        do {
            _ = try AggregatorCatalogue.makeAggregator("median:b=1")
            Issue.record("median:b=1 accepted")
        } catch {
            #expect(error.message.contains("it takes no parameters"))
        }
        for bad in ["geomed:iters=0", "geomed:nu=-1", "geomed:start=one", "cclip:tau=0", "dnc:niters=1.5",
                    "bucketing:s=0+mean", "krum:q=n-", "trmean:b=x"] {
            #expect(throws: AggregationError.self, "\(bad)") { try AggregatorCatalogue.makeAggregator(bad) }
        }
    }

    /// `krum:q=n-f-1` is ByzFL's Krum: argmin of the mean of the n−f−1 smallest squared
    /// distances to the others (transcribed from `Krum.__call__`).
    @Test func expressionParameterGivesTheByzFLKrum() {
        var rng = RandomStream(seed: 17, purpose: .syntheticData)
        let krum = make("krum:q=n-f-1")
        for trial in 0..<20 {
            let n = 6 + trial % 5, f = 1 + trial % 2, d = 3
            let rows = (0..<n).map { _ in (0..<d).map { _ in Float(rng.nextGaussian()) } }
            let scores = rows.map { a in
                let sorted = rows.map { b in zip(a, b).reduce(0.0) { $0 + pow2(Double($1.0 - $1.1)) } }.sorted()
                return sorted[1..<(n - f)].reduce(0, +) / Double(n - f - 1)
            }
            let expected = scores.indices.min { scores[$0] < scores[$1] }!
            #expect(run(krum, rows, f: f).1.selected == [expected])
        }
    }

    @Test func requirementsNameTheRule() throws {
        let krum = try AggregatorCatalogue.makeAggregator("krum")
        #expect(krum.requirement(n: 6, f: 2) == "krum needs n ≥ 2f+3 (q = n−f−2 neighbours, q > f): got n=6, f=2")
        #expect(krum.requirement(n: 7, f: 2) == nil)
        #expect(try AggregatorCatalogue.makeAggregator("krum:q=n-f-1").requirement(n: 6, f: 2) == nil)
        #expect(Bulyan().requirement(n: 10, f: 2) == "bulyan needs n ≥ 4f+3: got n=10, f=2")
        #expect(Bulyan().requirement(n: 11, f: 2) == nil)
        #expect(TrimmedMean().requirement(n: 4, f: 2)?.hasPrefix("trmean needs n > 2b") == true)
        #expect(TrimmedMean().requirement(n: 5, f: 2) == nil)
        #expect(MultiKrum().requirement(n: 7, f: 2) == nil)
        #expect(make("mkrum:m=n+1").requirement(n: 7, f: 2)?.contains("1 ≤ m ≤ n") == true)
        #expect(make("monna:pivot=n").requirement(n: 7, f: 2)?.contains("pivot") == true)
        // FLTrust trusts its root data, not a majority: it accepts f = n/2 (FLTrustTests).
        for spec in AggregatorCatalogue.allRuleSpecs where !spec.hasPrefix("mean") && !spec.hasPrefix("fltrust") {
            #expect(make(spec).requirement(n: 4, f: 2) != nil, "\(spec) accepts f = n/2")
            #expect(make(spec).requirement(n: 0, f: 0) != nil)
        }
        #expect(throws: AggregationError.self) { try AggregatorCatalogue.check("mda", n: 5, f: 3) }
        #expect(throws: Never.self) { try AggregatorCatalogue.check("mda", n: 5, f: 2) }
        #expect(throws: AggregationError.self) { try AggregatorCatalogue.check("bucketing:s=2+bulyan", n: 20, f: 2) }
    }

    @Test func helpTextListsEverything() {
        let help = AggregatorCatalogue.helpText.rules + "\n" + AggregatorCatalogue.helpText.preAggregators
        #expect(help.split(separator: "\n").allSatisfy { !$0.hasPrefix(" ") || $0.count < 80 })
        // Summaries are wrapped with an indent: compare with the line breaks as spaces.
        let flat = help.split(separator: "\n").map { String($0.drop { $0 == " " }) }.joined(separator: " ")
        for entry in AggregatorCatalogue.rules + AggregatorCatalogue.preAggregators {
            #expect(help.contains(entry.defaultSpec) && flat.contains(entry.summary))
        }
        #expect(help.contains("krum:q=n-f-2"))
    }

    @Test func chainsBuildPipelines() throws {
        let chain = try AggregatorCatalogue.makeAggregator("clip+nnm+krum")
        let pipeline = try #require(chain as? AggregationPipeline)
        #expect(pipeline.preAggregators.map(\.spec) == ["clip:c=2", "nnm"])
        #expect(pipeline.spec == "clip:c=2+nnm+krum:q=n-f-2")
        #expect(try AggregatorCatalogue.makePipeline(rule: "krum", pre: "none").preAggregators.isEmpty)
        #expect(throws: AggregationError.self) { try AggregatorCatalogue.makePipeline(rule: "nnm+krum", pre: "") }
    }
}

@Suite struct ChainSyntaxTests {
    @Test func plusInsideAnExpressionIsNotAChainSeparator() throws {
        #expect(try ComponentSpec.parseChain("mkrum:m=2*f+1").map(\.description) == ["mkrum:m=2*f+1"])
        #expect(try ComponentSpec.parseChain("trmean:b=f+n/10").map(\.description) == ["trmean:b=f+n/10"])
        #expect(try ComponentSpec.parseChain("clip:c=2+nnm+krum:q=n-f-1").map(\.name) == ["clip", "nnm", "krum"])
        #expect(try ComponentSpec.parseChain("bucketing:s=2+faba").map(\.name) == ["bucketing", "faba"])
        #expect(make("mkrum:m=2*f+1").requirement(n: 9, f: 2) == nil)
        #expect(run(make("mkrum:m=2*f+1"), scalars([0, 1, 2, 10, 11]), f: 1).1.selected?.count == 3)
    }
}

/// Hostile specs: literals that do not fit, expressions that could overflow, and parameters that
/// would make a rule loop or allocate absurdly are one-line errors with the range, never a trap.
@Suite struct SpecRangeTests {
    @Test(arguments: [
        ("krum:q=9223372036854775807+1",
            "'krum': q=9223372036854775807+1 must stay within -1099511627776...1099511627776 for n and f in"
            + " 0...65536: use smaller numbers"),
        ("krum:q=99999999999999999999",
            "'krum': q=99999999999999999999: 99999999999999999999 does not fit in a 64-bit integer (values must stay"
            + " within -1099511627776...1099511627776)"),
        ("trmean:b=n*n*n",
            "'trmean': b=n*n*n must stay within -1099511627776...1099511627776 for n and f in"
            + " 0...65536: use smaller numbers"),
        ("mkrum:m=-9223372036854775807-1",
            "'mkrum': m=-9223372036854775807-1 must stay within -1099511627776...1099511627776 for n and f in"
            + " 0...65536: use smaller numbers"),
        ("geomed:iters=1000000", "'geomed': iters=1000000 must be a whole number in 1...100000"),
        ("geomed:iters=1e300", "'geomed': iters=1e300 must be a whole number in 1...100000"),
        ("cclip:iters=0", "'cclip': iters=0 must be a whole number in 1...1000"),
        ("dnc:niters=5000", "'dnc': niters=5000 must be a whole number in 1...1000"),
        ("dnc:c=1e300", "'dnc': c=1e300 must be a number in [0, 1000]"),
        ("bucketing:s=100000+mean", "'bucketing': s=100000 must be a whole number in 1...65536"),
    ])
    func hostileSpecsAreRefusedWithTheirRange(text: String, message: String) {
        var caught: AggregationError?
        do { _ = try AggregatorCatalogue.makeAggregator(text) } catch { caught = error }
        #expect(caught?.message == message)
    }

    @Test func largeButBoundedExpressionsEvaluateExactly() throws {
        let e = try SpecExpression.parse("n*n-f*1000000", context: "test")
        #expect(e.evaluate(n: 65_536, f: 65_536) == 65_536 * 65_536 - 65_536 * 1_000_000)
        #expect(try SpecExpression.parse("n/(f-f)", context: "test").evaluate(n: 7, f: 2) == 0)
    }

    /// Outside the checked domain (n, f beyond 2¹⁶, which no validated run reaches) every step is
    /// still checked: values are clamped to ±2⁴⁰ instead of trapping.
    @Test func evaluationOutsideTheCheckedDomainClampsInsteadOfTrapping() throws {
        let square = try SpecExpression.parse("n*n", context: "test")
        #expect(square.evaluate(n: Int.max, f: 0) == SpecExpression.valueBound)
        #expect(square.evaluate(n: Int.min, f: 0) == SpecExpression.valueBound)
        #expect(try SpecExpression.parse("n-f", context: "test").evaluate(n: Int.min, f: Int.max)
            == -SpecExpression.valueBound)
        #expect(make("trmean:b=n*n").requirement(n: 1 << 21, f: 1) != nil)
    }
}
