import CDeflate
import EMConvKit
import Foundation
import XCTest

/// Dynamic blocks are written two symbols per 64-bit store. The bits still pending from the
/// block header (up to 31) were not flushed before the first store: two long first symbols (a
/// rare literal, then a rare run with extra bits) overflowed the 64-bit buffer and the stream did
/// not inflate. These five sparse planes (found by a seeded search) each hit that case.
final class PlaneDeflateBitWriterTests: XCTestCase {
    /// A sparse plane: a run of `1 + seed % 254` of 151-250 bytes, then 9 % non-zero bytes.
    func plane(seed: UInt32, state: UInt32) -> [UInt8] {
        var rng = state
        let n = 30000 + Int(seed) * 7
        let r = UInt8(1 + seed % 254)
        var out = [UInt8](repeating: r, count: 1 + 150 + Int(seed % 100))
        out.reserveCapacity(n)
        while out.count < n {
            rng = rng &* 1_103_515_245 &+ 12345
            out.append((rng >> 8) & 1023 < 90 ? UInt8(1 + (rng >> 18) % 200) : 0)
        }
        return out
    }

    func testLongFirstSymbolsAfterTheBlockHeaderInflate() throws {
        let cases: [(UInt32, UInt32)] = [(996, 4_230_560_185), (1522, 3_252_478_705), (1993, 2_901_825_938),
                                         (2245, 3_872_852_678), (2741, 3_840_446_114)]
        let enc = try PlaneDeflate()
        let d = try XCTUnwrap(libdeflate_alloc_decompressor())
        defer { libdeflate_free_decompressor(d) }
        for (seed, state) in cases {
            let src = plane(seed: seed, state: state)
            let stream = try src.withUnsafeBytes { try enc.compress($0, planes: 1) }
            XCTAssertEqual(enc.lastModes.runLength, 1, "seed \(seed): the plane must be run-length coded")
            var back = [UInt8](repeating: 0, count: src.count)
            var got = 0
            let r = stream.withUnsafeBytes { s in
                back.withUnsafeMutableBytes { libdeflate_zlib_decompress(d, s.baseAddress, s.count, $0.baseAddress, $0.count, &got) }
            }
            XCTAssertEqual(r, LIBDEFLATE_SUCCESS, "seed \(seed): the stream does not inflate")
            XCTAssertTrue(got == src.count && back == src, "seed \(seed): inflated bytes differ")
        }
    }
}
