import Testing
@testable import DesgdRobust
