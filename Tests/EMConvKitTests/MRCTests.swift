@testable import FormatMRC
import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// The MRC reader: generated files of every mode and byte order, extended headers, Direct
/// Electron companions, the shared real files against their references, and damaged inputs.
final class MRCTests: TempDirectoryTestCase {

    func write(_ s: MRCSpec, _ name: String = "a.mrc") throws -> MRCWriter.Written {
        try MRCWriter.write(s, to: tmp + "/" + name)
    }

    func values(_ ds: Dataset) throws -> [UInt8] { try DataHash.bytes(ds) }

    func arr(_ v: MetaValue?) -> [MetaValue] {
        if case let .array(a)? = v { return a }
        return []
    }

    func testEveryModeInBothByteOrdersReadsTheWrittenValues() throws {
        let types: [Int: ElementType] = [0: .int8, 1: .int16, 2: .float32, 3: .complex64, 4: .complex64, 6: .uint16, 12: .float32, 101: .uint8]
        for mode in [0, 1, 2, 3, 4, 6, 12, 101] {
            for big in [false, true] {
                var s = MRCSpec(nx: mode == 101 ? 7 : 5, ny: 3, nz: 2, mode: mode)
                s.bigEndian = big
                let w = try write(s, "m\(mode)\(big ? "be" : "le").mrc")
                let f = try Catalog.open(w.path)
                XCTAssertEqual(f.format, "mrc")
                let ds = f.datasets[0]
                XCTAssertEqual(ds.elementType, types[mode], "mode \(mode)")
                XCTAssertEqual(ds.shape, [2, 3, s.nx], "mode \(mode)")
                XCTAssertEqual(ds.sourceByteOrder, big ? .big : .little)
                XCTAssertEqual(try values(ds), w.expected, "mode \(mode) \(big ? "big" : "little")-endian")
                XCTAssertTrue(f.variant.contains("mode \(mode) "), f.variant)
                XCTAssertTrue(f.variant.contains(big ? "big-endian (machine stamp)" : "little-endian (machine stamp)"), f.variant)
                XCTAssertTrue(f.warnings.isEmpty, "\(f.warnings)")
                if [3, 12, 101].contains(mode) { XCTAssertNotNil(ds.conventions["emconv_mrc_mode"], "conversion recorded for mode \(mode)") }
            }
        }
    }

    func testHalfFloatsWidenExactlyIncludingSubnormalsAndInfinity() {
        for (h, f) in MRCWriter.halfTable {
            XCTAssertEqual(halfToFloat(h).bitPattern, f.bitPattern, String(format: "0x%04x", h))
        }
        XCTAssertTrue(halfToFloat(0x7E00).isNaN)
    }

    func testZeroMachineStampFallsBackToTheOrderThatFitsAndSaysSo() throws {
        var s = MRCSpec(nx: 4, ny: 4, nz: 3, mode: 1)
        s.bigEndian = true
        s.stamp = .zero
        let w = try write(s)
        let f = try Catalog.open(w.path)
        XCTAssertEqual(f.datasets[0].sourceByteOrder, .big)
        XCTAssertEqual(try values(f.datasets[0]), w.expected)
        XCTAssertTrue(f.warnings.contains { $0.contains("machine stamp 00000000 unknown; big-endian fits") }, "\(f.warnings)")
        s.bigEndian = false
        let w2 = try write(s, "le.mrc")
        XCTAssertEqual(try Catalog.open(w2.path).datasets[0].sourceByteOrder, .little)
    }

    func testMode0IsSignedUnlessIMODSaysUnsigned() throws {
        var s = MRCSpec(nx: 8, ny: 2, nz: 1, mode: 0)
        XCTAssertEqual(try Catalog.open(try write(s, "s.mrc").path).datasets[0].elementType, .int8)
        s.imodUnsigned = true
        let f = try Catalog.open(try write(s, "u.mrc").path)
        XCTAssertEqual(f.datasets[0].elementType, .uint8)
        XCTAssertTrue(f.variant.contains("IMOD unsigned"), f.variant)
    }

    func testExtendedHeaderOfNsymbtBytesIsSkipped() throws {
        var s = MRCSpec(nx: 6, ny: 5, nz: 2, mode: 2)
        s.extended = .filler(bytes: 3000, type: "SERI")
        let w = try write(s)
        let f = try Catalog.open(w.path)
        XCTAssertEqual(try values(f.datasets[0]), w.expected)
        XCTAssertTrue(f.variant.contains("extended header SERI, 3000 bytes (skipped)"), f.variant)
    }

