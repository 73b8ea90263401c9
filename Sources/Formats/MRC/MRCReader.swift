import EMCore
import Foundation

/// MRC (MRC2014 and the older CCP4/IMOD/FEI variants): images, frame stacks, volumes and
/// 4D-STEM movies (Velox export, Direct Electron), every mode emconv's model can hold, both
/// byte orders, FEI1/FEI2 extended headers, Direct Electron `_info.txt` and scan coordinates,
/// SerialEM `.mdoc`.
public enum MRCReader: FormatReader {
    public static let version = "1.0"
    static let mrcExtensions = ["mrc", "mrcs", "st", "ali", "rec", "map", "preali", "mrc2014"]

    public static let descriptor = FormatDescriptor(
        name: "mrc", longName: "MRC / MRC2014 (TFS Velox, Direct Electron, SerialEM)", aliases: ["mrc2014", "ccp4"],
        extensions: mrcExtensions, reads: true, writes: false,
        companions: "Direct Electron <id>_info.txt and <id>_scan_coordinates.csv beside the movie; SerialEM <name>.mrc.mdoc",
        options: [
            OptionSpec("scan-shape", .intList, valueName: "Y,X", help: "navigation (scan) shape, slowest first",
                       default: "from the Direct Electron _info.txt or the FEI extended header; else a frame stack"),
        ],
        notes: "Mode 12 (float16) is widened to float32, mode 101 (4-bit) unpacked to uint8 and mode 3 (complex int16) widened to complex64, each recorded as a convention. Axes keep the stored order (x fastest, first stored row = row 0).",
        signature: "'MAP ' at byte 208 with a plausible header (MRC2014); older files: a plausible header and an MRC extension"
    )

    public static func identify(_ probe: Probe) -> Identification {
        // A plausible header is enough: a truncated file then gets open's precise error.
        guard probe.head.count >= MRCHeader.size, let h = MRCHeader.parse(probe.head) else { return .no }
        if h.hasMapTag { return .yes }
        return mrcExtensions.contains(probe.fileExtension) ? .maybe : .no
    }

    public static func companions(of path: String) -> [String] {
        var out: [String] = []
        // The _info.txt is shared by the movie and the virtual/external images of one
        // acquisition; the movie (or the only MRC naming it) claims it.
        if let info = DEInfo.find(for: path), (try? DEInfo.read(info))?.looksLikeDE == true, isDEPrimary(path, info: info) {
            out.append(info)
            if let c = DEScanCoordinates.find(for: path) { out.append(c) }
        }
        if let m = MDoc.find(for: path) { out.append(m) }
        return out
    }

