import CLZ4
import Foundation

/// The bitshuffle + LZ4 chunk codec of HDF5 filter 32008 (kiyo-masui/bitshuffle), as Dectris
/// detectors, hdf5plugin and h5py write it; the byte layout is in Sources/Formats/Dectris/FORMAT.md.
///
/// A chunk of N elements of `elementSize` bytes is: an 8-byte big-endian total size in bytes, a
/// 4-byte big-endian block size in bytes, then every block of `blockElements` elements as a
/// 4-byte big-endian compressed size and an LZ4 block of its bit-transposed bytes; the last
/// partial block is cut down to a multiple of 8 elements, and the N mod 8 elements left over are
/// stored as they are at the very end.
public enum BitshuffleLZ4 {
    /// HDF5 filter id (registered with The HDF Group).
    public static let filterID = 32008
    /// `cd_values[4]` when LZ4 follows the bit transposition.
    public static let lz4Flag: UInt32 = 2
    /// bitshuffle's target block size: 8 KiB of elements, so a block and its transposition stay in L1.
    public static let targetBlockBytes = 8192

    public static var lz4Version: String { String(cString: LZ4_versionString()) }

    /// bitshuffle's default block (what `block size 0` means): 8 KiB worth of elements, a multiple
    /// of 8, at least 128.
    public static func defaultBlockElements(elementSize: Int) -> Int {
        max(128, (targetBlockBytes / max(1, elementSize)) / 8 * 8)
    }

    /// Largest encoded size of `bytes` bytes (header included).
    public static func compressBound(bytes: Int, elementSize: Int, blockElements: Int = 0) -> Int {
        let e = max(1, elementSize)
        let b = blockElements > 0 ? blockElements : defaultBlockElements(elementSize: e)
        let n = bytes / e
        var bound = 12 + (Int(LZ4_compressBound(Int32(b * e))) + 4) * (n / b)
        let partial = (n % b) / 8 * 8
        if partial > 0 { bound += Int(LZ4_compressBound(Int32(partial * e))) + 4 }
        return bound + (n % 8) * e + (bytes - n * e)
    }

