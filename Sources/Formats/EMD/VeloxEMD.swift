import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Thermo Fisher (FEI) Velox EMD. No public specification: layout taken from the files
/// themselves and from RosettaSciIO/openNCEM for facts (see FORMAT.md in this folder).
enum VeloxEMD {
    static let metadataRows = 60000

    static func parseJSON(_ s: String) -> MetaValue? { try? MetaValue.parseJSON(s) }

    /// The first JSON string of a 1-element string dataset.
    static func jsonDataset(_ d: HDF5Dataset?) -> MetaValue? {
        guard let d, let s = d.readStringValues()?.first else { return nil }
        return parseJSON(s)
    }

    /// Reads the NUL-padded JSON metadata of frame `i` from a (60000, N) uint8 dataset.
    static func frameMetadata(_ d: HDF5Dataset, frame i: Int) throws -> MetaValue {
        let shape = d.shape
        guard shape.count == 2, shape[0] > 0, shape[0] <= 1 << 24, i < shape[1] else {
            throw EMError(.badInput, file: d.filePath, at: d.path, "metadata array has shape \(shape), expected (60000, frames)")
        }
        if i == 0 {
            try MemoryBudget.check(d.declaredBytes, what: "metadata array \(shape)", file: d.filePath, at: d.path,
                                   stored: d.knownStoredBytes, budget: false)
        }
        var buf = [UInt8](repeating: 0, count: shape[0])
        try buf.withUnsafeMutableBytes { try d.read(start: [0, i], count: [shape[0], 1], as: .uint8, into: $0) }
        let end = buf.firstIndex(of: 0) ?? buf.count
        let text = String(decoding: buf[0..<end], as: UTF8.self)
        do {
            return try MetaValue.parseJSON(text)
        } catch {
            throw EMError(.badInput, file: d.filePath, at: "\(d.path) frame \(i)", "metadata is not valid JSON (\(error))")
        }
    }

    static func double(_ v: MetaValue?) -> Double? { v?.doubleValue }

    // MARK: Open

