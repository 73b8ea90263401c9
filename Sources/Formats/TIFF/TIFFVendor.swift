import EMCore
import Foundation

/// Pixel calibration of the two image axes, and where it came from.
struct ImageCalibration {
    var xScale: Double, yScale: Double
    var xOffset = 0.0, yOffset = 0.0
    var xUnits: String, yUnits: String
    var source: String
}

/// What the vendor tags of a TIFF say: calibration, normalized metadata, the original tree.
struct TIFFVendorInfo {
    var calibration: ImageCalibration?
    var metadata = NormalizedMetadata()
    var original: [(String, MetaValue)] = []
    /// Vendor flavours found ("FEI/TFS", "TVIPS", …), for `info`.
    var flavours: [String] = []
    var warnings: [String] = []
}

enum TIFFVendor {
    static let feiTag: UInt16 = 34682, feiTag2: UInt16 = 34680, zeissTag: UInt16 = 34118, tvipsTag: UInt16 = 37706
    static let sisTag: UInt16 = 33560, sisIniTag: UInt16 = 33471

    /// ASCII unit names as NeXus expects them (`µm` → `um`, `micrometer` → `um`).
    static func asciiUnits(_ u: String) -> String {
        let t = u.trimmingCharacters(in: .whitespaces)
        switch t {
        case "µm", "μm", "micrometer", "micron", "microns": return "um"
        case "Å", "angstrom", "Angstrom": return "angstrom"
        case "nanometer": return "nm"
        case "meter", "metre", "meters": return "m"
        case "millimeter": return "mm"
        case "1/µm", "1/μm": return "1/um"
        default: return t.replacingOccurrences(of: "µ", with: "u").replacingOccurrences(of: "μ", with: "u")
        }
    }

    static func read(_ r: TIFFTagReader, _ e: [UInt16: TIFFTagReader.Entry]) -> TIFFVendorInfo {
        var info = TIFFVendorInfo()
        if let txt = jeolText(beside: r.file.path) { jeol(txt, into: &info) }
        if let t = e[feiTag] ?? e[feiTag2], let text = r.string(t) { fei(text, into: &info) }
        if let t = e[zeissTag], let text = r.string(t) { zeiss(text, into: &info) }
        if let t = e[tvipsTag] { tvips(r, t, into: &info) }
        if e[65009] != nil || e[65003] != nil { dmExport(r, e, into: &info) }
        if let t = e[sisTag] { olympusSIS(r, t, into: &info) }
        if let t = e[sisIniTag], let text = r.string(t) { info.original.append(("olympus_ini", .string(text))) }
        return info
    }

    // MARK: FEI / Thermo Fisher (xT, Helios, Quanta): INI text in tag 34682

