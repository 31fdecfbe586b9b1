import Testing
@testable import DesgdRobust

/// Spec text from a trace header is hostile (traces/FORMAT.md §5.1): parsing is bounded
/// (``SpecLimits``) and refuses what exceeds the bounds with an ``AggregationError`` instead of
/// recursing until the stack overflows.
@Suite struct SpecLimitsTests {
    func refusal(_ text: String) -> String? {
        do {
            _ = try AggregatorCatalogue.makeAggregator(text)
            return nil
        } catch {
            return error.message
        }
    }

    /// 30 000 parentheses or 100 000 minus signs crashed the recursive parser (SIGSEGV).
    @Test func deepNestingIsRefused() {
        for text in ["krum:q=" + String(repeating: "(", count: 30_000), "krum:q="
            + String(repeating: "-", count: 100_000)] {
            let message = refusal(text)
            #expect(message?.contains("at most \(SpecLimits.specLength)") == true, "\(message ?? "accepted")")
            #expect(message.map { $0.count < 300 } == true)
        }
        // Within the length bounds, the nesting bound is what refuses.
        let nested = String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65)
        #expect(refusal("krum:q=" + nested)?.contains("nests more than 64") == true)
        #expect(refusal("krum:q=" + String(repeating: "-", count: 65) + "1")?.contains("nests more than 64") == true)
        let long = String(repeating: "1+", count: 200) + "1"
        #expect(refusal("krum:q=" + long)?.contains("an expression has at most 256") == true)
    }

    @Test func boundsAreInclusive() throws {
        let nested = String(repeating: "(", count: 64) + "n" + String(repeating: ")", count: 64)
        #expect(try SpecExpression.parse(nested, context: "q").evaluate(n: 7, f: 1) == 7)
        #expect(try SpecExpression.parse(String(repeating: "-", count: 64) + "3", context: "q").evaluate(n: 0, f: 0)
            == 3)
        #expect(try SpecExpression.parse(String(repeating: "1+", count: 127) + "1", context: "q").evaluate(n: 0, f: 0)
            == 128)
        #expect(try AggregatorCatalogue.makeAggregator("krum:q=n-f-2").spec == "krum:q=n-f-2")
    }

    @Test func chainsAreBounded() {
        let seventeen = Array(repeating: "nnm", count: 16).joined(separator: "+") + "+mean"
        #expect(refusal(seventeen)?.contains("at most 16 components") == true)
        #expect(refusal(Array(repeating: "nnm", count: 15).joined(separator: "+") + "+mean") == nil)
        #expect((try? ComponentSpec.parse(String(repeating: "a", count: 1025))) == nil)
    }

    /// A message that quotes spec text shows it escaped and cut: one short line.
    @Test func messagesQuoteEscaped() {
        let message = refusal("krum:q=1\n\u{1B}[8m" + String(repeating: "x", count: 500)) ?? ""
        #expect(!message.contains("\n") && !message.contains("\u{1B}"))
        #expect(message.contains("\\u000a\\u001b[8m"))
        #expect(message.count < 300)
    }
}