    /// Encodes `src` (a whole number of elements) into `dst`; returns the encoded size.
    public static func encode(_ src: UnsafeRawBufferPointer, elementSize: Int, blockElements: Int = 0,
                              into dst: UnsafeMutableRawPointer, capacity: Int) throws -> Int {
        let e = max(1, elementSize)
        let b = blockElements > 0 ? blockElements : defaultBlockElements(elementSize: e)
        guard b % 8 == 0, src.count % e == 0, capacity >= compressBound(bytes: src.count, elementSize: e, blockElements: b) else {
            throw EMError(.failure, "bitshuffle-LZ4: bad block size or output buffer")
        }
        let n = src.count / e
        let out = dst.assumingMemoryBound(to: UInt8.self)
        putBE(UInt64(src.count), out, 8)
        putBE(UInt64(b * e), out + 8, 4)
        var o = 12
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: b * e, alignment: 64)
        defer { scratch.deallocate() }
        let base = src.baseAddress ?? UnsafeRawPointer(scratch)
        var i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            bitshuffle(base + i * e, into: scratch, elements: m, elementSize: e)
            let c = LZ4_compress_default(scratch.assumingMemoryBound(to: CChar.self), UnsafeMutableRawPointer(out + o + 4).assumingMemoryBound(to: CChar.self),
                                         Int32(m * e), Int32(capacity - o - 4))
            guard c > 0 else { throw EMError(.failure, "LZ4 compression failed") }
            putBE(UInt64(c), out + o, 4)
            o += 4 + Int(c)
            i += m
        }
        let rest = src.count - i * e
        if rest > 0 { (out + o).update(from: (base + i * e).assumingMemoryBound(to: UInt8.self), count: rest); o += rest }
        return o
    }

    /// The declared (total bytes, block bytes) of an encoded chunk, or nil when it is too short.
    public static func header(_ src: UnsafeRawBufferPointer) -> (total: UInt64, blockBytes: UInt32)? {
        guard src.count >= 12, let p = src.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        return (getBE(p, 8), UInt32(getBE(p + 8, 4)))
    }

    /// Decodes `src` into `dst`, which must be exactly the declared size (check ``header(_:)``
    /// before allocating). Throws a one-line ``EMError`` (no file) on any inconsistency.
    public static func decode(_ src: UnsafeRawBufferPointer, elementSize: Int, into dst: UnsafeMutableRawBufferPointer) throws {
        let e = max(1, elementSize)
        func bad(_ m: String) -> EMError { EMError(.badInput, "bitshuffle-LZ4 chunk: \(m)") }
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
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: min(Int(blockBytes), max(8 * e, dst.count)), alignment: 64)
        defer { scratch.deallocate() }
        var o = 12, i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            guard o + 4 <= src.count else { throw bad("ends before block at element \(i)") }
            let c = Int(getBE(p + o, 4))
            guard c <= src.count - o - 4 else { throw bad("block at element \(i) declares \(c) compressed bytes, past the chunk's end") }
            let r = LZ4_decompress_safe(UnsafeRawPointer(p + o + 4).assumingMemoryBound(to: CChar.self), scratch.assumingMemoryBound(to: CChar.self),
                                        Int32(c), Int32(m * e))
            guard r == Int32(m * e) else { throw bad("LZ4 block at element \(i) does not decode to \(m * e) bytes") }
            bitunshuffle(UnsafeRawPointer(scratch), into: dst.baseAddress! + i * e, elements: m, elementSize: e)
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
        var i = 0
        while i + 8 <= n {
            let m = min(b, (n - i) / 8 * 8)
            bitunshuffle(src.baseAddress! + i * e, into: dst.baseAddress! + i * e, elements: m, elementSize: e)
            i += m
        }
        if i < n { (dst.baseAddress! + i * e).copyMemory(from: src.baseAddress! + i * e, byteCount: (n - i) * e) }
    }

    // MARK: Bit transposition

    /// Transposes the 8x8 bit matrix held in `x` (byte r, bit c) → (byte c, bit r).
    @inline(__always)
    static func transpose8(_ x: UInt64) -> UInt64 {
        var x = x
        var t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA
        x = x ^ t ^ (t << 7)
        t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC
        x = x ^ t ^ (t << 14)
        t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0
        x = x ^ t ^ (t << 28)
        return x
    }

    /// One block (`elements` a multiple of 8): bit k of byte j of element i goes to row
    /// 8j + k, bit i of that row (rows are `elements`/8 bytes, least significant bit first).
    public static func bitshuffle(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, elements n: Int, elementSize e: Int) {
        switch e {
        case 1: shuffleTyped(src, dst, n, UInt8.self)
        case 2: shuffleTyped(src, dst, n, UInt16.self)
        case 4: shuffleTyped(src, dst, n, UInt32.self)
        case 8: shuffleTyped(src, dst, n, UInt64.self)
        default: shuffleBytes(src, dst, n, e)
        }
    }

    /// Inverse of ``bitshuffle(_:into:elements:elementSize:)``.
    public static func bitunshuffle(_ src: UnsafeRawPointer, into dst: UnsafeMutableRawPointer, elements n: Int, elementSize e: Int) {
        switch e {
        case 1: unshuffleTyped(src, dst, n, UInt8.self)
        case 2: unshuffleTyped(src, dst, n, UInt16.self)
        case 4: unshuffleTyped(src, dst, n, UInt32.self)
        case 8: unshuffleTyped(src, dst, n, UInt64.self)
        default: unshuffleBytes(src, dst, n, e)
        }
    }

    /// Element types of 1, 2, 4, 8 bytes: whole elements loaded and stored, groups of 8 zero
    /// elements (most of a counting detector's frame) skipped after zeroing the block.
    @inline(__always)
    static func shuffleTyped<T: FixedWidthInteger & UnsignedInteger>(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int, _: T.Type) {
        let e = MemoryLayout<T>.size
        let s = src.assumingMemoryBound(to: T.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        let row = n / 8
        d.update(repeating: 0, count: n * e)
        // Byte planes that are zero in every element (the high bytes of sparse counts) stay zero.
        var all: T = 0
        for i in 0..<n { all |= s[i] }
        var planes: UInt8 = 0
        for j in 0..<e where (all >> (8 * j)) & 0xFF != 0 { planes |= 1 << j }
        if planes == 0 { return }
        for g in 0..<row {
            let v = s + 8 * g
            var any: T = 0
            for m in 0..<8 { any |= v[m] }
            if any == 0 { continue }
            for j in 0..<e where planes & (1 << j) != 0 {
                var x: UInt64 = 0
                for m in 0..<8 { x |= UInt64(truncatingIfNeeded: (v[m] >> (8 * j)) & 0xFF) << (8 * m) }
                if x == 0 { continue }
                x = transpose8(x)
                let o = d + 8 * j * row + g
                for k in 0..<8 { o[k * row] = UInt8(truncatingIfNeeded: x >> (8 * k)) }
            }
        }
    }

    @inline(__always)
    static func unshuffleTyped<T: FixedWidthInteger & UnsignedInteger>(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int, _: T.Type) {
        let e = MemoryLayout<T>.size
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: T.self)
        let row = n / 8
        // Byte planes whose 8 bit rows are all zero (the high bytes of sparse counts) are skipped.
        var planes: UInt8 = 0
        let words = row  // a plane is 8 rows of `row` bytes
        for j in 0..<e {
            var any: UInt64 = 0
            let p = UnsafeRawPointer(s + 8 * j * row)
            for i in 0..<words { any |= p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) }
            if any != 0 { planes |= 1 << j }
        }
        if planes == 0 { d.update(repeating: 0, count: n); return }
        if row % 8 == 0 {
            // Eight groups at a time: one 8-byte load per bit row, an 8x8 byte transposition
            // gives the eight groups' words, then each word's 8x8 bit transposition.
            d.update(repeating: 0, count: n)
            for j in 0..<e where planes & (1 << j) != 0 {
                let p = UnsafeRawPointer(s + 8 * j * row)
                let sh = 8 * j
                var g0 = 0
                while g0 < row {
                    var w0 = p.loadUnaligned(fromByteOffset: g0, as: UInt64.self)
                    var w1 = p.loadUnaligned(fromByteOffset: row + g0, as: UInt64.self)
                    var w2 = p.loadUnaligned(fromByteOffset: 2 * row + g0, as: UInt64.self)
                    var w3 = p.loadUnaligned(fromByteOffset: 3 * row + g0, as: UInt64.self)
                    var w4 = p.loadUnaligned(fromByteOffset: 4 * row + g0, as: UInt64.self)
                    var w5 = p.loadUnaligned(fromByteOffset: 5 * row + g0, as: UInt64.self)
                    var w6 = p.loadUnaligned(fromByteOffset: 6 * row + g0, as: UInt64.self)
                    var w7 = p.loadUnaligned(fromByteOffset: 7 * row + g0, as: UInt64.self)
                    if w0 | w1 | w2 | w3 | w4 | w5 | w6 | w7 == 0 { g0 += 8; continue }
                    swapBytes(&w0, &w1, 8, 0x00FF_00FF_00FF_00FF)
                    swapBytes(&w2, &w3, 8, 0x00FF_00FF_00FF_00FF)
                    swapBytes(&w4, &w5, 8, 0x00FF_00FF_00FF_00FF)
                    swapBytes(&w6, &w7, 8, 0x00FF_00FF_00FF_00FF)
                    swapBytes(&w0, &w2, 16, 0x0000_FFFF_0000_FFFF)
                    swapBytes(&w1, &w3, 16, 0x0000_FFFF_0000_FFFF)
                    swapBytes(&w4, &w6, 16, 0x0000_FFFF_0000_FFFF)
                    swapBytes(&w5, &w7, 16, 0x0000_FFFF_0000_FFFF)
                    swapBytes(&w0, &w4, 32, 0x0000_0000_FFFF_FFFF)
                    swapBytes(&w1, &w5, 32, 0x0000_0000_FFFF_FFFF)
                    swapBytes(&w2, &w6, 32, 0x0000_0000_FFFF_FFFF)
                    swapBytes(&w3, &w7, 32, 0x0000_0000_FFFF_FFFF)
                    let o = d + 8 * g0
                    merge(w0, o, sh); merge(w1, o + 8, sh); merge(w2, o + 16, sh); merge(w3, o + 24, sh)
                    merge(w4, o + 32, sh); merge(w5, o + 40, sh); merge(w6, o + 48, sh); merge(w7, o + 56, sh)
                    g0 += 8
                }
            }
            return
        }
        for g in 0..<row {
            var acc: (T, T, T, T, T, T, T, T) = (0, 0, 0, 0, 0, 0, 0, 0)
            for j in 0..<e where planes & (1 << j) != 0 {
                let r = s + 8 * j * row + g
                var x: UInt64 = 0
                for k in 0..<8 { x |= UInt64(r[k * row]) << (8 * k) }
                if x == 0 { continue }
                x = transpose8(x)
                let sh = 8 * j
                acc.0 |= T(truncatingIfNeeded: x & 0xFF) << sh
                acc.1 |= T(truncatingIfNeeded: (x >> 8) & 0xFF) << sh
                acc.2 |= T(truncatingIfNeeded: (x >> 16) & 0xFF) << sh
                acc.3 |= T(truncatingIfNeeded: (x >> 24) & 0xFF) << sh
                acc.4 |= T(truncatingIfNeeded: (x >> 32) & 0xFF) << sh
                acc.5 |= T(truncatingIfNeeded: (x >> 40) & 0xFF) << sh
                acc.6 |= T(truncatingIfNeeded: (x >> 48) & 0xFF) << sh
                acc.7 |= T(truncatingIfNeeded: (x >> 56) & 0xFF) << sh
            }
            let o = d + 8 * g
            o[0] = acc.0; o[1] = acc.1; o[2] = acc.2; o[3] = acc.3
            o[4] = acc.4; o[5] = acc.5; o[6] = acc.6; o[7] = acc.7
        }
    }

    /// One step of an 8x8 byte-matrix transposition held in eight words (row k = word k).
    @inline(__always)
    static func swapBytes(_ a: inout UInt64, _ b: inout UInt64, _ shift: UInt64, _ mask: UInt64) {
        let t = ((a >> shift) ^ b) & mask
        b ^= t
        a ^= t << shift
    }

    /// ORs byte j (at `shift`) of the 8 elements of one group, from its bit rows `x`, into `o`.
    @inline(__always)
    static func merge<T: FixedWidthInteger & UnsignedInteger>(_ x: UInt64, _ o: UnsafeMutablePointer<T>, _ shift: Int) {
        if x == 0 { return }
        let t = transpose8(x)
        for m in 0..<8 { o[m] |= T(truncatingIfNeeded: (t >> (8 * m)) & 0xFF) << shift }
    }

    static func shuffleBytes(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int, _ e: Int) {
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        let row = n / 8
        for g in 0..<row {
            let base = s + 8 * g * e
            for j in 0..<e {
                var x: UInt64 = 0
                for m in 0..<8 { x |= UInt64(base[m * e + j]) << (8 * m) }
                if x != 0 { x = transpose8(x) }
                for k in 0..<8 { d[(8 * j + k) * row + g] = UInt8(truncatingIfNeeded: x >> (8 * k)) }
            }
        }
    }

    static func unshuffleBytes(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int, _ e: Int) {
        let s = src.assumingMemoryBound(to: UInt8.self)
        let d = dst.assumingMemoryBound(to: UInt8.self)
        let row = n / 8
        for g in 0..<row {
            let base = d + 8 * g * e
            for j in 0..<e {
                var x: UInt64 = 0
                for k in 0..<8 { x |= UInt64(s[(8 * j + k) * row + g]) << (8 * k) }
                if x != 0 { x = transpose8(x) }
                for m in 0..<8 { base[m * e + j] = UInt8(truncatingIfNeeded: x >> (8 * m)) }
            }
        }
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
