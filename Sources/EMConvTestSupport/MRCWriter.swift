import EMConvKit
import Foundation

/// What a generated MRC file holds.
public struct MRCSpec: Sendable {
    public enum Stamp: Sendable { case standard, zero }
    public enum Extended: Sendable {
        case none
        /// `bytes` of untyped filler (exttyp blank, or the given 4-character type), skipped by readers.
        case filler(bytes: Int, type: String)
        /// One FEI record per frame (FEI1: 768 bytes, FEI2: 888), `records` records in all.
        case fei(version: Int, records: Int)
    }

    public var nx: Int, ny: Int, nz: Int
    public var mode: Int
    public var bigEndian = false
    public var stamp: Stamp = .standard
    public var mapTag = true
    public var extended: Extended = .none
    /// Mode 0 with the IMOD stamp and no signed flag (unsigned bytes).
    public var imodUnsigned = false
    /// Cell lengths in Å (0 = none); pixel size = cell / (mx, my, mz) with m = n.
    public var cell: (Double, Double, Double) = (0, 0, 0)
    public var origin: (Double, Double, Double) = (0, 0, 0)
    public var ispg = 0
    /// FEI record fields.
    public var feiPixelSize = 2.5e-10
    public var feiScan: (Int, Int)? = nil
    public var seed = 1

    public init(nx: Int, ny: Int, nz: Int, mode: Int) {
        self.nx = nx; self.ny = ny; self.nz = nz; self.mode = mode
    }

    public var rowBytes: Int {
        switch mode {
        case 0: return nx
        case 1, 6, 12: return 2 * nx
        case 2, 3: return 4 * nx
        case 4: return 8 * nx
        default: return (nx + 1) / 2
        }
    }

    public var extendedBytes: Int {
        switch extended {
        case .none: return 0
        case let .filler(b, _): return b
        case let .fei(v, n): return n * (v >= 2 ? 888 : 768)
        }
    }

    public var dataOffset: Int { 1024 + extendedBytes }
}

/// Writes MRC files of every mode in either byte order, with FEI extended headers or skipped
/// filler, and returns the values the reader must deliver (native little-endian bytes of the
/// model type: float16 widened to float32, complex int16 to complex64, 4-bit to uint8).
public enum MRCWriter {
    /// Exactly representable float16 values and their float32 equivalents (normal, subnormal,
    /// signed zero, infinity, the largest finite).
    public static let halfTable: [(UInt16, Float)] = [
        (0x3C00, 1.0), (0xC000, -2.0), (0x3555, 0.333251953125), (0x0001, 5.9604644775390625e-08),
        (0x7BFF, 65504.0), (0xFC00, -.infinity), (0x0000, 0.0), (0x8000, -0.0), (0x3800, 0.5),
        (0x4248, 3.140625), (0x03FF, 6.0975551605224609375e-05),
    ]

    public struct Written: Sendable {
        public let path: String
        /// Expected model values, frame after frame.
        public let expected: [UInt8]
        public let frameBytes: Int
    }

    static func k(_ s: MRCSpec, _ f: Int, _ y: Int, _ x: Int) -> Int { (f * 131 + y * 17 + x * 3 + s.seed * 7) & 0x7FFF_FFFF }

