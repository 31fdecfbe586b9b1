import ArgumentParser
import DesgdNumerics

DesgdBench.main()
