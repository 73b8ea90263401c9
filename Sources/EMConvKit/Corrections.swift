import EMCore
import Foundation

/// Detector corrections (issue 16): dark subtraction, gain, flat field and bad-pixel filling,
/// applied frame by frame in float32 with the arithmetic of ``CorrectionMaps``. Declared as
/// processing options. The corrected data keep the dataset's name; the raw data stay beside them
/// as `NAME_raw` unless `--drop-raw`; the maps go with the corrected dataset (NeXus: fields
/// `correction_*` of the NXdetector, with their SHA-256) and one `correct` step records what was
/// done, with every map's origin and checksum, so `emconv validate` can re-derive the data.
public enum Corrections {
    public static let options: [OptionSpec] = [
        OptionSpec("dark", .text, valueName: "FILE|first:N",
                   help: "subtract a dark frame: FILE (any input emconv reads; one frame of the detector's shape, or a stack averaged per pixel) or first:N (the mean of the input's own first N frames)",
                   default: "no dark subtraction"),
        OptionSpec("gain", .text, valueName: "FILE", help: "multiply by a gain map: one frame of the detector's shape", default: "no gain"),
        OptionSpec("flat-field", .text, valueName: "from-file|FILE",
                   help: "multiply by flat-field factors: the input's own (from-file: a Dectris master's flatfield) or one frame in FILE",
                   default: "no flat field"),
        OptionSpec("pixel-mask", .text, valueName: "from-file|FILE",
                   help: "pixels to fill (non-zero = bad): the input's own (from-file: a Dectris master's pixel_mask) or one frame in FILE",
                   default: "no mask"),
        OptionSpec("mask-fill", .choice(MaskFill.allCases.map(\.rawValue)), valueName: "zero|nan|interpolate",
                   help: "value of masked pixels: 0, NaN, or the mean of the unmasked 4-neighbours", default: "zero"),
        OptionSpec("drop-raw", .flag, help: "with a correction: do not keep the raw data beside the corrected data"),
    ]

    static let keys = ["dark", "gain", "flat-field", "pixel-mask"]

    /// Whether any correction is asked for.
    public static func requested(_ values: OptionValues) -> Bool { keys.contains { values.string($0) != nil } }

    /// One loaded map: float32 values and where they came from.
    struct Map {
        var field: String
        var values: [Float]
        var origin: [(String, MetaValue)]
        var description: String
    }