    @discardableResult
    public static func write(_ s: MRCSpec, to path: String) throws -> Written {
        var out = header(s)
        out += extendedHeader(s)
        var expected: [UInt8] = []
        func put16(_ v: UInt16, _ a: inout [UInt8]) { let w = s.bigEndian ? v.byteSwapped : v; a += [UInt8(w & 0xFF), UInt8(w >> 8)] }
        func put32(_ v: UInt32, _ a: inout [UInt8]) {
            let w = s.bigEndian ? v.byteSwapped : v
            a += [UInt8(w & 0xFF), UInt8((w >> 8) & 0xFF), UInt8((w >> 16) & 0xFF), UInt8(w >> 24)]
        }
        func le32(_ v: UInt32) { expected += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
        for f in 0..<s.nz {
            for y in 0..<s.ny {
                var row: [UInt8] = []
                for x in 0..<s.nx {
                    let k = k(s, f, y, x)
                    switch s.mode {
                    case 0:
                        let b = UInt8(truncatingIfNeeded: k)
                        row.append(b); expected.append(b)
                    case 1:
                        let v = Int16(truncatingIfNeeded: k * 7 - 3000)
                        put16(UInt16(bitPattern: v), &row); expected += [UInt8(UInt16(bitPattern: v) & 0xFF), UInt8(UInt16(bitPattern: v) >> 8)]
                    case 2:
                        let v = Float(k % 4096) * 0.25 - 10
                        put32(v.bitPattern, &row); le32(v.bitPattern)
                    case 3:
                        let re = Int16(truncatingIfNeeded: k % 30000), im = Int16(truncatingIfNeeded: -(k % 20000))
                        put16(UInt16(bitPattern: re), &row); put16(UInt16(bitPattern: im), &row)
                        le32(Float(re).bitPattern); le32(Float(im).bitPattern)
                    case 4:
                        let re = Float(k % 1000) * 0.5, im = -Float(k % 777) * 1.5
                        put32(re.bitPattern, &row); put32(im.bitPattern, &row)
                        le32(re.bitPattern); le32(im.bitPattern)
                    case 6:
                        let v = UInt16(truncatingIfNeeded: k * 13)
                        put16(v, &row); expected += [UInt8(v & 0xFF), UInt8(v >> 8)]
                    case 12:
                        let (h, fl) = halfTable[k % halfTable.count]
                        put16(h, &row); le32(fl.bitPattern)
                    case 101:
                        let v = UInt8(k % 16)
                        if x % 2 == 0 { row.append(v) } else { row[row.count - 1] |= v << 4 }
                        expected.append(v)
                    default:
                        throw EMError(.usage, "MRCWriter: mode \(s.mode) not generated")
                    }
                }
                precondition(row.count == s.rowBytes)
                out += row
            }
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
        let modelSize: Int
        switch s.mode {
        case 0, 101: modelSize = 1
        case 1, 6: modelSize = 2
        case 2, 12: modelSize = 4
        default: modelSize = 8
        }
        return Written(path: path, expected: expected, frameBytes: s.nx * s.ny * modelSize)
    }

    static func header(_ s: MRCSpec) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 1024)
        func i(_ o: Int, _ v: Int) {
            let u = UInt32(bitPattern: Int32(v))
            let w = s.bigEndian ? u.byteSwapped : u
            for b in 0..<4 { h[o + b] = UInt8((w >> (8 * UInt32(b))) & 0xFF) }
        }
        func f(_ o: Int, _ v: Double) { i(o, Int(Int32(bitPattern: Float(v).bitPattern))) }
        i(0, s.nx); i(4, s.ny); i(8, s.nz); i(12, s.mode)
        i(28, s.nx); i(32, s.ny); i(36, s.nz)
        f(40, s.cell.0); f(44, s.cell.1); f(48, s.cell.2)
        f(52, 90); f(56, 90); f(60, 90)
        i(64, 1); i(68, 2); i(72, 3)
        i(88, s.ispg); i(92, s.extendedBytes)
        switch s.extended {
        case let .fei(v, _):
            let t: [UInt8] = Array((v >= 2 ? "FEI2" : "FEI1").utf8)
            for n in 0..<4 { h[104 + n] = t[n] }
        case let .filler(_, type):
            let t: [UInt8] = Array(type.utf8.prefix(4))
            for n in t.indices { h[104 + n] = t[n] }
        case .none: break
        }
        if s.mapTag { i(108, 20140) }
        if s.imodUnsigned { i(152, 1_146_047_817); i(156, 0) }
        f(196, s.origin.0); f(200, s.origin.1); f(204, s.origin.2)
        if s.mapTag { for (n, c) in "MAP ".utf8.enumerated() { h[208 + n] = c } }
        if s.stamp == .standard {
            let st: [UInt8] = s.bigEndian ? [0x11, 0x11, 0, 0] : [0x44, 0x44, 0, 0]
            for n in 0..<4 { h[212 + n] = st[n] }
        }
        i(220, 1)
        for (n, c) in "emconv MRCWriter test fixture".utf8.enumerated() { h[224 + n] = c }
        return h
    }

