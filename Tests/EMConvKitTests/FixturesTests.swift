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
            let f = try Catalog.open(path)
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

    /// The streaming benchmark generator: a readable 4D-STEM file with a bright disc in the
    /// centre and sparse counts elsewhere, a matching .hdr, deterministic.
    func testBenchWriterSmall() throws {
        let tmp = NSTemporaryDirectory() + "emconv-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        for (det, depth, type) in [(256, 12, ElementType.uint16), (512, 6, .uint8), (256, 24, .uint32)] {
            let r = try MIBBenchWriter.write(path: tmp + "/b.mib", scanY: 3, scanX: 5, det: det, depth: depth)
            XCTAssertEqual(r.frames, 15)
            let f = try Catalog.open(r.path)
            let ds = f.datasets[0]
            XCTAssertEqual(ds.shape, [3, 5, det, det])
            XCTAssertEqual(ds.elementType, type)
            XCTAssertEqual(f.datasets[0].metadata.scanShapeSource, ".hdr frames in acquisition / frames per trigger")
            var buf = [UInt8](repeating: 0, count: ds.frameBytes)
            for i in [0, 7, 14] {
                try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
                func v(_ y: Int, _ x: Int) -> UInt64 {
                    let k = (y * det + x) * type.size
                    return (0..<type.size).reduce(UInt64(0)) { $0 | UInt64(buf[k + $1]) << UInt64(8 * $1) }
                }
                var disc: UInt64 = 0, outside: UInt64 = 0, nonzeroOutside = 0
                for y in 0..<det { for x in 0..<det {
                    let d2 = (y - det / 2) * (y - det / 2) + (x - det / 2) * (x - det / 2)
                    if d2 <= 20 * 20 { disc += v(y, x) } else if d2 > 30 * 30 { outside += v(y, x); if v(y, x) > 0 { nonzeroOutside += 1 } }
                } }
                XCTAssertGreaterThan(disc, 1200 * 2, "det \(det) depth \(depth) frame \(i): disc")
                XCTAssertGreaterThan(nonzeroOutside, det * det / 400, "sparse background")
                XCTAssertLessThan(nonzeroOutside, det * det / 50, "sparse background")
                XCTAssertLessThan(outside, UInt64(det * det / 10), "background counts low")
            }
            // Deterministic: a second run gives the same bytes.
            let a = try Data(contentsOf: URL(fileURLWithPath: r.path))
            _ = try MIBBenchWriter.write(path: tmp + "/b.mib", scanY: 3, scanX: 5, det: det, depth: depth)
            XCTAssertTrue(a == (try Data(contentsOf: URL(fileURLWithPath: r.path))))
        }
    }
}
