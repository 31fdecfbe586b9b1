import DesgdNumerics
import DesgdSimulation

/// What a reader checks of the header's `dataset` (traces/FORMAT.md §5.1, §6 item 8) without the
/// data: `kind` and the names in `fileDigests` are those of the configured data, every file digest
/// is 64 lowercase hex digits, `digest` is computed from `fileDigests` as FORMAT.md defines it, and
/// the normalisation is a finite mean with a positive finite std. The normalisation's values and
/// the file digests themselves are checked against the data where the data is read
/// (``DatasetProvenance/mismatch(with:)``: re-execution, rebuilding, resumption).
extension TraceHeader {
    func validateDataset() throws(ParseFailure) {
        let expectedKind: String
        let names: [[String]]
        switch config.data {
        case .fashionMNIST:
            expectedKind = "fashion-mnist"
            names = Dataset.fileStems.map { [$0 + ".gz", $0] }
        case .synthetic:
            expectedKind = "synthetic"
            names = [["train"], ["test"]]
        case .external:
            // The clients' own data: no file desgd read; its description is the engine's.
            expectedKind = "external"
            names = []
        }
        guard dataset.kind == expectedKind else {
            let kind = DisplayText.quoted(dataset.kind, limit: 40)
            throw ParseFailure("dataset.kind is '\(kind)', but config.data is \(expectedKind)")
        }
        guard dataset.source.utf8.count <= LiveEngine.maximumText else {
            throw ParseFailure("dataset.source is longer than \(LiveEngine.maximumText) bytes")
        }
        guard dataset.fileDigests.count == names.count,
            names.allSatisfy({ choices in choices.filter { dataset.fileDigests[$0] != nil }.count == 1 })
        else {
            let list = names.map { $0.joined(separator: " or ") }.joined(separator: ", ")
            throw ParseFailure("dataset.fileDigests must name exactly the files of \(expectedKind) data: \(list)")
        }
        for (name, digest) in dataset.fileDigests.sorted(by: { $0.key < $1.key }) where !Self.isDigest(digest) {
            throw ParseFailure("dataset.fileDigests['\(name)'] is not 64 lowercase hex digits")
        }
        guard Self.isDigest(dataset.digest), dataset.digest == Dataset.combinedDigest(dataset.fileDigests) else {
            throw ParseFailure("dataset.digest is not the SHA-256 of its fileDigests (FORMAT.md §5.1)")
        }
        let n = dataset.normalization
        guard n.mean.isFinite, n.std.isFinite, n.std > 0 else {
            throw ParseFailure("dataset.normalization needs a finite mean and a positive finite std")
        }
    }

    static func isDigest(_ s: String) -> Bool {
        Hex.decode(s, count: 32) != nil
    }
}

extension DatasetProvenance {
    /// What differs between this provenance (of the data just read) and `recorded` (a trace
    /// header's), as a sentence; nil when kind, file digests, digest and normalisation (bit for
    /// bit) all agree. `source` is informative (FORMAT.md §5.1) and not compared.
    public func mismatch(with recorded: DatasetProvenance) -> String? {
        if kind != recorded.kind {
            return "it is \(kind) data, the trace says \(DisplayText.quoted(recorded.kind, limit: 40))"
        }
        let names = Set(fileDigests.keys).union(recorded.fileDigests.keys).sorted()
        for name in names where fileDigests[name] != recorded.fileDigests[name] {
            let read = fileDigests[name].map { String($0.prefix(16)) + "…" } ?? "absent"
            let said = recorded.fileDigests[name].map { DisplayText.quoted(String($0.prefix(16))) + "…" } ?? "absent"
            return "its file \(DisplayText.quoted(name, limit: 40)) has digest \(read), the trace says \(said)"
        }
        if digest != recorded.digest {
            return
                "its digest is \(digest.prefix(16))…, the trace says "
                    + "\(DisplayText.quoted(String(recorded.digest.prefix(16))))…"
        }
        if normalization.mean.bitPattern != recorded.normalization.mean.bitPattern
            || normalization.std.bitPattern != recorded.normalization.std.bitPattern
        {
            return "its normalisation is mean \(normalization.mean), std \(normalization.std); the trace says mean "
                + "\(recorded.normalization.mean), std \(recorded.normalization.std)"
        }
        return nil
    }
}
