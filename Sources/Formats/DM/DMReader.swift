import EMCore
import Foundation

/// Gatan DigitalMicrograph DM3/DM4 reader: the whole tag tree (lossless), every image of the
/// ImageList except thumbnails, every DataType, spectrum images and both 4D-STEM layouts.
public enum DMReader: FormatReader {
    public static let version = "1.0"

    /// Memory for the streaming transpose of spectrum images and transposed 4D-STEM (bytes).
    public static let defaultTransposeCacheBytes = 64 << 20

    public static let descriptor = FormatDescriptor(
        name: "dm", longName: "Gatan DigitalMicrograph DM3/DM4", aliases: ["dm3", "dm4", "gatan"], extensions: ["dm3", "dm4"],
        reads: true, writes: false,
        options: [
            OptionSpec("dm-transpose-cache", .int(min: 1), valueName: "bytes",
                       help: "memory for reordering spectrum images and transposed 4D-STEM on the fly", default: "67108864 (64 MiB)"),
        ],
        notes: "All DataTypes (packed complex unpacked, RGB(A) as R,G,B,A); spectrum images as (y, x, energy); "
            + "4D-STEM as (scan_y, scan_x, det_y, det_x) from both the C-order and the transposed layout.")

    public static func identify(_ probe: Probe) -> Identification {
        let h = probe.head
        guard h.count >= 24 else { return .no }
        func be32(_ o: Int) -> UInt32 { h[o..<(o + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        let v = be32(0)
        guard v == 3 || v == 4 else { return .no }
        let flagAt = v == 3 ? 8 : 12
        let flag = be32(flagAt)
        guard flag <= 1, h[flagAt + 4] <= 1, h[flagAt + 5] <= 1 else { return .no }
        return .yes
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let f = try RandomAccessFile(path: path)
        let tree = try DMTagParser.parse(f)
        var warnings: [String] = []
        var datasets: [Dataset] = []
        let root = tree.root
        var thumbs = Set<Int>()
        if case let .array(list)? = root["Thumbnails"] {
            for t in list { if let i = t["ImageIndex"]?.intValue { thumbs.insert(i) } }
        }
        guard case let .array(images)? = root["ImageList"] else {
            throw EMError.bad(path, field: "ImageList", "the file has no image list (not a DigitalMicrograph image file)")
        }
        var usedNames: [String: Int] = [:]
        let budget = try options.int("dm-transpose-cache") ?? defaultTransposeCacheBytes
        for (i, img) in images.enumerated() where !thumbs.contains(i) {
            guard let ds = try makeDataset(file: f, tree: tree, index: i, image: img, budget: budget, warnings: &warnings) else { continue }
            let n = usedNames[ds.name, default: 0]
            usedNames[ds.name] = n + 1
            if n > 0 { ds.name += "_\(n + 1)" }
            datasets.append(ds)
        }
        if datasets.isEmpty {
            throw EMError.bad(path, field: "ImageList", "the file holds no image data (only thumbnails or empty images)")
        }
        let original: MetaValue = .object([
            ("dm_version", .int(Int64(tree.version))), ("byte_order", .string(tree.byteOrder.rawValue)),
            ("root_length", .uint(tree.rootLength)), ("tags", root),
        ])
        return OpenedFile(path: path, format: descriptor.name, variant: "DM\(tree.version) \(tree.byteOrder.rawValue)-endian",
                          datasets: datasets, files: [path], original: original, warnings: warnings,
                          readerName: "dm", readerVersion: version, handles: [f])
    }

    /// Pixel type of a DM DataType: (element type, bytes per element on disk).
    static func pixelType(_ t: Int) -> (ElementType, Int)? {
        switch t {
        case 1: return (.int16, 2)
        case 2: return (.float32, 4)
        case 3: return (.complex64, 8)
        case 5: return (.complex64, 8)
        case 6: return (.uint8, 1)
        case 7: return (.int32, 4)
        case 8, 23: return (.rgba8, 4)
        case 9: return (.int8, 1)
        case 10: return (.uint16, 2)
        case 11: return (.uint32, 4)
        case 12: return (.float64, 8)
        case 13: return (.complex128, 16)
        case 14: return (.bool, 1)
        case 27: return (.complex64, 8)
        case 28: return (.complex128, 16)
        default: return nil
        }
    }

    static func asciiUnits(_ u: String) -> String {
        var s = u.replacingOccurrences(of: "\u{00B5}", with: "u").replacingOccurrences(of: "\u{03BC}", with: "u")
        s = s.replacingOccurrences(of: "\u{00C5}", with: "Angstrom").replacingOccurrences(of: "\u{212B}", with: "Angstrom")
        return s.trimmingCharacters(in: .whitespaces)
    }

    struct Cal { var origin = 0.0, scale = 1.0, units = "" }

    static func cal(_ v: MetaValue?) -> Cal {
        var c = Cal()
        if let o = v?["Origin"]?.doubleValue { c.origin = o }
        if let s = v?["Scale"]?.doubleValue { c.scale = s }
        if let u = v?["Units"]?.stringValue { c.units = u }
        return c
    }

    static func makeDataset(file f: RandomAccessFile, tree: DMTagTree, index i: Int, image img: MetaValue, budget: Int,
                            warnings: inout [String]) throws -> Dataset? {
        let path = f.path
        let field = "ImageList[\(i)].ImageData"
        guard let imageData = img["ImageData"] else {
            warnings.append("image \(i) has no ImageData; skipped")
            return nil
        }
        guard let ref = tree.arrays[DMTagTree.key(["ImageList", "[\(i)]", "ImageData", "Data"])] else {
            if imageData["Data"] == nil { warnings.append("image \(i) has no pixel data; skipped"); return nil }
            throw EMError.bad(path, field: field + ".Data", "pixel data is not an array of numbers")
        }
        guard let dt = imageData["DataType"]?.intValue else { throw EMError.bad(path, field: field + ".DataType", "missing pixel data type") }
        guard let (etype, diskBytes) = pixelType(dt) else {
            throw EMError(.unsupported, file: path, at: "field '\(field).DataType'", "DM data type \(dt) is not supported")
        }
        guard case let .array(dimVals)? = imageData["Dimensions"], !dimVals.isEmpty else {
            throw EMError.bad(path, field: field + ".Dimensions", "missing image dimensions")
        }
        var dims: [Int] = []
        var total = 1
        for d in dimVals {
            guard let n = d.intValue, n > 0 else { throw EMError.bad(path, field: field + ".Dimensions", "dimension \(d.stringValue ?? "?") is not a positive integer") }
            let (p, o) = total.multipliedReportingOverflow(by: n)
            guard !o, p <= Int(f.size) else {
                throw EMError.bad(path, field: field + ".Dimensions", "dimensions \(dimVals.compactMap(\.stringValue).joined(separator: "×")) need more data than the file holds")
            }
            dims.append(n)
            total = p
        }
        guard dims.count <= 4 else {
            throw EMError(.unsupported, file: path, at: "field '\(field).Dimensions'", "\(dims.count)-dimensional DM data is not supported")
        }
        let packed = [5, 27, 28].contains(dt)
        let needed: Int64
        if packed {
            guard dims.count == 2, dims[0] % 2 == 0, (dt != 5 || dims[0] == dims[1]) else {
                throw EMError(.unsupported, file: path, at: "field '\(field).Dimensions'", "packed complex data of shape \(dims) is not supported")
            }
            needed = Int64(DMPackedComplexSource.packedBytes(rows: dims[1], cols: dims[0], dataType: dt))
        } else {
            needed = Int64(total) * Int64(diskBytes)
        }
        guard ref.byteCount >= needed else {
            throw EMError.bad(path, field: field + ".Data", "pixel data holds \(ref.byteCount) bytes but the dimensions and data type need \(needed)")
        }
        if ref.byteCount > needed {
            warnings.append("image \(i): pixel data has \(ref.byteCount - needed) bytes more than its dimensions need; they are ignored")
        }

        // Calibrations, padded to the number of dimensions.
        var cals: [Cal] = []
        if case let .array(cl)? = imageData["Calibrations"]?["Dimension"] { cals = cl.map { cal($0) } }
        if cals.count < dims.count {
            if !cals.isEmpty { warnings.append("image \(i): \(dims.count - cals.count) dimension(s) without calibration; left uncalibrated") }
            cals += Array(repeating: Cal(), count: dims.count - cals.count)
        }
        var notes: [String: String] = [:]
        func axis(_ k: Int, _ name: String, _ role: AxisRole, _ long: String? = nil) -> Axis {
            let c = cals[k]
            let u = asciiUnits(c.units)
            if u != c.units { notes["units_note"] = "DM units '\(c.units)' written as ASCII '\(u)'" }
            return Axis(name: name, size: dims[k], role: role, units: u, calibration: .uniform(offset: -c.origin * c.scale, scale: c.scale), longName: long)
        }

        let tags = img["ImageTags"] ?? .object([])
        let format = tags["Meta Data"]?["Format"]?.stringValue ?? ""
        let signal = tags["Meta Data"]?["Signal"]?.stringValue ?? ""
        let fmtL = format.lowercased()
        let isSI = fmtL == "spectrum image" || tags["spim"] != nil
        let isSpectrumFormat = isSI || fmtL == "spectrum"
        var spectralKind: String
        switch signal.uppercased() {
        case "EELS": spectralKind = "eels"
        case "X-RAY", "EDS", "EDX": spectralKind = "eds"
        case "CL": spectralKind = "cl"
        default: spectralKind = tags["Acquisition"]?["Monarc Spectrometer"] != nil ? "cl" : "spectrum"
        }

        let fix: PixelFix = (dt == 8 || dt == 23) ? .bgraToRgba
            : (tree.byteOrder != .native && etype.componentSize > 1 ? .swap(etype.componentSize) : .none)
        let base = ref.offset
        var axes: [Axis]
        var frameRank: Int
        var kind: String
        var source: FrameSource
        var name: String
        let n = dims.count
        if packed {
            axes = [axis(1, "y", .signal), axis(0, "x", .signal)]
            frameRank = 2
            kind = "image"
            name = "fft"
            source = DMPackedComplexSource(file: f, base: base, rows: dims[1], cols: dims[0], dataType: dt, order: tree.byteOrder)
        } else if n == 1 {
            axes = [axis(0, spectralKind == "spectrum" ? "x" : "energy", .signal)]
            frameRank = 1
            kind = spectralKind
            name = spectralKind == "spectrum" ? "spectrum" : spectralKind
            source = StridedFrameSource(file: f, firstFrame: base, stride: Int64(dims[0] * diskBytes), frameBytes: dims[0] * diskBytes, fix: fix)
        } else if n == 2 && isSpectrumFormat {
            axes = [axis(1, "position", .navigation), axis(0, "energy", .signal)]
            frameRank = 1
            kind = spectralKind
            name = "spectrum_line"
            source = StridedFrameSource(file: f, firstFrame: base, stride: Int64(dims[0] * diskBytes), frameBytes: dims[0] * diskBytes, fix: fix)
        } else if n == 2 {
            axes = [axis(1, "y", .signal), axis(0, "x", .signal)]
            frameRank = 2
            kind = fmtL.contains("diffraction") ? "diffraction" : "image"
            name = kind
            source = StridedFrameSource(file: f, firstFrame: base, stride: Int64(dims[0] * dims[1] * diskBytes), frameBytes: dims[0] * dims[1] * diskBytes, fix: fix)
        } else if n == 3 && isSI {
            // Disk: (energy, y, x) in C order; exposed as (y, x, energy), one spectrum per frame.
            axes = [axis(1, "scan_y", .navigation), axis(0, "scan_x", .navigation), axis(2, "energy", .signal)]
            frameRank = 1
            kind = spectralKind
            name = "spectrum_image"
            notes["axis_order"] = "scan_y, scan_x, energy (DigitalMicrograph stores the energy axis slowest; transposed on reading)"
            source = DMTransposeSource(file: f, base: base, rows: dims[2], cols: dims[0] * dims[1], elementBytes: diskBytes, fix: fix, budget: budget)
        } else if n == 3 {
            axes = [axis(2, "frame", .navigation), axis(1, "y", .signal), axis(0, "x", .signal)]
            frameRank = 2
            kind = "stack"
            name = "stack"
            source = StridedFrameSource(file: f, firstFrame: base, stride: Int64(dims[0] * dims[1] * diskBytes), frameBytes: dims[0] * dims[1] * diskBytes, fix: fix)
        } else {
            let swappedTag = tags["Meta Data"]?["Data Order Swapped"]
            let swapped = swappedTag.flatMap { $0.intValue } ?? 0
            kind = "4d-stem"
            name = "4d_stem"
            frameRank = 2
            if swapped != 0 {
                // Frames contiguous: Dimensions = [det_x, det_y, scan_x, scan_y].
                axes = [axis(3, "scan_y", .navigation), axis(2, "scan_x", .navigation), axis(1, "det_y", .signal), axis(0, "det_x", .signal)]
                notes["dm_layout"] = "frames contiguous ('Data Order Swapped' = 1)"
                source = StridedFrameSource(file: f, firstFrame: base, stride: Int64(dims[0] * dims[1] * diskBytes), frameBytes: dims[0] * dims[1] * diskBytes, fix: fix)
            } else {
                // Transposed: Dimensions = [scan_x, scan_y, det_x, det_y]; disk C order (det_y, det_x, scan_y, scan_x).
                axes = [axis(1, "scan_y", .navigation), axis(0, "scan_x", .navigation), axis(3, "det_y", .signal), axis(2, "det_x", .signal)]
                notes["dm_layout"] = "transposed (scan axes fastest on disk), reordered to (scan_y, scan_x, det_y, det_x) on reading"
                if swappedTag == nil {
                    warnings.append("image \(i): 4D data without 'Data Order Swapped' tag; assumed the transposed layout (scan axes fastest)")
                }
                source = DMTransposeSource(file: f, base: base, rows: dims[2] * dims[3], cols: dims[0] * dims[1], elementBytes: diskBytes, fix: fix, budget: budget)
            }
        }
        if dt == 8 || dt == 23 { notes["pixel_layout"] = "DM stores B,G,R,A; written as R,G,B,A" }
        if packed { notes["packed_complex"] = "DM packed complex (DataType \(dt)) unpacked to a full complex array" }
        let bright = cal(imageData["Calibrations"]?["Brightness"])
        var quantity = "intensity"
        let qUnits = asciiUnits(bright.units)
        if !qUnits.isEmpty && qUnits.lowercased() == "counts" { quantity = "counts" }
        if bright.origin != 0 || bright.scale != 1 || !bright.units.isEmpty {
            notes["intensity_calibration"] = "calibrated value = (stored value - \(fmt(bright.origin))) * \(fmt(bright.scale)) \(qUnits)"
        }
        var meta = DMMetadata.normalize(tags)
        if let sh = meta.scanShape, sh.isEmpty { meta.scanShape = nil }
        if kind == "4d-stem" || (n == 3 && isSI) {
            meta.scanShape = [axes[0].size, axes[1].size]
            meta.scanShapeSource = "DM image dimensions"
        }
        let title = img["Name"]?.stringValue ?? ""
        return Dataset(name: name, title: title, axes: axes, elementType: etype, sourceByteOrder: tree.byteOrder, frameRank: frameRank,
                       quantity: quantity, quantityUnits: qUnits, signalKind: kind, metadata: meta, original: .object([]),
                       conventions: notes, source: source)
    }
}
