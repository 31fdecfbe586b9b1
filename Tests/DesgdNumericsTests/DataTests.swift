import Foundation
import Testing
@testable import DesgdNumerics

@Suite struct IDXTests {
    static func header(_ dims: [Int], type: UInt8 = 0x08) -> [UInt8] {
        var b: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b
    }

    @Test func parsesValidFiles() throws {
        let t = try IDX.parse(Self.header([2, 2, 3]) + Array(0..<12), expectedDimensions: 3, name: "x")
        #expect(t.dimensions == [2, 2, 3])
        #expect(t.bytes == Array(0..<12))
    }

    @Test func rejectsBadFiles() {
        func message(_ bytes: [UInt8], dims: Int = 3) -> String {
            do { _ = try IDX.parse(bytes, expectedDimensions: dims, name: "f"); return "" } catch {
                return error.message
            }
        }
        #expect(message([1, 2, 8, 3] + Array(repeating: 0, count: 12)).contains("not an IDX file"))
        #expect(message(Self.header([2, 2, 3], type: 0x0d) + Array(repeating: 0, count: 48)).contains("element type"))
        #expect(message(Self.header([4]) + [1, 2, 3, 4]).contains("dimensions, expected 3"))
        #expect(message(Self.header([2, 2, 3]) + Array(repeating: 0, count: 11)).contains("truncated"))
        #expect(message(Self.header([2, 2, 3]) + Array(repeating: 0, count: 13))
            .contains("need 12 bytes but the file holds 13"))
        #expect(message([0, 0, 8]).contains("truncated"))
        #expect(message(Self.header([65535, 65535, 65535])).contains("larger than any data set"))
    }

    @Test func labelsOutOfRangeAreRejected() throws {
        let images = try IDX.parse(Self.header([2, 1, 1]) + [0, 0], expectedDimensions: 3, name: "i")
        let labels = try IDX.parse(Self.header([2]) + [3, 10], expectedDimensions: 1, name: "l")
        #expect(throws: DataError.self) {
            try LabeledImages.fromIDX(images: images, labels: labels, classes: 10, name: "l")
        }
        do { _ = try LabeledImages.fromIDX(images: images, labels: labels, classes: 10, name: "l") } catch {
            #expect(error.message.contains("label 10 of sample 1"))
        }
    }

    /// gzip round trip through the system's gzip, and a truncated gzip file.
    @Test func readsGzipAndRejectsTruncatedGzip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("desgd-idx-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = dir.appendingPathComponent("l")
        try Data(Self.header([300]) + (0..<300).map { UInt8($0 % 10) }).write(to: raw)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-k", raw.path]
        try p.run(); p.waitUntilExit()
        let gz = dir.appendingPathComponent("l.gz")
        let t = try IDX.read(gz, expectedDimensions: 1)
        #expect(t.bytes.count == 300)
        let bytes = try Data(contentsOf: gz)
        try bytes.prefix(bytes.count / 2).write(to: gz)
        #expect(throws: DataError.self) { try IDX.read(gz, expectedDimensions: 1) }
    }
}

@Suite struct DatasetTests {
    @Test func missingDataNamesTheDebianPackage() {
        do {
            _ = try Dataset.locate(explicit: nil, environment: ["DESGD_DATA": "/nonexistent/x"]);
            Issue.record("no error") } catch {
            #expect(error.message.contains("DESGD_DATA"))
            #expect(error.message.contains("dataset-fashion-mnist"))
        }
        do { _ = try Dataset.locate(explicit: "/nonexistent/y", environment: [:]); Issue.record("no error") } catch {
            #expect(error.explanation.settings == [.dataDirectory])
        }
    }

    /// The real data set, installed by `.ci/run` (Debian package dataset-fashion-mnist).
    @Test func realFashionMNIST() throws {
        let dir = try Dataset.locate(explicit: nil)
        let d = try Dataset.fashionMNIST(directory: dir)
        #expect(d.train.count == 60_000 && d.test.count == 10_000)
        #expect(d.train.height == 28 && d.train.width == 28)
        #expect(d.train.indicesByClass().map(\.count) == [Int](repeating: 6000, count: 10))
        #expect(d.provenance.fileDigests.count == 4)
        #expect(d.provenance.digest.count == 64)
        // Normalised with the training pixels' statistics (torchvision's Normalize((0.2860,), (0.3530,))).
        let n = d.provenance.normalization
        #expect(abs(n.mean - 0.2860) < 5e-5 && abs(n.std - 0.3530) < 5e-5, "\(n)")
        let after = InputNormalization.statistics(of: d.train)
        #expect(abs(after.mean) < 1e-6 && abs(after.std - 1) < 1e-6, "\(after)")
        // Black pixels, in both splits, map to −mean/std (the test split uses the training statistics).
        #expect(d.train.pixels.min() == Float(-n.mean / n.std))
        #expect(d.test.pixels.min() == Float(-n.mean / n.std))
    }

