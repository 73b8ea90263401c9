import Foundation

/// One signal of HyperSpy's hierarchical format (`.hspy` in HDF5, `.zspy` in zarr) as read from
/// its `Experiments/<title>` group, container-neutral: the readers fill it, ``HyperSpyMetadata``
/// maps it to the model (the reverse of what the hspy and zspy writers write).
public struct HyperSpyStoredSignal {
    /// The `Experiments` child name.
    public var groupName: String
    /// The `axis-N` groups' attributes in array order (`axis` coordinates of a non-uniform
    /// `DataAxis` in ``coordinates``).
    public var axes: [MetaValue]
    public var coordinates: [Int: [Double]]
    public var metadata: MetaValue
    public var original: MetaValue
    public var shape: [Int]
    public var elementType: ElementType

    public init(groupName: String, axes: [MetaValue], coordinates: [Int: [Double]], metadata: MetaValue,
                original: MetaValue, shape: [Int], elementType: ElementType) {
        self.groupName = groupName
        self.axes = axes
        self.coordinates = coordinates
        self.metadata = metadata
        self.original = original
        self.shape = shape
        self.elementType = elementType
    }
}

extension HyperSpyMetadata {
    /// HyperSpy stores `None` as the string `_None_`.
    public static func text(_ v: MetaValue?) -> String? {
        guard let s = v?.stringValue, s != "_None_" else { return nil }
        return s
    }

    static func number(_ v: MetaValue?) -> Double? {
        guard let v, text(v) != nil else { return nil }
        return v.doubleValue
    }

    /// emconv's signal kind for a HyperSpy `signal_type` (the reverse of ``signalType(_:)``).
    public static func signalKind(signalType: String, navigationRank: Int, frameRank: Int) -> String {
        switch signalType {
        case "electron_diffraction", "diffraction", "DiffractionVectors2D":
            return navigationRank == 2 && frameRank == 2 ? "4d-stem" : "diffraction"
        case "EELS": return "eels"
        case let t where t.hasPrefix("EDS"): return "eds"
        case let t where t.hasPrefix("CL"): return "cl"
        default:
            if frameRank == 1 { return "spectrum" }
            return frameRank == 2 && navigationRank > 0 ? "stack" : "image"
        }
    }

    /// The model of a stored signal. Axis roles come from `navigate`: the trailing axes that do
    /// not navigate form a frame (HyperSpy keeps the signal axes last in the array).
    public static func dataset(_ s: HyperSpyStoredSignal, file: String, source: FrameSource) throws -> Dataset {
        let rank = s.shape.count
        guard s.axes.count == rank else {
            throw EMError(.badInput, file: file, at: "Experiments/\(s.groupName)",
                          "the data has \(rank) dimensions but \(s.axes.count) axis-N groups")
        }
        let frameRank = self.frameRank(s)
        let emconv = s.metadata["emconv"]
        let signalType = text(s.metadata.value(at: ["Signal", "signal_type"])) ?? ""
        let kind = text(emconv?["signal_kind"]) ?? signalKind(signalType: signalType, navigationRank: rank - frameRank, frameRank: frameRank)
        let defaults = defaultAxisNames(navigationRank: rank - frameRank, frameRank: frameRank, kind: kind)
        var axes: [Axis] = []
        for (i, a) in s.axes.enumerated() {
            let size = s.shape[i]
            if let declared = a["size"]?.intValue, declared != size {
                throw EMError(.badInput, file: file, at: "Experiments/\(s.groupName)/axis-\(i)",
                              "the axis declares size \(declared) but the data has \(size) along it")
            }
            var axis = Axis(name: text(a["name"]).flatMap { $0.isEmpty ? nil : $0 } ?? defaults[i], size: size,
                            role: i >= rank - frameRank ? .signal : .navigation, units: text(a["units"]) ?? "")
            if let c = s.coordinates[i] {
                guard c.count == size else {
                    throw EMError(.badInput, file: file, at: "Experiments/\(s.groupName)/axis-\(i)/axis",
                                  "\(c.count) coordinates for an axis of size \(size)")
                }
                axis.calibration = .coordinates(c)
            } else {
                axis.calibration = .uniform(offset: number(a["offset"]) ?? 0, scale: number(a["scale"]) ?? 1)
            }
            axes.append(axis)
        }
        var quantity = "intensity", quantityUnits = ""
        if let q = text(s.metadata.value(at: ["Signal", "quantity"])), !q.isEmpty {
            quantity = q
            if q.hasSuffix(")"), let open = q.range(of: " (", options: .backwards) {
                quantity = String(q[..<open.lowerBound])
                quantityUnits = String(q[open.upperBound..<q.index(before: q.endIndex)])
            }
        }
        var conventions: [String: String] = [:]
        if case let .object(pairs)? = emconv {
            for (k, v) in pairs where k.hasPrefix("convention_") { conventions[String(k.dropFirst(11))] = v.stringValue ?? "" }
        }
        let title = text(s.metadata.value(at: ["General", "title"])) ?? ""
        let name = text(emconv?["dataset_name"]) ?? (s.groupName == "__unnamed__" ? "signal" : s.groupName)
        return Dataset(name: name, title: title == "__unnamed__" ? "" : title, axes: axes, elementType: s.elementType,
                       frameRank: frameRank, quantity: quantity, quantityUnits: quantityUnits, signalKind: kind,
                       metadata: normalized(s.metadata), original: s.original, conventions: conventions, source: source)
    }

