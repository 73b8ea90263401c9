import EMCore
import EMHDF5
import Foundation

/// py4DSTEM's calibration of a DataCube: one R pixel size (scan) and one Q pixel size (detector),
/// Q in the units py4DSTEM accepts (`A^-1`, `mrad`, `pixels`).
struct EMD1Calibration {
    var rSize = 1.0
    var rUnits = "pixels"
    var qSize = 1.0
    var qUnits = "pixels"
    var warnings: [String] = []

    /// Q units emconv's readers give → (py4DSTEM unit, factor).
    static let qTable: [String: (String, Double)] = [
        "1/angstrom": ("A^-1", 1), "1/nm": ("A^-1", 0.1), "1/pm": ("A^-1", 100), "1/um": ("A^-1", 1e-4),
        "1/m": ("A^-1", 1e-10), "mrad": ("mrad", 1), "rad": ("mrad", 1000), "urad": ("mrad", 1e-3),
    ]
    /// R length units → py4DSTEM's spelling (it takes any text; its own readers write `A` or `nm`).
    static let rTable: [String: String] = ["angstrom": "A", "nm": "nm", "pm": "pm", "um": "um", "m": "m"]

    init(_ ds: Dataset) {
        let ry = ds.axes[0], rx = ds.axes[1], qy = ds.axes[2], qx = ds.axes[3]
        if let u = EMD1Calibration.rTable[rx.units] {
            rSize = rx.scale
            rUnits = u
            if ry.units != rx.units || !same(ry.scale, rx.scale) {
                warnings.append("py4DSTEM has one R pixel size: \(rx.name) (\(fmt(rx.scale)) \(rx.units)) is used, \(ry.name) is \(fmt(ry.scale)) \(ry.units) (the dims keep both)")
            }
        } else if !rx.units.isEmpty && rx.units != "pixel" {
            warnings.append("scan axis units '\(rx.units)' are not a length: R calibration left at 1 pixel (the dims keep them)")
        }
        if let (u, f) = EMD1Calibration.qTable[qx.units] {
            qSize = qx.scale * f
            qUnits = u
            if qy.units != qx.units || !same(qy.scale, qx.scale) {
                warnings.append("py4DSTEM has one Q pixel size: \(qx.name) (\(fmt(qx.scale)) \(qx.units)) is used, \(qy.name) is \(fmt(qy.scale)) \(qy.units) (the dims keep both)")
            }
        } else if !qx.units.isEmpty && qx.units != "pixel" {
            warnings.append("detector axis units '\(qx.units)' have no py4DSTEM equivalent (A^-1, mrad): Q calibration left at 1 pixel (the dims keep them)")
        }
    }

    private func same(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(abs(a), abs(b)) }

    /// The root's `calibration` metadata, as py4DSTEM's `Calibration` writes it (its targets are
    /// relinked by `py4DSTEM.read` through `_root_treepath` and `_target_paths`).
    func write(into bundle: HDF5Group, target: String) throws {
        let g = try EMD1Layout.node(bundle, "calibration", type: "metadata", pythonClass: "Calibration")
        try EMD1Metadata.number(g, "R_pixel_size", rSize)
        try EMD1Metadata.string(g, "R_pixel_units", rUnits)
        try EMD1Metadata.number(g, "Q_pixel_size", qSize)
        try EMD1Metadata.string(g, "Q_pixel_units", qUnits)
        try EMD1Metadata.bool(g, "QR_flip", false)
        try EMD1Metadata.string(g, "_root_treepath", "")
        try EMD1Metadata.strings(g, "_target_paths", [target])
    }
}

/// emdfile `Metadata` dictionaries: a group (`emd_group_type = metadata`) whose items are
/// datasets or groups with a `type` attribute (`number`, `string`, `bool`, `None`, `list`,
/// `list_of_strings`, `dict`), as `emdfile.Metadata.from_h5` reads them.
enum EMD1Metadata {
    /// Above this many items a vendor tree is kept as one JSON string (`json`) instead of groups.
    static let maxTreeItems = 20_000

    static func typed(_ d: HDF5Node, _ type: String) throws { try d.setAttribute("type", type) }

    static func number(_ g: HDF5Group, _ k: String, _ v: Double) throws {
        try typed(g.writeDoubles(k, [v], shape: []), "number")
    }

    static func integer(_ g: HDF5Group, _ k: String, _ v: Int64) throws {
        try typed(g.writeInts(k, [v], shape: []), "number")
    }

    static func string(_ g: HDF5Group, _ k: String, _ v: String) throws {
        try typed(g.writeString(k, v), "string")
    }

