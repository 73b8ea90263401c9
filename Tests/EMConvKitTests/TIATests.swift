@testable import FormatTIA
import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// TIA SER/EMI: the shared real files against RosettaSciIO's reading, generated series for
/// what they lack (0x0220 offsets, every data type, 2-D scans of images), and bad input.
final class TIATests: TempDirectoryTestCase {
    func ints(_ v: MetaValue?) -> [Int] {
        if case let .array(a)? = v { return a.compactMap(\.intValue) }
        return []
    }

    /// RosettaSciIO's units → emconv's and the factor from the file's SI value.
    func factor(_ units: String?) -> Double {
        switch units {
        case "nm": return 1e9
        case "1 / nm": return 1e-9
        default: return 1
        }
    }

    func testEveryTIACaseMatchesReference() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let cases = try SharedTestData.cases(format: ["SER/EMI"])
        XCTAssertEqual(cases.count, 7)
        for id in cases {
            let ref = try SharedTestData.reference(id)
            guard case let .array(signals)? = ref["signals"] else { return XCTFail(id) }
            let file = try Catalog.open(root + "/" + id)
            XCTAssertEqual(file.format, "tia", id)
            XCTAssertEqual(file.datasets.count, signals.count, id)
            let out = tmp + "/" + (id as NSString).lastPathComponent + ".nxs"
            let result = try Converter.convert(input: root + "/" + id, output: out, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true))
            XCTAssertEqual(result.datasets.count, signals.count, id)
            for (ds, s) in zip(file.datasets, signals) {
                let what = "\(id) \(ds.name)"
                XCTAssertEqual(ds.shape, ints(s["shape"]), what)
                XCTAssertEqual(ElementType.parse(numpy: s["dtype"]?.stringValue ?? "")?.0, ds.elementType, what)
                XCTAssertEqual(try DataHash.sha256(ds), s["data_sha256"]?.stringValue, "\(what): data")
                let (h, shape, type) = try DataHash.sha256(nexus: out, name: ds.name)
                XCTAssertEqual(h, s["data_sha256"]?.stringValue, "\(what): NeXus data")
                XCTAssertEqual(shape, ds.shape, what)
                XCTAssertEqual(type, ds.elementType, what)
                guard case let .array(axes)? = s["axes"] else { return XCTFail(what) }
                XCTAssertEqual(axes.count, ds.rank, what)
                let header = ds.original["ser_header"]
                guard case let .array(dims)? = header?["Dimensions"] else { return XCTFail(what) }
                for (k, (a, b)) in zip(axes, ds.axes).enumerated() {
                    let refScale = a["scale"]!.doubleValue!, refOffset = a["offset"]!.doubleValue!
                    let f = factor(a["units"]?.stringValue)
                    XCTAssertEqual(a["size"]?.intValue, b.size, what)
                    XCTAssertEqual(a["navigate"] == .bool(true), b.role == .navigation, what)
                    if let u = a["units"]?.stringValue { XCTAssertEqual(u.replacingOccurrences(of: " ", with: ""), b.units, what) }
                    // Documented differences (emconv_tia_calibration, emconv_orientation):
                    // RosettaSciIO leaves offsets in SI units and ignores CalibrationElement;
                    // emconv's image y axis runs down the flipped rows.
                    if b.role == .signal && (b.name == "y" || b.name == "det_y") {
                        XCTAssertEqual(b.scale, -refScale, accuracy: abs(refScale) * 1e-12, what)
                        XCTAssertEqual(b.offset, refOffset * f + Double(b.size - 1) * refScale, accuracy: abs(refScale) * 1e-9, what)
                    } else {
                        XCTAssertEqual(b.scale, refScale, accuracy: abs(refScale) * 1e-12, what)
                        var element = 0.0
                        if b.role == .navigation, ds.axes.filter({ $0.role == .navigation }).count == dims.count {
                            element = dims[dims.count - 1 - k]["CalibrationElement"]?.doubleValue ?? 0
                        }
                        XCTAssertEqual(b.offset, refOffset * f - element * refScale, accuracy: max(abs(refScale), 1) * 1e-9, what)
                    }
                }
                XCTAssertNotNil(ds.conventions["emconv_tia_calibration"], what)
            }
        }
    }

    func testEMIWithTwoSERFilesOpensAsTwoDetectorsWithMicroscopeMetadata() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let f = try Catalog.open(root + "/tia/old/16x16_STEM_BF_DF_acquire.emi")
        XCTAssertEqual(f.datasets.map(\.name), ["acquire_bf", "acquire_df4"])
        XCTAssertEqual(f.files.map { ($0 as NSString).lastPathComponent },
                       ["16x16_STEM_BF_DF_acquire.emi", "16x16_STEM_BF_DF_acquire_1.ser", "16x16_STEM_BF_DF_acquire_2.ser"])
        let md = f.datasets[1].metadata
        XCTAssertEqual(md.beamEnergy, Quantity(200_000, "V"))
        XCTAssertEqual(md.cameraLength, Quantity(0.04, "m"))
        XCTAssertEqual(md.magnification, 10_000)
        XCTAssertEqual(md.detectorName, "Acquire DF4")
        XCTAssertEqual(md.instrumentName, "Tecnai 200 kV D2267 SuperTwin")
        XCTAssertEqual(md.dwellTime, Quantity(0.000048, "s"))
        XCTAssertEqual(md.startTime?.iso8601, "2016-02-21T17:53:06")
        XCTAssertEqual(md.softwareVersion, "4.5.1101.0")
        XCTAssertTrue(f.variant.contains("0x0210"), f.variant)
        XCTAssertTrue(f.warnings.isEmpty, "\(f.warnings)")
        // Diffraction (reciprocal space, 0x0220): 1/nm, element tags kept per frame.
        let d = try Catalog.open(root + "/tia/new/128x128x5-diffraction_preview.emi")
        XCTAssertEqual(d.datasets[0].signalKind, "diffraction")
        XCTAssertEqual(d.datasets[0].axes.map(\.units), ["", "1/nm", "1/nm"])
        XCTAssertEqual(d.datasets[0].metadata.cameraLength, Quantity(1.1, "m"))
        XCTAssertTrue(d.variant.contains("64-bit offsets"), d.variant)
        if case let .array(times)? = d.datasets[0].original["element_tags"]?["time_unix_s"] { XCTAssertEqual(times.count, 5) } else { XCTFail("no element tags") }
        // Spectrum image: time + position tags per element.
        let si = try Catalog.open(root + "/tia/old/16x16-spectrum_image-5x5x1024.emi").datasets[0]
        XCTAssertEqual(si.axes.map(\.name), ["scan_y", "scan_x", "energy"])
        XCTAssertEqual(si.metadata.scanShape, [5, 5])
        if case let .array(xs)? = si.original["element_tags"]?["position_x_m"] { XCTAssertEqual(xs.count, 25) } else { XCTFail("no positions") }
    }

    func testSERAloneOpensWithWarningThatEMIMetadataIsMissing() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let src = root + "/tia/old/16x16_STEM_BF_DF_acquire_2.ser"
        let alone = tmp + "/x_2.ser"
        try FileManager.default.copyItem(atPath: src, toPath: alone)
        let f = try Catalog.open(alone)
        XCTAssertEqual(f.datasets.count, 1)
        XCTAssertTrue(f.warnings.contains { $0.contains("no .emi") }, "\(f.warnings)")
        XCTAssertNil(f.datasets[0].metadata.beamEnergy)
        XCTAssertEqual(f.datasets[0].axes.last?.units, "nm", "metre-sized pixels: real space")
        // Beside its .emi, the .ser gets the .emi's metadata for its own object.
        let g = try Catalog.open(src)
        XCTAssertEqual(g.datasets[0].metadata.detectorName, "Acquire DF4")
        XCTAssertTrue(g.warnings.isEmpty, "\(g.warnings)")
    }

    func testBatchConvertsTheEMIAndNotItsSERFiles() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let dir = try dir("tia")
        for n in ["16x16_STEM_BF_DF_acquire.emi", "16x16_STEM_BF_DF_acquire_1.ser", "16x16_STEM_BF_DF_acquire_2.ser"] {
            try FileManager.default.copyItem(atPath: root + "/tia/old/" + n, toPath: dir + "/" + n)
        }
        let p = BatchPlanner(outputDirectory: tmp + "/out", outputExtension: "nxs")
        let (items, skipped) = try p.plan([dir])
        XCTAssertEqual(items.map { ($0.input as NSString).lastPathComponent }, ["16x16_STEM_BF_DF_acquire.emi"])
        XCTAssertEqual(items.first?.companions.count, 2)
        XCTAssertEqual(skipped.filter { $0.reason.hasPrefix("companion of") }.count, 2)
    }

    // MARK: generated series

    func values(_ i: Int, count: Int, size: Int) -> [UInt8] {
        (0..<(count * size)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i &* 13 &+ 1) }
    }

    func testEveryDataTypeAndBothOffsetWidths() throws {
        for version: UInt16 in [0x0210, 0x0220] {
            for code: Int16 in 1...10 {
                let p = tmp + "/t\(version)_\(code)_1.ser"
                let size = SERWriter.valueSize(code)
                try SERWriter.write(p, version: version, image: true, dataType: code, frame: [3, 4],
                                    dims: [SERWriter.Dim(3), SERWriter.Dim(2)], calibration: (-1e-9, 1e-10)) { self.values($0, count: 12, size: size) }
                let f = try Catalog.open(p)
                let ds = f.datasets[0]
                XCTAssertEqual(ds.elementType, SERFile.elementType(code: code))
                XCTAssertEqual(ds.elementType.size, size)
                XCTAssertEqual(ds.shape, [2, 3, 3, 4], "header dimensions fastest first; C order reversed")
                XCTAssertTrue(f.variant.contains(version == 0x0220 ? "64-bit" : "32-bit"), f.variant)
                let all = try DataHash.bytes(ds)
                for i in 0..<6 {
                    let frame = values(i, count: 12, size: size)
                    let rowBytes = 4 * size
                    // Rows come out top first: stored row 2 is output row 0.
                    let flipped = (0..<3).reversed().flatMap { frame[($0 * rowBytes)..<(($0 + 1) * rowBytes)] }
                    XCTAssertEqual(Array(all[(i * 12 * size)..<((i + 1) * 12 * size)]), flipped, "type \(code) element \(i)")
                }
                XCTAssertEqual(ds.axes[3].units, "nm")
                XCTAssertEqual(ds.axes[3].offset, -1, accuracy: 1e-12)
                XCTAssertEqual(ds.axes[3].scale, 0.1, accuracy: 1e-12)
                XCTAssertEqual(ds.axes[2].offset, -1 + 0.2, accuracy: 1e-12, "y runs down the flipped rows")
            }
        }
    }

    func testDiffractionScanIs4DSTEMAndSpectraHaveEnergy() throws {
        let p = tmp + "/scan_1.ser"
        let dims = [SERWriter.Dim(4, offset: 0, delta: 2e-9, description: "Position", units: "meters"),
                    SERWriter.Dim(3, offset: 0, delta: 2e-9, element: 1, description: "Position", units: "meters")]
        try SERWriter.write(p, version: 0x0220, image: true, dataType: 2, frame: [8, 8], dims: dims, positionTags: true,
                            calibration: (-4e7, 1e7)) { self.values($0, count: 64, size: 2) }
        let f = try Catalog.open(p)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.shape, [3, 4, 8, 8])
        XCTAssertEqual(ds.signalKind, "4d-stem")
        XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
        XCTAssertEqual(ds.axes.map(\.units), ["nm", "nm", "1/nm", "1/nm"])
        XCTAssertEqual(ds.axes[0].offset, -2, accuracy: 1e-12, "CalibrationElement 1 shifts the origin")
        XCTAssertEqual(ds.axes[3].scale, 0.01, accuracy: 1e-15)
        XCTAssertTrue(f.warnings.contains { $0.contains("no .emi") })
        if case let .array(ys)? = ds.original["element_tags"]?["position_y_m"] { XCTAssertEqual(ys.count, 12) } else { XCTFail() }

        let s = tmp + "/line_1.ser"
        try SERWriter.write(s, image: false, dataType: 6, frame: [16], dims: [SERWriter.Dim(5, delta: 1e-10, description: "Position", units: "meters")],
                            positionTags: true, calibration: (-20, 0.5)) { self.values($0, count: 16, size: 4) }
        let sp = try Catalog.open(s).datasets[0]
        XCTAssertEqual(sp.shape, [5, 16])
        XCTAssertEqual(sp.axes.map(\.units), ["nm", "eV"])
        XCTAssertEqual(sp.axes[1].offset, -20)
        XCTAssertEqual(sp.axes[0].scale, 0.1, accuracy: 1e-12)
        XCTAssertEqual(sp.signalKind, "spectrum")
    }

    func testEMIGeneratedWithTwoDetectorsAndAStoppedScan() throws {
        let d = try dir("gen")
        for n in 1...2 {
            try SERWriter.write(d + "/acq_\(n).ser", image: true, dataType: 7, frame: [4, 4],
                                dims: [SERWriter.Dim(3, description: "Position", units: "meters"), SERWriter.Dim(3, description: "Position", units: "meters")],
                                valid: n == 1 ? 9 : 7, calibration: (0, 1e-9)) { self.values($0, count: 16, size: 4) }
        }
        try SERWriter.writeEMI(d + "/acq.emi", objects: [("HAADF", "Real Space", "acq_1.ser", SERWriter.objectInfo()),
                                                          ("BF", "Real Space", "acq_2.ser", SERWriter.objectInfo(voltage: 300_000))])
        let f = try Catalog.open(d + "/acq.emi")
        XCTAssertEqual(f.datasets.map(\.name), ["haadf", "bf"])
        XCTAssertEqual(f.datasets[0].shape, [3, 3, 4, 4])
        XCTAssertEqual(f.datasets[1].shape, [7, 4, 4], "a stopped scan is kept as the list of its elements")
        XCTAssertTrue(f.warnings.contains { $0.contains("7 of 9") }, "\(f.warnings)")
        XCTAssertEqual(f.datasets[1].metadata.beamEnergy, Quantity(300_000, "V"))
        XCTAssertEqual(f.datasets[0].metadata.instrumentVendor, "FEI")
        XCTAssertEqual(Set(TIAReader.companions(of: d + "/acq.emi").map { ($0 as NSString).lastPathComponent }), ["acq_1.ser", "acq_2.ser"])
    }

    // MARK: bad input

    func assertRefused(_ path: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let f = try Catalog.open(path)
            XCTFail("\(what): opened with \(f.datasets.count) datasets", file: file, line: line)
        } catch let e as EMError {
            XCTAssertTrue([.badInput, .unsupported].contains(e.code), "\(what): \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        } catch {
            XCTFail("\(what): \(error)", file: file, line: line)
        }
    }

    func testHostileHeaders() throws {
        let p = tmp + "/h_1.ser"
        try SERWriter.write(p, image: false, dataType: 6, frame: [16], dims: [SERWriter.Dim(2)]) { self.values($0, count: 16, size: 4) }
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: p)))
        func patched(_ at: Int, _ bytes: [UInt8]) throws -> String {
            var b = good
            b.replaceSubrange(at..<(at + bytes.count), with: bytes)
            let q = tmp + "/bad_1.ser"
            try Data(b).write(to: URL(fileURLWithPath: q))
            return q
        }
        assertRefused(try patched(4, [0x30, 0x02]), "version 0x0230")
        assertRefused(try patched(6, [0x99, 0x41, 0, 0]), "data type ID")
        assertRefused(try patched(14, [0xFF, 0xFF, 0xFF, 0x7F]), "huge element count")
        assertRefused(try patched(18, [3, 0, 0, 0]), "more valid than total")
        assertRefused(try patched(22, [0xFF, 0xFF, 0xFF, 0x0F]), "offset array past the end")
        assertRefused(try patched(26, [0, 1, 0, 0]), "256 dimensions")
        // Element header: data type code 11, and an array length far beyond the file.
        let e0 = Int(UInt32(good[22]) | UInt32(good[23]) << 8) // offset array
        let d0 = Int(UInt32(good[e0]) | UInt32(good[e0 + 1]) << 8 | UInt32(good[e0 + 2]) << 16)
        assertRefused(try patched(d0 + 20, [11, 0]), "data type code 11")
        assertRefused(try patched(d0 + 22, [0, 0, 0, 0x10]), "array length past the end")
        assertRefused(try patched(d0 + 22, [0, 0, 0, 0]), "zero length")
    }

    func testTruncationAndCorruptionSweep() throws {
        var inputs: [(String, [String])] = []   // (primary, files of the case)
        if let root = SharedTestData.root {
            for id in try SharedTestData.cases(format: ["SER/EMI"]) {
                let ref = try SharedTestData.reference(id)
                guard case let .array(files)? = ref["files"] else { continue }
                inputs.append((root + "/" + id, files.compactMap { $0["path"]?.stringValue.map { root + "/" + $0 } }))
            }
        } else {
            print(SharedTestData.skipMessage + " (sweep runs on generated files only)")
        }
        let g = try dir("g")
        try SERWriter.write(g + "/g_1.ser", version: 0x0220, image: true, dataType: 2, frame: [6, 5],
                            dims: [SERWriter.Dim(3, description: "Position", units: "meters"), SERWriter.Dim(2, description: "Position", units: "meters")],
                            positionTags: true, calibration: (0, 1e-9)) { self.values($0, count: 30, size: 2) }
        inputs.append((g + "/g_1.ser", [g + "/g_1.ser"]))
        var converted = 0, refused = 0, warned = 0, emiCutsAfterMetadata = 0
        for (primary, files) in inputs {
            // Every .ser and the .emi of the case, each in turn damaged in a copy of the case.
            for victim in files {
                let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: victim)))
                let variants = Mutants.sweep(full, seed: 11)
                for (k, (bytes, truncated)) in variants.enumerated() {
                    let d = try dir("case\(converted + refused)")
                    for f in files where f != victim { try FileManager.default.copyItem(atPath: f, toPath: d + "/" + (f as NSString).lastPathComponent) }
                    try Data(bytes).write(to: URL(fileURLWithPath: d + "/" + (victim as NSString).lastPathComponent))
                    let input = d + "/" + (primary as NSString).lastPathComponent
                    let out = d + "/out.nxs"
                    do {
                        let r = try Converter.convert(input: input, output: out, options: ConversionOptions(threads: 1, commandLine: "test", overwrite: true))
                        converted += 1
                        if truncated && victim.hasSuffix(".emi") && r.warnings.isEmpty {
                            // The .emi has no length field or trailer (as far as is known): a cut
                            // after the blocks emconv uses is invisible, and the metadata are whole.
                            let f = try Catalog.open(input)
                            XCTAssertTrue(f.datasets.allSatisfy { $0.metadata.beamEnergy != nil }, "\(victim) cut \(k): metadata lost without a warning")
                            emiCutsAfterMetadata += 1
                        } else if truncated {
                            XCTAssertFalse(r.warnings.isEmpty, "\(victim) cut \(k) converted without a warning")
                            warned += 1
                        }
                    } catch let e as EMError {
                        refused += 1
                        XCTAssertTrue([.badInput, .unsupported, .missingInput].contains(e.code), "\(victim) variant \(k): \(e)")
                        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(victim) variant \(k): output left behind")
                        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: d)), Set(files.map { ($0 as NSString).lastPathComponent }),
                                       "\(victim) variant \(k): no temporary left behind")
                    }
                    try FileManager.default.removeItem(atPath: d)
                }
            }
        }
        print("TIA sweep: \(converted) converted (\(warned) truncated with warnings, \(emiCutsAfterMetadata) .emi cut after its metadata), \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }
}
