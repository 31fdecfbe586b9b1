import DesgdNumerics
import Foundation
import Testing
@testable import DesgdSimulation

/// The memory estimate and limit (docs/bad-input.md): a configuration is
/// checked against the limit before anything sized by it is allocated.
@Suite struct MemoryBudgetTests {
    static func config(_ edit: (inout SimulationConfig) -> Void) -> SimulationConfig {
        var c = SimulationConfig.smoke
        edit(&c)
        return c
    }

    /// The claim of 0.10.0's hostile trace: lenet with n = f = 1 000.
    static let huge = config { $0.model = .lenet; $0.honestWorkers = 1_000; $0.byzantineWorkers = 1_000 }

    /// The paper's setup fits a laptop; the claim of 0.10.0's hostile trace (lenet, n = f = 1 000)
    /// is tens of gigabytes; the smoke run is a few megabytes.
    @Test func estimatesOfKnownShapes() {
        let paper = SimulationConfig.paper.memoryEstimate(driftWindow: 10)
        #expect(paper > 200_000_000 && paper < 2_000_000_000, "\(paper)")
        let huge = Self.huge.memoryEstimate()
        #expect(huge > 30_000_000_000, "\(huge)")
        #expect(SimulationConfig.smoke.memoryEstimate() < 100_000_000)
        // Two runs need twice one; a drift window adds to it; nothing overflows.
        #expect(SimulationConfig.paper.memoryEstimate(runs: 2) == 2 * SimulationConfig.paper.memoryEstimate())
        #expect(SimulationConfig.paper.memoryEstimate(driftWindow: 1_000) > paper)
        #expect(SimulationConfig.paper.memoryEstimate(runs: Int.max) == UInt64.max)
    }

    /// A run over the limit is refused before its stores exist, with the shortfall as data.
    @Test func aRunOverTheLimitIsRefusedFirst() {
        let huge = Self.huge
        let data = Dataset.synthetic(trainCount: 200, testCount: 20, seed: 1)
        do {
            _ = try Simulation(config: huge, dataset: data, memoryLimit: MemoryLimit(bytes: 1 << 30))
            Issue.record("a 60 GB run was built under a 1 GB limit")
        } catch {
            #expect(error.memoryShortfall?.limit.bytes == 1 << 30)
            let what = "a run of lenet with 1000 honest and 1000 Byzantine workers needs about"
            #expect(error.message.contains(what), "\(error.message)")
            #expect(error.message.hasSuffix("above the limit of 1.1 GB"), "\(error.message)")
        }
        let smoke = Dataset.synthetic(trainCount: 1200, testCount: 200, seed: 1)
        #expect(throws: Never.self) {
            try Simulation(config: .smoke, dataset: smoke, memoryLimit: MemoryLimit(bytes: 1 << 30))
        }
    }

    /// A partition other than the expected one (a trace's) is refused before the stores exist.
    @Test func anotherPartitionIsRefused() throws {
        let data = Dataset.synthetic(trainCount: 1200, testCount: 200, seed: 1)
        var other = try Simulation(config: .smoke, dataset: data).partition
        other.samples.swapAt(0, 1)
        #expect(throws: SimulationError.self) {
            try Simulation(config: .smoke, dataset: data, expectedPartition: other)
        }
    }

    @Test func theMachineDefaultIsThreeQuartersOfItsMemory() throws {
        let physical = try #require(MemoryLimit.physicalMemory())
        #expect(physical > 100_000_000)
        let limit = MemoryLimit.machineDefault
        #expect(limit.isMachineDefault && limit.bytes == UInt64(Double(physical) * 0.75))
        #expect(limit.description.hasSuffix("(75 % of this machine's memory)"))
    }
}