    /// The movie of a DE acquisition (`…_movie.mrc`), or any MRC when no movie is beside the info file.
    static func isDEPrimary(_ path: String, info: String) -> Bool {
        let stem = ((path as NSString).deletingPathExtension as NSString).lastPathComponent
        if stem.hasSuffix("_movie") { return true }
        let prefix = String(info.dropLast("_info.txt".count))
        let dir = (prefix as NSString).deletingLastPathComponent
        let base = (prefix as NSString).lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        return !names.contains { $0.hasPrefix(base + "_") && $0.lowercased().hasSuffix("_movie.mrc") }
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let file = try RandomAccessFile(path: path)
        guard file.size >= Int64(MRCHeader.size) else {
            if mrcExtensions.contains((path as NSString).pathExtension.lowercased()) {
                throw EMError.bad(path, offset: file.size, "file is truncated: the MRC header needs 1024 bytes but the file has \(file.size)")
            }
            throw FormatDeclined("shorter than an MRC header")
        }
        let hb = try file.read(at: 0, count: MRCHeader.size, what: "MRC header")
        guard let h = MRCHeader.parse(hb) else {
            let m = MRCHeader.i32(hb, 12, .little)
            throw FormatDeclined(MRCHeader.modes.contains(Int(m)) || MRCHeader.modes.contains(Int(MRCHeader.i32(hb, 12, .big)))
                ? "implausible MRC dimensions (nx, ny, nz at offset 0 must be positive) or extended header size (offset 92)"
                : "mode \(m) at offset 12 is not an MRC mode emconv reads (0, 1, 2, 3, 4, 6, 12, 101)")
        }
        var warnings: [String] = []
        var conventions: [String: String] = [:]
        if h.byteOrderSource != "machine stamp" { warnings.append("byte order: \(h.byteOrderSource)") }

        // Sizes, checked against the file before anything is allocated.
        guard h.dataOffset <= file.size else {
            throw EMError.bad(path, offset: 92, "extended header of \(h.nsymbt) bytes (nsymbt) runs past the end of the \(file.size)-byte file")
        }
        let frameDisk = Int64(h.frameBytesOnDisk)
        let room = file.size - h.dataOffset
        guard room >= frameDisk else {
            throw EMError.bad(path, offset: h.dataOffset,
                              "file is truncated: one \(h.ny)x\(h.nx) \(h.modeName) frame needs \(frameDisk) bytes after the headers but the file has \(room)")
        }
        let complete = Int(min(Int64(h.nz), room / frameDisk))
        if complete < h.nz {
            warnings.append("file is truncated: the header says \(h.nz) frames, the file holds \(complete) complete frames (ends \(room - Int64(complete) * frameDisk) bytes into frame \(complete + 1)); kept \(complete)")
        } else if room > Int64(h.nz) * frameDisk {
            warnings.append("\(room - Int64(h.nz) * frameDisk) bytes after the last frame are not part of the data and were not converted")
        }

        // Extended header.
        var feiRecord: FEIRecord?
        var extDescription = h.nsymbt > 0 ? "extended header \(h.exttyp.isEmpty ? "(untyped)" : h.exttyp), \(h.nsymbt) bytes" : "no extended header"
        if h.nsymbt > 0, h.exttyp == "FEI1" || h.exttyp == "FEI2" {
            let first = try file.read(at: Int64(MRCHeader.size), count: min(h.nsymbt, 4096), what: "\(h.exttyp) extended header")
            guard let r = FEIRecord.parse(first) else {
                throw EMError.bad(path, offset: Int64(MRCHeader.size), "\(h.exttyp) extended header: record size \(MRCHeader.i32(first + [0, 0, 0, 0], 0, .little)) is not between 12 and \(first.count) bytes")
            }
            feiRecord = r
            extDescription = "extended header \(h.exttyp) (metadata version \(r.version), \(h.nsymbt / r.size) records of \(r.size) bytes)"
        } else if h.nsymbt > 0 {
            extDescription += " (skipped)"
        }

        // Companions.
        var files = [path]
        var handles = [file]
        var info: DEInfo?
        if let p = DEInfo.find(for: path) {
            do {
                let i = try DEInfo.read(p)
                if i.looksLikeDE { info = i } else { warnings.append("\((p as NSString).lastPathComponent) has no Direct Electron keys: not used") }
            } catch let e as EMError {
                warnings.append("Direct Electron info not used: \(e.description)")
            }
        }
        if let info {
            files.append(info.path)
            if info.unparsedLines > 0 { warnings.append("\((info.path as NSString).lastPathComponent): \(info.unparsedLines) lines are not 'key = value' and were skipped") }
        }
        var mdoc: MDoc?
        if let p = MDoc.find(for: path) {
            do { mdoc = try MDoc.read(p) } catch let e as EMError { warnings.append(".mdoc not used: \(e.description)") }
        }
        if let mdoc { files.append(mdoc.path) }

        // Navigation.
        // A volume states a z extent; movies (DE writes ispg 1) and stacks do not.
        let isVolume = h.nz > 1 && (1...230).contains(h.ispg) && h.mz == h.nz && h.cell.2 > 0
        var nav: [Int] = complete > 1 ? [complete] : []
        var navSource = ""
        var coordinates: DEScanCoordinates?
        var plausible4D = false
        if let s = try options.ints("scan-shape") {
            guard s.allSatisfy({ $0 > 0 }), let need = product(s), need <= complete else {
                throw EMError(.usage, file: path, "--scan-shape \(s.map(String.init).joined(separator: ",")) needs more frames than the file's \(complete)")
            }
            if need < complete { warnings.append("--scan-shape uses \(need) of \(complete) frames; the rest are not converted") }
            nav = s
            navSource = "--scan-shape"
        } else if let info, info.scanEnabled, complete > 1 || h.nz > 1 {
            plausible4D = true
            if info.isRaster, let s = info.rasterShape {
                (nav, navSource) = fitScan(s, complete: complete, nz: h.nz, source: "_info.txt Scan - Size", warnings: &warnings)
            } else if !info.isRaster {
                if let cp = DEScanCoordinates.find(for: path) {
                    let c = try DEScanCoordinates.read(cp, maxRows: max(complete, h.nz) + 1)
                    files.append(cp)
                    let n = min(c.x.count, complete)
                    if c.x.count != complete {
                        warnings.append("\((cp as NSString).lastPathComponent) lists \(c.x.count) scan positions for \(complete) frames; kept \(n) frames with positions")
                    }
                    coordinates = DEScanCoordinates(path: cp, x: Array(c.x.prefix(n)), y: Array(c.y.prefix(n)))
                    nav = [n]
                    navSource = "scan coordinates (\((cp as NSString).lastPathComponent)), measured order"
                } else {
                    warnings.append("\(info["Scan - Type"] ?? "custom") scan without a _scan_coordinates.csv: frames kept as a stack of \(complete) in acquisition order")
                }
            }
        } else if let r = feiRecord, let s = r.scanShape, complete > 1, product(s) == h.nz {
            plausible4D = true
            (nav, navSource) = fitScan(s, complete: complete, nz: h.nz, source: "\(h.exttyp) extended header scan size", warnings: &warnings)
        } else if complete > 1, feiRecord?.stemDetector != nil || feiRecord?.scanShape != nil {
            plausible4D = true
        }
        let is4D = nav.count >= 2 || coordinates != nil
        if complete > 1, !is4D, plausible4D {
            warnings.append("scan shape unknown: the \(complete) frames are kept as a stack (give --scan-shape Y,X for 4D-STEM)")
        }
        if !is4D && complete > 1 && nav.count == 1 && navSource.isEmpty {
            navSource = isVolume ? "volume (ispg \(h.ispg))" : "frame stack"
        }

        // Calibration.
        var md = NormalizedMetadata()
        var calSource: [String] = []
        func cellScale(_ len: Double, _ m: Int) -> Double? { (m > 0 && len > 0) ? len / Double(m) / 10 : nil }
        let sx = cellScale(h.cell.0, h.mx), sy = cellScale(h.cell.1, h.my), sz = cellScale(h.cell.2, h.mz)
        if (h.cell.0 < 0 || h.cell.1 < 0) {
            conventions["emconv_mrc_cell"] = "cell dimensions (\(fmt(h.cell.0)), \(fmt(h.cell.1)), \(fmt(h.cell.2))) Å are not positive: not used as a pixel size"
        }
        var imageX: (Double, Double, String)?, imageY: (Double, Double, String)?
        if let sx, let sy {
            imageX = (h.origin.0 / 10, sx, "nm"); imageY = (h.origin.1 / 10, sy, "nm")
            calSource.append("image axes: MRC cell / mx,my (Å → nm), origin (Å → nm) as offset")
        } else if let r = feiRecord, let p = r.pixelSize {
            imageX = (0, p.0 * 1e9, "nm"); imageY = (0, p.1 * 1e9, "nm")
            calSource.append("image axes: \(h.exttyp) pixel size (m → nm)")
        } else if let mdoc, let p = mdoc.pixelSpacing {
            imageX = (0, p / 10, "nm"); imageY = (0, p / 10, "nm")
            calSource.append("image axes: .mdoc PixelSpacing (Å → nm)")
        }
        let deScanX = info?.double("Specimen Pixel Size X (nanometers)").flatMap { $0 > 0 ? $0 : nil }
        let deScanY = info?.double("Specimen Pixel Size Y (nanometers)").flatMap { $0 > 0 ? $0 : nil }

        var axes: [Axis] = []
        let frameName: (String, String)
        var kind: String
        var dsName: String
        if is4D {
            kind = "4d-stem"
            dsName = "4d_stem"
            frameName = ("det_y", "det_x")
            if let coordinates {
                axes.append(Axis(name: "scan_point", size: coordinates.x.count, role: .navigation,
                                 longName: "scan position in acquisition order (positions in dataset scan_coordinates)"))
                conventions["emconv_scan_order"] = "frames kept in measured order; the scan positions (x, y) of every frame are the dataset 'scan_coordinates', not re-gridded"
                md.scanShape = [(coordinates.y.max() ?? 0) + 1, (coordinates.x.max() ?? 0) + 1]
                md.scanShapeSource = "extent of \((coordinates.path as NSString).lastPathComponent)"
            } else {
                var scanCal: ((Double, String), (Double, String))?
                if let deScanX, let deScanY, info != nil {
                    scanCal = ((deScanY, "nm"), (deScanX, "nm"))
                    calSource.append("scan axes: _info.txt Specimen Pixel Size (nanometers)")
                } else if let r = feiRecord, let p = r.pixelSize {
                    scanCal = ((p.1 * 1e9, "nm"), (p.0 * 1e9, "nm"))
                    calSource.append("scan axes: \(h.exttyp) pixel size (m → nm)")
                }
                let names = nav.count == 3 ? ["repeat", "scan_y", "scan_x"] : (nav.count == 2 ? ["scan_y", "scan_x"] : nav.indices.map { "nav_\($0)" })
                for (i, n) in nav.enumerated() {
                    var a = Axis(name: names[i], size: n, role: .navigation)
                    if let scanCal, names[i] == "scan_y" { a.units = scanCal.0.1; a.calibration = .uniform(offset: 0, scale: scanCal.0.0) }
                    if let scanCal, names[i] == "scan_x" { a.units = scanCal.1.1; a.calibration = .uniform(offset: 0, scale: scanCal.1.0) }
                    a.longName = names[i] == "scan_y" ? "scan position y" : (names[i] == "scan_x" ? "scan position x" : nil)
                    axes.append(a)
                }
                md.scanShape = Array(nav.suffix(2))
                md.scanShapeSource = navSource
            }
            conventions["emconv_detector_calibration"] = "detector axes in pixels: the MRC header and its companions state no reciprocal-space calibration with units"
            if info != nil {
                conventions["emconv_de_calibration"] = "scan axes from _info.txt 'Specimen Pixel Size X/Y (nanometers)'; detector axes uncalibrated ('Diffraction Pixel Size' has no unit in the file). RosettaSciIO 0.15 sets every Direct Electron axis scale to 1 (units nm and nm^-1)."
            }
        } else {
            frameName = ("y", "x")
            let count = nav.first ?? 1
            if count > 1 {
                if isVolume {
                    kind = "image"; dsName = "volume"
                    var a = Axis(name: "z", size: count, role: .navigation, longName: "section")
                    if let sz { a.units = "nm"; a.calibration = .uniform(offset: h.origin.2 / 10, scale: sz) }
                    axes.append(a)
                } else {
                    kind = "stack"; dsName = "stack"
                    var a = Axis(name: "frame", size: count, role: .navigation, longName: "frame number")
                    if let info, !info.scanEnabled, let t = info.double("Frame Time (nanoseconds)"), t > 0 {
                        a.name = "time"; a.units = "s"; a.calibration = .uniform(offset: 0, scale: t * 1e-9); a.longName = "time (frame time from _info.txt)"
                    }
                    axes.append(a)
                }
            } else {
                kind = "image"; dsName = "image"
                // A DE virtual/external image is a scan image: its pixels are scan positions.
                if imageX == nil, let info, let s = info.rasterShape, Array(s.suffix(2)) == [h.ny, h.nx], let deScanX, let deScanY {
                    imageX = (0, deScanX, "nm"); imageY = (0, deScanY, "nm")
                    calSource.append("image axes: _info.txt Specimen Pixel Size (nanometers) (a scan image)")
                }
            }
        }
        var ay = Axis(name: frameName.0, size: h.ny, role: .signal, longName: is4D ? "detector row (pixel)" : "row")
        var ax = Axis(name: frameName.1, size: h.nx, role: .signal, longName: is4D ? "detector column (pixel)" : "column")
        if !is4D {
            if let c = imageY { ay.units = c.2; ay.calibration = .uniform(offset: c.0, scale: c.1) }
            if let c = imageX { ax.units = c.2; ax.calibration = .uniform(offset: c.0, scale: c.1) }
        }
        axes += [ay, ax]
        if !calSource.isEmpty { conventions["emconv_calibration_source"] = calSource.joined(separator: "; ") }
        if (h.mapc, h.mapr, h.maps) != (1, 2, 3), (h.mapc, h.mapr, h.maps) != (0, 0, 0) {
            conventions["emconv_mrc_axis_map"] = "axes in stored order (columns fastest); the header maps columns, rows, sections to axes \(h.mapc), \(h.mapr), \(h.maps) (MAPC/MAPR/MAPS)"
        }

        // Storage conversion.
        let elementType = h.elementType
        switch h.storage {
        case .float16: conventions["emconv_mrc_mode"] = "mode 12 (IEEE float16) widened to float32 exactly"
        case .complexInt16: conventions["emconv_mrc_mode"] = "mode 3 (complex int16 pairs) widened to complex64 exactly"
        case .nibbles: conventions["emconv_mrc_mode"] = "mode 101 (4-bit, two per byte, low nibble first, rows padded to whole bytes) unpacked to uint8"
        case .plain(.uint8): conventions["emconv_mrc_mode"] = "mode 0 read as unsigned bytes: IMOD stamp without the signed-bytes flag"
        default: break
        }
        conventions["emconv_orientation"] = "on-disk order: x (columns) fastest, row 0 = first stored row (as RosettaSciIO and mrcfile)"

        let source: FrameSource
        switch h.storage {
        case .plain:
            let cs = elementType.componentSize
            source = StridedFrameSource(file: file, firstFrame: h.dataOffset, stride: frameDisk, frameBytes: h.frameBytesOnDisk,
                                        fix: h.byteOrder != .native && cs > 1 ? .swap(cs) : .none)
        default:
            source = MRCConvertingSource(file: file, header: h)
        }

        // Metadata.
        if let r = feiRecord {
            if let v = r.ht { md.beamEnergy = Quantity(v, "V") }
            md.magnification = r.magnification
            if let c = r.cameraLength { md.cameraLength = Quantity(c, "m") }
            if let d = r.dwellTime { md.dwellTime = Quantity(d, "s") }
            if let t = r.frameTime { md.frameTime = Quantity(t, "s") }
            if let e = r.integrationTime { md.exposureTime = Quantity(e, "s") }
            md.detectorName = r.stemDetector ?? r.cameraName
            md.instrumentModel = r.microscope
            md.softwareName = r.application
            md.softwareVersion = r.applicationVersion
            if let s = r.scanShape { md.extra["fei_scan_area"] = "\(s[0]) x \(s[1]) (rows x columns)" }
        }
        info?.apply(to: &md)
        mdoc?.apply(to: &md)
        if let s = md.scanShape, s.isEmpty { md.scanShape = nil }

        var tree: [(String, MetaValue)] = [("header", h.metaValue)]
        if let r = feiRecord { tree.append(("extended_header_first_record", r.metaValue)) }
        if let info { tree.append(("de_info", info.metaValue)) }
        if let mdoc { tree.append(("mdoc", mdoc.metaValue)) }
        tree.append(("navigation_shape_source", .string(navSource)))

        var datasets = [Dataset(name: dsName, title: (path as NSString).lastPathComponent, axes: axes, elementType: elementType,
                                sourceByteOrder: h.byteOrder, frameRank: 2, quantity: "intensity", signalKind: kind, metadata: md,
                                conventions: conventions, source: source)]
        if let c = coordinates {
            datasets.append(scanCoordinateDataset(c, pixel: deScanX.flatMap { x in deScanY.map { (x, $0) } }))
        }
        let generation = h.hasMapTag ? "MRC2014\(h.nversion > 0 ? " (nversion \(h.nversion))" : "")" : "MRC (pre-2014, no MAP tag)"
        let shape = is4D ? "4D-STEM \(nav.map(String.init).joined(separator: "x")) scan of \(h.ny)x\(h.nx)"
            : (complete > 1 ? "\(isVolume ? "volume" : "stack") of \(complete) \(h.ny)x\(h.nx) frames" : "\(h.ny)x\(h.nx) image")
        let variant = "\(generation), \(h.modeName), \(h.byteOrder.rawValue)-endian (\(h.byteOrderSource)), \(extDescription), \(shape)"
        for p in files.dropFirst() { handles.append(try RandomAccessFile(path: p)) }
        return OpenedFile(path: path, format: descriptor.name, variant: variant, datasets: datasets, files: files,
                          original: .object(tree), warnings: warnings, readerName: "mrc", readerVersion: version, handles: handles)
    }

