import EMConvKit
import Foundation

/// A synthetic EMPAD acquisition: an `.xml` in the style of the EMPAD acquisition software and
/// the `.raw` it names (frames of 130 rows x 128 float32 little-endian; the last 2 rows are the
/// per-frame footer, which readers drop).
public struct EMPADSpec: Sendable {
    public enum XMLStyle: String, Sendable, CaseIterable {
        /// Software 0.51: `pix_x`/`pix_y` plus `scan_parameters` blocks.
        case v051
        /// Software 1.2.x: scan shape only in `scan_parameters mode="acquire"`.
        case v122
        /// No scan description: the shape comes from the raw name `scan_xN_yM.raw`.
        case fileNameOnly
    }

    public var scanX: Int
    public var scanY: Int
    public var style: XMLStyle = .v051
    /// Name of the raw file (default `scan_x<X>_y<Y>.raw`).
    public var rawName: String?
    public var writeRaw = true
    /// Frames actually written to the raw file (nil: scanX * scanY).
    public var rawFrames: Int?
    /// Extra bytes after the last frame (a raw size that is no whole number of frames).
    public var rawExtraBytes = 0
    public var seed: UInt64 = 7
    /// `exposure_time` and `post_exposure_time` of the xml (ms).
    public var exposureMs: Double = 1
    public var postExposureMs: Double = 0
    /// An image series of this many frames (`scan_parameters/series_count`) instead of a scan.
    public var seriesCount: Int?

    public static let storedRows = 130, rows = 128, cols = 128

    public init(scanX: Int, scanY: Int, style: XMLStyle = .v051) {
        self.scanX = scanX
        self.scanY = scanY
        self.style = style
    }

    public var resolvedRawName: String { rawName ?? (seriesCount.map { "series_\($0).raw" } ?? "scan_x\(scanX)_y\(scanY).raw") }
    public var frames: Int { seriesCount ?? scanX * scanY }
    public var frameStride: Int { Self.storedRows * Self.cols * 4 }

    /// Value of stored row `y` (0..<130; 128, 129 = footer) of frame `frame`: exact binary
    /// fractions, negative and positive, like background-subtracted EMPAD data.
    public func value(frame: Int, y: Int, x: Int) -> Float {
        let h = SplitMix64.mix(seed ^ UInt64(frame) &* 0x1000_0001 ^ UInt64(y) &* 0x10_0001 ^ UInt64(x) &* 0x101)
        if y >= Self.rows { return Float(UInt32(truncatingIfNeeded: h) % 65536) * 1024 } // footer: counters
        return Float(Int32(truncatingIfNeeded: h) % 200_000) / 64
    }

    /// Stored bytes of frame `frame` (130 x 128 float32 little-endian).
    public func storedFrame(_ frame: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(frameStride)
        for y in 0..<Self.storedRows {
            for x in 0..<Self.cols {
                let b = value(frame: frame, y: y, x: x).bitPattern.littleEndian
                withUnsafeBytes(of: b) { out += $0 }
            }
        }
        return out
    }

    /// What a reader must return for frame `frame`: 128 x 128 float32 native (little-endian).
    public func expectedFrame(_ frame: Int) -> [UInt8] {
        Array(storedFrame(frame).prefix(Self.rows * Self.cols * 4))
    }

    public func xml() -> String {
        let scanBlocks = """
        <scan_parameters mode="search"><scan_size>0.55</scan_size><scan_center_x>0.5</scan_center_x>\
        <scan_resolution_y>64</scan_resolution_y><scan_resolution_x>64</scan_resolution_x><scan_center_y>0.5</scan_center_y></scan_parameters>\
        <scan_parameters mode="acquire"><scan_size>0.55</scan_size><scan_center_x>0.5</scan_center_x>\
        <scan_resolution_y>\(scanY)</scan_resolution_y><scan_resolution_x>\(scanX)</scan_resolution_x><scan_center_y>0.5</scan_center_y></scan_parameters>
        """
        var s = "<root name=\"acquisition_1\"><timestamp timestamp=\"1559820600.164675\" isoformat=\"2019-06-06T13:30:00.164675\"/>"
        s += "<software_version>\(style == .v051 ? "0.51 211118" : "1.2.2  (2021-08-20)")</software_version>"
        if style == .v051, seriesCount == nil { s += "<type>scan</type><pix_x>\(scanX)</pix_x><pix_y>\(scanY)</pix_y>" }
        s += "<raw_file filename=\"\(resolvedRawName)\"/>"
        s += "<exposure_time>\(Self.number(exposureMs))</exposure_time><post_exposure_time>\(Self.number(postExposureMs))</post_exposure_time>"
        if let n = seriesCount {
            s += "<scan_parameters mode=\"acquire\"><series_count>\(n)</series_count></scan_parameters>"
        } else if style != .fileNameOnly {
            s += scanBlocks
        }
        s += "<iom_measurements><optics.get_cameralength>0.7225</optics.get_cameralength>"
        s += "<source.get_voltage>300000.0</source.get_voltage>"
        s += "<optics.get_full_scan_field_of_view>[4.5663426505682195e-06, 4.5663426505682195e-06]</optics.get_full_scan_field_of_view>"
        s += "<column.get_scanrotation>0.0</column.get_scanrotation>"
        s += "<calibrated_pixelsize>1.826537060227288e-10</calibrated_pixelsize></iom_measurements></root>\n"
        return s
    }
}

extension EMPADSpec {
    /// `1`, `0.5`: integers without a decimal point, as the acquisition software writes them.
    static func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
}

public struct EMPADGenerated: Sendable {
    public let spec: EMPADSpec
    public let xmlPath: String
    public let rawPath: String
}

