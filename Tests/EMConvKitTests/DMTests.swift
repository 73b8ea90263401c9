import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// DigitalMicrograph DM3/DM4: every shared case against RosettaSciIO's reference, generated
/// files for what the samples lack, and hostile inputs.
final class DMTests: TempDirectoryTestCase {
    static func ints(_ v: MetaValue?) -> [Int]? {
        if case let .array(a)? = v { return a.compactMap(\.intValue) }
        return nil
    }

    static func units(_ s: String) -> String {
        s.replacingOccurrences(of: "\u{00B5}", with: "u").replacingOccurrences(of: "\u{03BC}", with: "u")
    }

    /// Reference dtype name vs ours.
    static func sameType(_ ref: String, _ t: ElementType) -> Bool {
        if t == .rgba8 { return ref.contains("'R'") && ref.contains("'A'") }
        return ref == t.rawValue || ref.hasSuffix(String(t.numpyString.dropFirst()))
    }

    /// Reference JSON by id (file names replace '/' by '__' and spaces by '_').
    static func reference(_ root: String, _ id: String) throws -> MetaValue {
        let base = root + "/reference/" + id.replacingOccurrences(of: "/", with: "__")
        for p in [base + ".json", base.replacingOccurrences(of: " ", with: "_") + ".json"] where FileManager.default.fileExists(atPath: p) {
            return try MetaValue.parseJSON(try String(contentsOfFile: p, encoding: .utf8))
        }
        throw EMError(.missingInput, file: base, "reference not found")
    }

