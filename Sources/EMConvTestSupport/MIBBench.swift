import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams a large, realistic 4D-STEM Merlin acquisition to disk in bounded memory: per frame a
/// bright central disc (Poisson-like counts, shifting and dimming with the scan position) and
/// sparse low counts elsewhere, from a fast deterministic generator. Frames are built in a
/// reusable batch buffer (a few MiB) and written with `write(2)`.
public enum MIBBenchWriter {
    public struct Report: Sendable {
        public var path: String
        public var hdrPath: String
        public var bytes: Int64
        public var frames: Int
        public var seconds: Double
    }

    /// - Parameters:
    ///   - scanY, scanX: navigation shape (frames per trigger = scanX in the .hdr).
    ///   - det: 256 (single chip) or 512 (quad 2x2, processed).
    ///   - depth: counter depth 1/6 (U08), 12 (U16) or 24 (U32).
    ///   - discRadius: radius of the bright disc in pixels.
    public static func write(path: String, scanY: Int, scanX: Int, det: Int = 256, depth: Int = 12,
                             discRadius: Int = 25, seed: UInt64 = 2024,
                             progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        guard det == 256 || det == 512 else { throw EMError(.usage, at: "--det", "det must be 256 (single chip) or 512 (quad)") }
        let format: MIBSpec.PixelFormat
        switch depth {
        case 1, 6: format = .u08
        case 12: format = .u16
        case 24: format = .u32
        default: throw EMError(.usage, at: "--depth", "counter depth must be 1, 6, 12 or 24")
        }
        guard scanX > 0, scanY > 0 else { throw EMError(.usage, at: "--scan", "scan shape must be positive") }
        let frames = scanX * scanY
        var spec = MIBSpec(quad: det == 512, format: format, depth: depth, rows: det, frames: frames)
        spec.framesPerTrigger = scanX
        spec.flybackLineLength = scanX
        spec.seed = seed
        let start = Date()

        let hb = spec.resolvedHeaderBytes
        let bpp = spec.elementType.size
        let frameBytes = det * det * bpp
        let stride = hb + frameBytes
        let batch = max(1, (8 << 20) / stride)
        // Two batch buffers: one is filled while the other is written (on a serial queue).
        let bufs = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: batch * stride, alignment: 64) }
        let free = (0..<2).map { _ in DispatchSemaphore(value: 1) }
        let writer = DispatchQueue(label: "emconv-fixtures.bench-writer")
        final class WriteError: @unchecked Sendable { var error: EMError? }
        let writeError = WriteError()
        defer {
            writer.sync {}
            for b in bufs { b.deallocate() }
        }

        // Disc pixel offsets (relative to the centre), computed once.
        var disc: [(Int, Int)] = []
        for dy in -discRadius...discRadius {
            for dx in -discRadius...discRadius where dy * dy + dx * dx <= discRadius * discRadius { disc.append((dy, dx)) }
        }
        let maxValue = UInt64(spec.maxValue)

        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw EMError(.writeError, file: path, "cannot create (\(String(cString: strerror(errno))))") }
        defer { writer.sync {}; close(fd) }
        var rng = SplitMix64(seed: seed)
        var written: Int64 = 0
        var f = 0
        var turn = 0
        while f < frames {
            let n = min(batch, frames - f)
            let slot = turn % 2
            turn += 1
            free[slot].wait()
            if let e = writeError.error { throw e }
            let buf = bufs[slot]
            for k in 0..<n {
                let frame = f + k
                let base = buf.baseAddress! + k * stride
                let h = spec.header(frame: frame)
                h.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: hb) }
                let px = base + hb
                memset(px, 0, frameBytes)
                let sy = frame / scanX, sx = frame % scanX
                // Scan-position dependent disc shift (a few pixels) and intensity (a "sample").
                let cy = det / 2 + Int((Double(sx) * 0.21).rounded(.down)) % 5 - 2
                let cx = det / 2 + Int((Double(sy) * 0.17).rounded(.down)) % 5 - 2
                let phase = Double(sy) * 0.11 + Double(sx) * 0.07
                let scale = UInt64(160 + 96 * sin(phase))  // /256
                func put(_ i: Int, _ v: UInt64) {
                    let c = min(v, maxValue)
                    switch bpp {
                    case 1: px.storeBytes(of: UInt8(c), toByteOffset: i, as: UInt8.self)
                    case 2: px.storeBytes(of: UInt16(c).bigEndian, toByteOffset: 2 * i, as: UInt16.self)
                    default: px.storeBytes(of: UInt32(c).bigEndian, toByteOffset: 4 * i, as: UInt32.self)
                    }
                }
                for (dy, dx) in disc {
                    let r1 = rng.next(), r2 = rng.next()
                    // Poisson-like: mean ~48, variance ~28, then the sample's transmission.
                    let counts = UInt64((r1.nonzeroBitCount + (r2 & (r2 >> 13)).nonzeroBitCount))
                    let v: UInt64 = depth == 1 ? (r1 & 7 != 0 ? 1 : 0) : (depth == 6 ? (counts * scale) >> 10 : (counts * scale) >> 8)
                    put((cy + dy) * det + (cx + dx), v)
                }
                // Sparse background: about one pixel in 100 with 1-3 counts.
                var i = Int(rng.next() % 100)
                let total = det * det
                while i < total {
                    let r = rng.next()
                    put(i, 1 + (r >> 40) % 3)
                    i += 1 + Int(r % 199)
                }
            }
            let bytes = n * stride
            let sem = free[slot]
            let out = SendablePointer(p: UnsafeRawPointer(buf.baseAddress!))
            writer.async {
                defer { sem.signal() }
                guard writeError.error == nil else { return }
                var off = 0
                while off < bytes {
                    let w = posixWrite(fd, out.p + off, bytes - off)
                    if w < 0 {
                        if errno == EINTR { continue }
                        writeError.error = EMError(.writeError, file: path, "write failed (\(String(cString: strerror(errno))))")
                        return
                    }
                    off += w
                }
            }
            written += Int64(bytes)
            f += n
            progress?(f, frames)
        }
        writer.sync {}
        if let e = writeError.error { throw e }
        let hdr = (path as NSString).deletingPathExtension + ".hdr"
        try Data(spec.hdrText()).write(to: URL(fileURLWithPath: hdr))
        return Report(path: path, hdrPath: hdr, bytes: written, frames: frames, seconds: Date().timeIntervalSince(start))
    }
}

/// `write(2)` under a name that the writer enums' own `write` methods do not shadow.
@inline(__always)
func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}

struct SendablePointer: @unchecked Sendable { let p: UnsafeRawPointer }