public enum EMPADWriter {
    /// Writes `dir/<xmlName>` and the raw it names beside it.
    @discardableResult
    public static func write(_ spec: EMPADSpec, xml xmlPath: String) throws -> EMPADGenerated {
        let dir = (xmlPath as NSString).deletingLastPathComponent
        let rawPath = dir.isEmpty ? spec.resolvedRawName : dir + "/" + spec.resolvedRawName
        try Data(spec.xml().utf8).write(to: URL(fileURLWithPath: xmlPath))
        if spec.writeRaw {
            var data: [UInt8] = []
            let n = spec.rawFrames ?? spec.frames
            data.reserveCapacity(n * spec.frameStride + spec.rawExtraBytes)
            for i in 0..<n { data += spec.storedFrame(i) }
            data += [UInt8](repeating: 0x55, count: spec.rawExtraBytes)
            try Data(data).write(to: URL(fileURLWithPath: rawPath))
        }
        return EMPADGenerated(spec: spec, xmlPath: xmlPath, rawPath: rawPath)
    }
}

/// A headerless binary file with a JSON descriptor (`<file>.json`) for the generic raw reader.
public struct RawSpec: Sendable {
    /// NumPy notation: `<u2`, `>f4`, `uint8`, …
    public var dtype: String
    /// Shape, slowest first; the last `signalRank` dimensions form a frame.
    public var shape: [Int]
    public var signalRank = 2
    public var offset = 0
    public var frameHeader = 0
    public var frameFooter = 0
    public var writeDescriptor = true
    /// Optional axes (name, units, scale, offset) for the descriptor.
    public var axes: [(name: String, units: String, scale: Double, offset: Double)]?
    public var seed: UInt64 = 3

    public init(dtype: String, shape: [Int], signalRank: Int = 2) {
        self.dtype = dtype
        self.shape = shape
        self.signalRank = signalRank
    }

    public var type: (ElementType, ByteOrder) {
        guard let t = ElementType.parse(numpy: dtype) else { preconditionFailure("unknown dtype \(dtype)") }
        return t
    }
    public var frameElements: Int { shape.suffix(signalRank).reduce(1, *) }
    public var frames: Int { shape.dropLast(signalRank).reduce(1, *) }

    /// Native-order (little-endian) bytes of element `i` of frame `frame`.
    func nativeElement(frame: Int, index i: Int) -> [UInt8] {
        let (t, _) = type
        let h = SplitMix64.mix(seed &+ UInt64(frame) &* 0x1_0000_0001 &+ UInt64(i))
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        switch t {
        case .float32: return le(Float(Int32(truncatingIfNeeded: h) >> 8).bitPattern)
        case .float64: return le((Double(Int64(bitPattern: h) >> 11) / 1024).bitPattern)
        case .complex64: return le(Float(Int16(truncatingIfNeeded: h)).bitPattern) + le(Float(Int16(truncatingIfNeeded: h >> 16)).bitPattern)
        case .complex128: return le(Double(Int32(truncatingIfNeeded: h)).bitPattern) + le(Double(Int32(truncatingIfNeeded: h >> 32)).bitPattern)
        default: return (0..<t.size).map { UInt8(truncatingIfNeeded: h >> UInt64(8 * $0)) }
        }
    }

    /// What a reader must return for frame `frame` (native order, C order).
    public func expectedFrame(_ frame: Int) -> [UInt8] {
        (0..<frameElements).flatMap { nativeElement(frame: frame, index: $0) }
    }

    /// The bytes stored on disk for the frame (in the file's byte order).
    func storedFrame(_ frame: Int) -> [UInt8] {
        let (t, order) = type
        var b = expectedFrame(frame)
        if order == .big, t.componentSize > 1 {
            let c = t.componentSize
            for i in stride(from: 0, to: b.count, by: c) { b[i..<(i + c)].reverse() }
        }
        return b
    }

    public func descriptorJSON() -> String {
        var parts = ["\"dtype\": \"\(dtype)\"", "\"shape\": [\(shape.map(String.init).joined(separator: ", "))]",
                     "\"signal_rank\": \(signalRank)", "\"offset\": \(offset)", "\"frame_header\": \(frameHeader)",
                     "\"frame_footer\": \(frameFooter)"]
        if let axes {
            let a = axes.map { "{\"name\": \"\($0.name)\", \"units\": \"\($0.units)\", \"scale\": \($0.scale), \"offset\": \($0.offset)}" }
            parts.append("\"axes\": [\(a.joined(separator: ", "))]")
        }
        return "{\n  " + parts.joined(separator: ",\n  ") + "\n}\n"
    }
}

public struct RawGenerated: Sendable {
    public let spec: RawSpec
    public let dataPath: String
    public let descriptorPath: String?
}

public enum RawFixtureWriter {
    /// Writes `path` (offset bytes, then per frame: header, data, footer) and `path + ".json"`.
    @discardableResult
    public static func write(_ spec: RawSpec, to path: String) throws -> RawGenerated {
        var data = [UInt8](repeating: 0xAB, count: spec.offset)
        for f in 0..<spec.frames {
            data += [UInt8](repeating: 0xCD, count: spec.frameHeader)
            data += spec.storedFrame(f)
            data += [UInt8](repeating: 0xEF, count: spec.frameFooter)
        }
        try Data(data).write(to: URL(fileURLWithPath: path))
        var desc: String?
        if spec.writeDescriptor {
            desc = path + ".json"
            try Data(spec.descriptorJSON().utf8).write(to: URL(fileURLWithPath: desc!))
        }
        return RawGenerated(spec: spec, dataPath: path, descriptorPath: desc)
    }
}
