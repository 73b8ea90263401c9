import XCTest
@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatEMD
import EMConvTestSupport

/// Velox files whose EELS spectrum image and EDS spectrum stream lie on different rasters
/// (issue 11, defect 9): each takes its raster from its own metadata, and EELS cubes stored
/// (x, energy, y) are exposed (y, x, energy) with each calibration on its own axis.
final class VeloxRasterTests: TempDirectoryTestCase {
    func spec() -> VeloxEELSEDSSpec {
        var s = VeloxEELSEDSSpec()
        s.edsH = 24
        s.edsW = 32
        return s
    }

    func value(_ bytes: [UInt8], _ i: Int) -> Int { Int(bytes[2 * i]) | Int(bytes[2 * i + 1]) << 8 }

    func testEDSStreamTakesItsOwnRasterNotTheEELSImageSize() throws {
        let s = spec()
        let path = try VeloxWriter.writeEELSWithEDSStream(s, to: tmp + "/eels_eds.emd")
        let f = try Catalog.open(path)
        let eds = try XCTUnwrap(f.datasets.first { $0.signalKind == "eds" })
        XCTAssertEqual(eds.shape, [24, 32, 4096])
        XCTAssertEqual(eds.metadata.scanShape, [24, 32])
        XCTAssertTrue(eds.metadata.scanShapeSource?.contains("own metadata") ?? false, "\(eds.metadata.scanShapeSource ?? "")")
        XCTAssertFalse(f.warnings.contains { $0.contains("raster taken as") || $0.contains("beyond") }, "\(f.warnings)")
        XCTAssertEqual(eds.axes.map(\.name), ["y", "x", "energy"])
        XCTAssertEqual(eds.axes[0].scale, 5, accuracy: 1e-9)
        let v = try DataHash.bytes(eds)
        var total = 0
        for y in 0..<24 {
            for x in 0..<32 {
                let base = (y * 32 + x) * 4096
                XCTAssertGreaterThanOrEqual(value(v, base + (y + x) % 4096), 1, "pixel (\(y), \(x))")
                for c in 0..<4096 { total += value(v, base + c) }
            }
        }
        XCTAssertEqual(total, 24 * 32 * s.countsPerPixel)
    }

    func testEELSCubeStoredXEnergyYIsExposedYXEnergyWithItsOwnCalibrations() throws {
        let s = spec()
        let path = try VeloxWriter.writeEELSWithEDSStream(s, to: tmp + "/eels_eds.emd")
        let f = try Catalog.open(path)
        let cubes = f.datasets.filter { $0.signalKind == "eels" }
        XCTAssertEqual(cubes.count, 2)
        for (k, ds) in cubes.enumerated() {
            XCTAssertEqual(ds.shape, [16, 20, 2048], "cube \(k)")
            XCTAssertEqual(ds.axes.map(\.name), ["y", "x", "energy_loss"])
            XCTAssertEqual(ds.axes.map(\.units), ["nm", "nm", "eV"])
            XCTAssertEqual(ds.axes[0].scale, 0.3, accuracy: 1e-9)
            XCTAssertEqual(ds.axes[0].offset, -2, accuracy: 1e-9)
            XCTAssertEqual(ds.axes[1].scale, 0.2, accuracy: 1e-9)
            XCTAssertEqual(ds.axes[1].offset, -1, accuracy: 1e-9)
            XCTAssertEqual(ds.axes[2].offset, s.eelsRanges[k].0, accuracy: 1e-9)
            XCTAssertEqual(ds.axes[2].scale, s.eelsRanges[k].1, accuracy: 1e-9)
            XCTAssertEqual(ds.metadata.scanShape, [16, 20])
            let bytes = try DataHash.bytes(ds)
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            var bad = 0
            for y in 0..<16 { for x in 0..<20 { for e in 0..<2048 {
                if values[(y * 20 + x) * 2048 + e] != VeloxEELSEDSSpec.eelsValue(cube: k, y: y, x: x, e: e) { bad += 1 }
            } } }
            XCTAssertEqual(bad, 0, "cube \(k): values out of place")
            // The cube is one HDF5 chunk: read once, not once per spectrum.
            XCTAssertEqual((ds.source as? PermutedSpectrumSource)?.hyperslabReads, 1)
        }
    }

    /// Without a raster in the cube's own metadata, the SpectrumImage's metadata gives it.
    func testEELSRasterFromSpectrumImageMetadata() throws {
        var s = spec()
        s.eelsOwnMetadata = false
        let f = try Catalog.open(try VeloxWriter.writeEELSWithEDSStream(s, to: tmp + "/si_meta.emd"))
        let ds = try XCTUnwrap(f.datasets.first { $0.signalKind == "eels" })
        XCTAssertEqual(ds.shape, [16, 20, 2048])
        XCTAssertEqual(ds.axes[0].scale, 0.3, accuracy: 1e-9)
    }

    /// A square scan leaves the sizes ambiguous: Velox's order (x, energy, y) is taken.
    func testSquareEELSScanUsesVeloxOrder() throws {
        var s = spec()
        s.eelsH = 6
        s.eelsW = 6
        s.channels = 6
        s.eelsRanges = [(0, 1)]
        let f = try Catalog.open(try VeloxWriter.writeEELSWithEDSStream(s, to: tmp + "/square.emd"))
        let ds = try XCTUnwrap(f.datasets.first { $0.signalKind == "eels" })
        XCTAssertEqual(ds.shape, [6, 6, 6])
        let values = try DataHash.bytes(ds).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        for y in 0..<6 { for x in 0..<6 { for e in 0..<6 {
            XCTAssertEqual(values[(y * 6 + x) * 6 + e], VeloxEELSEDSSpec.eelsValue(cube: 0, y: y, x: x, e: e))
        } } }
    }

    /// The raster of a real Velox stream: Scan.ScanSize (the full field) times the ScanArea fraction.
    func testScanRasterFromScanSizeAndArea() throws {
        let om = try MetaValue.parseJSON(#"{"Scan": {"ScanSize": {"width": "512", "height": "512"}, "ScanArea": {"left": "0.482421875", "top": "0.49609375", "right": "0.513671875", "bottom": "0.52734375"}}}"#)
        XCTAssertEqual(VeloxEMD.scanRaster(om)?.h, 16)
        XCTAssertEqual(VeloxEMD.scanRaster(om)?.w, 16)
        let full = try MetaValue.parseJSON(#"{"Scan": {"ScanSize": {"width": "128", "height": "64"}}}"#)
        XCTAssertEqual(VeloxEMD.scanRaster(full)?.h, 64)
        XCTAssertEqual(VeloxEMD.scanRaster(full)?.w, 128)
        XCTAssertNil(VeloxEMD.scanRaster(try MetaValue.parseJSON(#"{"Scan": {"ScanSize": {"width": "0", "height": "0"}}}"#)))
    }
}