    func testFEIExtendedHeadersFillMetadataAndCalibration() throws {
        for version in [1, 2] {
            var s = MRCSpec(nx: 4, ny: 4, nz: 1, mode: 6)
            s.extended = .fei(version: version, records: 4)
            s.feiPixelSize = 2.5e-10
            let w = try write(s, "fei\(version).mrc")
            let f = try Catalog.open(w.path)
            let ds = f.datasets[0]
            XCTAssertEqual(try values(ds), w.expected)
            XCTAssertTrue(f.variant.contains("extended header FEI\(version) (metadata version \(version), 4 records of \(version == 2 ? 888 : 768) bytes)"), f.variant)
            XCTAssertEqual(ds.metadata.beamEnergy, Quantity(200_000, "V"))
            XCTAssertEqual(ds.metadata.magnification, 1_000_000)
            XCTAssertEqual(ds.metadata.cameraLength, Quantity(0.145, "m"))
            XCTAssertEqual(ds.metadata.dwellTime, Quantity(1e-6, "s"))
            XCTAssertEqual(ds.metadata.detectorName, "HAADF")
            XCTAssertEqual(ds.metadata.instrumentModel, "Talos")
            XCTAssertEqual(ds.metadata.softwareName, "Velox")
            // No cell in the header: the FEI pixel size (m) calibrates the image in nm.
            XCTAssertEqual(ds.axes[1].units, "nm")
            XCTAssertEqual(ds.axes[1].scale, 0.25, accuracy: 1e-12)
            XCTAssertTrue(ds.conventions["emconv_calibration_source"]?.contains("FEI\(version) pixel size") ?? false)
        }
    }

    func testCellCalibratesInNanometresWithOriginAsOffset() throws {
        var s = MRCSpec(nx: 10, ny: 5, nz: 1, mode: 2)
        s.cell = (20, 15, 0)
        s.origin = (30, -10, 0)
        let ds = try Catalog.open(try write(s).path).datasets[0]
        XCTAssertEqual(ds.axes.map(\.name), ["y", "x"])
        XCTAssertEqual(ds.axes[1].calibration, .uniform(offset: 3, scale: 0.2))
        XCTAssertEqual(ds.axes[0].calibration, .uniform(offset: -1, scale: 0.3))
        XCTAssertEqual(ds.axes[0].units, "nm")
    }

    func testFEIScanSizeMatchingTheFrameCountGivesFourDimensions() throws {
        var s = MRCSpec(nx: 4, ny: 4, nz: 6, mode: 6)
        s.extended = .fei(version: 2, records: 6)
        s.feiScan = (2, 3)
        let w = try write(s)
        let f = try Catalog.open(w.path)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
        XCTAssertEqual(ds.shape, [2, 3, 4, 4])
        XCTAssertEqual(ds.signalKind, "4d-stem")
        XCTAssertEqual(ds.metadata.scanShape, [2, 3])
        XCTAssertEqual(ds.axes[1].scale, 0.25, accuracy: 1e-12)
        XCTAssertEqual(try values(ds), w.expected)
    }

    func testUnknownScanShapeKeepsAStackWithAWarningAndScanShapeOptionReshapes() throws {
        var s = MRCSpec(nx: 4, ny: 4, nz: 6, mode: 6)
        s.extended = .fei(version: 2, records: 6)
        let w = try write(s)
        let f = try Catalog.open(w.path)
        XCTAssertEqual(f.datasets[0].shape, [6, 4, 4])
        XCTAssertTrue(f.warnings.contains { $0.contains("scan shape unknown") && $0.contains("--scan-shape") }, "\(f.warnings)")
        let g = try Catalog.open(w.path, options: OptionValues(["scan-shape": "3,2"]))
        XCTAssertEqual(g.datasets[0].shape, [3, 2, 4, 4])
        XCTAssertEqual(try values(g.datasets[0]), w.expected)
        XCTAssertThrowsError(try Catalog.open(w.path, options: OptionValues(["scan-shape": "4,2"]))) { e in
            XCTAssertEqual((e as? EMError)?.code, .usage)
        }
    }

