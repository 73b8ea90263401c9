@testable import EMConvKit
@testable import EMCore
@testable import WriterTIFF
@testable import FormatEMPAD
import EMConvTestSupport
import Foundation
import XCTest

/// Issue 11, defect 17: ImageJ units as ImageJ writes them (`micron`, which RosettaSciIO maps back
/// to µm), and the time axis of EMPAD image series (exposure + post-exposure per frame).
final class UnitAndTimeCalibrationTests: TempDirectoryTestCase {
    func testImageJUnitNamesAreImageJs() {
        let cases: [(String, String)] = [
            ("um", "micron"), ("\u{00B5}m", "micron"), ("\u{03BC}m", "micron"), ("micron", "micron"),
            ("1/um", "1/micron"), ("1/\u{00B5}m", "1/micron"), ("1 / \u{00B5}m", "1/micron"),
            ("\u{00C5}", "angstrom"), ("\u{212B}", "angstrom"), ("1/\u{00C5}", "1/angstrom"),
            ("nm", "nm"), ("1/nm", "1/nm"), ("pm", "pm"), ("mm", "mm"), ("s", "s"),
        ]
        for (unit, ij) in cases { XCTAssertEqual(TIFFWriter.imageJUnit(unit), ij, unit) }
    }

    func testTIFFDescriptionSaysMicronForMicrometres() throws {
        let axes = [Axis(name: "y", size: 4, role: .signal, units: "um", calibration: .uniform(offset: 0, scale: 0.5)),
                    Axis(name: "x", size: 6, role: .signal, units: "um", calibration: .uniform(offset: 0, scale: 0.5))]
        let ds = Dataset(name: "image", axes: axes, elementType: .uint8, frameRank: 2, signalKind: "image",
                         source: MemorySource(bytes: [UInt8](repeating: 7, count: 24), frameBytes: 24))
        let d = TIFFWriter.imageJDescription(ds, pages: 1)
        XCTAssertTrue(d.contains("\nunit=micron\n"), d)
        XCTAssertFalse(d.contains("unit=um"), d)
    }

    /// A real DM image calibrated in µm, converted to TIFF: ImageJ's `micron` in the file.
    func testSharedMicrometreDMImageGivesMicronInTIFF() throws {
        guard let root = SharedTestData.root else { throw XCTSkip(SharedTestData.skipMessage) }
        let src = root + "/dm/real/test_dm_image_um_unit.dm3"
        let f = try Catalog.open(src)
        XCTAssertEqual(f.datasets[0].axes.last?.units, "um")
        let out = tmp + "/um.tif"
        _ = try TIFFWriter.write(f, to: out, context: .standalone(f, threads: 1))
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: out)), as: UTF8.self)
        XCTAssertTrue(text.contains("ImageJ=1.11a\nunit=micron\n"), "no ImageJ unit=micron in the TIFF")
    }

    func testEMPADSeriesFrameAxisIsTimeInSeconds() throws {
        var spec = EMPADSpec(scanX: 1, scanY: 1)
        spec.seriesCount = 5
        spec.exposureMs = 2
        spec.postExposureMs = 0.5
        let g = try EMPADWriter.write(spec, xml: tmp + "/series.xml")
        let f = try Catalog.open(g.xmlPath)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.shape, [5, 128, 128])
        XCTAssertEqual(ds.axes[0].name, "time")
        XCTAssertEqual(ds.axes[0].units, "s")
        XCTAssertEqual(ds.axes[0].scale, 0.0025, accuracy: 1e-15)
        XCTAssertEqual(ds.axes[0].offset, 0)
        XCTAssertEqual(ds.axes[0].role, .navigation)
        XCTAssertTrue(f.warnings.isEmpty, "\(f.warnings)")
        XCTAssertTrue(f.variant.hasPrefix("series of 5 frames"), f.variant)
        var buf = [UInt8](repeating: 0, count: ds.frameBytes)
        for i in 0..<5 {
            try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
            XCTAssertEqual(buf, spec.expectedFrame(i), "frame \(i)")
        }
        // TIFF of the series: ImageJ frames with their interval.
        let out = tmp + "/series.tif"
        _ = try TIFFWriter.write(f, to: out, context: .standalone(f, threads: 1))
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: out)), as: UTF8.self)
        XCTAssertTrue(text.contains("images=5\nframes=5\nfinterval=0.0025\n"), "ImageJ frames/finterval missing")
    }

    /// A scan keeps its spatial navigation axes; only a series gets the time axis.
    func testEMPADScanHasNoTimeAxis() throws {
        let g = try EMPADWriter.write(EMPADSpec(scanX: 2, scanY: 2), xml: tmp + "/scan.xml")
        XCTAssertEqual(try Catalog.open(g.xmlPath).datasets[0].axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
    }
}
