@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatEMD
@testable import WriterEMD1
import EMConvTestSupport
import Foundation
import XCTest

/// The EMD 1.0 (py4DSTEM) writer on generated data: the emdfile layout and tags py4DSTEM needs,
/// the calibration, the metadata item types, and the round trip through emconv's EMD reader.
final class EMD1WriterTests: TempDirectoryTestCase {
    /// A dataset with deterministic bytes; `units` per axis (scan, scan, detector, detector…).
    func makeFile(_ t: ElementType, shape: [Int] = [3, 5, 6, 7], frameRank: Int = 2, kind: String = "4d-stem",
                  units: [String] = ["nm", "nm", "1/nm", "1/nm"], original: MetaValue? = nil) -> OpenedFile {
        let n = shape.reduce(1, *) * t.size
        var bytes = [UInt8](repeating: 0, count: n)
        var x: UInt32 = 0x2468_ACE1
        for i in 0..<n { x = x &* 1_664_525 &+ 1_013_904_223; bytes[i] = UInt8(truncatingIfNeeded: x >> 24) }
        if t == .bool { for i in 0..<n { bytes[i] &= 1 } }
        if t.componentSize > 1, !t.isInteger {
            let c = t.componentSize
            for i in stride(from: c - 1, to: n, by: c) { bytes[i] &= 0x3F }  // finite floats
        }
        let names = shape.count == 3 && frameRank == 1 ? ["scan_y", "scan_x", "energy"] : Array(["frame", "scan_y", "scan_x", "det_y", "det_x"].suffix(shape.count))
        let axes = shape.enumerated().map { i, size in
            Axis(name: names[i], size: size, role: i < shape.count - frameRank ? .navigation : .signal, units: units[i],
                 calibration: .uniform(offset: Double(i) * -1.5, scale: 0.25 + Double(i)))
        }
        var md = NormalizedMetadata()
        md.beamEnergy = Quantity(300_000, "V")
        md.cameraLength = Quantity(0.2, "m")
        md.detectorName = "TestCam"
        md.startTime = Timestamp.parseISO("2024-02-03T04:05:06.5+01:00")
        let ds = Dataset(name: "scan", title: "test \(t.rawValue)", axes: axes, elementType: t, frameRank: frameRank,
                         quantity: "counts", signalKind: kind, metadata: md,
                         original: .object([("Detector", .object([("gain", .double(1.5))]))]),
                         conventions: ["orientation": "as read"],
                         source: MemorySource(bytes: bytes, frameBytes: shape.suffix(frameRank).reduce(1, *) * t.size))
        return OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: [ds], files: [],
                          original: original ?? .object([("vendor", .object([("key", .string("value")), ("list", .array([.int(1), .int(2)]))]))]),
                          readerName: "test", readerVersion: "0")
    }

    func write(_ f: OpenedFile, _ name: String, options: OptionValues = OptionValues()) throws -> (String, WriteReport) {
        let p = tmp + "/" + name
        let r = try EMD1Writer.write(f, to: p, context: .standalone(f, outputName: name, options: options, commandLine: "emconv convert in -o \(name)"))
        return (p, r)
    }

    func str(_ g: HDF5Group, _ k: String) -> String? { g.openDataset(k)?.readMeta()?.stringValue }
    func num(_ g: HDF5Group, _ k: String) -> Double? { g.openDataset(k)?.readMeta()?.doubleValue }
    func type(_ n: HDF5Node) -> String? { n.attributeMeta("type")?.stringValue }

    func testDataCubeLayoutTagsChunksAndCalibrationAsPy4DSTEMReadsThem() throws {
        let f = makeFile(.uint16)
        let (p, report) = try write(f, "scan.emd")
        let h5 = try HDF5File(reading: p)
        let top = h5.root
        XCTAssertEqual(top.attributeMeta("emd_group_type")?.stringValue, "file")
        XCTAssertEqual(top.attributeMeta("version_major")?.intValue, 1)
        XCTAssertEqual(top.attributeMeta("version_minor")?.intValue, 0)
        XCTAssertEqual(top.groupNames, ["scan_root"], "one root per dataset, named like py4DSTEM.save names it")
        let root = try XCTUnwrap(top.openGroup("scan_root"))
        XCTAssertEqual(root.attributeMeta("emd_group_type")?.stringValue, "root")
        XCTAssertEqual(root.attributeMeta("python_class")?.stringValue, "Root")
        let cube = try XCTUnwrap(root.openGroup("scan"))
        XCTAssertEqual(cube.attributeMeta("emd_group_type")?.stringValue, "array")
        XCTAssertEqual(cube.attributeMeta("python_class")?.stringValue, "DataCube")
        let data = try XCTUnwrap(cube.openDataset("data"))
        XCTAssertEqual(data.shape, [3, 5, 6, 7])
        XCTAssertEqual(data.elementType, .uint16)
        XCTAssertEqual(data.chunkShape?.suffix(2), [6, 7], "chunks hold whole frames")
        XCTAssertEqual(data.chunkShape?.first, 1)
        XCTAssertEqual(data.filters, [2, 1], "gzip + shuffle by default (no plugin needed)")
        XCTAssertEqual(data.attributeMeta("units")?.stringValue, "counts")
        // dims: py4DSTEM's names, two values for uniform axes, the source's own units.
        for (i, name) in ["Rx", "Ry", "Qx", "Qy"].enumerated() {
            let d = try XCTUnwrap(cube.openDataset("dim\(i)"))
            XCTAssertEqual(d.attributeMeta("name")?.stringValue, name)
            let a = f.datasets[0].axes[i]
            XCTAssertEqual(try d.readDoubles(), [a.offset, a.offset + a.scale])
            XCTAssertEqual(d.attributeMeta("units")?.stringValue, a.units)
        }
        // Calibration: R from scan_x (nm), Q from det_x in 1/nm → A^-1 (× 0.1).
        let cal = try XCTUnwrap(root.openGroup("metadatabundle/calibration"))
        XCTAssertEqual(cal.attributeMeta("python_class")?.stringValue, "Calibration")
        XCTAssertEqual(cal.attributeMeta("emd_group_type")?.stringValue, "metadata")
        XCTAssertEqual(num(cal, "R_pixel_size"), 1.25)
        XCTAssertEqual(str(cal, "R_pixel_units"), "nm")
        XCTAssertEqual(try XCTUnwrap(num(cal, "Q_pixel_size")), 0.325, accuracy: 1e-15)
        XCTAssertEqual(str(cal, "Q_pixel_units"), "A^-1")
        XCTAssertEqual(type(try XCTUnwrap(cal.openDataset("Q_pixel_size"))), "number")
        XCTAssertEqual(type(try XCTUnwrap(cal.openDataset("QR_flip"))), "bool")
        let targets = try XCTUnwrap(cal.openGroup("_target_paths"))
        XCTAssertEqual(type(targets), "list_of_strings")
        XCTAssertEqual(str(targets, "0"), "/scan")
        // y and x differ in scale (the generator's axes): the writer says which one it used.
        XCTAssertTrue(report.warnings.contains { $0.contains("one R pixel size") }, "\(report.warnings)")
        XCTAssertTrue(report.warnings.contains { $0.contains("one Q pixel size") }, "\(report.warnings)")
        // Metadata of the array and provenance of the tree.
        let ins = try XCTUnwrap(cube.openGroup("metadatabundle/instrument"))
        XCTAssertEqual(num(ins, "beam_energy"), 300_000)
        XCTAssertEqual(str(ins, "beam_energy_units"), "V")
        XCTAssertEqual(str(ins, "detector"), "TestCam")
        let prov = try XCTUnwrap(root.openGroup("metadatabundle/provenance"))
        XCTAssertEqual(str(prov, "program"), "emconv")
        XCTAssertEqual(str(prov, "command_line"), "emconv convert in -o scan.emd")
        XCTAssertEqual(str(prov, "output_name"), "scan.emd")
        let orig = try XCTUnwrap(cube.openGroup("metadatabundle/original_metadata/Detector"))
        XCTAssertEqual(type(orig), "dict")
        XCTAssertEqual(num(orig, "gain"), 1.5)
        XCTAssertEqual(str(try XCTUnwrap(root.openGroup("metadatabundle/original_metadata/vendor")), "key"), "value")
    }

    func testEveryElementTypeRoundTripsBitExactThroughTheEMDReader() throws {
        for t in ElementType.allCases {
            let f = makeFile(t)
            let (p, _) = try write(f, "\(t.rawValue).emd", options: OptionValues(compression: .zstd(level: 3)))
            XCTAssertTrue(try Catalog.candidates(for: p).first == EMDReader.self, "\(t): identified by content")
            let back = try Catalog.open(p)
            XCTAssertTrue(back.variant.hasPrefix("EMD 1.0"), back.variant)
            let ds = try XCTUnwrap(back.datasets.first)
            let orig = f.datasets[0]
            XCTAssertEqual(back.datasets.count, 1)
            XCTAssertEqual(ds.elementType, t)
            XCTAssertEqual(ds.axes, orig.axes, "\(t): names, roles, units, calibration")
            XCTAssertEqual(ds.frameRank, 2)
            XCTAssertEqual(ds.name, "scan")
            XCTAssertEqual(ds.title, orig.title)
            XCTAssertEqual(ds.signalKind, "4d-stem")
            XCTAssertEqual(ds.quantity, "counts")
            XCTAssertEqual(ds.metadata.beamEnergy, orig.metadata.beamEnergy)
            XCTAssertEqual(ds.metadata.cameraLength, orig.metadata.cameraLength)
            XCTAssertEqual(ds.metadata.detectorName, "TestCam")
            XCTAssertEqual(ds.metadata.startTime?.date, orig.metadata.startTime?.date)
            XCTAssertEqual(ds.conventions["orientation"], "as read")
            XCTAssertEqual(try DataHash.sha256(ds), try DataHash.sha256(orig), "\(t): data bit-exact")
        }
    }

    func testLargeOffsetAxesKeepTheirExactScaleThroughTheRoundTrip() throws {
        // EMPAD's detector calibration: [offset, offset + scale] in a dim gives back the scale
        // as 0.18265370602272846 (last bits lost); the emconv metadata keeps it exact.
        let f = makeFile(.uint16)
        for i in 2...3 { f.datasets[0].axes[i].calibration = .uniform(offset: -11.689837185454643, scale: 0.1826537060227288) }
        let (p, _) = try write(f, "offset.emd")
        let ds = try XCTUnwrap(Catalog.open(p).datasets.first)
        XCTAssertEqual(ds.axes[3].calibration, .uniform(offset: -11.689837185454643, scale: 0.1826537060227288))
        XCTAssertEqual(ds.axes, f.datasets[0].axes)
    }

    func testSpectrumImageIsAnArrayWithItsAxisNamesAndFrameRankOne() throws {
        let f = makeFile(.uint32, shape: [4, 5, 16], frameRank: 1, kind: "eds", units: ["nm", "nm", "eV"])
        let (p, report) = try write(f, "si.emd", options: OptionValues(compression: Compression.none))
        XCTAssertEqual(report.warnings, [])
        let h5 = try HDF5File(reading: p)
        let a = try XCTUnwrap(h5.root.openGroup("scan_root/scan"))
        XCTAssertEqual(a.attributeMeta("python_class")?.stringValue, "Array")
        XCTAssertNil(h5.root.openGroup("scan_root/metadatabundle/calibration"), "no DataCube, no calibration")
        XCTAssertEqual(try XCTUnwrap(a.openDataset("data")).filters, [])
        XCTAssertEqual(try XCTUnwrap(a.openDataset("data")).chunkShape?.last, 16)
        XCTAssertEqual(try XCTUnwrap(a.openDataset("dim2")).attributeMeta("name")?.stringValue, "energy")
        XCTAssertEqual(try XCTUnwrap(a.openDataset("dim2")).attributeMeta("units")?.stringValue, "eV")
        let back = try Catalog.open(p)
        let ds = try XCTUnwrap(back.datasets.first)
        XCTAssertEqual(ds.frameRank, 1)
        XCTAssertEqual(ds.signalKind, "eds")
        XCTAssertEqual(ds.axes, f.datasets[0].axes)
        XCTAssertEqual(try DataHash.sha256(ds), try DataHash.sha256(f.datasets[0]))
    }

    func testQCalibrationUnitsBecomeThosePy4DSTEMAccepts() throws {
        let cases: [(String, String, Double, Bool)] = [  // det units → Q units, factor, warned
            ("mrad", "mrad", 1, false), ("rad", "mrad", 1000, false), ("1/angstrom", "A^-1", 1, false),
            ("", "pixels", 0, false), ("nm", "pixels", 0, true),
        ]
        for (u, want, factor, warned) in cases {
            let f = makeFile(.uint8, units: ["nm", "nm", u, u])
            // Square detector pixels: only the unit mapping can warn.
            f.datasets[0].axes[2].calibration = .uniform(offset: 0, scale: 3.25)
            f.datasets[0].axes[0].calibration = .uniform(offset: 0, scale: 1.25)
            let (p, report) = try write(f, "q-\(want)-\(u.replacingOccurrences(of: "/", with: "_")).emd")
            let cal = try XCTUnwrap(HDF5File(reading: p).root.openGroup("scan_root/metadatabundle/calibration"))
            XCTAssertEqual(str(cal, "Q_pixel_units"), want, u)
            XCTAssertEqual(try XCTUnwrap(num(cal, "Q_pixel_size")), factor == 0 ? 1 : 3.25 * factor, accuracy: 1e-12, u)
            XCTAssertEqual(report.warnings.contains { $0.contains("no py4DSTEM equivalent") }, warned, "\(u): \(report.warnings)")
        }
    }

    func testVendorTreeItemsCarryTheTypesEmdfileReads() throws {
        let tree: MetaValue = .object([
            ("a/b", .string("slash")), ("dup", .int(1)), ("dup", .int(2)), ("none", .null), ("flag", .bool(true)),
            ("ints", .array([.int(3), .int(4)])), ("reals", .array([.double(0.5), .int(2)])),
            ("names", .array([.string("x"), .string("y")])), ("mixed", .array([.string("x"), .object([("k", .int(1))])])),
            ("big", .uint(UInt64.max)), ("empty", .array([])),
        ])
        let f = makeFile(.uint8, original: tree)
        let (p, _) = try write(f, "tree.emd")
        let g = try XCTUnwrap(HDF5File(reading: p).root.openGroup("scan_root/metadatabundle/original_metadata"))
        XCTAssertEqual(g.attributeMeta("emd_group_type")?.stringValue, "metadata")
        XCTAssertEqual(str(g, "a_b"), "slash")
        XCTAssertEqual(num(g, "dup"), 1)
        XCTAssertEqual(num(g, "dup_2"), 2, "repeated keys are numbered, none lost")
        XCTAssertEqual(type(try XCTUnwrap(g.openDataset("none"))), "None")
        XCTAssertEqual(type(try XCTUnwrap(g.openDataset("flag"))), "bool")
        XCTAssertEqual(type(try XCTUnwrap(g.openDataset("ints"))), "list")
        XCTAssertEqual(try XCTUnwrap(g.openDataset("ints")).elementType, .int64)
        XCTAssertEqual(try XCTUnwrap(g.openDataset("reals")).readDoubles(), [0.5, 2])
        let names = try XCTUnwrap(g.openGroup("names"))
        XCTAssertEqual(type(names), "list_of_strings")
        XCTAssertEqual(names.attributeMeta("length")?.intValue, 2)
        XCTAssertEqual(str(names, "1"), "y")
        XCTAssertEqual(type(try XCTUnwrap(g.openGroup("mixed"))), "dict")
        XCTAssertEqual(num(try XCTUnwrap(g.openGroup("mixed/1")), "k"), 1)
        XCTAssertEqual(num(g, "big"), Double(UInt64.max))
        XCTAssertEqual(try XCTUnwrap(g.openDataset("empty")).shape, [0])
    }

    func testHugeVendorTreeIsKeptWholeAsOneJSONString() throws {
        let many = MetaValue.object((0..<(EMD1Metadata.maxTreeItems + 5)).map { ("k\($0)", .int(Int64($0))) })
        let f = makeFile(.uint8, original: many)
        let (p, _) = try write(f, "huge.emd")
        let g = try XCTUnwrap(HDF5File(reading: p).root.openGroup("scan_root/metadatabundle/original_metadata"))
        XCTAssertEqual(g.childNames, ["json"])
        XCTAssertEqual(try MetaValue.parseJSON(try XCTUnwrap(str(g, "json"))), many)
    }

    func testEmdOutputExtensionChoosesTheEMD1WriterAndSeveralDatasetsGetOneTreeEach() throws {
        XCTAssertTrue(Catalog.writer(forExtension: "emd") == EMD1Writer.self)
        XCTAssertTrue(Catalog.writer(named: "py4dstem") == EMD1Writer.self)
        let f = makeFile(.int16)
        let g = makeFile(.float32, shape: [8, 9], frameRank: 2, kind: "image", units: ["nm", "nm"])
        g.datasets[0].name = "haadf"
        f.datasets.append(g.datasets[0])
        let (p, _) = try write(f, "two.emd")
        let h5 = try HDF5File(reading: p)
        XCTAssertEqual(Set(h5.root.groupNames), ["scan_root", "haadf_root"])
        XCTAssertEqual(h5.root.openGroup("haadf_root/haadf")?.attributeMeta("python_class")?.stringValue, "Array")
        let back = try Catalog.open(p)
        XCTAssertEqual(Set(back.datasets.map(\.name)), ["scan", "haadf"])
    }

    func testCLIWritesEmdRecordsTheSourceChecksumAndConvertsItOnward() throws {
        let raw = tmp + "/d.raw"
        var values: [UInt16] = []
        for i in 0..<(2 * 3 * 8 * 8) { values.append(UInt16(i * 7 % 65_521)) }
        let bytes: Data = values.withUnsafeBytes { Data($0) }
        XCTAssertTrue(FileManager.default.createFile(atPath: raw, contents: bytes))
        let out = tmp + "/d.emd"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "2,3,8,8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let h5 = try HDF5File(reading: out)
        let prov = try XCTUnwrap(h5.root.openGroup("data_root/metadatabundle/provenance"))
        let sums = try XCTUnwrap(prov.openGroup("source_sha256"))
        XCTAssertEqual(str(sums, "0"), try RandomAccessFile(path: raw).finishDigest())
        XCTAssertEqual(h5.root.openGroup("data_root/data")?.attributeMeta("python_class")?.stringValue, "DataCube")
        // The .emd is an input too: identified by content as EMD 1.0 and converted onward bit-exactly.
        let info = try CLIRunner.run(["info", "--json", out])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("EMD 1.0"), info.stdout)
        let nxs = tmp + "/back.nxs"
        let c = try CLIRunner.run(["convert", out, "-o", nxs])
        XCTAssertEqual(c.status, 0, c.stderr)
        let real = try XCTUnwrap(HDF5File(reading: nxs).root.openDataset("entry1/measurement/event1/image1/image_4d/real"))
        var back = [UInt16](repeating: 0, count: values.count)
        try back.withUnsafeMutableBytes { try real.read(start: [0, 0, 0, 0], count: [2, 3, 8, 8], as: .uint16, into: $0) }
        XCTAssertEqual(back, values)
    }
}