    func writeDE(_ dir: String, scanType: String, sx: Int, sy: Int, frames: Int, csv: [(Int, Int)]?) throws -> MRCWriter.Written {
        let s = MRCSpec(nx: 4, ny: 2, nz: frames, mode: 6)
        let w = try MRCWriter.write(s, to: dir + "/20240101_00007_movie.mrc")
        var info = """
        Camera Model                     = DE-16
        Instrument Accelerating Voltage (V) = 200000
        Scan - Enable                    = Enable
        Scan - Type                      = \(scanType)
        Scan - Size X                    = \(sx)
        Scan - Size Y                    = \(sy)
        Specimen Pixel Size X (nanometers) = 0.5
        Specimen Pixel Size Y (nanometers) = 0.25
        Timestamp (seconds since Epoch)  = 1700000000
        a line without an equals sign

        """
        info += "Key = value = with equals\n"
        try info.write(toFile: dir + "/20240101_00007_info.txt", atomically: true, encoding: .utf8)
        if let csv {
            try csv.map { "\($0.0),\($0.1)" }.joined(separator: "\n").write(toFile: dir + "/20240101_00007_scan_coordinates.csv", atomically: true, encoding: .utf8)
        }
        return w
    }

    func testDirectElectronRasterMovieIsFourDWithInfoMetadataAndCompanions() throws {
        let d = try dir("de")
        let w = try writeDE(d, scanType: "Raster", sx: 3, sy: 2, frames: 6, csv: nil)
        let f = try Catalog.open(w.path)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
        XCTAssertEqual(ds.axes[0].calibration, .uniform(offset: 0, scale: 0.25))
        XCTAssertEqual(ds.axes[1].calibration, .uniform(offset: 0, scale: 0.5))
        XCTAssertEqual(ds.metadata.beamEnergy, Quantity(200_000, "V"))
        XCTAssertEqual(ds.metadata.detectorModel, "DE-16")
        XCTAssertEqual(ds.metadata.startTime?.iso8601, "2023-11-14T22:13:20+00:00")
        XCTAssertEqual(f.original["de_info"]?["Key"]?.stringValue, "value = with equals")
        XCTAssertTrue(f.warnings.contains { $0.contains("1 lines are not 'key = value'") }, "\(f.warnings)")
        XCTAssertEqual(try values(ds), w.expected)
        XCTAssertEqual(MRCReader.companions(of: w.path), [d + "/20240101_00007_info.txt"])
        // An incomplete raster keeps complete lines and says so.
        let d2 = try dir("de2")
        let w2 = try writeDE(d2, scanType: "Raster", sx: 3, sy: 3, frames: 7, csv: nil)
        let g = try Catalog.open(w2.path)
        XCTAssertEqual(g.datasets[0].shape, [2, 3, 2, 4])
        XCTAssertTrue(g.warnings.contains { $0.contains("kept 2 complete lines") }, "\(g.warnings)")
    }

    func testImpossibleScanSizesInInfoGiveAStackNotACrash() throws {
        let d = try dir("huge")
        let w = try writeDE(d, scanType: "Raster", sx: 4_000_000_000_000, sy: 4_000_000_000_000, frames: 3, csv: nil)
        let f = try Catalog.open(w.path)
        XCTAssertEqual(f.datasets[0].shape, [3, 2, 4])
        XCTAssertTrue(f.warnings.contains { $0.contains("impossibly large") }, "\(f.warnings)")
        XCTAssertThrowsError(try Catalog.open(w.path, options: OptionValues(["scan-shape": "4000000000000,4000000000000"])))
    }

    func testDirectElectronCustomScanKeepsMeasuredOrderAndGivesCoordinates() throws {
        let d = try dir("custom")
        let pts = [(2, 0), (0, 1), (1, 1), (0, 0), (2, 1)]
        let w = try writeDE(d, scanType: "Custom", sx: 3, sy: 2, frames: 5, csv: pts)
        XCTAssertEqual(Set(MRCReader.companions(of: w.path)), [d + "/20240101_00007_info.txt", d + "/20240101_00007_scan_coordinates.csv"])
        let f = try Catalog.open(w.path)
        XCTAssertEqual(f.datasets.map(\.name), ["4d_stem", "scan_coordinates"])
        let ds = f.datasets[0]
        XCTAssertEqual(ds.axes.map(\.name), ["scan_point", "det_y", "det_x"])
        XCTAssertEqual(try values(ds), w.expected, "frames in acquisition order, not re-gridded")
        let c = f.datasets[1]
        XCTAssertEqual(c.shape, [5, 2])
        let xy = try values(c).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        XCTAssertEqual(xy, pts.flatMap { [Double($0.0) * 0.5, Double($0.1) * 0.25] })
        XCTAssertEqual(c.quantityUnits, "nm")
        XCTAssertEqual(ds.metadata.scanShape, [2, 3])
        // Without the coordinates file the frames stay a stack, with a warning.
        try FileManager.default.removeItem(atPath: d + "/20240101_00007_scan_coordinates.csv")
        let g = try Catalog.open(w.path)
        XCTAssertEqual(g.datasets[0].shape, [5, 2, 4])
        XCTAssertTrue(g.warnings.contains { $0.contains("without a _scan_coordinates.csv") }, "\(g.warnings)")
    }

