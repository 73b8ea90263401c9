import CDeflate
import EMConvKit
import Foundation
import XCTest

/// The `gzip:1` encoder (PlaneDeflate, C target CEMDeflate): every stream decodes with
/// libdeflate's zlib decompressor to the exact input, and the per-plane choice that makes it fast
/// (stored noise, run-length sparse planes, LZ77 for ramps) is pinned by sizes and modes.
final class PlaneDeflateTests: XCTestCase {
    /// Inflates a zlib stream with libdeflate, expecting exactly `count` bytes.
    func inflate(_ stream: [UInt8], count: Int) throws -> [UInt8] {
        let d = try XCTUnwrap(libdeflate_alloc_decompressor())
        defer { libdeflate_free_decompressor(d) }
        var out = [UInt8](repeating: 0xAA, count: count + 1)
        var got = 0
        let r = stream.withUnsafeBytes { s in
            out.withUnsafeMutableBytes { libdeflate_zlib_decompress(d, s.baseAddress, s.count, $0.baseAddress, $0.count, &got) }
        }
        XCTAssertEqual(r, LIBDEFLATE_SUCCESS)
        return Array(out[0..<got])
    }

    /// Shuffles `data` as the writers do (HDF5 shuffle of `elementSize`-byte elements), compresses
    /// it with `elementSize` planes, checks the round trip; returns the stream and the plane modes.
    @discardableResult
    func roundTrip(_ data: [UInt8], elementSize: Int, _ what: String, period: Int = 0,
                   encoder: PlaneDeflate? = nil) throws -> ([UInt8], PlaneDeflate.PlaneModes) {
        let enc = try encoder ?? PlaneDeflate()
        var shuffled = data
        if elementSize > 1, !data.isEmpty {
            data.withUnsafeBytes { s in shuffled.withUnsafeMutableBytes { shuffle(s, into: $0, elementSize: elementSize) } }
        }
        let stream = try shuffled.withUnsafeBytes { try enc.compress($0, planes: elementSize, period: period) }
        let back = try inflate(stream, count: shuffled.count)
        XCTAssertTrue(back == shuffled, "\(what): \(data.count) bytes, element size \(elementSize) do not round-trip")
        XCTAssertLessThanOrEqual(stream.count, enc.bound(data.count, planes: elementSize), what)
        return (stream, enc.lastModes)
    }

    func libdeflateStream(_ data: [UInt8], level: Int32) -> [UInt8] {
        let c = libdeflate_alloc_compressor(level)
        defer { libdeflate_free_compressor(c) }
        var out = [UInt8](repeating: 0, count: libdeflate_zlib_compress_bound(c, data.count))
        let n = data.withUnsafeBytes { s in out.withUnsafeMutableBytes { libdeflate_zlib_compress(c, s.baseAddress, s.count, $0.baseAddress, $0.count) } }
        return Array(out[0..<n])
    }

    func libdeflateLevel1Size(_ data: [UInt8]) -> Int { libdeflateStream(data, level: 1).count }

    func shuffled(_ data: [UInt8], _ e: Int) -> [UInt8] {
        var out = data
        data.withUnsafeBytes { s in out.withUnsafeMutableBytes { shuffle(s, into: $0, elementSize: e) } }
        return out
    }

    /// Poisson counts (Knuth's method; means are small here).
    func poisson(_ mean: Double, _ rng: inout SweepRNG) -> Int {
        let l = exp(-mean)
        var k = 0, p = 1.0
        repeat { k += 1; p *= Double.random(in: 0..<1, using: &rng) } while p > l
        return k - 1
    }

