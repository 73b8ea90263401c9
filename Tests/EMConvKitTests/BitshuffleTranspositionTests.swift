import EMConvKit
import Foundation
import XCTest

/// The vectorized bit transposition of bitshuffle (C target CBitshuffle): every implementation
/// this CPU runs (portable C, SSE2, AVX2) against the layout's definition, and the declared-size
/// bound of the HDF5 filter callback.
final class BitshuffleTranspositionTests: XCTestCase {
    /// Bit k of byte j of element i → bit (i mod 8) of byte (i div 8) of row 8j + k, bit by bit.
    func reference(_ src: [UInt8], elements n: Int, elementSize e: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n * e)
        let row = n / 8
        for i in 0..<n {
            for j in 0..<e {
                let byte = src[i * e + j]
                for k in 0..<8 where (byte >> k) & 1 != 0 { out[(8 * j + k) * row + i / 8] |= 1 << (i % 8) }
            }
        }
        return out
    }

    func implementations() -> [BitshuffleLZ4.Transposition] {
        BitshuffleLZ4.Transposition.allCases.filter(\.isAvailable)
    }

    func testEveryImplementationMatchesTheDefinitionBothWays() {
        var rng = SystemRandomNumberGenerator()
        XCTAssertTrue(implementations().contains(.portable))
        #if arch(x86_64)
        XCTAssertTrue(implementations().contains(.sse2))
        XCTAssertNotEqual(BitshuffleLZ4.Transposition.selected, "scalar")
        #endif
        // Lengths around the 16- and 32-group steps of the vector loops, and real block sizes.
        let lengths = Array(stride(from: 8, through: 640, by: 8)) + [2048, 4096, 4104, 8192]
        for e in [1, 2, 3, 4, 8] {
            for n in lengths {
                // Sparse (most groups zero: the skipped path) and dense data.
                for density in [4, 64] {
                    let src = (0..<n * e).map { _ in UInt8.random(in: 0...255, using: &rng) % 64 < density ? UInt8.random(in: 1...255, using: &rng) : 0 }
                    let expected = reference(src, elements: n, elementSize: e)
                    for t in implementations() {
                        var shuffled = [UInt8](repeating: 0xA5, count: n * e)
                        var back = [UInt8](repeating: 0x5A, count: n * e)
                        src.withUnsafeBytes { s in
                            shuffled.withUnsafeMutableBytes { BitshuffleLZ4.bitshuffle(s.baseAddress!, into: $0.baseAddress!, elements: n, elementSize: e, using: t) }
                        }
                        expected.withUnsafeBytes { s in
                            back.withUnsafeMutableBytes { BitshuffleLZ4.bitunshuffle(s.baseAddress!, into: $0.baseAddress!, elements: n, elementSize: e, using: t) }
                        }
                        XCTAssertEqual(shuffled, expected, "bitshuffle \(t) e=\(e) n=\(n) density=\(density)")
                        XCTAssertEqual(back, src, "bitunshuffle \(t) e=\(e) n=\(n) density=\(density)")
                    }
                }
            }
        }
    }

    /// A chunk declaring more than LZ4 can expand its bytes to is refused by the HDF5 filter
    /// before it allocates; real chunks (all-zero frames compress the most) stay under the bound.
    func testDeclaredTotalBeyondLZ4sExpansionIsRefused() throws {
        for e in [1, 2, 4] {
            let zeros = [UInt8](repeating: 0, count: 192 * 192 * e)
            let cap = BitshuffleLZ4.compressBound(bytes: zeros.count, elementSize: e)
            var out = [UInt8](repeating: 0, count: cap)
            let n = try zeros.withUnsafeBytes { s in
                try out.withUnsafeMutableBytes { try BitshuffleLZ4.encode(s, elementSize: e, into: $0.baseAddress!, capacity: cap) }
            }
            XCTAssertLessThanOrEqual(zeros.count, BitshuffleLZ4.maxDecodedBytes(encodedBytes: n), "all-zero frame, \(e)-byte elements")
        }
        XCTAssertLessThan(BitshuffleLZ4.maxDecodedBytes(encodedBytes: 100), 1 << 16)
    }
}
