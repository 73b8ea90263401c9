import EMConvKit
import Foundation
import XCTest

/// The writers' byte shuffle (HDF5 filter 2; SSE2 for 2- and 4-byte elements) against the
/// definition: byte k of element i goes to k * n + i; trailing bytes stay where they are.
final class ShuffleTests: XCTestCase {
    func testShuffleMatchesTheDefinitionForEveryElementSizeAndLength() {
        var rng = SystemRandomNumberGenerator()
        for e in 1...9 {
            for count in [0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000, 4099, 65536 + 7] {
                let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let n = count / e
                var want = bytes
                for i in 0..<n { for k in 0..<e { want[k * n + i] = bytes[i * e + k] } }
                var got = [UInt8](repeating: 0xEE, count: count)
                bytes.withUnsafeBytes { s in got.withUnsafeMutableBytes { shuffle(s, into: $0, elementSize: e) } }
                XCTAssertEqual(got, want, "element size \(e), \(count) bytes")
                var back = [UInt8](repeating: 0xEE, count: count)
                got.withUnsafeBytes { s in back.withUnsafeMutableBytes { unshuffle(s, into: $0, elementSize: e) } }
                XCTAssertEqual(back, bytes, "unshuffle, element size \(e), \(count) bytes")
            }
        }
    }
}