    @Test func syntheticIsDeterministic() {
        let a = Dataset.synthetic(trainCount: 200, testCount: 50), b = Dataset.synthetic(trainCount: 200, testCount: 50)
        #expect(a.provenance.digest == b.provenance.digest)
        #expect(a.train.pixels == b.train.pixels)
        #expect(Dataset.synthetic(trainCount: 200, testCount: 50, seed: 2).provenance.digest != a.provenance.digest)
        #expect(a.train.indicesByClass().map(\.count) == [Int](repeating: 20, count: 10))
        // Normalised like real data: train statistics 0 and 1, test mapped with the train ones.
        let n = InputNormalization.statistics(of: a.train)
        #expect(abs(n.mean) < 1e-6 && abs(n.std - 1) < 1e-6, "\(n)")
        #expect(a.provenance.normalization.mean > 0 && a.provenance.normalization.std > 0)
    }

    /// Mean and population std by hand; the map (x − mean) / std rounded once to Float; a constant
    /// data set gets std 1 (a pure shift).
    @Test func normalizationByHand() {
        let images = LabeledImages(count: 2, height: 1, width: 2, classes: 2, pixels: [0, 0.5, 0.5, 1], labels: [0, 1])
        let n = InputNormalization.statistics(of: images)
        #expect(n.mean == 0.5)
        #expect(n.std == (0.125).squareRoot())
        let out = n.apply(to: images)
        #expect(out.pixels == [-0.5, 0, 0, 0.5].map { Float($0 / (0.125).squareRoot()) })
        #expect(out.labels == images.labels)
        let constant = LabeledImages(count: 1, height: 1, width: 2, classes: 1, pixels: [0.3, 0.3], labels: [0])
        #expect(InputNormalization.statistics(of: constant).std == 1)
    }
}

@Suite struct PartitionTests {
    let data = Dataset.synthetic(trainCount: 1000, testCount: 10).train

    func checkCoversEverySampleOnce(_ p: Partition) {
        let all = p.samples.flatMap { $0.flatMap { $0 } }
        #expect(all.count == data.count)
        #expect(Set(all).count == data.count)
        for w in 0..<p.workers {
            for c in 0..<p.classes { #expect(p.samples[w][c].allSatisfy { Int(data.labels[$0]) == c }) }
        }
    }

    @Test func labelSkewAsInThePaper() throws {
        let p = try Partition.make(.labelSkew(classesPerWorker: 3), data: data, workers: 20, seed: 1)
        checkCoversEverySampleOnce(p)
        for w in 0..<20 { #expect(p.classes(of: w) == [(3 * w) % 10, (3 * w + 1) % 10, (3 * w + 2) % 10].sorted()) }
        for c in 0..<10 {
            #expect(p.holders(of: c).count == 6)
            let sizes = p.holders(of: c).map { p.samples[$0][c].count }
            #expect(sizes.max()! - sizes.min()! <= 1)
        }
        #expect(p == (try Partition.make(.labelSkew(classesPerWorker: 3), data: data, workers: 20, seed: 1)))
        #expect(p != (try Partition.make(.labelSkew(classesPerWorker: 3), data: data, workers: 20, seed: 2)))
    }

    @Test func orphanClassIsAnError() {
        #expect(throws: DataError.self) {
            try Partition.make(.labelSkew(classesPerWorker: 2), data: data, workers: 4, seed: 1)
        }
        #expect(throws: DataError.self) {
            try Partition.make(.labelSkew(classesPerWorker: 11), data: data, workers: 4, seed: 1)
        }
    }

    @Test func dirichletAndIID() throws {
        let d = try Partition.make(.dirichlet(alpha: 0.5), data: data, workers: 7, seed: 3)
        checkCoversEverySampleOnce(d)
        let i = try Partition.make(.iid, data: data, workers: 7, seed: 3)
        checkCoversEverySampleOnce(i)
        let sizes = i.samples.map { $0.reduce(0) { $0 + $1.count } }
        #expect(sizes.max()! - sizes.min()! <= 1)
        // Small α concentrates classes: some worker has a class share far from uniform.
        let skew = (0..<7).map { w in
            Double(d.samples[w].map(\.count).max()!) / Double(max(1, d.samples[w].reduce(0) { $0 + $1.count })) }
        #expect(skew.max()! > 0.3)
    }

    @Test func parsesSchemes() throws {
        #expect(try PartitionScheme.parse("label-skew:k=2") == .labelSkew(classesPerWorker: 2))
        #expect(try PartitionScheme.parse("dirichlet:alpha=0.3") == .dirichlet(alpha: 0.3))
        #expect(try PartitionScheme.parse("iid") == .iid)
        #expect(throws: DataError.self) { try PartitionScheme.parse("dirichlet:alpha=-1") }
        #expect(throws: DataError.self) { try PartitionScheme.parse("zipf") }
    }
}

@Suite struct TrainingTests {
    /// A short centralised training of lenet on real Fashion-MNIST (1 000 steps ≈ 0.83 epochs, batch 50,
    /// lr 0.1) reaches 80 % test accuracy.
    @Test func shortCentralizedTrainingLearns() throws {
        let data = try Dataset.fashionMNIST(directory: try Dataset.locate(explicit: nil))
        var t = CentralizedTraining()
        t.steps = 1000
        t.evaluationInterval = 250
        t.threads = 2
        let r = t.run(data: data)
        #expect(r.bestAccuracy >= 0.80, "best accuracy \(r.bestAccuracy)")
    }
}
