import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Generated EMPAD acquisitions and raw+JSON files, read through the registry and compared bit
/// for bit with the generator's values.
final class EMPADRawGeneratedTests: TempDirectoryTestCase {

    func assertFrames(_ ds: Dataset, count: Int, _ expected: (Int) -> [UInt8], _ what: String,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(ds.frameCount, count, what, file: file, line: line)
        var buf = [UInt8](repeating: 0, count: ds.frameBytes)
        for i in (0..<ds.frameCount).reversed() {
            try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
            if buf != expected(i) { XCTFail("\(what): frame \(i) differs", file: file, line: line); return }
        }
    }

    func testEMPADStyles() throws {
        for style in EMPADSpec.XMLStyle.allCases {
            let spec = EMPADSpec(scanX: 3, scanY: 2, style: style)
            let g = try EMPADWriter.write(spec, xml: try dir(style.rawValue) + "/acquisition.xml")
            let f = try Catalog.open(g.xmlPath)
            XCTAssertEqual(f.format, "empad", style.rawValue)
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, [2, 3, 128, 128], style.rawValue)
            XCTAssertEqual(ds.elementType, .float32)
            XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
            XCTAssertEqual(ds.metadata.beamEnergy?.value, 300000)
            XCTAssertTrue(f.files.contains(g.rawPath), "\(f.files)")
            try assertFrames(ds, count: 6, spec.expectedFrame, style.rawValue)
        }
    }

    func testEMPADCalibration() throws {
        let spec = EMPADSpec(scanX: 4, scanY: 4)
        let g = try EMPADWriter.write(spec, xml: try dir("cal") + "/map.xml")
        let ds = try Catalog.open(g.xmlPath).datasets[0]
        // Field of view 4.566e-6 m over 4 positions; detector 1.8265e-10 (1/m) per pixel, centred.
        XCTAssertEqual(ds.axes[0].units, "nm")
        XCTAssertEqual(ds.axes[0].scale, 4.5663426505682195e-6 / 4 * 1e9, accuracy: 1e-9)
        XCTAssertEqual(ds.axes[2].units, "1/nm")
        XCTAssertEqual(ds.axes[2].scale, 1.826537060227288e-10 * 1e9, accuracy: 1e-15)
        XCTAssertEqual(ds.axes[2].offset, -64 * 1.826537060227288e-10 * 1e9, accuracy: 1e-12)
    }

    func testEMPADScanShapeOverrideAndFooterDropped() throws {
        let spec = EMPADSpec(scanX: 4, scanY: 2)
        let g = try EMPADWriter.write(spec, xml: try dir("ov") + "/a.xml")
        let f = try Catalog.open(g.xmlPath, options: OptionValues(["scan-shape": "8"]))
        XCTAssertEqual(f.datasets[0].shape, [8, 128, 128])
        // The stored frames have footer rows that differ from every data row's value pattern:
        // the expected frames exclude them, so equality shows they were dropped.
        try assertFrames(f.datasets[0], count: 8, spec.expectedFrame, "override")
        XCTAssertNotEqual(Array(spec.storedFrame(0).suffix(512)), Array(spec.expectedFrame(0).suffix(512)))
    }

    /// The xml's Unix time stamp gives the instant and, against `isoformat` (local time), the zone
    /// offset; a damaged one (1.6e32 s: a fuzz finding that trapped converting the offset to Int)
    /// is ignored and `isoformat` alone is the start time.
    func testEMPADTimestampAndDamagedTimestamp() throws {
        let xml = try String(contentsOfFile: SharedTestData.packageRoot + "/fixtures/empad/map_2x2.xml", encoding: .utf8)
        let d = try dir("ts")
        try FileManager.default.copyItem(atPath: SharedTestData.packageRoot + "/fixtures/empad/scan_x2_y2.raw", toPath: d + "/scan_x2_y2.raw")
        try xml.write(toFile: d + "/good.xml", atomically: true, encoding: .utf8)
        let good = try XCTUnwrap(Catalog.open(d + "/good.xml").datasets[0].metadata.startTime)
        XCTAssertEqual(good.date.timeIntervalSince1970, 1559820600.164675, accuracy: 1e-6)
        XCTAssertEqual(good.utcOffsetSeconds, 7200)  // isoformat 13:30 local = 11:30 UTC
        for bad in ["155982111111111111111111111110600.164675", "-1e300", "nan", "inf"] {
            try xml.replacingOccurrences(of: "timestamp=\"1559820600.164675\"", with: "timestamp=\"\(bad)\"")
                .write(toFile: d + "/bad.xml", atomically: true, encoding: .utf8)
            let ts = try XCTUnwrap(Catalog.open(d + "/bad.xml").datasets[0].metadata.startTime, bad)
            XCTAssertNil(ts.utcOffsetSeconds, bad)
            XCTAssertEqual(ts.iso8601, "2019-06-06T13:30:00.164675", bad)
        }
        // ISO 8601 output of a date beyond year 9999 (made by hand) clamps instead of trapping.
        XCTAssertEqual(Timestamp(date: Date(timeIntervalSince1970: 1.6e32), utcOffsetSeconds: 0).iso8601, "9999-12-31T23:59:59+00:00")
        XCTAssertNil(Timestamp.unix(.nan, utcOffsetSeconds: 0))
        XCTAssertNil(Timestamp.unix(3e11, utcOffsetSeconds: 0))
    }

    func testRawDescriptorVariants() throws {
        let cases: [RawSpec] = {
            var out: [RawSpec] = []
            out.append(RawSpec(dtype: "<u2", shape: [3, 4, 16, 16]))
            out.append(RawSpec(dtype: ">u2", shape: [5, 8, 8]))
            var f = RawSpec(dtype: ">f4", shape: [2, 2, 8, 12])
            f.offset = 100
            f.frameHeader = 16
            f.frameFooter = 8
            out.append(f)
            out.append(RawSpec(dtype: "<f8", shape: [4, 32], signalRank: 1))
            out.append(RawSpec(dtype: "uint8", shape: [6, 10, 10]))
            out.append(RawSpec(dtype: ">i4", shape: [2, 3, 4, 4]))
            out.append(RawSpec(dtype: "<c8", shape: [2, 4, 4]))
            var ax = RawSpec(dtype: "<u4", shape: [2, 3, 8, 8])
            ax.axes = [("y", "nm", 2.5, 0), ("x", "nm", 2.5, 10), ("ky", "1/nm", 0.1, -0.4), ("kx", "1/nm", 0.1, -0.4)]
            out.append(ax)
            return out
        }()
        for (n, spec) in cases.enumerated() {
            let g = try RawFixtureWriter.write(spec, to: try dir("raw\(n)") + "/data.raw")
            let f = try Catalog.open(g.dataPath)
            XCTAssertEqual(f.format, "raw", spec.dtype)
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, spec.shape, spec.dtype)
            XCTAssertEqual(ds.elementType, spec.type.0, spec.dtype)
            XCTAssertEqual(ds.frameRank, spec.signalRank, spec.dtype)
            try assertFrames(ds, count: spec.frames, spec.expectedFrame, "raw \(spec.dtype) \(spec.shape)")
            if let axes = spec.axes {
                XCTAssertEqual(ds.axes.map(\.name), axes.map(\.name))
                XCTAssertEqual(ds.axes.map(\.units), axes.map(\.units))
                XCTAssertEqual(ds.axes.map(\.scale), axes.map(\.scale))
                XCTAssertEqual(ds.axes.map(\.offset), axes.map(\.offset))
            }
        }
    }

    func testRawWithCommandLineDescription() throws {
        var spec = RawSpec(dtype: ">u2", shape: [2, 3, 8, 8])
        spec.writeDescriptor = false
        spec.frameHeader = 4
        let g = try RawFixtureWriter.write(spec, to: try dir("cli") + "/d.bin")
        let ds = try Catalog.open(g.dataPath, options: OptionValues(["raw-dtype": ">u2", "raw-shape": "2,3,8,8", "raw-frame-header": "4"])).datasets[0]
        try assertFrames(ds, count: 6, spec.expectedFrame, "raw via options")
        // Without a description: a usage error naming the file (no reader recognizes .bin content).
        XCTAssertThrowsError(try Catalog.open(g.dataPath)) { e in XCTAssertNotNil(e as? EMError) }
    }

    func testRawTooSmallIsBadInput() throws {
        let spec = RawSpec(dtype: "<u2", shape: [4, 16, 16])
        let g = try RawFixtureWriter.write(spec, to: try dir("small") + "/d.raw")
        let b = try Data(contentsOf: URL(fileURLWithPath: g.dataPath))
        try b.prefix(b.count - 1).write(to: URL(fileURLWithPath: g.dataPath))
        XCTAssertThrowsError(try Catalog.open(g.dataPath)) { e in
            XCTAssertEqual((e as? EMError)?.code, .badInput, "\(e)")
        }
    }
}
