import EMCore
import Foundation

/// Decoding of Merlin frame payloads into native-order values. Processed formats (U08/U16/U32/
/// U64) are big-endian integers in row-major order; raw R64 frames are the chips' readout words
/// (see formats.md: pixel order reversed within each 64-bit word, quad chips in one stream).
struct MIBDecoder {
    let format: MIBPixelFormat
    /// Counter depth of raw frames (1, 6, 12, 24).
    let depth: Int
    let quad: Bool
    /// Output frame shape (rows, cols).
    let rows: Int
    let cols: Int
    /// Bytes of one frame's payload on disk.
    let payloadBytes: Int
    let outputType: ElementType

    /// Frame geometry from a header (and the counter depth, needed for R64).
    init(header h: MIBHeader, depth: Int?, file: String) throws {
        format = h.format
        quad = h.isQuad
        if h.format == .r64 {
            guard let d = depth, [1, 6, 12, 24].contains(d) else {
                throw EMError(.unsupported, file: file, at: "header field 'counter depth'",
                              "raw (R64) frames need the counter depth (1, 6, 12 or 24); it is \(depth.map(String.init) ?? "not stated") (add the .hdr file)")
            }
            self.depth = d
            // 24-bit raw frames are two 12-bit readouts one after the other; the header's width
            // counts both.
            let w = d == 24 ? h.width / 2 : h.width
            if h.chips > 1 && !quad {
                throw EMError(.unsupported, file: file, at: "header field 'sensor layout'",
                              "raw (R64) frames with \(h.chips) chips in layout '\(h.layout)' are not supported (only 1x1 and 2x2)")
            }
            if quad {
                guard w % 4 == 0, w / 4 % 64 == 0 || d != 1 else {
                    throw EMError.bad(file, field: "width", "raw quad frame width \(h.width) is not 4 chips of whole 64-pixel words")
                }
                rows = 2 * h.height
                cols = w / 2
            } else {
                rows = h.height
                cols = w
            }
            guard (d != 1 || (quad ? cols / 2 : cols) % 64 == 0), (d != 6 || (quad ? cols / 2 : cols) % 8 == 0),
                  (d < 12 || (quad ? cols / 2 : cols) % 4 == 0) else {
                throw EMError.bad(file, field: "width", "raw frame width \(h.width) does not hold whole 64-bit words")
            }
            switch d {
            case 1: payloadBytes = rows * cols / 8; outputType = .uint8
            case 6: payloadBytes = rows * cols; outputType = .uint8
            case 12: payloadBytes = rows * cols * 2; outputType = .uint16
            default: payloadBytes = rows * cols * 4; outputType = .uint32
            }
        } else {
            self.depth = depth ?? 0
            rows = h.height
            cols = h.width
            let bpp = h.format.bytesPerPixel!
            payloadBytes = rows * cols * bpp
            switch h.format {
            case .u1, .u8: outputType = .uint8
            case .u16: outputType = .uint16
            case .u32: outputType = .uint32
            default: outputType = .uint64
            }
        }
    }

    var needsScratch: Bool { format == .r64 }

    /// Decodes in place (processed formats: byte swap) or from `payload` into `out` (raw).
    func decode(payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        switch format {
        case .u1, .u8:
            break
        case .u16: byteSwapInPlace(out, componentSize: 2)
        case .u32: byteSwapInPlace(out, componentSize: 4)
        case .u64: byteSwapInPlace(out, componentSize: 8)
        case .r64:
            if depth == 24 {
                decodeRaw24(payload, out)
            } else {
                decodeRaw(payload, out, depth: depth, combine: false)
            }
        }
    }

