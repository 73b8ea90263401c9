import CTIFF
import EMCore
import Foundation

/// TIFF through libtiff: classic and BigTIFF, strips and tiles, 8–64-bit integers, floats, RGB(A),
/// multi-page stacks and ImageJ hyperstacks. Calibration comes from the vendor tags (FEI/TFS,
/// Zeiss, TVIPS, DigitalMicrograph export, Olympus SIS), then ImageJ's description, and only then
/// from the resolution tags (said so in a warning). Goes last in the catalog: it accepts any TIFF.
public enum TIFFReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "tiff", longName: "TIFF (ImageJ-calibrated)", aliases: ["tif"], extensions: ["tif", "tiff"], reads: true, writes: false,
        companions: "JEOL SEM: the metadata .txt beside the .tif (same stem)",
        notes: "Reads any TIFF (last in the catalog): pages of one shape and type form a stack; ImageJ hyperstacks keep "
            + "their frames/slices/channels; vendor calibrations from FEI/TFS, Zeiss SEM, TVIPS, DigitalMicrograph export and Olympus SIS tags.",
        signature: "'II*\\0', 'MM\\0*' (TIFF) or 'II+\\0', 'MM\\0+' (BigTIFF)"
    )

    public static func identify(_ probe: Probe) -> Identification {
        let h = probe.head
        guard h.count >= 4 else { return .no }
        let le = h[0] == 0x49 && h[1] == 0x49 && h[3] == 0 && (h[2] == 42 || h[2] == 43)
        let be = h[0] == 0x4D && h[1] == 0x4D && h[2] == 0 && (h[3] == 42 || h[3] == 43)
        return le || be ? .maybe : .no
    }

    /// A JEOL SEM metadata text (same stem, `.txt`) goes with its TIFF.
    public static func companions(of path: String) -> [String] {
        TIFFVendor.jeolText(beside: path).map { [$0] } ?? []
    }

    /// Geometry and type of one page.
    struct Page: Equatable {
        var width: Int, height: Int
        var elementType: ElementType
        var tiled: Bool
        var tileWidth: Int, tileHeight: Int
        var rowsPerStrip: Int
        var compression: Int
        var photometric: Int
        var reduced: Bool
        var offset: UInt64

        var sameKind: (Int, Int, ElementType) { (width, height, elementType) }
        var frameBytes: Int { width * height * elementType.size }
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let file = try RandomAccessFile(path: path)
        let tags = try TIFFTagReader(file: file)
        let handle = try TIFFHandle(path: path)
        var pages: [Page] = []
        var warnings: [String] = []
        // Walk the directories (each checked before anything is allocated).
        var dirIndex = 0
        repeat {
            let p = try handle.page(dirIndex, fileSize: file.size)
            pages.append(p)
            dirIndex += 1
            guard dirIndex < 1_000_000 else { throw EMError.bad(path, offset: nil, "more than a million TIFF directories") }
        } while try handle.next()
        if let e = handle.error, !e.isEmpty { warnings.append("libtiff: \(e) (the directory chain ends early; truncated?)") }

        let first = try tags.entries(at: tags.firstIFD)
        // Tag values past the end of the file (libtiff ignores tags it does not need): truncated.
        for (k, offset) in Set([tags.firstIFD, pages[pages.count - 1].offset]).sorted().enumerated() {
            let entries = k == 0 && offset == tags.firstIFD ? first : ((try? tags.entries(at: offset)) ?? [:])
            for e in entries.values.sorted(by: { $0.tag < $1.tag }) {
                // count < 2^40 (TIFFTagReader), so the size cannot overflow; the offset may be near Int64.max.
                let bytes = Int64(TIFFTagReader.typeSize(e.type)) * Int64(e.count)
                if e.valueOffset < 0 || e.valueOffset > file.size - bytes {
                    warnings.append("tag \(e.tag) (\(bytes) bytes at offset \(e.valueOffset)) lies beyond the end of the file of \(file.size) bytes: truncated; its content is missing")
                }
            }
        }
        let description = first[270].flatMap { tags.string($0) }
        var vendor = TIFFVendor.read(tags, first)
        let ij = TIFFVendor.imageJ(description)

        // Main images: full-resolution pages, grouped by shape and type in file order.
        let main = pages.filter { !$0.reduced }
        if main.count < pages.count { warnings.append("\(pages.count - main.count) reduced-resolution page(s) (thumbnails) left out") }
        guard !main.isEmpty else { throw EMError.bad(path, offset: nil, "the TIFF holds only reduced-resolution pages") }
        var groups: [[Page]] = []
        for p in main {
            if let i = groups.firstIndex(where: { $0[0].sameKind == p.sameKind }) { groups[i].append(p) } else { groups.append([p]) }
        }

        var datasets: [Dataset] = []
        var conventions: [String: String] = [:]
        var calibration = vendor.calibration
        var emconvAxes: [MetaValue]?
        if let ij, let json = ij["emconv_axes"], case let .array(a)? = try? MetaValue.parseJSON(json) { emconvAxes = a }
        if calibration == nil, let ij, let unit = ij["unit"], !unit.isEmpty, unit != "pixel", let xr = first[282].flatMap({ tags.numbers($0)?.first }), xr > 0 {
            let yr = first[283].flatMap { tags.numbers($0)?.first } ?? xr
            let u = TIFFVendor.asciiUnits(unit.replacingOccurrences(of: "\\u00B5", with: "µ"))
            let yu = ij["yunit"].map { TIFFVendor.asciiUnits($0) } ?? u
            calibration = ImageCalibration(xScale: 1 / xr, yScale: 1 / yr, xOffset: -(Double(ij["xorigin"] ?? "") ?? 0) / xr,
                                           yOffset: -(Double(ij["yorigin"] ?? "") ?? 0) / yr, xUnits: u, yUnits: yu, source: "ImageJ unit and resolution tags")
        }
        if calibration == nil, emconvAxes == nil, let xr = first[282].flatMap({ tags.numbers($0)?.first }), xr > 0, xr.isFinite {
            let yr = first[283].flatMap { tags.numbers($0)?.first } ?? xr
            let unit = first[296].flatMap { tags.numbers($0)?.first } ?? 2
            let perUnitUM: Double? = unit == 2 ? 25_400 : unit == 3 ? 10_000 : nil
            if let f = perUnitUM, yr > 0 {
                calibration = ImageCalibration(xScale: f / xr, yScale: f / yr, xUnits: "um", yUnits: "um",
                                               source: "resolution tags (\(fmt(xr)) pixels per \(unit == 2 ? "inch" : "cm"))")
                warnings.append("no microscope calibration in the file: pixel size taken from the TIFF resolution tags (\(fmt(xr)) pixels per \(unit == 2 ? "inch" : "cm")), which are often a display setting")
                conventions["emconv_tiff_calibration"] = "last resort: pixel size from XResolution/YResolution and ResolutionUnit"
            }
        }
        if let c = calibration { conventions["emconv_tiff_calibration"] = conventions["emconv_tiff_calibration"] ?? "from \(c.source)" }

        // ImageJ stacks larger than 4 GiB have one directory; the other images follow the first
        // one's pixels contiguously (uncompressed), as the description's images=N says.
        var contiguous: (start: Int64, count: Int)?
        if let ij, let n = Int(ij["images"] ?? ""), n > 1, groups.count == 1, groups[0].count == 1, n > groups[0].count {
            let p0 = groups[0][0]
            let offsets = first[273].flatMap { tags.numbers($0) } ?? [], counts = first[279].flatMap { tags.numbers($0) } ?? []
            let isContiguous = offsets.count == counts.count && !offsets.isEmpty && zip(offsets.dropLast(), zip(offsets.dropFirst(), counts)).allSatisfy { $0 + $1.1 == $1.0 }
            guard p0.compression == 1, !p0.tiled, isContiguous else {
                throw EMError(.unsupported, file: path, "an ImageJ stack of \(n) images with one directory must be uncompressed and contiguous")
            }
            let start = Int64(offsets[0]), need = Int64(n) * Int64(p0.frameBytes)
            guard start + need <= file.size else {
                throw EMError.bad(path, offset: file.size, "the ImageJ stack of \(n) images needs \(need) bytes from offset \(start) but the file has \(file.size); truncated?")
            }
            contiguous = (start, n)
        }

        for (gi, g) in groups.enumerated() {
            let p0 = g[0]
            let pageCount = contiguous?.count ?? g.count
            var axes: [Axis] = []
            var nav: [Axis] = []
            if let ax = emconvAxes, ax.count >= 2, groups.count == 1,
               ax.compactMap({ $0["size"]?.intValue }).reduce(1, *) == pageCount * p0.width * p0.height,
               ax[ax.count - 1]["size"]?.intValue == p0.width, ax[ax.count - 2]["size"]?.intValue == p0.height {
                // emconv's own TIFF: the axes exactly as written.
                axes = ax.enumerated().map { k, a in
                    Axis(name: a["name"]?.stringValue ?? "axis_\(k)", size: a["size"]?.intValue ?? 1,
                         role: a["role"]?.stringValue.flatMap(AxisRole.init(rawValue:)) ?? (k >= ax.count - 2 ? .signal : .navigation),
                         units: a["units"]?.stringValue ?? "",
                         calibration: .uniform(offset: a["offset"]?.doubleValue ?? 0, scale: a["scale"]?.doubleValue ?? 1),
                         longName: a["long_name"]?.stringValue)
                }
                conventions["emconv_tiff_calibration"] = "axes as emconv wrote them (ImageJ description emconv_axes)"
            } else {
                if pageCount > 1 {
                    let n = { (k: String) in Int(ij?[k] ?? "") ?? 1 }
                    let frames = n("frames"), slices = n("slices"), channels = n("channels")
                    if ij != nil, frames * slices * channels == pageCount, groups.count == 1 {
                        let spacing = Double(ij?["spacing"] ?? "")
                        let zunit = ij?["zunit"].map { TIFFVendor.asciiUnits($0) } ?? calibration?.xUnits ?? ""
                        let finterval = Double(ij?["finterval"] ?? "")
                        if frames > 1 {
                            nav.append(Axis(name: "frame", size: frames, role: .navigation, units: finterval == nil ? "" : "s",
                                            calibration: .uniform(offset: 0, scale: finterval ?? 1), longName: "ImageJ frames"))
                        }
                        if slices > 1 {
                            nav.append(Axis(name: "slice", size: slices, role: .navigation, units: spacing == nil ? "" : zunit,
                                            calibration: .uniform(offset: 0, scale: spacing ?? 1), longName: "ImageJ slices"))
                        }
                        if channels > 1 { nav.append(Axis(name: "channel", size: channels, role: .navigation, longName: "ImageJ channels")) }
                    } else {
                        nav.append(Axis(name: "page", size: pageCount, role: .navigation, longName: "TIFF page"))
                    }
                }
                let c = calibration
                axes = nav + [
                    Axis(name: "y", size: p0.height, role: .signal, units: c?.yUnits ?? "", calibration: .uniform(offset: c?.yOffset ?? 0, scale: c?.yScale ?? 1), longName: "y"),
                    Axis(name: "x", size: p0.width, role: .signal, units: c?.xUnits ?? "", calibration: .uniform(offset: c?.xOffset ?? 0, scale: c?.xScale ?? 1), longName: "x"),
                ]
            }
            var conv = conventions
            if p0.photometric == 0 { conv["emconv_tiff_photometric"] = "MinIsWhite: values kept as stored (0 is white)" }
            if p0.photometric == 3 { conv["emconv_tiff_photometric"] = "palette image: the palette indices are kept" }
            let source: FrameSource
            if let contiguous {
                let es = p0.elementType.componentSize
                source = StridedFrameSource(file: file, firstFrame: contiguous.start, stride: Int64(p0.frameBytes), frameBytes: p0.frameBytes,
                                            fix: tags.bigEndian && es > 1 ? .swap(es) : .none)
                conv["emconv_tiff_layout"] = "ImageJ contiguous stack: \(contiguous.count) images after the first directory's pixels"
            } else {
                source = TIFFPageSource(handle: handle, pages: g, path: path)
            }
            let kind = nav.isEmpty ? "image" : "stack"
            let ds = Dataset(name: groups.count == 1 ? "image" : "image_\(gi + 1)", title: (path as NSString).lastPathComponent,
                             axes: axes, elementType: p0.elementType, sourceByteOrder: tags.bigEndian ? .big : .little,
                             frameRank: 2, quantity: "intensity", signalKind: axes.count > 2 && emconvAxes != nil ? (axes.count == 4 ? "4d-stem" : "stack") : kind,
                             metadata: vendor.metadata, original: .object([]), conventions: conv, source: source)
            datasets.append(ds)
        }
        if groups.count > 1 {
            warnings.append("pages of \(groups.count) different shapes or types: one dataset per kind (\(groups.map { "\($0.count) x \($0[0].height)x\($0[0].width) \($0[0].elementType.rawValue)" }.joined(separator: ", ")))")
        }
        warnings += vendor.warnings
        var tree: [(String, MetaValue)] = vendor.original
        if let description, !description.isEmpty { tree.append(("ImageDescription", .string(description))) }
        for (t, name) in [(305, "Software"), (306, "DateTime"), (271, "Make"), (272, "Model"), (315, "Artist")] {
            if let e = first[UInt16(t)], let s = tags.string(e) { tree.append((name, .string(s))) }
        }
        if vendor.metadata.softwareName == nil, let s = first[305].flatMap({ tags.string($0) }) { vendor.metadata.softwareName = s }
        let p0 = pages[0]
        var flavours = vendor.flavours
        if ij != nil { flavours.append(emconvAxes != nil ? "emconv ImageJ" : "ImageJ") }
        let variant = "\(tags.big ? "BigTIFF" : "TIFF") \(tags.bigEndian ? "big" : "little")-endian, \(pages.count) page\(pages.count == 1 ? "" : "s"), "
            + "\(p0.tiled ? "tiles \(p0.tileWidth)x\(p0.tileHeight)" : "strips of \(p0.rowsPerStrip) rows"), compression \(p0.compression), \(p0.elementType.rawValue)"
            + (flavours.isEmpty ? "" : "; " + flavours.joined(separator: ", "))
        return OpenedFile(path: path, format: descriptor.name, variant: variant, datasets: datasets, files: [path] + companions(of: path),
                          original: .object(tree), warnings: warnings, readerName: "tiff", readerVersion: version, handles: [file])
    }
}

