import EMCore
import Foundation

/// One record of a Thermo Fisher (FEI) extended header, `exttyp` FEI1 (768 bytes, metadata
/// version 0/1) or FEI2 (888 bytes and more, version 2): one record per frame, little-endian,
/// fields packed without padding. Each field is valid only when its bit in the preceding
/// bitmask is set (bit n of bitmask 1 ↔ the n-th field after it, the 48-byte unused range
/// counting as six fields).
struct FEIRecord: Sendable {
    var size: Int
    var version: Int
    var fields: [(String, MetaValue)]
    var ht: Double?
    var pixelSize: (Double, Double)?
    var magnification: Double?
    var cameraLength: Double?
    var dwellTime: Double?
    var frameTime: Double?
    var integrationTime: Double?
    var microscope: String?
    var application: String?
    var applicationVersion: String?
    var cameraName: String?
    var stemDetector: String?
    /// Scan area (left, top, right, bottom) in scan pixels.
    var scanArea: (Int, Int, Int, Int)?
    var scanRotation: Double?
    var timestampDays: Double?

    /// Width × height of the scan area when stated, (rows, columns).
    var scanShape: [Int]? {
        guard let a = scanArea else { return nil }
        let w = a.2 - a.0, h = a.3 - a.1
        return w > 0 && h > 0 ? [h, w] : nil
    }

    enum Kind { case f8, i4, u4, i8, b1, s(Int) }

    /// Field layout: name, type, and which bitmask bit says it is valid (mask index 1…4, bit).
    static let layout: [(String, Kind, Int, Int)] = {
        var out: [(String, Kind, Int, Int)] = []
        var mask = 0, bit = 0
        func add(_ n: String, _ k: Kind, bits: Int = 1) { out.append((n, k, mask, bit)); bit += bits }
        func newMask(_ n: String) { out.append((n, .u4, 0, 0)); mask += 1; bit = 0 }
        out.append(("Metadata size", .i4, 0, 0))
        out.append(("Metadata version", .i4, 0, 0))
        newMask("Bitmask 1")
        add("Timestamp", .f8); add("Microscope type", .s(16)); add("D-Number", .s(16)); add("Application", .s(16))
        add("Application version", .s(16)); add("HT", .f8); add("Dose", .f8); add("Alpha tilt", .f8); add("Beta tilt", .f8)
        add("X-Stage", .f8); add("Y-Stage", .f8); add("Z-Stage", .f8); add("Tilt axis angle", .f8)
        add("Dual axis rotation", .f8); add("Pixel size X", .f8); add("Pixel size Y", .f8)
        out.append(("", .s(48), -1, 0)); bit += 6
        add("Defocus", .f8); add("STEM Defocus", .f8); add("Applied defocus", .f8); add("Instrument mode", .i4)
        add("Projection mode", .i4); add("Objective lens mode", .s(16)); add("High magnification mode", .s(16))
        add("Probe mode", .i4); add("EFTEM On", .b1); add("Magnification", .f8)
        newMask("Bitmask 2")
        add("Camera length", .f8); add("Spot index", .i4); add("Illuminated area", .f8); add("Intensity", .f8)
        add("Convergence angle", .f8); add("Illumination mode", .s(16)); add("Wide convergence angle range", .b1)
        add("Slit inserted", .b1); add("Slit width", .f8); add("Acceleration voltage offset", .f8)
        add("Drift tube voltage", .f8); add("Energy shift", .f8); add("Shift offset X", .f8); add("Shift offset Y", .f8)
        add("Shift X", .f8); add("Shift Y", .f8); add("Integration time", .f8); add("Binning Width", .i4)
        add("Binning Height", .i4); add("Camera name", .s(16)); add("Readout area left", .i4); add("Readout area top", .i4)
        add("Readout area right", .i4); add("Readout area bottom", .i4); add("Ceta noise reduction", .b1)
        add("Ceta frames summed", .i4); add("Direct detector electron counting", .b1); add("Direct detector align frames", .b1)
        for i in 0..<4 { add("Camera param reserved \(i)", .i4) }
        newMask("Bitmask 3")
        for i in 4..<10 { add("Camera param reserved \(i)", .i4) }
        add("Phase Plate", .b1); add("STEM Detector name", .s(16)); add("Gain", .f8); add("Offset", .f8)
        for i in 0..<5 { add("STEM param reserved \(i)", .i4) }
        add("Dwell time", .f8); add("Frame time", .f8); add("Scan size left", .i4); add("Scan size top", .i4)
        add("Scan size right", .i4); add("Scan size bottom", .i4); add("Full scan FOV X", .f8); add("Full scan FOV Y", .f8)
        add("Element", .s(16)); add("Energy interval lower", .f8); add("Energy interval higher", .f8); add("Method", .i4)
        add("Is dose fraction", .b1); add("Fraction number", .i4); add("Start frame", .i4); add("End frame", .i4)
        add("Input stack filename", .s(80))
        newMask("Bitmask 4")
        add("Alpha tilt min", .f8); add("Alpha tilt max", .f8)
        // FEI2 (metadata version 2) continues here; bitmask 4 covers these too.
        add("Scan rotation", .f8); add("Diffraction pattern rotation", .f8); add("Image rotation", .f8)
        add("Scan mode enumeration", .i4); add("Acquisition time stamp", .i8); add("Detector commercial name", .s(16))
        add("Start tilt angle", .f8); add("End tilt angle", .f8); add("Tilt per image", .f8); add("Tilt speed", .f8)
        add("Beam center X pixel", .i4); add("Beam center Y pixel", .i4); add("CFEG flash timestamp", .i8)
        add("Phase plate position index", .i4); add("Objective aperture name", .s(16))
        return out
    }()