    static func open(_ path: String, file: HDF5File, handle: RandomAccessFile, emd: EMDOptions) throws -> OpenedFile {
        let root = file.root
        guard let versionText = root.openDataset("Version")?.readStringValues()?.first else {
            throw EMError.bad(path, field: "/Version", "the Velox version dataset is not a string")
        }
        guard let versionJSON = parseJSON(versionText) else {
            throw EMError.bad(path, field: "/Version", "the Velox version is not valid JSON")
        }
        let format = versionJSON["format"]?.stringValue ?? ""
        guard format == "Velox" || format == "DevelopersKit" else {
            throw EMError(.unsupported, file: path, at: "field '/Version'", "EMD written by '\(format)', not Velox; not supported")
        }
        let versionString = versionJSON["version"]?.stringValue ?? "?"
        let version = Int(versionString) ?? 0
        var warnings: [String] = []
        guard let data = root.openGroup("Data") else {
            throw EMError.bad(path, field: "/Data", "Velox file without a Data group")
        }

        // File-level metadata groups (JSON in 1-element string datasets).
        var top: [(String, MetaValue)] = [("Version", versionJSON)]
        for g in ["Displays", "Operations", "SharedProperties", "Features", "Presentation"] {
            if let grp = root.openGroup(g) { top.append((g, groupJSON(grp, depth: 0))) }
        }
        for d in ["Info", "Experiment"] {
            if let v = jsonDataset(root.openDataset(d)) { top.append((d, v)) }
        }
        let original = MetaValue.object(top)
        let labels = imageLabels(root, original: original, version: version)

        var datasets: [Dataset] = []
        var names: [String: Int] = [:]
        func uniqueName(_ base: String) -> String {
            let b = BerkeleyEMD.sanitize(base).lowercased()
            let n = (names[b] ?? 0) + 1
            names[b] = n
            return n == 1 ? b : "\(b)_\(n)"
        }

        // Images.
        if let images = data.openGroup("Image") {
            for key in images.groupNames {
                guard let g = images.openGroup(key) else { continue }
                do {
                    if let ds = try imageDataset(g, key: key, file: file, labels: labels, warnings: &warnings) {
                        ds.name = uniqueName(ds.title.isEmpty ? "image" : ds.title)
                        datasets.append(ds)
                    }
                } catch let e as EMError {
                    warnings.append("image \(key): skipped: \(e.message)")
                }
            }
        }
        // Single spectra.
        if let spectra = data.openGroup("Spectrum") {
            for key in spectra.groupNames {
                guard let g = spectra.openGroup(key) else { continue }
                do {
                    if let ds = try spectrumDataset(g, key: key, file: file, warnings: &warnings) {
                        ds.name = uniqueName("spectrum_" + (ds.metadata.detectorName ?? "eds"))
                        datasets.append(ds)
                    }
                } catch let e as EMError {
                    warnings.append("spectrum \(key): skipped: \(e.message)")
                }
            }
        }
        // Spectrum images: EDS streams, EELS cubes; pruned files.
        let streams = data.openGroup("SpectrumStream").map { g in g.groupNames.compactMap { g.openGroup($0) } } ?? []
        if !streams.isEmpty && data.openGroup("Image") == nil && data.openGroup("SpectrumImage") == nil {
            warnings.append("spectrum stream without an image raster (a point or area spectrum): not decoded; its sum is the spectrum dataset")
        } else if !streams.isEmpty {
            do {
                let cubes = try VeloxSpectrumStream.datasets(streams, data: data, file: file, path: path, emd: emd, warnings: &warnings)
                for c in cubes { c.name = uniqueName(c.name); datasets.append(c) }
            } catch let e as EMError {
                warnings.append("spectrum stream: skipped: \(e.message)")
            }
        } else if let si = data.openGroup("SpectrumImage"), !si.groupNames.isEmpty {
            warnings.append("the EDS spectrum image is stored only in Velox's proprietary compressed form (file 'pruned' or converted): it is not decodable and was skipped; the images and spectra were read")
        }
        if let eels = data.openGroup("EelsSpectrumImage") {
            for key in eels.groupNames {
                guard let g = eels.openGroup(key) else { continue }
                do {
                    if let ds = try eelsDataset(g, key: key, data: data, file: file, warnings: &warnings) {
                        ds.name = uniqueName("eels")
                        datasets.append(ds)
                    }
                } catch let e as EMError {
                    warnings.append("EELS spectrum image \(key): skipped: \(e.message)")
                }
            }
        }
        guard !datasets.isEmpty else {
            let why = warnings.isEmpty ? "" : " (" + warnings.joined(separator: "; ") + ")"
            throw EMError(.badInput, file: path, "Velox EMD file holds no readable dataset\(why)")
        }
        return OpenedFile(path: path, format: "emd", variant: "Velox EMD version \(versionString)", datasets: datasets,
                          files: [path], original: original, warnings: warnings, readerName: "emconv-emd",
                          readerVersion: EMDReader.version, handles: [handle])
    }

    /// A group of groups of JSON datasets → metadata tree.
    static func groupJSON(_ g: HDF5Group, depth: Int) -> MetaValue {
        var out: [(String, MetaValue)] = []
        for n in g.childNames.prefix(2000) {
            if let d = g.openDataset(n) {
                if d.typeInfo.cls == H5T_STRING, d.elementCount <= 16 {
                    let s = d.readStringValues()?.first ?? ""
                    out.append((n, parseJSON(s) ?? .string(s)))
                }
            } else if depth < 3, let c = g.openGroup(n) {
                out.append((n, groupJSON(c, depth: depth + 1)))
            }
        }
        return .object(out)
    }

