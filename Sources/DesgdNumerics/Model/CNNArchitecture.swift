/// The convolutional networks desgd trains: conv k×k → ReLU → max-pool 2×2 → conv k×k → ReLU →
/// max-pool 2×2 → fully connected → ReLU → fully connected → softmax (no padding, stride 1).
///
/// - ``lenet``: the canonical model of this literature (ByzFL `cnn_mnist`, LPD `simples-conv`):
///   conv5×5 1→20, conv5×5 20→50, FC 800→500, FC 500→10; 431 080 parameters (docs/design.md §3).
/// - ``small``: the same shape with conv 1→6, 6→16 and FC 256→64→10 (19 670 parameters), for quick
///   runs and tests.
/// - ``external``: a live federation's clients' own model (docs/federation.md): desgd aggregates and
///   steps its flat parameter vector but never computes with it; the trace's `engine` names its
///   tensors. No simulation runs it.
public enum ModelArchitecture: String, Sendable, Codable, CaseIterable {
    case lenet
    case small
    case external

    /// The network's sizes; nil for ``external``, which is not desgd's network.
    public var shape: CNNShape? {
        switch self {
        case .external: nil
        case .lenet: .lenet
        case .small: .small
        }
    }
}

/// The sizes that define a two-convolution network, and the quantities derived from them.
public struct CNNShape: Sendable, Codable, Equatable {
    /// ``ModelArchitecture/lenet``'s and ``ModelArchitecture/small``'s sizes.
    public static let lenet = CNNShape(inputSize: 28, inChannels: 1, kernel: 5, conv1: 20, conv2: 50, hidden: 500,
        classes: 10)
    public static let small = CNNShape(inputSize: 28, inChannels: 1, kernel: 5, conv1: 6, conv2: 16, hidden: 64,
        classes: 10)

    public var inputSize: Int
    public var inChannels: Int
    public var kernel: Int
    public var conv1: Int
    public var conv2: Int
    public var hidden: Int
    public var classes: Int

    public init(inputSize: Int, inChannels: Int, kernel: Int, conv1: Int, conv2: Int, hidden: Int, classes: Int) {
        (self.inputSize, self.inChannels, self.kernel) = (inputSize, inChannels, kernel)
        (self.conv1, self.conv2, self.hidden, self.classes) = (conv1, conv2, hidden, classes)
    }

    /// Side of the first convolution's output (24 for 28×28 and k = 5).
    public var side1: Int { inputSize - kernel + 1 }
    /// Side after the first pooling (12).
    public var pooled1: Int { side1 / 2 }
    /// Side of the second convolution's output (8).
    public var side2: Int { pooled1 - kernel + 1 }
    /// Side after the second pooling (4).
    public var pooled2: Int { side2 / 2 }
    /// Inputs of the first fully connected layer (800).
    public var flat: Int { conv2 * pooled2 * pooled2 }
    public var imageSize: Int { inChannels * inputSize * inputSize }

    /// Multiply-adds ×2 of one sample's forward pass and of its backward pass (no input gradient
    /// for the first layer), as counted for GFLOP/s figures: dense products, as a PyTorch script
    /// computes them (the batched pass skips conv2's discarded outputs in the backward pass, so it
    /// executes fewer: the figures are dense-equivalent rates).
    public var forwardFLOPs: Double {
        let k2 = Double(kernel * kernel)
        let c1 = 2 * Double(conv1) * Double(inChannels) * k2 * Double(side1 * side1)
        let c2 = 2 * Double(conv2) * Double(conv1) * k2 * Double(side2 * side2)
        let f1 = 2 * Double(flat) * Double(hidden), f2 = 2 * Double(hidden) * Double(classes)
        return c1 + c2 + f1 + f2
    }
    public var backwardFLOPs: Double {
        let k2 = Double(kernel * kernel)
        let c1 = 2 * Double(conv1) * Double(inChannels) * k2 * Double(side1 * side1)
        let c2 = 2 * Double(conv2) * Double(conv1) * k2 * Double(side2 * side2)
        let f1 = 2 * Double(flat) * Double(hidden), f2 = 2 * Double(hidden) * Double(classes)
        return c1 + 2 * c2 + 2 * f1 + 2 * f2
    }
}

/// Where each layer's tensors live in the flat parameter vector, with PyTorch's shapes and order:
/// conv1.weight [c1, cin, k, k], conv1.bias, conv2.weight [c2, c1, k, k], conv2.bias,
/// fc1.weight [hidden, flat], fc1.bias, fc2.weight [classes, hidden], fc2.bias.
public struct ParameterLayout: Sendable, Equatable {
    /// A named slice of the flat parameter vector.
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var offset: Int
        public var shape: [Int]
        /// Fan-in used by the initialisation (inputs per output unit).
        public var fanIn: Int
        public var count: Int { shape.reduce(1, *) }
        public var range: Range<Int> { offset ..< offset + count }
    }

    public let tensors: [Tensor]
    public let count: Int

    public init(_ s: CNNShape) {
        let k2 = s.kernel * s.kernel
        let specs: [(String, [Int], Int)] = [
            ("conv1.weight", [s.conv1, s.inChannels, s.kernel, s.kernel], s.inChannels * k2),
            ("conv1.bias", [s.conv1], s.inChannels * k2),
            ("conv2.weight", [s.conv2, s.conv1, s.kernel, s.kernel], s.conv1 * k2),
            ("conv2.bias", [s.conv2], s.conv1 * k2),
            ("fc1.weight", [s.hidden, s.flat], s.flat),
            ("fc1.bias", [s.hidden], s.flat),
            ("fc2.weight", [s.classes, s.hidden], s.hidden),
            ("fc2.bias", [s.classes], s.hidden),
        ]
        var offset = 0
        var ts: [Tensor] = []
        for (name, shape, fan) in specs {
            let t = Tensor(name: name, offset: offset, shape: shape, fanIn: fan)
            ts.append(t)
            offset += t.count
        }
        tensors = ts
        count = offset
    }

    public subscript(name: String) -> Tensor {
        tensors.first { $0.name == name }!
    }
}
