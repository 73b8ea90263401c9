import EMConvKit
import Foundation
import XCTest

/// Bitshuffle with zstd blocks (HDF5 filter 32008, `cd_values[4]` = 3): the codec, hdf5plugin's
/// chunks, damaged chunks, the declared-size bound and `--compression bitshuffle-zstd`.
final class BitshuffleZstdTests: XCTestCase {
    func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    func bytes<T: FixedWidthInteger>(_ v: [T]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    func encode(_ data: [UInt8], elementSize: Int, blockElements: Int = 0, level: Int = 1) throws -> [UInt8] {
        let codec = BitshuffleLZ4.BlockCodec.zstd(level: level)
        let cap = BitshuffleLZ4.compressBound(bytes: data.count, elementSize: elementSize, blockElements: blockElements, codec: codec)
        var out = [UInt8](repeating: 0, count: cap)
        let n = try data.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes {
                try BitshuffleLZ4.encode(src, elementSize: elementSize, blockElements: blockElements, codec: codec, into: $0.baseAddress!, capacity: cap)
            }
        }
        return Array(out.prefix(n))
    }

    func decode(_ chunk: [UInt8], elementSize: Int, bytes: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes)
        try chunk.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { try BitshuffleLZ4.decode(src, elementSize: elementSize, codec: .zstd(level: 0), into: $0) }
        }
        return out
    }

    /// uint8/16/32/64, lengths with partial blocks and N mod 8 trailing elements, blocks of 8-1000
    /// elements; sparse, all-zero and random data.
    func testRoundTripsElementSizesOddLengthsAndBlockSizes() throws {
        var rng = SystemRandomNumberGenerator()
        for e in [1, 2, 4, 8] {
            for n in [0, 1, 7, 8, 9, 143, 2048, 4096 + 13, 10_001] {
                for block in [0, 8, 64, 1000 / 8 * 8] {
                    let sparse = (0..<(n * e)).map { i in i % 7 == 0 ? UInt8.random(in: 0...3, using: &rng) : 0 }
                    let zeros = [UInt8](repeating: 0, count: n * e)
                    let random = (0..<(n * e)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    for (what, data) in [("sparse", sparse), ("all-zero", zeros), ("random", random)] {
                        let enc = try encode(data, elementSize: e, blockElements: block, level: n % 2 == 0 ? 1 : 9)
                        XCTAssertLessThanOrEqual(enc.count, BitshuffleLZ4.compressBound(bytes: data.count, elementSize: e, blockElements: block, codec: .zstd(level: 1)))
                        XCTAssertEqual(BitshuffleLZ4.header(enc.withUnsafeBytes { $0 }).map { Int($0.total) }, data.count)
                        XCTAssertEqual(try decode(enc, elementSize: e, bytes: data.count), data, "\(what) e=\(e) n=\(n) block=\(block)")
                    }
                }
            }
        }
    }

    /// Chunks written by h5py + hdf5plugin 7.1 `Bitshuffle(cname='zstd')` (read_direct_chunk): 21
    /// uint16 at level 1 (one partial block of 16, 5 elements stored as they are) and 300 uint32
    /// in blocks of 64 at level 5 (4 blocks, a partial block of 40, 4 trailing elements).
    func testDecodesChunksWrittenByHdf5plugin() throws {
        let a = hex("000000000000002a000020000000002928b52ffd2020010100aaaaccccf0f0aa5566cc1e3c54a9329b0e87fe8054d532b3a42538c6c00700f890bb49c702d3bbde74ea")
        XCTAssertEqual(try decode(a, elementSize: 2, bytes: 42), bytes((0..<21).map { UInt16($0 * 3001 % 65521) }))
        let expectB = bytes((0..<300).map { UInt32(truncatingIfNeeded: UInt64($0) * UInt64($0) * UInt64($0) % 4_294_967_291) })
        XCTAssertEqual(try decode(hex(Self.hdf5pluginU32Blocks64Level5), elementSize: 4, bytes: 1200), expectB)
        // The LZ4 decoder refuses it (same header, different blocks): the codec comes from cd_values[4].
        XCTAssertThrowsError(try hex(Self.hdf5pluginU32Blocks64Level5).withUnsafeBytes { src in
            var out = [UInt8](repeating: 0, count: 1200)
            try out.withUnsafeMutableBytes { try BitshuffleLZ4.decode(src, elementSize: 4, into: $0) }
        })
    }

    func testDamagedChunksAreOneLineErrorsNeverCrashes() throws {
        let data = bytes((0..<1000).map { UInt32($0 % 17) })
        let good = try encode(data, elementSize: 4)
        func fails(_ chunk: [UInt8], _ bytes: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try decode(chunk, elementSize: 4, bytes: bytes), what, file: file, line: line) { e in
                let m = (e as? EMError)?.message ?? ""
                XCTAssertTrue(m.hasPrefix("bitshuffle-zstd chunk:") && !m.contains("\n"), "\(e)", file: file, line: line)
            }
        }
        fails(good, 4004, "declared size differs from the frame size")
        fails(Array(good.prefix(11)), 4000, "shorter than the header")
        fails(Array(good.prefix(good.count - 3)), 4000, "cut short")
        var badBlock = good
        badBlock[11] = 12  // 12 bytes = 3 elements: not a multiple of 8
        fails(badBlock, 4000, "block size not a multiple of 8 elements")
        var past = good
        past[12] = 0x7F  // first block's compressed size far past the end
        fails(past, 4000, "block size past the end")
        var notZstd = good
        notZstd[16] ^= 0xFF  // the first block's zstd magic number
        fails(notZstd, 4000, "a block that is no zstd frame")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var c = good
            for _ in 0..<3 { c[Int.random(in: 12..<c.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = try? decode(c, elementSize: 4, bytes: 4000)
        }
    }

    /// zstd turns an all-zero frame into far less than 1/255 of its size (LZ4's bound): the
    /// HDF5 filter's declared-size check must still let it through, and refuse absurd totals.
    func testDeclaredSizeBoundAdmitsAllZeroFramesAndRefusesAbsurdTotals() throws {
        for e in [1, 2, 4] {
            let zeros = [UInt8](repeating: 0, count: 512 * 512 * e)
            let enc = try encode(zeros, elementSize: e)
            XCTAssertGreaterThan(zeros.count, BitshuffleLZ4.maxDecodedBytes(encodedBytes: enc.count), "LZ4's bound would refuse it")
            XCTAssertLessThanOrEqual(zeros.count, BitshuffleLZ4.maxDecodedBytes(encodedBytes: enc.count, codec: .zstd(level: 1)), "e=\(e)")
        }
        XCTAssertLessThan(BitshuffleLZ4.maxDecodedBytes(encodedBytes: 100, codec: .zstd(level: 1)), 1 << 22)
    }

    func testCompressionParsesBitshuffleZstdLevels() throws {
        XCTAssertEqual(try Compression.parse("bitshuffle-zstd"), .bitshuffleZstd(level: 1))
        XCTAssertEqual(try Compression.parse("BSZSTD:7"), .bitshuffleZstd(level: 7))
        XCTAssertEqual(Compression.bitshuffleZstd(level: 3).description, "bitshuffle-zstd:3")
        XCTAssertEqual(Compression.bitshuffleZstd(level: 3).bitshuffleCodec, .zstd(level: 3))
        XCTAssertNil(Compression.zstd(level: 3).bitshuffleCodec)
        for bad in ["bitshuffle-zstd:0", "bitshuffle-zstd:23", "bitshuffle-zstd:x"] {
            XCTAssertThrowsError(try Compression.parse(bad), bad) { XCTAssertEqual(($0 as? EMError)?.code, .usage) }
        }
    }

    /// `cd_values` as hdf5plugin writes them, and an unknown compression refused instead of being
    /// read as bitshuffle alone.
    func testCDValuesMatchHdf5pluginAndUnknownCompressionIsRefused() throws {
        XCTAssertEqual(HDF5.bitshuffleCDValues(elementSize: 4, codec: .zstd(level: 5)), [0, 4, 4, 16384, 3, 5])
        XCTAssertEqual(HDF5.bitshuffleCDValues(elementSize: 2, codec: .zstd(level: 1)), [0, 4, 2, 32768, 3, 1])
        XCTAssertEqual(HDF5.bitshuffleCDValues(elementSize: 2), [0, 4, 2, 0, 2])
        XCTAssertEqual(try HDF5.bitshuffleCodec(cdValues: [0, 4, 4, 64, 3, 5]), .zstd(level: 5))
        XCTAssertEqual(try HDF5.bitshuffleCodec(cdValues: [0, 3, 2, 0, 2]), .lz4)
        XCTAssertNil(try HDF5.bitshuffleCodec(cdValues: [0, 3, 2, 0, 0]))
        XCTAssertNil(try HDF5.bitshuffleCodec(cdValues: [0, 3, 2]))
        XCTAssertThrowsError(try HDF5.bitshuffleCodec(cdValues: [0, 4, 2, 0, 1])) { XCTAssertEqual(($0 as? EMError)?.code, .unsupported) }
    }

    static let hdf5pluginU32Blocks64Level5 = "00000000000004b0000001000000008928b52ffd600000fd03008406aa88a06cc6e86a42c020cc224c8a6688e6f0161cf87a34945a4076cc1ca4b8a2f0808cd272aca6f21200579e21d8294a7f0098b4bffada782100e0d86a0653861500001fb354c901a60000e0c3986d556d000000fce07166b600000000ff8187c700fe07f800f8ff092010833e470270a0099b35b77231ce4c16b27605000000a628b52ffd600000e504008408aa88a06cc6e86a42c020cc224c8a6688e65abcb652d09e3ef04ade6e1e2432885064ea1e9e424a14fcec3f322d18e1c41198eee0ed8ec48a7d504ebe4caed70423ca716b8c6498fd15c67f4c59e21fa90c942a253b1ee031a918b34952abaa9464e0c3719c3333d9b600fc811f3c3c1ec7ffff01e03fc01ff80000feff3f00e0ff00000000c0ffff0720b0027dc1c03f6dbe72609c992c64f60a000000b628b52ffd600000650500a409aa88a06cc6e86a42c020cc224c8a6688e6f0161cf87a34945aeadc66b60e12085a2a04f0d0a6a4fa18c4b9504f34c7ac996cb256f35e9e562b989eec747609764350de7d8d8c057386604b7c56025671542a397c9854cd7098e6f8831f6796da4ab45255b5d2b2c939386366269b246dadc08387c7e3388e3100fc07f8033ff0c10000f8ff03c0ff01ffffffff030000fe00000000fcffffff000620d0820f1102e516094632cb42e6af000000bb28b52ffd6000008d0500d409aa88a06cc6e86a42c020cc224c8a6688e65abcb652d09e3ef0e074c4b48e9822fac4ca9e3ec8c2365682d15ce37e8f08fd98acae8de2c82211a41246123a81507dc2a129f4b8508b23fe6ab0f26c60f91554e63f5b1a80ad0c321ec06353559b030efeff836366d2aa54abaa56292d496667cccc64b24992b4870f0f87c3711cc7f80ff007fc811ff8ff0f00f8ff01e0ffff0f000000feffff00f0ff000720b0820f143141cb17298c6696850c5e010000008528b52ffd20a0e50300e406aa88a06cc66cc66ce86a42c0e820cc224c8af0161cf87a4076cc1ca42a2678d8062a75b6a9dac4567ad9166c0430208298da4befa0509e86e594604bfe4972809354dbf1aab6cd38f0668ec307f0b4d46a55a538e78c9939c0070f1e3e00f80fe03f0000f0ff3f00000000c0ff000500c045056140088823706c00ba8b0139c08f0168cd930193e19701"
}