    /// Labels of images by data-group UUID: Operations (before v11), Displays (v11+),
    /// Presentation/Displays/ImageDisplay (display labels).
    static func imageLabels(_ root: HDF5Group, original: MetaValue, version: Int) -> [String: String] {
        var labels: [String: String] = [:]
        func uuid(_ p: String?) -> String? { p.map { ($0 as NSString).lastPathComponent } }
        if let ops = original["Operations"], case let .object(groups) = ops {
            for (kind, entries) in groups {
                guard case let .object(items) = entries else { continue }
                for (_, m) in items {
                    switch kind {
                    case "CameraInputOperation":
                        if let u = uuid(m["dataPath"]?.stringValue), let n = m["cameraName"]?.stringValue { labels[u] = n }
                    case "StemInputOperation":
                        if let u = uuid(m["dataPath"]?.stringValue), let n = m["detector"]?.stringValue { labels[u] = n }
                    case "SurfaceReconstructionOperation":
                        let mode = m["integrationMode"]?.stringValue == "true" ? "iDPC" : "dDPC"
                        if let u = uuid(m["unfilteredDataPath"]?.stringValue) { labels[u] = mode }
                        if let u = uuid(m["dataPath"]?.stringValue) {
                            labels[u] = m["enableFilter"]?.stringValue == "true" ? "Filtered \(mode)" : mode
                        }
                    case "MathematicsOperation":
                        if let u = uuid(m["dataPath"]?.stringValue) {
                            let idx = m["outputs"].flatMap { if case let .array(a) = $0 { return a.first?["inputIndex"]?.stringValue } else { return nil } }
                            if idx == "0" { labels[u] = "A-C" } else if idx == "1" { labels[u] = "B-D" }
                        }
                    case "DpcOperation":
                        if let u = uuid(m["dataPath"]?.stringValue) { labels[u] = "DPC" }
                    case "IntegrationOperation":
                        if let u = uuid(m["dataPath"]?.stringValue) { labels[u] = "DCFI" }
                    case "FftOperation":
                        if let u = uuid(m["imageOutputPath"]?.stringValue) { labels[u] = "Half FFT" }
                    default: break
                    }
                }
            }
        }
        if version >= 11, let disp = original["Displays"]?["ImageDisplay"], case let .object(items) = disp {
            for (_, v) in items {
                guard let ref = v["data"]?.stringValue, let id = v["id"]?.stringValue,
                      let refJSON = jsonDataset(root.openDataset(String(ref.drop { $0 == "/" }))),
                      let u = uuid(refJSON["dataPath"]?.stringValue), labels[u] == nil else { continue }
                labels[u] = id
            }
        }
        return labels
    }

    // MARK: Images

    /// Member names of a Velox complex compound ({realFloat…, imagFloat…} float32).
    static func complexMembers(_ d: HDF5Dataset) -> (String, String, Int)? {
        guard let m = d.compoundMembers, m.count == 2, m[0].cls == H5T_FLOAT, m[1].cls == H5T_FLOAT,
              m[0].size == m[1].size, m[0].size == 4 || m[0].size == 8,
              m[0].name.lowercased().hasPrefix("real"), m[1].name.lowercased().hasPrefix("imag") else { return nil }
        return (m[0].name, m[1].name, m[0].size)
    }

    static func imageDataset(_ g: HDF5Group, key: String, file: HDF5File, labels: [String: String],
                             warnings: inout [String]) throws -> Dataset? {
        guard let d = g.openDataset("Data") else { throw EMError(.badInput, file: file.path, at: g.path, "no Data array") }
        let shape = d.shape
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw EMError(.badInput, file: file.path, at: d.path, "image data has shape \(shape), expected (height, width, frames)")
        }
        let (h, w, n) = (shape[0], shape[1], shape[2])
        var type: ElementType
        var complex: (String, String, Int)?
        if let c = complexMembers(d) {
            complex = c
            type = c.2 == 4 ? .complex64 : .complex128
        } else if d.typeInfo.cls == H5T_COMPOUND {
            throw EMError(.unsupported, file: file.path, at: d.path, "compound element type \(d.compoundMembers?.map(\.name) ?? []) is not supported")
        } else if let t = d.elementType {
            type = t
        } else {
            throw EMError(.unsupported, file: file.path, at: d.path, "element type not supported")
        }

