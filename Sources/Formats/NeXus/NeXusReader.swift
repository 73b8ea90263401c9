import CHDF5
import EMCore
import EMHDF5
import Foundation

/// Reads NeXus/HDF5: the files emconv writes (every NXimage/NXspectrum of
/// `/entry1/measurement/event1`, with normalized metadata from the NXem instrument groups and the
/// original metadata from the JSON NXnote), and generic NXdata from other tools (the `@default`
/// chain from the root to an NXdata, `@signal`, `@axes`, `AXISNAME_indices`, axis coordinates
/// and `@units`).
public enum NeXusReader: FormatReader {
    public static let descriptor = FormatDescriptor(
        name: "nexus", longName: "NeXus/HDF5 (NXem)", aliases: ["nxs", "hdf5", "h5", "nxem"],
        extensions: ["nxs", "h5", "hdf5", "nx5"], reads: true, writes: false,
        notes: "Reads emconv's NXem output and standard NXdata (@default chain, @signal, @axes, AXISNAME_indices).",
        container: "HDF5", signature: "an NXentry group (or a @default chain) leading to an NXdata with a @signal"
    )

    static let version = "1.0"
    static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// NeXus when the root names a default or holds an NXentry; `open` declines when no NXdata
    /// with a readable signal is found after all.
    public static func identify(_ probe: Probe) -> Identification {
        guard probe.isHDF5 else { return .no }
        guard let nexus = HDF5Peek.root(probe.path, { root -> Bool in
            if root.stringAttribute("default") != nil { return true }
            return root.groupNames.prefix(64).contains { root.openGroup($0)?.stringAttribute("NX_class") == "NXentry" }
        }) else { return .maybe }
        return nexus ? .yes : .no
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        try HDF5.lock.withLock { try openLocked(path) }
    }

    static func openLocked(_ path: String) throws -> OpenedFile {
        let h5 = try HDF5File(reading: path)
        return try h5.guarded { try read(h5, path: path) }
    }

    static func read(_ h5: HDF5File, path: String) throws -> OpenedFile {
        let root = h5.root
        let handle = try RandomAccessFile(path: path)
        var datasets: [Dataset] = []
        var warnings: [String] = []
        var original: MetaValue = .object([])
        var perDataset: [(String, MetaValue)] = []
        let isEmconv = root.stringAttribute("creator") == "emconv"

        if isEmconv, let entry = root.openGroup("entry1") {
            // Original metadata: the JSON note.
            for n in entry.childNames where n.hasPrefix("note") {
                guard let note = entry.openGroup(n), note.openDataset("type")?.readStrings()?.first == "application/json",
                      let text = note.openDataset("data")?.readStrings()?.first else { continue }
                do {
                    let tree = try MetaValue.parseJSON(text)
                    if case let .object(pairs) = tree, pairs.count == 2, pairs[0].0 == "file", pairs[1].0 == "datasets",
                       case let .object(per) = pairs[1].1 {
                        original = pairs[0].1
                        perDataset = per
                    } else {
                        original = tree
                    }
                } catch {
                    warnings.append("\(entry.path)/\(n)/data: the original-metadata JSON could not be parsed; it is kept as text")
                    original = .object([("text", .string(text))])
                }
            }
            if let note = entry.childNames.compactMap({ entry.openGroup($0) }).first(where: {
                $0.openDataset("description")?.readStrings()?.first == "warnings raised while reading the source" }),
               let text = note.openDataset("data")?.readStrings()?.first {
                warnings += text.split(separator: "\n").map(String.init)
            }
            let md = emconvMetadata(entry)
            if let event = entry.openGroup("measurement/event1") {
                for n in event.childNames {
                    guard let g = event.openGroup(n), let cls = g.stringAttribute("NX_class"), cls == "NXimage" || cls == "NXspectrum" else { continue }
                    for dn in g.childNames {
                        guard let nxd = g.openGroup(dn), nxd.stringAttribute("NX_class") == "NXdata" else { continue }
                        if let ds = try nxdata(nxd, file: path, handle: handle, metadata: md, emconv: true) {
                            if ds.name.isEmpty || datasets.contains(where: { $0.name == ds.name }) { ds.name = n }
                            if let o = perDataset.first(where: { $0.0 == ds.name })?.1 { ds.original = o }
                            ds.processing = processingSteps(g)
                            datasets.append(ds)
                        }
                    }
                }
            }
        }
        if isEmconv, let det = root.openGroup("entry1/measurement/instrument/detector1") {
            for ds in datasets where ds.processing.contains(where: { $0.name == "correct" }) { ds.auxiliary.merge(correctionMaps(det)) { a, _ in a } }
        }
        if datasets.isEmpty {
            guard let g = followDefault(root) ?? firstNXdata(root, depth: 0) else {
                throw FormatDeclined("no NXdata group found (no @default chain from the root and no NXdata in the first levels)")
            }
            if let ds = try nxdata(g, file: path, handle: handle, metadata: NormalizedMetadata(), emconv: false) {
                datasets.append(ds)
            } else {
                throw FormatDeclined("the NXdata \(g.path) holds no readable signal")
            }
            original = .object([("nexus_path", .string(g.path))])
        }
        let variant = isEmconv ? "emconv NXem, \(datasets.count) dataset(s)" : "NXdata \(datasets.first.map { $0.shape.map(String.init).joined(separator: "x") } ?? "")"
        return OpenedFile(path: path, format: "nexus", variant: variant, datasets: datasets, files: [path], original: original,
                          warnings: warnings, readerName: "nexus", readerVersion: version, handles: [handle])
    }

