/// The published numbers of Xu et al., "Mitigating Model Poisoning Attacks on Distributed Learning
/// with Heterogeneous Data" (ICMLA 2023), as data: Table I (best test accuracy in %, Fashion-MNIST,
/// 3 000 rounds, mean over several trials) and Table II (accuracy drop in % against the no-attack
/// setting, bucketing against DeSGD), copied cell by cell from the paper.
///
/// Table II's drops are 90.58 (the paper's "distributed SGD with global momentum without any
/// defenses/attacks") minus the Table I accuracy: for its DeSGD rows this holds to the last digit
/// (tested), which is how ``PaperTables/referenceAccuracy`` is known to be Table II's baseline.
public enum PaperTables {
    /// Distributed SGD with global momentum, no defence, no attack (Table I's caption).
    public static let referenceAccuracy = 90.58

    /// Table I's columns, in the paper's order.
    public static let attacks = ["Non", "Mimic", "Constant", "Gaussian", "Label-Flip", "Sign-Flip", "IPM", "ALIE"]

    /// Table I, row by row: the method and its best accuracy under each of ``attacks``.
    public static let tableI: [(method: String, accuracy: [Double])] = [
        ("ClipMean", [90.38, 88.63, 74.14, 89.92, 90.12, 88.82, 89.67, 65.11]),
        ("Krum", [89.18, 58.08, 63.92, 61.35, 89.27, 42.86, 46.25, 62.65]),
        ("GeoMed", [89.87, 48.21, 53.91, 53.49, 90.02, 43.64, 46.16, 43.29]),
        ("Clustering", [84.81, 87.63, 67.87, 84.91, 86.61, 81.15, 83.58, 73.63]),
        ("CenteredClip", [89.12, 87.42, 84.12, 76.53, 90.12, 83.47, 87.54, 72.23]),
        ("M-Krum", [89.62, 82.56, 89.92, 89.68, 89.14, 41.51, 66.65, 64.24]),
        ("TrMean", [87.45, 85.59, 73.64, 88.73, 84.14, 79.58, 85.45, 68.21]),
        ("FABA", [89.74, 89.23, 89.91, 90.12, 89.81, 87.29, 88.89, 75.24]),
        ("DnC", [90.52, 88.53, 89.96, 88.49, 90.06, 87.07, 88.79, 76.94]),
        ("Krum+", [88.33, 86.39, 88.79, 88.94, 89.15, 88.73, 87.74, 69.07]),
        ("M-Krum+", [88.25, 87.14, 89.09, 88.97, 88.59, 88.67, 88.53, 78.48]),
        ("GeoMed+", [89.73, 86.23, 88.85, 88.49, 89.02, 88.18, 88.68, 75.87]),
        ("TrMean+", [88.75, 87.95, 78.28, 89.10, 88.76, 86.78, 87.43, 80.44]),
        ("DnC+", [89.75, 88.85, 89.03, 88.98, 89.17, 88.13, 88.42, 85.36]),
        ("Clustering+", [88.79, 88.46, 88.41, 88.39, 89.43, 88.52, 88.96, 88.66]),
    ]

    /// Table II's columns.
    public static let tableIIAttacks = ["Sign-Flip", "IPM", "ALIE"]

    /// Table II, row by row, with the paper's row names.
    public static let tableII: [(method: String, drop: [Double])] = [
        ("M-Krum + Bucketing", [2.04, 1.53, 14.49]),
        ("M-Krum + DeSGD", [1.91, 2.05, 12.10]),
        ("TrMean + Bucketing", [3.06, 1.95, 11.59]),
        ("TrMean + DeSGD", [3.80, 3.15, 10.14]),
        ("DnC + Bucketing", [2.48, 1.99, 12.10]),
        ("DnC + DeSGD", [2.45, 2.16, 5.22]),
        ("Clustering + Bucketing", [5.68, 2.59, 13.27]),
        ("Clustering + DeSGD", [2.06, 1.62, 1.92]),
    ]

    /// Table I's accuracy of `method` under `attack`, or nil.
    public static func accuracy(_ method: String, _ attack: String) -> Double? {
        guard let row = tableI.first(where: { $0.method == method }), let j = attacks.firstIndex(of: attack) else {
            return nil
        }
        return row.accuracy[j]
    }

    /// Table II's drop of `method` (a Table II row name, or a grid label: "X+" is "X + DeSGD") under
    /// `attack`, or nil.
    public static func drop(_ method: String, _ attack: String) -> Double? {
        let name = tableIIName(method)
        guard let row = tableII.first(where: { $0.method == name }), let j = tableIIAttacks.firstIndex(of: attack)
            else { return nil }
        return row.drop[j]
    }

    /// Table II's name of a grid label: "X+" is "X + DeSGD"; other labels are their own.
    public static func tableIIName(_ label: String) -> String {
        label.hasSuffix("+") && !label.hasSuffix(" +") ? String(label.dropLast()) + " + DeSGD" : label
    }

    /// Both tables in long form, one line per published number: `table,method,attack,value`.
    public static var csv: String {
        var lines = ["table,method,attack,value"]
        for row in tableI {
            for (a, v) in zip(attacks, row.accuracy) {
                lines.append("I,\(row.method),\(a),\(String(format: "%.2f", v))") } }
        for row in tableII {
            for (a, v) in zip(tableIIAttacks, row.drop) {
                lines.append("II,\(row.method),\(a),\(String(format: "%.2f", v))") } }
        return lines.joined(separator: "\n") + "\n"
    }
}
