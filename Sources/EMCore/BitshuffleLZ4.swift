import CBitshuffle
import CLZ4
import CZstd
import Foundation

/// The bitshuffle chunk codec of HDF5 filter 32008 (kiyo-masui/bitshuffle), as Dectris detectors,
/// hdf5plugin and h5py write it, with LZ4 (`cd_values[4]` = 2) or zstd (3) blocks; the byte layout
/// is in Sources/Formats/Dectris/FORMAT.md.
///
/// A chunk of N elements of `elementSize` bytes is: an 8-byte big-endian total size in bytes, a
/// 4-byte big-endian block size in bytes, then every block of `blockElements` elements as a
/// 4-byte big-endian compressed size and an LZ4 block (or a zstd frame) of its bit-transposed
/// bytes; the last partial block is cut down to a multiple of 8 elements, and the N mod 8
/// elements left over are stored as they are at the very end.
public enum BitshuffleLZ4 {
    /// What compresses each bit-transposed block.
    public enum BlockCodec: Equatable, Sendable {
        /// An LZ4 block (no frame header): `cd_values[4]` = 2.
        case lz4
        /// A zstd frame at this level: `cd_values[4]` = 3, `cd_values[5]` = level (decoding ignores it).
        case zstd(level: Int)

        /// `cd_values[4]` of the filter.
        public var flag: UInt32 {
            switch self {
            case .lz4: return BitshuffleLZ4.lz4Flag
            case .zstd: return BitshuffleLZ4.zstdFlag
            }
        }

        var name: String {
            switch self {
            case .lz4: return "bitshuffle-LZ4"
            case .zstd: return "bitshuffle-zstd"
            }
        }

        /// Block size emconv writes, in elements (0: bitshuffle's default of 8 KiB). LZ4 keeps the
        /// default, which every Dectris reader's fast path expects; zstd takes 64 KiB blocks, since a
        /// zstd frame per 8 KiB costs so much that nearly empty frames came out 1.6x zstd:1's size
        /// (64 KiB: 0.91x, and faster both ways; benchmarks/README.md). Readers take any block size
        /// (each chunk's header declares it).
        public func writtenBlockElements(elementSize: Int) -> Int {
            switch self {
            case .lz4: return 0
            case .zstd: return max(8, BitshuffleLZ4.zstdBlockBytes / max(1, elementSize) / 8 * 8)
            }
        }

        /// Largest compressed size of one block of `bytes` bytes.
        func blockBound(_ bytes: Int) -> Int {
            switch self {
            case .lz4: return Int(LZ4_compressBound(Int32(bytes)))
            case .zstd: return ZSTD_compressBound(bytes)
            }
        }
    }

    /// HDF5 filter id (registered with The HDF Group).
    public static let filterID = 32008
    /// `cd_values[4]` when LZ4 follows the bit transposition.
    public static let lz4Flag: UInt32 = 2
    /// `cd_values[4]` when zstd follows the bit transposition (its level in `cd_values[5]`).
    public static let zstdFlag: UInt32 = 3
    /// bitshuffle's target block size: 8 KiB of elements, so a block and its transposition stay in L1.
    public static let targetBlockBytes = 8192
    /// Block size emconv writes with zstd blocks (see ``BlockCodec/writtenBlockElements(elementSize:)``).
    public static let zstdBlockBytes = 65536

    public static var lz4Version: String { String(cString: LZ4_versionString()) }

    /// bitshuffle's default block (what `block size 0` means): 8 KiB worth of elements, a multiple
    /// of 8, at least 128.
    public static func defaultBlockElements(elementSize: Int) -> Int {
        max(128, (targetBlockBytes / max(1, elementSize)) / 8 * 8)
    }

    /// Largest encoded size of `bytes` bytes (header included).
    public static func compressBound(bytes: Int, elementSize: Int, blockElements: Int = 0, codec: BlockCodec = .lz4) -> Int {
        let e = max(1, elementSize)
        let b = blockElements > 0 ? blockElements : defaultBlockElements(elementSize: e)
        let n = bytes / e
        var bound = 12 + (codec.blockBound(b * e) + 4) * (n / b)
        let partial = (n % b) / 8 * 8
        if partial > 0 { bound += codec.blockBound(partial * e) + 4 }
        return bound + (n % 8) * e + (bytes - n * e)
    }