    /// A raster scan shape against the frames present: kept when they match; complete lines of
    /// a short file; the leading frames of a long one.
    static func fitScan(_ s: [Int], complete: Int, nz: Int, source: String, warnings: inout [String]) -> ([Int], String) {
        var s = s
        guard let need = product(s) else {
            warnings.append("scan \(s.map(String.init).joined(separator: "x")) (\(source)) is impossibly large: kept as a frame stack")
            return ([complete], "frame count")
        }
        if need == complete { return (s, source) }
        if need > complete {
            let line = s.dropFirst().reduce(1, *)
            let lines = complete / line
            if lines == 0 {
                warnings.append("scan \(s.map(String.init).joined(separator: "x")) (\(source)) needs \(need) frames, the file has \(complete): kept as a frame stack")
                return ([complete], "frame count (scan incomplete)")
            }
            warnings.append("scan \(s.map(String.init).joined(separator: "x")) (\(source)) needs \(need) frames, the file has \(complete): kept \(lines) complete lines (\(lines * line) frames)")
            s[0] = lines
            return (s, source + ", incomplete")
        }
        warnings.append("the file has \(complete) frames, the scan \(s.map(String.init).joined(separator: "x")) (\(source)) uses \(need); \(complete - need) extra frames are not converted")
        return (s, source)
    }

