import CDeflate
import CTIFF
import CZstd
import EMCore
import Foundation

/// Calibrated TIFF through libtiff: one page per 2-D plane (the two fastest axes), ImageJ
/// hyperstack metadata in ImageDescription and X/YResolution = 1/pixel size so Fiji shows the
/// calibration. Strips are compressed on worker threads and written raw (`TIFFWriteRawStrip`).
public enum TIFFWriter: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "tiff", longName: "TIFF (ImageJ-calibrated)", aliases: ["tif"],
        extensions: ["tif", "tiff"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22]",
                       default: "deflate level 1 (TIFF tag 8); zstd is TIFF compression 50000, which Fiji's own opener cannot read"),
            OptionSpec("bigtiff", .flag, help: "write BigTIFF", default: "automatic when the data exceed 4 GiB"),
            OptionSpec("stack", .flag, help: "write any dataset (e.g. 4D-STEM) as a stack of its 2-D frames"),
        ],
        notes: "2-D images and image stacks; ImageJ hyperstack description (unit, spacing, slices/frames) and resolution tags. Complex data are refused.",
        holds: [.axisCalibration],
        oneDatasetPerFile: true
    )

    static let defaultCompression = Compression.gzip(level: 1)
    static let targetStripBytes = 1 << 20

    /// The one dataset to write, or a one-line reason why TIFF cannot hold it.
    static func dataset(_ file: OpenedFile, context: WriteContext) throws -> Dataset {
        guard !file.datasets.isEmpty else {
            throw EMError(.badInput, file: file.path, "the file holds no dataset to convert")
        }
        guard file.datasets.count == 1 else {
            throw EMError(.unsupported, file: file.path,
                          "TIFF holds one image or stack, but this file has \(file.datasets.count) datasets (\(file.datasets.map(\.name).joined(separator: ", "))); pick one with --dataset (emconv convert writes a file per dataset)")
        }
        let ds = file.datasets[0]
        let shape = ds.shape.map(String.init).joined(separator: "x")
        switch ds.elementType {
        case .complex64, .complex128:
            throw EMError(.unsupported, file: file.path, "TIFF cannot hold complex data (\(ds.elementType.rawValue) \(shape)); use zspy or NeXus")
        default: break
        }
        guard ds.rank >= 2 else {
            throw EMError(.unsupported, file: file.path, "TIFF holds images, but '\(ds.name)' is \(ds.rank)-D (\(shape)); use zspy or NeXus")
        }
        let stackLike = ds.rank == 2 || (ds.rank == 3 && ds.frameRank >= 2)
        if !stackLike && !context.options.flag("stack") {
            throw EMError(.unsupported, file: file.path,
                          "TIFF holds images and image stacks, but '\(ds.name)' is \(ds.rank)-D (\(shape)); add --stack to write its \(ds.shape.dropLast(2).reduce(1, *)) planes as pages")
        }
        return ds
    }

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        let c = try context.compression(default: defaultCompression)
        if c.bitshuffleCodec != nil {
            throw EMError(.usage, at: "--compression", "\(c) is an HDF5 filter: TIFF takes none, gzip or zstd (or write .nxs)")
        }
        _ = try dataset(file, context: context)
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        var report = WriteReport()
        let ds = try dataset(file, context: context)
        let compression = try context.compression(default: defaultCompression)
        let t = ds.elementType
        let height = ds.shape[ds.rank - 2], width = ds.shape[ds.rank - 1]
        let pageElements = height * width
        let pageBytes = pageElements * t.size
        let pages = ds.shape.dropLast(2).reduce(1, *)
        let rowBytes = width * t.size
        let rowsPerStrip = max(1, min(height, targetStripBytes / max(1, rowBytes)))
        let stripsPerPage = (height + rowsPerStrip - 1) / rowsPerStrip
        let big = context.options.flag("bigtiff") || ds.byteCount + Int64(pages) * 512 >= 0xF000_0000
        if ![ElementType.uint8, .uint16, .float32, .int16, .rgb8, .bool, .int8].contains(t) {
            report.warnings.append("TIFF: ImageJ/Fiji opens 8-, 16- and 32-bit float images; \(t.rawValue) data open in tifffile and Bio-Formats")
        }

        emc_tiff_silence()
        guard let tif = TIFFOpen(path, big ? "w8l" : "wl") else {
            throw EMError(.writeError, file: path, "libtiff cannot create the file")
        }
        var closed = false
        defer { if !closed { TIFFClose(tif) } }
        let description = imageJDescription(ds, pages: pages)

        // Page p → planes; the source serves frames of frameRank dims.
        let frameBytes = ds.frameBytes
        let frameCache = ChunkBuffer(capacity: ds.frameRank > 2 ? frameBytes : 1)
        var cachedFrame = -1
        let sizesLock = NSLock()
        var stripSizes: [Int: [Int]] = [:]

        try ChunkPipeline.run(
            count: pages, chunkBytes: pageBytes, workers: context.threads, producerSetup: { ds.source.prepareReadingThread() },
            produce: { p, buf in
                buf.reserve(pageBytes)
                if ds.frameRank == 2 {
                    try ds.source.readFrame(p, into: UnsafeMutableRawBufferPointer(rebasing: buf.raw[0..<pageBytes]))
                } else if ds.frameRank > 2 {
                    let perFrame = frameBytes / pageBytes
                    let f = p / perFrame
                    if f != cachedFrame {
                        try ds.source.readFrame(f, into: UnsafeMutableRawBufferPointer(rebasing: frameCache.raw[0..<frameBytes]))
                        cachedFrame = f
                    }
                    let off = (p % perFrame) * pageBytes
                    buf.raw.baseAddress!.copyMemory(from: frameCache.raw.baseAddress! + off, byteCount: pageBytes)
                } else {
                    let n = pageBytes / max(1, frameBytes)
                    for k in 0..<n {
                        try ds.source.readFrame(p * n + k, into: UnsafeMutableRawBufferPointer(rebasing: buf.raw[(k * frameBytes)..<((k + 1) * frameBytes)]))
                    }
                }
                buf.count = pageBytes
            },
            transform: { p, slot in
                if compression == .none { return slot.input }
                var sizes: [Int] = []
                var outOffset = 0
                let maxStrip = rowsPerStrip * rowBytes
                let bound = stripsPerPage * (ZSTD_compressBound(maxStrip) + 64 + maxStrip / 100)
                slot.scratch.reserve(bound)
                for s in 0..<stripsPerPage {
                    let start = s * rowsPerStrip * rowBytes
                    let end = min(pageBytes, start + rowsPerStrip * rowBytes)
                    let src = UnsafeRawBufferPointer(rebasing: slot.input.raw[start..<end])
                    let n = try slot.compress(src, into: slot.scratch.raw.baseAddress! + outOffset,
                                              capacity: slot.scratch.capacity - outOffset, compression: compression)
                    sizes.append(n)
                    outOffset += n
                }
                slot.scratch.count = outOffset
                sizesLock.lock(); stripSizes[p] = sizes; sizesLock.unlock()
                return slot.scratch
            },
            consume: { p, out in
                try setPageTags(tif, ds: ds, width: width, height: height, rowsPerStrip: rowsPerStrip, pages: pages,
                                compression: compression, description: p == 0 ? description : nil, path: path)
                var sizes: [Int]
                if compression == .none {
                    sizes = (0..<stripsPerPage).map { s in min(pageBytes, (s + 1) * rowsPerStrip * rowBytes) - s * rowsPerStrip * rowBytes }
                } else {
                    sizesLock.lock(); sizes = stripSizes.removeValue(forKey: p) ?? []; sizesLock.unlock()
                }
                var off = 0
                for (s, n) in sizes.enumerated() {
                    if TIFFWriteRawStrip(tif, UInt32(s), UnsafeMutableRawPointer(mutating: out.bytes.baseAddress! + off), tmsize_t(n)) < 0 {
                        throw EMError(.writeError, file: path, "libtiff could not write strip \(s) of page \(p)")
                    }
                    off += n
                }
                if TIFFWriteDirectory(tif) == 0 {
                    throw EMError(.writeError, file: path, "libtiff could not write the directory of page \(p)")
                }
                context.progress?.progress(done: Int64(p + 1) * Int64(pageBytes), total: ds.byteCount, stage: ds.name)
            })
        closed = true
        TIFFClose(tif)
        _ = try context.provenance.sources()
        return report
    }

    static func setPageTags(_ tif: OpaquePointer, ds: Dataset, width: Int, height: Int, rowsPerStrip: Int, pages: Int,
                            compression: Compression, description: String?, path: String) throws {
        let t = ds.elementType
        var ok = true
        ok = ok && emc_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(width)) == 1
        ok = ok && emc_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height)) == 1
        ok = ok && emc_tiff_set_u32(tif, UInt32(TIFFTAG_ROWSPERSTRIP), UInt32(rowsPerStrip)) == 1
        ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG)) == 1
        let comp: Int32
        switch compression {
        case .none: comp = COMPRESSION_NONE
        case .gzip: comp = COMPRESSION_ADOBE_DEFLATE
        case .zstd: comp = 50000 // COMPRESSION_ZSTD
        case .bitshuffleLZ4, .bitshuffleZstd:
            throw EMError(.usage, at: "--compression", "\(compression) is an HDF5 filter: TIFF takes none, gzip or zstd")
        }
        ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_COMPRESSION), UInt16(comp)) == 1
        switch t {
        case .rgb8, .rgba8:
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL), UInt16(t.size)) == 1
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), 8) == 1
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_RGB)) == 1
            if t == .rgba8 {
                var extra: [UInt16] = [UInt16(EXTRASAMPLE_UNASSALPHA)]
                ok = ok && emc_tiff_set_extrasamples(tif, 1, &extra) == 1
            }
        default:
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1) == 1
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), UInt16(t.size * 8)) == 1
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK)) == 1
            let fmt: Int32 = t == .float32 || t == .float64 ? SAMPLEFORMAT_IEEEFP
                : [.int8, .int16, .int32, .int64].contains(t) ? SAMPLEFORMAT_INT : SAMPLEFORMAT_UINT
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLEFORMAT), UInt16(fmt)) == 1
        }
        if pages > 1 {
            ok = ok && emc_tiff_set_u32(tif, UInt32(TIFFTAG_SUBFILETYPE), 0) == 1
        }
        let x = ds.axes[ds.rank - 1], y = ds.axes[ds.rank - 2]
        if let (rx, ry) = resolution(x: x, y: y) {
            ok = ok && emc_tiff_set_double(tif, UInt32(TIFFTAG_XRESOLUTION), rx) == 1
            ok = ok && emc_tiff_set_double(tif, UInt32(TIFFTAG_YRESOLUTION), ry) == 1
            ok = ok && emc_tiff_set_u16(tif, UInt32(TIFFTAG_RESOLUTIONUNIT), UInt16(x.units == "cm" ? RESUNIT_CENTIMETER : RESUNIT_NONE)) == 1
        }
        if let description {
            ok = ok && emc_tiff_set_string(tif, UInt32(TIFFTAG_IMAGEDESCRIPTION), description) == 1
            ok = ok && emc_tiff_set_string(tif, UInt32(TIFFTAG_SOFTWARE), "emconv \(EMConvVersion.string)") == 1
        }
        guard ok else { throw EMError(.writeError, file: path, "libtiff refused a tag of the \(t.rawValue) \(width)x\(height) page") }
    }

    /// Pixels per unit (ImageJ: 1/pixel size), when the image axes are calibrated.
    static func resolution(x: Axis, y: Axis) -> (Double, Double)? {
        guard !(x.units.isEmpty && y.units.isEmpty && x.scale == 1 && y.scale == 1), x.scale > 0, y.scale > 0 else { return nil }
        if case .coordinates = x.calibration { return nil }
        if case .coordinates = y.calibration { return nil }
        return (1 / x.scale, 1 / y.scale)
    }

    /// ImageJ's ImageDescription (ImageJ `FileInfo`/`TiffDecoder` keys: images, channels, slices,
    /// frames, hyperstack, unit, yunit, zunit, spacing, finterval, xorigin, yorigin).
    static func imageJDescription(_ ds: Dataset, pages: Int) -> String {
        var lines = ["ImageJ=1.11a"]
        let nav = Array(ds.axes.dropLast(2))
        if pages > 1 {
            lines.append("images=\(pages)")
            var slicesAxis: Axis?, framesAxis: Axis?
            switch nav.count {
            case 1:
                if nav[0].units == "s" {
                    lines.append("frames=\(pages)"); framesAxis = nav[0]
                } else {
                    lines.append("slices=\(pages)"); slicesAxis = nav[0]
                }
            case 2:
                lines += ["slices=\(nav[1].size)", "frames=\(nav[0].size)", "hyperstack=true"]
                slicesAxis = nav[1]; framesAxis = nav[0]
            case 3:
                lines += ["channels=\(nav[2].size)", "slices=\(nav[1].size)", "frames=\(nav[0].size)", "hyperstack=true"]
                slicesAxis = nav[1]; framesAxis = nav[0]
            default: break
            }
            if let z = slicesAxis, !z.units.isEmpty, case .uniform = z.calibration {
                lines.append("spacing=\(fmtIJ(z.scale))")
                if z.units != ds.axes[ds.rank - 1].units { lines.append("zunit=\(imageJUnit(z.units))") }
            }
            if let f = framesAxis, f.units == "s", case .uniform = f.calibration { lines.append("finterval=\(fmtIJ(f.scale))") }
        }
        let x = ds.axes[ds.rank - 1], y = ds.axes[ds.rank - 2]
        if resolution(x: x, y: y) != nil {
            if !x.units.isEmpty { lines.append("unit=\(imageJUnit(x.units))") }
            if y.units != x.units && !y.units.isEmpty { lines.append("yunit=\(imageJUnit(y.units))") }
            if x.offset != 0 { lines.append("xorigin=\(fmtIJ(-x.offset / x.scale))") }
            if y.offset != 0 { lines.append("yorigin=\(fmtIJ(-y.offset / y.scale))") }
        }
        lines.append("loop=false")
        // Every axis as emconv had it (ImageJ ignores unknown keys; emconv's TIFF reader restores
        // names, units and calibrations that ImageJ's keys cannot hold).
        let axes: [MetaValue] = ds.axes.map { a in
            .object([("name", .string(a.name)), ("size", .int(Int64(a.size))), ("units", .string(a.units)),
                     ("offset", .double(a.offset)), ("scale", .double(a.scale)), ("role", .string(a.role.rawValue)),
                     ("long_name", a.longName.map { .string($0) } ?? .null)])
        }
        lines.append("emconv_axes=" + MetaValue.array(axes).json())
        // What emconv did to the values (crop, bin, cast, corrections) and whether the image is a
        // derived view: never dropped silently (the correction maps themselves need NeXus).
        if !ds.processing.isEmpty { lines.append("emconv_processing=" + MetaValue.array(ds.processing.map(\.metaValue)).json()) }
        if let derived = ds.derived { lines.append("emconv_derived=" + MetaValue.string(derived).json()) }
        return lines.joined(separator: "\n") + "\n"
    }

    static func fmtIJ(_ v: Double) -> String { fmt(v) }

    /// A length unit as ImageJ writes it: micrometres are `micron` (ImageJ's own name, the
    /// only one RosettaSciIO's TIFF reader maps back to µm), ångström `angstrom` (ASCII, as
    /// RosettaSciIO writes it); reciprocal units keep their `1/` prefix. Others (nm, pm, mm,
    /// 1/nm, s) are written as they are. (Swift compares strings canonically: U+212B = U+00C5.)
    static func imageJUnit(_ u: String) -> String {
        let t = u.trimmingCharacters(in: .whitespaces)
        for prefix in ["1/", "1 / "] where t.hasPrefix(prefix) {
            return "1/" + imageJUnit(String(t.dropFirst(prefix.count)))
        }
        switch t {
        case "um", "\u{00B5}m", "\u{03BC}m", "micron", "microns", "micrometer", "micrometre": return "micron"
        case "\u{00C5}", "angstrom", "Angstrom", "\u{00C5}ngstr\u{00F6}m": return "angstrom"
        default: return t
        }
    }
}