    /// The steps emconv recorded for a dataset (`processingK` NXprocess groups with their
    /// parameters as JSON), in order, so a re-conversion keeps its history; unreadable records are skipped.
    static func processingSteps(_ g: HDF5Group) -> [ProcessingStep] {
        g.childNames.compactMap { n -> (Int, ProcessingStep)? in
            guard n.hasPrefix("processing"), let k = Int(n.dropFirst("processing".count)),
                  let p = g.openGroup(n), p.stringAttribute("NX_class") == "NXprocess",
                  let params = p.openGroup("parameters"),
                  let text = params.openDataset("data")?.readStrings()?.first,
                  let json = try? MetaValue.parseJSON(text), let name = json["step"]?.stringValue else { return nil }
            return (k, ProcessingStep(name: name, parameters: json["parameters"] ?? .null,
                                      description: params.openDataset("description")?.readStrings()?.first ?? "",
                                      program: p.openDataset("program")?.readStrings()?.first ?? "emconv",
                                      version: p.openDataset("version")?.readStrings()?.first ?? ""))
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// emconv's correction maps (`correction_*` fields of the NXdetector), so a corrected dataset
    /// read back keeps the maps its `correct` step names. Fields that are not small numeric
    /// arrays are skipped.
    static func correctionMaps(_ det: HDF5Group) -> [String: AuxiliaryArray] {
        var out: [String: AuxiliaryArray] = [:]
        for n in det.childNames where n.hasPrefix("correction_") {
            guard let d = det.openDataset(n), let t = d.elementType, t == .float32 || t == .uint8 else { continue }
            // Sizes checked before anything is allocated (at most 2^24 values; no overflowing product).
            let shape = d.shape
            guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }) else { continue }
            var count = 1
            for n in shape { count = count > (1 << 24) ? count : count * n }
            guard count <= 1 << 24 else { continue }
            var bytes = [UInt8](repeating: 0, count: count * t.size)
            guard (try? bytes.withUnsafeMutableBytes { try d.read(start: shape.map { _ in 0 }, count: shape, as: t, into: $0) }) != nil else { continue }
            out[n] = AuxiliaryArray(elementType: t, shape: shape, bytes: bytes, description: d.stringAttribute("long_name"))
        }
        return out
    }

    /// Follows `@default` attributes from the root to an NXdata (NeXus v3 default chain).
    static func followDefault(_ root: HDF5Group) -> HDF5Group? {
        var g = root
        for _ in 0..<16 {
            if g.stringAttribute("NX_class") == "NXdata" { return g }
            guard let d = g.stringAttribute("default"), let next = g.openGroup(d) else { return nil }
            g = next
        }
        return nil
    }

