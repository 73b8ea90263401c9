import EMCore
import Foundation

/// FEI/TFS TIA (TEM Imaging & Analysis): a .emi with the acquisition metadata and one .ser per
/// detector (`name_1.ser`, `name_2.ser`, …) holding a series of spectra or images. Opening the
/// .emi gives one dataset per .ser; a .ser opens alone (with the .emi's metadata when it is
/// beside it, else with a warning).
public enum TIAReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "tia", longName: "FEI/TFS TIA (ser + emi)", aliases: ["ser", "emi"], extensions: ["emi", "ser"],
        reads: true, writes: false,
        companions: "the .ser files beside the .emi (name_1.ser, name_2.ser, …; one per detector)",
        notes: "SER 0x0210 (32-bit offsets) and 0x0220 (64-bit); spectra and images; series dimensions from the header. "
            + "Images are flipped to top row first (TIA stores the bottom row first).",
        signature: "SER: bytes 49 49 97 01 (byte order 0x4949, series ID 0x0197); EMI: 'JK' 00 02"
    )

    public static func identify(_ probe: Probe) -> Identification {
        if probe.head.count >= 4, Array(probe.head[0..<4]) == SERFile.magic { return .yes }
        if probe.head.count >= 4, Array(probe.head[0..<4]) == EMIFile.signature {
            return probe.fileExtension == "emi" ? .yes : .maybe
        }
        return .no
    }

    public static func companions(of path: String) -> [String] {
        guard (path as NSString).pathExtension.lowercased() == "emi" else { return [] }
        let emi = try? EMIFile(path: path)
        return serFiles(forEMI: path, emi: emi)
    }

    /// The `_N` of `name_N.ser`.
    static func serNumber(_ name: String) -> Int? {
        let stem = ((name as NSString).lastPathComponent as NSString).deletingPathExtension
        guard let u = stem.lastIndex(of: "_") else { return nil }
        return Int(stem[stem.index(after: u)...])
    }

    /// The .ser files of an .emi: `stem_N.ser` beside it and the names the .emi lists, by N.
    static func serFiles(forEMI path: String, emi: EMIFile?) -> [String] {
        let dir = (path as NSString).deletingLastPathComponent
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var names = Set<String>()
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        for f in listing where (f as NSString).pathExtension.lowercased() == "ser" {
            let s = (f as NSString).deletingPathExtension
            if s.hasPrefix(stem + "_"), Int(s.dropFirst(stem.count + 1)) != nil { names.insert(f) }
        }
        for o in emi?.objects ?? [] {
            if let n = o.serName, let match = listing.first(where: { $0.lowercased() == n.lowercased() }) { names.insert(match) }
        }
        return names.sorted { (serNumber($0) ?? 0, $0) < (serNumber($1) ?? 0, $1) }
            .map { dir.isEmpty ? $0 : (dir as NSString).appendingPathComponent($0) }
    }

    /// The .emi of `name_N.ser`, when it exists.
    static func emiPath(forSER path: String) -> String? {
        let dir = (path as NSString).deletingLastPathComponent
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        guard let u = stem.lastIndex(of: "_") else { return nil }
        let base = String(stem[..<u])
        for ext in ["emi", "EMI", "Emi"] {
            let p = dir.isEmpty ? "\(base).\(ext)" : (dir as NSString).appendingPathComponent("\(base).\(ext)")
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        return nil
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let head = try RandomAccessFile(path: path).readUpTo(at: 0, count: 4)
        if head == EMIFile.signature { return try openEMI(path) }
        guard head == SERFile.magic else { throw FormatDeclined("neither a SER series (49 49 97 01) nor an EMI ('JK' 00 02)") }
        return try openSER(path)
    }

    static func openEMI(_ path: String) throws -> OpenedFile {
        let emi = try EMIFile(path: path)
        let sers = serFiles(forEMI: path, emi: emi)
        guard !sers.isEmpty else {
            let named = emi.objects.compactMap(\.serName)
            throw EMError(.missingInput, file: path, "no .ser file found beside the .emi (expected \(named.isEmpty ? "name_1.ser" : named.joined(separator: ", ")))")
        }
        var warnings = emi.warnings
        let found = Set(sers.map { ($0 as NSString).lastPathComponent.lowercased() })
        for n in emi.objects.compactMap(\.serName) where !found.contains(n.lowercased()) {
            warnings.append("the .emi refers to \(n), which is not beside it; that series is left out")
        }
        var datasets: [Dataset] = []
        var handles: [RandomAccessFile] = [try RandomAccessFile(path: path)]
        var variants: [String] = []
        for s in sers {
            let ser = try SERFile(path: s)
            let object = emi.object(forSER: s)
            if object?.info == nil {
                warnings.append("the .emi holds no metadata block for \((s as NSString).lastPathComponent) (truncated .emi?); its microscope metadata are missing")
            }
            let (ds, w) = try dataset(ser, object: object, tiaVersion: emi.tiaVersion, taken: datasets.map(\.name))
            datasets.append(ds)
            warnings += w.map { "\((s as NSString).lastPathComponent): \($0)" }
            handles.append(ser.file)
            variants.append(variant(ser))
        }
        let variantText = "EMI with \(sers.count) SER file\(sers.count == 1 ? "" : "s")" + (emi.tiaVersion.map { ", TIA \($0)" } ?? "")
            + ": " + variants.joined(separator: "; ")
        return OpenedFile(path: path, format: descriptor.name, variant: variantText, datasets: datasets, files: [path] + sers,
                          original: emiMeta(emi), warnings: warnings, readerName: "tia", readerVersion: version, handles: handles)
    }

    static func openSER(_ path: String) throws -> OpenedFile {
        let ser = try SERFile(path: path)
        var warnings: [String] = []
        var emi: EMIFile?
        let emiPath = emiPath(forSER: path)
        if let emiPath {
            do { emi = try EMIFile(path: emiPath) } catch let e as EMError {
                warnings.append("the .emi beside it cannot be read (\(e.message)); its metadata are missing")
            }
            warnings += emi?.warnings ?? []
        } else {
            warnings.append("no .emi beside this .ser: the microscope metadata (HT, magnification, camera length, detector) and the calibration units of the elements are missing; open the .emi to get them")
        }
        let object = emi?.object(forSER: path)
        if let emi, object?.info == nil {
            warnings.append("\((emi.path as NSString).lastPathComponent) holds no metadata block for this .ser (truncated .emi?); its microscope metadata are missing")
        }
        let (ds, w) = try dataset(ser, object: object, tiaVersion: emi?.tiaVersion, taken: [])
        warnings += w
        var handles = [ser.file]
        if let emiPath, emi != nil, let h = try? RandomAccessFile(path: emiPath) { handles.append(h) }
        return OpenedFile(path: path, format: descriptor.name, variant: variant(ser) + (emi == nil ? ", without EMI" : ", with EMI"),
                          datasets: [ds], files: [path] + (emi != nil ? [emiPath!] : []), original: emi.map(emiMeta) ?? .object([]),
                          warnings: warnings, readerName: "tia", readerVersion: version, handles: handles)
    }

    static func variant(_ s: SERFile) -> String {
        let shape = s.frameShape.map(String.init).joined(separator: "x")
        return "SER 0x0\(String(s.version, radix: 16)) (\(s.offsetBits)-bit offsets), \(s.validElements) \(s.kind == .image ? "image" : "spectrum") element\(s.validElements == 1 ? "" : "s") of \(shape) \(s.elementType.rawValue), \(s.dimensions.count)-D series"
    }

    static func emiMeta(_ emi: EMIFile) -> MetaValue {
        var pairs: [(String, MetaValue)] = []
        if let v = emi.tiaVersion { pairs.append(("tia_version", .string(v))) }
        pairs.append(("objects", .array(emi.objects.map { o in
            var p: [(String, MetaValue)] = []
            if let n = o.name { p.append(("name", .string(n))) }
            if let s = o.serName { p.append(("ser", .string(s))) }
            if let s = o.space { p.append(("space", .string(s))) }
            p.append(("ObjectInfo", o.info ?? .string(o.rawInfo)))
            return .object(p)
        })))
        return .object(pairs)
    }

    /// SI length units → nm (reciprocal → 1/nm); other units unchanged.
    static func displayUnits(_ u: String) -> (String, Double) {
        switch u.trimmingCharacters(in: .whitespaces).lowercased() {
        case "meters", "meter", "metres", "m": return ("nm", 1e9)
        case "1/meters", "1/meter", "1/m", "m^-1", "1 / m": return ("1/nm", 1e-9)
        case "seconds", "second", "s": return ("s", 1)
        case "ev", "electron volts": return ("eV", 1)
        case "radians", "rad": return ("rad", 1)
        default: return (u, 1)
        }
    }

    static func uniform(_ off: Double, _ delta: Double, _ element: Int32, factor: Double) -> AxisCalibration {
        .uniform(offset: (off - Double(element) * delta) * factor, scale: delta * factor)
    }

    /// One dataset from one .ser (and its .emi object, when known).
    static func dataset(_ ser: SERFile, object: EMIFile.Object?, tiaVersion: String?, taken: [String]) throws -> (Dataset, [String]) {
        var warnings = ser.warnings
        var conventions: [String: String] = [
            "emconv_tia_calibration": "axis value = (CalibrationOffset + (index - CalibrationElement) x CalibrationDelta) in the file's units, lengths converted to nm (RosettaSciIO 0.15 converts only the delta and ignores CalibrationElement)",
        ]
        // Series axes: the header lists dimensions fastest first; C order is the reverse.
        var nav: [Axis] = []
        let dims = ser.dimensions
        let product = dims.reduce(1) { $0 * $1.size }
        if dims.count == 1 || (product == ser.validElements && product == ser.totalElements) {
            let spatial = dims.filter { displayUnits($0.units).0 == "nm" }.count
            for (k, d) in dims.enumerated().reversed() {
                let (u, f) = displayUnits(d.units)
                let size = dims.count == 1 ? ser.validElements : d.size
                var name: String
                if spatial == 2 && dims.count == 2 { name = k == 1 ? "scan_y" : "scan_x" }
                else if d.description.lowercased() == "position" || u == "nm" { name = dims.count == 1 ? "position" : "position_\(k)" }
                else if d.description.lowercased() == "number" || d.description.isEmpty { name = dims.count == 1 ? "frame" : "frame_\(k)" }
                else { name = sanitized(d.description) }
                nav.append(Axis(name: name, size: size, role: .navigation, units: u, calibration: uniform(d.offset, d.delta, d.element, factor: f),
                                longName: d.description.isEmpty ? nil : d.description))
            }
            if dims.count == 1 && ser.validElements < ser.totalElements {
                warnings.append("the series was allocated for \(ser.totalElements) elements and holds \(ser.validElements) (acquisition stopped or a preview buffer)")
            }
        } else {
            nav = [Axis(name: "frame", size: ser.validElements, role: .navigation, longName: "element number")]
            warnings.append("the series holds \(ser.validElements) of \(ser.totalElements) elements, which do not fill its \(dims.map { String($0.size) }.joined(separator: "x")) grid; kept as a list of \(ser.validElements) elements")
        }
        // A single image or spectrum described only by an element number has no series axis.
        if nav.count == 1, nav[0].size == 1, nav[0].units.isEmpty { nav = [] }

        var signal: [Axis] = []
        var kind: String
        var flip = false
        if ser.kind == .image {
            let space = object?.space
            let cx = ser.calibrations[0], cy = ser.calibrations[1]
            var reciprocal: Bool
            if let space {
                reciprocal = space.lowercased().hasPrefix("reciprocal")
            } else {
                // Without the .emi: TIA calibrates images in metres (real space, sub-millimetre
                // pixels) or inverse metres (diffraction, pixels of 1e5 1/m and more).
                reciprocal = abs(cx.delta) >= 1
                conventions["emconv_tia_units"] = "no .emi: units \(reciprocal ? "1/m" : "m") assumed from the size of the calibration delta"
            }
            let (u, f) = reciprocal ? ("1/nm", 1e-9) : ("nm", 1e9)
            let ny = ser.frameShape[0], nx = ser.frameShape[1]
            flip = true
            // Row r of the output is stored row ny-1-r: the y coordinate runs down the rows.
            let yOff = (cy.offset + (Double(ny - 1) - Double(cy.element)) * cy.delta) * f
            let names = reciprocal ? ("det_y", "det_x") : ("y", "x")
            signal = [Axis(name: names.0, size: ny, role: .signal, units: u, calibration: .uniform(offset: yOff, scale: -cy.delta * f), longName: "y"),
                      Axis(name: names.1, size: nx, role: .signal, units: u, calibration: uniform(cx.offset, cx.delta, cx.element, factor: f), longName: "x")]
            conventions["emconv_orientation"] = "rows flipped: TIA stores the bottom row first; row 0 here is the top row as TIA displays it (as RosettaSciIO), so the y axis runs downwards (negative scale)"
            if reciprocal { kind = nav.count == 2 ? "4d-stem" : "diffraction" } else { kind = "image" }
        } else {
            let c = ser.calibrations[0]
            signal = [Axis(name: "energy", size: ser.frameShape[0], role: .signal, units: "eV", calibration: uniform(c.offset, c.delta, c.element, factor: 1), longName: "energy")]
            conventions["emconv_tia_units"] = "spectrum channels in eV (TIA's spectrum calibration unit; the SER element stores no unit)"
            kind = "spectrum"
        }

        var md = normalized(object?.info)
        md.softwareName = "TIA"
        md.softwareVersion = tiaVersion
        if let n = object?.name { md.detectorName = n }
        if nav.count == 2, nav[0].name == "scan_y" { md.scanShape = [nav[0].size, nav[1].size]; md.scanShapeSource = "SER header dimensions" }
        let (tags, tagWarnings) = ser.readTags()
        warnings += tagWarnings
        var original: [(String, MetaValue)] = [("ser_file", .string((ser.path as NSString).lastPathComponent)), ("ser_header", ser.headerMeta), ("element_tags", tags)]
        if let o = object {
            original.append(("emi_object", .object([("name", o.name.map { .string($0) } ?? .null), ("space", o.space.map { .string($0) } ?? .null),
                                                    ("ObjectInfo", o.info ?? .string(o.rawInfo))])))
        }
        if md.startTime == nil, case let .array(t)? = tags["time_unix_s"], let first = t.first?.doubleValue, first > 0,
           var ts = Timestamp.unix(first, utcOffsetSeconds: nil) {
            ts.raw = "SER tag time \(Int(first))"  // in range: years 1-9999
            md.startTime = ts
        }
        var name = object?.name.map(sanitized) ?? "ser_\(serNumber(ser.path) ?? 1)"
        if name.isEmpty { name = "ser" }
        if taken.contains(name) { name += "_\(serNumber(ser.path) ?? taken.count + 1)" }
        let source = SERFrameSource(file: ser.file, starts: ser.dataStarts, frameBytes: ser.frameBytes, rows: ser.kind == .image ? ser.frameShape[0] : 1, flipRows: flip)
        let ds = Dataset(name: name, title: object?.name ?? (ser.path as NSString).lastPathComponent, axes: nav + signal,
                         elementType: ser.elementType, sourceByteOrder: .little, frameRank: signal.count,
                         quantity: ser.kind == .spectrum ? "counts" : "intensity", signalKind: kind, metadata: md,
                         original: .object(original), conventions: conventions, source: source)
        return (ds, warnings)
    }

    static func sanitized(_ s: String) -> String {
        var out = ""
        for c in s.lowercased() { out.append(c.isLetter || c.isNumber ? c : "_") }
        while out.contains("__") { out = out.replacingOccurrences(of: "__", with: "_") }
        return out.trimmingCharacters(in: CharacterSet(charactersIn: "_"))
    }

    /// `"200 kV"` → (200, "kV").
    static func valueUnit(_ s: String?) -> (Double, String)? {
        guard let s = s?.trimmingCharacters(in: .whitespaces), !s.isEmpty else { return nil }
        let parts = s.split(separator: " ", maxSplits: 1).map(String.init)
        guard let v = Double(parts[0]) else { return nil }
        return (v, parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
    }

    /// The `<ObjectInfo>` facts in the normalized model.
    static func normalized(_ info: MetaValue?) -> NormalizedMetadata {
        var md = NormalizedMetadata()
        guard let info else { return md }
        let desc = info["ExperimentalDescription"]
        if let v = info.value(at: ["ExperimentalConditions", "MicroscopeConditions", "AcceleratingVoltage"])?.doubleValue {
            md.beamEnergy = Quantity(v, "V")
        } else if let (v, u) = valueUnit(desc?["High tension"]?.stringValue) {
            md.beamEnergy = Quantity(v, u.isEmpty ? "kV" : u)
        }
        if let m = desc?["Microscope"]?.stringValue {
            let name = m.hasPrefix("Microscope ") ? String(m.dropFirst("Microscope ".count)) : m
            md.instrumentName = name
        }
        if let (v, _) = valueUnit(desc?["Magnification"]?.stringValue), v > 0 {
            md.magnification = v
        } else if let (v, _) = valueUnit(info.value(at: ["AcquireInfo", "Magnification"])?.stringValue), v > 0 {
            md.magnification = v
        }
        if let (v, u) = valueUnit(desc?["Camera length"]?.stringValue) { md.cameraLength = Quantity(v, u.isEmpty ? "m" : u) }
        if let v = info.value(at: ["AcquireInfo", "DwellTimePath"])?.doubleValue { md.dwellTime = Quantity(v, "s") }
        if let v = info.value(at: ["AcquireInfo", "FrameTime"])?.doubleValue { md.frameTime = Quantity(v, "s") }
        if let v = info.value(at: ["AcquireInfo", "ExposureTime"])?.doubleValue ?? info.value(at: ["AcquireInfo", "IntegrationTime"])?.doubleValue {
            md.exposureTime = Quantity(v, "s")
        }
        if let m = info["Manufacturer"]?.stringValue, !m.isEmpty {
            md.instrumentVendor = m.components(separatedBy: " (").first
            md.derived.insert("instrument_vendor")
        }
        if let d = info["AcquireDate"]?.stringValue, let t = parseAcquireDate(d) { md.startTime = t }
        if case let .object(pairs)? = desc {
            let used: Set<String> = ["Microscope", "High tension", "Magnification", "Camera length"]
            for (k, v) in pairs where !used.contains(k) {
                guard let s = v.stringValue?.trimmingCharacters(in: .whitespaces), !s.isEmpty else { continue }
                md.extra[sanitized(k)] = s
            }
        }
        md.deriveVendorFromInstrumentName()
        return md
    }

    /// "Sun Feb 21 17:53:06 2016" (local time of the acquisition PC, zone unknown).
    static func parseAcquireDate(_ s: String) -> Timestamp? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(secondsFromGMT: 0)
        f.dateFormat = "EEE MMM d HH:mm:ss yyyy"
        let t = s.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        guard let d = f.date(from: t) else { return nil }
        return Timestamp(date: d, utcOffsetSeconds: nil, raw: s)
    }
}
