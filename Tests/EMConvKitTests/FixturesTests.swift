import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// The committed `fixtures/` equal a fresh generation, and every fixture reads back to the
/// generator's values.
final class FixturesTests: XCTestCase {
    var fixtures: String { SharedTestData.packageRoot + "/fixtures" }

    func testCommittedFixturesAreUpToDate() throws {
        let tmp = NSTemporaryDirectory() + "emconv-fixtures-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let files = try FixtureSet.generate(into: tmp)
        XCTAssertGreaterThan(files.count, 30)
        var total = 0
        for f in files {
            let fresh = try Data(contentsOf: URL(fileURLWithPath: tmp + "/" + f))
            guard let committed = FileManager.default.contents(atPath: fixtures + "/" + f) else {
                XCTFail("fixtures/\(f) is missing: run 'swift run emconv-fixtures fixtures'")
                continue
            }
            total += committed.count
            XCTAssertTrue(fresh == committed, "fixtures/\(f) differs from a fresh generation: run 'swift run emconv-fixtures fixtures'")
        }
        XCTAssertLessThan(total, 3 << 20, "fixtures/ should stay small")
    }

    func testEveryFixtureReadsBackExactly() throws {
        for e in FixtureSet.entries {
            let path = fixtures + "/" + e.path
            let f = try Registry.open(path)
            let ds = f.datasets[0]
            let expected: (Int) -> [UInt8]
            var count = ds.frameCount
            switch e.kind {
            case let .mib(s):
                XCTAssertEqual(f.format, "mib", e.path)
                XCTAssertEqual(ds.frameShape, [s.rows, s.cols], e.path)
                XCTAssertEqual(ds.elementType, s.elementType, e.path)
                expected = s.expectedFrame
                if let x = s.scanX, let y = s.scanY {
                    count = s.frames >= x * y ? x * y : s.frames / x * x
                    XCTAssertEqual(Array(ds.shape.prefix(2)), [count / x, x], e.path)
                } else if s.framesPerTrigger > 1 {
                    XCTAssertEqual(Array(ds.shape.prefix(2)), [s.frames / s.framesPerTrigger, s.framesPerTrigger], e.path)
                } else if let w = s.flybackLineLength {
                    XCTAssertEqual(Array(ds.shape.prefix(2)), [s.frames / w, w], e.path)
                }
            case let .empad(s):
                XCTAssertEqual(f.format, "empad", e.path)
                XCTAssertEqual(ds.shape, [s.scanY, s.scanX, 128, 128], e.path)
                expected = s.expectedFrame
            case let .raw(s):
                XCTAssertEqual(f.format, "raw", e.path)
                XCTAssertEqual(ds.shape, s.shape, e.path)
                expected = s.expectedFrame
            }
            XCTAssertEqual(ds.frameCount, count, e.path)
            var buf = [UInt8](repeating: 0, count: ds.frameBytes)
            for i in 0..<ds.frameCount {
                try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
                XCTAssertTrue(buf == expected(i), "\(e.path): frame \(i)")
            }
        }
    }
}