/// One libtiff handle; libtiff handles are not thread-safe, so every use holds `lock`.
final class TIFFHandle: @unchecked Sendable {
    let tif: OpaquePointer
    let path: String
    let lock = NSLock()
    private let errbuf: UnsafeMutablePointer<emc_tiff_errbuf>

    init(path: String) throws {
        errbuf = UnsafeMutablePointer<emc_tiff_errbuf>.allocate(capacity: 1)
        errbuf.initialize(to: emc_tiff_errbuf())
        guard let t = emc_tiff_open_read(path, errbuf, 1 << 30) else {
            let m = TIFFHandle.message(errbuf)
            errbuf.deallocate()
            throw EMError.bad(path, offset: nil, "libtiff cannot open it: \(m.isEmpty ? "not a readable TIFF" : m)")
        }
        tif = t
        self.path = path
    }

    deinit {
        TIFFClose(tif)
        errbuf.deallocate()
    }

    static func message(_ b: UnsafeMutablePointer<emc_tiff_errbuf>) -> String {
        withUnsafeBytes(of: &b.pointee.msg) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The last libtiff error (cleared on read).
    var error: String? {
        let m = TIFFHandle.message(errbuf)
        errbuf.pointee = emc_tiff_errbuf()
        return m.isEmpty ? nil : m
    }

    func next() throws -> Bool { TIFFReadDirectory(tif) == 1 }

    /// The current directory as a page, checked against the file size.
    func page(_ index: Int, fileSize: Int64) throws -> TIFFReader.Page {
        func u16(_ tag: Int32) -> Int { var v: UInt16 = 0; _ = emc_tiff_getd_u16(tif, UInt32(tag), &v); return Int(v) }
        func u32(_ tag: Int32) -> Int { var v: UInt32 = 0; _ = emc_tiff_getd_u32(tif, UInt32(tag), &v); return Int(v) }
        let at = "page \(index + 1)"
        let w = u32(TIFFTAG_IMAGEWIDTH), h = u32(TIFFTAG_IMAGELENGTH)
        let bps = u16(TIFFTAG_BITSPERSAMPLE), spp = u16(TIFFTAG_SAMPLESPERPIXEL)
        let fmt = u16(TIFFTAG_SAMPLEFORMAT), photometric = u16(TIFFTAG_PHOTOMETRIC), planar = u16(TIFFTAG_PLANARCONFIG)
        let compression = u16(TIFFTAG_COMPRESSION)
        guard w > 0, h > 0 else { throw EMError.bad(path, offset: nil, "\(at): image size \(w)x\(h)") }
        let type: ElementType
        switch (spp, bps, fmt) {
        case (1, 8, 2): type = .int8
        case (1, 8, _): type = .uint8
        case (1, 16, 2): type = .int16
        case (1, 16, 3): throw EMError(.unsupported, file: path, at: at, "16-bit floating-point TIFF samples are not supported")
        case (1, 16, _): type = .uint16
        case (1, 32, 2): type = .int32
        case (1, 32, 3): type = .float32
        case (1, 32, _): type = .uint32
        case (1, 64, 2): type = .int64
        case (1, 64, 3): type = .float64
        case (1, 64, _): type = .uint64
        case (3, 8, _): type = .rgb8
        case (4, 8, _): type = .rgba8
        default:
            throw EMError(.unsupported, file: path, at: at, "\(spp) sample(s) of \(bps) bits (format \(fmt)) per pixel are not supported (8–64-bit grey, 8-bit RGB/RGBA are)")
        }
        if spp > 1 && planar == 2 {
            throw EMError(.unsupported, file: path, at: at, "RGB stored as separate planes (PlanarConfiguration 2) is not supported")
        }
        let frame = Int64(w) * Int64(h) * Int64(type.size)
        // Compressed data expand at most ~1000x (deflate); raw data must fit in the file.
        let limit = compression == 1 ? fileSize : fileSize * 1100 + (1 << 20)
        guard frame <= limit, frame <= Int64(Int32.max) * 4 else {
            throw EMError.bad(path, offset: nil, "\(at): \(w)x\(h) \(type.rawValue) (\(frame) bytes) cannot come from a file of \(fileSize) bytes")
        }
        let tiled = TIFFIsTiled(tif) != 0
        var tw = 0, th = 0
        if tiled {
            tw = u32(TIFFTAG_TILEWIDTH); th = u32(TIFFTAG_TILELENGTH)
            guard tw > 0, th > 0, tw <= 1 << 16, th <= 1 << 16 else { throw EMError.bad(path, offset: nil, "\(at): tile size \(tw)x\(th)") }
        }
        var rps = u32(TIFFTAG_ROWSPERSTRIP)
        if rps <= 0 || rps > h { rps = h }
        let subfile = u32(TIFFTAG_SUBFILETYPE)
        return TIFFReader.Page(width: w, height: h, elementType: type, tiled: tiled, tileWidth: tw, tileHeight: th, rowsPerStrip: rps,
                               compression: compression, photometric: photometric, reduced: subfile & 1 != 0, offset: TIFFCurrentDirOffset(tif))
    }
}

/// Reads page `i` of a group through libtiff (strips or tiles) into the frame buffer.
final class TIFFPageSource: FrameSource, @unchecked Sendable {
    let handle: TIFFHandle
    let pages: [TIFFReader.Page]
    let path: String

