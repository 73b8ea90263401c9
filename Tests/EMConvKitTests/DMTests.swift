import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// DigitalMicrograph DM3/DM4: every shared case against RosettaSciIO's reference, generated
/// files for what the samples lack, and hostile inputs.
final class DMTests: XCTestCase {
    var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "emconv-dm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }

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
            let file = try Registry.open(root + "/" + id)
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
}
