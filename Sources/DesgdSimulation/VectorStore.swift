import DesgdNumerics

/// A fixed number of d-dimensional Float vectors in one allocation, zero-initialised: the workers'
/// momentum buffers and the server's class-momentum buffer.
///
/// Concurrent work items may write *different* rows at the same time (that is how the class
/// gradients of a round are computed in parallel); nothing else is synchronised.
public final class VectorStore: @unchecked Sendable {
    public let count: Int
    public let dimension: Int
    private let base: UnsafeMutablePointer<Float>

    public init(count: Int, dimension: Int) {
        self.count = count
        self.dimension = dimension
        base = .allocate(capacity: max(1, count * dimension))
        base.initialize(repeating: 0, count: max(1, count * dimension))
    }

    deinit { base.deallocate() }

    public func row(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(i >= 0 && i < count)
        return UnsafeMutableBufferPointer(start: base + i * dimension, count: dimension)
    }

    public func readRow(_ i: Int) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(row(i)) }

    /// A copy of row i.
    public func array(_ i: Int) -> [Float] { Array(readRow(i)) }
}
