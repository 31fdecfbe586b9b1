import ArgumentParser
import DesgdNumerics
import DesgdSimulation

extension SimulationOptions {
    /// `desgd-record`'s simulation options given as words (a grid cell's, `desgd-grid` passes this
    /// function to `GridPlan`): the configuration and the state checkpoint interval `desgd-record`
    /// records them with (the preset's). The one parser of simulation options, so that a cell is
    /// exactly the `desgd-record` command it prints; every error is one line naming the option.
    public static func parseWords(_ words: [String]) throws(SimulationError) -> (config: SimulationConfig,
        checkpointInterval: Int) {
        let parsed: SimulationOptions
        do { parsed = try SimulationOptions.parse(words) } catch {
            throw SimulationError(Explanation(SimulationOptions.message(for: error)))
        }
        return (try parsed.configuration(), parsed.preset.checkpointInterval)
    }
}
