@testable import FormatTIFFRead
import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// The TIFF reader: shared microscope TIFFs against RosettaSciIO, emconv's own TIFF read back
/// exactly, generated files for every sample type, both byte orders, BigTIFF, tiles, ImageJ
/// hyperstacks and vendor tags, and bad input.
final class TIFFReadTests: TempDirectoryTestCase {
    func ints(_ v: MetaValue?) -> [Int] {
        if case let .array(a)? = v { return a.compactMap(\.intValue) }
        return []
    }

    func testEveryTIFFCaseMatchesReference() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let cases = try SharedTestData.cases(format: ["TIFF"])
        XCTAssertEqual(cases.count, 4)
        for id in cases {
            let ref = try SharedTestData.reference(id)
            guard case let .array(signals)? = ref["signals"], let s = signals.first else { return XCTFail(id) }
            let f = try Catalog.open(root + "/" + id)
            XCTAssertEqual(f.format, "tiff", id)
            XCTAssertEqual(f.datasets.count, 1, id)
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, ints(s["shape"]), id)
            XCTAssertEqual(ElementType.parse(numpy: s["dtype"]?.stringValue ?? "")?.0, ds.elementType, id)
            XCTAssertEqual(try DataHash.sha256(ds), s["data_sha256"]?.stringValue, "\(id): data")
            guard case let .array(axes)? = s["axes"] else { return XCTFail(id) }
            for (a, b) in zip(axes, ds.axes) {
                XCTAssertEqual(a["size"]?.intValue, b.size, id)
                XCTAssertEqual(TIFFVendor.asciiUnits(a["units"]?.stringValue ?? ""), b.units, id)
                XCTAssertEqual(b.scale, a["scale"]!.doubleValue!, accuracy: abs(b.scale) * 1e-7, id)
                XCTAssertEqual(b.offset, a["offset"]!.doubleValue!, accuracy: abs(b.scale) * 1e-7, id)
            }
            XCTAssertTrue(f.warnings.isEmpty, "\(id): a vendor calibration, no fallback: \(f.warnings)")
            let out = tmp + "/" + (id as NSString).lastPathComponent + ".nxs"
            _ = try Converter.convert(input: root + "/" + id, output: out, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true))
            XCTAssertEqual(try DataHash.sha256(nexus: out, name: ds.name).0, s["data_sha256"]?.stringValue, "\(id): NeXus data")
        }
        let fei = try Catalog.open(root + "/tiff/FEI-Helios-Ebeam-8bits.tif")
        XCTAssertEqual(fei.datasets[0].metadata.beamEnergy, Quantity(5000, "V"))
        XCTAssertEqual(fei.datasets[0].metadata.detectorName, "ETD")
        XCTAssertTrue(fei.variant.contains("FEI/TFS"), fei.variant)
        let tvips = try Catalog.open(root + "/tiff/TVIPS_bin4.tif")
        XCTAssertEqual(tvips.datasets[0].metadata.magnification, 32_000)
        XCTAssertTrue(tvips.variant.contains("TVIPS"), tvips.variant)
    }

    /// A 4-D dataset (2-D scan of diffraction patterns, calibrated, y running downwards) written
    /// as a TIFF stack by emconv comes back with the same data, axes, names and units.
    func testEmconvTIFFOutputReadsBackExactly() throws {
        let ser = tmp + "/scan_1.ser"
        let dims = [SERWriter.Dim(4, offset: 1e-9, delta: 2e-9, description: "Position", units: "meters"),
                    SERWriter.Dim(3, offset: 0, delta: 3e-9, description: "Position", units: "meters")]
        try SERWriter.write(ser, image: true, dataType: 2, frame: [6, 5], dims: dims, calibration: (-4e7, 1e7)) { i in
            (0..<60).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ i) }
        }
        let original = try Catalog.open(ser).datasets[0]
        let tif = tmp + "/scan.tif"
        var o = ConversionOptions(threads: 2, commandLine: "test", overwrite: true)
        o.write.set("stack", "true")
        _ = try Converter.convert(input: ser, output: tif, options: o)
        let f = try Catalog.open(tif)
        let back = f.datasets[0]
        XCTAssertEqual(back.shape, original.shape)
        XCTAssertEqual(back.elementType, original.elementType)
        XCTAssertEqual(back.axes, original.axes, "names, units, offsets and scales")
        XCTAssertEqual(try DataHash.sha256(back), try DataHash.sha256(original))
        XCTAssertTrue(f.variant.contains("emconv ImageJ"), f.variant)
        XCTAssertTrue(f.warnings.isEmpty, "\(f.warnings)")
    }

    func testTiledBigTIFFStackThroughLibtiff() throws {
        let p = tmp + "/tiled.tif"
        func v(_ pg: Int, _ r: Int, _ c: Int) -> UInt16 { UInt16(truncatingIfNeeded: pg * 10_000 + r * 131 + c) }
        try TIFFFixtureWriter.writeTiled(p, big: true, width: 100, height: 70, pages: 3, tile: 32, value: v)
        let f = try Catalog.open(p)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.shape, [3, 70, 100])
        XCTAssertEqual(ds.elementType, .uint16)
        XCTAssertTrue(f.variant.hasPrefix("BigTIFF"), f.variant)
        XCTAssertTrue(f.variant.contains("tiles 32x32"), f.variant)
        let bytes = try DataHash.bytes(ds)
        bytes.withUnsafeBytes { raw in
            let u = raw.bindMemory(to: UInt16.self)
            for (pg, r, c) in [(0, 0, 0), (1, 69, 99), (2, 33, 64), (2, 31, 32)] {
                XCTAssertEqual(u[pg * 7000 + r * 100 + c], v(pg, r, c), "page \(pg) row \(r) col \(c)")
            }
        }
        XCTAssertTrue(f.warnings.contains { $0.contains("resolution") } == false)
    }

    func testImageJHyperstackAxes() throws {
        let w = 4, h = 3
        let pages = (0..<6).map { k in
            TIFFFixtureWriter.Page(width: w, height: h, bitsPerSample: 16, pixels: (0..<(w * h * 2)).map { UInt8(truncatingIfNeeded: $0 + k * 7) },
                                   tags: k == 0 ? [(270, .ascii("ImageJ=1.53t\nimages=6\nslices=3\nframes=2\nhyperstack=true\nunit=nm\nspacing=2.5\nfinterval=0.5\nloop=false\n")),
                                                   (282, .rational(4, 1)), (283, .rational(4, 1))] : [])
        }
        let p = tmp + "/hyper.tif"
        try TIFFFixtureWriter.build(p, pages: pages)
        let ds = try Catalog.open(p).datasets[0]
        XCTAssertEqual(ds.shape, [2, 3, 3, 4])
        XCTAssertEqual(ds.axes.map(\.name), ["frame", "slice", "y", "x"])
        XCTAssertEqual(ds.axes.map(\.units), ["s", "nm", "nm", "nm"])
        XCTAssertEqual(ds.axes.map(\.scale), [0.5, 2.5, 0.25, 0.25])
    }

    /// ImageJ's large stacks: one directory, images=N, the other images right after the first.
    func testImageJContiguousStackWithOneDirectory() throws {
        let w = 4, h = 3
        let all = (0..<(3 * w * h)).map { UInt16($0 * 3 + 1) }
        for be in [false, true] {
            func bytes(_ v: ArraySlice<UInt16>) -> [UInt8] { v.flatMap { be ? [UInt8($0 >> 8), UInt8($0 & 0xFF)] : [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
            let firstLE = all[0..<(w * h)].flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            let p = tmp + "/ij\(be).tif"
            // The builder writes the first image's strip, then this pointer blob right after it.
            try TIFFFixtureWriter.build(p, pages: [.init(width: w, height: h, bitsPerSample: 16, pixels: firstLE,
                                                         tags: [(270, .ascii("ImageJ=1.53t\nimages=3\nslices=3\nloop=false\n")),
                                                                (65500, .pointer(bytes(all[(w * h)...])))])], bigEndian: be)
            let f = try Catalog.open(p)
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, [3, h, w])
            XCTAssertEqual(try DataHash.bytes(ds), all.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }, "big-endian: \(be)")
            XCTAssertNotNil(ds.conventions["emconv_tiff_layout"])
            // Cut inside the third image: refused, naming the size.
            let b = try Data(contentsOf: URL(fileURLWithPath: p))
            try b.prefix(b.count - 100).write(to: URL(fileURLWithPath: p))
            XCTAssertThrowsError(try Catalog.open(p))
        }
    }

    func testEverySampleTypeBothByteOrdersClassicAndBig() throws {
        let types: [(Int, Int, Int, ElementType)] = [(8, 1, 1, .uint8), (8, 2, 1, .int8), (16, 1, 1, .uint16), (16, 2, 1, .int16),
                                                     (32, 1, 1, .uint32), (32, 2, 1, .int32), (64, 1, 1, .uint64), (64, 2, 1, .int64),
                                                     (32, 3, 1, .float32), (64, 3, 1, .float64), (8, 1, 3, .rgb8), (8, 1, 4, .rgba8)]
        for (bps, fmt, spp, type) in types {
            for big in [false, true] {
                for be in [false, true] {
                    let w = 5, h = 7
                    let px = (0..<(w * h * spp * bps / 8)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 3) }
                    let p = tmp + "/t.tif"
                    try TIFFFixtureWriter.build(p, pages: [.init(width: w, height: h, bitsPerSample: bps, sampleFormat: fmt, samplesPerPixel: spp, rowsPerStrip: 3, pixels: px),
                                                           .init(width: w, height: h, bitsPerSample: bps, sampleFormat: fmt, samplesPerPixel: spp, rowsPerStrip: 2, pixels: px.reversed())],
                                                big: big, bigEndian: be)
                    let f = try Catalog.open(p)
                    let ds = f.datasets[0]
                    let what = "\(type) big=\(big) be=\(be)"
                    XCTAssertEqual(ds.elementType, type, what)
                    XCTAssertEqual(ds.shape, [2, h, w], what)
                    XCTAssertEqual(try DataHash.bytes(ds), px + px.reversed(), what)
                    XCTAssertEqual(ds.sourceByteOrder, be ? .big : .little, what)
                }
            }
        }
    }

    func testVendorCalibrationsAndTheResolutionFallback() throws {
        let px = [UInt8](repeating: 9, count: 16)
        func open(_ tags: [(UInt16, TIFFFixtureWriter.Value)]) throws -> OpenedFile {
            let p = tmp + "/v\(UUID().uuidString).tif"
            try TIFFFixtureWriter.build(p, pages: [.init(width: 4, height: 4, bitsPerSample: 8, pixels: px, tags: tags)])
            return try Catalog.open(p)
        }
        let zeiss = try open([(34118, .ascii("0\r\nAP_PIXEL_SIZE\r\nImage Pixel Size = 2.5 nm\r\nAP_ACTUALKV\r\nEHT = 15.00 kV\r\nAP_MAG\r\nMag = 20.00 K X\r\nDP_DETECTOR_CHANNEL\r\nSignal A = InLens\r\n"))])
        XCTAssertEqual(zeiss.datasets[0].axes.map(\.units), ["nm", "nm"])
        XCTAssertEqual(zeiss.datasets[0].axes[1].scale, 2.5)
        XCTAssertEqual(zeiss.datasets[0].metadata.beamEnergy, Quantity(15, "kV"))
        XCTAssertEqual(zeiss.datasets[0].metadata.magnification, 20_000)
        XCTAssertEqual(zeiss.datasets[0].metadata.detectorName, "InLens")
        let fei = try open([(34682, .ascii("[User]\r\nDate=06/13/2016\r\nTime=05:06:40 PM\r\n[Beam]\r\nHV=2000\r\n[Scan]\r\nPixelWidth=1e-08\r\nPixelHeight=2e-08\r\n"))])
        XCTAssertEqual(fei.datasets[0].axes.map(\.scale), [2e-8, 1e-8])
        XCTAssertEqual(fei.datasets[0].metadata.startTime?.iso8601, "2016-06-13T17:06:40")
        var tv = [UInt8](repeating: 0, count: 244 + 6068)
        tv[0] = 2
        let pxBits = Float(0.75).bitPattern
        for k in 0..<4 { tv[244 + 2724 + k] = UInt8(truncatingIfNeeded: pxBits >> (8 * UInt32(k))); tv[244 + 2728 + k] = tv[244 + 2724 + k] }
        let tvips = try open([(37706, .pointer(tv))])
        XCTAssertEqual(tvips.datasets[0].axes.map(\.scale), [0.75, 0.75])
        XCTAssertEqual(tvips.datasets[0].axes[0].units, "nm")
        // Olympus SIS: the structure lands right after the 16 pixel bytes (offset 24); one
        // general-data record follows its 60-byte header and 8-byte tag list.
        var sis = Array("SIS0".utf8) + [UInt8](repeating: 0, count: 56 + 8 + 112)
        sis[54] = 1
        sis[60] = 1; sis[64] = UInt8(24 + 68)
        func putF64(_ v: Double, _ at: Int) { for k in 0..<8 { sis[68 + at + k] = UInt8(truncatingIfNeeded: v.bitPattern >> (8 * UInt64(k))) } }
        sis[68 + 10] = 0xF7; sis[68 + 11] = 0xFF            // lenexp -9
        putF64(2, 12); putF64(3, 20); putF64(5000, 36)
        let olympus = try open([(33560, .pointer(sis))])
        XCTAssertEqual(olympus.datasets[0].axes[0].scale, 3, accuracy: 1e-12)
        XCTAssertEqual(olympus.datasets[0].axes[1].scale, 2, accuracy: 1e-12)
        XCTAssertEqual(olympus.datasets[0].axes[0].units, "nm")
        XCTAssertEqual(olympus.datasets[0].metadata.magnification, 5000)
        let dm = try open([(65003, .ascii("µm")), (65004, .ascii("µm")), (65009, .doubles([0.5])), (65010, .doubles([0.25])), (65006, .doubles([3]))])
        XCTAssertEqual(dm.datasets[0].axes.map(\.units), ["um", "um"])
        XCTAssertEqual(dm.datasets[0].axes.map(\.scale), [0.25, 0.5])
        XCTAssertEqual(dm.datasets[0].axes[1].offset, 3)
        // JEOL SEM: the metadata text beside the TIFF (same stem) calibrates it and is a companion.
        let jeolTif = tmp + "/jeol.tif"
        try TIFFFixtureWriter.build(jeolTif, pages: [.init(width: 4, height: 4, bitsPerSample: 8, pixels: px)])
        try "$CM_FORMAT JEOL/SEM\n$CM_LABEL JEOL\n$SEM_DATA_VERSION 1\n$CM_MAG 5000\n$CM_ACCEL_VOLT 15.00\n$SM_MICRON_BAR 200\n$SM_MICRON_MARKER 10um\n"
            .write(toFile: tmp + "/jeol.txt", atomically: true, encoding: .utf8)
        let jeol = try Catalog.open(jeolTif)
        XCTAssertEqual(jeol.datasets[0].axes.map(\.units), ["um", "um"])
        XCTAssertEqual(jeol.datasets[0].axes[1].scale, 0.05, accuracy: 1e-15)
        XCTAssertEqual(jeol.datasets[0].metadata.beamEnergy, Quantity(15, "kV"))
        XCTAssertEqual(jeol.files.map { ($0 as NSString).lastPathComponent }, ["jeol.tif", "jeol.txt"])
        XCTAssertEqual(TIFFReader.companions(of: jeolTif), [tmp + "/jeol.txt"])
        // Nothing but resolution tags: used, and said so.
        let res = try open([(282, .rational(254, 1)), (283, .rational(254, 1)), (296, .short(2))])
        XCTAssertEqual(res.datasets[0].axes[1].scale, 100, accuracy: 1e-9)
        XCTAssertEqual(res.datasets[0].axes[1].units, "um")
        XCTAssertTrue(res.warnings.contains { $0.contains("resolution tags") }, "\(res.warnings)")
        XCTAssertNotNil(res.datasets[0].conventions["emconv_tiff_calibration"])
        // No calibration at all: uncalibrated, no claim.
        let none = try open([])
        XCTAssertEqual(none.datasets[0].axes.map(\.units), ["", ""])
    }

    func testTIFFIsLastAmongTheFormatReaders() {
        let names = Catalog.readers.map { $0.reader.descriptor.name }
        XCTAssertEqual(names.firstIndex(of: "tiff"), names.count - 2, "only the raw reader (chosen by options) after TIFF: \(names)")
        XCTAssertEqual(TIFFReader.identify(Probe(path: "x.tif", head: [0x49, 0x49, 42, 0, 8, 0, 0, 0], size: 8)), .maybe)
        XCTAssertEqual(TIFFReader.identify(Probe(path: "x.tif", head: [0x4D, 0x4D, 0, 43, 0, 8, 0, 0], size: 8)), .maybe)
        XCTAssertEqual(TIFFReader.identify(Probe(path: "x.tif", head: Array("MQ1,".utf8), size: 4)), .no)
    }

    func testHostileHeadersAreRefusedBeforeAllocating() throws {
        // A page claiming 60000 x 60000 float64 in a tiny uncompressed file.
        let p = tmp + "/huge.tif"
        try TIFFFixtureWriter.build(p, pages: [.init(width: 4, height: 4, bitsPerSample: 8, pixels: [UInt8](repeating: 1, count: 16))])
        var b = try [UInt8](Data(contentsOf: URL(fileURLWithPath: p)))
        // Patch ImageWidth/ImageLength (LONG entries) to 60000.
        let ifd = Int(b[4]) | Int(b[5]) << 8
        for k in 0..<Int(b[ifd]) {
            let e = ifd + 2 + k * 12
            let tag = Int(b[e]) | Int(b[e + 1]) << 8
            if tag == 256 || tag == 257 { b[e + 8] = 0x60; b[e + 9] = 0xEA }
        }
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Catalog.open(p)) { e in
            XCTAssertEqual((e as? EMError)?.code, .badInput, "\(e)")
        }
        // 12-bit samples: unsupported, named.
        try TIFFFixtureWriter.build(p, pages: [.init(width: 4, height: 4, bitsPerSample: 8, pixels: [UInt8](repeating: 1, count: 16), tags: [])])
        b = try [UInt8](Data(contentsOf: URL(fileURLWithPath: p)))
        for k in 0..<Int(b[ifd]) {
            let e = ifd + 2 + k * 12
            if (Int(b[e]) | Int(b[e + 1]) << 8) == 258 { b[e + 8] = 12 }
        }
        try Data(b).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Catalog.open(p)) { e in
            XCTAssertEqual((e as? EMError)?.code, .unsupported, "\(e)")
        }
    }

    func testTruncationAndCorruptionSweep() throws {
        var inputs: [String] = []
        if let root = SharedTestData.root {
            inputs += try SharedTestData.cases(format: ["TIFF"]).map { root + "/" + $0 }
        } else {
            print(SharedTestData.skipMessage + " (sweep runs on generated files only)")
        }
        let tiled = tmp + "/tiled.tif"
        try TIFFFixtureWriter.writeTiled(tiled, big: true, width: 40, height: 30, pages: 2, tile: 16) { p, r, c in UInt16(p * 1000 + r * 40 + c) }
        inputs.append(tiled)
        var converted = 0, refused = 0
        for input in inputs {
            let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
            let variants = Mutants.sweep(full, seed: 5)
            for (k, (bytes, truncated)) in variants.enumerated() {
                let d = try dir("c\(converted + refused)")
                let p = d + "/" + (input as NSString).lastPathComponent
                try Data(bytes).write(to: URL(fileURLWithPath: p))
                let out = d + "/out.nxs"
                do {
                    let r = try Converter.convert(input: p, output: out, options: ConversionOptions(threads: 1, commandLine: "test", overwrite: true))
                    converted += 1
                    if truncated { XCTAssertFalse(r.warnings.isEmpty, "\(input) cut \(k) converted without a warning") }
                } catch let e as EMError {
                    refused += 1
                    XCTAssertTrue([.badInput, .unsupported].contains(e.code), "\(input) variant \(k): \(e)")
                    XCTAssertFalse(e.description.contains("\n"))
                    XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(input) variant \(k): output left behind")
                    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d), [(input as NSString).lastPathComponent], "\(input) variant \(k): no temporary left behind")
                }
                try FileManager.default.removeItem(atPath: d)
            }
        }
        print("TIFF sweep: \(converted) converted, \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }
}