    /// FEI records: little-endian, packed; the fields emconv maps, with their bitmask bits set.
    static func extendedHeader(_ s: MRCSpec) -> [UInt8] {
        switch s.extended {
        case .none: return []
        case let .filler(b, _): return (0..<b).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
        case let .fei(version, records):
            let size = version >= 2 ? 888 : 768
            var all: [UInt8] = []
            for r in 0..<records {
                var rec = [UInt8](repeating: 0, count: size)
                func i32(_ o: Int, _ v: Int) { for b in 0..<4 { rec[o + b] = UInt8((UInt32(bitPattern: Int32(v)) >> (8 * UInt32(b))) & 0xFF) } }
                func f64(_ o: Int, _ v: Double) { for b in 0..<8 { rec[o + b] = UInt8((v.bitPattern >> (8 * UInt64(b))) & 0xFF) } }
                func str(_ o: Int, _ v: String) { for (n, c) in v.utf8.prefix(16).enumerated() { rec[o + n] = c } }
                i32(0, size); i32(4, version)
                // Bitmask 1: microscope type (1), application (3), version (4), HT (5), pixel size X/Y (14, 15), magnification (31).
                let mask1: UInt32 = 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 14 | 1 << 15 | 1 << 31
                i32(8, Int(Int32(bitPattern: mask1)))
                str(20, "Talos"); str(52, "Velox"); str(68, "3.9.0")
                f64(84, 200_000); f64(156, s.feiPixelSize); f64(164, s.feiPixelSize)
                f64(289, 1_000_000)
                // Bitmask 2: camera length (0), camera name (19).
                i32(297, 1 << 0 | 1 << 19)
                f64(301, 0.145); str(435, "EMPAD-\(r)")
                // Bitmask 3: STEM detector name (7), dwell time (15), frame time (16), scan size (17-20).
                let mask3: Int = 1 << 7 | 1 << 15 | 1 << 16 | 1 << 17 | 1 << 18 | 1 << 19 | 1 << 20
                i32(490, mask3)
                str(519, "HAADF"); f64(571, 1e-6); f64(579, 0.5)
                if let (sy, sx) = s.feiScan { i32(587, 0); i32(591, 0); i32(595, sx); i32(599, sy) }
                all += rec
            }
            return all
        }
    }
}

/// Streams a large 4D-STEM MRC (Velox-export style: mode 6, one FEI2 record whose scan size
/// gives the scan shape) in bounded memory: per frame a bright disc that shifts and dims with
/// the scan position, and sparse single counts elsewhere.
public enum MRCBenchWriter {
    public struct Report: Sendable {
        public var path: String
        public var bytes: Int64
        public var frames: Int
        public var seconds: Double
    }

    public static func write(path: String, scanY: Int, scanX: Int, det: Int = 256, discRadius: Int = 25,
                             seed: UInt64 = 2024, progress: ((Int, Int) -> Void)? = nil) throws -> Report {
        guard scanX > 0, scanY > 0, det > 2 * discRadius + 8 else { throw EMError(.usage, at: "--scan", "scan shape and detector size must be positive") }
        let start = Date()
        var spec = MRCSpec(nx: det, ny: det, nz: scanX * scanY, mode: 6)
        spec.extended = .fei(version: 2, records: 1)
        spec.feiScan = (scanY, scanX)
        spec.feiPixelSize = 1e-9
        let head = MRCWriter.header(spec) + MRCWriter.extendedHeader(spec)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw EMError(.writeError, file: path, "cannot create (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        func put(_ p: UnsafeRawPointer, _ n: Int) throws {
            var off = 0
            while off < n {
                let w = posixWrite(fd, p + off, n - off)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw EMError(.writeError, file: path, "write failed (\(String(cString: strerror(errno))))")
                }
                off += w
            }
        }
        try head.withUnsafeBytes { try put($0.baseAddress!, $0.count) }
        var disc: [(Int, Int)] = []
        for dy in -discRadius...discRadius {
            for dx in -discRadius...discRadius where dy * dy + dx * dx <= discRadius * discRadius { disc.append((dy, dx)) }
        }
        let frameBytes = det * det * 2
        let batch = max(1, (8 << 20) / frameBytes)
        var buf = [UInt16](repeating: 0, count: batch * det * det)
        var rng = SplitMix64(seed: seed)
        let frames = scanX * scanY
        var f = 0
        var written = Int64(head.count)
        while f < frames {
            let n = min(batch, frames - f)
            buf.withUnsafeMutableBufferPointer { px in
                for k in 0..<n {
                    let frame = f + k, base = k * det * det
                    for i in 0..<(det * det) { px[base + i] = 0 }
                    let sy = frame / scanX, sx = frame % scanX
                    let cy = det / 2 + (sx / 5) % 5 - 2, cx = det / 2 + (sy / 6) % 5 - 2
                    let scale = UInt64(160 + 96 * sin(Double(sy) * 0.11 + Double(sx) * 0.07))
                    for (dy, dx) in disc {
                        let r1 = rng.next(), r2 = rng.next()
                        let counts = UInt64(r1.nonzeroBitCount + (r2 & (r2 >> 13)).nonzeroBitCount)
                        px[base + (cy + dy) * det + cx + dx] = UInt16((counts * scale) >> 8).littleEndian
                    }
                    var i = Int(rng.next() % 100)
                    while i < det * det {
                        let r = rng.next()
                        px[base + i] = UInt16(1 + (r >> 40) % 3).littleEndian
                        i += 1 + Int(r % 199)
                    }
                }
            }
            try buf.withUnsafeBytes { try put($0.baseAddress!, n * frameBytes) }
            written += Int64(n * frameBytes)
            f += n
            progress?(f, frames)
        }
        return Report(path: path, bytes: written, frames: frames, seconds: Date().timeIntervalSince(start))
    }
}