    static func firstNXdata(_ g: HDF5Group, depth: Int) -> HDF5Group? {
        if g.stringAttribute("NX_class") == "NXdata" { return g }
        guard depth < 6 else { return nil }
        for n in g.childNames {
            if let c = g.openGroup(n), let r = firstNXdata(c, depth: depth + 1) { return r }
        }
        return nil
    }

    /// One NXdata → one Dataset (nil when it is a derived preview or holds no signal).
    static func nxdata(_ g: HDF5Group, file: String, handle: RandomAccessFile, metadata: NormalizedMetadata,
                       emconv: Bool) throws -> Dataset? {
        var signalName = g.stringAttribute("signal")
        if signalName == nil {
            signalName = g.childNames.first { g.openDataset($0)?.stringAttribute("signal") == "1" || g.openDataset($0)?.numericAttribute("signal") == [1] }
        }
        if signalName == nil, g.openDataset("data") != nil { signalName = "data" }
        guard let signalName, let sig = g.openDataset(signalName) else { return nil }
        // emconv's own facts: the NXcollection `emconv` in the NXdata (files written before it: @emconv_*
        // attributes on the NXdata, its axes and its signal).
        let own = g.openGroup("emconv").flatMap { $0.stringAttribute("NX_class") == "NXcollection" ? $0 : nil }
        if own?.exists("derived") == true || sig.stringAttribute("derived") == "true" { return nil }
        guard var type = sig.elementType else {
            throw EMError(.unsupported, file: file, at: sig.path, "the signal's HDF5 type is not supported")
        }
        // emconv writes complex data as NXem's `real` and `imag` fields; recombine them.
        var imag: HDF5Dataset?
        if (ownString(own, "complex") ?? g.stringAttribute("emconv_complex")) == "real+imag", let im = g.openDataset("imag"), im.shape == sig.shape,
           im.elementType == type, type == .float32 || type == .float64 {
            imag = im
            type = type == .float32 ? .complex64 : .complex128
        }
        // Booleans and RGB(A) are stored as uint8 (NXem's `real` is NX_NUMBER), RGB(A) with a
        // trailing channel dimension; restore them.
        var dropChannel = false
        let readType: ElementType = (type == .uint8) ? .uint8 : type
        if type == .uint8, let stored = ownString(own, "element_type") ?? g.stringAttribute("emconv_element_type") {
            if stored == "bool" { type = .bool }
            if (stored == "rgb8" && sig.shape.last == 3) || (stored == "rgba8" && sig.shape.last == 4) {
                type = stored == "rgb8" ? .rgb8 : .rgba8
                dropChannel = true
            }
        }
        let shape = sig.shape
        let rank = shape.count
        // Axis names per dimension: @axes (array or old ':'-separated string), then AXISNAME_indices.
        var axisNames = g.stringArrayAttribute("axes") ?? []
        if axisNames.count == 1, axisNames[0].contains(":") { axisNames = axisNames[0].split(separator: ":").map(String.init) }
        var perDim: [String?] = Array(repeating: nil, count: rank)
        for (i, n) in axisNames.enumerated() where n != "." {
            // Compared as a Double first: a damaged index (1e300, NaN) must not reach Int().
            if let idx = g.numericAttribute("\(n)_indices")?.first, idx >= 0, idx < Double(rank) {
                perDim[Int(idx)] = n
            } else if i < rank, perDim[i] == nil {
                perDim[i] = n
            }
        }
        let frameRank: Int
        if let fr = ownNumber(own, "frame_rank") ?? g.numericAttribute("emconv_frame_rank")?.first, fr >= 0, fr <= Double(rank) {
            frameRank = Int(fr)
        } else {
            frameRank = min(rank, g.stringAttribute("NX_class") == "NXdata" && g.path.contains("spectrum") ? 1 : 2)
        }
        let kind = ownString(own, "signal_kind") ?? g.stringAttribute("emconv_signal_kind") ?? (rank - frameRank == 2 && frameRank == 2 ? "4d-stem" : (frameRank == 1 ? "spectrum" : "image"))
        let defaultNames: [String] = {
            let navCount = rank - frameRank
            let nav = navCount == 2 ? ["scan_y", "scan_x"] : navCount == 1 ? ["frame"] : (0..<navCount).map { "nav_\($0)" }
            let sigNames = frameRank == 2 ? (kind == "4d-stem" || kind == "diffraction" ? ["det_y", "det_x"] : ["y", "x"])
                : frameRank == 1 ? ["energy"] : (0..<frameRank).map { "sig_\($0)" }
            return nav + sigNames
        }()
        var axes: [Axis] = []
        for d in 0..<rank {
            let role: AxisRole = d >= rank - frameRank ? .signal : .navigation
            var axis = Axis(name: defaultNames[d], size: shape[d], role: role)
            if let n = perDim[d], let a = g.openDataset(n) {
                // `emconv/AXIS_units`: the axis' own units where the writer put NXem's in @units.
                axis.units = ownString(own, "\(n)_units") ?? a.stringAttribute("units") ?? ""
                if let name = ownString(own, "\(n)_name") ?? a.stringAttribute("emconv_axis_name") {
                    axis.name = name
                } else if !emconv {
                    axis.name = n
                }
                let long = a.stringAttribute("long_name")
                if let long, long != axis.name, long != "\(axis.name) (\(axis.units))" { axis.longName = long }
                let cal = own?.openDataset("\(n)_calibration").flatMap { $0.shape == [2] ? try? readAll($0) : nil }
                if let off = cal?[0] ?? a.numericAttribute("emconv_offset")?.first,
                   let sc = cal?[1] ?? a.numericAttribute("emconv_scale")?.first {
                    axis.calibration = .uniform(offset: off, scale: sc)
                } else if a.shape.reduce(1, *) == shape[d] || (a.shape.reduce(1, *) == shape[d] + 1) {
                    var c = try readAll(a)
                    if c.count == shape[d] + 1 { c = (0..<shape[d]).map { (c[$0] + c[$0 + 1]) / 2 } } // bin edges → centres
                    axis.calibration = uniformIfLinear(c)
                }
            }
            axes.append(axis)
        }
        var title = ""
        if let t = g.openDataset("title")?.readStrings()?.first { title = t }
        // emconv keeps the intensity units out of @units (NXem's `real` is NX_UNITLESS).
        let unitsAttr = ownString(own, "quantity_units") ?? sig.stringAttribute("emconv_quantity_units") ?? sig.stringAttribute("units") ?? ""
        var quantity = sig.stringAttribute("long_name") ?? "intensity"
        if !unitsAttr.isEmpty, quantity.hasSuffix(" (\(unitsAttr))") { quantity = String(quantity.dropLast(unitsAttr.count + 3)) }
        var conventions: [String: String] = [:]
        for n in attributeNames(sig) where !["long_name", "units", "signal", "interpretation", "derived", "target", "emconv_quantity_units"].contains(n) {
            if let v = sig.stringAttribute(n) { conventions[n] = v }
        }
        let prefix = NeXusWriter.conventionPrefix
        for n in own?.childNames ?? [] where n.hasPrefix(prefix) {
            if let v = ownString(own, n) { conventions[String(n.dropFirst(prefix.count))] = v }
        }
        let source = HDF5HyperslabSource(owner: handle, dataset: sig, shape: shape, frameRank: frameRank, type: imag == nil ? readType : type, imag: imag)
        let ds = Dataset(name: ownString(own, "dataset_name") ?? g.stringAttribute("emconv_dataset_name") ?? "", title: title, axes: dropChannel ? Array(axes.dropLast()) : axes,
                       elementType: type, sourceByteOrder: .little, frameRank: dropChannel ? frameRank - 1 : frameRank,
                       quantity: quantity, quantityUnits: unitsAttr,
                       signalKind: kind, metadata: metadata, original: .object([]), conventions: conventions, source: source)
        // Frames stored in bands (corrected frames of a sparse detector) stay in bands.
        if !dropChannel, let chunk = sig.chunkShape, ChunkPlan.isFrameBandShape(chunk, of: ds) { ds.preferredChunkShape = chunk }
        return ds
    }