    func testSerialEMMdocIsACompanionWithMetadataAndPixelSpacing() throws {
        let d = try dir("serialem")
        let w = try MRCWriter.write(MRCSpec(nx: 6, ny: 4, nz: 3, mode: 1), to: d + "/tilt.mrc")
        try """
        PixelSpacing = 2.5
        Voltage = 300
        ImageFile = tilt.mrc

        [ZValue = 0]
        TiltAngle = -60.0
        Magnification = 42000
        ExposureTime = 1.5

        [ZValue = 1]
        TiltAngle = -57.0
        """.write(toFile: d + "/tilt.mrc.mdoc", atomically: true, encoding: .utf8)
        XCTAssertEqual(MRCReader.companions(of: w.path), [d + "/tilt.mrc.mdoc"])
        let f = try Catalog.open(w.path)
        let ds = f.datasets[0]
        XCTAssertEqual(f.files, [w.path, d + "/tilt.mrc.mdoc"])
        XCTAssertEqual(ds.metadata.beamEnergy, Quantity(300_000, "V"))
        XCTAssertEqual(ds.metadata.magnification, 42000)
        XCTAssertEqual(ds.metadata.exposureTime, Quantity(1.5, "s"))
        XCTAssertEqual(ds.axes[2].calibration, .uniform(offset: 0, scale: 0.25))
        XCTAssertEqual(ds.axes[2].units, "nm")
        guard case let .array(sections)? = f.original["mdoc"]?["sections"] else { return XCTFail("no mdoc sections") }
        XCTAssertEqual(sections.count, 2)
        XCTAssertEqual(sections[1]["TiltAngle"]?.stringValue, "-57.0")
    }

    func testOlderFilesWithoutMAPAreRecognizedOnlyByExtension() throws {
        var s = MRCSpec(nx: 8, ny: 8, nz: 1, mode: 2)
        s.mapTag = false
        let w = try write(s, "old.mrc")
        XCTAssertEqual(MRCReader.identify(try Probe(path: w.path)), .maybe)
        let f = try Catalog.open(w.path)
        XCTAssertTrue(f.variant.hasPrefix("MRC (pre-2014, no MAP tag)"), f.variant)
        XCTAssertEqual(try values(f.datasets[0]), w.expected)
        try FileManager.default.copyItem(atPath: w.path, toPath: tmp + "/old.bin")
        XCTAssertEqual(MRCReader.identify(try Probe(path: tmp + "/old.bin")), .no)
        s.mapTag = true
        XCTAssertEqual(MRCReader.identify(try Probe(path: try write(s, "new.bin").path)), .yes)
    }

    func testBatchGroupsTheDirectElectronCompanions() throws {
        let d = try dir("batch")
        _ = try writeDE(d, scanType: "Custom", sx: 3, sy: 2, frames: 2, csv: [(0, 0), (1, 0)])
        let (items, skipped) = try BatchPlanner(outputDirectory: tmp + "/out", outputExtension: "nxs").plan([d])
        XCTAssertEqual(items.map { ($0.input as NSString).lastPathComponent }, ["20240101_00007_movie.mrc"])
        XCTAssertEqual(Set(items[0].companions.map { ($0 as NSString).lastPathComponent }), ["20240101_00007_info.txt", "20240101_00007_scan_coordinates.csv"])
        XCTAssertTrue(skipped.allSatisfy { $0.reason.hasPrefix("companion of") }, "\(skipped)")
    }

    // MARK: Shared real files

