import CHDF5
@testable import EMHDF5
import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Hyperslab reads over many chunks are cut into pieces of a bounded number of chunks (libhdf5
/// 1.10 builds a selection per chunk a read touches: a damaged Dectris data file with 48-byte
/// chunks made one frame read allocate 3.4 GB), and refused beyond 2^20 chunks.
final class ChunkedPiecesTests: TempDirectoryTestCase {
    /// Every piece touches at most the limit (unless it is one element), the pieces follow each
    /// other in the buffer, and together they are the hyperslab, each element once.
    func testPiecesCoverTheHyperslabOnceInBufferOrderWithinTheLimit() {
        var rng = SweepRNG(seed: 3)
        for _ in 0..<300 {
            let rank = Int.random(in: 1...4, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 1...40, using: &rng) }
            let chunk = shape.map { Int.random(in: 1...max(1, $0 / 2), using: &rng) }
            let start = shape.map { Int.random(in: 0..<$0, using: &rng) }
            let count = zip(shape, start).map { Int.random(in: 1...($0 - $1), using: &rng) }
            let limit = Int.random(in: 1...20, using: &rng)
            var next = 0
            var seen = Set<[Int]>()
            ChunkedPieces.forEach(start: start, count: count, chunk: chunk, limit: limit) { s, c, first in
                XCTAssertEqual(first, next, "\(shape) \(chunk) \(start) \(count)")
                next += c.reduce(1, *)
                XCTAssertTrue(ChunkedPieces.touched(start: s, count: c, chunk: chunk) <= limit || c.allSatisfy { $0 == 1 })
                // The piece's elements, in C order, at their place in the whole hyperslab.
                var idx = s
                for k in 0..<c.reduce(1, *) {
                    var rest = k
                    for d in stride(from: rank - 1, through: 0, by: -1) { idx[d] = s[d] + rest % c[d]; rest /= c[d] }
                    XCTAssertTrue(zip(idx, zip(start, count)).allSatisfy { $0 >= $1.0 && $0 < $1.0 + $1.1 })
                    XCTAssertTrue(seen.insert(idx).inserted)
                    var flat = 0
                    for d in 0..<rank { flat = flat * count[d] + idx[d] - start[d] }
                    XCTAssertEqual(flat, first + k)
                }
            }
            XCTAssertEqual(next, count.reduce(1, *))
        }
        // The damaged file's frame: 4194312 x 6 uint8 in chunks of 1 x 8 x 6.
        XCTAssertEqual(ChunkedPieces.touched(start: [0, 0, 0], count: [1, 4194312, 6], chunk: [1, 8, 6]), 524289)
        XCTAssertEqual(ChunkedPieces.touched(start: [0], count: [Int.max / 2], chunk: [1]), Int.max / 2)
        XCTAssertEqual(ChunkedPieces.touched(start: [0, 0], count: [Int.max / 2, Int.max / 2], chunk: [1, 1]), Int.max)
    }

    /// A file with small chunks: the piecewise read gives the values of one read, and a read
    /// touching more than 2^20 chunks is one line naming the chunk layout.
    func testPiecewiseReadsGiveTheSameValuesAndHugeChunkCountsAreRefused() throws {
        let path = tmp + "/small-chunks.h5"
        do {
            let f = try HDF5File(creating: path)
            let d = try f.root.createChunkedDataset("data", type: .uint16, shape: [2, 600, 6], chunk: [1, 8, 6], compression: .none, shuffle: false)
            for frame in 0..<2 {
                for c in 0..<75 {
                    let values = (0..<48).map { UInt16(frame * 3600 + c * 48 + $0) }
                    try values.withUnsafeBytes { try d.writeChunk(offset: [frame, c * 8, 0], data: $0) }
                }
            }
            _ = try f.root.createChunkedDataset("huge", type: .uint8, shape: [1, 3 << 20, 1], chunk: [1, 1, 1], compression: .none, shuffle: false)
        }
        let f = try HDF5File(reading: path)
        let d = try XCTUnwrap(f.root.openDataset("data"))
        let start = [1, 3, 1], count = [1, 590, 4]
        var whole = [UInt16](repeating: 0, count: 590 * 4), pieces = whole
        try whole.withUnsafeMutableBytes { try d.read(start: start, count: count, as: .uint16, into: $0) }
        XCTAssertEqual(whole[0], UInt16(3600 + 3 * 6 + 1))
        var calls = 0
        let mt = d.memType(.uint16)
        try pieces.withUnsafeMutableBytes { buf in
            try d.readPieces(start: start, count: count, elementSize: 2, into: buf, limit: 7) { fs, ms, base in
                calls += 1
                XCTAssertGreaterThanOrEqual(H5Dread(d.id, mt.id, ms.id, fs.id, hid_t(H5P_DEFAULT), base), 0)
            }
        }
        XCTAssertEqual(pieces, whole)
        XCTAssertEqual(calls, 11)  // 75 chunk rows, 7 per piece from the chunk row of the first
        let huge = try XCTUnwrap(f.root.openDataset("huge"))
        var buf = [UInt8](repeating: 0, count: 3 << 20)
        XCTAssertThrowsError(try buf.withUnsafeMutableBytes { try huge.read(start: [0, 0, 0], count: [1, 3 << 20, 1], as: .uint8, into: $0) }) { e in
            let text = (e as? EMError)?.description ?? "\(e)"
            XCTAssertTrue(text.contains("would touch 3145728 chunks"), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
    }

    /// A chunked dataset whose dataspace has 0 dimensions (a fuzz artifact of the hspy target):
    /// libhdf5 1.10 opens it and its reads allocate without bound (1.1 GB before the memory
    /// ceiling); the guard refuses it when opening, naming the dataset and its chunks.
    func testChunkedDatasetOfZeroDimensionsIsRefusedWhenOpened() throws {
        let path = SharedTestData.packageRoot + "/fixtures/regressions/hdf5-library/hspy-scalar-dataset-with-chunks-makes-reads-allocate-without-bound.hspy"
        let f = try HDF5File(reading: path)
        XCTAssertNil(f.root.openDataset("Experiments/4D/data"))
        let e = try XCTUnwrap(f.inputGuard?.refusal)
        XCTAssertEqual(e.code, .badInput)
        XCTAssertEqual(e.location, "/Experiments/4D/data")
        XCTAssertTrue(e.message.contains("0 dimension(s) declares chunks of 1 x 3 x 8 x 8"), e.message)
    }
}