    /// Product of positive sizes, nil on overflow.
    static func product(_ s: [Int]) -> Int? {
        var p = 1
        for v in s {
            let (r, o) = p.multipliedReportingOverflow(by: v)
            if o || v <= 0 { return nil }
            p = r
        }
        return p
    }

    static func scanCoordinateDataset(_ c: DEScanCoordinates, pixel: (Double, Double)?) -> Dataset {
        var values = [Double](repeating: 0, count: c.x.count * 2)
        for i in c.x.indices {
            values[2 * i] = Double(c.x[i]) * (pixel?.0 ?? 1)
            values[2 * i + 1] = Double(c.y[i]) * (pixel?.1 ?? 1)
        }
        let axes = [Axis(name: "scan_point", size: c.x.count, role: .navigation, longName: "scan position in acquisition order"),
                    Axis(name: "xy", size: 2, role: .signal, longName: "x, y")]
        return Dataset(name: "scan_coordinates", title: (c.path as NSString).lastPathComponent, axes: axes, elementType: .float64,
                       frameRank: 1, quantity: "scan position", quantityUnits: pixel == nil ? "" : "nm", signalKind: "spectrum",
                       conventions: ["emconv_scan_coordinates": pixel == nil
                           ? "scan grid indices (x, y) from \((c.path as NSString).lastPathComponent), in frame order"
                           : "scan positions (x, y) in nm: grid indices from \((c.path as NSString).lastPathComponent) times the _info.txt Specimen Pixel Size"],
                       source: ArrayFrameSource(values: values, perFrame: 2))
    }
}

