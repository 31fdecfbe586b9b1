import Testing
@testable import DesgdRobust

/// Names, aliases, parameters, canonical specs and errors of the attack catalogue.
@Suite struct AttackCatalogueTests {
    /// docs/design.md §4: the names that must work, with their canonical default specs.
    @Test(arguments: [
        ("none", "none"), ("constant", "constant:c=5"), ("gaussian", "gaussian:mu=0,sigma=2"),
        ("signflip", "signflip:scale=1"), ("labelflip", "labelflip"), ("ipm", "ipm:eps=0.1"),
        ("alie", "alie:z=1"), ("mimic", "mimic:target=0"), ("inf", "inf"), ("nan", "nan"),
        ("ipm-opt", "ipm-opt:evals=20,start=0,delta=10,ratio=0.8"),
        ("alie-opt", "alie-opt:evals=20,start=0,delta=10,ratio=0.8"),
        ("minmax", "minmax:dev=std,ddof=1,gamma=10,tol=1e-05"),
        ("minsum", "minsum:dev=std,ddof=1,bound=min,gamma=10,tol=1e-05"),
        ("fang-krum", "fang-krum:start=bound,threshold=1e-05"), ("fang-trmean", "fang-trmean:b=2"),
    ])
    func requiredNamesGiveTheirDefaults(name: String, spec: String) throws {
        #expect(try AttackCatalogue.makeAttack(name).spec == spec)
    }