    static func parseINI(_ text: String) -> [(String, [(String, String)])] {
        var out: [(String, [(String, String)])] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), line.hasSuffix("]") { out.append((String(line.dropFirst().dropLast()), [])); continue }
            guard let eq = line.firstIndex(of: "="), !out.isEmpty else { continue }
            out[out.count - 1].1.append((String(line[..<eq]).trimmingCharacters(in: .whitespaces), String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)))
        }
        return out
    }

    static func fei(_ text: String, into info: inout TIFFVendorInfo) {
        let ini = parseINI(text)
        guard !ini.isEmpty else { return }
        func v(_ s: String, _ k: String) -> String? { ini.first { $0.0 == s }?.1.first { $0.0 == k }?.1 }
        func d(_ s: String, _ k: String) -> Double? { v(s, k).flatMap { Double($0) } }
        info.flavours.append("FEI/TFS (tag 34682)")
        info.original.append(("fei_metadata", .object(ini.map { ($0.0, .object($0.1.map { ($0.0, .string($0.1)) })) })))
        if let px = d("Scan", "PixelWidth") ?? d("EScan", "PixelWidth"), px > 0 {
            let py = d("Scan", "PixelHeight") ?? d("EScan", "PixelHeight") ?? px
            info.calibration = ImageCalibration(xScale: px, yScale: py, xUnits: "m", yUnits: "m", source: "FEI [Scan] PixelWidth/PixelHeight")
        }
        var md = info.metadata
        if let hv = d("Beam", "HV") ?? d("EBeam", "HV") { md.beamEnergy = Quantity(hv, "V") }
        if let dw = d("Scan", "Dwelltime") ?? d("EScan", "Dwell") { md.dwellTime = Quantity(dw, "s") }
        if let c = d("EBeam", "BeamCurrent") ?? d("Beam", "BeamCurrent") { md.probeCurrent = Quantity(c, "A") }
        if let det = v("Detectors", "Name") { md.detectorName = det }
        if let mode = v("Detectors", "Mode") { md.detectorMode = mode }
        if let sys = v("System", "SystemType") ?? v("System", "Type") { md.instrumentModel = sys }
        if let sw = v("System", "Software") { md.softwareName = "xT"; md.softwareVersion = sw }
        if let sn = v("System", "Dnumber") { md.instrumentSerialNumber = sn }
        md.instrumentVendor = "FEI"
        md.derived.insert("instrument_vendor")
        if let date = v("User", "Date"), let time = v("User", "Time") {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(secondsFromGMT: 0)
            f.dateFormat = "MM/dd/yyyy hh:mm:ss a"
            if let dt = f.date(from: "\(date) \(time)") { md.startTime = Timestamp(date: dt, utcOffsetSeconds: nil, raw: "\(date) \(time)") }
        }
        if let wd = d("Stage", "WorkingDistance") { md.extra["working_distance"] = "\(fmt(wd)) m" }
        info.metadata = md
    }

    // MARK: Zeiss SEM (SmartSEM): tag 34118, lines "AP_NAME" followed by "Label = value unit"

    static func zeiss(_ text: String, into info: inout TIFFVendorInfo) {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        var pairs: [(String, String)] = []
        var i = 0
        while i + 1 < lines.count {
            let key = lines[i]
            if (key.hasPrefix("AP_") || key.hasPrefix("DP_") || key.hasPrefix("SV_")), let eq = lines[i + 1].range(of: " = ") ?? lines[i + 1].range(of: "=") {
                pairs.append((key, String(lines[i + 1][eq.upperBound...]).trimmingCharacters(in: .whitespaces)))
                i += 2
            } else {
                i += 1
            }
        }
        guard !pairs.isEmpty else { return }
        info.flavours.append("Zeiss SEM (tag 34118)")
        info.original.append(("zeiss_sem", .object(pairs.map { ($0.0, .string($0.1)) })))
        func v(_ k: String) -> String? { pairs.first { $0.0 == k }?.1 }
        func q(_ k: String) -> (Double, String)? {
            guard let s = v(k) else { return nil }
            let parts = s.split(separator: " ", maxSplits: 1).map(String.init)
            guard let x = Double(parts[0]) else { return nil }
            return (x, parts.count > 1 ? parts[1] : "")
        }
        if let (px, u) = q("AP_PIXEL_SIZE"), px > 0 {
            let units = asciiUnits(u.isEmpty ? "nm" : u)
            info.calibration = ImageCalibration(xScale: px, yScale: px, xUnits: units, yUnits: units, source: "Zeiss AP_PIXEL_SIZE")
        }
        if let (kv, u) = q("AP_ACTUALKV") ?? q("AP_MANUALKV") { info.metadata.beamEnergy = Quantity(kv, u.isEmpty ? "kV" : u) }
        if let (m, u) = q("AP_MAG") { info.metadata.magnification = u.uppercased().hasPrefix("K") ? m * 1000 : m }
        if let det = v("DP_DETECTOR_CHANNEL") ?? v("DP_DETECTOR_TYPE") { info.metadata.detectorName = det }
        if let (c, u) = q("AP_IPROBE") { info.metadata.probeCurrent = Quantity(c, u.isEmpty ? "A" : u) }
        if let (wd, u) = q("AP_WD") { info.metadata.extra["working_distance"] = "\(fmt(wd)) \(u)" }
        info.metadata.instrumentVendor = "Carl Zeiss"
        info.metadata.derived.insert("instrument_vendor")
        if let sv = v("SV_VERSION") { info.metadata.softwareName = "SmartSEM"; info.metadata.softwareVersion = sv }
    }

    // MARK: TVIPS (EM-MENU): tag 37706 points to a 244-byte version-1 header, then version 2 fields

    static func tvips(_ r: TIFFTagReader, _ e: TIFFTagReader.Entry, into info: inout TIFFVendorInfo) {
        guard let b = r.pointedBytes(e, length: 244), b.count >= 244 else { return }
        let le = !r.bigEndian
        func i32(_ o: Int, _ bb: [UInt8]) -> Int32 { Int32(bitPattern: UInt32(TIFFTagReader.uint(bb, o, 4, !le))) }
        func f32(_ o: Int, _ bb: [UInt8]) -> Double { Double(Float(bitPattern: UInt32(TIFFTagReader.uint(bb, o, 4, !le)))) }
        let version = i32(0, b)
        info.flavours.append("TVIPS (tag 37706, version \(version))")
        var pairs: [(String, MetaValue)] = [("Version", .int(Int64(version))), ("HighTension", .int(Int64(i32(84, b)))),
                                            ("Magnification", .int(Int64(i32(96, b))))]
        if version >= 2, let all = r.pointedBytes(e, length: 244 + 6068), all.count >= 244 + 6068 {
            let v2 = 244
            let px = f32(v2 + 2724, all), py = f32(v2 + 2728, all)
            let ht = f32(v2 + 3028, all), mag = f32(v2 + 3292, all), exp = f32(v2 + 3708, all)
            let binX = i32(v2 + 3700, all), binY = i32(v2 + 3704, all)
            func utf16(_ o: Int, _ n: Int) -> String {
                var u: [UInt16] = []
                for k in stride(from: o, to: o + n, by: 2) {
                    let c = UInt16(TIFFTagReader.uint(all, k, 2, !le))
                    if c == 0 { break }
                    u.append(c)
                }
                return String(decoding: u, as: UTF16.self)
            }
            let camera = utf16(v2 + 3524, 160), tem = utf16(v2 + 2868, 160)
            pairs += [("PixelSizeX", .double(px)), ("PixelSizeY", .double(py)), ("TemHighTension", .double(ht)),
                      ("TemMagnification", .double(mag)), ("ExposureTime", .double(exp)), ("BinningX", .int(Int64(binX))),
                      ("BinningY", .int(Int64(binY))), ("CameraType", .string(camera)), ("TemType", .string(tem))]
            if px > 0, py > 0 {
                info.calibration = ImageCalibration(xScale: px, yScale: py, xUnits: "nm", yUnits: "nm", source: "TVIPS PixelSizeX/PixelSizeY (nm)")
            }
            if ht > 0 { info.metadata.beamEnergy = Quantity(ht, "V") }
            if mag > 0 { info.metadata.magnification = mag }
            if exp > 0 { info.metadata.exposureTime = Quantity(exp, "ms") }
            if !camera.isEmpty { info.metadata.detectorName = camera }
            if !tem.isEmpty { info.metadata.instrumentName = tem }
            info.metadata.softwareName = "EM-MENU"
        }
        info.original.append(("tvips", .object(pairs)))
    }

    // MARK: DigitalMicrograph export: tags 65003… (units, origins, scales)

    static func dmExport(_ r: TIFFTagReader, _ e: [UInt16: TIFFTagReader.Entry], into info: inout TIFFVendorInfo) {
        func n(_ t: UInt16) -> Double? { e[t].flatMap { r.numbers($0)?.first } }
        func s(_ t: UInt16) -> String? { e[t].flatMap { r.string($0) } }
        var pairs: [(String, MetaValue)] = []
        for t in e.keys.sorted() where t >= 65000 && t < 65027 {
            if let str = s(t), e[t]!.type == 2 { pairs.append(("tag_\(t)", .string(str))) } else if let x = n(t) { pairs.append(("tag_\(t)", .double(x))) }
        }
        info.flavours.append("DigitalMicrograph export (tags 65003-65026)")
        info.original.append(("dm_tiff_tags", .object(pairs)))
        if let sx = n(65009), sx != 0, let sy = n(65010), sy != 0 {
            info.calibration = ImageCalibration(xScale: sx, yScale: sy, xOffset: n(65006) ?? 0, yOffset: n(65007) ?? 0,
                                                xUnits: asciiUnits(s(65003) ?? ""), yUnits: asciiUnits(s(65004) ?? ""),
                                                source: "DigitalMicrograph tags 65009/65010 (scale), 65006/65007 (origin), 65003/65004 (units)")
        }
        info.metadata.softwareName = "DigitalMicrograph"
    }

    // MARK: Olympus SIS: tag 33560 points to a structure "SIS0"

    static func olympusSIS(_ r: TIFFTagReader, _ e: TIFFTagReader.Entry, into info: inout TIFFVendorInfo) {
        guard let head = r.pointedBytes(e, length: 60), Array(head[0..<4]) == Array("SIS0".utf8) else { return }
        func u(_ b: [UInt8], _ o: Int, _ n: Int) -> UInt64 { TIFFTagReader.uint(b, o, n, false) }
        let name = String(decoding: head[22..<54].prefix { $0 != 0 }, as: UTF8.self)
        let tagCount = Int(Int16(bitPattern: UInt16(u(head, 54, 2))))
        info.flavours.append("Olympus SIS (tag 33560)")
        var pairs: [(String, MetaValue)] = [("name", .string(name))]
        guard tagCount > 0, tagCount < 256, let base = r.numbers(e)?.first, e.count == 1,
              let list = try? r.file.read(at: Int64(base) + 60, count: 8 * tagCount, what: "Olympus SIS tags") else {
            info.original.append(("olympus_sis", .object(pairs)))
            return
        }
        for k in 0..<tagCount {
            let type = Int16(bitPattern: UInt16(u(list, k * 8, 2)))
            let off = Int64(u(list, k * 8 + 4, 4))
            guard type == 1, off > 0, off + 112 <= r.file.size, let g = try? r.file.read(at: off, count: 112, what: "Olympus SIS data") else { continue }
            let lenexp = Int16(bitPattern: UInt16(u(g, 10, 2)))
            let xcal = Double(bitPattern: u(g, 12, 8)), ycal = Double(bitPattern: u(g, 20, 8))
            let mag = Double(bitPattern: u(g, 36, 8))
            let camera = String(decoding: g[46..<80].prefix { $0 != 0 }, as: UTF8.self)
            let m = pow(10, Double(lenexp))
            pairs += [("pixel_size_x_m", .double(xcal * m)), ("pixel_size_y_m", .double(ycal * m)), ("magnification", .double(mag)), ("camera", .string(camera))]
            if xcal > 0, ycal > 0, xcal.isFinite {
                info.calibration = ImageCalibration(xScale: xcal * m * 1e9, yScale: ycal * m * 1e9, xUnits: "nm", yUnits: "nm", source: "Olympus SIS pixel size")
            }
            if mag > 0, mag.isFinite { info.metadata.magnification = mag }
            if !camera.isEmpty { info.metadata.detectorName = camera }
        }
        info.original.append(("olympus_sis", .object(pairs)))
    }

    // MARK: JEOL SEM (SightX and earlier): a text file beside the TIFF, same stem, ".txt"

    /// The JEOL metadata text beside `tiff` (lines `$KEY value`, with `$CM_LABEL JEOL` or
    /// `$SEM_DATA_VERSION`), when there is one.
    static func jeolText(beside tiff: String) -> String? {
        let stem = (tiff as NSString).deletingPathExtension
        for ext in ["txt", "TXT"] {
            let p = stem + "." + ext
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: p), let size = attrs[.size] as? NSNumber,
                  size.intValue < 1 << 20, let d = FileManager.default.contents(atPath: p) else { continue }
            let text = String(decoding: d, as: UTF8.self)
            if text.contains("$CM_LABEL JEOL") || text.contains("$SEM_DATA_VERSION") { return p }
        }
        return nil
    }

    /// `10um` / `500 nm` → (10, "um").
    static func lengthWithUnit(_ s: String) -> (Double, String)? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard let end = t.firstIndex(where: { !($0.isNumber || $0 == "." || $0 == "-" || $0 == "+" || $0 == "e" || $0 == "E") }) else { return nil }
        guard let v = Double(t[..<end]) else { return nil }
        return (v, asciiUnits(String(t[end...]).trimmingCharacters(in: .whitespaces)))
    }

    static func jeol(_ path: String, into info: inout TIFFVendorInfo) {
        guard let d = FileManager.default.contents(atPath: path) else { return }
        var pairs: [(String, String)] = []
        for raw in String(decoding: d, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("$") else { continue }
            let parts = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
            pairs.append((parts[0], parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""))
        }
        guard !pairs.isEmpty else { return }
        func v(_ k: String) -> String? { pairs.first { $0.0 == k }?.1 }
        info.flavours.append("JEOL SEM (\((path as NSString).lastPathComponent))")
        info.original.append(("jeol_sem", .object(pairs.map { ($0.0, .string($0.1)) })))
        if let bar = v("SM_MICRON_BAR").flatMap({ Double($0) }), bar > 0, let (len, u) = v("SM_MICRON_MARKER").flatMap(lengthWithUnit), len > 0, !u.isEmpty {
            info.calibration = ImageCalibration(xScale: len / bar, yScale: len / bar, xUnits: u, yUnits: u,
                                                source: "JEOL SM_MICRON_MARKER / SM_MICRON_BAR")
        }
        if let kv = v("CM_ACCEL_VOLT").flatMap({ Double($0) }) ?? v("CM_ACCEL_VOLTAGE").flatMap({ Double($0) }) { info.metadata.beamEnergy = Quantity(kv, "kV") }
        if let m = v("CM_MAG").flatMap({ Double($0) }) { info.metadata.magnification = m }
        if let i = v("CM_INSTRUMENT") { info.metadata.instrumentModel = i }
        if let wd = v("SM_WD") { info.metadata.extra["working_distance"] = wd + " mm" }
        if let det = v("CM_SIGNAL") { info.metadata.detectorName = det }
        info.metadata.instrumentVendor = "JEOL"
        info.metadata.derived.insert("instrument_vendor")
    }

    // MARK: ImageJ ImageDescription

    /// `key=value` lines of an ImageJ description (nil when it is not one).
    static func imageJ(_ description: String?) -> [String: String]? {
        guard let d = description, d.hasPrefix("ImageJ=") else { return nil }
        var out: [String: String] = [:]
        for line in d.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }
}