    /// Sparse counting frames as a pixelated detector records them: u16 little-endian, a bright
    /// disc on a background of mostly zeros.
    func sparseFrames(side: Int, frames: Int, _ rng: inout SweepRNG) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(side * side * frames * 2)
        for _ in 0..<frames {
            for y in 0..<side {
                for x in 0..<side {
                    let r = hypot(Double(x - side / 2), Double(y - side / 2))
                    let v = UInt16(poisson(r < Double(side) / 6 ? 20 : 0.05, &rng))
                    out += [UInt8(v & 0xFF), UInt8(v >> 8)]
                }
            }
        }
        return out
    }

    /// Dark- and gain-corrected counts: float32 whose low mantissa bytes are noise.
    func correctedFloats(count: Int, _ rng: inout SweepRNG) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count * 4)
        for _ in 0..<count {
            let c = Float(poisson(0.5, &rng)) - Float.random(in: 1.9...2.1, using: &rng)
            let v = c * Float.random(in: 0.9...1.1, using: &rng)
            withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
        }
        return out
    }

    func testEveryKindOfInputRoundTrips() throws {
        var rng = SweepRNG(seed: 14)
        let enc = try PlaneDeflate()
        for e in [1, 2, 3, 4, 8] {
            for n in [0, 1, 2, 7, 1000, 65535, 65536, 65537, 200_003] {
                let random = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let zeros = [UInt8](repeating: 0, count: n)
                let sparse = (0..<n).map { _ in Int.random(in: 0..<40, using: &rng) == 0 ? UInt8(poisson(1.5, &rng) & 0xFF) : 0 }
                let ramp = (0..<n).map { UInt8(truncatingIfNeeded: $0 / e) }
                let periodic = (0..<n).map { UInt8(truncatingIfNeeded: ($0 * 37) % 251) }
                // Runs longer than 64 KiB of a non-zero byte, then noise, then another run.
                let runs = (0..<n).map { i -> UInt8 in i < 70_000 ? 7 : i < 100_000 ? UInt8.random(in: 0...255, using: &rng) : 0xFF }
                for (name, data) in [("random", random), ("zeros", zeros), ("sparse", sparse), ("ramp", ramp),
                                     ("periodic", periodic), ("runs", runs)] {
                    try roundTrip(data, elementSize: e, "\(name) e=\(e) n=\(n)", encoder: enc)
                }
            }
        }
        let floats = correctedFloats(count: 70_000, &rng)
        try roundTrip(floats, elementSize: 4, "float32 corrected", encoder: enc)
        // float64: widen the same values.
        var doubles: [UInt8] = []
        for i in 0..<(floats.count / 4) {
            let f = floats[(4 * i)..<(4 * i + 4)].withUnsafeBytes { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
            withUnsafeBytes(of: Double(f).bitPattern.littleEndian) { doubles += $0 }
        }
        try roundTrip(doubles, elementSize: 8, "float64 corrected", encoder: enc)
        try roundTrip(sparseFrames(side: 128, frames: 3, &rng), elementSize: 2, "sparse u16 frames", encoder: enc)
    }

    /// Thousands of seeded cases over random sizes, plane counts and mixtures of runs, noise and
    /// small alphabets (replay a failure with its seed).
    func testSeededRandomCasesRoundTrip() throws {
        let enc = try PlaneDeflate()
        for seed in UInt64(1)...3000 {
            var rng = SweepRNG(seed: seed)
            let n = Int.random(in: 0...(seed % 10 == 0 ? 150_000 : 6000), using: &rng)
            let planes = Int.random(in: 1...9, using: &rng)
            var data = [UInt8](repeating: 0, count: n)
            var i = 0
            while i < n {
                let len = min(n - i, Int.random(in: 1...(Bool.random(using: &rng) ? 20 : 3000), using: &rng))
                let kind = Int.random(in: 0..<4, using: &rng)
                let b = UInt8.random(in: 0...255, using: &rng)
                let alphabet = UInt8.random(in: 1...255, using: &rng)
                for k in i..<(i + len) {
                    switch kind {
                    case 0: data[k] = b
                    case 1: data[k] = UInt8.random(in: 0...255, using: &rng)
                    case 2: data[k] = UInt8.random(in: 0...alphabet, using: &rng)
                    default: data[k] = UInt8(truncatingIfNeeded: k &* Int(alphabet))
                    }
                }
                i += len
            }
            let level = seed % 4 == 0 ? Int(seed / 4 % 9) + 1 : 1
            // Every third case repeats the bytes one period back (with changes) and passes the period.
            var period = 0
            if seed % 3 == 0, n > 8 {
                period = Int.random(in: 2...max(2, min(32768, n / 2)), using: &rng)
                let keep = Int.random(in: 50...100, using: &rng)
                for k in period..<n where Int.random(in: 0..<100, using: &rng) < keep { data[k] = data[k - period] }
            }
            let stream = try data.withUnsafeBytes { try enc.compress($0, planes: planes, level: level, period: period) }
            let back = try inflate(stream, count: n)
            XCTAssertTrue(back == data, "seed \(seed): \(n) bytes in \(planes) planes at level \(level), period \(period), do not round-trip")
            if back != data { return }
        }
    }

    /// Noise planes (the low mantissa bytes of corrected floats, random data) are stored blocks:
    /// no bigger than the data plus the block headers, and no Huffman pass is spent on them.
    func testNoisePlanesAreStoredBlocks() throws {
        var rng = SweepRNG(seed: 16)
        let n = 4 * 65536
        let noise = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let (stream, modes) = try roundTrip(noise, elementSize: 4, "noise")
        XCTAssertEqual(modes, PlaneDeflate.PlaneModes(stored: 4))
        // 5 bytes per stored block of at most 65535 bytes, zlib header, final block, Adler-32.
        XCTAssertLessThanOrEqual(stream.count, n + 5 * (n / 65535 + 4) + 8)
        // Corrected float32 frames: the two low mantissa planes are stored; the sign-and-exponent
        // plane (a few values in short runs) is Huffman-coded literals, not distance-1 matches.
        let floats = correctedFloats(count: 65536, &rng)
        let (fstream, fmodes) = try roundTrip(floats, elementSize: 4, "corrected float32")
        XCTAssertGreaterThanOrEqual(fmodes.stored, 2)
        XCTAssertGreaterThanOrEqual(fmodes.literal, 1)
        XCTAssertEqual(fmodes.stored + fmodes.runLength + fmodes.lz77 + fmodes.literal, 4)
        XCTAssertLessThanOrEqual(Double(fstream.count), 1.02 * Double(libdeflateLevel1Size(shuffled(floats, 4))))
    }

    /// Planes of skewed values in short runs are one block of Huffman-coded literals, written two
    /// byte pairs per store (or four literals when the plane is too small to repay the pair table): geometric values (code lengths that would reach 255 bits unlimited,
    /// here cut to 14), every byte value present, plane sizes that are not multiples of 4.
    func testShortRunPlanesAreLiteralCodedWithLimitedCodeLengths() throws {
        var rng = SweepRNG(seed: 21)
        for n in [4096, 65_537, 300_003] {  // the last fills the pair table (n > 4 x 256^2)
            var data = (0..<n).map { _ -> UInt8 in
                var k = 0
                while k < 255 && Bool.random(using: &rng) { k += 1 }
                return UInt8(k)
            }
            for v in 0..<256 { data[(v * 7919) % n] = UInt8(v) }  // every value, once at least
            let (stream, modes) = try roundTrip(data, elementSize: 1, "geometric n=\(n)")
            XCTAssertEqual(modes, PlaneDeflate.PlaneModes(literal: 1), "n=\(n)")
            // About 2 bits per value (the entropy) plus the rare values and the code lengths, far
            // from the 8 bits of a stored plane.
            XCTAssertLessThan(Double(stream.count), 0.26 * Double(n) + 800, "n=\(n)")
            XCTAssertLessThanOrEqual(stream.count, libdeflateLevel1Size(data), "n=\(n)")
        }
    }

    /// Corrected frames of a sparse detector stacked in a chunk of frame bands: most values repeat
    /// the previous frame's (a zero count gives the same corrected value every frame). Given the
    /// band's element count as the period, the planes are coded as matches at that distance
    /// (16384 and 32768: distance codes with 12 and 13 extra bits, one symbol per store), far
    /// smaller than without; the first band of the chunk has nothing to refer to.
    func testStackedFrameBandsAreCodedAgainstThePreviousFrame() throws {
        var rng = SweepRNG(seed: 33)
        for (rows, cols) in [(64, 256), (128, 256), (24, 100)] {
            let band = rows * cols, frames = 8
            let dark = (0..<band).map { _ in Float.random(in: 0...20, using: &rng) }
            let gain = (0..<band).map { _ in Float.random(in: 0.9...1.1, using: &rng) }
            var data: [UInt8] = []
            for _ in 0..<frames {
                for p in 0..<band {
                    let count = Int.random(in: 0..<25, using: &rng) == 0 ? Float(poisson(2, &rng)) : 0
                    withUnsafeBytes(of: ((count - dark[p]) * gain[p]).bitPattern.littleEndian) { data += $0 }
                }
            }
            let (with, modes) = try roundTrip(data, elementSize: 4, "bands \(rows)x\(cols)", period: band)
            let (without, _) = try roundTrip(data, elementSize: 4, "bands \(rows)x\(cols) without period")
            XCTAssertEqual(modes, PlaneDeflate.PlaneModes(period: 4), "\(rows)x\(cols)")
            XCTAssertLessThan(Double(with.count), 0.4 * Double(without.count), "\(rows)x\(cols): \(with.count) vs \(without.count)")
        }
        // A period beyond deflate's window is not used (the stream stays valid).
        let noise = (0..<(4 * 40000)).map { _ in UInt8.random(in: 0...3, using: &rng) }
        let (_, far) = try roundTrip(noise, elementSize: 1, "period 40000", period: 40000)
        XCTAssertEqual(far.period, 0)
        XCTAssertEqual(PlaneDeflate.chunkPeriod(chunkShape: [1, 8, 128, 256], frameRank: 2), 32768)
        XCTAssertEqual(PlaneDeflate.chunkPeriod(chunkShape: [1, 8, 256, 256], frameRank: 2), 0)
        XCTAssertEqual(PlaneDeflate.chunkPeriod(chunkShape: [1, 1, 64, 256], frameRank: 2), 0)
        XCTAssertEqual(PlaneDeflate.chunkPeriod(chunkShape: [4, 64, 256], frameRank: 2), 16384)
    }

    /// Sparse counting frames are run-length coded and at least as small as libdeflate level 1
    /// (what `gzip:1` wrote before).
    func testSparsePlanesAreRunLengthCodedAndNoBiggerThanLibdeflate() throws {
        var rng = SweepRNG(seed: 4)
        let frames = sparseFrames(side: 256, frames: 2, &rng)
        let (stream, modes) = try roundTrip(frames, elementSize: 2, "sparse frames")
        XCTAssertEqual(modes, PlaneDeflate.PlaneModes(runLength: 2))
        XCTAssertLessThanOrEqual(stream.count, libdeflateLevel1Size(shuffled(frames, 2)))
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let (zstream, zmodes) = try roundTrip(zeros, elementSize: 2, "zeros")
        XCTAssertEqual(zmodes, PlaneDeflate.PlaneModes(runLength: 2))
        XCTAssertLessThanOrEqual(zstream.count, libdeflateLevel1Size(zeros))
    }

    /// Ramps look like noise to an order-0 entropy estimate; the trial finds that LZ77 wins and
    /// the size stays close to libdeflate level 1.
    func testRampPlanesUseLZ77() throws {
        let ramp = (0..<(1 << 18)).flatMap { i -> [UInt8] in [UInt8(i & 0xFF), UInt8((i >> 8) & 0xFF)] }
        let (stream, modes) = try roundTrip(ramp, elementSize: 2, "u16 ramp")
        XCTAssertEqual(modes, PlaneDeflate.PlaneModes(lz77: 2))
        XCTAssertLessThanOrEqual(stream.count, libdeflateLevel1Size(shuffled(ramp, 2)))
    }

    /// The writers' chunk step uses this encoder for `gzip:1` (the default) with one plane per
    /// byte of the element, and libdeflate for the other levels.
    func testPipelineGzip1UsesThePlaneEncoder() throws {
        var rng = SweepRNG(seed: 9)
        let frames = sparseFrames(side: 64, frames: 4, &rng)
        let expected = try shuffled(frames, 2).withUnsafeBytes { try PlaneDeflate().compress($0, planes: 2) }
        let slot = PipelineSlot(capacity: frames.count)
        frames.withUnsafeBytes { slot.input.raw.copyMemory(from: $0) }
        slot.input.count = frames.count
        let out = try slot.encode(compression: .gzip(level: 1), shuffleElementSize: 2)
        XCTAssertEqual(Array(out.bytes), expected)
        let level6 = try slot.encode(compression: .gzip(level: 6), shuffleElementSize: 2)
        XCTAssertEqual(try inflate(Array(level6.bytes), count: frames.count), shuffled(frames, 2))
    }

    /// `gzip:2`-`9` store only near-random planes; any other chunk is exactly libdeflate's stream
    /// at that level, as before.
    func testHigherLevelsStoreNoisePlanesAndOtherwiseAreLibdeflate() throws {
        var rng = SweepRNG(seed: 26)
        let enc = try PlaneDeflate()
        let frames = shuffled(sparseFrames(side: 128, frames: 2, &rng), 2)
        for level in [2, 6, 9] {
            let stream = try frames.withUnsafeBytes { try enc.compress($0, planes: 2, level: level) }
            XCTAssertEqual(stream, libdeflateStream(frames, level: Int32(level)), "level \(level)")
            XCTAssertEqual(enc.lastModes, PlaneDeflate.PlaneModes(lz77: 2))
        }
        // Corrected float32: the two low mantissa planes are stored, the rest is libdeflate at level 6,
        // no bigger than libdeflate level 6 on the whole chunk.
        let floats = shuffled(correctedFloats(count: 65536, &rng), 4)
        let stream = try floats.withUnsafeBytes { try enc.compress($0, planes: 4, level: 6) }
        XCTAssertEqual(try inflate(stream, count: floats.count), floats)
        XCTAssertGreaterThanOrEqual(enc.lastModes.stored, 2)
        XCTAssertEqual(enc.lastModes.stored + enc.lastModes.lz77, 4)
        XCTAssertLessThanOrEqual(Double(stream.count), 1.01 * Double(libdeflateStream(floats, level: 6).count))
    }
}