    @Test func catalogueListsExactlyTheProductNames() {
        #expect(AttackCatalogue.names == ["none", "constant", "gaussian", "signflip", "labelflip", "ipm", "alie",
                                          "mimic", "inf", "nan", "ipm-opt", "alie-opt", "minmax", "minsum", "fang-krum",
                                          "fang-trmean"])
    }

    @Test(arguments: [
        ("sign-flip", "signflip:scale=1"), ("label-flip", "labelflip"),
        ("optimal-ipm", "ipm-opt:evals=20,start=0,delta=10,ratio=0.8"),
        ("opt-alie:evals=5", "alie-opt:evals=5,start=0,delta=10,ratio=0.8"), ("empire:eps=2", "ipm:eps=2"),
        ("little:z=AUTO", "alie:z=auto"), ("ALIE:Z=1.5", "alie:z=1.5"),
        ("noise:sigma=0.5,mu=1", "gaussian:mu=1,sigma=0.5"),
        ("mimic:target=3", "mimic:target=3"), ("mimic:mode=heuristic", "mimic:mode=heuristic,warmup=1"),
        ("mimic:mode=Heuristic,warmup=4", "mimic:mode=heuristic,warmup=4"), ("constant:c=-0.25", "constant:c=-0.25"),
        ("ipm-opt:ratio=0.9,delta=-1,start=2.5", "ipm-opt:evals=20,start=2.5,delta=-1,ratio=0.9"),
        ("sf:scale=3", "signflip:scale=3"), ("honest", "none"), ("infinity", "inf"),
        ("min-max:dev=SIGN,gamma=50", "minmax:dev=sign,gamma=50,tol=1e-05"),
        ("minmax:ddof=0", "minmax:dev=std,ddof=0,gamma=10,tol=1e-05"),
        ("min-sum:bound=max,dev=unit,tol=0.001", "minsum:dev=unit,bound=max,gamma=10,tol=0.001"),
        ("fangkrum:start=1", "fang-krum:start=1,threshold=1e-05"),
        ("fang-krum:start=BOUND,threshold=0.001", "fang-krum:start=bound,threshold=0.001"),
        ("fang-median:b=3.5", "fang-trmean:b=3.5"),
    ])
    func aliasesAndParameters(text: String, spec: String) throws {
        let attack = try AttackCatalogue.makeAttack(text)
        #expect(attack.spec == spec)
        // The canonical spec reads back to the same attack.
        #expect(try AttackCatalogue.makeAttack(attack.spec).spec == spec)
    }

    @Test func parametersReachTheAttacks() throws {
        #expect((try AttackCatalogue.makeAttack("alie:z=auto") as? ALIEAttack)?.z == .auto)
        #expect((try AttackCatalogue.makeAttack("ipm:eps=0.3") as? IPMAttack)?.epsilon == 0.3)
        #expect((try AttackCatalogue.makeAttack("mimic:mode=heuristic,warmup=2") as? MimicHeuristicAttack)?.warmup == 2)
        #expect((try AttackCatalogue.makeAttack("alie-opt:evals=7") as? OptimalALIEAttack)?.search
                == LineMaximizer(evaluations: 7))
    }

    @Test func needsAreDeclared() throws {
        let needs = try AttackCatalogue.names.map { try AttackCatalogue.makeAttack($0).ownMomentum }
        #expect(needs
            == [.trueLabels, .none, .none, .trueLabels, .flippedLabels, .none, .none, .none, .none, .none, .none, .none,
                          .none, .none, .none, .none])
        let simulating = try AttackCatalogue.names.filter { try AttackCatalogue.makeAttack($0).simulatesAggregator }
        #expect(simulating == ["ipm-opt", "alie-opt"])
    }

    @Test(arguments: [
        ("krum",
            "unknown attack 'krum': known attacks are none, constant, gaussian, signflip, labelflip, ipm, alie, mimic,"
            + " inf, nan, ipm-opt, alie-opt, minmax, minsum, fang-krum, fang-trmean"),
        ("alie:tau=1.5", "'alie' has no parameter 'tau': its parameters are z"),
        ("nan:x=1", "'nan' has no parameter 'x': it takes no parameters"),
        ("constant:c=abc", "'constant': c=abc is not a number"),
        ("constant:c=inf", "'constant': c=inf must be finite"),
        ("gaussian:sigma=-1", "'gaussian': sigma=-1.0 must be ≥ 0"),
        ("mimic:mode=random", "'mimic': mode=random is not one of fixed, heuristic"),
        ("mimic:mode=heuristic,target=1",
            "'mimic': mode=heuristic chooses its own target; target applies to mode=fixed"),
        ("mimic:warmup=2", "'mimic': warmup applies to mode=heuristic only"),
        ("mimic:mode=heuristic,warmup=0", "'mimic': warmup=0 must be an integer in 1...10000000"),
        ("mimic:target=-1", "'mimic': target=-1 must be an integer in 0...65535"),
        ("ipm-opt:evals=0", "'ipm-opt': evals=0 must be an integer in 1...1000"),
        ("alie-opt:ratio=0.5", "'alie-opt': ratio=0.5 must be in (0.5, 1)"),
        ("alie-opt:delta=0", "'alie-opt': delta must not be 0"),
        ("ipm-opt:agg=mean", "'ipm-opt' has no parameter 'agg': its parameters are evals, start, delta, ratio"),
        ("minmax:bound=max", "'minmax' has no parameter 'bound': its parameters are dev, ddof, gamma, tol"),
        ("minmax:dev=mean", "'minmax': dev=mean is not one of std, sign, unit"),
        ("minmax:dev=sign,ddof=0", "'minmax': ddof applies to dev=std only"),
        ("minmax:ddof=2", "'minmax': ddof=2 must be an integer in 0...1"),
        ("minsum:gamma=0", "'minsum': gamma=0.0 must be in (0, 1e9]"),
        ("minsum:tol=20", "'minsum': tol=20.0 must be in [1e-12, gamma)"),
        ("minsum:bound=mean", "'minsum': bound=mean is not one of min, max"),
        ("fang-krum:start=-1", "'fang-krum': start=-1 must be bound or a number > 0"),
        ("fang-krum:threshold=0", "'fang-krum': threshold=0.0 must be > 0"),
        ("fang-trmean:b=1", "'fang-trmean': b=1.0 must be in (1, 1e6]"),
    ])
    func errorsAreOneLineAndNameWhatIsKnown(text: String, message: String) {
        let error = attackError { _ = try AttackCatalogue.makeAttack(text) }
        #expect(error == message)
        #expect(error?.contains("\n") == false)
    }

    @Test func helpListsEveryAttackWithItsDefaults() {
        let help = AttackCatalogue.helpText
        #expect(help.split(separator: "\n").allSatisfy { !$0.hasPrefix(" ") || $0.count < 80 })
        // Summaries are wrapped with an indent: compare with the line breaks as spaces.
        let flat = help.split(separator: "\n").map { String($0.drop { $0 == " " }) }.joined(separator: " ")
        for name in AttackCatalogue.names {
            #expect(help.contains("  \(name)"), "help misses \(name)")
        }
        for spec in ["constant:c=5", "gaussian:mu=0,sigma=2", "alie:z=1 | alie:z=auto",
                     "mimic:target=0 | mimic:mode=heuristic,warmup=1",
                     "ipm:eps=0.1", "ipm-opt:evals=20,start=0,delta=10,ratio=0.8", "(also: sign-flip, sf)",
                     "minsum:dev=std,ddof=1,bound=min,gamma=10,tol=1e-05", "fang-trmean:b=2"] {
            #expect(flat.contains(spec), "help misses \(spec)")
        }
    }
}
