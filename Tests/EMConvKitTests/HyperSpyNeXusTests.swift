@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatNeXus
@testable import WriterHSpy
import CHDF5
import Foundation
import XCTest

/// The NeXus output's view for HyperSpy (RosettaSciIO's NeXus reader): the entry's default links
/// an NXdata with @interpretation kept in an NXcollection, so NXem validation never sees it.
final class HyperSpyNeXusTests: TempDirectoryTestCase {
    func file(shape: [Int], frameRank: Int, kind: String, lastUnits: String) -> OpenedFile {
        let n = shape.reduce(1, *)
        let bytes = (0..<(n * 2)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let axes = shape.enumerated().map { i, s in
            Axis(name: "a\(i)", size: s, role: i < shape.count - frameRank ? .navigation : .signal,
                 units: i == shape.count - 1 ? lastUnits : "nm", calibration: .uniform(offset: 1, scale: 0.5))
        }
        let fb = shape.suffix(frameRank).reduce(1, *) * 2
        let ds = Dataset(name: "d", title: "t", axes: axes, elementType: .uint16, frameRank: frameRank, quantity: "counts",
                         signalKind: kind, source: MemorySource(bytes: bytes, frameBytes: fb))
        return OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: [ds], files: [], original: .object([]),
                          readerName: "test", readerVersion: "0")
    }

    func testEntryDefaultLinksAHyperSpyViewInAnNXcollectionAndTheMeasuredNXdataHasNoInterpretation() throws {
        let cases: [([Int], Int, String, String, String, String)] = [
            ([3, 4, 5, 6], 2, "4d-stem", "1/nm", "image1/image_4d", "image"),
            ([3, 4, 8], 1, "eds", "eV", "spectrum1/spectrum_2d", "spectrum"),
            ([5, 6], 2, "image", "nm", "image1/image_2d", "image"),
        ]
        for (shape, frameRank, kind, units, nxdataPath, interpretation) in cases {
            let f = file(shape: shape, frameRank: frameRank, kind: kind, lastUnits: units)
            let out = tmp + "/\(kind).nxs"
            _ = try NeXusWriter.write(f, to: out, context: .standalone(f))
            let h5 = try HDF5File(reading: out)
            let entry = try XCTUnwrap(h5.root.openGroup("entry1"))
            XCTAssertEqual(entry.stringAttribute("default"), "data", kind)
            // entry1/data is a soft link to the view inside the NXcollection entry1/hyperspy.
            let viewName = String(nxdataPath.split(separator: "/")[0])
            XCTAssertTrue(entry.isSoftLink("data"), kind)
            XCTAssertEqual(entry.openGroup("hyperspy")?.stringAttribute("NX_class"), "NXcollection")
            let view = try XCTUnwrap(entry.openGroup("hyperspy/" + viewName))
            XCTAssertEqual(view.stringAttribute("target"), "/entry1/hyperspy/" + viewName)
            let data = try XCTUnwrap(entry.openGroup("data"))
            let measured = try XCTUnwrap(entry.openGroup("measurement/event1/" + nxdataPath))
            XCTAssertEqual(data.stringAttribute("NX_class"), "NXdata")
            XCTAssertEqual(data.stringAttribute("interpretation"), interpretation, kind)
            // NXdata documents no @interpretation: the measured NXdata (validated) must not carry it.
            XCTAssertFalse(measured.hasAttribute("interpretation"), kind)
            XCTAssertEqual(data.stringAttribute("signal"), measured.stringAttribute("signal"))
            XCTAssertEqual(data.stringArrayAttribute("axes"), measured.stringArrayAttribute("axes"))
            for name in [measured.stringAttribute("signal")!] + measured.stringArrayAttribute("axes")! {
                XCTAssertTrue(view.isSoftLink(name), "\(kind) \(name)")
                XCTAssertEqual(measured.openDataset(name)?.stringAttribute("target"), measured.childPath(name), "\(kind) \(name)")
                XCTAssertEqual(data.numericAttribute("\(name)_indices"), measured.numericAttribute("\(name)_indices"), "\(kind) \(name)")
            }
            var o = ValidateOptions()
            o.profiles = [.nexus]
            let r = Validator.validate(out, options: o)
            XCTAssertTrue(r.valid, r.findings.map(\.line).joined(separator: "\n"))
            // emconv's reader still sees one dataset (the link group is not a second one).
            XCTAssertEqual(try Catalog.open(out).datasets.count, 1, kind)
        }
    }
}