    /// A string field of emconv's NXcollection.
    static func ownString(_ own: HDF5Group?, _ name: String) -> String? { own?.openDataset(name)?.readStrings()?.first }

    /// A scalar numeric field of emconv's NXcollection.
    static func ownNumber(_ own: HDF5Group?, _ name: String) -> Double? {
        guard let d = own?.openDataset(name), d.shape.reduce(1, *) == 1 else { return nil }
        return try? readAll(d).first
    }

    /// All values of a small numeric dataset (scalar or any rank) as doubles.
    static func readAll(_ d: HDF5Dataset) throws -> [Double] { try d.readAllDoubles() }

    /// Uniform calibration when the coordinates are evenly spaced (to 1e-9 relative), else explicit.
    static func uniformIfLinear(_ c: [Double]) -> AxisCalibration {
        guard c.count >= 2 else { return .uniform(offset: c.first ?? 0, scale: 1) }
        let scale = (c[c.count - 1] - c[0]) / Double(c.count - 1)
        let tol = max(abs(scale), abs(c[0])) * 1e-9
        for (i, v) in c.enumerated() where abs(v - (c[0] + Double(i) * scale)) > tol { return .coordinates(c) }
        return .uniform(offset: c[0], scale: scale)
    }

    static func attributeNames(_ node: HDF5Node) -> [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(node.id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { return [] }
        var out: [String] = []
        for i in 0..<info.num_attrs {
            let l = H5Aget_name_by_idx(node.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            guard l >= 0, l < 1 << 16 else { continue }
            var buf = [CChar](repeating: 0, count: Int(l) + 1)
            H5Aget_name_by_idx(node.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
            out.append(String(cString: buf))
        }
        return out
    }

    // MARK: normalized metadata from emconv's NXem groups

    static func quantity(_ g: HDF5Group?, _ name: String) -> Quantity? {
        guard let d = g?.openDataset(name), let v = try? readAll(d).first else { return nil }
        return Quantity(v, d.stringAttribute("units") ?? "")
    }

    static func string(_ g: HDF5Group?, _ name: String) -> String? { g?.openDataset(name)?.readStrings()?.first }

    static func emconvMetadata(_ entry: HDF5Group) -> NormalizedMetadata {
        var md = NormalizedMetadata()
        let inst = entry.openGroup("measurement/instrument")
        md.instrumentName = string(inst, "name")
        md.instrumentVendor = string(inst?.openGroup("fabrication"), "vendor")
        md.instrumentModel = string(inst?.openGroup("fabrication"), "model")
        if let prog = inst?.openGroup("program1"), let p = prog.openDataset("program") {
            md.softwareName = p.readStrings()?.first
            md.softwareVersion = p.stringAttribute("version")
        }
        md.detectorName = string(inst?.openGroup("detector1"), "name")
        md.detectorModel = string(inst?.openGroup("detector1/fabrication"), "model")
        let ev = entry.openGroup("measurement/event1/instrument")
        md.beamEnergy = quantity(ev?.openGroup("ebeam_column/electron_source"), "voltage")
        md.dwellTime = quantity(ev?.openGroup("ebeam_column/scan_controller"), "dwell_time")
        let optics = ev?.openGroup("optics")
        md.cameraLength = quantity(optics, "camera_length")
        md.magnification = quantity(optics, "magnification")?.value
        md.convergenceSemiAngle = quantity(optics, "semi_convergence_angle")
        md.probeCurrent = quantity(optics, "probe_current")
        md.scanRotation = quantity(optics, "rotation")
        let det = ev?.openGroup("detector1")
        if let n = string(det, "name") { md.detectorName = n }
        if let m = string(det, "operation_mode"), m != "unknown" { md.detectorMode = m }
        md.exposureTime = quantity(det, "count_time")
        md.detectorThreshold = quantity(det, "threshold_energy")
        md.startTime = string(entry, "start_time").flatMap(Timestamp.parseISO)
        md.endTime = string(entry, "end_time").flatMap(Timestamp.parseISO)
        return md
    }
}
