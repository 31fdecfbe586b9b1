@testable import DesgdFuzzing
import DesgdNumerics
import DesgdResimulation
import DesgdSimulation
@testable import DesgdTrace
import Foundation
import Testing

/// Carried states read from a hostile trace (checkpoints, keyframes, rounds' `stateBefore`) are
/// validated like the header (FORMAT.md §6): what the rule or attack declares, nothing else. Each
/// case once trapped (`Int(nan)` in mimic's `t`, exit 132) or exhausted memory (100 000 names of
/// one vector) in `--resume` or `--reexecute`; now each is a ``TraceError`` naming the record and the value.
@Suite struct CheckpointStateTests {
    /// 4 rounds under mimic's heuristic (state: `mu`, `z`, `t`, `target`) and cclip (state: `centre`),
    /// a checkpoint before every round.
    static let mimic: [UInt8] = {
        let config = tinyConfig { $0.rounds = 4; $0.attack = "mimic:mode=heuristic" }
        let (path, _, _) = try! record(config, keyframes: 100, checkpoints: 1)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }()

    func open(_ bytes: [UInt8]) throws(TraceError) -> TraceReader {
        try TraceReader(source: MemorySource(bytes, name: "hostile.trace"))
    }

    /// The checkpoint before round 2 with group `g`'s state of `kind` changed by `edit`.
    static func editingState(_ kind: String, group g: Int = 0,
                             _ edit: @escaping (inout [String: Any], Int) -> Void) -> [UInt8]? {
        TraceMutator.editingJSON(of: mimic, type: .checkpoint, occurrence: 2) { json in
            guard var states = json[kind] as? [[String: Any]] else { return }
            var state = states[g]
            edit(&state, (json["vectors"] as? [Any])?.count ?? 0)
            states[g] = state
            json[kind] = states
        }
    }