    static func bool(_ g: HDF5Group, _ k: String, _ v: Bool) throws {
        try typed(g.writeBool(k, v), "bool")
    }

    static func strings(_ g: HDF5Group, _ k: String, _ v: [String]) throws {
        let l = try g.createGroup(k)
        try typed(l, "list_of_strings")
        try l.setAttribute("length", Int64(v.count))
        for (i, s) in v.enumerated() { try l.writeString(String(i), s) }
    }

    /// What emconv's model says about the dataset (its reader restores the dataset from it):
    /// name, title, signal kind, frame rank, quantity, axis names, roles and units, conventions.
    static func writeModel(_ ds: Dataset, into bundle: HDF5Group) throws {
        let g = try EMD1Layout.node(bundle, "emconv", type: "metadata", pythonClass: "Metadata")
        try string(g, "dataset_name", ds.name)
        try string(g, "title", ds.title)
        try string(g, "signal_kind", ds.signalKind)
        try integer(g, "frame_rank", Int64(ds.frameRank))
        try string(g, "element_type", ds.elementType.rawValue)
        try string(g, "quantity", ds.quantity)
        try string(g, "quantity_units", ds.quantityUnits)
        try strings(g, "axis_names", ds.axes.map(\.name))
        try strings(g, "axis_units", ds.axes.map(\.units))
        try strings(g, "axis_roles", ds.axes.map(\.role.rawValue))
        // Exact offset and scale of uniform axes (a 2-value dim gives the scale only as a difference,
        // which loses bits when the offset is large); NaN for axes with explicit coordinates.
        func uniform(_ a: Axis) -> (Double, Double) {
            if case let .uniform(o, s) = a.calibration { return (o, s) }
            return (.nan, .nan)
        }
        try typed(g.writeDoubles("axis_offsets", ds.axes.map { uniform($0).0 }), "list")
        try typed(g.writeDoubles("axis_scales", ds.axes.map { uniform($0).1 }), "list")
        if !ds.conventions.isEmpty {
            try writeTree(.object(ds.conventions.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }), name: "conventions", into: g, asItem: true)
        }
    }

    /// The normalized instrument metadata: quantities as numbers with `KEY_units`, texts as strings.
    static func writeInstrument(_ md: NormalizedMetadata, into bundle: HDF5Group) throws {
        var items: [(String, MetaValue)] = []
        func q(_ k: String, _ v: Quantity?) {
            guard let v else { return }
            items.append((k, .double(v.value)))
            items.append((k + "_units", .string(v.units)))
        }
        func s(_ k: String, _ v: String?) { if let v, !v.isEmpty { items.append((k, .string(v))) } }
        q("beam_energy", md.beamEnergy)
        q("camera_length", md.cameraLength)
        if let m = md.magnification { items.append(("magnification", .double(m))) }
        q("exposure_time", md.exposureTime)
        q("dwell_time", md.dwellTime)
        q("frame_time", md.frameTime)
        q("convergence_semi_angle", md.convergenceSemiAngle)
        q("probe_current", md.probeCurrent)
        q("scan_rotation", md.scanRotation)
        q("detector_threshold", md.detectorThreshold)
        s("detector", md.detectorName)
        s("detector_model", md.detectorModel)
        s("detector_mode", md.detectorMode)
        if let b = md.counterDepthBits { items.append(("counter_depth_bits", .int(Int64(b)))) }
        s("instrument_vendor", md.instrumentVendor)
        s("instrument_model", md.instrumentModel)
        s("instrument_name", md.instrumentName)
        s("instrument_serial_number", md.instrumentSerialNumber)
        s("instrument_location", md.instrumentLocation)
        s("emitter_type", md.emitterType)
        s("scan_schema", md.scanSchema)
        s("software_name", md.softwareName)
        s("software_version", md.softwareVersion)
        s("start_time", md.startTime.map { $0.raw ?? $0.iso8601 })
        s("end_time", md.endTime.map { $0.raw ?? $0.iso8601 })
        if let sh = md.scanShape { items.append(("scan_shape", .array(sh.map { .int(Int64($0)) }))) }
        s("scan_shape_source", md.scanShapeSource)
        for k in md.extra.keys.sorted() { items.append(("extra/" + k, .string(md.extra[k]!))) }
        if !md.derived.isEmpty { items.append(("derived_by_emconv", .array(md.derived.sorted().map { .string($0) }))) }
        guard !items.isEmpty else { return }
        try writeTree(.object(items), name: "instrument", into: bundle)
    }

    /// Provenance as NeXus records it: program, version, date, command line, reader, every
    /// source file with size and SHA-256, processing steps, reader warnings.
    static func writeProvenance(_ ds: Dataset, file: OpenedFile, sources: [SourceRecord], context: WriteContext,
                                into bundle: HDF5Group) throws {
        let p = context.provenance
        var items: [(String, MetaValue)] = [
            ("program", .string(p.program)), ("version", .string(p.version)), ("date", .string(p.time.iso8601)),
            ("command_line", .string(p.commandLine)), ("reader", .string(p.readerContext)),
            ("output_name", .string(p.outputName)),
            ("source_files", .array(sources.map { .string(($0.path as NSString).lastPathComponent) })),
            ("source_paths", .array(sources.map { .string($0.path) })),
            ("source_sizes", .array(sources.map { .int($0.size) })),
            ("source_sha256", .array(sources.map { .string($0.sha256) })),
        ]
        if !ds.processing.isEmpty {
            items.append(("processing", .object(ds.processing.enumerated().map { i, s in
                (String(i + 1), .object([("step", .string(s.name)), ("description", .string(s.description)),
                                         ("program", .string(s.program)), ("version", .string(s.version)),
                                         ("parameters_json", .string(s.parameters.json()))]))
            })))
        }
        if !file.warnings.isEmpty { items.append(("warnings", .array(file.warnings.map { .string($0) }))) }
        try writeTree(.object(items), name: "provenance", into: bundle)
    }

    /// A `Metadata` named `name` holding `tree` (an object; anything else goes under `value`).
    /// Trees larger than ``maxTreeItems`` are kept whole as one JSON string item `json`.
    static func writeTree(_ tree: MetaValue, name: String, into parent: HDF5Group, asItem: Bool = false) throws {
        let g: HDF5Group
        if asItem {
            g = try parent.createGroup(EMD1Layout.linkName(name))
            try typed(g, "dict")
        } else {
            g = try EMD1Layout.node(parent, name, type: "metadata", pythonClass: "Metadata")
        }
        if count(tree, limit: maxTreeItems + 1) > maxTreeItems {
            try string(g, "json", tree.json())
            return
        }
        if case let .object(pairs) = tree {
            try items(pairs, into: g)
        } else {
            try item("value", tree, into: g)
        }
    }

    static func count(_ v: MetaValue, limit: Int) -> Int {
        switch v {
        case let .object(p):
            var n = 1
            for (_, c) in p { n += count(c, limit: limit); if n > limit { return n } }
            return n
        case let .array(a):
            var n = 1
            for c in a { n += count(c, limit: limit); if n > limit { return n } }
            return n
        default: return 1
        }
    }

    /// Object members: keys made valid link names (no '/'), repeated keys numbered (`key_2`).
    static func items(_ pairs: [(String, MetaValue)], into g: HDF5Group) throws {
        var used = Set<String>()
        for (k, v) in pairs {
            let base = EMD1Layout.linkName(k)
            var key = base
            var n = 2
            while used.contains(key) { key = "\(base)_\(n)"; n += 1 }
            used.insert(key)
            try item(key, v, into: g)
        }
    }

    static func item(_ k: String, _ v: MetaValue, into g: HDF5Group) throws {
        switch v {
        case .null:
            try typed(g.writeString(k, "_None"), "None")
        case let .bool(b): try bool(g, k, b)
        case let .int(i): try integer(g, k, i)
        case let .uint(u):
            if let i = Int64(exactly: u) { try integer(g, k, i) } else { try number(g, k, Double(u)) }
        case let .double(d): try number(g, k, d)
        case let .string(s): try string(g, k, s)
        case let .object(pairs):
            let c = try g.createGroup(k)
            try typed(c, "dict")
            try items(pairs, into: c)
        case let .array(a):
            if a.allSatisfy({ if case .int = $0 { return true }; return false }) && !a.isEmpty {
                try typed(g.writeInts(k, a.compactMap { if case let .int(i) = $0 { return i }; return nil }), "list")
            } else if a.allSatisfy({ $0.isNumber }) {
                try typed(g.writeDoubles(k, a.compactMap(\.doubleValue)), "list")
            } else if a.allSatisfy({ if case .string = $0 { return true }; return false }) {
                try strings(g, k, a.compactMap(\.stringValue))
            } else {
                // Mixed lists (objects, nulls, nested lists): a dict keyed by index.
                let c = try g.createGroup(k)
                try typed(c, "dict")
                try items(a.enumerated().map { (String($0.offset), $0.element) }, into: c)
            }
        }
    }
}

extension MetaValue {
    fileprivate var isNumber: Bool {
        switch self {
        case .int, .uint, .double: return true
        default: return false
        }
    }
}
