import CDeflate
import CTIFF
import CZstd
@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatMIB
@testable import FormatEMPAD
@testable import FormatDM
@testable import FormatRaw
@testable import FormatEMD
@testable import FormatNeXus
@testable import WriterZspy
@testable import WriterTIFF
import EMConvTestSupport
import Foundation
import XCTest

/// Frames held in memory (native order), for writer round trips.
final class MemorySource: FrameSource {
    let bytes: [UInt8]
    let frameBytes: Int
    init(bytes: [UInt8], frameBytes: Int) { self.bytes = bytes; self.frameBytes = frameBytes }
    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + index * frameBytes, byteCount: frameBytes)
        }
    }
}

/// Round trips of the zspy, TIFF and NeXus writers and the NeXus reader on generated data.
final class WriterTests: TempDirectoryTestCase {
    /// A dataset with deterministic, type-spanning byte patterns.
    func makeFile(_ t: ElementType, shape: [Int] = [3, 5, 6, 7], frameRank: Int = 2, kind: String = "4d-stem") -> OpenedFile {
        let n = shape.reduce(1, *) * t.size
        var bytes = [UInt8](repeating: 0, count: n)
        var x: UInt32 = 0x1234_5678
        for i in 0..<n { x = x &* 1_664_525 &+ 1_013_904_223; bytes[i] = UInt8(truncatingIfNeeded: x >> 24) }
        if t == .bool { for i in 0..<n { bytes[i] &= 1 } }
        if t == .float32 || t == .float64 || t == .complex64 || t == .complex128 {
            // Keep floats finite (no NaN payloads): clear the top exponent bit of each component.
            let c = t.componentSize
            for i in stride(from: c - 1, to: n, by: c) { bytes[i] &= 0x3F }
        }
        let names = ["scan_y", "scan_x", "det_y", "det_x"].suffix(shape.count)
        let axes = zip(names, shape).enumerated().map { i, p in
            Axis(name: p.0, size: p.1, role: i < shape.count - frameRank ? .navigation : .signal, units: i % 2 == 0 ? "nm" : "nm",
                 calibration: .uniform(offset: Double(i) * -1.5, scale: 0.25 + Double(i)))
        }
        let fb = shape.suffix(frameRank).reduce(1, *) * t.size
        var md = NormalizedMetadata()
        md.beamEnergy = Quantity(200_000, "V")
        md.cameraLength = Quantity(0.12, "m")
        md.detectorName = "TestCam"
        md.startTime = Timestamp.parseISO("2024-02-03T04:05:06.5+01:00")
        let ds = Dataset(name: "data", title: "test \(t.rawValue)", axes: Array(axes), elementType: t, frameRank: frameRank,
                         quantity: "counts", signalKind: kind, metadata: md,
                         source: MemorySource(bytes: bytes, frameBytes: fb))
        return OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: [ds], files: [],
                          original: .object([("vendor", .object([("key", .string("value")), ("list", .array([.int(1), .int(2)]))]))]),
                          readerName: "test", readerVersion: "0")
    }

    func allBytes(_ ds: Dataset) throws -> [UInt8] { try DataHash.bytes(ds) }

    // MARK: zarr read-back (independent of the writer: JSON + libzstd/libdeflate + unshuffle)

    func readZarr(root: String, array: String, itemSize: Int) throws -> (MetaValue, [UInt8]) {
        let meta = try MetaValue.parseJSON(String(contentsOfFile: root + "/" + array + "/.zarray", encoding: .utf8))
        let shape = (meta["shape"]?.arrayValue ?? []).compactMap { $0.intValue }
        let chunks = (meta["chunks"]?.arrayValue ?? []).compactMap { $0.intValue }
        let shuffle = meta["filters"]?.arrayValue?.first?["elementsize"]?.intValue
        let compressor = meta["compressor"]?["id"]?.stringValue
        XCTAssertEqual(meta["dimension_separator"]?.stringValue, "/")
        let total = shape.reduce(1, *) * itemSize
        var out = [UInt8](repeating: 0, count: total)
        let chunkBytes = chunks.reduce(1, *) * itemSize
        let grid = zip(shape, chunks).map { ($0 + $1 - 1) / $1 }
        let nChunks = grid.reduce(1, *)
        for c in 0..<nChunks {
            var idx = [Int](repeating: 0, count: grid.count)
            var r = c
            for d in stride(from: grid.count - 1, through: 0, by: -1) { idx[d] = r % grid[d]; r /= grid[d] }
            let path = root + "/" + array + "/" + idx.map(String.init).joined(separator: "/")
            var raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            if compressor == "zstd" {
                var dec = [UInt8](repeating: 0, count: chunkBytes)
                let n = ZSTD_decompress(&dec, chunkBytes, raw, raw.count)
                XCTAssertEqual(ZSTD_isError(n), 0); XCTAssertEqual(n, chunkBytes)
                raw = dec
            } else if compressor == "zlib" {
                var dec = [UInt8](repeating: 0, count: chunkBytes)
                let d = libdeflate_alloc_decompressor()
                var got = 0
                XCTAssertEqual(libdeflate_zlib_decompress(d, raw, raw.count, &dec, chunkBytes, &got), LIBDEFLATE_SUCCESS)
                libdeflate_free_decompressor(d)
                raw = dec
            }
            if let es = shuffle, es > 1 {
                let n = raw.count / es
                var un = raw
                for i in 0..<n { for k in 0..<es { un[i * es + k] = raw[k * n + i] } }
                raw = un
            }
            XCTAssertEqual(raw.count, chunkBytes)
            // Copy the chunk's in-bounds part (C order).
            let rank = shape.count
            let inner = chunks[rank - 1]
            var pos = [Int](repeating: 0, count: rank)
            let lines = chunks.dropLast().reduce(1, *)
            for l in 0..<lines {
                var rr = l
                for d in stride(from: rank - 2, through: 0, by: -1) { pos[d] = rr % chunks[d]; rr /= chunks[d] }
                var g = zip(idx, chunks).map { $0 * $1 }
                for d in 0..<(rank - 1) { g[d] += pos[d] }
                if zip(g, shape).contains(where: { $0 >= $1 }) { continue }
                let count = min(inner, shape[rank - 1] - g[rank - 1])
                var flat = 0
                for d in 0..<rank { flat = flat * shape[d] + g[d] }
                for b in 0..<(count * itemSize) { out[flat * itemSize + b] = raw[l * inner * itemSize + b] }
            }
        }
        return (meta, out)
    }

    func testZspyRoundTripEveryElementType() throws {
        for t in ElementType.allCases {
            for comp in [Compression.zstd(level: 1), .gzip(level: 1), .none] {
                let f = makeFile(t)
                let out = tmp + "/\(t.rawValue)-\(comp).zspy"
                let o = OptionValues(compression: comp)
                _ = try ZspyWriter.write(f, to: out, context: .standalone(f, options: o))
                let (meta, data) = try readZarr(root: out, array: "Experiments/test \(t.rawValue)/data", itemSize: t.size)
                XCTAssertTrue(data == (try allBytes(f.datasets[0])), "\(t) \(comp)")
                XCTAssertEqual(meta["shape"]?.arrayValue?.compactMap(\.intValue), [3, 5, 6, 7])
                XCTAssertEqual(meta["chunks"]?.arrayValue?.compactMap(\.intValue).suffix(2), [6, 7], "chunks hold whole frames")
                let ax = try MetaValue.parseJSON(String(contentsOfFile: out + "/Experiments/test \(t.rawValue)/axis-2/.zattrs", encoding: .utf8))
                XCTAssertEqual(ax["name"]?.stringValue, "det_y")
                XCTAssertEqual(ax["navigate"], .bool(false))
                XCTAssertEqual(ax["scale"]?.doubleValue, 2.25)
                XCTAssertEqual(ax["offset"]?.doubleValue, -3)
                XCTAssertEqual(ax["units"]?.stringValue, "nm")
            }
        }
    }

    func testZspyMetadataAndOriginal() throws {
        let f = makeFile(.uint16)
        let out = tmp + "/m.zspy"
        _ = try ZspyWriter.write(f, to: out, context: .standalone(f, threads: 1))
        let base = out + "/Experiments/test uint16"
        let root = try MetaValue.parseJSON(String(contentsOfFile: out + "/.zattrs", encoding: .utf8))
        XCTAssertEqual(root["file_format"]?.stringValue, "ZSpy")
        XCTAssertEqual(root["file_format_version"]?.stringValue, "3.3")
        let tem = try MetaValue.parseJSON(String(contentsOfFile: base + "/metadata/Acquisition_instrument/TEM/.zattrs", encoding: .utf8))
        XCTAssertEqual(tem["beam_energy"]?.doubleValue, 200)
        XCTAssertEqual(tem["camera_length"]?.doubleValue, 120)
        let gen = try MetaValue.parseJSON(String(contentsOfFile: base + "/metadata/General/.zattrs", encoding: .utf8))
        XCTAssertEqual(gen["time"]?.stringValue, "03:05:06.500000")
        XCTAssertEqual(gen["time_zone"]?.stringValue, "UTC")
        let sig = try MetaValue.parseJSON(String(contentsOfFile: base + "/metadata/Signal/.zattrs", encoding: .utf8))
        XCTAssertEqual(sig["signal_type"]?.stringValue, "electron_diffraction")
        let orig = try MetaValue.parseJSON(String(contentsOfFile: base + "/original_metadata/vendor/.zattrs", encoding: .utf8))
        XCTAssertEqual(orig["key"]?.stringValue, "value")
        XCTAssertEqual(orig["list"], .array([.int(1), .int(2)]))
    }

    /// Parses a stored ZIP (central directory) and returns name → bytes, checking CRCs.
    func readZip(_ path: String) throws -> [String: [UInt8]] {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        var eocd = b.count - 22
        while eocd > 0 && u32(eocd) != 0x0605_4b50 { eocd -= 1 }
        XCTAssertGreaterThan(eocd, 0)
        let n = u16(eocd + 10)
        var p = u32(eocd + 16)
        var out: [String: [UInt8]] = [:]
        for _ in 0..<n {
            XCTAssertEqual(u32(p), 0x0201_4b50)
            XCTAssertEqual(u16(p + 10), 0, "stored")
            let crc = u32(p + 16), size = u32(p + 24), nameLen = u16(p + 28), extra = u16(p + 30), off = u32(p + 42)
            let name = String(decoding: b[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self)
            XCTAssertEqual(u32(off), 0x0403_4b50)
            let dataStart = off + 30 + u16(off + 26) + u16(off + 28)
            let data = Array(b[dataStart..<(dataStart + size)])
            XCTAssertEqual(Int(libdeflate_crc32(0, data, data.count)), crc, name)
            out[name] = data
            p += 46 + nameLen + extra
        }
        return out
    }

    func testZspyZipHoldsTheSameTree() throws {
        let f = makeFile(.float32, shape: [4, 9, 16, 16])
        let dir = tmp + "/z.zspy", zip = tmp + "/z.zspy.zip"
        _ = try ZspyWriter.write(f, to: dir, context: .standalone(f, threads: 2))
        _ = try ZspyZipWriter.write(f, to: zip, context: .standalone(f, threads: 2))
        let members = try readZip(zip)
        let files = OutputTree.files(dir)
        XCTAssertEqual(Set(members.keys), Set(files))
        for rel in files where rel != ".zattrs" {
            XCTAssertEqual(members[rel], [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel))), rel)
        }
    }

    func testZip64WhenOverSixtyFiveThousandMembers() throws {
        let p = tmp + "/many.zip"
        let sink = try ZipSink(path: p)
        for i in 0..<70000 { try sink.put("k/\(i)", "v\(i)") }
        try sink.finish()
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        // EOCD says 0xFFFF entries and a ZIP64 locator precedes it.
        let eocd = b.count - 22
        XCTAssertEqual(Array(b[eocd..<(eocd + 4)]), [0x50, 0x4b, 0x05, 0x06])
        XCTAssertEqual(Int(b[eocd + 10]) | Int(b[eocd + 11]) << 8, 0xFFFF)
        XCTAssertEqual(Array(b[(eocd - 20)..<(eocd - 16)]), [0x50, 0x4b, 0x06, 0x07])
        let z64 = eocd - 20 - 56
        XCTAssertEqual(Array(b[z64..<(z64 + 4)]), [0x50, 0x4b, 0x06, 0x06])
        var count = 0
        for k in 0..<8 { count |= Int(b[z64 + 32 + k]) << (8 * k) }
        XCTAssertEqual(count, 70000)
    }

    // MARK: TIFF

    func readTIFF(_ path: String) throws -> (pages: Int, bytes: [UInt8], description: String, xres: Float, yres: Float, compression: UInt16) {
        emc_tiff_silence()
        guard let tif = TIFFOpen(path, "r") else { throw EMError(.badInput, file: path, "libtiff cannot open") }
        defer { TIFFClose(tif) }
        var out: [UInt8] = []
        var pages = 0
        var desc = ""
        var xr: Float = 0, yr: Float = 0
        var comp: UInt16 = 0
        repeat {
            if pages == 0 {
                var s: UnsafePointer<CChar>?
                if emc_tiff_get_string(tif, UInt32(TIFFTAG_IMAGEDESCRIPTION), &s) == 1, let s { desc = String(cString: s) }
                _ = emc_tiff_get_float(tif, UInt32(TIFFTAG_XRESOLUTION), &xr)
                _ = emc_tiff_get_float(tif, UInt32(TIFFTAG_YRESOLUTION), &yr)
                _ = emc_tiff_get_u16(tif, UInt32(TIFFTAG_COMPRESSION), &comp)
            }
            let strips = TIFFNumberOfStrips(tif)
            let stripSize = TIFFStripSize(tif)
            var buf = [UInt8](repeating: 0, count: Int(stripSize))
            for s in 0..<strips {
                let n = TIFFReadEncodedStrip(tif, s, &buf, stripSize)
                XCTAssertGreaterThan(n, 0)
                out += buf.prefix(Int(n))
            }
            pages += 1
        } while TIFFReadDirectory(tif) == 1
        return (pages, out, desc, xr, yr, comp)
    }

    func testTIFFRoundTripTypesAndCalibration() throws {
        let types: [ElementType] = [.uint8, .int8, .uint16, .int16, .uint32, .int32, .float32, .float64, .uint64, .int64, .bool, .rgb8, .rgba8]
        for t in types {
            for comp in [Compression.gzip(level: 6), .zstd(level: 3), .none] {
                let f = makeFile(t, shape: [4, 600, 700], frameRank: 2, kind: "stack")
                let out = tmp + "/\(t.rawValue).tif"
                let o = OptionValues(compression: comp)
                try TIFFWriter.check(f, context: .standalone(f, options: o))
                _ = try TIFFWriter.write(f, to: out, context: .standalone(f, options: o))
                let r = try readTIFF(out)
                XCTAssertEqual(r.pages, 4)
                XCTAssertTrue(r.bytes == (try allBytes(f.datasets[0])), "\(t) \(comp)")
                XCTAssertTrue(r.description.hasPrefix("ImageJ=1.11a\nimages=4\nslices=4\n"), r.description)
                XCTAssertTrue(r.description.contains("\nunit=nm\n"))
                XCTAssertTrue(r.description.contains("\nspacing=0.25\n"), r.description)
                XCTAssertEqual(Double(r.xres), 1 / 2.25, accuracy: 1e-6)
                XCTAssertEqual(Double(r.yres), 1 / 1.25, accuracy: 1e-6)
                XCTAssertEqual(r.compression, comp == .none ? 1 : comp == .gzip(level: 6) ? 8 : 50000)
            }
        }
    }

    func testTIFFHyperstackOf4DWithStack() throws {
        let f = makeFile(.uint16, shape: [3, 5, 6, 7])
        XCTAssertThrowsError(try TIFFWriter.check(f, context: .standalone(f))) { e in
            XCTAssertTrue("\(e)".contains("--stack"), "\(e)")
        }
        let o = OptionValues(["stack": "true", "bigtiff": "true"])
        let out = tmp + "/h.tif"
        _ = try TIFFWriter.write(f, to: out, context: .standalone(f, options: o))
        let r = try readTIFF(out)
        XCTAssertEqual(r.pages, 15)
        XCTAssertTrue(r.bytes == (try allBytes(f.datasets[0])))
        XCTAssertTrue(r.description.contains("images=15\nslices=5\nframes=3\nhyperstack=true\n"), r.description)
        let head = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)).prefix(4))
        XCTAssertEqual(head, [0x49, 0x49, 43, 0], "BigTIFF")
    }

    func testConvertRefusesComplexToTIFFBeforeWriting() throws {
        // A raw complex64 file through the CLI: one-line error, exit 65, nothing written.
        let raw = tmp + "/c.raw"
        FileManager.default.createFile(atPath: raw, contents: Data(repeating: 1, count: 2 * 4 * 4 * 8))
        let out = tmp + "/c.tif"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "complex64", "--raw-shape", "2,4,4", "--quiet"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("complex"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.contains("tmp-emconv") }, [])
    }

    // MARK: NeXus reader and any-to-any

    func testNeXusRoundTripThenZspyExact() throws {
        for t in [ElementType.uint16, .float32, .int8, .complex64, .float64] {
            let f = makeFile(t)
            let nxs = tmp + "/\(t.rawValue).nxs"
            let o = OptionValues(compression: .zstd(level: 3))
            _ = try NeXusWriter.write(f, to: nxs, context: .standalone(f, options: o))
            XCTAssertTrue(try Catalog.candidates(for: nxs).first == NeXusReader.self)
            let back = try Catalog.open(nxs)
            XCTAssertEqual(back.datasets.count, 1, "the derived preview is not a dataset")
            let ds = back.datasets[0]
            let orig = f.datasets[0]
            XCTAssertEqual(ds.axes, orig.axes)
            XCTAssertEqual(ds.elementType, t)
            XCTAssertEqual(ds.frameRank, 2)
            XCTAssertEqual(ds.name, "data")
            XCTAssertEqual(ds.title, orig.title)
            XCTAssertEqual(ds.signalKind, "4d-stem")
            XCTAssertEqual(ds.metadata.beamEnergy, orig.metadata.beamEnergy)
            XCTAssertEqual(ds.metadata.cameraLength, orig.metadata.cameraLength)
            XCTAssertEqual(ds.metadata.startTime?.date, orig.metadata.startTime?.date)
            XCTAssertEqual(back.original, f.original)
            XCTAssertTrue((try allBytes(ds)) == (try allBytes(orig)), "\(t)")
            let z = tmp + "/\(t.rawValue).zspy"
            _ = try ZspyWriter.write(back, to: z, context: .standalone(back, threads: 2))
            let (_, data) = try readZarr(root: z, array: "Experiments/test \(t.rawValue)/data", itemSize: t.size)
            XCTAssertTrue(data == (try allBytes(orig)), "\(t)")
        }
    }

    func testGenericNXdataWithDefaultChain() throws {
        let p = tmp + "/g.nxs"
        do {
            let h5 = try HDF5File(creating: p, truncate: true)
            try h5.root.setAttribute("default", "e")
            let e = try h5.root.createGroup("e", nxClass: "NXentry")
            try e.setAttribute("default", "d")
            let d = try e.createGroup("d", nxClass: "NXdata")
            try d.setAttribute("signal", "counts")
            try d.setAttribute("axes", ["t", "."])
            try d.setAttribute("t_indices", unsigned: [0])
            _ = try d.writeDoubles("counts", (0..<12).map(Double.init), shape: [3, 4])
            _ = try d.writeDoubles("t", [0.5, 1.0, 2.0], units: "s")
            try h5.flush()
        }
        let f = try Catalog.open(p)
        XCTAssertEqual(f.format, "nexus")
        let ds = f.datasets[0]
        XCTAssertEqual(ds.shape, [3, 4])
        XCTAssertEqual(ds.axes[0].name, "t")
        XCTAssertEqual(ds.axes[0].units, "s")
        XCTAssertEqual(ds.axes[0].calibration, .coordinates([0.5, 1.0, 2.0]))
        let b = try allBytes(ds)
        b.withUnsafeBytes { XCTAssertEqual(Array($0.bindMemory(to: Double.self)), (0..<12).map(Double.init)) }
    }

    func testConvertOverwritesZspyDirectoryAndReportsTreeChecksum() throws {
        let raw = tmp + "/d.raw"
        FileManager.default.createFile(atPath: raw, contents: Data((0..<(4 * 8 * 8 * 2)).map { UInt8($0 & 0xFF) }))
        let out = tmp + "/o.zspy"
        var r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "4,8,8", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "4,8,8", "--quiet"])
        XCTAssertEqual(r.status, 73, r.stderr)
        r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "4,8,8", "--overwrite", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(j["output_sha256"]?.stringValue, try OutputTree.sha256(out))
        XCTAssertEqual(j["output_bytes"]?.intValue.map(Int64.init), OutputTree.size(out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(".") }, [])
    }
}

extension MetaValue {
    var arrayValue: [MetaValue]? { if case let .array(a) = self { return a }; return nil }
}
