import DesgdCLI
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdExperiments

/// A grid of seconds: synthetic data, the small model, 10 + 1 workers, 6 rounds.
func smokeSpec(name: String = "smoke", seeds: [UInt64] = [1, 2], record: String = "full") -> GridSpec {
    GridSpec(
        name: name,
        options: "--synthetic 1200 --model small --honest 10 --byzantine 1 --batch 8 --rounds 6 --eval-every 3",
        record: record, seeds: seeds,
        methods: [.init("Krum", "--mode sgd --agg krum:q=n-f-1"), .init("Krum+", "--mode desgd --agg krum:q=n-f-1"),
                  .init("Mean", "--mode sgd --momentum global --agg mean")],
        attacks: [.init("Non", "none"), .init("IPM", "ipm")],
        reference: .init(method: "Mean", attack: "Non"))
}

@Suite struct GridSpecTests {
    @Test func expandsMethodsAttacksSeedsInOrder() throws {
        let plan = try GridPlan(spec: smokeSpec(), parse: SimulationOptions.parseWords)
        #expect(plan.cells.count == 3 * 2 * 2)
        #expect(plan.cells.map(\.index) == Array(0..<12))
        #expect(plan.cells[0].stem == "Krum__Non__seed1")
        #expect(plan.cells[1].stem == "Krum__Non__seed2")
        #expect(plan.cells[2].stem == "Krum__IPM__seed1")
        let c = plan.cells[5]
        #expect(c.method == "Krum+" && c.attack == "Non" && c.seed == 2)
        #expect(c.config.mode == .desgd && c.config.aggregator == "krum:q=n-f-1" && c.config.attack == "none"
            && c.config.seed == 2)
        #expect(c.config.rounds == 6 && c.config.honestWorkers == 10 && c.config.threads == 1)
        #expect(plan.cells[8].config.momentum == .global)
        #expect(c.arguments.suffix(4) == ["--attack", "none", "--seed", "2"])
        #expect(plan.cells.allSatisfy { $0.checkpointInterval == 50 })  // desgd-record's for the quick preset
    }

    @Test func aMethodsOptionOverridesTheGrids() throws {
        var spec = smokeSpec(seeds: [1])
        spec.options += " --agg median"
        spec.methods = [.init("Median", "--mode sgd"), .init("TrMean", "--mode sgd --agg trmean --rounds 4")]
        spec.reference = nil
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        #expect(plan.cells[0].config.aggregator == "median")
        #expect(plan.cells[2].config.aggregator == "trmean" && plan.cells[2].config.rounds == 4)
    }

    @Test func blocksSelectSubGridsAndACellNamedTwiceRunsOnce() throws {
        var spec = smokeSpec(seeds: [1])
        spec.blocks = [.init(methods: ["Krum", "Krum+"], attacks: ["IPM"]),
            .init(methods: ["Mean", "Krum"], attacks: ["Non", "IPM"])]
        let plan = try GridPlan(spec: spec, parse: SimulationOptions.parseWords)
        #expect(plan.cells.map(\.stem)
            == ["Krum__IPM__seed1", "Krum+__IPM__seed1", "Mean__Non__seed1", "Mean__IPM__seed1", "Krum__Non__seed1"])
    }

    @Test func badSpecsAreOneLineErrors() throws {
        func message(_ edit: (inout GridSpec) -> Void) -> String? {
            var spec = smokeSpec()
            edit(&spec)
            do { _ = try GridPlan(spec: spec, parse: SimulationOptions.parseWords); return nil } catch {
                return error.message
            }
        }
        #expect(message { $0.methods[0].options = "--mode sgd --agg nosuchrule" }?.contains("Krum under Non") == true)
        #expect(message { $0.methods[0].options = "--mode sgd --agg nosuchrule" }?.contains("nosuchrule") == true)
        #expect(message { $0.methods[1].options += " --seed 3" }?.contains("--seed") == true)
        #expect(message { $0.options += " --attack ipm" }?.contains("--attack") == true)
        #expect(message { $0.options += " --threads=4" }?.contains("--threads") == true)
        #expect(message { $0.name = ".." }?.contains("grid name") == true)
        #expect(message {
            $0.methods = [.init("X_", "--agg mean"), .init("X", "--agg mean")]
            $0.attacks = [.init("Y", "none"), .init("_Y", "none")]
            $0.reference = nil
        }?.contains("would share the file X___Y__seed1.trace") == true)
        #expect(message { $0.options += " --no-such-option 1" }?.contains("no-such-option") == true)
        #expect(message { $0.methods[1].label = "Krum" }?.contains("used twice") == true)
        #expect(message {
            $0.attacks.append(.init("I P M", "ipm"));
            $0.attacks.append(.init("I:P:M", "ipm")) }?.contains("same file name") == true)
        #expect(message { $0.blocks = [.init(methods: ["Nope"], attacks: ["Non"])] }?.contains("Nope") == true)
        #expect(message { $0.seeds = [] }?.contains("no seeds") == true)
        #expect(message { $0.record = "sometimes" } != nil)
        #expect(message { $0.name = "my grid" }?.contains("grid name") == true)
        #expect(message { $0.reference = .init(method: "Mean", attack: "ALIE") }?.contains("reference") == true)
        #expect(message { _ in } == nil)
    }

    @Test func specJSONRoundTripsAndUnknownKeysAreRefused() throws {
        let spec = smokeSpec()
        #expect(try GridSpec.decode(spec.json()) == spec)
        let minimal = #"{"name": "g", "methods": [{"label": "M", "options": "--agg mean"}], "#
            + #""attacks": [{"label": "A", "spec": "none"}]}"#
        let decoded = try GridSpec.decode(Data(minimal.utf8))
        #expect(decoded.seeds == [1] && decoded.record == GridDefaults.recording && decoded.options == "")
        for (bad, needle) in [
            (#"{"name": "g", "seed": [2], "methods": [], "attacks": []}"#, "\"seed\""),
            (#"{"name": "g", "methods": [{"label": "M", "option": "x"}], "attacks": []}"#, "\"option\""),
            (#"{"name": "g", "methods": [{"label": "M"}], "attacks": []}"#, "options"),
            (#"{"name": "g", "methods": "M", "attacks": []}"#, "methods"),
            (#"{"name": 1"#, "not valid JSON"),
            (#"[1, 2]"#, "JSON object"),
        ] {
            do { _ = try GridSpec.decode(Data(bad.utf8)); Issue.record("accepted \(bad)") } catch {
                #expect(error.message.contains(needle), "\(error.message)")
                #expect(!error.message.contains("\n"))
            }
        }
    }

    @Test func builtinGridsExpandAndRunTheirCells() throws {
        let paper = try GridPlan(spec: .paper, parse: SimulationOptions.parseWords)
        #expect(paper.cells.count == 15 * 8 * 3 + 4 * 3 * 3 + 3)
        #expect(paper.cells.allSatisfy {
            $0.config.rounds == 3000 && $0.config.model == .lenet && $0.checkpointInterval == 500 })
        let reduced = try GridPlan(spec: .reduced, parse: SimulationOptions.parseWords)
        #expect(reduced.cells.count == 24 + 1 + 3 + 12 + 6 + 12 + 2)
        // The peers' attacks come last (the first 46 cells keep their indices and traces): Krum and
        // TrMean with and without DeSGD, Fang's Krum attack on SGD only (a DeSGD group lacks f + 3 honest senders).
        let peers = reduced.cells.filter { c in GridSpec.peerAttacks.contains { $0.label == c.attack } }
        #expect(peers.map(\.index) == Array(46..<60))
        #expect(Set(peers.map(\.method)) == ["Krum", "Krum+", "TrMean", "TrMean+"])
        #expect(peers.filter { $0.attack == "Fang-Krum" }.allSatisfy { $0.config.mode == .sgd })
        #expect(peers.first {
            $0.method == "TrMean+" && $0.attack == "Min-Sum" }?.arguments.suffix(4)
            == ["--attack", "minsum", "--seed", "1"])
        for cell in peers { #expect(PaperTables.accuracy(cell.method, cell.attack) == nil) }
        #expect(reduced.cells.allSatisfy {
            $0.config.rounds == 300 && $0.config.evaluationInterval == 25 && $0.seed == 1 })
        // Every method and attack label of the built-ins is the paper's, so every cell has a published number.
        for cell in paper.cells where cell.method != GridSpec.referenceMethod.label {
            let published = PaperTables.accuracy(cell.method, cell.attack) ?? PaperTables.drop(cell.method, cell.attack)
            #expect(published != nil, "\(cell.method) under \(cell.attack)")
        }
        let bucketing = try #require(paper.cells.first { $0.method == "DnC + Bucketing" })
        #expect(bucketing.config.preAggregators == "bucketing:s=2" && bucketing.config.mode == .sgd)
        #expect(try GridSpec.load("reduced") == .reduced)
    }
}

