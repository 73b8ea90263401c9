@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatNeXus
import Foundation
import XCTest

/// The NeXus output's attributes for HyperSpy (RosettaSciIO's NeXus reader): the entry's default
/// NXdata linking the measured data, and @interpretation splitting navigation from signal.
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

    func testEntryDefaultIsNXdataLinkingTheMeasuredDataWithInterpretation() throws {
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
            let data = try XCTUnwrap(entry.openGroup("data"))
            let measured = try XCTUnwrap(entry.openGroup("measurement/event1/" + nxdataPath))
            XCTAssertEqual(data.stringAttribute("NX_class"), "NXdata")
            XCTAssertEqual(data.stringAttribute("interpretation"), interpretation, kind)
            XCTAssertEqual(measured.stringAttribute("interpretation"), interpretation, kind)
            XCTAssertEqual(data.stringAttribute("signal"), measured.stringAttribute("signal"))
            XCTAssertEqual(data.stringArrayAttribute("axes"), measured.stringArrayAttribute("axes"))
            for name in [measured.stringAttribute("signal")!] + measured.stringArrayAttribute("axes")! {
                XCTAssertTrue(data.isSoftLink(name), "\(kind) \(name)")
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
