/// Centralised mini-batch SGD on one data set: the accuracy reference for the distributed runs
/// (`desgd-bench centralized`), and a check that the model and the numerics learn.
///
/// Each epoch visits the training set in the order of a permutation drawn from
/// `RandomStream(seed, .shuffle, round: epoch)`; the last incomplete batch of an epoch is
/// dropped. With `momentum` β > 0 the step direction is the EMA momentum m ← β·m + (1−β)·g.
public struct CentralizedTraining: Sendable {
    public var shape: CNNShape = .lenet
    public var backend: NumericBackend = .openblas
    public var batchSize = 50
    public var learningRate: Float = 0.1
    public var weightDecay: Float = 5e-4
    public var momentum: Float = 0
    public var steps = 1200
    /// Evaluate on the test set every this many steps (and after the last step).
    public var evaluationInterval = 200
    public var seed: UInt64 = 1
    /// Threads for evaluation (training steps are sequential).
    public var threads = 1

    public init() {}

    /// One evaluation point.
    public struct Point: Sendable, Codable {
        public var step: Int
        public var trainLoss: Double
        public var test: Evaluation
    }

    public struct Result: Sendable {
        public var history: [Point]
        public var parameters: [Float]
        public var seconds: Double
        public var bestAccuracy: Double { history.map(\.test.accuracy).max() ?? 0 }
        public var finalAccuracy: Double { history.last?.test.accuracy ?? 0 }
    }

    /// Runs the training; `progress` is called after every evaluation.
    public func run(data: Dataset, progress: (Point) -> Void = { _ in }) -> Result {
        let model = CNN(shape: shape, backend: backend)
        var params = model.initialParameters(seed: seed)
        var grad = [Float](repeating: 0, count: model.parameterCount)
        var mom = [Float](repeating: 0, count: model.parameterCount)
        let ws = CNNWorkspace(model: model, slots: threads)
        let perEpoch = data.train.count / batchSize
        var order: [Int] = []
        var history: [Point] = []
        var lossSum = 0.0, lossCount = 0
        let t0 = Stopwatch.now()
        for step in 0..<steps {
            let epoch = step / perEpoch, pos = step % perEpoch
            if pos == 0 {
                var r = RandomStream(seed: seed, purpose: .shuffle, round: epoch)
                order = r.permutation(data.train.count)
            }
            let batch = MiniBatch(indices: Array(order[pos * batchSize ..< (pos + 1) * batchSize]))
            let loss = model.lossAndGradient(parameters: params, data: data.train, batch: batch, gradient: &grad,
                workspace: ws)
            lossSum += Double(loss); lossCount += 1
            params.withUnsafeMutableBufferPointer { p in
                grad.withUnsafeMutableBufferPointer { g in
                    SGD.addWeightDecay(g, parameters: UnsafeBufferPointer(p), weightDecay: weightDecay)
                    if momentum > 0 {
                        mom.withUnsafeMutableBufferPointer { m in
                            SGD.updateMomentum(m, gradient: UnsafeBufferPointer(g), beta: momentum)
                            SGD.step(p, direction: UnsafeBufferPointer(m), learningRate: learningRate)
                        }
                    } else {
                        SGD.step(p, direction: UnsafeBufferPointer(g), learningRate: learningRate)
                    }
                }
            }
            if (step + 1) % evaluationInterval == 0 || step + 1 == steps {
                let e = model.evaluate(parameters: params, data: data.test, threads: threads, workspace: ws)
                let point = Point(step: step + 1, trainLoss: lossSum / Double(max(1, lossCount)), test: e)
                history.append(point)
                progress(point)
                lossSum = 0; lossCount = 0
            }
        }
        return Result(history: history, parameters: params, seconds: Stopwatch.now() - t0)
    }
}
