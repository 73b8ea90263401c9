import EMCore
import Foundation

/// Quantum Detectors Merlin `.mib` (with its optional `.hdr`): single chip and quad, every
/// counter depth, processed (U08/U16/U32) and raw (R64) frames, multi-file series.
public enum MIBReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "mib", longName: "Quantum Detectors Merlin MIB", aliases: ["merlin", "quantumdetector"],
        extensions: ["mib"], reads: true, writes: false,
        companions: ".hdr beside the .mib (same stem); further files of a series (name_0002.mib, …)",
        options: [
            OptionSpec("scan-shape", .intList, valueName: "Y,X", help: "navigation (scan) shape, slowest first",
                       default: "from the .hdr, frames per trigger, or flyback timing"),
            OptionSpec("mib-flip-rows", .flag, help: "flip detector rows like RosettaSciIO", default: "on-disk row order, like LiberTEM"),
        ],
        notes: "Frames keep the on-disk row order (first stored row = row 0); RosettaSciIO flips rows, LiberTEM does not."
    )

    public static func identify(_ probe: Probe) -> Identification {
        if probe.headStarts(with: "MQ1,") { return .yes }
        if probe.headStarts(with: "HDR,"), probe.fileExtension == "hdr",
           FileManager.default.fileExists(atPath: (probe.path as NSString).deletingPathExtension + ".mib") {
            return .maybe
        }
        return .no
    }

    public static func companions(of path: String) -> [String] {
        var out: [String] = []
        if let hdr = hdrPath(for: path) { out.append(hdr) }
        if let series = try? seriesFiles(for: path) { out += series.dropFirst().map(\.path) }
        return out
    }

    static func hdrPath(for mib: String) -> String? {
        let stem = (mib as NSString).deletingPathExtension
        var candidates = [stem + ".hdr"]
        if let (prefix, _) = splitSequenceSuffix(stem) { candidates.append(prefix + ".hdr") }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// `name_0012` → ("name", 12); the separator may be `_`, `-` or none.
    static func splitSequenceSuffix(_ stem: String) -> (String, Int)? {
        var digits = ""
        var s = Substring(stem)
        while let c = s.last, c.isASCII, c.isNumber { digits = String(c) + digits; s = s.dropLast() }
        guard !digits.isEmpty, digits.count <= 9, let n = Int(digits) else { return nil }
        var prefix = String(s)
        if prefix.hasSuffix("_") || prefix.hasSuffix("-") { prefix.removeLast() }
        return (prefix, n)
    }

    struct SeriesFile {
        let path: String
        let file: RandomAccessFile
        let first: MIBHeader
    }

    /// The files of the acquisition that `path` belongs to, in sequence order: siblings named
    /// `prefix<digits>.mib` whose frame sequence numbers continue one another.
    static func seriesFiles(for path: String) throws -> [SeriesFile] {
        let main = try openSeriesFile(path)
        let stem = (path as NSString).deletingPathExtension
        guard let (prefix, _) = splitSequenceSuffix(stem) else { return [main] }
        let dir = (path as NSString).deletingLastPathComponent
        let dirPath = dir.isEmpty ? "." : dir
        let base = (prefix as NSString).lastPathComponent
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dirPath) else { return [main] }
        var siblings: [SeriesFile] = []
        for n in names where n.lowercased().hasSuffix(".mib") {
            let s = (n as NSString).deletingPathExtension
            guard let (p, _) = splitSequenceSuffix(s), p == base else { continue }
            let full = dir.isEmpty ? n : dir + "/" + n
            if full == path { siblings.append(main); continue }
            if let f = try? openSeriesFile(full), f.first.geometryKey == main.first.geometryKey { siblings.append(f) }
        }
        siblings.sort { $0.first.sequence < $1.first.sequence }
        // Keep the run of files whose sequence numbers continue one another and contains `path`.
        guard let mi = siblings.firstIndex(where: { $0.path == main.path }) else { return [main] }
        func framesIn(_ f: SeriesFile) -> Int { Int(f.file.size / Int64(f.first.headerBytes + ((try? MIBDecoder(header: f.first, depth: f.first.counterDepth ?? inferDepth(f) ?? 12, file: f.path).payloadBytes) ?? 1))) }
        // A file holding no complete frame continues nothing (it would chain files of equal sequence numbers).
        func continues(_ a: SeriesFile, _ b: SeriesFile) -> Bool {
            let n = framesIn(a)
            return n > 0 && a.first.sequence + n == b.first.sequence
        }
        var lo = mi, hi = mi
        while lo > 0, continues(siblings[lo - 1], siblings[lo]) { lo -= 1 }
        while hi + 1 < siblings.count, continues(siblings[hi], siblings[hi + 1]) { hi += 1 }
        return Array(siblings[lo...hi])
    }

    static func openSeriesFile(_ path: String) throws -> SeriesFile {
        let f = try RandomAccessFile(path: path)
        let head = try f.readUpTo(at: 0, count: 4096)
        guard head.count >= 4, Array(head[0..<4]) == MIBHeader.prefix else {
            throw EMError.bad(path, offset: 0, "not a Merlin MIB file (it does not start with 'MQ1,')")
        }
        // The header size is field 3; read exactly that much.
        let first = try MIBHeader.parse(Array(head.prefix(min(head.count, 64))), file: path, offset: 0)
        guard first.headerBytes <= head.count || first.headerBytes <= f.size else {
            throw EMError.bad(path, offset: 0, "header size \(first.headerBytes) is larger than the file")
        }
        let full = first.headerBytes <= head.count ? Array(head.prefix(first.headerBytes)) : try f.read(at: 0, count: first.headerBytes, what: "frame header")
        return SeriesFile(path: path, file: f, first: try MIBHeader.parse(full, file: path, offset: 0))
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        if (path as NSString).pathExtension.lowercased() == "hdr" {
            return try open((path as NSString).deletingPathExtension + ".mib", options: options)
        }
        let series = try seriesFiles(for: path)
        let primary = series[0]
        var warnings: [String] = []
        let hdrPathFound = hdrPath(for: primary.path) ?? hdrPath(for: path)
        let hdr: MIBHdrFile? = try hdrPathFound.map { try MIBHdrFile.read($0) }
        if let hdr, !hdr.complete {
            warnings.append("\((hdr.path as NSString).lastPathComponent): ends before its 'End' line (truncated?); acquisition values after its last line are unknown")
        }
        let h0 = primary.first
        let depth = h0.counterDepth ?? hdr?.int("Counter Depth") ?? inferDepth(primary)
        let decoder = try MIBDecoder(header: h0, depth: depth, file: primary.path)
        let stride = Int64(h0.headerBytes + decoder.payloadBytes)

        // Frames per file, checked against the file sizes; a partial last frame is dropped.
        var frameFiles: [(file: RandomAccessFile, frames: Int)] = []
        for s in series {
            if s.first.geometryKey != h0.geometryKey {
                throw EMError.bad(s.path, offset: 0, "frame geometry differs from \(primary.path): \(s.first.geometryKey) vs \(h0.geometryKey)")
            }
            let n = Int(s.file.size / stride)
            let rest = s.file.size - Int64(n) * stride
            if n == 0 {
                throw EMError.bad(s.path, offset: 0,
                                  "file is truncated: one frame needs \(stride) bytes (header \(h0.headerBytes) + pixels \(decoder.payloadBytes)) but the file has \(s.file.size)")
            }
            if rest != 0 {
                warnings.append("\((s.path as NSString).lastPathComponent): file ends \(rest) bytes into frame \(n + 1) (interrupted acquisition?); kept \(n) complete frames")
            }
            // The last complete frame must start with a header of the same geometry.
            let lastOff = Int64(n - 1) * stride
            let last = try MIBHeader.parse(try s.file.read(at: lastOff, count: h0.headerBytes, what: "frame header"), file: s.path, offset: lastOff)
            if last.geometryKey != h0.geometryKey {
                throw EMError.bad(s.path, offset: lastOff, "frame \(n) header disagrees with frame 1 (\(last.geometryKey) vs \(h0.geometryKey)); frame sizes are not constant")
            }
            frameFiles.append((s.file, n))
        }
        let available = frameFiles.map(\.frames).reduce(0, +)

        // Navigation shape.
        let (nav, navSource, navWarnings) = try scanShape(available: available, hdr: hdr, options: options, series: series,
                                                          stride: stride, path: primary.path)
        warnings += navWarnings
        let used = nav.reduce(1, *)
        let source = MIBFrameSource(files: frameFiles, stride: stride, header: h0, decoder: decoder, flipRows: options.flag("mib-flip-rows"))
        var endTime: Timestamp?
        if used > 0 {
            let (fi, local) = source.locate(used - 1)
            let off = Int64(local) * stride
            endTime = (try? MIBHeader.parse(try frameFiles[fi].file.read(at: off, count: h0.headerBytes, what: "frame header"), file: primary.path, offset: off))?.time
        }
        return makeOpenedFile(path: primary.path, h0: h0, hdr: hdr, depth: depth, decoder: decoder, nav: nav, navSource: navSource,
                              source: source, endTime: endTime, files: series.map(\.path), available: available, options: options,
                              warnings: warnings, companions: hdrPathFound.map { [$0] } ?? [],
                              handles: series.map(\.file) + (try hdrPathFound.map { [try RandomAccessFile(path: $0)] } ?? []))
    }

    /// The common model of one Merlin acquisition, from its first frame header, the `.hdr` and the
    /// navigation shape; shared by files and the live stream (`emconv record`), so both give the
    /// same dataset, metadata and conventions.
    static func makeOpenedFile(path: String, h0: MIBHeader, hdr: MIBHdrFile?, depth: Int?, decoder: MIBDecoder, nav: [Int],
                               navSource: String, source: FrameSource, endTime: Timestamp?, files: [String], available: Int,
                               options: OptionValues, warnings: [String], companions: [String],
                               handles: [RandomAccessFile]) -> OpenedFile {
        var axes: [Axis] = []
        if nav.count == 2 {
            axes.append(Axis(name: "scan_y", size: nav[0], role: .navigation, longName: "scan position y (index)"))
            axes.append(Axis(name: "scan_x", size: nav[1], role: .navigation, longName: "scan position x (index)"))
        } else if nav.count == 1, nav[0] > 1 {
            axes.append(Axis(name: "frame", size: nav[0], role: .navigation, longName: "frame number"))
        } else if nav.count > 2 {
            for (i, n) in nav.enumerated() { axes.append(Axis(name: "nav_\(i)", size: n, role: .navigation)) }
        }
        axes.append(Axis(name: "det_y", size: decoder.rows, role: .signal, longName: "detector row (pixel)"))
        axes.append(Axis(name: "det_x", size: decoder.cols, role: .signal, longName: "detector column (pixel)"))

        var md = NormalizedMetadata()
        if let e = h0.exposureSeconds { md.exposureTime = Quantity(e, "s") }
        md.startTime = h0.time
        md.endTime = endTime
        md.detectorName = hdr?.value("Readout System") ?? "Merlin"
        md.detectorModel = hdr?.value("Chip Type").map { $0 } ?? nil
        var mode: [String] = []
        if let cm = hdr?.value("Chip Mode") { mode.append(cm) }
        if let depth { mode.append("\(depth)-bit counter") }
        if let g = hdr?.value("Gain") { mode.append("gain \(g)") }
        if h0.format == .r64 { mode.append("raw readout") }
        md.detectorMode = mode.isEmpty ? nil : mode.joined(separator: ", ")
        if let t = h0.thresholds.first { md.detectorThreshold = Quantity(t, "keV") }
        md.counterDepthBits = depth
        md.softwareName = "Merlin"
        md.softwareVersion = hdr?.value("Software Version")
        if nav.count == 2 { md.scanShape = nav; md.scanShapeSource = navSource }
        if let bias = hdr?.value("Sensor Bias") { md.extra["sensor_bias"] = bias }

        var tree: [(String, MetaValue)] = [("frame_header", h0.metaValue)]
        if let hdr { tree.append(("hdr_file", hdr.metaValue)) }
        tree.append(("files", .array(files.map { .string($0) })))
        tree.append(("frames_in_files", .int(Int64(available))))
        tree.append(("navigation_shape_source", .string(navSource)))

        var conventions = [
            "emconv_orientation": options.flag("mib-flip-rows")
                ? "rows flipped (RosettaSciIO convention: np.flip(axis=-2) of the stored frame)"
                : "on-disk row order: row 0 is the first row stored in the frame (LiberTEM convention; RosettaSciIO flips rows)",
        ]
        if h0.format == .r64 { conventions["emconv_raw_decoding"] = "R64 \(depth ?? 0)-bit\(decoder.quad ? " quad 2x2" : "") decoded to \(decoder.outputType.rawValue)" }
        let kind = nav.count == 2 ? "4d-stem" : "diffraction"
        let ds = Dataset(name: "merlin", title: (path as NSString).lastPathComponent, axes: axes,
                         elementType: decoder.outputType, sourceByteOrder: decoder.format == .r64 || decoder.format == .u8 ? .little : .big,
                         frameRank: 2, quantity: "counts", quantityUnits: "", signalKind: kind, metadata: md,
                         original: .object([]), conventions: conventions, source: source)
        let variant = "\(decoder.quad ? "quad 2x2" : (h0.chips > 1 ? "\(h0.chips) chips \(h0.layout)" : "single chip")), \(h0.format.rawValue)\(depth.map { ", \($0)-bit" } ?? ""), \(decoder.rows)x\(decoder.cols), \(available) frames\(files.count > 1 ? " in \(files.count) files" : "")"
        return OpenedFile(path: path, format: descriptor.name, variant: variant, datasets: [ds],
                          files: files + companions, original: .object(tree),
                          warnings: warnings, readerName: "mib", readerVersion: version, handles: handles)
    }

    /// Without MQ1A or .hdr, the counter depth of a raw file is the one whose frame size puts the
    /// second header where a header is.
    static func inferDepth(_ s: SeriesFile) -> Int? {
        guard s.first.format == .r64 else { return nil }
        for d in [12, 6, 1, 24] {
            guard let dec = try? MIBDecoder(header: s.first, depth: d, file: s.path) else { continue }
            let off = Int64(s.first.headerBytes + dec.payloadBytes)
            if let b = try? s.file.readUpTo(at: off, count: 4), b == MIBHeader.prefix { return d }
        }
        return nil
    }

    /// The navigation shape, where it came from, and warnings.
    static func scanShape(available: Int, hdr: MIBHdrFile?, options: OptionValues, series: [SeriesFile],
                          stride: Int64, path: String) throws -> ([Int], String, [String]) {
        var warnings: [String] = []
        if let s = try options.ints("scan-shape") {
            let need = s.reduce(1, *)
            guard need <= available else {
                throw EMError(.usage, file: path, "--scan-shape \(s.map(String.init).joined(separator: ",")) needs \(need) frames but the file has \(available)")
            }
            if need < available { warnings.append("--scan-shape uses \(need) of \(available) frames; the rest are not converted") }
            return (s, "--scan-shape", warnings)
        }
        var shape: [Int]?
        var source = ""
        if let hdr, let x = hdr.int("ScanX") ?? hdr.int("Scan X"), let y = hdr.int("ScanY") ?? hdr.int("Scan Y"), x > 0, y > 0 {
            shape = [y, x]
            source = ".hdr ScanX/ScanY"
        }
        let inAcq = hdr?.int("Frames in Acquisition")
        let perTrigger = hdr?.int("Frames per Trigger")
        // A single line (frames in acquisition = frames per trigger) stays a 1-D stack, as RosettaSciIO reads it.
        if shape == nil, let n = inAcq, let fpt = perTrigger, n > 0, fpt > 1, n % fpt == 0, n / fpt > 1 {
            shape = [n / fpt, fpt]
            source = ".hdr frames in acquisition / frames per trigger"
        }
        // One trigger per frame, or one trigger for the whole acquisition: the line length can
        // only come from the time stamps.
        if shape == nil, available >= 4, perTrigger == nil || perTrigger == 1 || perTrigger == inAcq {
            if let w = flybackLineLength(series: series, stride: stride, frames: inAcq.map { min($0, available) } ?? available) {
                let total = inAcq.map { $0 > 0 ? $0 : available } ?? available
                shape = [(total + w - 1) / w, w]
                source = "line length \(w) from flyback gaps in frame time stamps"
            }
        }
        // What the header announces against what the files hold (a cut file must not pass silently).
        let holds = "\(series.count > 1 ? "the files hold" : "the file holds") \(available)"
        let announcer = hdr.map { ($0.path as NSString).lastPathComponent } ?? "the frame headers"
        guard var s = shape else {
            if let n = inAcq, n > 0, n < available {
                warnings.append(".hdr says \(n) frames in acquisition, the file has \(available); converting \(n)")
                return ([n], ".hdr frames in acquisition", warnings)
            }
            if let n = inAcq, n > available {
                // One trigger per frame (or none stated): the full file would have given a scan
                // shape from the flyback timing; with what is left none could be found.
                let scanLost = n > 1 && (perTrigger == nil || perTrigger == 1)
                warnings.append("\(announcer) announces \(n) frames, \(holds) (acquisition interrupted or file cut); " +
                                (scanLost ? "the scan shape could not be determined and fell back to a stack of \(available) frames"
                                          : "converting the \(available) frames present"))
                return ([available], scanLost ? "frame count (scan shape fell back: file incomplete)" : "frame count (file incomplete)", warnings)
            }
            return ([available], "frame count (no scan shape stated)", warnings)
        }
        let need = s.reduce(1, *)
        if need > available {
            let announced = source.hasPrefix(".hdr") || inAcq == need
                ? "\(announcer) announces \(need) frames (scan \(s[0])x\(s[1]), \(source))"
                : "scan \(s[0])x\(s[1]) (\(source)) needs \(need) frames"
            let lines = available / s[1]
            if lines == 0 {
                warnings.append("\(announced), \(holds): less than one scan line; the scan shape fell back to a stack of \(available) frames")
                return ([available], "frame count (scan shape fell back: scan incomplete)", warnings)
            }
            warnings.append("acquisition interrupted: \(announced), \(holds); kept \(lines) complete lines of \(s[1]) (\(lines * s[1]) frames)")
            s[0] = lines
        } else if need < available {
            warnings.append("the file has \(available) frames, the scan \(s[0])x\(s[1]) uses \(need); \(available - need) extra frames are not converted")
        }
        return (s, source, warnings)
    }

    /// Scan line length from frame time stamps: with one trigger per frame, the first frame of
    /// every line comes after the flyback, so the gaps at multiples of the line length are longer
    /// than every other gap. Returns nil unless exactly that pattern is present.
    static func flybackLineLength(series: [SeriesFile], stride frameStride: Int64, frames: Int) -> Int? {
        let s = series[0]
        let n = min(frames, Int(s.file.size / frameStride), 8193)
        guard n >= 4 else { return nil }
        var times: [Double] = []
        times.reserveCapacity(n)
        for i in 0..<n {
            guard let b = try? s.file.readUpTo(at: Int64(i) * frameStride, count: s.first.headerBytes),
                  let h = try? MIBHeader.parse(b, file: s.path, offset: Int64(i) * frameStride),
                  let iso = h.isoTimestamp ?? Optional(h.timestamp), let t = Timestamp.parseISO(iso) else { return nil }
            times.append(t.date.timeIntervalSince1970)
        }
        let gaps = (1..<n).map { times[$0] - times[$0 - 1] }
        guard gaps.allSatisfy({ $0 >= 0 }) else { return nil }
        for w in 2...(n / 2 + 1) where w < n {
            let breaks = stride(from: w - 1, to: gaps.count, by: w).map { gaps[$0] }
            guard !breaks.isEmpty else { continue }
            var othersMax = -Double.infinity, othersMin = Double.infinity
            for (i, g) in gaps.enumerated() where (i + 1) % w != 0 {
                othersMax = max(othersMax, g)
                othersMin = min(othersMin, g)
            }
            // The flyback must stand clear of the jitter: with noise-only time stamps a gap at a
            // multiple of w can be the largest by chance (1 in 7 for 8 frames), never by 3x the spread.
            if let minBreak = breaks.min(), minBreak > othersMax, minBreak - othersMax > 3 * (othersMax - othersMin) { return w }
        }
        return nil
    }
}