    static func width(_ k: Kind) -> Int {
        switch k {
        case .f8, .i8: return 8
        case .i4, .u4: return 4
        case .b1: return 1
        case let .s(n): return n
        }
    }

    /// Decodes a record; fields past the record's stated size are absent.
    static func parse(_ b: [UInt8]) -> FEIRecord? {
        guard b.count >= 12 else { return nil }
        func u32(_ o: Int) -> UInt32 { UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24 }
        func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
        let size = Int(Int32(bitPattern: u32(0)))
        guard size >= 12, size <= b.count else { return nil }
        var r = FEIRecord(size: size, version: Int(Int32(bitPattern: u32(4))), fields: [])
        var masks = [UInt32](repeating: 0, count: 5)
        var off = 0
        var maskIndex = 0
        var numbers: [String: Double] = [:]
        var strings: [String: String] = [:]
        for (name, kind, mask, bit) in layout {
            let w = width(kind)
            guard off + w <= size else { break }
            defer { off += w }
            if name.hasPrefix("Bitmask") {
                maskIndex += 1
                masks[maskIndex] = u32(off)
                r.fields.append((name, .uint(UInt64(masks[maskIndex]))))
                continue
            }
            if name.isEmpty { continue }
            if mask > 0, masks[mask] & (1 << UInt32(bit)) == 0 { continue }
            let v: MetaValue
            switch kind {
            case .f8:
                let d = Double(bitPattern: u64(off))
                guard d.isFinite else { continue }
                v = .double(d); numbers[name] = d
            case .i4:
                let i = Int32(bitPattern: u32(off)); v = .int(Int64(i)); numbers[name] = Double(i)
            case .u4: v = .uint(UInt64(u32(off)))
            case .i8: v = .int(Int64(bitPattern: u64(off)))
            case .b1: v = .bool(b[off] != 0)
            case let .s(n):
                let s = String(decoding: b[off..<(off + n)].prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
                guard !s.isEmpty, s.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) else { continue }
                v = .string(s); strings[name] = s
            }
            r.fields.append((name, v))
        }
        r.ht = numbers["HT"].flatMap { $0 > 0 ? $0 : nil }
        if let x = numbers["Pixel size X"], let y = numbers["Pixel size Y"], x > 0, y > 0 { r.pixelSize = (x, y) }
        r.magnification = numbers["Magnification"].flatMap { $0 > 0 ? $0 : nil }
        r.cameraLength = numbers["Camera length"].flatMap { $0 > 0 ? $0 : nil }
        r.dwellTime = numbers["Dwell time"].flatMap { $0 > 0 ? $0 : nil }
        r.frameTime = numbers["Frame time"].flatMap { $0 > 0 ? $0 : nil }
        r.integrationTime = numbers["Integration time"].flatMap { $0 > 0 ? $0 : nil }
        r.scanRotation = numbers["Scan rotation"]
        r.timestampDays = numbers["Timestamp"]
        r.microscope = strings["Microscope type"]
        r.application = strings["Application"]
        r.applicationVersion = strings["Application version"]
        r.cameraName = strings["Camera name"]
        r.stemDetector = strings["STEM Detector name"]
        if let l = numbers["Scan size left"], let t = numbers["Scan size top"], let rr = numbers["Scan size right"],
           let bb = numbers["Scan size bottom"] {
            r.scanArea = (Int(l), Int(t), Int(rr), Int(bb))
        }
        return r
    }

    var metaValue: MetaValue { .object(fields) }
}