    /// Encodes `src` (a whole number of elements) into `dst`; returns the encoded size. `zstdContext`:
    /// a `ZSTD_CCtx` to reuse for `.zstd` (one is made for this call when nil).
    public static func encode(_ src: UnsafeRawBufferPointer, elementSize: Int, blockElements: Int = 0, codec: BlockCodec = .lz4,
                              zstdContext: OpaquePointer? = nil, into dst: UnsafeMutableRawPointer, capacity: Int) throws -> Int {
        let e = max(1, elementSize)
        let b = blockElements > 0 ? blockElements : defaultBlockElements(elementSize: e)
        guard b % 8 == 0, src.count % e == 0,
              capacity >= compressBound(bytes: src.count, elementSize: e, blockElements: b, codec: codec) else {
            throw EMError(.failure, "\(codec.name): bad block size or output buffer")
        }
        var ownContext: OpaquePointer? = nil
        defer { if let c = ownContext { ZSTD_freeCCtx(c) } }
        if case .zstd = codec, zstdContext == nil { ownContext = ZSTD_createCCtx() }
        let zc = zstdContext ?? ownContext
        let n = src.count / e
        let out = dst.assumingMemoryBound(to: UInt8.self)
        putBE(UInt64(src.count), out, 8)
        putBE(UInt64(b * e), out + 8, 4)
        var o = 12
        // The transposed block, then the transposition's own scratch.
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 2 * b * e, alignment: 64)
        defer { scratch.deallocate() }
        let base = src.baseAddress ?? UnsafeRawPointer(scratch)
        var i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            bitshuffle(base + i * e, into: scratch, elements: m, elementSize: e, scratch: scratch + b * e)
            let c: Int
            switch codec {
            case .lz4:
                c = Int(LZ4_compress_default(scratch.assumingMemoryBound(to: CChar.self), UnsafeMutableRawPointer(out + o + 4).assumingMemoryBound(to: CChar.self),
                                             Int32(m * e), Int32(capacity - o - 4)))
                guard c > 0 else { throw EMError(.failure, "LZ4 compression failed") }
            case let .zstd(level):
                c = ZSTD_compressCCtx(zc, out + o + 4, capacity - o - 4, scratch, m * e, Int32(level))
                guard ZSTD_isError(c) == 0 else { throw EMError(.failure, "zstd compression failed") }
            }
            putBE(UInt64(c), out + o, 4)
            o += 4 + Int(c)
            i += m
        }
        let rest = src.count - i * e
        if rest > 0 { (out + o).update(from: (base + i * e).assumingMemoryBound(to: UInt8.self), count: rest); o += rest }
        return o
    }

    /// The most an encoded chunk of `encodedBytes` can decode to: LZ4 expands a block at most
    /// 255-fold (one literal-length byte per 255 bytes of a match), each block costs at least 5
    /// bytes and the unshuffled tail is stored as it is; a zstd frame's RLE blocks turn 4 bytes
    /// into up to 128 KiB. A larger declared total is damage, refused before anything is allocated.
    public static func maxDecodedBytes(encodedBytes: Int, codec: BlockCodec = .lz4) -> Int {
        let perByte = codec == .lz4 ? 255 : (128 << 10) / 4
        return max(0, encodedBytes - 12) * perByte + 4096
    }

    /// The declared (total bytes, block bytes) of an encoded chunk, or nil when it is too short.
    public static func header(_ src: UnsafeRawBufferPointer) -> (total: UInt64, blockBytes: UInt32)? {
        guard src.count >= 12, let p = src.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        return (getBE(p, 8), UInt32(getBE(p + 8, 4)))
    }

    /// Decodes `src` into `dst`, which must be exactly the declared size (check ``header(_:)``
    /// before allocating). Throws a one-line ``EMError`` (no file) on any inconsistency.
    public static func decode(_ src: UnsafeRawBufferPointer, elementSize: Int, codec: BlockCodec = .lz4,
                              into dst: UnsafeMutableRawBufferPointer) throws {
        let e = max(1, elementSize)
        func bad(_ m: String) -> EMError { EMError(.badInput, "\(codec.name) chunk: \(m)") }
        guard let h = header(src) else { throw bad("shorter than its 12-byte header") }
        let (total, blockBytes) = (h.total, h.blockBytes)
        guard total == UInt64(dst.count) else { throw bad("declares \(total) bytes, expected \(dst.count)") }
        guard blockBytes > 0, Int(blockBytes) % e == 0, (Int(blockBytes) / e) % 8 == 0 else {
            throw bad("block size \(blockBytes) bytes is not a positive multiple of 8 elements of \(e) bytes")
        }
        guard dst.count % e == 0 else { throw bad("size \(dst.count) is not a whole number of \(e)-byte elements") }
        let b = Int(blockBytes) / e
        let n = dst.count / e
        let p = src.baseAddress!.assumingMemoryBound(to: UInt8.self)
        // The decompressed block, then the transposition's scratch (the block size is bounded by the output).
        let blockCap = min(Int(blockBytes), max(8 * e, dst.count))
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 2 * blockCap, alignment: 64)
        defer { scratch.deallocate() }
        let zd: OpaquePointer? = codec == .lz4 ? nil : ZSTD_createDCtx()
        defer { if let zd { ZSTD_freeDCtx(zd) } }
        var o = 12, i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            guard o + 4 <= src.count else { throw bad("ends before block at element \(i)") }
            let c = Int(getBE(p + o, 4))
            guard c <= src.count - o - 4 else { throw bad("block at element \(i) declares \(c) compressed bytes, past the chunk's end") }
            if let zd {
                let r = ZSTD_decompressDCtx(zd, scratch, m * e, p + o + 4, c)
                guard ZSTD_isError(r) == 0, r == m * e else { throw bad("zstd block at element \(i) does not decode to \(m * e) bytes") }
            } else {
                let r = LZ4_decompress_safe(UnsafeRawPointer(p + o + 4).assumingMemoryBound(to: CChar.self), scratch.assumingMemoryBound(to: CChar.self),
                                            Int32(c), Int32(m * e))
                guard r == Int32(m * e) else { throw bad("LZ4 block at element \(i) does not decode to \(m * e) bytes") }
            }
            bitunshuffle(UnsafeRawPointer(scratch), into: dst.baseAddress! + i * e, elements: m, elementSize: e, scratch: scratch + blockCap)
            o += 4 + c
            i += m
        }
        let rest = dst.count - i * e
        guard o + rest <= src.count else { throw bad("ends before its last \(rest) unshuffled bytes") }
        if rest > 0 { (dst.baseAddress! + i * e).copyMemory(from: p + o, byteCount: rest) }
    }

    /// Bitshuffle without LZ4 (`cd_values[4]` = 0): blocks of `blockElements` transposed in place
    /// of each other, the N mod 8 trailing elements as they are.
    public static func unshuffleOnly(_ src: UnsafeRawBufferPointer, elementSize: Int, blockElements: Int,
                                     into dst: UnsafeMutableRawBufferPointer) throws {
        let e = max(1, elementSize)
        let b = blockElements > 0 ? blockElements : defaultBlockElements(elementSize: e)
        guard b % 8 == 0, src.count == dst.count, dst.count % e == 0 else {
            throw EMError(.badInput, "bitshuffle chunk: \(src.count) bytes, expected \(dst.count) in \(e)-byte elements with blocks of \(b)")
        }
        let n = dst.count / e
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: max(1, min(b, n) * e), alignment: 64)
        defer { scratch.deallocate() }
        var i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            bitunshuffle(src.baseAddress! + i * e, into: dst.baseAddress! + i * e, elements: m, elementSize: e, scratch: scratch)
            i += m
        }
        if i < n { (dst.baseAddress! + i * e).copyMemory(from: src.baseAddress! + i * e, byteCount: (n - i) * e) }
    }

    // MARK: Bit transposition

    /// Implementations of the bit transposition (C target CBitshuffle): `best` is what the CPU
    /// runs fastest (AVX2 when present, else SSE2 on x86-64, portable C elsewhere).
    public enum Transposition: Int32, CaseIterable, Sendable {
        case best = 0, portable = 1, sse2 = 2, avx2 = 3
        /// Whether this CPU runs it.
        public var isAvailable: Bool { emc_bitshuffle_isa_available(rawValue) != 0 }
        /// What `best` is on this CPU: "avx2", "sse2" or "scalar".
        public static var selected: String { String(cString: emc_bitshuffle_isa()) }
    }

    /// One block (`elements` a multiple of 8): bit k of byte j of element i goes to row
    /// 8j + k, bit i of that row (rows are `elements`/8 bytes, least significant bit first).
    /// `scratch`: `elements * elementSize` bytes, allocated here when nil.
    public static func bitshuffle(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, elements n: Int, elementSize e: Int,
                                  scratch: UnsafeMutableRawPointer? = nil, using t: Transposition = .best) {
        withScratch(scratch, n * e) { emc_bitshuffle(src, dst, n, e, $0, t.rawValue) }
    }

    /// Inverse of ``bitshuffle(_:into:elements:elementSize:scratch:using:)``.
    public static func bitunshuffle(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, elements n: Int, elementSize e: Int,
                                    scratch: UnsafeMutableRawPointer? = nil, using t: Transposition = .best) {
        withScratch(scratch, n * e) { emc_bitunshuffle(src, dst, n, e, $0, t.rawValue) }
    }

    @inline(__always)
    static func withScratch(_ given: UnsafeMutableRawPointer?, _ bytes: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        if let given { body(given); return }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes), alignment: 64)
        defer { p.deallocate() }
        body(p)
    }

    @inline(__always)
    static func putBE(_ v: UInt64, _ p: UnsafeMutablePointer<UInt8>, _ n: Int) {
        for i in 0..<n { p[i] = UInt8(truncatingIfNeeded: v >> (8 * (n - 1 - i))) }
    }

    @inline(__always)
    static func getBE(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n { v = v << 8 | UInt64(p[i]) }
        return v
    }

    @inline(__always)
    static func getBE(_ p: UnsafeMutablePointer<UInt8>, _ n: Int) -> UInt64 { getBE(UnsafePointer(p), n) }
}