    /// Raw 24-bit: the first half is the high 12 bits, the second the low 12 bits, each a 12-bit
    /// raw readout of the whole frame.
    private func decodeRaw24(_ payload: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer) {
        let half = payload.count / 2
        let n = rows * cols
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: n * 2, alignment: 16)
        defer { tmp.deallocate() }
        let o = out.baseAddress!.assumingMemoryBound(to: UInt32.self)
        let t = tmp.baseAddress!.assumingMemoryBound(to: UInt16.self)
        decodeRawAs12(UnsafeRawBufferPointer(rebasing: payload[0..<half]), tmp)
        for i in 0..<n { o[i] = UInt32(t[i]) << 12 }
        decodeRawAs12(UnsafeRawBufferPointer(rebasing: payload[half..<(2 * half)]), tmp)
        for i in 0..<n { o[i] |= UInt32(t[i]) }
    }

    private func decodeRawAs12(_ payload: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer) {
        decodeRaw(payload, out, depth: 12, combine: false)
    }

    /// Decodes 1/6/12-bit raw readouts: each chip row segment is unpacked with the word swap;
    /// quad frames take their four chips from one readout row (see formats.md).
    private func decodeRaw(_ payload: UnsafeRawBufferPointer, _ out: UnsafeMutableRawBufferPointer, depth: Int, combine: Bool) {
        let src = payload.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let bitsPerPixel = depth == 1 ? 1 : (depth == 6 ? 8 : 16)
        if !quad {
            let rowBytes = cols * bitsPerPixel / 8
            for r in 0..<rows {
                decodeSegment(src + r * rowBytes, out: out, outIndex: r * cols, count: cols, flip: false, bits: bitsPerPixel)
            }
            return
        }
        // Quad: output (2H, 2W'); readout row y holds [chip segments 3 | 2 | 1 | 0] of W' pixels;
        // the top half reads segments at 3 (left) and 2 (right); the bottom half, rows counted
        // from the bottom, reads segments 1 and 0 mirrored in x.
        let half = cols / 2
        let segBytes = half * bitsPerPixel / 8
        let rawRowBytes = 4 * segBytes
        let chipRows = rows / 2
        for y in 0..<rows {
            if y < chipRows {
                let base = src + y * rawRowBytes
                decodeSegment(base + 3 * segBytes, out: out, outIndex: y * cols, count: half, flip: false, bits: bitsPerPixel)
                decodeSegment(base + 2 * segBytes, out: out, outIndex: y * cols + half, count: half, flip: false, bits: bitsPerPixel)
            } else {
                let yy = rows - 1 - y
                let base = src + yy * rawRowBytes
                decodeSegment(base + 1 * segBytes, out: out, outIndex: y * cols, count: half, flip: true, bits: bitsPerPixel)
                decodeSegment(base, out: out, outIndex: y * cols + half, count: half, flip: true, bits: bitsPerPixel)
            }
        }
    }

    /// Unpacks `count` pixels of one chip row segment. Within each 64-bit word the pixel order is
    /// reversed (the word is stored big-endian); `flip` mirrors the segment in x.
    @inline(__always)
    private func decodeSegment(_ src: UnsafePointer<UInt8>, out: UnsafeMutableRawBufferPointer, outIndex: Int,
                               count: Int, flip: Bool, bits: Int) {
        switch bits {
        case 1:
            let o = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + outIndex
            for stripe in 0..<(count / 64) {
                for byte in 0..<8 {
                    let b = src[stripe * 8 + 7 - byte]
                    for bit in 0..<8 {
                        let x = stripe * 64 + byte * 8 + bit
                        o[flip ? count - 1 - x : x] = (b >> UInt8(bit)) & 1
                    }
                }
            }
        case 8:
            let o = out.baseAddress!.assumingMemoryBound(to: UInt8.self) + outIndex
            for i in 0..<count {
                let x = (i / 8) * 8 + 7 - (i % 8)
                o[flip ? count - 1 - x : x] = src[i]
            }
        default:
            let o = out.baseAddress!.assumingMemoryBound(to: UInt16.self) + outIndex
            for i in 0..<count {
                let x = (i / 4) * 4 + 3 - (i % 4)
                let v = UInt16(src[2 * i]) << 8 | UInt16(src[2 * i + 1])
                o[flip ? count - 1 - x : x] = v
            }
        }
    }
}
