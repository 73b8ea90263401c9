import EMConvKit
import Foundation

/// Describes a synthetic Quantum Detectors Merlin acquisition: frame geometry, pixel format,
/// counter depth, `.hdr` keys, time stamps, series split and damage (a cut last frame).
///
/// The raw (R64) encoding written here is derived from the layout documented in LiberTEM's
/// `mib.py` (facts only, no code): a raw row is a sequence of 64-bit words, each holding
/// 64 / s pixels (s = 1, 8, 16 storage bits for counter depths 1, 6, 12) packed from the
/// least-significant end (pixel 0 in the lowest bits) and stored big-endian. A 24-bit frame is
/// two 12-bit readouts, most significant 12 bits first. A quad (2x2) readout row y of chip rows
/// H holds four chip segments [s0 | s1 | s2 | s3]: s3 is the top-left quadrant row y, s2 the
/// top-right row y, s1 the bottom-left row 2H-1-y mirrored in x, s0 the bottom-right row
/// 2H-1-y mirrored in x.
public struct MIBSpec: Sendable {
    public enum PixelFormat: String, Sendable, CaseIterable { case u08 = "U08", u16 = "U16", u32 = "U32", r64 = "R64" }

    public var quad: Bool
    public var format: PixelFormat
    /// Counter depth in bits: 1, 6, 12 or 24.
    public var depth: Int
    /// Rows of the assembled frame (single chip: the ROI rows; quad: both chip rows). Raw quad: even.
    public var rows: Int
    /// Pixels per chip row (Medipix3: 256).
    public var chipWidth: Int = 256
    /// Complete frames in the acquisition (over all files of a series).
    public var frames: Int
    /// Header bytes per frame (field 3); nil: 384 single, 768 quad (Merlin's values).
    public var headerBytes: Int?
    public var writeHdr = true
    public var mq1a = true
    public var framesPerTrigger = 1
    /// `.hdr` "Frames in Acquisition"; nil: `frames`.
    public var framesInAcquisition: Int?
    /// Optional `.hdr` ScanX / ScanY keys.
    public var scanX: Int?
    public var scanY: Int?
    /// Start of frame 1 in ns since 1970 (UTC); default 2021-04-15T13:44:43.100924481Z.
    public var startNanoseconds: Int64 = 1_618_494_283_100_924_481
    /// Offset of the local-time field (field 10) from UTC.
    public var utcOffsetSeconds = 3600
    public var exposureNanoseconds: Int64 = 1_000_000
    /// Time from one frame to the next within a scan line.
    public var frameIntervalNanoseconds: Int64 = 1_100_000
    /// With a line length, the first frame of every line comes `flybackNanoseconds` later.
    public var flybackLineLength: Int?
    public var flybackNanoseconds: Int64 = 7_000_000
    /// Extra time added to frame i (jitter), for the inference tests.
    public var frameTimeOffsetsNanoseconds: [Int64] = []
    public var firstSequence = 1
    /// Frames per file of a series (`name_0001.mib`, …); nil: one file. Sums to `frames`.
    public var seriesFrames: [Int]?
    /// Bytes of an incomplete extra frame appended to the (last) file: an interrupted write.
    public var partialFrameBytes = 0
    /// Seed of the pixel values.
    public var seed: UInt64 = 1
    public var thresholdsKeV: [Double] = [2, 511, 0, 0, 0, 0, 0, 0]
    public var softwareVersion = "0.77"
    /// Pixel content: hash noise over the whole range (tests), or a diffraction-like bright
    /// disc with sparse background counts (fixtures, demos).
    public var pattern: Pattern = .noise

    public enum Pattern: String, Sendable { case noise, diffraction }

    public init(quad: Bool = false, format: PixelFormat = .u16, depth: Int = 12, rows: Int = 256, frames: Int = 1) {
        self.quad = quad
        self.format = format
        self.depth = depth
        self.rows = rows
        self.frames = frames
    }

    // MARK: geometry

    public var cols: Int { quad ? 2 * chipWidth : chipWidth }
    public var chips: Int { quad ? 4 : 1 }
    public var resolvedHeaderBytes: Int { headerBytes ?? (quad ? 768 : 384) }