    /// Reading the checkpoint before round 2 fails naming the record and every phrase.
    func expectRefused(_ bytes: [UInt8]?, _ phrases: [String],
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let reader = try open(try #require(bytes, sourceLocation: sourceLocation))
        do {
            _ = try reader.checkpoint(2).simulationState()
            Issue.record("a hostile state was accepted (\(phrases))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.kind == .corrupted, sourceLocation: sourceLocation)
            for p in ["checkpoint before round 2"] + phrases {
                #expect(error.message.contains(p), "\(error.message)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func theRecordedStatesPass() throws {
        let reader = try open(Self.mimic)
        let state = try reader.checkpoint(2).simulationState()
        #expect(state.attackStates.contains { $0.scalars["t"] == 1 && $0.vectors.keys.sorted() == ["mu", "z"] })
        #expect(state.aggregatorStates.contains { $0.vectors.keys.sorted() == ["centre"] })
    }

    /// mimic's `t` NaN, ±∞, beyond Int's range, negative, fractional or above the run's rounds.
    @Test(arguments: ["nan", "inf", "-inf", "1e300", "9.3e18", "-1", "0.5", "5"])
    func scalarsOutsideTheirRange(_ value: String) throws {
        // Group 0 (class 0) aggregated in round 0: its mimic state holds t = 1. Non-finite values
        // are written as the format writes them (strings).
        let json: Any = ["nan", "inf", "-inf"].contains(value) ? value : Double(value)!
        try expectRefused(Self.editingState("attackStates") { s, _ in
            var scalars = s["scalars"] as? [String: Any] ?? [:]
            scalars["t"] = json
            s["scalars"] = scalars
        }, ["attackStates[0]", "scalar 't'", "not an integer in 0...4"])
    }

    @Test func aTargetBeyondTheHonestWorkers() throws {
        try expectRefused(Self.editingState("attackStates") { s, _ in
            var scalars = s["scalars"] as? [String: Any] ?? [:]
            scalars["target"] = 3
            s["scalars"] = scalars
        }, ["scalar 'target' is 3.0, not an integer in 0...2"])
    }

    /// 100 000 names of one vector: refused by name, before a single vector is decoded.
    @Test func manyNamesAliasingOneVector() throws {
        for kind in ["aggregatorStates", "attackStates"] {
            try expectRefused(Self.editingState(kind) { s, _ in
                var names = s["vectors"] as? [String: Any] ?? [:]
                let target = names.values.first ?? 0
                for i in 0..<100_000 { names["alias\(i)"] = target }
                s["vectors"] = names
            }, ["\(kind)[0]", "holds vector 'alias0'"])
        }
    }

    /// A state without the values its attack needs once it has run (mimic's `mu` dropped, t = 1
    /// kept) once failed a precondition in the attack.
    @Test func aStateMissingAValue() throws {
        try expectRefused(Self.editingState("attackStates") { s, _ in
            var names = s["vectors"] as? [String: Any] ?? [:]
            names.removeValue(forKey: "mu")
            s["vectors"] = names
        }, ["lacks 'mu'"])
        try expectRefused(Self.editingState("aggregatorStates") { s, _ in
            s["scalars"] = ["tau": 5]
        }, ["aggregatorStates[0]", "holds scalar 'tau'"])
    }

    /// A known name pointing at a vector of another length than the model's (a drift window term
    /// has the model's length, so the parameters' table entry is changed instead).
    @Test func aVectorOfAnotherLength() throws {
        let bytes = TraceMutator.editingJSON(of: Self.mimic, type: .checkpoint, occurrence: 2) { json in
            guard var table = json["vectors"] as? [[String: Any]],
                  var states = json["attackStates"] as? [[String: Any]],
                  let i = (states[0]["vectors"] as? [String: Any])?["mu"] as? Int else { return }
            table.append(["offset": table[i]["offset"] as Any, "count": 3])
            states[0]["vectors"] = ["mu": table.count - 1, "z": i]
            json["vectors"] = table
            json["attackStates"] = states
        }
        let reader = try open(try #require(bytes))
        #expect(throws: TraceError.self) { try reader.checkpoint(2) }
    }

    /// `--resume` restores the last checkpoint: with mimic's `t` NaN there (the header claiming one
    /// more round, so that there is something to resume), a ``TraceError``, not a trap.
    @Test func resumeRefusesANaNState() throws {
        let last = try #require(TraceMutator.editingJSON(of: Self.mimic, type: .checkpoint, occurrence: 3) { json in
            guard var states = json["attackStates"] as? [[String: Any]] else { return }
            for g in states.indices where (states[g]["scalars"] as? [String: Any])?["t"] != nil {
                states[g]["scalars"] = ["t": "nan", "target": 0]
            }
            json["attackStates"] = states
        })
        let bytes = try #require(TraceMutator.editingJSON(of: last, type: .header) { json in
            guard var config = json["config"] as? [String: Any] else { return }
            config["rounds"] = 5
            json["config"] = config
        })
        let path = temporaryPath("nan-state")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        do {
            _ = try ResumeRun.resume(path: path, threads: 1, dataDirectory: nil, dataset: tinyData, compressionLevel: 1,
                                     signingKey: nil)
            Issue.record("resumed from a NaN state")
        } catch {
            #expect(error.kind == .corrupted && error.message.contains("scalar 't' is nan"), "\(error.message)")
        }
    }

    /// The mutator's hostile states (HostileClaims.swift) never trap the reader or the exercise.
    @Test func mutatedStatesAreRefusedOrHarmless() throws {
        var refused = 0
        for seed in UInt32(1)...16 {
            var m = TraceMutator(seed: seed)
            guard var records = TraceMutator.split(Self.mimic) else { continue }
            m.mutateCheckpointState(&records)
            TraceMutator.rechain(&records)
            let bytes = TraceMutator.join(Array(Self.mimic.prefix(TraceFormat.signatureSize)), records)
            let reader = try open(bytes)
            for k in reader.checkpointRecords.indices {
                do { _ = try reader.checkpoint(k).simulationState() } catch { refused += 1 }
            }
        }
        #expect(refused > 4, "\(refused)")
    }

    /// The exercise's re-simulations (``ResimulationExercise``) impose their own memory limit: a
    /// header claiming lenet with 1 000 honest and 40 Byzantine workers (cclip's honest majority
    /// kept: about 12 GB) is refused by each of them, never allocated; the unchanged trace
    /// re-simulates without an error.
    @Test func theExerciseRefusesAClaimedShapeUnderItsLimit() throws {
        let claimed = TraceMutator.claimingShape(of: Self.mimic, model: .lenet, honest: 1_000, byzantine: 40)
        let huge = try #require(claimed)
        let outcome = TraceExercise.run(huge, resimulate: true)
        #expect(outcome.refusal == nil)
        for step in ["reexecute", "resume", "fork"] {
            let refused = outcome.errors.contains {
                $0.hasPrefix(step + ":") && $0.contains("needs about") && $0.contains("above the limit of 269 MB")
            }
            #expect(refused, "\(step): \(outcome.errors)")
        }
        var errors: [String] = []
        ResimulationExercise.run(Self.mimic, reader: try open(Self.mimic), errors: &errors)
        #expect(errors.isEmpty, "\(errors)")
    }
}