    /// Applies the requested corrections to every dataset whose frames have the maps' shape.
    static func apply(_ values: OptionValues, to file: OpenedFile) throws -> [String] {
        guard requested(values) else {
            var w: [String] = []
            if values.string("mask-fill") != nil { w.append("--mask-fill does nothing without --pixel-mask; ignored") }
            if values.flag("drop-raw") { w.append("--drop-raw does nothing without a correction; ignored") }
            return w
        }
        let fill = MaskFill(rawValue: values.string("mask-fill")?.lowercased() ?? "zero") ?? .zero
        if values.string("mask-fill") != nil && values.string("pixel-mask") == nil {
            throw EMError(.usage, at: "--mask-fill", "needs --pixel-mask")
        }
        let candidates = file.datasets.filter { $0.frameRank >= 1 && CorrectionMaps.accepts($0.elementType) && $0.derived == nil }
        guard let first = candidates.first else {
            throw EMError(.unsupported, file: file.path, "no dataset of numeric frames to correct")
        }
        // The detector: the frame shape of the first dataset that has detector frames (rank 2).
        let frameShape = (candidates.first { $0.frameRank == 2 } ?? first).frameShape
        let n = frameShape.reduce(1, *)
        let targets = candidates.filter { $0.frameShape == frameShape }
        var warnings: [String] = []
        for ds in file.datasets where !targets.contains(where: { $0 === ds }) && ds.derived == nil {
            warnings.append("dataset '\(ds.name)' not corrected: its frames (\(shapeText(ds.frameShape))) are not the detector's \(shapeText(frameShape))")
        }
        func fromFile(_ key: String, aux: String, what: String) throws -> Map? {
            guard let v = values.string(key) else { return nil }
            if v.lowercased() == "from-file" {
                guard let a = targets.lazy.compactMap({ $0.auxiliary[aux] }).first else {
                    throw EMError(.unsupported, file: file.path, "--\(key) from-file: the input holds no \(what) (\(file.format) files do not carry one; give a FILE)")
                }
                guard a.shape == frameShape, a.elementType.isNumericScalar else {
                    throw EMError(.badInput, file: file.path, "--\(key) from-file: the input's \(aux) is \(shapeText(a.shape)) \(a.elementType.rawValue), not \(shapeText(frameShape)) numbers")
                }
                let vals = a.bytes.withUnsafeBytes { raw -> [Double] in
                    var d = [Double](repeating: 0, count: n)
                    d.withUnsafeMutableBufferPointer { frameDoubles(raw, a.elementType, count: n, into: $0.baseAddress!) }
                    return d
                }
                return Map(field: "", values: try finite(vals, what: what, file: file.path, at: "its \(aux)", columns: frameShape.last ?? 1),
                           origin: [("from", .string("the input's \(aux)")), ("file_name", .string((file.path as NSString).lastPathComponent))],
                           description: "the input's \(aux)")
            }
            return try load(v, key: key, what: what, frameShape: frameShape, average: false)
        }
        var dark: Map?
        if let d = values.string("dark") {
            if d.lowercased().hasPrefix("first:") {
                guard let k = Int(d.dropFirst(6)), k >= 1 else {
                    throw EMError(.usage, at: "--dark", "first:N takes a frame count N >= 1 (got '\(d)')")
                }
                guard let src = targets.first, k <= src.frameCount else {
                    throw EMError(.usage, file: file.path, "--dark \(d): '\(targets[0].name)' has only \(targets[0].frameCount) frames")
                }
                let mean = try averageFrames(src, count: k, file: file.path)
                dark = Map(field: "", values: try finite(mean, what: "dark frame", file: file.path, at: "the mean of its first \(k) frames", columns: frameShape.last ?? 1),
                           origin: [("from", .string("the input's own frames")), ("dataset", .string(src.name)), ("frames", .array([.int(0), .int(Int64(k))])),
                                    ("file_name", .string((file.path as NSString).lastPathComponent)),
                                    ("averaging", .string(averagingRule))],
                           description: "the mean of the first \(k) frames of '\(src.name)'")
            } else {
                dark = try load(d, key: "dark", what: "dark frame", frameShape: frameShape, average: true)
            }
        }
        let gain = try values.string("gain").map { try load($0, key: "gain", what: "gain map", frameShape: frameShape, average: false) }
        let flat = try fromFile("flat-field", aux: "flatfield", what: "flat field")
        let maskMap = try fromFile("pixel-mask", aux: "pixel_mask", what: "pixel mask")
        let mask = maskMap.map { m in m.values.map { $0 != 0 ? UInt8(1) : 0 } }
        let maps = CorrectionMaps(frameShape: frameShape, dark: dark?.values, gain: gain?.values, flat: flat?.values, mask: mask, fill: fill)

        // The maps as stored (float32; the mask as uint8 0/1), with their checksums.
        var aux: [(String, AuxiliaryArray, Map)] = []
        func add(_ m: Map?, _ field: String, _ text: String) {
            guard var m else { return }
            m.field = field
            let bytes = field == "correction_pixel_mask" ? mask! : float32Bytes(m.values)
            aux.append((field, AuxiliaryArray(elementType: field == "correction_pixel_mask" ? .uint8 : .float32, shape: frameShape,
                                              bytes: bytes, description: "\(text), from \(m.description) (emconv correction map)"), m))
        }
        add(dark, "correction_dark", "dark frame subtracted")
        add(gain, "correction_gain", "gain factors multiplied")
        add(flat, "correction_flatfield", "flat-field factors multiplied")
        add(maskMap, "correction_pixel_mask", "pixel mask (1 = filled by --mask-fill \(fill.rawValue))")
        let mapParams: [(String, MetaValue)] = aux.map { field, a, m in
            (field, .object([("sha256", .string(SHA256Digest.hex(a.bytes))), ("element_type", .string(a.elementType.rawValue)),
                             ("shape", .array(a.shape.map { .int(Int64($0)) })), ("origin", .object(m.origin))]))
        }
        let dropRaw = values.flag("drop-raw")
        var formula = "raw"
        if dark != nil { formula = "(\(formula) - dark)" }
        if gain != nil { formula += " * gain" }
        if flat != nil { formula = (gain != nil ? "(\(formula))" : formula) + " * flatfield" }
        var out: [Dataset] = []
        for ds in file.datasets {
            guard targets.contains(where: { $0 === ds }) else { out.append(ds); continue }
            let corrected = ds.reshaped(axes: ds.axes, elementType: .float32, frameRank: ds.frameRank, source: CorrectedFrameSource(ds, maps: maps))
            corrected.auxiliary = ds.auxiliary
            for (field, a, _) in aux { corrected.auxiliary[field] = a }
            corrected.quantity = ds.quantity + " (corrected)"
            // Frame bands: at most pixels of a sparse detector a corrected value repeats the
            // previous frame's, which gzip codes as matches only within 32 KiB.
            corrected.preferredChunkShape = ChunkPlan.frameBandShape(corrected, targetBytes: 2 << 20)
            let rawName = ds.name + "_raw"
            let steps = [("dark", dark), ("gain", gain), ("flat field", flat), ("pixel mask", maskMap)].filter { $0.1 != nil }.map(\.0)
            corrected.processing.append(ProcessingStep(
                name: "correct",
                parameters: .object([
                    ("arithmetic", .string(arithmeticRule)),
                    ("input_element_type", .string(ds.elementType.rawValue)), ("output_element_type", .string("float32")),
                    ("frame_shape", .array(frameShape.map { .int(Int64($0)) })),
                    ("maps", .object(mapParams)),
                    ("mask_fill", .string(fill.rawValue)), ("masked_pixels", .int(Int64(maps.maskedCount))),
                    ("raw_dataset", dropRaw ? .null : .string(rawName)),
                ]),
                description: "corrected (\(steps.joined(separator: ", "))) in float32: out = \(formula)\(maskMap == nil ? "" : ", masked pixels " + (fill == .interpolate ? "the mean of their unmasked 4-neighbours" : (fill == .nan ? "NaN" : "0")))\(dropRaw ? "; the raw data were not kept (--drop-raw)" : "; the raw data are '\(rawName)'")"))
            out.append(corrected)
            if !dropRaw {
                let raw = ds.reshaped(axes: ds.axes, elementType: ds.elementType, frameRank: ds.frameRank, source: ds.source)
                raw.name = rawName
                raw.title = ds.title.isEmpty ? "" : ds.title + " (raw)"
                out.append(raw)
            }
        }
        file.datasets = out
        return warnings
    }

