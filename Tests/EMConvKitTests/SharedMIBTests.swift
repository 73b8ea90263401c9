import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Every MIB and EMPAD case of ../shared/testdata: read and converted to NeXus, the data equal
/// the independent reference bit for bit (in emconv's on-disk row order), axes equal.
final class SharedMIBTests: TempDirectoryTestCase {
    func convert(_ input: String, _ name: String, compression: Compression? = nil) throws -> String {
        let out = tmp + "/" + name + ".nxs"
        _ = try Converter.convert(input: input, output: out, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true, compression: compression))
        return out
    }

    static let signalPath = "entry1/measurement/event1/image1"

    func signalDataset(_ ds: Dataset) -> String {
        Self.signalPath + "/image_\(ds.rank)d/real"
    }

    func testEveryMIBCaseMatchesReference() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let cases = try SharedTestData.cases(format: ["MIB"])
        XCTAssertGreaterThanOrEqual(cases.count, 13)
        for id in cases {
            let ref = try SharedTestData.reference(id)
            let path = root + "/" + id
            let file = try Catalog.open(path)
            XCTAssertEqual(file.datasets.count, 1, id)
            let ds = file.datasets[0]
            let out = try convert(path, (id as NSString).lastPathComponent)
            let (h5hash, h5shape, h5type) = try DataHash.sha256(hdf5: out, dataset: signalDataset(ds))
            XCTAssertEqual(h5shape, ds.shape, id)
            XCTAssertEqual(h5type, ds.elementType, id)
            if let sig = ref["signals"], case let .array(sigs) = sig, let s0 = sigs.first {
                // RosettaSciIO's reading: same shape, rows flipped; on-disk order hash in generic_raw.
                let refShape = s0["shape"].flatMap { v -> [Int]? in if case let .array(a) = v { return a.compactMap(\.intValue) }; return nil }
                XCTAssertEqual(ds.shape, refShape, "\(id): shape")
                XCTAssertEqual(try DataHash.sha256(ds, flipRows: true), s0["data_sha256"]?.stringValue, "\(id): data (flipped like RosettaSciIO)")
                XCTAssertEqual(h5hash, ref["generic_raw"]?["frames_sha256_le"]?.stringValue, "\(id): NeXus data in on-disk order")
                let refType = s0["dtype"]?.stringValue ?? ""
                XCTAssertTrue(refType.hasSuffix(String(ds.elementType.numpyString.dropFirst())) || refType == ds.elementType.rawValue,
                              "\(id): dtype \(refType) vs \(ds.elementType)")
                // Axes: RosettaSciIO's are uncalibrated (scale 1, offset 0).
                if case let .array(axes)? = s0["axes"] {
                    XCTAssertEqual(axes.count, ds.rank, id)
                    for (a, b) in zip(axes, ds.axes) {
                        XCTAssertEqual(a["size"]?.intValue, b.size, id)
                        XCTAssertEqual(a["scale"]?.doubleValue, b.scale, id)
                        XCTAssertEqual(a["offset"]?.doubleValue, b.offset, id)
                        XCTAssertEqual(a["navigate"] == .bool(true), b.role == .navigation, id)
                    }
                }
            } else if let alt = ref["alt_reference"]?["signals"], case let .array(sigs) = alt, let s0 = sigs.first {
                // Raw (R64): LiberTEM's decode in on-disk order.
                let refShape = s0["shape"].flatMap { v -> [Int]? in if case let .array(a) = v { return a.compactMap(\.intValue) }; return nil }
                XCTAssertEqual(ds.frameCount, refShape?.first, id)
                XCTAssertEqual(ds.frameShape, Array(refShape?.dropFirst() ?? []), id)
                XCTAssertEqual(ds.elementType, .uint8, id)
                XCTAssertEqual(h5hash, s0["data_sha256"]?.stringValue, "\(id): raw decode equals LiberTEM's")
                XCTAssertEqual(try DataHash.sha256(ds, flipRows: true), s0["data_sha256_rows_flipped"]?.stringValue, id)
            } else {
                XCTFail("\(id): reference has no signal")
            }
        }
    }

    func testEMPADWithRawMatchesReference() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let id = "empad/map4x4.xml"
        let ref = try SharedTestData.reference(id)
        let ds = try Catalog.open(root + "/" + id).datasets[0]
        let s0 = try XCTUnwrap(ref["signals"].flatMap { v -> MetaValue? in if case let .array(a) = v { return a.first }; return nil })
        XCTAssertEqual(try DataHash.sha256(ds), s0["data_sha256"]?.stringValue)
        XCTAssertEqual(ds.elementType, .float32)
        try checkAxes(ds, s0, id)
        let out = try convert(root + "/" + id, "empad4x4", compression: .zstd(level: 3))
        XCTAssertEqual(try DataHash.sha256(hdf5: out, dataset: signalDataset(ds)).0, s0["data_sha256"]?.stringValue)
    }

    /// XML-only cases: the reference was made against an all-zero raw of the stated size; a
    /// sparse file of that size beside a copy of the xml gives the same shape and axes.
    func testEMPADXMLOnlyCasesShapeAndAxes() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        for id in try SharedTestData.cases(format: ["EMPAD"]) {
            let ref = try SharedTestData.reference(id)
            guard let xo = ref["xml_only"], let rawName = xo["expected_raw_file"]?.stringValue,
                  let size = xo["expected_raw_size"]?.intValue else { continue }
            let dir = tmp + "/" + (id as NSString).lastPathComponent + ".d"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let xml = dir + "/" + (id as NSString).lastPathComponent
            try FileManager.default.copyItem(atPath: root + "/" + id, toPath: xml)
            XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/" + rawName, contents: nil))
            let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + rawName))
            try fh.truncate(atOffset: UInt64(size))
            try fh.close()
            let ds = try Catalog.open(xml).datasets[0]
            let s0 = try XCTUnwrap(ref["signals"].flatMap { v -> MetaValue? in if case let .array(a) = v { return a.first }; return nil })
            let refShape = s0["shape"].flatMap { v -> [Int]? in if case let .array(a) = v { return a.compactMap(\.intValue) }; return nil }
            XCTAssertEqual(ds.shape, refShape, id)
            try checkAxes(ds, s0, id)
        }
    }

    /// Compares axes physically: RosettaSciIO picks SI prefixes (µm, pm); emconv writes nm.
    func checkAxes(_ ds: Dataset, _ s0: MetaValue, _ id: String) throws {
        guard case let .array(axes)? = s0["axes"] else { return XCTFail("\(id): no axes") }
        XCTAssertEqual(axes.count, ds.rank, id)
        for (a, b) in zip(axes, ds.axes) {
            XCTAssertEqual(a["size"]?.intValue, b.size, id)
            let ua = a["units"]?.stringValue ?? ""
            let fa = UnitScale.factor(ua), fb = UnitScale.factor(b.units)
            XCTAssertNotNil(fa, "\(id): unit \(ua)")
            XCTAssertNotNil(fb, "\(id): unit \(b.units)")
            guard let fa, let fb else { continue }
            XCTAssertEqual((a["scale"]?.doubleValue ?? 0) * fa, b.scale * fb, accuracy: abs(b.scale * fb) * 1e-9 + 1e-300, "\(id): scale of \(b.name)")
            XCTAssertEqual((a["offset"]?.doubleValue ?? 0) * fa, b.offset * fb, accuracy: abs(b.offset * fb) * 1e-9 + 1e-300, "\(id): offset of \(b.name)")
        }
    }
}

/// SI factors of the length units that appear in references and outputs.
enum UnitScale {
    static func factor(_ u: String) -> Double? {
        let table: [String: Double] = ["": 1, "None": 1, "m": 1, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "μm": 1e-6, "nm": 1e-9, "pm": 1e-12,
                                       "1/m": 1, "1/nm": 1e9, "1/um": 1e6, "1/pm": 1e12, "eV": 1, "keV": 1e3, "s": 1, "ms": 1e-3]
        return table[u]
    }
}
