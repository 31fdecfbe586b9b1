import DesgdNumerics
import DesgdSimulation
import Foundation
import Testing
@testable import DesgdFuzzing
@testable import DesgdTrace

/// Traces written by a hostile party, with valid digests (they are unkeyed: anyone recomputes them).
/// Each case once crashed `desgd-audit` or `desgd-replay` (desgd 0.6.0) or is a check of FORMAT.md §6;
/// now each is refused with a ``TraceError`` naming the record, or read without harm.
@Suite struct HostileTraceTests {
    /// A small decisions trace and a small full one (2 rounds), recorded once.
    static let traces: (decisions: [UInt8], full: [UInt8]) = {
        func bytes(_ mode: RecordingMode, rounds: Int) -> [UInt8] {
            let (path, _, _) = try! record(tinyConfig { $0.rounds = rounds }, mode: mode, keyframes: 100)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return [UInt8](FileManager.default.contents(atPath: path)!)
        }
        return (bytes(.decisions, rounds: 3), bytes(.full, rounds: 2))
    }()

    /// A full trace of 3 rounds with a state checkpoint before every round (round 2's holds drift
    /// histories of two groups).
    static let checkpointed: [UInt8] = {
        let (path, _, _) = try! record(tinyConfig { $0.rounds = 3 }, keyframes: 100, checkpoints: 1)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return [UInt8](FileManager.default.contents(atPath: path)!)
    }()

    func open(_ bytes: [UInt8]) throws(TraceError) -> TraceReader {
        try TraceReader(source: MemorySource(bytes, name: "hostile.trace"))
    }

