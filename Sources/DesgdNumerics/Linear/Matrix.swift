/// A dense row-major matrix of `Float`: `rows` vectors of dimension `columns`, stored contiguously.
///
/// This is the one container desgd uses for "n vectors of dimension d": the messages a server
/// receives in a round, per-layer weights, mini-batch activations. Row `i` occupies
/// `storage[i*columns ..< (i+1)*columns]`.
///
/// Complexity: element and row access are O(1); ``init(rows:columns:)`` is O(rows·columns).
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let columns: Int
    public var storage: [Float]

    /// A zero-filled matrix.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0)
        self.rows = rows
        self.columns = columns
        self.storage = [Float](repeating: 0, count: rows * columns)
    }

    /// A matrix over existing storage (`storage.count` must be `rows * columns`).
    public init(rows: Int, columns: Int, storage: [Float]) {
        precondition(storage.count == rows * columns, "storage size does not match rows × columns")
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    /// A matrix whose rows are the given vectors (all of the same length).
    public init(rowVectors: [[Float]]) {
        let d = rowVectors.first?.count ?? 0
        precondition(rowVectors.allSatisfy { $0.count == d }, "rows of different lengths")
        self.init(rows: rowVectors.count, columns: d, storage: rowVectors.flatMap { $0 })
    }

    public subscript(row: Int, column: Int) -> Float {
        get { storage[row * columns + column] }
        set { storage[row * columns + column] = newValue }
    }

    /// A copy of row `i`.
    public func row(_ i: Int) -> [Float] {
        Array(storage[i * columns ..< (i + 1) * columns])
    }

    /// Replaces row `i`.
    public mutating func setRow(_ i: Int, _ values: some Collection<Float>) {
        precondition(values.count == columns)
        storage.replaceSubrange(i * columns ..< (i + 1) * columns, with: values)
    }

    /// Appends a row. Amortised O(columns).
    public mutating func appendRow(_ values: some Collection<Float>) {
        precondition(values.count == columns)
        storage.append(contentsOf: values)
        rows += 1
    }

    /// Appends the rows of `other` (same number of columns). Amortised O(other.rows·columns).
    public mutating func append(rowsOf other: Matrix) {
        precondition(other.columns == columns, "append: different numbers of columns")
        storage.append(contentsOf: other.storage)
        rows += other.rows
    }

    /// Calls `body` with row `i` as a buffer, without copying.
    @inlinable
    public func withRow<R>(_ i: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer {
            try body(UnsafeBufferPointer(rebasing: $0[i * columns ..< (i + 1) * columns]))
        }
    }

    /// Calls `body` with row `i` as a mutable buffer, without copying.
    @inlinable
    public mutating func withMutableRow<R>(_ i: Int,
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        let c = columns
        return try storage.withUnsafeMutableBufferPointer {
            try body(UnsafeMutableBufferPointer(rebasing: $0[i * c ..< (i + 1) * c]))
        }
    }

    /// A matrix made of the given rows of `self`, in that order.
    public func selecting(rows indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, columns: columns)
        storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rows, "row index out of range")
                    _ = UnsafeMutableBufferPointer(rebasing: dst[k * columns ..< (k + 1) * columns])
                        .update(fromContentsOf: src[i * columns ..< (i + 1) * columns])
                }
            }
        }
        return out
    }
}
