/// What a rule's or an attack's carried state (``AggregatorState``) may hold, declared by the rule
/// or attack so that a state read from a trace (a checkpoint's, a keyframe's, a round's
/// `stateBefore`) is validated like the header before anything uses it (traces/FORMAT.md §6):
/// only the names declared, each vector of the model's length (the reader checks the lengths),
/// each scalar finite, in its range and integer-valued when it counts or indexes something, and
/// either nothing or every name (the state of a rule or attack that has not run yet is empty).
public struct StateSchema: Sendable, Equatable {
    /// A scalar and the values it may take.
    public struct Scalar: Sendable, Equatable {
        public var name: String
        public var range: ClosedRange<Double>
        public var integer: Bool

        public init(_ name: String, _ range: ClosedRange<Double>, integer: Bool) {
            self.name = name
            self.range = range
            self.integer = integer
        }
    }

    public var vectors: [String]
    public var scalars: [Scalar]

    public init(vectors: [String] = [], scalars: [Scalar] = []) {
        self.vectors = vectors
        self.scalars = scalars
    }

    /// A stateless rule or attack: its state is always empty.
    public static let none = StateSchema()

    /// nil when a state holding these scalars and these vector names fits; otherwise a sentence
    /// naming the first value that does not (names cut to 40 characters). `vectorsStored` false: a
    /// record without vectors, whose states keep their scalars only (nothing or all of those).
    public func problem(scalars values: [String: Double], vectorNames: some Collection<String>,
                        vectorsStored: Bool = true) -> String? {
        func quoted(_ s: String) -> String { "'\(s.prefix(40))'" }
        if let name = vectorNames.sorted().first(where: { !vectors.contains($0) }) {
            return vectors.isEmpty ? "holds vector \(quoted(name)), but this rule or attack carries no vector"
                : "holds vector \(quoted(name)), not one of \(vectors.map(quoted).joined(separator: ", "))"
        }
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let s = scalars.first(where: { $0.name == name }) else {
                let known = scalars.map { quoted($0.name) }.joined(separator: ", ")
                return scalars.isEmpty ? "holds scalar \(quoted(name)), but this rule or attack carries no scalar"
                    : "holds scalar \(quoted(name)), not one of \(known)"
            }
            guard value.isFinite, s.range.contains(value), !s.integer || value == value.rounded() else {
                let kind = s.integer ? "an integer" : "a number"
                let range = "\(Self.text(s.range.lowerBound))...\(Self.text(s.range.upperBound))"
                return "scalar \(quoted(name)) is \(value), not \(kind) in \(range)"
            }
        }
        let count = vectorNames.count + values.count, total = (vectorsStored ? vectors.count : 0) + scalars.count
        if count > 0 && count < total {
            let absentVectors = vectorsStored ? vectors.filter { !vectorNames.contains($0) } : []
            let missing = absentVectors + scalars.map(\.name).filter { values[$0] == nil }
            return "lacks \(missing.map(quoted).joined(separator: ", ")) (a state holds nothing or all of its values)"
        }
        return nil
    }

    static func text(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)" }
}

/// What bounds the values of a state: the honest senders of its aggregation group and the run's rounds.
public struct StateBounds: Sendable, Equatable {
    public var honest: Int
    public var rounds: Int

    public init(honest: Int, rounds: Int) {
        self.honest = honest
        self.rounds = rounds
    }
}