    /// Element type the reader must return.
    public var elementType: ElementType {
        switch format {
        case .u08: return .uint8
        case .u16: return .uint16
        case .u32: return .uint32
        case .r64: return depth <= 6 ? .uint8 : (depth == 12 ? .uint16 : .uint32)
        }
    }

    /// Largest value a pixel may hold (counter depth, limited by the container).
    public var maxValue: UInt32 {
        let bits = format == .r64 ? depth : min(depth, elementType.size * 8)
        return bits >= 32 ? UInt32.max : (UInt32(1) << UInt32(bits)) - 1
    }

    /// Width and height fields of the frame header.
    public var headerWidthHeight: (Int, Int) {
        if format == .r64 {
            let w = quad ? 4 * chipWidth : chipWidth
            return (depth == 24 ? 2 * w : w, quad ? rows / 2 : rows)
        }
        return (cols, rows)
    }

    /// Bytes of one frame's pixels on disk.
    public var payloadBytes: Int {
        let n = rows * cols
        switch format {
        case .u08: return n
        case .u16: return 2 * n
        case .u32: return 4 * n
        case .r64:
            switch depth {
            case 1: return n / 8
            case 6: return n
            case 12: return 2 * n
            default: return 4 * n
            }
        }
    }

    public var frameStride: Int { resolvedHeaderBytes + payloadBytes }

    // MARK: values

    /// Ground-truth value of pixel (y, x) of frame `frame` (assembled, on-disk row order).
    /// Deterministic, spread over the whole range, with zeros and the maximum present.
    public func value(frame: Int, y: Int, x: Int) -> UInt32 {
        var h = seed &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(frame) &* 0xBF58_476D_1CE4_E5B9
        h ^= UInt64(y) &* 0x94D0_49BB_1331_11EB
        h ^= UInt64(x) &* 0xD6E8_FEB8_6659_FD93
        h = SplitMix64.mix(h)
        let m = maxValue
        if pattern == .diffraction {
            // Disc of radius ~1/5 of the frame, wandering by a few pixels with the frame number.
            let r = max(2, min(rows, cols) / 5)
            let cy = rows / 2 + (frame * 3) % 5 - 2, cx = cols / 2 + (frame * 7) % 5 - 2
            let dy = y - cy, dx = x - cx
            if dy * dy + dx * dx <= r * r {
                let base = min(UInt64(m), m > 255 ? 40 : UInt64(m / 2 + 1))
                return UInt32(min(UInt64(m), base / 2 + h % (base + 1)))
            }
            return h % 61 == 0 ? UInt32(min(UInt64(m), 1 + (h >> 32) % 3)) : 0
        }
        switch h & 15 {
        case 0: return 0
        case 1: return m
        default: return UInt32(truncatingIfNeeded: h >> 20) & m
        }
    }

    /// The values of one frame, row-major.
    public func frameValues(_ frame: Int) -> [UInt32] {
        var v = [UInt32](repeating: 0, count: rows * cols)
        for y in 0..<rows { for x in 0..<cols { v[y * cols + x] = value(frame: frame, y: y, x: x) } }
        return v
    }

    /// What the reader must return for frame `frame`: native little-endian values of
    /// ``elementType``, C order, on-disk row order.
    public func expectedFrame(_ frame: Int) -> [UInt8] {
        let v = frameValues(frame)
        let size = elementType.size
        var out = [UInt8](repeating: 0, count: v.count * size)
        for (i, x) in v.enumerated() {
            for b in 0..<size { out[i * size + b] = UInt8(truncatingIfNeeded: x >> UInt32(8 * b)) }
        }
        return out
    }

    // MARK: encoding