    init(handle: TIFFHandle, pages: [TIFFReader.Page], path: String) {
        self.handle = handle
        self.pages = pages
        self.path = path
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let p = pages[index]
        let tif = handle.tif
        handle.lock.lock()
        defer { handle.lock.unlock() }
        _ = handle.error
        guard TIFFSetSubDirectory(tif, p.offset) == 1 else {
            throw EMError.bad(path, offset: Int64(p.offset), "page \(index + 1): libtiff cannot read its directory: \(handle.error ?? "")")
        }
        let es = p.elementType.size
        let rowBytes = p.width * es
        let out = buffer.baseAddress!
        if !p.tiled {
            let strips = (p.height + p.rowsPerStrip - 1) / p.rowsPerStrip
            guard Int(TIFFNumberOfStrips(tif)) >= strips else {
                throw EMError.bad(path, offset: Int64(p.offset), "page \(index + 1): \(TIFFNumberOfStrips(tif)) strips for \(p.height) rows of \(p.rowsPerStrip)")
            }
            for s in 0..<strips {
                let rows = min(p.rowsPerStrip, p.height - s * p.rowsPerStrip)
                let want = rows * rowBytes
                let n = TIFFReadEncodedStrip(tif, UInt32(s), out + s * p.rowsPerStrip * rowBytes, tmsize_t(want))
                guard n == want else {
                    throw EMError.bad(path, offset: Int64(p.offset), "page \(index + 1), strip \(s + 1) of \(strips): \(n < 0 ? "cannot be decoded" : "\(n) of \(want) bytes") (truncated or corrupt): \(handle.error ?? "")")
                }
                Watchdog.beat()
            }
        } else {
            let tileBytes = p.tileWidth * p.tileHeight * es
            guard Int(TIFFTileSize64(tif)) == tileBytes else {
                throw EMError.bad(path, offset: Int64(p.offset), "page \(index + 1): tile size \(TIFFTileSize64(tif)) bytes, expected \(tileBytes)")
            }
            let tile = UnsafeMutableRawBufferPointer.allocate(byteCount: tileBytes, alignment: 64)
            defer { tile.deallocate() }
            let across = (p.width + p.tileWidth - 1) / p.tileWidth, down = (p.height + p.tileHeight - 1) / p.tileHeight
            for ty in 0..<down {
                for tx in 0..<across {
                    let t = TIFFComputeTile(tif, UInt32(tx * p.tileWidth), UInt32(ty * p.tileHeight), 0, 0)
                    let n = TIFFReadEncodedTile(tif, t, tile.baseAddress!, tmsize_t(tileBytes))
                    guard n == tileBytes else {
                        throw EMError.bad(path, offset: Int64(p.offset), "page \(index + 1), tile \(t + 1): \(n < 0 ? "cannot be decoded" : "\(n) of \(tileBytes) bytes") (truncated or corrupt): \(handle.error ?? "")")
                    }
                    let cols = min(p.tileWidth, p.width - tx * p.tileWidth), rows = min(p.tileHeight, p.height - ty * p.tileHeight)
                    for r in 0..<rows {
                        (out + (ty * p.tileHeight + r) * rowBytes + tx * p.tileWidth * es)
                            .copyMemory(from: tile.baseAddress! + r * p.tileWidth * es, byteCount: cols * es)
                    }
                }
                Watchdog.beat()
            }
        }
    }
}