    /// Opening must fail with `phrase` in the message.
    func expectRefused(_ bytes: [UInt8]?, _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let bytes else { Issue.record("the case could not be built", sourceLocation: sourceLocation); return }
        do {
            _ = try open(bytes)
            Issue.record("accepted a trace that should be refused (\(phrase))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains(phrase), "\(error.message)", sourceLocation: sourceLocation)
        }
        #expect(TraceExercise.run(bytes).refusal != nil, sourceLocation: sourceLocation)
    }

    /// Reading round `t` must fail with `phrase`, and the rest of the exercise must not trap.
    func expectRoundRefused(_ bytes: [UInt8]?, round t: Int, _ phrase: String,
        sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let bytes else { Issue.record("the case could not be built", sourceLocation: sourceLocation); return }
        let r = try open(bytes)
        #expect(r.verifyChain().holds, "the case should carry a valid chain", sourceLocation: sourceLocation)
        do {
            _ = try r.round(t)
            Issue.record("round \(t) read despite: \(phrase)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains("round \(t):") && error.message.contains(phrase), "\(error.message)",
                sourceLocation: sourceLocation)
        }
        let outcome = TraceExercise.run(bytes)
        #expect(outcome.refusal == nil && !outcome.errors.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func theUneditedTracesOpen() throws {
        for bytes in [Self.traces.decisions, Self.traces.full] {
            let o = TraceExercise.run(bytes)
            #expect(o.refusal == nil && o.chainHolds && o.rounds > 0, "\(o)")
        }
        #expect(TraceExercise.run(Self.traces.full).errors.isEmpty)
    }

    /// A round that aggregates the same class twice (it trapped in `Dictionary(uniqueKeysWithValues:)`).
    @Test func sameClassTwice() throws {
        let bytes = TraceMutator.editingJSON(of: Self.traces.full, type: .round, round: 1) { json in
            var a = json["aggregations"] as! [Any]
            a.append(a[0])
            json["aggregations"] = a
        }
        try expectRoundRefused(bytes, round: 1, "aggregations")
        let classes = TraceMutator.editingJSON(of: Self.traces.decisions, type: .round, round: 0) { json in
            json["classes"] = [0, 0] }
        try expectRoundRefused(classes, round: 0, "schedule")
    }

    /// Duplicate and out-of-range senders, and a Byzantine flag on an honest worker.
    @Test func sendersAreTheGroups() throws {
        for edit in [{ (s: inout [Any]) in s.append(s[0]) },
                     { (s: inout [Any]) in s[0] = ["worker": 1 << 40, "byzantine": false] },
                     { (s: inout [Any]) in s[0] = ["worker": -1, "byzantine": false] },
                     { (s: inout [Any]) in s[0] = ["worker": 0, "byzantine": true] }] {
            let bytes = TraceMutator.editingJSON(of: Self.traces.decisions, type: .round, round: 2) { json in
                var a = json["aggregations"] as! [[String: Any]]
                var s = a[0]["senders"] as! [Any]
                edit(&s)
                a[0]["senders"] = s
                json["aggregations"] = a
            }
            try expectRoundRefused(bytes, round: 2, "senders")
        }
    }

    /// A chain of 100 000 vector references (it overflowed the stack when resolved recursively).
    @Test func longReferenceChains() throws {
        let n = 100_000
        // Vector 0 is 1.0 (byte planes of 0x3F800000); every other one is "its reference + 0".
        let vectors = [VectorEntry(offset: 0, count: 1)] + (1..<n).map { VectorEntry(offset: 4, count: 1, ref: $0 - 1) }
        let content = RoundContent(round: 0, hasVectors: true, classes: [], aggregations: [], modelDiff: nil,
            evaluation: nil, vectors: vectors)
        let body = RecordBody.jsonPart(content, encoder: RecordBody.encoder()) + [0, 0, 0x80, 0x3F, 0, 0, 0, 0]
        let parsed = try ParsedBody<RoundContent>.parse(body, decoder: RecordBody.decoder()).get()
        guard case .failure(let f) = parsed.vector(n - 1) else {
            Issue.record("a 100 000-link chain was followed"); return
        }
        #expect(f.reason.contains("longer than \(TraceFormat.maximumReferenceDepth)"))
        // A chain within the limit decodes: each link adds the zigzag difference 0 to its reference.
        guard case .success(let v) = parsed.vector(TraceFormat.maximumReferenceDepth) else {
            Issue.record("a short chain was refused"); return
        }
        #expect(v == [1.0])
    }

    /// Header values that overflowed the body-limit formula or reached preconditions downstream.
    @Test func headerValuesAreValidated() throws {
        let base = Self.traces.decisions
        func header(_ edit: @escaping (inout [String: Any]) -> Void) -> [UInt8]? {
            TraceMutator.editingJSON(of: base, type: .header, edit)
        }
        func config(_ key: String, _ value: Any) -> [UInt8]? {
            header { json in
                var c = json["config"] as! [String: Any]
                c[key] = value
                json["config"] = c
            }
        }
        func model(_ key: String, _ value: Any) -> [UInt8]? {
            header { json in
                var m = json["model"] as! [String: Any]
                m[key] = value
                json["model"] = m
            }
        }
        expectRefused(model("parameterCount", Int.max), "model")
        expectRefused(model("parameterCount", 0), "model")
        expectRefused(config("classesPerRound", 11), "classes per round")  // sampling 11 of 10 classes
        expectRefused(config("honestWorkers", 0), "config")
        expectRefused(config("rounds", -5), "config")
        expectRefused(config("batchSize", 0), "config")
        expectRefused(config("threads", 0), "the threads")
        expectRefused(config("aggregator", "krum:q=9223372036854775807+1"), "the aggregation rule")
        expectRefused(header { $0["keyframeInterval"] = 0 }, "keyframeInterval")
        expectRefused(header { json in
            var g = json["groups"] as! [[String: Any]]
            g[0]["honestWorkers"] = [0, 0, 1 << 50]
            json["groups"] = g
        }, "groups")
        expectRefused(header { json in
            var p = json["partition"] as! [String: Any]
            var s = p["samples"] as! [[[Int]]]
            s[0][0].append(s[1].flatMap { $0 }.first ?? 0)  // a sample held twice, or out of range
            s[0][1].append(-7)
            p["samples"] = s
            json["partition"] = p
        }, "partition")
        expectRefused(header { $0["formatVersion"] = [1, 9] }, "formatVersion")
        expectRefused(header { $0["numerics"] = nil }, "numerics")
        expectRefused(header { $0["numerics"] = 0 }, "numerics")
        expectRefused(header { $0["numerics"] = Int.max }, "numerics")
    }

    /// Hostile state checkpoints (FORMAT.md §5.5, §6): each is refused with a message naming the
    /// checkpoint, the file still opens, every round stays readable, and the exercise does not trap.
    @Test func hostileCheckpointsAreRefused() throws {
        func refused(_ occurrence: Int, _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation,
                     _ edit: @escaping (inout [String: Any]) -> Void) throws {
            let bytes = try #require(TraceMutator.editingJSON(of: Self.checkpointed, type: .checkpoint,
                occurrence: occurrence, edit),
                                     sourceLocation: sourceLocation)
            let r = try open(bytes)
            #expect(r.verifyChain().holds && r.roundCount == 3, sourceLocation: sourceLocation)
            do {
                let c = try r.checkpoint(occurrence)
                _ = try c.simulationState()
                _ = try c.driftState()
                Issue.record("checkpoint \(occurrence) read despite: \(phrase)", sourceLocation: sourceLocation)
            } catch {
                #expect(error.message.contains("checkpoint before round \(occurrence)")
                    && error.message.contains(phrase), "\(error.message)",
                        sourceLocation: sourceLocation)
            }
            for t in 0..<3 { _ = try r.round(t) }
            let outcome = TraceExercise.run(bytes)
            #expect(outcome.refusal == nil && !outcome.errors.isEmpty, sourceLocation: sourceLocation)
        }
        let unedited = try open(Self.checkpointed)
        #expect(unedited.checkpointRounds == [0, 1, 2])
        #expect(try unedited.checkpoint(2).driftState()?.groups.count == 2)
        #expect(TraceExercise.run(Self.checkpointed).errors.isEmpty)

        try refused(1, "its content says round 5") { $0["round"] = 5 }
        try refused(1, "honestMomenta has") { json in
            json["honestMomenta"] = (json["honestMomenta"] as! [Any]).dropLast() as [Any] }
        try refused(1, "honestMomenta[0] is of worker 999") { json in
            var rows = json["honestMomenta"] as! [[String: Any]]
            rows[0]["worker"] = 999
            json["honestMomenta"] = rows
        }
        try refused(1, "byzantineMomenta[1]") { json in
            var rows = json["byzantineMomenta"] as! [[String: Any]]
            rows[1]["vector"] = Int(1) << 40
            json["byzantineMomenta"] = rows
        }
        try refused(1, "parameters refers to vector") { $0["parameters"] = -3 }
        try refused(1, "classMomenta has 11 entries") { json in
            json["classMomenta"] = (json["classMomenta"] as! [Any]) + [0] }
        try refused(1, "aggregatorStates has 9 entries") { json in
            json["aggregatorStates"] = (json["aggregatorStates"] as! [Any]).dropLast() as [Any] }
        try refused(1, "aggregatorStates[0] has no vectors table") { json in
            var states = json["aggregatorStates"] as! [[String: Any]]
            states[0].removeValue(forKey: "vectors")
            json["aggregatorStates"] = states
        }
        try refused(1, "the drift state is missing") { $0.removeValue(forKey: "drift") }
        try refused(2, "drift.groups[0]: count") { json in
            var drift = json["drift"] as! [String: Any]
            var groups = drift["groups"] as! [[String: Any]]
            groups[0]["count"] = 1_000_000
            drift["groups"] = groups
            json["drift"] = drift
        }
        try refused(2, "not a group of the run") { json in
            var drift = json["drift"] as! [String: Any]
            var groups = drift["groups"] as! [[String: Any]]
            groups[1]["class"] = 0  // twice, out of order
            drift["groups"] = groups
            json["drift"] = drift
        }
        try refused(2, "drift.rounds") { json in
            var drift = json["drift"] as! [String: Any]
            drift["rounds"] = Int.max
            json["drift"] = drift
        }
        // The header decides whether checkpoints may exist, and where.
        let noInterval = try #require(TraceMutator.editingJSON(of: Self.checkpointed, type: .header) {
            $0.removeValue(forKey: "checkpointInterval") })
        #expect(throws: TraceError.self) { try open(noInterval).checkpoint(0) }
        let otherInterval = try #require(TraceMutator.editingJSON(of: Self.checkpointed, type: .header) {
            $0["checkpointInterval"] = 2 })
        #expect(throws: TraceError.self) { try open(otherInterval).checkpoint(1) }
        #expect(try open(otherInterval).checkpoint(2).round == 2)
        expectRefused(TraceMutator.editingJSON(of: Self.checkpointed, type: .header) { $0["checkpointInterval"] = -1 },
            "checkpointInterval")
        // A checkpoint whose record header claims a round (1.0 and 1.1 readers require −1 for types
        // they skip): the index is refused and the scan stops there, keeping what came before.
        var records = try #require(TraceMutator.split(Self.checkpointed))
        let k = try #require(records.firstIndex { $0.type == RecordType.checkpoint.rawValue })
        TraceMutator.store(UInt64(0), into: &records[k].header, at: 16, size: 8)
        TraceMutator.rebuildIndex(&records)
        TraceMutator.rechain(&records)
        let cut = try open(TraceMutator.join(Array(Self.checkpointed.prefix(TraceFormat.signatureSize)), records))
        #expect(cut.roundCount == 0 && cut.checkpointRecords.isEmpty)
    }

    /// A footer whose counts overflow the offset arithmetic (2⁵⁹ entries × 32 bytes wraps to 0): the
    /// index is not trusted, the records are found by scanning.
    @Test func footerCountsThatOverflow() throws {
        for (field, value) in [(8, UInt64(1) << 59), (0, UInt64.max - 50), (8, UInt64.max), (16, UInt64.max)] {
            let bytes = TraceMutator.editingFooter(of: Self.traces.full) { p in
                TraceMutator.store(value, into: &p, at: field, size: 8) }
            guard let bytes else { Issue.record("no footer"); continue }
            let r = try open(bytes)
            guard case .unfinished = r.completeness else {
                Issue.record("a footer declaring \(value) at \(field) was used"); continue
            }
            #expect(r.roundCount == 2)
            #expect(TraceExercise.run(bytes).refusal == nil)
        }
    }

    /// The short fuzzing pass that fits in CI: 400 structure-aware mutations (keyed seeds 1…400) of
    /// the three traces (one with state checkpoints) through the whole exercise. Most mutants carry a
    /// valid chain (the mutator recomputes it), so they reach the content checks, not only the digest
    /// check.
    @Test func shortFuzzingPass() throws {
        var opened = 0, validChains = 0, refused = 0
        for seed in UInt32(1)...400 {
            var m = TraceMutator(seed: seed)
            guard let mutant = m.mutate([Self.traces.decisions, Self.traces.full, Self.checkpointed][Int(seed % 3)])
                else { continue }
            let o = TraceExercise.run(mutant)
            if o.refusal != nil { refused += 1 } else { opened += 1 }
            if o.chainHolds { validChains += 1 }
        }
        #expect(opened > 100 && refused > 20 && validChains > 100,
            "opened \(opened), refused \(refused), valid chains \(validChains)")
    }

    /// Every input kept in Tests/fuzz/regressions/ (each crasher the fuzzer ever found, and a few
    /// mutants of each target that reach deep checks) goes through its exercise without a trap:
    /// `records-*` files through the pure parser against the committed sample's header, the others
    /// as whole files.
    @Test func fuzzerRegressionCases() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let dir = tests.appendingPathComponent("fuzz/regressions")
        let sample = try TraceReader(
            path: CompatibilityTests.samples.appendingPathComponent("v1.0-desgd-cclip-ipm-small-3r.trace").path)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path))?.filter {
            !$0.hasPrefix(".") }.sorted() ?? []
        var records = 0, wholeFiles = 0
        for f in files {
            let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(f)))
            if f.hasPrefix("records-") {
                _ = RecordBodyExercise.run(bytes, header: sample.header)
                records += 1
            } else {
                _ = TraceExercise.run(bytes)
                wholeFiles += 1
            }
        }
        #expect(records >= 1 && wholeFiles >= 1, "the committed regression cases are missing")
    }
}