/// The `.hspy` writer's HDF5 tree (HyperSpy's hierarchical layout) read back with the HDF5 layer.
final class HSpyWriterTests: TempDirectoryTestCase {
    func testHSpyTreeDataAxesMetadataAndOriginal() throws {
        let shape = [3, 4, 5, 6]
        let bytes = (0..<(shape.reduce(1, *) * 2)).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let axes = ["scan_y", "scan_x", "qy", "qx"].enumerated().map { i, n in
            Axis(name: n, size: shape[i], role: i < 2 ? .navigation : .signal, units: i < 2 ? "nm" : "1/nm",
                 calibration: .uniform(offset: Double(i), scale: 0.5))
        }
        var md = NormalizedMetadata()
        md.beamEnergy = Quantity(300_000, "V")
        md.cameraLength = Quantity(0.2, "m")
        md.dwellTime = Quantity(1, "ms")
        let ds = Dataset(name: "d", title: "scan/1", axes: axes, elementType: .uint16, frameRank: 2, quantity: "counts",
                         signalKind: "4d-stem", metadata: md, source: MemorySource(bytes: bytes, frameBytes: 60))
        let big = MetaValue.array((0..<5000).map { .int(Int64($0)) })
        let f = OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: [ds], files: [],
                           original: .object([("a/b", .string("x")), ("g", .object([("list", .array([.int(1), .int(2)])), ("big", big), ("none", .null)]))]),
                           readerName: "test", readerVersion: "0")
        let out = tmp + "/o.hspy"
        _ = try HSpyWriter.write(f, to: out, context: .standalone(f, threads: 2))
        let h5 = try HDF5File(reading: out)
        XCTAssertEqual(h5.root.stringAttribute("file_format"), "HyperSpy")
        XCTAssertEqual(h5.root.stringAttribute("file_format_version"), "3.3")
        let g = try XCTUnwrap(h5.root.openGroup("Experiments/scan-1"), "title '/' becomes '-'")
        let data = try XCTUnwrap(g.openDataset("data"))
        XCTAssertEqual(data.shape, shape)
        XCTAssertEqual(Array(data.chunkShape!.suffix(2)), [5, 6], "chunks hold whole frames")
        XCTAssertEqual(try data.readAllDoubles(), bytes.withUnsafeBytes { $0.bindMemory(to: UInt16.self).map(Double.init) })
        for (i, a) in axes.enumerated() {
            let ag = try XCTUnwrap(g.openGroup("axis-\(i)"))
            XCTAssertEqual(ag.stringAttribute("name"), a.name)
            XCTAssertEqual(ag.stringAttribute("units"), a.units)
            XCTAssertEqual(ag.stringAttribute("_type"), "UniformDataAxis")
            XCTAssertEqual(ag.numericAttribute("scale"), [0.5])
            XCTAssertEqual(ag.numericAttribute("offset"), [Double(i)])
            XCTAssertEqual(ag.attributeTypeInfo("navigate")?.cls, H5T_ENUM, "a boolean, as h5py stores numpy.bool_")
        }
        let tem = try XCTUnwrap(g.openGroup("metadata/Acquisition_instrument/TEM"))
        XCTAssertEqual(tem.numericAttribute("beam_energy"), [300])
        XCTAssertEqual(tem.numericAttribute("camera_length"), [200])
        XCTAssertEqual(g.openGroup("metadata/Acquisition_instrument")?.numericAttribute("dwell_time"), [0.001])
        XCTAssertEqual(g.openGroup("metadata/Signal")?.stringAttribute("signal_type"), "electron_diffraction")
        XCTAssertEqual(g.openGroup("metadata/General")?.stringAttribute("title"), "scan/1")
        let om = try XCTUnwrap(g.openGroup("original_metadata"))
        XCTAssertEqual(om.stringAttribute("a/b"), "x", "attribute names keep '/'")
        XCTAssertEqual(om.openGroup("g")?.numericAttribute("list"), [1, 2])
        XCTAssertEqual(om.openGroup("g")?.stringAttribute("none"), "_None_")
        XCTAssertEqual(try om.openGroup("g")?.openDataset("big")?.readAllDoubles().count, 5000, "over 64 KiB: a dataset")
        XCTAssertNotNil(g.openGroup("learning_results"))
        XCTAssertNotNil(h5.root.openGroup("emconv"))
    }
}