    /// The number of trailing axes that do not navigate (HyperSpy's signal axes).
    public static func frameRank(_ s: HyperSpyStoredSignal) -> Int {
        var n = 0
        while n < s.axes.count, s.axes[s.axes.count - 1 - n]["navigate"].map({ $0.doubleValue == 0 || $0.stringValue == "false" }) == true {
            n += 1
        }
        return n
    }

    static func defaultAxisNames(navigationRank: Int, frameRank: Int, kind: String) -> [String] {
        let nav = navigationRank == 2 ? ["scan_y", "scan_x"] : navigationRank == 1 ? ["frame"] : (0..<navigationRank).map { "nav_\($0)" }
        let sig = frameRank == 2 ? (kind == "4d-stem" || kind == "diffraction" ? ["det_y", "det_x"] : ["y", "x"])
            : frameRank == 1 ? ["energy"] : (0..<frameRank).map { "sig_\($0)" }
        return nav + sig
    }

    /// Normalized metadata from HyperSpy's tree (the keys and units ``metadata(_:file:)`` writes).
    public static func normalized(_ md: MetaValue) -> NormalizedMetadata {
        var out = NormalizedMetadata()
        let tem = md.value(at: ["Acquisition_instrument", "TEM"]) ?? md.value(at: ["Acquisition_instrument", "SEM"])
        if let v = number(tem?["beam_energy"]) { out.beamEnergy = Quantity(v, "kV") }
        if let v = number(tem?["camera_length"]) { out.cameraLength = Quantity(v, "mm") }
        if let v = number(tem?["magnification"]) { out.magnification = v }
        if let v = number(tem?["convergence_angle"]) { out.convergenceSemiAngle = Quantity(v, "mrad") }
        if let v = number(tem?["beam_current"]) { out.probeCurrent = Quantity(v, "nA") }
        if let m = text(tem?["microscope"]), !m.isEmpty { out.instrumentName = m }
        let camera = tem?.value(at: ["Detector", "Camera"])
        if let n = text(camera?["name"]), !n.isEmpty { out.detectorName = n }
        if let v = number(camera?["exposure"]) { out.exposureTime = Quantity(v, "s") }
        if let v = number(md.value(at: ["Acquisition_instrument", "dwell_time"]) ?? tem?["dwell_time"]) { out.dwellTime = Quantity(v, "s") }
        if let d = text(md.value(at: ["General", "date"])) {
            let t = text(md.value(at: ["General", "time"])) ?? "00:00:00"
            let utc = text(md.value(at: ["General", "time_zone"])) == "UTC"
            out.startTime = Timestamp.parseISO("\(d)T\(t)\(utc && !t.contains("+") ? "+00:00" : "")")
        }
        return out
    }
}

/// A group of HyperSpy's hierarchical tree as stored (HDF5 or zarr): attributes, child groups
/// and small arrays, in stored order. ``value`` undoes the writer's encodings
/// (RosettaSciIO `_hierarchical`: `_None_`, `_list_empty_`, `_tuple_empty_`, `_list_N_`/`_tuple_N_`
/// groups and `_list_`/`_tuple_` arrays; `_sig_` signals and `_bs_` byte strings are left out).
public struct HyperSpyStoredGroup {
    public var attributes: [(String, MetaValue)] = []
    public var groups: [(String, HyperSpyStoredGroup)] = []
    public var arrays: [(String, MetaValue)] = []

    public init() {}

    public var value: MetaValue {
        var out: [(String, MetaValue)] = []
        for (k, v) in attributes {
            if k.hasPrefix("_sig_") || k.hasPrefix("_bs_") { continue }
            if k.hasPrefix("_list_empty_") { out.append((String(k.dropFirst(12)), .array([]))); continue }
            if k.hasPrefix("_tuple_empty_") { out.append((String(k.dropFirst(13)), .array([]))); continue }
            out.append((k, Self.none(v)))
        }
        for (k, v) in arrays {
            if k.hasPrefix("_ragged_shapes_") || k.hasPrefix("_sig_") { continue }
            let name = k.hasPrefix("_list_") ? String(k.dropFirst(6)) : k.hasPrefix("_tuple_") ? String(k.dropFirst(7)) : k
            out.append((name, v))
        }
        for (k, g) in groups {
            if k.hasPrefix("_sig_") { continue }
            if let (prefix, rest) = Self.sequencePrefix(k) {
                // `_list_3_key`: children 0, 1, 2 in index order.
                let items = g.groups.compactMap { n, c in Int(n).map { ($0, c.value) } }.sorted { $0.0 < $1.0 }.map(\.1)
                let leaves = g.attributes.compactMap { n, v in Int(n).map { ($0, Self.none(v)) } }.sorted { $0.0 < $1.0 }.map(\.1)
                _ = prefix
                out.append((rest, .array(items.isEmpty ? leaves : items)))
            } else {
                out.append((k, g.value))
            }
        }
        return .object(out)
    }

    static func none(_ v: MetaValue) -> MetaValue {
        if case let .string(s) = v, s == "_None_" { return .null }
        return v
    }

    /// `_list_N_key` / `_tuple_N_key` → ("_list_", "key").
    static func sequencePrefix(_ k: String) -> (String, String)? {
        for p in ["_list_", "_tuple_"] where k.hasPrefix(p) {
            let tail = k.dropFirst(p.count)
            guard let us = tail.firstIndex(of: "_"), Int(tail[..<us]) != nil else { continue }
            return (p, String(tail[tail.index(after: us)...]))
        }
        return nil
    }
}
