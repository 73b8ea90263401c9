import Foundation

/// The `info` document: what a file holds, from headers only. `json` is stable and versioned.
public enum InfoReport {
    public static let schemaVersion = 1

    public static func json(_ files: [Result<OpenedFile, EMError>], paths: [String], includeOriginal: Bool) -> MetaValue {
        var out: [MetaValue] = []
        for (i, r) in files.enumerated() {
            switch r {
            case let .success(f): out.append(fileValue(f, includeOriginal: includeOriginal))
            case let .failure(e):
                out.append(.object([("path", .string(paths[i])), ("error", .string(e.description)), ("error_code", .string(e.code.rawValue))]))
            }
        }
        return .object([("emconv_info_version", .int(Int64(schemaVersion))), ("emconv_version", .string(EMConvVersion.string)),
                        ("files", .array(out))])
    }

    static func fileValue(_ f: OpenedFile, includeOriginal: Bool) -> MetaValue {
        var o: [(String, MetaValue)] = [
            ("path", .string(f.path)), ("format", .string(f.format)), ("variant", .string(f.variant)),
            ("reader", .string("\(f.readerName) \(f.readerVersion)")),
            ("files_used", .array(f.files.map { .string($0) })),
            ("warnings", .array(f.warnings.map { .string($0) })),
            ("datasets", .array(f.datasets.map { datasetValue($0, includeOriginal: includeOriginal) })),
        ]
        if includeOriginal { o.append(("original_metadata", f.original)) }
        return .object(o)
    }

    public static func axisValue(_ a: Axis) -> MetaValue {
        var o: [(String, MetaValue)] = [("name", .string(a.name)), ("size", .int(Int64(a.size))), ("role", .string(a.role.rawValue)),
                                        ("units", .string(a.units))]
        switch a.calibration {
        case let .uniform(offset, scale):
            o.append(("offset", .double(offset)))
            o.append(("scale", .double(scale)))
        case let .coordinates(c):
            o.append(("coordinates", .array(c.map { .double($0) })))
        }
        return .object(o)
    }

    public static func metadataValue(_ m: NormalizedMetadata) -> MetaValue {
        .object(m.entries.map { ($0.0, .string($0.1)) })
    }

    static func datasetValue(_ d: Dataset, includeOriginal: Bool) -> MetaValue {
        var o: [(String, MetaValue)] = [
            ("name", .string(d.name)), ("title", .string(d.title)),
            ("shape", .array(d.shape.map { .int(Int64($0)) })), ("dtype", .string(d.elementType.rawValue)),
            ("source_byte_order", .string(d.sourceByteOrder.rawValue)), ("signal_kind", .string(d.signalKind)),
            ("frame_rank", .int(Int64(d.frameRank))), ("bytes", .int(d.byteCount)),
            ("quantity", .string(d.quantity)), ("quantity_units", .string(d.quantityUnits)),
            ("axes", .array(d.axes.map(axisValue))), ("metadata", metadataValue(d.metadata)),
            ("conventions", .object(d.conventions.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ]
        if let s = (d.source as? StoredSizeReporting)?.storedBytes { o.append(("stored_bytes", .int(s))) }
        if includeOriginal && d.original != .object([]) { o.append(("original_metadata", d.original)) }
        return .object(o)
    }

    /// Human-readable text.
    public static func text(_ f: OpenedFile) -> String {
        var s = "\(f.path)\n  format: \(f.format) (\(f.variant))\n"
        if f.files.count > 1 { s += "  files: \(f.files.map { ($0 as NSString).lastPathComponent }.joined(separator: ", "))\n" }
        for d in f.datasets {
            s += "  dataset \(d.name)\(d.title.isEmpty ? "" : " \"\(d.title)\""): \(d.shape.map(String.init).joined(separator: " x ")) \(d.elementType.rawValue)"
            s += " [\(d.signalKind)]\(d.sourceByteOrder == .big ? " (stored big-endian)" : "")\n"
            if let st = (d.source as? StoredSizeReporting)?.storedBytes { s += "    size: \(d.byteCount) bytes declared, \(st) bytes stored\n" }
            for a in d.axes {
                var cal = ""
                switch a.calibration {
                case let .uniform(o, sc):
                    cal = (o == 0 && sc == 1 && a.units.isEmpty) ? "uncalibrated" : "offset \(fmt(o)), scale \(fmt(sc))\(a.units.isEmpty ? "" : " \(a.units)")"
                case let .coordinates(c): cal = "coordinates \(fmt(c.first ?? 0))…\(fmt(c.last ?? 0))\(a.units.isEmpty ? "" : " \(a.units)")"
                }
                s += "    \(a.role == .navigation ? "nav" : "sig") \(a.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(String(a.size).padding(toLength: 6, withPad: " ", startingAt: 0)) \(cal)\n"
            }
            for (k, v) in d.metadata.entries { s += "    \(k): \(v)\n" }
        }
        for w in f.warnings { s += "  warning: \(w)\n" }
        return s
    }
}