    func testSharedMRCCasesConvertToNeXusEqualToTheirReferences() throws {
        guard SharedTestData.root != nil else { print(SharedTestData.skipMessage); return }
        let ids = try SharedTestData.cases(format: ["MRC"])
        XCTAssertFalse(ids.isEmpty)
        for id in ids {
            let ref = try SharedTestData.reference(id)
            let src = SharedTestData.root! + "/" + id
            let f = try Catalog.open(src)
            let ds = f.datasets[0]
            let raw = ref["generic_raw"]!
            XCTAssertEqual(try DataHash.sha256(ds), raw["frames_sha256_le"]?.stringValue, id)
            let sig = arr(ref["signals"])[0]
            XCTAssertEqual(ds.shape.map { Int64($0) }, arr(sig["shape"]).compactMap { $0.intValue.map(Int64.init) }, id)
            XCTAssertEqual(ds.elementType.rawValue, sig["dtype"]?.stringValue, id)
            let out = tmp + "/" + (id as NSString).lastPathComponent + ".nxs"
            _ = try Converter.convert(input: src, output: out)
            let (h, shape, _) = try DataHash.sha256(nexus: out, name: ds.name)
            XCTAssertEqual(h, sig["data_sha256"]?.stringValue, "\(id): NeXus data")
            XCTAssertEqual(shape, ds.shape)
            // Axes: equal calibration, or the documented Direct Electron convention.
            let refAxes = arr(sig["axes"])
            for (a, r) in zip(ds.axes, refAxes) {
                XCTAssertEqual(a.size, r["size"]?.intValue, "\(id) \(a.name)")
                XCTAssertEqual(a.role == .navigation, r["navigate"] == .bool(true), "\(id) \(a.name)")
                if ds.conventions["emconv_de_calibration"] == nil {
                    XCTAssertEqual(a.scale, r["scale"]!.doubleValue!, accuracy: 1e-6 * a.scale, "\(id) \(a.name)")
                    XCTAssertEqual(a.offset, r["offset"]?.doubleValue ?? 0, accuracy: 1e-9, "\(id) \(a.name)")
                    XCTAssertEqual(a.units, r["units"]?.stringValue, "\(id) \(a.name)")
                }
            }
            if let c = ds.conventions["emconv_de_calibration"] {
                XCTAssertTrue(c.contains("RosettaSciIO 0.15 sets every Direct Electron axis scale to 1"))
                XCTAssertEqual(ds.axes[0].scale, 0.2, accuracy: 1e-12)  // Specimen Pixel Size Y (nanometers)
                XCTAssertEqual(ds.axes[1].scale, 0.1, accuracy: 1e-12)
            }
        }
    }