    static let arithmeticRule = "float32, one IEEE-754 operation at a time, rounded to nearest (no fused multiply-add): v = float32(raw); v = v - dark; v = v * gain; v = v * flatfield (each when given); then masked pixels (mask != 0) = 0 | NaN | interpolate: the float32 sum of the values of the unmasked neighbours above, left, right, below (in that order, inside the frame) divided by their count, 0 when none"
    static let averagingRule = "per pixel: the float64 sum of the frames in frame order, divided by the frame count in float64, rounded once to float32"

    static func shapeText(_ s: [Int]) -> String { s.map(String.init).joined(separator: "x") }

    /// Opens a map file and returns its values: one frame of `frameShape` (or, with `average`,
    /// the mean of its frames).
    static func load(_ path: String, key: String, what: String, frameShape: [Int], average: Bool) throws -> Map {
        let f: OpenedFile
        do {
            f = try Catalog.open(path)
            try MemoryBudget.checkDeclared(f)  // before its frames are read and averaged
        } catch var e as EMError {
            e.message = "--\(key): " + e.message
            throw e.withFile(path)
        }
        let fits = f.datasets.filter { $0.frameShape == frameShape && $0.elementType.isNumericScalar }
        guard let ds = fits.first else {
            let has = f.datasets.map { "'\($0.name)' frames \(shapeText($0.frameShape)) \($0.elementType.rawValue)" }.joined(separator: ", ")
            throw EMError(.badInput, file: path, "--\(key): no \(what) of the detector's shape \(shapeText(frameShape)) (the file has \(has.isEmpty ? "no dataset" : has))")
        }
        if !average && ds.frameCount != 1 {
            throw EMError(.badInput, file: path, "--\(key): '\(ds.name)' holds \(ds.frameCount) frames; a \(what) is one frame")
        }
        let mean = try averageFrames(ds, count: ds.frameCount, file: path)
        let values = try finite(mean, what: what, file: path, at: "'\(ds.name)'", columns: frameShape.last ?? 1)
        var origin: [(String, MetaValue)] = [("file_name", .string((path as NSString).lastPathComponent)),
                                             ("file_sha256", .string(try EMRules.fileSHA256(path))),
                                             ("reader", .string("\(f.readerName) \(f.readerVersion)")), ("dataset", .string(ds.name))]
        if ds.frameCount > 1 {
            origin += [("frames_averaged", .int(Int64(ds.frameCount))), ("averaging", .string(averagingRule))]
        }
        return Map(field: "", values: [], origin: origin, description: (path as NSString).lastPathComponent + (ds.frameCount > 1 ? " (mean of \(ds.frameCount) frames)" : ""))
            .with(values)
    }

    /// Per pixel, the float64 sum of frames 0..<count in frame order, divided by count (float64).
    static func averageFrames(_ ds: Dataset, count: Int, file: String) throws -> [Double] {
        let n = ds.frameElements
        var acc = [Double](repeating: 0, count: n), v = [Double](repeating: 0, count: n)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, ds.frameBytes), alignment: 16)
        defer { buf.deallocate() }
        ds.source.prepareReadingThread()
        for f in 0..<count {
            try ds.source.readFrame(f, into: buf)
            v.withUnsafeMutableBufferPointer { frameDoubles(UnsafeRawBufferPointer(buf), ds.elementType, count: n, into: $0.baseAddress!) }
            for i in 0..<n { acc[i] += v[i] }
        }
        if count > 1 { for i in 0..<n { acc[i] /= Double(count) } }
        return acc
    }

    /// The values as float32; every one must be finite.
    static func finite(_ v: [Double], what: String, file: String, at: String, columns: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: v.count)
        for i in v.indices {
            let x = Float(v[i])
            guard x.isFinite else {
                throw EMError(.badInput, file: file, "\(what) \(at): value \(v[i]) at pixel (row \(i / columns), column \(i % columns)) is not a finite float32; maps must be finite")
            }
            out[i] = x
        }
        return out
    }
}

extension Corrections.Map {
    func with(_ v: [Float]) -> Corrections.Map {
        var m = self
        m.values = v
        return m
    }
}
