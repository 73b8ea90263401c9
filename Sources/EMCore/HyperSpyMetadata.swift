import Foundation

/// Normalized metadata in HyperSpy's metadata structure (General, Signal, Acquisition_instrument),
/// shared by the zspy and hspy writers (RosettaSciIO's hierarchical format in zarr and HDF5).
public enum HyperSpyMetadata {
    /// HyperSpy hierarchical format version written (rsciio `_hierarchical.version`).
    public static let formatVersion = "3.3"

    /// The `original_metadata` of one signal: the dataset's vendor tree, the file's, or both.
    public static func original(_ ds: Dataset, file: OpenedFile) -> MetaValue {
        guard ds.original != .object([]) else { return file.original }
        return file.datasets.count == 1 && file.original == .object([]) ? ds.original
            : .object([("file", file.original), ("dataset", ds.original)])
    }

    /// HyperSpy `signal_type` for emconv's signal kinds (as RosettaSciIO's readers set it).
    public static func signalType(_ kind: String) -> String {
        switch kind {
        case "4d-stem", "diffraction": return "electron_diffraction"
        case "eels": return "EELS"
        case "eds": return "EDS_TEM"
        case "cl": return "CL"
        default: return ""
        }
    }

    /// Converts a quantity to `target` units when the source unit is a known multiple.
    public static func convert(_ q: Quantity?, to target: String) -> Double? {
        guard let q else { return nil }
        let factors: [String: Double] = [
            "V": 1, "kV": 1e3, "MV": 1e6, "keV": 1e3, "eV": 1,
            "m": 1, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "nm": 1e-9,
            "rad": 1, "mrad": 1e-3, "urad": 1e-6,
            "A": 1, "mA": 1e-3, "uA": 1e-6, "nA": 1e-9, "pA": 1e-12,
            "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9,
        ]
        guard let f = factors[q.units], let t = factors[target] else { return nil }
        return q.value * f / t
    }

    public static func metadata(_ ds: Dataset, file: OpenedFile) -> MetaValue {
        let md = ds.metadata
        var general: [(String, MetaValue)] = [
            ("title", .string(ds.title)),
            ("original_filename", .string((file.path as NSString).lastPathComponent)),
        ]
        if let t = md.startTime {
            // HyperSpy keeps date, time and a dateutil time zone: known offsets are written in UTC.
            let iso = Timestamp(date: t.date, utcOffsetSeconds: t.utcOffsetSeconds == nil ? nil : 0).iso8601
            let parts = iso.split(separator: "T", maxSplits: 1).map(String.init)
            if parts.count == 2 {
                var time = parts[1]
                if t.utcOffsetSeconds != nil, time.hasSuffix("+00:00") { time = String(time.dropLast(6)) }
                general += [("date", .string(parts[0])), ("time", .string(time))]
                if t.utcOffsetSeconds != nil { general.append(("time_zone", .string("UTC"))) }
            }
        }
        var signal: [(String, MetaValue)] = [("signal_type", .string(signalType(ds.signalKind)))]
        signal.append(("quantity", .string(ds.quantityUnits.isEmpty ? ds.quantity : "\(ds.quantity) (\(ds.quantityUnits))")))

        var tem: [(String, MetaValue)] = []
        if let v = convert(md.beamEnergy, to: "keV") { tem.append(("beam_energy", .double(v))) }
        if let v = convert(md.cameraLength, to: "mm") { tem.append(("camera_length", .double(v))) }
        if let m = md.magnification { tem.append(("magnification", .double(m))) }
        if let v = convert(md.convergenceSemiAngle, to: "mrad") { tem.append(("convergence_angle", .double(v))) }
        if let v = convert(md.probeCurrent, to: "nA") { tem.append(("beam_current", .double(v))) }
        let microscope = [md.instrumentVendor, md.instrumentModel ?? md.instrumentName].compactMap { $0 }.joined(separator: " ")
        if !microscope.isEmpty { tem.append(("microscope", .string(microscope))) }
        var camera: [(String, MetaValue)] = []
        if let n = md.detectorName ?? md.detectorModel { camera.append(("name", .string(n))) }
        if let v = convert(md.exposureTime, to: "s") { camera.append(("exposure", .double(v))) }
        if !camera.isEmpty { tem.append(("Detector", .object([("Camera", .object(camera))]))) }
        var acq: [(String, MetaValue)] = []
        if !tem.isEmpty { acq.append(("TEM", .object(tem))) }
        // RosettaSciIO's Merlin reader puts the per-position dwell time (s) here.
        if let v = convert(md.dwellTime, to: "s") { acq.append(("dwell_time", .double(v))) }
        var out: [(String, MetaValue)] = [("General", .object(general)), ("Signal", .object(signal))]
        if !acq.isEmpty { out.append(("Acquisition_instrument", .object(acq))) }
        // emconv's own model facts, so its hspy/zspy readers restore the dataset's name and kind.
        var emconv: [(String, MetaValue)] = [("dataset_name", .string(ds.name)), ("signal_kind", .string(ds.signalKind))]
        for (k, v) in md.entries { emconv.append((k, .string(v))) }
        for (k, v) in ds.conventions.sorted(by: { $0.key < $1.key }) { emconv.append(("convention_" + k, .string(v))) }
        out.append(("emconv", .object(emconv)))
        return .object(out)
    }
}