/// Reads frame `i` of a (multi-file) Merlin acquisition: its header is checked, its payload
/// decoded into native values.
final class MIBFrameSource: FrameSource {
    let files: [(file: RandomAccessFile, frames: Int)]
    let stride: Int64
    let header: MIBHeader
    let decoder: MIBDecoder
    let flipRows: Bool
    private var scratch: UnsafeMutableRawBufferPointer
    private var headerBuf: [UInt8]

    init(files: [(file: RandomAccessFile, frames: Int)], stride: Int64, header: MIBHeader, decoder: MIBDecoder, flipRows: Bool) {
        self.files = files
        self.stride = stride
        self.header = header
        self.decoder = decoder
        self.flipRows = flipRows
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: decoder.needsScratch ? decoder.payloadBytes : 1, alignment: 64)
        headerBuf = [UInt8](repeating: 0, count: header.headerBytes)
    }

    deinit { scratch.deallocate() }

    func locate(_ index: Int) -> (Int, Int) {
        var i = index
        for (k, f) in files.enumerated() {
            if i < f.frames { return (k, i) }
            i -= f.frames
        }
        return (files.count - 1, i)
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let (fi, local) = locate(index)
        let f = files[fi].file
        let off = Int64(local) * stride
        try headerBuf.withUnsafeMutableBytes { try f.read(at: off, into: $0, what: "frame \(index + 1) header") }
        if headerBuf[0] != 0x4D || headerBuf[1] != 0x51 || headerBuf[2] != 0x31 || headerBuf[3] != 0x2C {
            throw EMError.bad(f.path, offset: off, "frame \(index + 1) does not start with a Merlin header ('MQ1,'); the file is corrupt or frame sizes vary")
        }
        let payloadOff = off + Int64(header.headerBytes)
        if decoder.needsScratch {
            let p = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<decoder.payloadBytes])
            try f.read(at: payloadOff, into: p, what: "frame \(index + 1) pixels")
            decoder.decode(payload: UnsafeRawBufferPointer(p), into: buffer)
        } else {
            let p = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<decoder.payloadBytes])
            try f.read(at: payloadOff, into: p, what: "frame \(index + 1) pixels")
            decoder.decode(payload: UnsafeRawBufferPointer(p), into: p)
        }
        if flipRows {
            let rowBytes = decoder.cols * decoder.outputType.size
            let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: rowBytes, alignment: 16)
            defer { tmp.deallocate() }
            for r in 0..<(decoder.rows / 2) {
                let a = buffer.baseAddress! + r * rowBytes
                let b = buffer.baseAddress! + (decoder.rows - 1 - r) * rowBytes
                tmp.baseAddress!.copyMemory(from: a, byteCount: rowBytes)
                a.copyMemory(from: b, byteCount: rowBytes)
                b.copyMemory(from: tmp.baseAddress!, byteCount: rowBytes)
            }
        }
    }
}