        // Metadata of frame 0 (plus per-frame differences).
        var om: MetaValue = .object([])
        var perFrame: [(String, MetaValue)] = []
        if let m = g.openDataset("Metadata") {
            do {
                om = try frameMetadata(m, frame: 0)
                perFrame = try frameDifferences(m, first: om, frames: min(n, m.shape.last ?? 1))
            } catch let e as EMError {
                warnings.append("image \(key): \(e.message); axes left uncalibrated")
            }
        } else {
            warnings.append("image \(key): no Metadata; axes left uncalibrated")
        }
        let br = om["BinaryResult"]
        let title = labels[key] ?? br?["Detector"]?.stringValue ?? "image"
        var axes: [Axis] = []
        if n > 1 {
            var frameAxis = Axis(name: "frame", size: n, role: .navigation, longName: "frame")
            if let ft = double(om["Scan"]?["FrameTime"]) {
                frameAxis = Axis(name: "time", size: n, role: .navigation, units: "s", calibration: .uniform(offset: 0, scale: ft), longName: "time")
            } else if let idx = br?["DetectorIndex"]?.stringValue, let et = double(om["Detectors"]?["Detector-\(idx)"]?["ExposureTime"]) {
                frameAxis = Axis(name: "time", size: n, role: .navigation, units: "s", calibration: .uniform(offset: 0, scale: et), longName: "time")
            }
            axes.append(frameAxis)
        }
        axes += spatialAxes(br, h: h, w: w, role: .signal, key: key, warnings: &warnings)
        var md = normalized(om)
        md.detectorName = detectorName(om) ?? labels[key]
        if n > 1 { md.extra["frames"] = String(n) }
        var orig: [(String, MetaValue)] = [("group", .string(g.path)), ("metadata", om)]
        if !perFrame.isEmpty { orig.append(("per_frame", .object(perFrame))) }
        let isDiffraction = (br?["PixelUnitX"]?.stringValue ?? "").hasPrefix("1/")
        let kind = n > 1 ? "stack" : (isDiffraction ? "diffraction" : "image")
        var conventions = ["axis_order": "Velox stores (y, x, frame); exposed frame-first (frame, y, x)"]
        if complex != nil {
            conventions["complex"] = "Velox compound {\(complex!.0), \(complex!.1)} read as complex values" +
                (title.contains("FFT") ? "; half spectrum as stored (not mirrored)" : "")
        }
        let src = VeloxImageSource(file: file, dataset: d, h: h, w: w, type: type, complex: complex)
        return Dataset(name: "image", title: title, axes: axes, elementType: type, frameRank: 2,
                       quantity: "intensity", signalKind: kind, metadata: md, original: .object(orig),
                       conventions: conventions, source: src)
    }

    /// Per-frame leaves that differ from frame 0 (time stamps …), as arrays over frames.
    static func frameDifferences(_ m: HDF5Dataset, first: MetaValue, frames: Int) throws -> [(String, MetaValue)] {
        guard frames > 1 else { return [] }
        var base: [(String, MetaValue)] = []
        first.flattened(into: &base)
        let baseDict = Dictionary(base, uniquingKeysWith: { a, _ in a })
        var all: [[String: MetaValue]] = []
        var changed = Set<String>()
        for f in 1..<min(frames, 10_000) {
            var leaves: [(String, MetaValue)] = []
            (try frameMetadata(m, frame: f)).flattened(into: &leaves)
            let dict = Dictionary(leaves, uniquingKeysWith: { a, _ in a })
            for (k, v) in dict where baseDict[k] != v { changed.insert(k) }
            all.append(dict)
        }
        return changed.sorted().map { k in (k, .array([baseDict[k] ?? .null] + all.map { $0[k] ?? .null })) }
    }

    /// y, x axes from BinaryResult PixelSize/Offset/PixelUnitX (m → nm, 1/m → 1/nm).
    static func spatialAxes(_ br: MetaValue?, h: Int, w: Int, role: AxisRole, key: String, warnings: inout [String]) -> [Axis] {
        guard let br, let sw = double(br["PixelSize"]?["width"]), let sh = double(br["PixelSize"]?["height"]) else {
            return [Axis(name: "y", size: h, role: role), Axis(name: "x", size: w, role: role)]
        }
        let ux = br["PixelUnitX"]?.stringValue ?? ""
        let uy = br["PixelUnitY"]?.stringValue ?? ux
        let ox = double(br["Offset"]?["x"]) ?? 0
        let oy = double(br["Offset"]?["y"]) ?? 0
        if ux != uy { warnings.append("image \(key): x and y pixel units differ (\(ux), \(uy))") }
        func conv(_ u: String) -> (Double, String) {
            switch u {
            case "m": return (1e9, "nm")
            case "1/m": return (1e-9, "1/nm")
            default: return (1, EMDUnits.normalize(u))
            }
        }
        let (fx, nx) = conv(ux), (fy, ny) = conv(uy)
        return [Axis(name: "y", size: h, role: role, units: ny, calibration: .uniform(offset: oy * fy, scale: sh * fy), longName: "y"),
                Axis(name: "x", size: w, role: role, units: nx, calibration: .uniform(offset: ox * fx, scale: sw * fx), longName: "x")]
    }

    /// The physical detector: Detectors[Detector-<DetectorIndex>].DetectorName, else BinaryResult.Detector.
    static func detectorName(_ om: MetaValue) -> String? {
        if let idx = om["BinaryResult"]?["DetectorIndex"]?.stringValue,
           let n = om["Detectors"]?["Detector-\(idx)"]?["DetectorName"]?.stringValue { return n }
        return om["BinaryResult"]?["Detector"]?.stringValue
    }

    /// Normalized metadata from one Velox metadata document (values as stated, SI units).
    static func normalized(_ om: MetaValue) -> NormalizedMetadata {
        var md = NormalizedMetadata()
        if let v = double(om["Optics"]?["AccelerationVoltage"]) { md.beamEnergy = Quantity(v, "V") }
        if let v = double(om["Optics"]?["CameraLength"]) { md.cameraLength = Quantity(v, "m") }
        if let v = double(om["Optics"]?["NominalMagnification"]), v > 0 { md.magnification = v }
        else if let v = double(om["CustomProperties"]?["StemMagnification"]?["value"]) { md.magnification = v }
        if let v = double(om["Optics"]?["BeamConvergence"]) { md.convergenceSemiAngle = Quantity(v, "rad") }
        if let v = double(om["Optics"]?["ScreenCurrent"]) { md.extra["screen_current"] = "\(fmt(v)) A" }
        if let v = double(om["Scan"]?["DwellTime"]) { md.dwellTime = Quantity(v, "s") }
        if let v = double(om["Scan"]?["FrameTime"]) { md.frameTime = Quantity(v, "s") }
        if let v = double(om["Scan"]?["ScanRotation"]) { md.scanRotation = Quantity(v, "rad") }
        if let sw = om["Scan"]?["ScanSize"]?["width"]?.intValue, let sh = om["Scan"]?["ScanSize"]?["height"]?.intValue, sw > 0, sh > 0 {
            md.extra["scan_size"] = "\(sh)x\(sw) (Velox Scan.ScanSize, height x width)"
        }
        if let idx = om["BinaryResult"]?["DetectorIndex"]?.stringValue,
           let et = double(om["Detectors"]?["Detector-\(idx)"]?["ExposureTime"]) { md.exposureTime = Quantity(et, "s") }
        if let i = om["Instrument"] {
            md.instrumentVendor = i["Manufacturer"]?.stringValue
            let model = [i["InstrumentClass"]?.stringValue, i["InstrumentModel"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }
            if !model.isEmpty { md.instrumentModel = model.joined(separator: " ") }
            if let id = i["InstrumentId"]?.stringValue { md.instrumentName = id }
            if let sw = i["ControlSoftwareVersion"]?.stringValue { md.extra["microscope_control_software_version"] = sw }
        }
        if let s = om["Stage"] {
            for (k, u) in [("x", "m"), ("y", "m"), ("z", "m")] {
                if let v = double(s["Position"]?[k]) { md.extra["stage_\(k)"] = "\(fmt(v)) \(u)" }
            }
            if let v = double(s["AlphaTilt"]) { md.extra["stage_alpha_tilt"] = "\(fmt(v)) rad" }
            if let v = double(s["BetaTilt"]) { md.extra["stage_beta_tilt"] = "\(fmt(v)) rad" }
        }
        if let t = om["Acquisition"]?["AcquisitionStartDatetime"]?["DateTime"]?.stringValue, let secs = Double(t), secs > 0,
           let ts = Timestamp.unix(secs, utcOffsetSeconds: 0, raw: t + " (Unix seconds, UTC)") {
            md.startTime = ts
        }
        md.softwareName = "Velox"
        return md
    }

    // MARK: Spectra

    /// Energy axis (eV) of the detector named by BinaryResult.Detector (Dispersion, OffsetEnergy in eV).
    static func energyAxis(_ om: MetaValue, size: Int) -> Axis? {
        guard let name = om["BinaryResult"]?["Detector"]?.stringValue, case let .object(dets)? = om["Detectors"] else { return nil }
        for (_, d) in dets {
            guard let dn = d["DetectorName"]?.stringValue, dn.contains(name) || name.contains(dn),
                  let disp = double(d["Dispersion"]), let off = double(d["OffsetEnergy"]) else { continue }
            return Axis(name: "energy", size: size, role: .signal, units: "eV", calibration: .uniform(offset: off, scale: disp), longName: "X-ray energy")
        }
        return nil
    }

    static func spectrumDataset(_ g: HDF5Group, key: String, file: HDF5File, warnings: inout [String]) throws -> Dataset? {
        guard let d = g.openDataset("Data"), let type = d.elementType else {
            throw EMError(.badInput, file: file.path, at: g.path, "no readable Data array")
        }
        let shape = d.shape
        guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
            throw EMError(.badInput, file: file.path, at: d.path, "spectrum data has shape \(shape), expected (channels, n)")
        }
        let (c, n) = (shape[0], shape[1])
        var om: MetaValue = .object([])
        if let m = g.openDataset("Metadata") {
            do { om = try frameMetadata(m, frame: 0) } catch let e as EMError { warnings.append("spectrum \(key): \(e.message)") }
        }
        var energy = energyAxis(om, size: c) ?? Axis(name: "energy", size: c, role: .signal, longName: "channel")
        energy.role = .signal
        if energyAxis(om, size: c) == nil { warnings.append("spectrum \(key): no energy calibration found; channel axis uncalibrated") }
        var axes = [energy]
        if n > 1 { axes.insert(Axis(name: "spectrum", size: n, role: .navigation), at: 0) }
        var md = normalized(om)
        md.detectorName = om["BinaryResult"]?["Detector"]?.stringValue
        return Dataset(name: "spectrum", title: "EDS " + (md.detectorName ?? ""), axes: axes, elementType: type,
                       frameRank: 1, quantity: "counts", signalKind: "eds", metadata: md,
                       original: .object([("group", .string(g.path)), ("metadata", om)]),
                       conventions: ["axis_order": "Velox stores (channels, n); exposed (n, channels)"],
                       source: VeloxColumnSource(file: file, dataset: d, rows: c, type: type))
    }
}