/// Frames of a list of doubles held in memory (scan coordinates).
final class ArrayFrameSource: FrameSource, @unchecked Sendable {
    let values: [Double]
    let perFrame: Int
    init(values: [Double], perFrame: Int) { self.values = values; self.perFrame = perFrame }
    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        values.withUnsafeBytes { src in
            let n = perFrame * 8
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + index * n, byteCount: n)
        }
    }
}

/// MRC frames whose stored values need widening or unpacking (modes 3, 12, 101).
final class MRCConvertingSource: FrameSource, @unchecked Sendable {
    let file: RandomAccessFile
    let header: MRCHeader
    private var scratch: [UInt8]

    init(file: RandomAccessFile, header: MRCHeader) {
        self.file = file
        self.header = header
        scratch = [UInt8](repeating: 0, count: header.frameBytesOnDisk)
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let h = header
        let off = h.dataOffset + Int64(index) * Int64(h.frameBytesOnDisk)
        try scratch.withUnsafeMutableBytes { try file.read(at: off, into: $0, what: "frame \(index + 1)") }
        let swap = h.byteOrder != .native
        let n = h.nx * h.ny
        scratch.withUnsafeBytes { raw in
            switch h.storage {
            case .float16:
                let src = raw.bindMemory(to: UInt16.self)
                let dst = buffer.bindMemory(to: Float.self)
                for i in 0..<n { dst[i] = halfToFloat(swap ? src[i].byteSwapped : src[i]) }
            case .complexInt16:
                let src = raw.bindMemory(to: UInt16.self)
                let dst = buffer.bindMemory(to: Float.self)
                for i in 0..<(2 * n) { dst[i] = Float(Int16(bitPattern: swap ? src[i].byteSwapped : src[i])) }
            case .nibbles:
                let src = raw.bindMemory(to: UInt8.self)
                let dst = buffer.bindMemory(to: UInt8.self)
                let rb = h.rowBytes
                for r in 0..<h.ny {
                    let row = r * rb, out = r * h.nx
                    for c in 0..<h.nx {
                        let b = src[row + c / 2]
                        dst[out + c] = c & 1 == 0 ? b & 0x0F : b >> 4
                    }
                }
            case .plain:
                break
            }
        }
    }
}

/// IEEE 754 binary16 → binary32, exactly (subnormals, infinities and NaN included).
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = Int(h >> 10) & 0x1F
    let frac = UInt32(h & 0x03FF)
    if exp == 0 {
        if frac == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = frac × 2^-24.
        let v = Float(frac) * Float(bitPattern: 0x3380_0000)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | frac << 13) }
    return Float(bitPattern: sign | UInt32(exp + 112) << 23 | frac << 13)
}
