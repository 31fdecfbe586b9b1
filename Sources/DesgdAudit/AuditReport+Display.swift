import DesgdNumerics
import DesgdTrace

/// The reports with every string that comes from a file (the trace's header, its name, the
/// reader's messages quoting it) escaped for display (``DisplayText``): what the terminal, CSV and
/// HTML renderings show, so that a header string holding a newline, `ESC[8m` or U+202E cannot forge
/// or hide a line of the report. The JSON output encodes the report itself (the encoder escapes
/// control characters). Escaping is idempotent: a rendering may escape again.
extension AuditReport {
    public var forDisplay: AuditReport {
        let t = DisplayText.escaped
        var r = self
        r.run.trace = t(run.trace)
        r.run.program = t(run.program)
        r.run.formatVersion = t(run.formatVersion)
        r.run.mode = t(run.mode)
        r.run.aggregator = t(run.aggregator)
        r.run.attack = t(run.attack)
        r.run.model = t(run.model)
        r.run.backend = t(run.backend)
        r.run.recording = t(run.recording)
        r.run.datasetDigest = t(run.datasetDigest)
        r.run.fork = run.fork?.forDisplay
        r.integrity.failure = integrity.failure.map(t)
        r.integrity.note = integrity.note.map(t)
        r.integrity.lastDigest = t(integrity.lastDigest)
        r.rules = rules.map(t)
        for k in r.summaries.indices { r.summaries[k].rule = t(summaries[k].rule) }
        r.skipped = skipped.map(t)
        if var d = drift {
            for k in d.series.indices { d.series[k].rule = t(d.series[k].rule) }
            for k in d.flags.indices { d.flags[k].rule = t(d.flags[k].rule) }
            d.note = d.note.map(t)
            r.drift = d
        }
        return r
    }
}

extension TraceHeader.ForkInfo {
    /// Parent file, digest and changes escaped for display (``DisplayText``).
    public var forDisplay: TraceHeader.ForkInfo {
        let t = DisplayText.escaped
        return TraceHeader.ForkInfo(parentDigest: t(parentDigest), at: at, parentFile: t(parentFile),
                                    changes: changes.map(\.forDisplay))
    }
}

extension TraceHeader.ForkInfo.Change {
    /// Option and values escaped for display (``DisplayText``).
    public var forDisplay: TraceHeader.ForkInfo.Change {
        let t = DisplayText.escaped
        return .init(option: t(option), parent: t(parent), fork: t(fork))
    }
}

extension ForkFamilyReport {
    public var forDisplay: ForkFamilyReport {
        let t = DisplayText.escaped
        var r = self
        r.parent = t(parent)
        for k in r.branches.indices {
            let b = branches[k]
            r.branches[k].name = t(b.name)
            r.branches[k].trace = t(b.trace)
            r.branches[k].aggregator = t(b.aggregator)
            r.branches[k].attack = t(b.attack)
            r.branches[k].changes = b.changes.map(\.forDisplay)
        }
        return r
    }
}
