@testable import EMConvKit
@testable import EMCore
import CBlosc
import CDeflate
import EMHDF5
import EMConvTestSupport
import Foundation
import XCTest

/// The `.hspy` and `.zspy` readers: emconv's own outputs, files HyperSpy saves, Blosc stores,
/// round trips to NeXus, and damaged or hostile stores.
final class HyperSpyReadTests: TempDirectoryTestCase {
    /// A dataset with distinctive bytes, calibrated axes and instrument metadata.
    func dataset(_ shape: [Int], _ type: ElementType, frameRank: Int, kind: String, name: String = "d") -> Dataset {
        let n = shape.reduce(1, *) * type.size
        let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 7) }
        let axes = shape.enumerated().map { i, s in
            Axis(name: "ax\(i)", size: s, role: i < shape.count - frameRank ? .navigation : .signal,
                 units: i == shape.count - 1 ? (kind == "eels" ? "eV" : "1/nm") : "nm",
                 calibration: i == 0 && shape.count > 2 ? .coordinates((0..<s).map { Double($0 * $0) + 0.5 }) : .uniform(offset: Double(i) - 1.5, scale: 0.25 * Double(i + 1)))
        }
        var md = NormalizedMetadata()
        md.beamEnergy = Quantity(200, "kV")
        md.cameraLength = Quantity(0.15, "m")
        md.dwellTime = Quantity(2, "us")
        let fb = shape.suffix(frameRank).reduce(1, *) * type.size
        return Dataset(name: name, title: "title of \(name)", axes: axes, elementType: type, frameRank: frameRank, quantity: "counts",
                       quantityUnits: "e", signalKind: kind, metadata: md, original: .object([("vendor", .object([("key", .string("v")), ("list", .array([.int(1), .int(2)]))]))]),
                       conventions: ["orientation": "as stored"], source: MemorySource(bytes: bytes, frameBytes: fb))
    }

    func opened(_ ds: [Dataset]) -> OpenedFile {
        OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: ds, files: [], original: .object([]),
                   readerName: "test", readerVersion: "0")
    }

    func assertSame(_ back: Dataset, _ orig: Dataset, _ tag: String) throws {
        XCTAssertEqual(back.name, orig.name, tag)
        XCTAssertEqual(back.title, orig.title, tag)
        XCTAssertEqual(back.shape, orig.shape, tag)
        XCTAssertEqual(back.elementType, orig.elementType, tag)
        XCTAssertEqual(back.frameRank, orig.frameRank, tag)
        XCTAssertEqual(back.axes, orig.axes, "\(tag): names, roles, units, calibrations")
        XCTAssertEqual(back.signalKind, orig.signalKind, tag)
        XCTAssertEqual(back.quantity, orig.quantity, tag)
        XCTAssertEqual(back.quantityUnits, orig.quantityUnits, tag)
        XCTAssertEqual(back.conventions, orig.conventions, tag)
        XCTAssertEqual(HyperSpyMetadata.convert(back.metadata.beamEnergy, to: "V"), 200_000, tag)
        XCTAssertEqual(HyperSpyMetadata.convert(back.metadata.cameraLength, to: "m")!, 0.15, accuracy: 1e-12, tag)
        XCTAssertEqual(HyperSpyMetadata.convert(back.metadata.dwellTime, to: "s")!, 2e-6, accuracy: 1e-18, tag)
        XCTAssertEqual(back.original.value(at: ["vendor", "list"]), .array([.int(1), .int(2)]), tag)
        XCTAssertEqual(try DataHash.sha256(back), try DataHash.sha256(orig), "\(tag): data bit-exact")
    }

    func testEmconvHSpyZspyAndZspyZipOutputsReadBackExactly() throws {
        let cases: [(Dataset, String)] = [
            (dataset([3, 4, 5, 6], .uint16, frameRank: 2, kind: "4d-stem"), "4d uint16"),
            (dataset([2, 3, 17], .float32, frameRank: 1, kind: "eels"), "spectrum image float32"),
            (dataset([7, 9], .complex64, frameRank: 2, kind: "image"), "complex image"),
            (dataset([4, 5], .int8, frameRank: 2, kind: "image"), "int8 image"),
            (dataset([2, 3, 4], .rgb8, frameRank: 2, kind: "stack"), "rgb stack"),
        ]
        for (ds, tag) in cases {
            for (writer, ext) in [(HSpyWriter.self as FormatWriter.Type, "hspy"), (ZspyWriter.self, "zspy"), (ZspyZipWriter.self, "zspy.zip")] {
                let f = opened([ds])
                let out = tmp + "/\(tag.replacingOccurrences(of: " ", with: "_")).\(ext)"
                _ = try writer.write(f, to: out, context: .standalone(f))
                let back = try Catalog.open(out)
                XCTAssertEqual(back.format, ext == "hspy" ? "hspy" : "zspy", "\(tag) \(ext)")
                XCTAssertEqual(back.datasets.count, 1)
                try assertSame(back.datasets[0], ds, "\(tag) \(ext)")
            }
        }
    }

    /// any → zspy → NeXus and any → TIFF → NeXus keep the data bit for bit (issue 14.4).
    func testAnyToZspyToNeXusAndAnyToTIFFToNeXusBitExact() throws {
        let ser = tmp + "/scan_1.ser"
        let dims = [SERWriter.Dim(4, offset: 1e-9, delta: 2e-9, description: "Position", units: "meters"),
                    SERWriter.Dim(3, offset: 0, delta: 3e-9, description: "Position", units: "meters")]
        try SERWriter.write(ser, image: true, dataType: 2, frame: [6, 5], dims: dims, calibration: (-4e7, 1e7)) { i in
            (0..<60).map { UInt8(truncatingIfNeeded: $0 &* 5 &+ i) }
        }
        let original = try Catalog.open(ser).datasets[0]
        let want = try DataHash.sha256(original)
        for (mid, extra) in [("scan.zspy", [:]), ("scan.tif", ["stack": "true"]), ("scan.hspy", [:]), ("scanzip.zspy.zip", [:])] as [(String, [String: String])] {
            var o = ConversionOptions(threads: 2, commandLine: "test", overwrite: true)
            for (k, v) in extra { o.write.set(k, v) }
            _ = try Converter.convert(input: ser, output: tmp + "/" + mid, options: o)
            let nxs = tmp + "/" + mid + ".nxs"
            _ = try Converter.convert(input: tmp + "/" + mid, output: nxs, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true))
            let back = try Catalog.open(nxs).datasets[0]
            XCTAssertEqual(back.shape, original.shape, mid)
            XCTAssertEqual(back.elementType, original.elementType, mid)
            // HyperSpy's axes have no long name: names, roles, units and calibrations must survive.
            XCTAssertEqual(back.axes.map { Axis(name: $0.name, size: $0.size, role: $0.role, units: $0.units, calibration: $0.calibration) },
                           original.axes.map { Axis(name: $0.name, size: $0.size, role: $0.role, units: $0.units, calibration: $0.calibration) },
                           "\(mid): names, units, offsets and scales")
            XCTAssertEqual(try DataHash.sha256(back), want, "\(mid) → NeXus: data bit-exact")
        }
    }

    // MARK: Blosc stores written here the way numcodecs writes them (HyperSpy's default)

    /// A zspy tree holding `values` (uint16, `shape`) in Blosc chunks of `chunks`.
    func bloscStore(_ root: String, shape: [Int], chunks: [Int], values: [UInt16], separator: String = "/",
                    bigEndian: Bool = false, corrupt: ((inout [UInt8]) -> Void)? = nil) throws {
        let fm = FileManager.default
        func put(_ key: String, _ bytes: [UInt8]) throws {
            let p = root + "/" + key
            try fm.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            XCTAssertTrue(fm.createFile(atPath: p, contents: Data(bytes)))
        }
        func putJSON(_ key: String, _ s: String) throws { try put(key, Array(s.utf8)) }
        try putJSON(".zgroup", #"{"zarr_format": 2}"#)
        try putJSON(".zattrs", #"{"file_format": "ZSpy", "file_format_version": "3.3"}"#)
        let base = "Experiments/blosc scan"
        try putJSON(base + "/.zgroup", #"{"zarr_format": 2}"#)
        for (i, s) in shape.enumerated() {
            try putJSON("\(base)/axis-\(i)/.zgroup", #"{"zarr_format": 2}"#)
            let nav = i < shape.count - 2
            try putJSON("\(base)/axis-\(i)/.zattrs", #"{"_type": "UniformDataAxis", "name": "_None_", "units": "_None_", "navigate": \#(nav), "is_binned": false, "size": \#(s), "scale": 1.0, "offset": 0.0}"#)
        }
        try putJSON(base + "/metadata/.zgroup", #"{"zarr_format": 2}"#)
        try putJSON(base + "/metadata/General/.zgroup", #"{"zarr_format": 2}"#)
        try putJSON(base + "/metadata/General/.zattrs", #"{"title": "blosc scan"}"#)
        try putJSON(base + "/original_metadata/.zgroup", #"{"zarr_format": 2}"#)
        let dtype = bigEndian ? ">u2" : "<u2"
        let sep = separator == "/" ? #", "dimension_separator": "/""# : ""
        try putJSON(base + "/data/.zarray", """
            {"chunks": \(chunks), "compressor": {"blocksize": 0, "clevel": 1, "cname": "zstd", "id": "blosc", "shuffle": 1}\(sep),
             "dtype": "\(dtype)", "fill_value": 0, "filters": null, "order": "C", "shape": \(shape), "zarr_format": 2}
            """)
        let grid = zip(shape, chunks).map { ($0 + $1 - 1) / $1 }
        var g = [Int](repeating: 0, count: shape.count)
        for _ in 0..<grid.reduce(1, *) {
            var chunk = [UInt16](repeating: 0, count: chunks.reduce(1, *))
            for e in 0..<chunk.count {
                var rem = e, flat = 0, inside = true
                var c = [Int](repeating: 0, count: shape.count)
                for d in stride(from: shape.count - 1, through: 0, by: -1) { c[d] = rem % chunks[d]; rem /= chunks[d] }
                for d in 0..<shape.count {
                    let x = g[d] * chunks[d] + c[d]
                    if x >= shape[d] { inside = false; break }
                    flat = flat * shape[d] + x
                }
                if inside { chunk[e] = bigEndian ? values[flat].byteSwapped : values[flat] }
            }
            var out = [UInt8](repeating: 0, count: chunk.count * 2 + 16)
            let n = chunk.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in
                    blosc_compress_ctx(1, 1, 2, src.count, src.baseAddress, dst.baseAddress, dst.count, "zstd", 0, 1)
                }
            }
            XCTAssertGreaterThan(n, 0)
            var bytes = Array(out.prefix(Int(n)))
            corrupt?(&bytes)
            try put(base + "/data/" + g.map(String.init).joined(separator: separator), bytes)
            for d in stride(from: shape.count - 1, through: 0, by: -1) {
                g[d] += 1
                if g[d] < grid[d] { break }
                g[d] = 0
            }
        }
    }

    func hash(_ values: [UInt16]) -> String {
        let d = SHA256Digest()
        values.withUnsafeBytes { d.update($0) }
        return d.finalizeHex()
    }

    func testBloscChunksSplittingFramesFlatAndNestedKeysBothByteOrders() throws {
        let shape = [3, 5, 7, 6]
        let values = (0..<shape.reduce(1, *)).map { UInt16(truncatingIfNeeded: $0 &* 977) }
        for (sep, be) in [("/", false), (".", false), ("/", true)] {
            let root = tmp + "/b\(sep == "/" ? "n" : "f")\(be).zspy"
            // Chunks cut the navigation and the detector axes, with partial edge chunks.
            try bloscStore(root, shape: shape, chunks: [2, 2, 3, 4], values: values, separator: sep, bigEndian: be)
            let f = try Catalog.open(root)
            XCTAssertEqual(f.format, "zspy")
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, shape)
            XCTAssertEqual(ds.frameRank, 2)
            XCTAssertEqual(ds.title, "blosc scan")
            XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "y", "x"])
            XCTAssertEqual(try DataHash.sha256(ds), hash(values), "separator \(sep) big-endian \(be)")
        }
    }

    func testZspyChunkDecodingToTheWrongSizeIsAnErrorNamingTheChunk() throws {
        let root = tmp + "/bad.zspy"
        let values = (0..<(2 * 2 * 4 * 4)).map { UInt16($0) }
        try bloscStore(root, shape: [2, 2, 4, 4], chunks: [1, 1, 4, 4], values: values)
        // Replace chunk 1/0/0/0 with a valid Blosc frame of half the declared size.
        var half = [UInt16](repeating: 7, count: 8)
        var out = [UInt8](repeating: 0, count: 64)
        let n = half.withUnsafeMutableBytes { s in out.withUnsafeMutableBytes { d in blosc_compress_ctx(1, 1, 2, s.count, s.baseAddress, d.baseAddress, d.count, "lz4", 0, 1) } }
        let key = "Experiments/blosc scan/data/1/0/0/0"
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/" + key, contents: Data(out.prefix(Int(n)))))
        let out2 = tmp + "/bad.nxs"
        XCTAssertThrowsError(try Converter.convert(input: root, output: out2, options: ConversionOptions(threads: 2, commandLine: "test"))) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .badInput, "\(e)")
            XCTAssertEqual(err?.location, key, "\(e)")
            XCTAssertTrue(err?.message.contains("16 bytes, not the 32 bytes") == true, "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out2), "no half-written output")
        // The CLI names the store and the chunk, exit 65.
        let r = try CLIRunner.run(["convert", root, "-o", out2, "--quiet"])
        XCTAssertEqual(r.status, 65)
        XCTAssertTrue(r.stderr.contains("bad.zspy") && r.stderr.contains("data/1/0/0/0"), r.stderr)
    }

    /// A dataset of 0 dimensions (a single value): HyperSpy never stores one as a signal's data
    /// (the .hspy reader refuses it, naming the dataset); one from another reader (zspy) is
    /// refused by the chunked HDF5 writers with one line naming the dataset, exit 65 and no output
    /// (it was exit 74, "HDF5 could not set chunk shape", an output error), and written by zspy.
    func testZeroDimensionalDataIsRefusedByHSpyReaderAndChunkedWriters() throws {
        let path = tmp + "/scalar.hspy"
        do {
            let h5 = try HDF5File(creating: path, truncate: true)
            try h5.root.setAttribute("file_format", "HyperSpy")
            try h5.root.setAttribute("file_format_version", "3.1")
            let g = try h5.root.createGroup("Experiments").createGroup("s")
            try g.writeInts("data", [7], shape: [])
        }
        XCTAssertThrowsError(try Catalog.open(path)) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .badInput, "\(e)")
            XCTAssertTrue(err?.message.contains("no dimensions") == true && err?.location == "/Experiments/s/data", "\(e)")
        }
        let f = opened([dataset([], .uint16, frameRank: 0, kind: "image")])
        for (writer, ext) in [(HSpyWriter.self as FormatWriter.Type, "hspy"), (EMD1Writer.self, "emd")] {
            let out = tmp + "/scalar-out.\(ext)"
            XCTAssertThrowsError(try writer.write(f, to: out, context: .standalone(f))) { e in
                let err = e as? EMError
                XCTAssertEqual(err?.code, .unsupported, "\(ext): \(e)")
                XCTAssertTrue(err?.message.contains("0 dimensions") == true, "\(ext): \(e)")
            }
        }
        let zspy = tmp + "/scalar.zspy"
        _ = try ZspyWriter.write(f, to: zspy, context: .standalone(f))
        XCTAssertEqual(try Catalog.open(zspy).datasets.first?.shape, [])
        let out = tmp + "/scalar-cli.nxs"
        let r = try CLIRunner.run(["convert", zspy, "-o", out])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("0 dimensions"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output")
    }

    func testHostileZarrDeclarationsAreRefusedBeforeAllocatingAndLinksAreNotFollowed() throws {
        let values = (0..<16).map { UInt16($0) }
        // A chunk shape of 2^40 elements: refused from the .zarray, nothing allocated.
        let huge = tmp + "/huge.zspy"
        try bloscStore(huge, shape: [1, 1, 4, 4], chunks: [1, 1, 4, 4], values: values)
        let zarray = huge + "/Experiments/blosc scan/data/.zarray"
        var text = try String(contentsOfFile: zarray, encoding: .utf8)
        text = text.replacingOccurrences(of: #""chunks": [1, 1, 4, 4]"#, with: #""chunks": [1, 1, 1048576, 1048576]"#)
        try text.write(toFile: zarray, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Catalog.open(huge)) { e in
            XCTAssertEqual((e as? EMError)?.code, .badInput, "\(e)")
            XCTAssertTrue("\(e)".contains("memory budget"), "\(e)")
        }
        // A symbolic link in place of a chunk pointing at a file outside the store.
        let linked = tmp + "/linked.zspy"
        try bloscStore(linked, shape: [1, 1, 4, 4], chunks: [1, 1, 4, 4], values: values)
        let chunk = linked + "/Experiments/blosc scan/data/0/0/0/0"
        try FileManager.default.moveItem(atPath: chunk, toPath: tmp + "/outside")
        try FileManager.default.createSymbolicLink(atPath: chunk, withDestinationPath: tmp + "/outside")
        let f = try Catalog.open(linked)
        XCTAssertThrowsError(try DataHash.sha256(f.datasets[0])) { e in
            XCTAssertTrue("\(e)".contains("symbolic link"), "\(e)")
        }
        // An axis size that contradicts the data.
        let axis = tmp + "/axis.zspy"
        try bloscStore(axis, shape: [1, 1, 4, 4], chunks: [1, 1, 4, 4], values: values)
        let attrs = axis + "/Experiments/blosc scan/axis-3/.zattrs"
        try (try String(contentsOfFile: attrs, encoding: .utf8)).replacingOccurrences(of: #""size": 4"#, with: #""size": 5"#)
            .write(toFile: attrs, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Catalog.open(axis)) { e in
            XCTAssertTrue("\(e)".contains("axis-3") && "\(e)".contains("size 5"), "\(e)")
        }
        // A ZIP whose central directory points past its end.
        let zip = tmp + "/cut.zspy.zip"
        let f2 = opened([dataset([2, 3, 4], .uint16, frameRank: 2, kind: "stack")])
        _ = try ZspyZipWriter.write(f2, to: zip, context: .standalone(f2))
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: zip)))
        let eocd = bytes.count - 22
        bytes[eocd + 16] = 0xFF; bytes[eocd + 17] = 0xFF; bytes[eocd + 18] = 0xFF; bytes[eocd + 19] = 0x7F
        try Data(bytes).write(to: URL(fileURLWithPath: zip))
        XCTAssertThrowsError(try Catalog.open(zip)) { e in
            XCTAssertTrue("\(e)".contains("central directory"), "\(e)")
        }
    }

    // MARK: Files HyperSpy saves (the interop venv's HyperSpy; skipped without it)

    func testFilesSavedByHyperSpyConvertToNeXusBitExactly() throws {
        let python = SharedTestData.packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("skipped: .venv with HyperSpy not found (scripts/interop.sh makes it; tests/interop/check_hspy.py covers this in CI)")
        }
        let script = """
        import json, sys, numpy as np, hyperspy.api as hs
        out = sys.argv[1]
        rng = np.random.default_rng(5)
        cases = {
            "s2d4": (hs.signals.Signal2D, rng.integers(0, 65535, (3, 4, 5, 6), dtype=np.uint16)),
            "s1d3": (hs.signals.Signal1D, rng.random((4, 3, 17), dtype=np.float32)),
            "s2d2": (hs.signals.Signal2D, rng.integers(-99, 99, (9, 7), dtype=np.int32)),
            "s2c": (hs.signals.ComplexSignal2D, (rng.random((2, 5, 4)) + 1j * rng.random((2, 5, 4))).astype(np.complex64)),
            "s1u8": (hs.signals.Signal1D, rng.integers(0, 255, (2, 33), dtype=np.uint8)),
        }
        axes = {}
        for name, (cls, data) in cases.items():
            s = cls(data)
            for i, a in enumerate(s.axes_manager._axes):
                a.scale, a.offset, a.units, a.name = 0.5 + i, -1.0 * i, ["nm", "1/nm", "eV", "um"][i % 4], f"n{i}"
            s.metadata.General.title = name
            s.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 300.0)
            s.save(f"{out}/{name}.hspy", overwrite=True)
            s.save(f"{out}/{name}.zspy", overwrite=True)
            s.save(f"{out}/{name}_zip.zspy", overwrite=True, store_type="zip")
            if name == "s2d4":  # tiles cutting the frames, as a lazy (dask) save makes them
                s.save(f"{out}/{name}_tiles.hspy", overwrite=True, chunks=(2, 3, 4, 5))
                s.save(f"{out}/{name}_tiles.zspy", overwrite=True, chunks=(2, 3, 4, 5))
            data.tofile(f"{out}/{name}.bin")
            axes[name] = [dict(name=a.name, scale=a.scale, offset=a.offset, units=a.units, size=a.size, navigate=a.navigate)
                          for a in sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)]
        json.dump(axes, open(f"{out}/axes.json", "w"))
        """
        try script.write(toFile: tmp + "/gen.py", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [tmp + "/gen.py", tmp]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("skipped: the venv's HyperSpy could not save the test files") }
        let axes = try MetaValue.parseJSON(String(contentsOfFile: tmp + "/axes.json", encoding: .utf8))
        for name in ["s2d4", "s1d3", "s2d2", "s2c", "s1u8"] {
            let raw = try Data(contentsOf: URL(fileURLWithPath: tmp + "/\(name).bin"))
            let d = SHA256Digest()
            raw.withUnsafeBytes { d.update($0) }
            let want = d.finalizeHex()
            let tiles = name == "s2d4" ? ["\(name)_tiles.hspy", "\(name)_tiles.zspy"] : []
            for input in ["\(name).hspy", "\(name).zspy", "\(name)_zip.zspy"] + tiles {
                let nxs = tmp + "/\(input).nxs"
                _ = try Converter.convert(input: tmp + "/" + input, output: nxs, options: ConversionOptions(threads: 2, commandLine: "test"))
                let back = try Catalog.open(nxs).datasets[0]
                XCTAssertEqual(try DataHash.sha256(back), want, "\(input) → NeXus: data bit-exact")
                guard case let .array(list)? = axes[name] else { return XCTFail("axes.json") }
                XCTAssertEqual(back.axes.count, list.count, input)
                for (a, e) in zip(back.axes, list) {
                    XCTAssertEqual(a.name, e["name"]?.stringValue, input)
                    XCTAssertEqual(a.size, e["size"]?.intValue, input)
                    XCTAssertEqual(a.units, e["units"]?.stringValue, input)
                    XCTAssertEqual(a.role == .navigation, e["navigate"] == .bool(true), input)
                    XCTAssertEqual(a.scale, e["scale"]?.doubleValue ?? .nan, accuracy: 1e-12, input)
                    XCTAssertEqual(a.offset, e["offset"]?.doubleValue ?? .nan, accuracy: 1e-12, input)
                }
                XCTAssertEqual(HyperSpyMetadata.convert(back.metadata.beamEnergy, to: "kV"), 300, input)
            }
        }
    }
}