    /// On-disk pixel bytes of a frame with the given values (row-major, `rows` x `cols`).
    public func encodePayload(_ v: [UInt32]) -> [UInt8] {
        precondition(v.count == rows * cols)
        var out: [UInt8] = []
        out.reserveCapacity(payloadBytes)
        switch format {
        case .u08: for x in v { out.append(UInt8(truncatingIfNeeded: x)) }
        case .u16: for x in v { out.append(UInt8(truncatingIfNeeded: x >> 8)); out.append(UInt8(truncatingIfNeeded: x)) }
        case .u32: for x in v { for s in [24, 16, 8, 0] as [UInt32] { out.append(UInt8(truncatingIfNeeded: x >> s)) } }
        case .r64:
            if depth == 24 {
                out += encodeRawReadout(v.map { ($0 >> 12) & 0xFFF }, depth: 12)
                out += encodeRawReadout(v.map { $0 & 0xFFF }, depth: 12)
            } else {
                out += encodeRawReadout(v, depth: depth)
            }
        }
        precondition(out.count == payloadBytes)
        return out
    }

    /// One raw readout (1, 6 or 12 bits) of the assembled frame `v`.
    func encodeRawReadout(_ v: [UInt32], depth d: Int) -> [UInt8] {
        var out: [UInt8] = []
        if !quad {
            for y in 0..<rows {
                MIBRawCodec.appendRow(v[(y * cols)..<((y + 1) * cols)], depth: d, to: &out)
            }
            return out
        }
        let h = rows / 2, w = chipWidth
        for y in 0..<h {
            let top = y * cols, bottom = (2 * h - 1 - y) * cols
            // s0: bottom-right mirrored; s1: bottom-left mirrored; s2: top-right; s3: top-left.
            MIBRawCodec.appendRow(Array(v[(bottom + w)..<(bottom + 2 * w)].reversed())[...], depth: d, to: &out)
            MIBRawCodec.appendRow(Array(v[bottom..<(bottom + w)].reversed())[...], depth: d, to: &out)
            MIBRawCodec.appendRow(v[(top + w)..<(top + 2 * w)], depth: d, to: &out)
            MIBRawCodec.appendRow(v[top..<(top + w)], depth: d, to: &out)
        }
        return out
    }

    // MARK: headers

    /// Time of frame `i` (0-based) in ns since 1970, UTC.
    public func frameTime(_ i: Int) -> Int64 {
        var t = startNanoseconds + Int64(i) * frameIntervalNanoseconds
        if let w = flybackLineLength, w > 0 { t += Int64(i / w) * flybackNanoseconds }
        if i < frameTimeOffsetsNanoseconds.count { t += frameTimeOffsetsNanoseconds[i] }
        return t
    }

    /// The ASCII frame header of frame `i` (0-based), NUL-padded to the header size.
    public func header(frame i: Int) -> [UInt8] {
        let hb = resolvedHeaderBytes
        let (w, h) = headerWidthHeight
        let t = frameTime(i)
        var f: [String] = [
            "MQ1", pad(firstSequence + i, 6), pad(hb, 5), pad(chips, 2), pad(w, 4), pad(h, 4), format.rawValue,
            quad ? "   2x2" : "   1x1", quad ? "0F" : "01",
            MIBTime.local(t, offsetSeconds: utcOffsetSeconds),
            String(format: "%.6f", Double(exposureNanoseconds) * 1e-9), "0", "0", "0",
        ]
        f += thresholdsKeV.prefix(8).map(MIBTime.merlinExp)
        for _ in 0..<chips {
            f += ["3RX", "011", "511", "000", "000", "000", "000", "000", "000", "175", "010", "200", "125", "100", "100",
                  "093", "100", "099", "030", "128", "004", "255", "140", "128", "191", "179", "511", "511"]
        }
        if mq1a { f += ["MQ1A", MIBTime.iso(t), "\(exposureNanoseconds)ns", "\(depth)"] }
        var bytes = Array((f.joined(separator: ",") + ",").utf8)
        precondition(bytes.count <= hb, "frame header text (\(bytes.count) bytes) longer than header size \(hb)")
        bytes += [UInt8](repeating: 0, count: hb - bytes.count)
        return bytes
    }

    private func pad(_ v: Int, _ n: Int) -> String {
        let s = String(v)
        return s.count >= n ? s : String(repeating: "0", count: n - s.count) + s
    }