@Suite struct PaperTablesTests {
    @Test func tableIHasFifteenMethodsUnderEightAttacks() {
        #expect(PaperTables.tableI.count == 15)
        #expect(PaperTables.tableI.allSatisfy { $0.accuracy.count == 8 })
        #expect(PaperTables.accuracy("Krum", "Sign-Flip") == 42.86)
        #expect(PaperTables.accuracy("Krum+", "Sign-Flip") == 88.73)
        #expect(PaperTables.accuracy("GeoMed", "ALIE") == 43.29)
        #expect(PaperTables.accuracy("GeoMed+", "ALIE") == 75.87)
        #expect(PaperTables.accuracy("Clustering+", "ALIE") == 88.66)
        #expect(PaperTables.accuracy("DnC+", "ALIE") == 85.36)
        #expect(PaperTables.accuracy("Krum", "Nothing") == nil)
    }

    /// Table II's DeSGD drops are 90.58 minus Table I's "+" rows: a transcription error in either
    /// table breaks this, and it is what identifies Table II's baseline.
    @Test func tableIIDeSGDRowsAreTheReferenceMinusTableI() {
        var checked = 0
        for row in PaperTables.tableII where row.method.hasSuffix(" + DeSGD") {
            let label = String(row.method.dropLast(" + DeSGD".count)) + "+"
            for (a, drop) in zip(PaperTables.tableIIAttacks, row.drop) {
                let acc = PaperTables.accuracy(label, a)!
                #expect(abs(PaperTables.referenceAccuracy - acc - drop) < 0.005, "\(row.method) \(a)")
                checked += 1
            }
        }
        #expect(checked == 12)
        #expect(PaperTables.tableIIName("Clustering+") == "Clustering + DeSGD")
        #expect(PaperTables.tableIIName("DnC + Bucketing") == "DnC + Bucketing")
        #expect(PaperTables.drop("TrMean+", "ALIE") == 10.14)
        #expect(PaperTables.csv.split(separator: "\n").count == 1 + 15 * 8 + 8 * 3)
    }
}