    func testInfoShowsTheVariantOfTheRealFiles() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let r = try CLIRunner.run(["info", root + "/mrc/HAADFscan.mrc"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("mode 6 (uint16), little-endian (machine stamp), extended header FEI2 (metadata version 2, 1024 records of 888 bytes)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("beam_energy: 300000 V"), r.stdout)
        let m = try CLIRunner.run(["info", root + "/mrc/20241021_00405_movie.mrc"])
        XCTAssertTrue(m.stdout.contains("4D-STEM 4x8 scan of 4x8"), m.stdout)
        XCTAssertTrue(m.stdout.contains("20241021_00405_info.txt"), m.stdout)
    }

    // MARK: Damaged input

    /// Every case cut at 20 offsets and with bytes flipped at 20 offsets: never a crash; a
    /// conversion either fails with a one-line EMError naming the file and leaves nothing, or
    /// succeeds — and a truncated file never converts without a warning.
    func testTruncationAndCorruptionSweep() throws {
        var cases: [(String, [UInt8])] = []
        func add(_ s: MRCSpec, _ name: String) throws {
            let w = try MRCWriter.write(s, to: try dir("src") + "/" + name)
            cases.append((name, [UInt8](try Data(contentsOf: URL(fileURLWithPath: w.path)))))
        }
        var s = MRCSpec(nx: 16, ny: 8, nz: 4, mode: 2); try add(s, "f32.mrc")
        s = MRCSpec(nx: 9, ny: 8, nz: 4, mode: 101); try add(s, "nib.mrc")
        s = MRCSpec(nx: 8, ny: 8, nz: 3, mode: 12); s.bigEndian = true; try add(s, "half_be.mrc")
        s = MRCSpec(nx: 8, ny: 8, nz: 4, mode: 6); s.extended = .fei(version: 2, records: 4); s.feiScan = (2, 2); try add(s, "fei2.mrc")
        s = MRCSpec(nx: 8, ny: 4, nz: 2, mode: 1); s.stamp = .zero; s.mapTag = false; s.extended = .filler(bytes: 512, type: ""); try add(s, "old.mrc")
        if let root = SharedTestData.root {
            for n in ["HAADFscan.mrc", "20241021_00405_movie.mrc"] {
                cases.append((n, [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/mrc/" + n)))))
            }
        }
        var converted = 0, failed = 0
        for (name, bytes) in cases {
            let size = bytes.count
            let cuts = (1...20).map { i in max(1, size * i / 21 + (i % 3)) }.filter { $0 < size }
            var variants: [(String, [UInt8], Bool)] = cuts.map { ("cut at \($0)", Array(bytes.prefix($0)), true) }
            for i in 0..<20 {
                var b = bytes
                let o = i < 10 ? [0, 4, 8, 12, 40, 92, 104, 208, 212, 1024][i] % size : (size * (i - 9)) / 11
                b[min(o, size - 1)] ^= 0xFF
                variants.append(("byte \(o) flipped", b, false))
            }
            for (what, b, truncated) in variants {
                let d = try dir("case-\(UUID().uuidString)")
                let input = d + "/" + name
                try Data(b).write(to: URL(fileURLWithPath: input))
                let outDir = try dir("out-\(UUID().uuidString)")
                do {
                    let r = try Converter.convert(input: input, output: outDir + "/o.nxs")
                    converted += 1
                    if truncated {
                        XCTAssertFalse(r.warnings.isEmpty, "\(name) \(what): truncated file converted without a warning")
                    }
                } catch let e as EMError {
                    failed += 1
                    XCTAssertFalse(e.description.contains("\n"), "\(name) \(what): \(e)")
                    XCTAssertTrue(e.description.contains(name), "\(name) \(what): error does not name the file: \(e)")
                    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir), [], "\(name) \(what): output left behind")
                } catch {
                    XCTFail("\(name) \(what): not an EMError: \(error)")
                }
            }
        }
        XCTAssertGreaterThan(converted, 0)
        XCTAssertGreaterThan(failed, 0)
    }

    func testFileShorterThanOneFrameGetsThePreciseError() throws {
        let w = try write(MRCSpec(nx: 64, ny: 64, nz: 2, mode: 2), "short.mrc")
        try Data(try Data(contentsOf: URL(fileURLWithPath: w.path)).prefix(1024 + 100)).write(to: URL(fileURLWithPath: w.path))
        XCTAssertThrowsError(try Catalog.open(w.path)) { e in
            XCTAssertEqual((e as? EMError)?.code, .badInput)
            XCTAssertTrue("\(e)".contains("at offset 1024: file is truncated: one 64x64 mode 2 (float32) frame needs 16384 bytes"), "\(e)")
        }
    }

    func testForeignOrBrokenInfoFilesAreNotUsed() throws {
        let d = try dir("foreign")
        let w = try MRCWriter.write(MRCSpec(nx: 4, ny: 4, nz: 2, mode: 1), to: d + "/run_01.mrc")
        try "Operator = someone\nSample = x\n".write(toFile: d + "/run_info.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(MRCReader.companions(of: w.path), [])
        let f = try Catalog.open(w.path)
        XCTAssertEqual(f.files, [w.path])
        XCTAssertTrue(f.warnings.contains { $0.contains("run_info.txt has no Direct Electron keys") }, "\(f.warnings)")
        try Data([0x43, 0x61, 0, 1, 2]).write(to: URL(fileURLWithPath: d + "/run_info.txt"))
        let g = try Catalog.open(w.path)
        XCTAssertEqual(try values(g.datasets[0]), w.expected)
        XCTAssertTrue(g.warnings.contains { $0.contains("Direct Electron info not used") && $0.contains("NUL") }, "\(g.warnings)")
    }

    func testCLIGivesOneLineAndNoOutputForATruncatedHeader() throws {
        var s = MRCSpec(nx: 8, ny: 8, nz: 2, mode: 2)
        s.extended = .fei(version: 2, records: 2)
        let w = try write(s, "cut.mrc")
        let b = try Data(contentsOf: URL(fileURLWithPath: w.path))
        try b.prefix(1500).write(to: URL(fileURLWithPath: w.path))
        let out = try dir("o")
        let r = try CLIRunner.run(["convert", w.path, "-o", out + "/x.nxs"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cut.mrc") && r.stderr.contains("offset"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [])
    }
}