    /// The `.hdr` acquisition header (CRLF lines, padded with spaces to 2048 bytes like Merlin's).
    public func hdrText() -> [UInt8] {
        let dacs = Array(repeating: "011,511,000,000,000,000,000,000,175,010,200,125,100,100,093,100,099,030,128,004,255,140,128,191,179,511,511", count: chips)
        var lines: [String] = [
            "HDR,\t",
            "Time and Date Stamp (day, mnth, yr, hr, min, s):\t\(MIBTime.hdrStamp(startNanoseconds, offsetSeconds: utcOffsetSeconds))",
            "Chip ID:\t\(quad ? "W556_B4,W556_J2,W556_M5,W556_G4" : "W559_G11, - , - , - ")",
            "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX):\tMedipix 3RX",
            "Assembly Size (NX1, 2X2):\t\(quad ? "   2x2" : "   1x1")",
            "Chip Mode  (SPM, CSM, CM, CSCM):\tSPM",
            "Counter Depth (number):\t\(depth)",
            "Gain:\tSLGM",
            "Active Counters:\tCounter 0",
            "Thresholds (keV):\t" + thresholdsKeV.map(MIBTime.merlinExp).joined(separator: ","),
            "DACs:\t" + dacs.joined(separator: "; "),
            "bpc File:\tc:\\Merlin_Quad_Config\\default\\Default_SPM.bpc",
            "DAC File:\tc:\\Merlin_Quad_Config\\default\\Default_SPM.dacs",
            "Gap Fill Mode:\tNone",
            "Flat Field File:\tNone",
            "Dead Time File:\tDummy (C:\\<NUL>\\)",
            "Acquisition Type (Normal, Th_scan, Config):\tNormal",
            "Frames in Acquisition (Number):\t\(framesInAcquisition ?? frames)",
            "Frames per Trigger (Number):\t\(framesPerTrigger)",
            "Trigger Start (Positive, Negative, Internal):\tRising Edge",
            "Trigger Stop (Positive, Negative, Internal):\tInternal",
            "Sensor Bias (V):\t120 V",
            "Sensor Polarity (Positive, Negative):\tPositive",
            "Temperature (C):\tBoard Temp 43.884327 Deg C",
            "Humidity (%):\tBoard Humidity 14.500183 ",
            "Medipix Clock (MHz):\t180MHz",
            "Readout System:\tMerlin Quad",
            "Software Version:\t\(softwareVersion)",
        ]
        if let x = scanX { lines.append("ScanX:\t\(x)") }
        if let y = scanY { lines.append("ScanY:\t\(y)") }
        lines.append("End\t")
        var b = Array(lines.joined(separator: "\r\n").utf8)
        if b.count < 2048 { b += [UInt8](repeating: 0x20, count: 2048 - b.count) }
        return b
    }

    /// Header + payload of frame `i`.
    public func frameBytes(_ i: Int) -> [UInt8] {
        header(frame: i) + encodePayload(frameValues(i))
    }
}

/// Paths and ground truth of a written acquisition.
public struct MIBGenerated: Sendable {
    public let spec: MIBSpec
    /// The `.mib` files in sequence order.
    public let mibPaths: [String]
    public let hdrPath: String?
    public var primary: String { mibPaths[0] }
    public func expectedFrame(_ i: Int) -> [UInt8] { spec.expectedFrame(i) }
}

/// Writes Merlin `.mib` (+ `.hdr`) files from a ``MIBSpec``.
public enum MIBWriter {
    /// Writes the acquisition. `path` is `dir/name.mib`; a series becomes `dir/name_0001.mib`, …
    /// with `dir/name.hdr`.
    @discardableResult
    public static func write(_ spec: MIBSpec, to path: String) throws -> MIBGenerated {
        let dir = (path as NSString).deletingLastPathComponent
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        func inDir(_ n: String) -> String { dir.isEmpty ? n : dir + "/" + n }
        let split = spec.seriesFrames ?? [spec.frames]
        precondition(split.reduce(0, +) == spec.frames, "seriesFrames must sum to frames")
        var paths: [String] = []
        var frame = 0
        for (k, n) in split.enumerated() {
            let p = spec.seriesFrames == nil ? path : inDir(stem + "_" + String(format: "%04d", k + 1) + ".mib")
            var data: [UInt8] = []
            data.reserveCapacity(n * spec.frameStride + spec.partialFrameBytes)
            for _ in 0..<n {
                data += spec.frameBytes(frame)
                frame += 1
            }
            if k == split.count - 1, spec.partialFrameBytes > 0 {
                data += spec.frameBytes(frame).prefix(spec.partialFrameBytes)
            }
            try Data(data).write(to: URL(fileURLWithPath: p))
            paths.append(p)
        }
        var hdr: String?
        if spec.writeHdr {
            let h = inDir(stem + ".hdr")
            try Data(spec.hdrText()).write(to: URL(fileURLWithPath: h))
            hdr = h
        }
        return MIBGenerated(spec: spec, mibPaths: paths, hdrPath: hdr)
    }
}