/// Frame i of a Velox (H, W, N) image: the hyperslab (H, W, 1) at [0, 0, i].
final class VeloxImageSource: FrameSource {
    func prepareReadingThread() { HDF5.silenceErrorsOnThisThread() }

    let file: HDF5File
    let dataset: HDF5Dataset
    let h: Int, w: Int
    let type: ElementType
    let complex: (String, String, Int)?

    init(file: HDF5File, dataset: HDF5Dataset, h: Int, w: Int, type: ElementType, complex: (String, String, Int)?) {
        self.file = file
        self.dataset = dataset
        self.h = h
        self.w = w
        self.type = type
        self.complex = complex
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try HDF5.lock.withLock {
            if let c = complex {
                try dataset.readComplex(start: [0, 0, index], count: [h, w, 1], realName: c.0, imagName: c.1, componentSize: c.2, into: buffer)
            } else {
                try dataset.read(start: [0, 0, index], count: [h, w, 1], as: type, into: buffer)
            }
        }
    }
}

/// Column i of a (rows, n) dataset: Velox spectra are stored channels-first.
final class VeloxColumnSource: FrameSource {
    func prepareReadingThread() { HDF5.silenceErrorsOnThisThread() }

    let file: HDF5File
    let dataset: HDF5Dataset
    let rows: Int
    let type: ElementType

    init(file: HDF5File, dataset: HDF5Dataset, rows: Int, type: ElementType) {
        self.file = file
        self.dataset = dataset
        self.rows = rows
        self.type = type
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try HDF5.lock.withLock { try dataset.read(start: [0, index], count: [rows, 1], as: type, into: buffer) }
    }
}

extension VeloxImageSource: StoredSizeReporting {
    var storedBytes: Int64? { HDF5.lock.withLock { dataset.knownStoredBytes } }
}

extension VeloxColumnSource: StoredSizeReporting {
    var storedBytes: Int64? { HDF5.lock.withLock { dataset.knownStoredBytes } }
}
