@testable import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Values held in memory, one frame at a time (C order over the leading axes).
final class ArrayFrameSource<T>: FrameSource, @unchecked Sendable {
    let values: [T]
    let frameElements: Int
    init(_ values: [T], frameElements: Int) {
        self.values = values
        self.frameElements = frameElements
    }
    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        values.withUnsafeBytes { src in
            let n = frameElements * MemoryLayout<T>.stride
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(index * n)..<((index + 1) * n)]))
        }
    }
}

/// Issue 16: --dataset, --crop, --bin (and their records in the outputs).
final class ProcessingTests: TempDirectoryTestCase {
    let fm = FileManager.default

    /// A 4-D uint16 dataset of `shape` whose value at (a,b,c,d) is a fixed pseudo-random function.
    func value(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: (i &* 2_654_435_761) >> 7) }

    func fourD(_ shape: [Int]) -> Dataset {
        let n = shape.reduce(1, *)
        let axes = [Axis(name: "scan_y", size: shape[0], role: .navigation, units: "nm", calibration: .uniform(offset: 10, scale: 2)),
                    Axis(name: "scan_x", size: shape[1], role: .navigation, units: "nm", calibration: .uniform(offset: -5, scale: 0.5)),
                    Axis(name: "det_y", size: shape[2], role: .signal, units: "1/nm", calibration: .uniform(offset: -3, scale: 0.1)),
                    Axis(name: "det_x", size: shape[3], role: .signal, units: "1/nm", calibration: .uniform(offset: -4, scale: 0.1))]
        return Dataset(name: "scan", axes: axes, elementType: .uint16, frameRank: 2, signalKind: "4d-stem",
                       source: ArrayFrameSource((0..<n).map(value), frameElements: shape[2] * shape[3]))
    }

    /// The crop-then-bin sum computed directly from the definition, one output element at a time.
    func naive(_ shape: [Int], lo: [Int], count: [Int], f: [Int]) -> (shape: [Int], values: [Int64]) {
        let out = zip(count, f).map { $0 / $1 }
        var v: [Int64] = []
        for a in 0..<out[0] { for b in 0..<out[1] { for c in 0..<out[2] { for d in 0..<out[3] {
            var s: Int64 = 0
            for i in 0..<f[0] { for j in 0..<f[1] { for k in 0..<f[2] { for l in 0..<f[3] {
                let y = lo[0] + a * f[0] + i, x = lo[1] + b * f[1] + j, p = lo[2] + c * f[2] + k, q = lo[3] + d * f[3] + l
                s += Int64(value(((y * shape[1] + x) * shape[2] + p) * shape[3] + q))
            } } } }
            v.append(s)
        } } } }
        return (out, v)
    }

    func readAll<T>(_ ds: Dataset, as: T.Type) throws -> [T] {
        var out: [T] = []
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: ds.frameBytes, alignment: 16)
        defer { buf.deallocate() }
        for i in 0..<ds.frameCount {
            try ds.source.readFrame(i, into: buf)
            out += Array(buf.bindMemory(to: T.self).prefix(ds.frameElements))
        }
        return out
    }

    func file(_ datasets: [Dataset]) -> OpenedFile {
        OpenedFile(path: "mem", format: "raw", variant: "", datasets: datasets, files: [], original: .object([]),
                   readerName: "test", readerVersion: "0")
    }

    func testCropAndBinSumEqualsTheDefinitionInAWideEnoughType() throws {
        let shape = [5, 6, 7, 9]
        let f = file([fourD(shape)])
        var o = OptionValues()
        try o.set("crop", "scan_x=1:6", spec: Processing.options[1])
        try o.set("crop", "3=0:8", spec: Processing.options[1])  // det_x by index
        try o.set("bin", "scan_y=2,det_y=3", spec: Processing.options[2])
        try o.set("bin", "det_x=2", spec: Processing.options[2])
        let warnings = try Processing.apply(o, to: f)
        let ds = f.datasets[0]
        let want = naive(shape, lo: [0, 1, 0, 0], count: [5, 5, 7, 8], f: [2, 1, 3, 2])
        XCTAssertEqual(ds.shape, want.shape)
        XCTAssertEqual(ds.elementType, .uint32)
        XCTAssertEqual(try readAll(ds, as: UInt32.self).map(Int64.init), want.values)
        // Dropped incomplete bins are said; the records name both steps in order.
        XCTAssertTrue(warnings.contains { $0.contains("scan_y=2") && $0.contains("last 1") }, "\(warnings)")
        XCTAssertEqual(ds.processing.map(\.name), ["crop", "bin"])
        XCTAssertEqual(ds.processing[1].parameters["output_element_type"], .string("uint32"))
        // Calibrations follow: offset of the first kept index, bins centred, scale times the factor.
        XCTAssertEqual(ds.axes[1].offset, -5 + 1 * 0.5, accuracy: 1e-12)
        XCTAssertEqual(ds.axes[0].scale, 4, accuracy: 1e-12)
        XCTAssertEqual(ds.axes[0].offset, 10 + 0.5 * 2, accuracy: 1e-12)
        XCTAssertEqual(ds.axes[2].scale, 0.3, accuracy: 1e-12)
        XCTAssertEqual(ds.axes[2].offset, -3 + 1 * 0.1, accuracy: 1e-12)
    }

    func testBinMeanIsFloat32AndCropAloneKeepsTheType() throws {
        let shape = [4, 4, 6, 6]
        let f = file([fourD(shape)])
        try Processing.apply(OptionValues(["bin": "det_y=2,det_x=3", "bin-mode": "mean"]), to: f)
        XCTAssertEqual(f.datasets[0].elementType, .float32)
        let want = naive(shape, lo: [0, 0, 0, 0], count: shape, f: [1, 1, 2, 3])
        let got = try readAll(f.datasets[0], as: Float.self)
        XCTAssertEqual(got, want.values.map { Float(Double($0) / 6) })

        let g = file([fourD(shape)])
        try Processing.apply(OptionValues(["crop": "scan_x=0:3,det_y=1:5"]), to: g)
        XCTAssertEqual(g.datasets[0].elementType, .uint16)
        XCTAssertEqual(g.datasets[0].shape, [4, 3, 4, 6])
        let crop = naive(shape, lo: [0, 0, 1, 0], count: [4, 3, 4, 6], f: [1, 1, 1, 1])
        XCTAssertEqual(try readAll(g.datasets[0], as: UInt16.self).map(Int64.init), crop.values)
    }

    func testSumTypeNeverOverflows() {
        XCTAssertEqual(CropBinFrameSource.binnedType(.uint16, count: 4, mode: .sum), .uint32)
        XCTAssertEqual(CropBinFrameSource.binnedType(.uint16, count: 1 << 17, mode: .sum), .uint64)
        XCTAssertEqual(CropBinFrameSource.binnedType(.int16, count: 4, mode: .sum), .int32)
        XCTAssertEqual(CropBinFrameSource.binnedType(.uint32, count: 4, mode: .sum), .uint64)
        XCTAssertEqual(CropBinFrameSource.binnedType(.float32, count: 4, mode: .sum), .float64)
        XCTAssertNil(CropBinFrameSource.binnedType(.uint64, count: 4, mode: .sum))
        XCTAssertEqual(CropBinFrameSource.binnedType(.uint64, count: 4, mode: .mean), .float32)
        XCTAssertNil(CropBinFrameSource.binnedType(.complex64, count: 4, mode: .mean))
    }

    func testBadCropAndBinAreOneLineUsageErrors() throws {
        let shape = [2, 2, 4, 4]
        XCTAssertThrowsError(try Processing.apply(OptionValues(["crop": "det_x=0:5"]), to: file([fourD(shape)]))) {
            XCTAssertEqual(($0 as? EMError)?.code, .usage)
            XCTAssertTrue("\($0)".contains("has 4 values"), "\($0)")
        }
        XCTAssertThrowsError(try Processing.apply(OptionValues(["bin": "energy=2"]), to: file([fourD(shape)]))) {
            XCTAssertTrue("\($0)".contains("scan_y, scan_x, det_y, det_x"), "\($0)")
        }
        var o = OptionValues()
        XCTAssertThrowsError(try o.set("crop", "det_x=3:1", spec: Processing.options[1]))
        XCTAssertThrowsError(try o.set("bin", "det_x=0", spec: Processing.options[2]))
    }

    // MARK: Through the converter and the CLI

    /// A raw 4-D uint16 file with calibrated axes (JSON descriptor beside it).
    func makeRaw(_ shape: [Int], in dir: String) throws -> String {
        let p = dir + "/scan.raw"
        let n = shape.reduce(1, *)
        let v = (0..<n).map(value)
        try Data(v.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: p))
        let axes = [("scan_y", 10.0, 2.0), ("scan_x", -5, 0.5), ("det_y", -3, 0.1), ("det_x", -4, 0.1)].map {
            #"{"name": "\#($0.0)", "units": "nm", "offset": \#($0.1), "scale": \#($0.2)}"#
        }
        let json = #"{"dtype": "<u2", "shape": [\#(shape.map(String.init).joined(separator: ","))], "signal_rank": 2, "axes": [\#(axes.joined(separator: ","))]}"#
        try json.write(toFile: p + ".json", atomically: true, encoding: .utf8)
        return p
    }

    func testConvertCropsBinsAndRecordsNXprocessSteps() throws {
        let shape = [4, 5, 6, 8]
        let raw = try makeRaw(shape, in: try dir("in"))
        let out = tmp + "/o.nxs"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--crop", "scan_x=0:4", "--bin", "det_y=2,det_x=2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("uint16 → 4x4x3x4 uint32"), r.stderr)
        let ds = try Catalog.open(out).datasets[0]
        let want = naive(shape, lo: [0, 0, 0, 0], count: [4, 4, 6, 8], f: [1, 1, 2, 2])
        XCTAssertEqual(ds.shape, want.shape)
        XCTAssertEqual(try readAll(ds, as: UInt32.self).map(Int64.init), want.values)
        XCTAssertEqual(ds.axes[3].offset, -4 + 0.05, accuracy: 1e-9)

        let h5 = try HDF5File(reading: out)
        let g = try XCTUnwrap(h5.root.openGroup("entry1/measurement/event1/image1"))
        for (n, name) in ["crop", "bin"].enumerated() {
            let p = try XCTUnwrap(g.openGroup("processing\(n + 1)"), "no processing\(n + 1)")
            XCTAssertEqual(p.stringAttribute("NX_class"), "NXprocess")
            XCTAssertEqual(try XCTUnwrap(p.openDataset("sequence_index")).readDoubles(), [Double(n + 1)])
            XCTAssertEqual(p.openDataset("program")?.readStrings(), ["emconv"])
            let json = try MetaValue.parseJSON(try XCTUnwrap(p.openGroup("parameters")?.openDataset("data")?.readStringValues()?.first))
            XCTAssertEqual(json["step"], .string(name))
        }
        // Each step is a complete NXem process (detector, source file with checksum): validation finds nothing there.
        let v = try CLIRunner.run(["validate", out])
        XCTAssertFalse(v.stdout.contains("/processing"), v.stdout)
        XCTAssertNotNil(g.openGroup("processing2/input")?.openDataset("checksum"))
        // Without the options: no processing record, the values a copy.
        let plain = tmp + "/p.nxs"
        XCTAssertEqual(try CLIRunner.run(["convert", raw, "-o", plain]).status, 0)
        XCTAssertNil(try HDF5File(reading: plain).root.openGroup("entry1/measurement/event1/image1/processing1"))
    }

    func twoImages() throws -> String {
        func image(_ name: String, _ seed: Int) -> Dataset {
            let axes = [Axis(name: "y", size: 3, role: .signal), Axis(name: "x", size: 4, role: .signal)]
            return Dataset(name: name, axes: axes, elementType: .uint16, frameRank: 2, signalKind: "image",
                           source: ArrayFrameSource((0..<12).map { UInt16($0 * seed) }, frameElements: 12))
        }
        let f = file([image("haadf", 1), image("bf", 3)])
        let p = tmp + "/two.nxs"
        _ = try NeXusWriter.write(f, to: p, context: .standalone(f))
        return p
    }

    func testTIFFWritesOneFilePerDatasetAndDatasetSelectsByNameOrIndex() throws {
        let two = try twoImages()
        XCTAssertEqual(try Catalog.open(two).datasets.map(\.name), ["haadf", "bf"])
        let r = try CLIRunner.run(["convert", two, "-o", tmp + "/all.tif", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/all_haadf.tif"))
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/all_bf.tif"))
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/all.tif"))
        let json = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(json["outputs"], .array([.string(tmp + "/all_haadf.tif"), .string(tmp + "/all_bf.tif")]), r.stdout)

        let one = try CLIRunner.run(["convert", two, "-o", tmp + "/one.tif", "--dataset", "1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/one.tif"))
        let nx = tmp + "/sel.nxs"
        XCTAssertEqual(try CLIRunner.run(["convert", two, "-o", nx, "--dataset", "bf", "--dataset", "haadf"]).status, 0)
        XCTAssertEqual(try Catalog.open(nx).datasets.map(\.name), ["bf", "haadf"])

        let bad = try CLIRunner.run(["convert", two, "-o", tmp + "/x.tif", "--dataset", "eels"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("0 haadf, 1 bf"), bad.stderr)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
    }

    func testBatchHandsProcessingOptionsToItsChildrenAndDocsListThem() throws {
        let inDir = try dir("in")
        _ = try makeRaw([2, 3, 4, 4], in: inDir)
        let b = try CLIRunner.run(["batch", inDir, "-o", tmp + "/out", "--progress", "none", "--crop", "det_x=0:2", "--bin", "scan_x=3", "--bin-mode", "mean"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let ds = try Catalog.open(tmp + "/out/scan.nxs").datasets[0]
        XCTAssertEqual(ds.shape, [2, 1, 4, 2])
        XCTAssertEqual(ds.elementType, .float32)
        let formats = try CLIRunner.run(["formats"]).stdout
        let help = try CLIRunner.run(["convert", "--help"]).stdout
        for o in Processing.options {
            XCTAssertTrue(formats.contains(o.flag), "emconv formats lacks \(o.flag)")
            XCTAssertTrue(help.contains(o.flag), "convert --help lacks \(o.flag)")
            XCTAssertTrue(Catalog.markdownOptions().contains("`\(o.flag)`"))
        }
    }

    // MARK: --cast

    func writeRaw<T>(_ values: [T], dtype: String, shape: [Int], name: String) throws -> String {
        let p = tmp + "/" + name
        try Data(values.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: p))
        try #"{"dtype": "\#(dtype)", "shape": [\#(shape.map(String.init).joined(separator: ","))]}"#
            .write(toFile: p + ".json", atomically: true, encoding: .utf8)
        return p
    }

    func testCastNamesTheFirstValueThatChangesAndCastExactRefuses() throws {
        // Two 3x4 frames; frame 1 holds 16777217 at (2, 1), which float32 cannot hold.
        var v: [UInt32] = (0..<24).map { UInt32($0 * 1000) }
        v[12 + 2 * 4 + 1] = 16_777_217
        v[12 + 2 * 4 + 3] = 16_777_219
        let raw = try writeRaw(v, dtype: "<u4", shape: [2, 3, 4], name: "u32.raw")
        let out = tmp + "/c.tif"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--cast", "float32", "--stack"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("2 values of 'data' changed; the first, 16777217 at (2, 1) of frame 1, is stored as 16777216"), r.stderr)
        let nx = tmp + "/c.nxs"
        XCTAssertEqual(try CLIRunner.run(["convert", raw, "-o", nx, "--cast", "float32"]).status, 0)
        let ds = try Catalog.open(nx).datasets[0]
        XCTAssertEqual(ds.elementType, .float32)
        XCTAssertEqual(try readAll(ds, as: Float.self), v.map { Float($0) })
        let step = try XCTUnwrap(HDF5File(reading: nx).root.openGroup("entry1/measurement/event1/image1/processing1"))
        XCTAssertEqual(try MetaValue.parseJSON(try XCTUnwrap(step.openDataset("parameters/data")?.readStringValues()?.first))["parameters"]?["to"], .string("float32"))

        let exact = try CLIRunner.run(["convert", raw, "-o", tmp + "/e.nxs", "--cast", "float32", "--cast-exact"])
        XCTAssertEqual(exact.status, 65, exact.stderr)
        XCTAssertTrue(exact.stderr.contains("value 16777217 at (2, 1) of frame 1 would be stored as 16777216 in float32"), exact.stderr)
        XCTAssertEqual(exact.stderr.split(separator: "\n").count, 1, exact.stderr)
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/e.nxs"))
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(".e.nxs") }, [])
    }

    func testCastRoundsFloatsToNearestAndClamps() throws {
        let v: [Float] = [0, 1.5, 2.5, -3.7, 40000, -1e9, .nan, 7]
        let raw = try writeRaw(v, dtype: "<f4", shape: [2, 4], name: "f.raw")
        let nx = tmp + "/i.nxs"
        let r = try CLIRunner.run(["convert", raw, "-o", nx, "--cast", "int16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("6 values of 'data' changed; the first, 1.5 at (0, 1), is stored as 2"), r.stderr)
        XCTAssertEqual(try readAll(try Catalog.open(nx).datasets[0], as: Int16.self), [0, 2, 2, -4, 32767, -32768, 0, 7])
        // Values that survive: --cast-exact passes and says so in the record.
        let ok = try writeRaw([Float](arrayLiteral: 1, 2, -3, 4), dtype: "<f4", shape: [2, 2], name: "g.raw")
        let r2 = try CLIRunner.run(["convert", ok, "-o", tmp + "/g.nxs", "--cast", "int8", "--cast-exact"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertFalse(r2.stderr.contains("changed"), r2.stderr)
    }

    // MARK: --chunks

    func testBalancedChunksCutNavigationAndDetectorAlikeWithinTheTileBudget() {
        func ds(_ shape: [Int]) -> Dataset {
            Dataset(name: "d", axes: shape.enumerated().map { Axis(name: "a\($0.offset)", size: $0.element, role: $0.offset < 2 ? .navigation : .signal) },
                    elementType: .uint16, frameRank: 2, signalKind: "4d-stem", source: ArrayFrameSource([UInt16](), frameElements: 0))
        }
        // The issue's 64x128 scan of 256x256 frames: one frame and one pixel over the scan touch 64 chunks each.
        let a = TileChunkPlan.balancedShape(ds([64, 128, 256, 256]), targetBytes: 2 << 20)
        XCTAssertEqual(a, [8, 16, 32, 32])
        XCTAssertEqual((64 / a[0]) * (128 / a[1]), (256 / a[2]) * (256 / a[3]))
        // 256x256 of 256x256: the navigation tile stays within the budget (64 MiB of frames).
        let b = TileChunkPlan.balancedShape(ds([256, 256, 256, 256]), targetBytes: 2 << 20)
        XCTAssertLessThanOrEqual(b[0] * b[1] * 256 * 256 * 2, ChunkChoice.tileBudget)
        XCTAssertLessThanOrEqual(b.reduce(1, *) * 2, 2 << 20)
        XCTAssertEqual(try ChunkChoice.parse(nil), .frame)
        XCTAssertEqual(try ChunkChoice.parse("4,4,16,16"), .explicit([4, 4, 16, 16]))
        XCTAssertThrowsError(try ChunkChoice.parse("4,x"))
    }

    func testChunksBalancedAndExplicitKeepTheValuesAndFrameStaysTheDefault() throws {
        let shape = [5, 7, 12, 10]
        let raw = try makeRaw(shape, in: try dir("in"))
        let want = naive(shape, lo: [0, 0, 0, 0], count: shape, f: [1, 1, 1, 1]).values
        var chunkOf: [String: [Int]] = [:]
        for choice in ["", "frame", "balanced", "2,3,5,4"] {
            let out = tmp + "/c\(choice.replacingOccurrences(of: ",", with: "_")).nxs"
            let r = try CLIRunner.run(["convert", raw, "-o", out] + (choice.isEmpty ? [] : ["--chunks", choice]))
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try readAll(try Catalog.open(out).datasets[0], as: UInt16.self).map(Int64.init), want, choice)
            chunkOf[choice] = try HDF5File(reading: out).root.openDataset("entry1/measurement/event1/image1/image_4d/real")?.chunkShape
        }
        XCTAssertEqual(chunkOf[""], [1, 7, 12, 10])
        XCTAssertEqual(chunkOf["frame"], chunkOf[""])
        XCTAssertEqual(chunkOf["2,3,5,4"], [2, 3, 5, 4])
        XCTAssertNotEqual(chunkOf["balanced"], chunkOf[""])

        let rank = try CLIRunner.run(["convert", raw, "-o", tmp + "/r.nxs", "--chunks", "2,2"])
        XCTAssertEqual(rank.status, 64, rank.stderr)
        XCTAssertTrue(rank.stderr.contains("gives 2 sizes for 'data', which has 4 axes"), rank.stderr)
    }

    func testExplicitChunksBeyondTheTileBudgetAreRefused() throws {
        let axes = [Axis(name: "scan_y", size: 64, role: .navigation), Axis(name: "scan_x", size: 64, role: .navigation),
                    Axis(name: "det_y", size: 256, role: .signal), Axis(name: "det_x", size: 256, role: .signal)]
        let ds = Dataset(name: "big", axes: axes, elementType: .uint16, frameRank: 2, signalKind: "4d-stem",
                         source: ArrayFrameSource([UInt16](), frameElements: 0))
        XCTAssertThrowsError(try TileChunkPlan(ds, chunk: [64, 64, 16, 16])) {
            XCTAssertEqual(($0 as? EMError)?.code, .usage)
            XCTAssertTrue("\($0)".contains("512 MiB, more than 64 MiB"), "\($0)")
        }
        XCTAssertNoThrow(try TileChunkPlan(ds, chunk: [16, 16, 64, 64]))
    }

    // MARK: Shared instrument files

    func testSharedVeloxFilesGoToTIFFOneFilePerDatasetOrTheOneChosen() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let si = root + "/emd_velox/fei_emd_si.emd"
        let r = try CLIRunner.run(["convert", si, "-o", tmp + "/si.tif", "--stack"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/si_haadf.tif") && fm.fileExists(atPath: tmp + "/si_eds.tif"), r.stderr)
        // A dataset TIFF cannot hold: the error names the way out.
        let spectra = try CLIRunner.run(["convert", root + "/emd_velox/Test SI 16x16 215 kx.emd", "-o", tmp + "/t.tif"])
        XCTAssertEqual(spectra.status, 65, spectra.stderr)
        XCTAssertTrue(spectra.stderr.contains("choose the datasets to write with --dataset"), spectra.stderr)
        let one = try CLIRunner.run(["convert", root + "/emd_velox/Test SI 16x16 215 kx.emd", "-o", tmp + "/haadf.tif", "--dataset", "haadf"])
        XCTAssertEqual(one.status, 0, one.stderr)
        // DPC: nine images, one complex (TIFF cannot hold it, and the error names it); three chosen, three files.
        let all = try CLIRunner.run(["convert", root + "/emd_velox/fei_example_dpc_titles.emd", "-o", tmp + "/dpc.tif"])
        XCTAssertEqual(all.status, 65, all.stderr)
        XCTAssertTrue(all.stderr.contains("dataset 'dpc': TIFF cannot hold complex data"), all.stderr)
        let dpc = try CLIRunner.run(["convert", root + "/emd_velox/fei_example_dpc_titles.emd", "-o", tmp + "/dpc.tif",
                                     "--dataset", "b-d", "--dataset", "idpc", "--dataset", "6"])
        XCTAssertEqual(dpc.status, 0, dpc.stderr)
        XCTAssertEqual(Set(try fm.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix("dpc") }), ["dpc_b-d.tif", "dpc_idpc.tif", "dpc_a-c.tif"])
    }

    func testSharedMIBBinnedAndCroppedEqualsTheDefinition() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let mib = root + "/mib/Quad_9_Frames_CounterDepth_1_Rows_256RAW.mib"
        var ro = OptionValues()
        ro.set("scan-shape", "3,3")
        let plain = try Catalog.open(mib, options: ro).datasets[0]
        XCTAssertEqual(plain.rank, 4)
        let shape = plain.shape
        let v: [Int64] = try {
            switch plain.elementType {
            case .uint8: return try readAll(plain, as: UInt8.self).map(Int64.init)
            case .uint16: return try readAll(plain, as: UInt16.self).map(Int64.init)
            default: throw XCTSkip("unexpected type \(plain.elementType)")
            }
        }()
        let out = tmp + "/b.nxs"
        let r = try CLIRunner.run(["convert", mib, "-o", out, "--scan-shape", "3,3", "--crop", "scan_x=0:2", "--bin", "det_y=4,det_x=4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ds = try Catalog.open(out).datasets[0]
        let want = [shape[0], 2, shape[2] / 4, shape[3] / 4]
        XCTAssertEqual(ds.shape, want)
        var expected: [Int64] = []
        for a in 0..<want[0] { for b in 0..<want[1] { for c in 0..<want[2] { for d in 0..<want[3] {
            var s: Int64 = 0
            for k in 0..<4 { for l in 0..<4 { s += v[((a * shape[1] + b) * shape[2] + c * 4 + k) * shape[3] + d * 4 + l] } }
            expected.append(s)
        } } } }
        XCTAssertEqual(ds.elementType, .uint32)
        XCTAssertEqual(try readAll(ds, as: UInt32.self).map(Int64.init), expected)
    }
}
