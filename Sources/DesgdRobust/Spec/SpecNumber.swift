/// Numbers in canonical spec strings: integers without a fraction (`5`, not `5.0`), others in
/// Swift's shortest round-trip form (`0.1`), so that a spec read back gives the same Double.
enum SpecNumber {
    static func format(_ x: Double) -> String {
        if x.isFinite, x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return String(x)
    }
}