    func testEveryDMCaseMatchesReference() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let cases = try SharedTestData.cases(format: ["DM3", "DM4"])
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        var checked = 0
        for id in cases {
            let ref = try Self.reference(root, id)
            let file = try Catalog.open(root + "/" + id)
            XCTAssertEqual(file.format, "dm", id)
            guard case let .array(sigs)? = ref["signals"] else { XCTFail("\(id): no signals"); continue }
            var views: [MetaValue] = []
            if case let .array(v)? = ref["hyperspy_view"]?["signals"] { views = v }
            XCTAssertEqual(file.datasets.count, sigs.count, "\(id): dataset count")
            for (k, ds) in file.datasets.enumerated() where k < sigs.count {
                let s = sigs[k]
                // Our order equals RosettaSciIO's except spectrum images (energy last here, as in HyperSpy's view).
                let refShape = Self.ints(s["shape"]) ?? []
                var hash = s["data_sha256"]?.stringValue
                var axes: [MetaValue] = []
                if case let .array(a)? = s["axes"] { axes = a.sorted { ($0["index_in_array"]?.intValue ?? 0) < ($1["index_in_array"]?.intValue ?? 0) } }
                if refShape != ds.shape, k < views.count, Self.ints(views[k]["data_shape"]) == ds.shape {
                    hash = views[k]["data_sha256"]?.stringValue
                    if case let .array(a)? = views[k]["axes"] { axes = a }
                }
                XCTAssertEqual(try DataHash.sha256(ds), hash, "\(id)[\(k)]: data")
                XCTAssertTrue(Self.sameType(s["dtype"]?.stringValue ?? "", ds.elementType), "\(id)[\(k)]: dtype \(s["dtype"]?.stringValue ?? "") vs \(ds.elementType)")
                XCTAssertEqual(axes.count, ds.rank, "\(id)[\(k)]: rank")
                for (a, b) in zip(axes, ds.axes) {
                    XCTAssertEqual(a["size"]?.intValue, b.size, "\(id)[\(k)] \(b.name)")
                    let rs = a["scale"]?.doubleValue ?? .nan, ro = a["offset"]?.doubleValue ?? .nan
                    XCTAssertEqual(rs, b.scale, accuracy: abs(rs) * 1e-12, "\(id)[\(k)] \(b.name) scale")
                    XCTAssertEqual(ro, b.offset, accuracy: max(abs(ro), abs(rs)) * 1e-12, "\(id)[\(k)] \(b.name) offset")
                    XCTAssertEqual(Self.units(a["units"]?.stringValue ?? ""), b.units, "\(id)[\(k)] \(b.name) units")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 61)
    }

    // MARK: NeXus conversion of shared cases

    func testSharedCasesConvertToNeXus() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let ids = ["dm/real/EELS_SI.dm4", "dm/real/multi_signal.dm3", "dm/dtypes/2D/test-27.dm4", "dm/dtypes/2D/test-23.dm4",
                   "dm/real/dmTest_3D_int16_64,65,66.dm3", "dm/dtypes/2D/test-13.dm4"]
        for id in ids {
            let path = root + "/" + id
            let file = try Catalog.open(path)
            let out = tmp + "/" + (id as NSString).lastPathComponent + ".nxs"
            _ = try Converter.convert(input: path, output: out, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true))
            for ds in file.datasets {
                let p = ds.name
                let (h, shape, t) = try DataHash.sha256(nexus: out, name: ds.name)
                XCTAssertEqual(shape, ds.shape, id)
                XCTAssertEqual(t, ds.elementType, id)
                XCTAssertEqual(h, try DataHash.sha256(ds), "\(id): \(p)")
            }
        }
    }

    // MARK: generated files

    static let allTypes = [1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 23]

    func rnd(_ n: Int, seed: inout UInt64, bool: Bool = false) -> [UInt8] {
        (0..<n).map { _ in
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let b = UInt8(truncatingIfNeeded: seed >> 33)
            return bool ? b & 1 : b
        }
    }

    func testEveryDataTypeBothOrdersBothVersions() throws {
        var seed: UInt64 = 42
        var n = 0
        for dt in Self.allTypes {
            let (es, _, _, _) = DMWriter.pixelLayout(dt)
            for version in [3, 4] {
                for order in [ByteOrder.little, .big] {
                    let dims = [3, 2]
                    let pix = rnd(6 * es, seed: &seed, bool: dt == 14)
                    let path = tmp + "/t\(dt)-\(version)-\(order).dm\(version)"
                    try DMWriter.write(path, version: version, byteOrder: order, images: [
                        DMWriter.Image(dataType: dt, dims: dims, pixels: .bytes(pix), calibrations: [(1, 0.5, "nm"), (2, 0.25, "\u{00B5}m")],
                                       brightness: (0, 2, "counts")),
                    ])
                    let f = try Catalog.open(path)
                    XCTAssertEqual(f.variant, "DM\(version) \(order.rawValue)-endian")
                    XCTAssertEqual(f.datasets.count, 1, "thumbnail skipped")
                    let ds = f.datasets[0]
                    XCTAssertEqual(ds.shape, [2, 3])
                    XCTAssertEqual(ds.elementType.size, es)
                    var expect = pix
                    if dt == 8 || dt == 23 { for i in stride(from: 0, to: expect.count, by: 4) { expect.swapAt(i, i + 2) } }
                    XCTAssertEqual(try DataHash.bytes(ds), expect, "DataType \(dt) DM\(version) \(order)")
                    XCTAssertEqual(ds.axes[1].units, "nm")
                    XCTAssertEqual(ds.axes[1].offset, -0.5)
                    XCTAssertEqual(ds.axes[0].units, "um")
                    XCTAssertEqual(ds.axes[0].offset, -0.5)
                    XCTAssertEqual(ds.axes[0].scale, 0.25)
                    XCTAssertEqual(ds.quantityUnits, "counts")
                    XCTAssertNotNil(ds.conventions["units_note"])
                    n += 1
                }
            }
        }
        XCTAssertEqual(n, Self.allTypes.count * 4)
    }

    func testPackedComplexUnpacked() throws {
        // DataType 27: 2 rows × 4 columns stored as 2 × 3 complex64 values per row.
        let packed: [Float] = [1, 0, 2, 1, 3, 0, 4, 0, 5, -1, 6, 0]
        for order in [ByteOrder.little, .big] {
            let path = tmp + "/p27-\(order).dm4"
            let bytes = packed.withUnsafeBytes { Array($0) }
            try DMWriter.write(path, byteOrder: order, images: [DMWriter.Image(dataType: 27, dims: [4, 2], pixels: .bytes(bytes))])
            let ds = try Catalog.open(path).datasets[0]
            XCTAssertEqual(ds.elementType, .complex64)
            XCTAssertEqual(ds.shape, [2, 4])
            let out = try DataHash.bytes(ds).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            // row: [p2, p1, p0, conj(p1)]
            XCTAssertEqual(out, [3, 0, 2, 1, 1, 0, 2, -1, 6, 0, 5, -1, 4, 0, 5, 1])
            // DataType 28: the same with float64.
            let p28 = tmp + "/p28-\(order).dm3"
            try DMWriter.write(p28, version: 3, byteOrder: order, images: [DMWriter.Image(dataType: 28, dims: [4, 2],
                                                                                           pixels: .bytes(packed.map(Double.init).withUnsafeBytes { Array($0) }))])
            let d28 = try Catalog.open(p28).datasets[0]
            XCTAssertEqual(d28.elementType, .complex128)
            XCTAssertEqual(try DataHash.bytes(d28).withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }, out.map(Double.init))
        }
        // DataType 5 (old 2N×2N packing): 4×4 image from 16 float32 values; DC terms land at (0,0) and (N,0).
        let p5 = tmp + "/p5.dm4"
        let old = (0..<16).map { Float($0 + 1) }
        try DMWriter.write(p5, images: [DMWriter.Image(dataType: 5, dims: [4, 4], pixels: .bytes(old.withUnsafeBytes { Array($0) }))])
        let d5 = try Catalog.open(p5).datasets[0]
        XCTAssertEqual(d5.shape, [4, 4])
        let v5 = try DataHash.bytes(d5).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(v5[0], 2)               // data[0,0] = t[1]
        XCTAssertEqual(v5[(2 * 4 + 0) * 2], 1) // data[N,0] = t[0]
        XCTAssertEqual(v5[(2 * 4 + 2) * 2], 9) // data[N,N] = t[2N²]
        XCTAssertEqual(v5[(0 * 4 + 2) * 2], 10) // data[0,N] = t[2N²+1]
    }

    func testSpectrumImageAndStack() throws {
        // SI: Dimensions [x=3, y=2, E=5]; disk C order (E, y, x); exposed (y, x, E).
        let (X, Y, E) = (3, 2, 5)
        var disk = [UInt16](repeating: 0, count: X * Y * E)
        for e in 0..<E { for y in 0..<Y { for x in 0..<X { disk[(e * Y + y) * X + x] = UInt16(1000 * y + 100 * x + e) } } }
        for version in [3, 4] {
            for order in [ByteOrder.little, .big] {
                let path = tmp + "/si\(version)\(order).dm\(version)"
                try DMWriter.write(path, version: version, byteOrder: order, images: [DMWriter.Image(
                    dataType: 10, dims: [X, Y, E], pixels: .bytes(disk.withUnsafeBytes { Array($0) }),
                    calibrations: [(0, 2, "nm"), (0, 2, "nm"), (-100, 0.5, "eV")],
                    imageTags: [("Meta Data", .group([("Format", .text("Spectrum image")), ("Signal", .text("EELS"))]))])])
                for budget in [1 << 26, 16] {  // whole array cached, and a few spectra at a time
                    let ds = try Catalog.open(path, options: OptionValues(["dm-transpose-cache": String(budget)])).datasets[0]
                    XCTAssertEqual(ds.shape, [Y, X, E])
                    XCTAssertEqual(ds.signalKind, "eels")
                    XCTAssertEqual(ds.frameRank, 1)
                    XCTAssertEqual(ds.axes[2].offset, 50)
                    XCTAssertEqual(ds.axes[2].units, "eV")
                    let out = try DataHash.bytes(ds).withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }
                    var expect: [UInt16] = []
                    for y in 0..<Y { for x in 0..<X { for e in 0..<E { expect.append(UInt16(1000 * y + 100 * x + e)) } } }
                    XCTAssertEqual(out, expect)
                }
            }
        }
        // Plain 3D stack: frames contiguous.
        let path = tmp + "/stack.dm3"
        let vals = (0..<24).map { Int32($0 - 5) }
        try DMWriter.write(path, version: 3, byteOrder: .big, images: [DMWriter.Image(dataType: 7, dims: [4, 3, 2], pixels: .bytes(vals.withUnsafeBytes { Array($0) }), calibrations: [(0, 1, "nm")])])
        let f = try Catalog.open(path)
        XCTAssertEqual(f.datasets[0].shape, [2, 3, 4])
        XCTAssertEqual(f.datasets[0].signalKind, "stack")
        XCTAssertEqual(try DataHash.bytes(f.datasets[0]), vals.withUnsafeBytes { Array($0) })
        XCTAssertTrue(f.warnings.contains { $0.contains("without calibration") })
    }

    func testFourDBothLayouts() throws {
        let (sy, sx, dy, dx) = (3, 5, 4, 6)
        func v(_ i: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(i * 7 + 1).littleEndian) { Array($0) } }
        let expect = (0..<(sy * sx * dy * dx)).flatMap { v($0) }
        for contiguous in [true, false] {
            for version in [3, 4] {
                for order in [ByteOrder.little, .big] {
                    let path = tmp + "/4d-\(contiguous)-\(version)-\(order).dm\(version)"
                    try DMWriter.write(path, version: version, byteOrder: order,
                                       images: [DMWriter.fourD(scan: (sy, sx), det: (dy, dx), dataType: 11, contiguous: contiguous, value: v)])
                    for budget in [1 << 26, 200] {
                        let f = try Catalog.open(path, options: OptionValues(["dm-transpose-cache": String(budget)]))
                        let ds = f.datasets[0]
                        XCTAssertEqual(ds.shape, [sy, sx, dy, dx])
                        XCTAssertEqual(ds.axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
                        XCTAssertEqual(ds.axes.map(\.units), ["nm", "nm", "1/nm", "1/nm"])
                        XCTAssertEqual(ds.signalKind, "4d-stem")
                        XCTAssertEqual(ds.metadata.scanShape, [sy, sx])
                        XCTAssertEqual(try DataHash.bytes(ds), expect, "contiguous=\(contiguous) DM\(version) \(order)")
                        XCTAssertEqual(f.warnings.contains { $0.contains("Data Order Swapped") }, !contiguous)
                    }
                }
            }
        }
        // Converted to NeXus, the transposed layout gives the same data.
        let out = tmp + "/4d.nxs"
        _ = try Converter.convert(input: tmp + "/4d-false-4-big.dm4", output: out, options: ConversionOptions(threads: 2))
        let (h, shape, _) = try DataHash.sha256(hdf5: out, dataset: "entry1/measurement/event1/image1/image_4d/real")
        XCTAssertEqual(shape, [sy, sx, dy, dx])
        XCTAssertEqual(h, SHA256Digest.hex(expect))
    }

    func testMetadataAndTagTree() throws {
        let path = tmp + "/meta.dm4"
        try DMWriter.write(path, images: [DMWriter.Image(dataType: 2, dims: [2, 2], pixels: .bytes([UInt8](repeating: 0, count: 16)), imageTags: [
            ("DataBar", .group([("Acquisition Date", .text("27.08.2016")), ("Acquisition Time", .text("8:55:20 PM")),
                                ("Device Name", .text("Camera X")), ("Exposure Time (s)", .float64(0.5))])),
            ("Microscope Info", .group([("Voltage", .float64(300000)), ("STEM Camera Length", .float32(77)), ("Name", .text("TEM-1"))])),
            ("Struct", .structure([(3, 7), (6, 1.5)])),
            ("Rows", .structArray(fields: [7, 7], [[1, 2], [3, 4]])),
            ("S18", .string("abc")),
            ("Numbers", .array(type: 7, [1.5, 2.5])),
        ])])
        let f = try Catalog.open(path)
        let m = f.datasets[0].metadata
        XCTAssertEqual(m.beamEnergy, Quantity(300000, "V"))
        XCTAssertEqual(m.cameraLength, Quantity(77, "mm"))
        XCTAssertEqual(m.exposureTime, Quantity(0.5, "s"))
        XCTAssertEqual(m.detectorName, "Camera X")
        XCTAssertEqual(m.instrumentName, "TEM-1")
        XCTAssertEqual(m.startTime?.iso8601, "2016-08-27T20:55:20")
        XCTAssertEqual(m.startTime?.raw, "27.08.2016 8:55:20 PM")
        let tags = f.original["tags"]?["ImageList"]
        guard case let .array(list)? = tags else { return XCTFail("ImageList not an array") }
        let it = list[1]["ImageTags"]
        XCTAssertEqual(it?["Struct"], .array([.int(7), .double(1.5)]))
        XCTAssertEqual(it?["Rows"], .array([.array([.double(1), .double(2)]), .array([.double(3), .double(4)])]))
        XCTAssertEqual(it?["S18"], .string("abc"))
        XCTAssertEqual(it?["DataBar"]?["Device Name"], .string("Camera X"))
        XCTAssertEqual(list[1]["ImageData"]?["Data"]?["dm_array"]?["count"], .int(4))
        // Ambiguous slash date without OS time: raw kept, no invented time.
        XCTAssertNil(DMDatesProbe.timestamp("12/10/2019", "3:32:41 PM"))
        XCTAssertEqual(DMDatesProbe.timestamp("27/08/2016", "20:55:20"), "2016-08-27T20:55:20")
    }

    func testLargerThan4GiBSparse() throws {
        // 4D C-order uint16, 182 × 182 scan of 256 × 256 frames: 4.34 GB, mostly a hole.
        let (sy, sx, d) = (182, 182, 256)
        let frame = Int64(d * d * 2)
        let total = Int64(sy * sx) * frame
        XCTAssertGreaterThan(total, 1 << 32)
        let last = [UInt8](repeating: 0xAB, count: Int(frame))
        let path = tmp + "/big.dm4"
        var img = DMWriter.Image(name: "big", dataType: 10, dims: [d, d, sx, sy], pixels: .sparse(count: total, patches: [(0, [1, 0, 2, 0]), (total - frame, last)]),
                                 imageTags: [("Meta Data", .group([("Data Order Swapped", .uint32(1))]))])
        img.calibrations = []
        do { try DMWriter.write(path, images: [img]) } catch {
            print("skipped: cannot create a sparse file here: \(error)"); return
        }
        let f = try Catalog.open(path)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.shape, [sy, sx, d, d])
        XCTAssertEqual(ds.byteCount, total)
        var buf = [UInt8](repeating: 0, count: Int(frame))
        try buf.withUnsafeMutableBytes { try ds.source.readFrame(0, into: $0) }
        XCTAssertEqual(Array(buf[0..<4]), [1, 0, 2, 0])
        try buf.withUnsafeMutableBytes { try ds.source.readFrame(sy * sx - 1, into: $0) }
        XCTAssertEqual(buf, last)
        guard case let .array(list)? = f.original["tags"]?["ImageList"], let off = list[1]["ImageData"]?["Data"]?["dm_array"]?["offset"]?.intValue else {
            return XCTFail("no data offset")
        }
        XCTAssertGreaterThan(Int64(off) + total, 1 << 32)
    }

    // MARK: bad input

    func assertBad(_ path: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let f = try Catalog.open(path)
            XCTFail("\(what): opened with \(f.datasets.count) datasets", file: file, line: line)
        } catch let e as EMError {
            XCTAssertTrue([.badInput, .unsupported].contains(e.code), "\(what): \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        } catch {
            XCTFail("\(what): not an EMError: \(error)", file: file, line: line)
        }
    }

    func smallFile(_ version: Int, extraTags: [(String, DMWriter.Tag)] = [], dims: [Int] = [2, 2], dataType: Int = 10) throws -> String {
        let path = tmp + "/small-\(version)-\(UUID().uuidString).dm\(version)"
        let n = dims.reduce(1) { $0 &* $1 }
        let es = DMWriter.pixelLayout(dataType).bytes
        try DMWriter.write(path, version: version, images: [DMWriter.Image(dataType: dataType, dims: dims,
                                                                           pixels: .bytes([UInt8](repeating: 7, count: max(0, min(n, 64)) * es)),
                                                                           imageTags: extraTags)])
        return path
    }

    func testTruncatedAtManyOffsets() throws {
        for version in [3, 4] {
            let path = try smallFile(version)
            let full = try Data(contentsOf: URL(fileURLWithPath: path))
            var cuts = 0
            for cut in stride(from: 0, to: full.count - 8, by: 3) {
                let p = tmp + "/cut.dm\(version)"
                try full.prefix(cut).write(to: URL(fileURLWithPath: p))
                assertBad(p, "DM\(version) truncated at \(cut)")
                cuts += 1
            }
            XCTAssertGreaterThan(cuts, 100)
        }
    }

    func testHostileTags() throws {
        for version in [3, 4] {
            // Array length past the end of the file.
            assertBad(try smallFile(version, extraTags: [("Huge", .raw(info: [20, 7, version == 4 ? 1 << 40 : 0x7FFF_FFFF], payload: []))]), "array past EOF")
            assertBad(try smallFile(version, extraTags: [("Huge", .raw(info: [20, 7, 100_000], payload: []))]), "array past EOF")
            // Absurd info arrays and unknown type codes.
            assertBad(try smallFile(version, extraTags: [("T", .raw(info: [99], payload: [0]))]), "unknown type")
            assertBad(try smallFile(version, extraTags: [("T", .raw(info: [20, 99, 1], payload: [0]))]), "unknown element type")
            assertBad(try smallFile(version, extraTags: [("T", .raw(info: [20], payload: []))]), "short array info")
            assertBad(try smallFile(version, extraTags: [("T", .raw(info: [15, 0, 1 << 30], payload: []))]), "struct with huge field count")
            assertBad(try smallFile(version, extraTags: [("T", .raw(info: [18, version == 4 ? 1 << 40 : 0x7FFF_FFFF], payload: []))]), "string past EOF")
            // Absurd dimensions (product overflows Int) and an unknown DataType.
            assertBad(try smallFile(version, dims: [1 << 40, 1 << 40, 1 << 40]), "overflowing dimensions")
            assertBad(try smallFile(version, dims: [100_000, 100_000]), "dimensions larger than the data")
            assertBad(try smallFile(version, dataType: 99), "unknown DataType")
            // Recursion bomb.
            var t: DMWriter.Tag = .int32(1)
            for _ in 0..<5000 { t = .group([("g", t)]) }
            assertBad(try smallFile(version, extraTags: [("bomb", t)]), "recursion bomb")
        }
        // DM4 tag length past EOF, and an unknown tag kind.
        let path = try smallFile(4)
        var b = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let name = Array("ImageList".utf8)
        let at = (0..<(b.count - name.count)).first { Array(b[$0..<($0 + name.count)]) == name }!
        var c = b
        for k in 0..<8 { c[at + name.count + k] = 0x7F }
        try Data(c).write(to: URL(fileURLWithPath: path))
        assertBad(path, "DM4 tag length past EOF")
        b[at - 3] = 33
        try Data(b).write(to: URL(fileURLWithPath: path))
        assertBad(path, "unknown tag kind")
        // Not DM at all / unsupported version.
        try Data([0, 0, 0, 5] + [UInt8](repeating: 0, count: 40)).write(to: URL(fileURLWithPath: tmp + "/v5.dm4"))
        assertBad(tmp + "/v5.dm4", "version 5")
        XCTAssertEqual(DMReader.identify(Probe(path: "x.dm4", head: [0, 0, 0, 5] + [UInt8](repeating: 0, count: 40), size: 44)), .no)
    }

    func testRandomCorruptionNeverCrashes() throws {
        for version in [3, 4] {
            let path = try smallFile(version, extraTags: [("Microscope Info", .group([("Voltage", .float64(2e5))]))])
            let full = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            var g = Mutants.LCG(seed: 7)
            var opened = 0, refused = 0
            for _ in 0..<400 {
                var b = full
                for _ in 0..<3 {
                    let s = g.next()
                    b[Int(s >> 33) % b.count] = UInt8(truncatingIfNeeded: s >> 13)
                }
                let p = tmp + "/fuzz.dm\(version)"
                try Data(b).write(to: URL(fileURLWithPath: p))
                do {
                    let f = try Catalog.open(p)
                    for ds in f.datasets {
                        XCTAssertLessThanOrEqual(ds.byteCount, Int64(b.count) * 4)
                        _ = try? DataHash.sha256(ds)
                    }
                    opened += 1
                } catch let e as EMError {
                    XCTAssertTrue([.badInput, .unsupported].contains(e.code), "\(e)")
                    refused += 1
                }
            }
            XCTAssertEqual(opened + refused, 400)
        }
    }
}

/// Access to the DataBar date parsing through the public reader (dates in ISO form).
enum DMDatesProbe {
    static func timestamp(_ date: String, _ time: String) -> String? {
        let tmp = NSTemporaryDirectory() + "dmdate-\(UUID().uuidString).dm4"
        defer { unlink(tmp) }
        try? DMWriter.write(tmp, images: [DMWriter.Image(dataType: 6, dims: [1], pixels: .bytes([0]), imageTags: [
            ("DataBar", .group([("Acquisition Date", .text(date)), ("Acquisition Time", .text(time))])),
        ])])
        return (try? Catalog.open(tmp))?.datasets.first?.metadata.startTime?.iso8601
    }
}
