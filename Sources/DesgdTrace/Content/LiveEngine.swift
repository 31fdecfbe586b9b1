import DesgdNumerics

/// The header's `engine` (FORMAT.md §5.1.2, format 1.5): present when the rounds were not computed by
/// desgd's simulator but received from a live federation's clients, and aggregated, stepped and
/// recorded by desgd's own code (docs/federation.md). Its presence is what makes re-execution,
/// resume and fork refuse the trace: the clients' computations are not desgd's to repeat.
public struct LiveEngine: Sendable, Equatable, Codable {
    /// The framework that carried the messages, e.g. `flower`.
    public var name: String
    /// Its version, e.g. `1.42.0`.
    public var version: String
    /// The clients' training library and version, e.g. `torch 2.13.0+cpu`.
    public var training: String
    /// What the clients trained on, in the words of whoever started the run.
    public var data: String
    /// The clients' model, tensor by tensor, in the order of the flat parameter vector.
    public var model: [Tensor]
    /// The clients that send messages: every honest worker and, when Byzantine clients craft their
    /// own messages (client-side attacks), every Byzantine worker, each with its registered key.
    public var nodes: [Node]

    public struct Tensor: Sendable, Equatable, Codable {
        public var name: String
        public var shape: [Int]
        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
    }

    public struct Node: Sendable, Equatable, Codable {
        /// The worker index the client's messages are recorded under (senders' `worker`).
        public var worker: Int
        /// The framework's id of the client's node (Flower's node id), as text.
        public var node: String
        /// The client's Ed25519 public key: 64 lowercase hex digits. Every message of this worker in
        /// the trace carries a signature by it (FORMAT.md §5.3.1).
        public var publicKey: String
        public init(worker: Int, node: String, publicKey: String) {
            self.worker = worker
            self.node = node
            self.publicKey = publicKey
        }
    }

    public init(name: String, version: String, training: String, data: String, model: [Tensor], nodes: [Node]) {
        self.name = name
        self.version = version
        self.training = training
        self.data = data
        self.model = model
        self.nodes = nodes
    }

    /// Bounds a reader enforces (FORMAT.md §5.1.2).
    public static let maximumText = 4096
    public static let maximumTensors = 4096
    public static let maximumNodes = 65_536

    /// The clients' tensors with their offsets in the flat vector, in order, and the vector's length;
    /// nil when a shape has a dimension below 1 or a size overflows.
    var laidOut: (tensors: [TraceHeader.TensorInfo], count: Int)? {
        var offset = 0
        var out: [TraceHeader.TensorInfo] = []
        for tensor in model {
            var size = 1
            for dimension in tensor.shape {
                guard dimension >= 1 else { return nil }
                let (product, overflow) = size.multipliedReportingOverflow(by: dimension)
                guard !overflow else { return nil }
                size = product
            }
            out.append(.init(name: tensor.name, offset: offset, shape: tensor.shape))
            let (next, overflow) = offset.addingReportingOverflow(size)
            guard !overflow else { return nil }
            offset = next
        }
        return (out, offset)
    }

    /// ``laidOut``'s tensors.
    public var tensorLayout: [TraceHeader.TensorInfo]? { laidOut?.tensors }
    /// ``laidOut``'s length.
    public var parameterCount: Int? { laidOut?.count }

    /// The node of worker `w`, if it is a registered client.
    public func node(ofWorker w: Int) -> Node? { nodes.first { $0.worker == w } }
}