/// Raw (R64) row packing: 64-bit words, pixels from the least-significant end, stored big-endian.
public enum MIBRawCodec {
    /// Storage bits per pixel of a raw counter depth.
    public static func storageBits(_ depth: Int) -> Int { depth == 1 ? 1 : (depth == 6 ? 8 : 16) }

    public static func appendRow(_ row: ArraySlice<UInt32>, depth: Int, to out: inout [UInt8]) {
        let s = storageBits(depth)
        let perWord = 64 / s
        precondition(row.count % perWord == 0, "raw row of \(row.count) pixels is not whole 64-bit words")
        let mask: UInt64 = s == 64 ? ~0 : (UInt64(1) << UInt64(s)) - 1
        var i = row.startIndex
        while i < row.endIndex {
            var word: UInt64 = 0
            for j in 0..<perWord { word |= (UInt64(row[i + j]) & mask) << UInt64(j * s) }
            for b in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(b))) }
            i += perWord
        }
    }
}

/// Deterministic mixing (SplitMix64 finalizer) and a fast generator for synthetic content.
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }
}

/// Time formatting of Merlin headers, without locale or time-zone database dependence.
public enum MIBTime {
    /// (year, month, day, hour, minute, second, nanosecond) of `ns` since 1970 plus `offset` seconds.
    static func civil(_ ns: Int64, offsetSeconds: Int) -> (Int, Int, Int, Int, Int, Int, Int) {
        let total = ns + Int64(offsetSeconds) * 1_000_000_000
        var secs = total / 1_000_000_000
        var nano = total % 1_000_000_000
        if nano < 0 { nano += 1_000_000_000; secs -= 1 }
        var days = secs / 86400
        var rem = secs % 86400
        if rem < 0 { rem += 86400; days -= 1 }
        // Days to civil date (proleptic Gregorian), Howard Hinnant's algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d), Int(rem / 3600), Int(rem % 3600 / 60), Int(rem % 60), Int(nano))
    }

    /// `2021-04-15 14:44:43.100924` (local time, microseconds).
    public static func local(_ ns: Int64, offsetSeconds: Int) -> String {
        let (y, mo, d, h, mi, s, n) = civil(ns, offsetSeconds: offsetSeconds)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d.%06d", y, mo, d, h, mi, s, n / 1000)
    }

    /// `2021-04-15T13:44:43.100924481Z` (UTC, nanoseconds).
    public static func iso(_ ns: Int64) -> String {
        let (y, mo, d, h, mi, s, n) = civil(ns, offsetSeconds: 0)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", y, mo, d, h, mi, s, n)
    }

    /// `.hdr` stamp `15/04/2021 14:44:41` (local).
    public static func hdrStamp(_ ns: Int64, offsetSeconds: Int) -> String {
        let (y, mo, d, h, mi, s, _) = civil(ns, offsetSeconds: offsetSeconds)
        return String(format: "%02d/%02d/%04d %02d:%02d:%02d", d, mo, y, h, mi, s)
    }

    /// Merlin's exponent notation: `2.000000E+0`, `5.110000E+2`.
    public static func merlinExp(_ v: Double) -> String {
        if v == 0 { return "0.000000E+0" }
        var e = Int(floor(log10(abs(v))))
        var m = v / pow(10, Double(e))
        if abs(m) >= 9.9999995 { m /= 10; e += 1 }
        return String(format: "%.6f", m) + "E" + (e < 0 ? "-" : "+") + String(abs(e))
    }
}
