import EMCore
import Foundation

/// Direct Electron (DE-Server) acquisitions: a movie MRC with `<id>_info.txt` (one `key = value`
/// per line: camera, scan and calibration settings) and, for custom/ROI scans,
/// `<id>_scan_coordinates.csv` (one `x,y` scan position per frame, in acquisition order).
struct DEInfo: Sendable {
    let path: String
    /// Keys in file order.
    let entries: [(String, String)]
    let unparsedLines: Int

    static let maxBytes: Int64 = 16 << 20

    subscript(_ key: String) -> String? { entries.first { $0.0 == key }?.1 }

    func double(_ key: String) -> Double? { self[key].flatMap { Double($0) } }
    func int(_ key: String) -> Int? { self[key].flatMap { Int($0) } }

    /// `<prefix>_info.txt` for the longest `_`-separated prefix of the MRC's name that has one.
    static func find(for mrc: String) -> String? {
        prefixes(of: mrc).lazy.map { $0 + "_info.txt" }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// `dir/a_b_c` → [`dir/a_b_c`, `dir/a_b`, `dir/a`].
    static func prefixes(of mrc: String) -> [String] {
        let stem = (mrc as NSString).deletingPathExtension
        let dir = (stem as NSString).deletingLastPathComponent
        let parts = (stem as NSString).lastPathComponent.components(separatedBy: "_")
        return (1...parts.count).reversed().map { n in
            let name = parts.prefix(n).joined(separator: "_")
            return dir.isEmpty ? name : dir + "/" + name
        }
    }

    static func read(_ path: String) throws -> DEInfo {
        let f = try RandomAccessFile(path: path)
        guard f.size <= maxBytes else {
            throw EMError.bad(path, offset: 0, "\(f.size) bytes is too large for a Direct Electron _info.txt (limit \(maxBytes))")
        }
        let bytes = try f.read(at: 0, count: Int(f.size), what: "_info.txt")
        if bytes.contains(0) { throw EMError.bad(path, offset: Int64(bytes.firstIndex(of: 0)!), "not a text file (NUL byte)") }
        var entries: [(String, String)] = []
        var unparsed = 0
        for line in String(decoding: bytes, as: UTF8.self).split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            guard let eq = line.firstIndex(of: "=") else {
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { unparsed += 1 }
                continue
            }
            let k = line[..<eq].trimmingCharacters(in: .whitespaces)
            let v = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if k.isEmpty { unparsed += 1; continue }
            entries.append((k, v))
        }
        return DEInfo(path: path, entries: entries, unparsedLines: unparsed)
    }

    /// At least one key only DE-Server writes (a stray `name_info.txt` of another program is not used).
    var looksLikeDE: Bool {
        let keys = ["Server Software Version", "Camera Model", "Scan - Enable", "Frames Per Second", "Autosave Movie Frames Written"]
        return entries.contains { keys.contains($0.0) }
    }

    var scanEnabled: Bool { self["Scan - Enable"] == "Enable" }

    /// Raster scans have a grid; other scan types (and random ROI subsampling) visit positions
    /// listed in the coordinates file.
    var isRaster: Bool {
        (self["Scan - Type"] ?? "Raster") == "Raster" && self["Scan - ROI Subsampling Is Random"] != "Enable"
    }

    /// Navigation shape of a raster scan: (repeats,) y, x — from the ROI when enabled.
    var rasterShape: [Int]? {
        guard scanEnabled else { return nil }
        let roi = self["Scan - ROI Enable"] == "Enable"
        guard let x = int(roi ? "Scan - ROI Size X" : "Scan - Size X"), let y = int(roi ? "Scan - ROI Size Y" : "Scan - Size Y"),
              x > 0, y > 0 else { return nil }
        if let r = int("Scan - Repeats"), r > 1 { return [r, y, x] }
        return [y, x]
    }

    func apply(to md: inout NormalizedMetadata) {
        if let v = double("Instrument Accelerating Voltage (V)"), v > 0 { md.beamEnergy = Quantity(v, "V") }
        if let m = double("Instrument Project Magnification"), m > 0 { md.magnification = m }
        if let c = double("Instrument Project Camera Length (centimeters)"), c > 0 { md.cameraLength = Quantity(c / 100, "m") }
        if let e = double("Frame Exposure Time (nanoseconds)"), e > 0 { md.exposureTime = Quantity(e * 1e-9, "s") }
        if let t = double("Frame Time (nanoseconds)"), t > 0 { md.frameTime = Quantity(t * 1e-9, "s") }
        if let d = double("Scan - Dwell Time (microseconds)"), d > 0, scanEnabled { md.dwellTime = Quantity(d * 1e-6, "s") }
        if let n = self["Camera Name"], !n.isEmpty { md.detectorName = n }
        if let n = self["Camera Model"], !n.isEmpty { md.detectorModel = n }
        if let m = self["Image Processing - Mode"], !m.isEmpty { md.detectorMode = m }
        if let b = int("Sensor Pixel Depth"), b > 0 { md.counterDepthBits = b }
        md.softwareName = "DE-Server"
        md.softwareVersion = self["Server Software Version"]
        if let t = double("Timestamp (seconds since Epoch)"), t > 0, let ts = Timestamp.unix(t, utcOffsetSeconds: 0) {
            md.startTime = ts
        }
        if scanEnabled { md.scanSchema = isRaster ? "raster" : (self["Scan - Type"] ?? "custom").lowercased() }
        if let x = double("Diffraction Pixel Size X"), let y = double("Diffraction Pixel Size Y") {
            md.extra["de_diffraction_pixel_size"] = "\(fmt(y)) x \(fmt(x)) (y x; the file states no unit)"
        }
    }

    var metaValue: MetaValue { .object(entries.map { ($0.0, .string($0.1)) }) }
}

/// The scan positions of a DE custom/ROI scan, one per frame in acquisition order.
struct DEScanCoordinates: Sendable {
    let path: String
    let x: [Int]
    let y: [Int]

    static func find(for mrc: String) -> String? {
        let fm = FileManager.default
        for p in DEInfo.prefixes(of: mrc) {
            let exact = p + "_scan_coordinates.csv"
            if fm.fileExists(atPath: exact) { return exact }
            let dir = (p as NSString).deletingLastPathComponent
            let base = (p as NSString).lastPathComponent
            if let names = try? fm.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir),
               let n = names.sorted().first(where: { $0.hasPrefix(base + "_") && $0.lowercased().hasSuffix("coordinates.csv") }) {
                return dir.isEmpty ? n : dir + "/" + n
            }
        }
        return nil
    }

    /// Reads `x,y` integer rows (a header line is skipped); at most `maxRows` rows are accepted.
    static func read(_ path: String, maxRows: Int) throws -> DEScanCoordinates {
        let f = try RandomAccessFile(path: path)
        // "x,y\n" is at least 4 bytes per row.
        let limit = Int64(maxRows + 2) * 48
        guard f.size <= limit else {
            throw EMError.bad(path, offset: 0, "\(f.size) bytes is too large for \(maxRows) scan positions")
        }
        let text = String(decoding: try f.read(at: 0, count: Int(f.size), what: "scan coordinates"), as: UTF8.self)
        var xs: [Int] = [], ys: [Int] = []
        var offset = 0
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            defer { offset += line.utf8.count + 1 }
            let t = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.isEmpty { continue }
            let cols = t.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cols.count >= 2, let x = Int(cols[0]), let y = Int(cols[1]) else {
                if n == 0 { continue }  // header
                throw EMError.bad(path, offset: Int64(offset), "line \(n + 1) is not 'x,y' integers: \(t.prefix(40))")
            }
            guard x >= 0, y >= 0 else { throw EMError.bad(path, offset: Int64(offset), "line \(n + 1): negative scan position") }
            xs.append(x); ys.append(y)
        }
        guard !xs.isEmpty else { throw EMError.bad(path, offset: 0, "no scan positions") }
        return DEScanCoordinates(path: path, x: xs, y: ys)
    }
}

/// SerialEM's `.mdoc` (`key = value` lines, `[ZValue = n]` sections): kept as metadata.
struct MDoc: Sendable {
    let path: String
    let global: [(String, String)]
    let sections: [(String, [(String, String)])]

    static func find(for mrc: String) -> String? {
        [mrc + ".mdoc", (mrc as NSString).deletingPathExtension + ".mdoc"].first { FileManager.default.fileExists(atPath: $0) }
    }

    static func read(_ path: String) throws -> MDoc {
        let f = try RandomAccessFile(path: path)
        guard f.size <= DEInfo.maxBytes else { throw EMError.bad(path, offset: 0, "\(f.size) bytes is too large for an .mdoc") }
        let text = String(decoding: try f.read(at: 0, count: Int(f.size), what: ".mdoc"), as: UTF8.self)
        var global: [(String, String)] = []
        var sections: [(String, [(String, String)])] = []
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), line.hasSuffix("]") {
                sections.append((String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces), []))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let kv = (line[..<eq].trimmingCharacters(in: .whitespaces), line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
            if sections.isEmpty { global.append(kv) } else { sections[sections.count - 1].1.append(kv) }
        }
        return MDoc(path: path, global: global, sections: sections)
    }

    /// First value of `key` in the global part, then in the first section.
    func value(_ key: String) -> String? {
        global.first { $0.0 == key }?.1 ?? sections.first?.1.first { $0.0 == key }?.1
    }

    func apply(to md: inout NormalizedMetadata) {
        if let v = value("Voltage").flatMap(Double.init), v > 0 { md.beamEnergy = Quantity(v * 1000, "V") }
        if let m = value("Magnification").flatMap(Double.init), m > 0 { md.magnification = m }
        if let e = value("ExposureTime").flatMap(Double.init), e > 0 { md.exposureTime = Quantity(e, "s") }
        md.softwareName = md.softwareName ?? "SerialEM"
    }

    /// Pixel spacing in Å when stated.
    var pixelSpacing: Double? { value("PixelSpacing").flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } }

    var metaValue: MetaValue {
        .object([("global", .object(global.map { ($0.0, .string($0.1)) })),
                 ("sections", .array(sections.map { s in .object([("section", .string(s.0))] + s.1.map { ($0.0, .string($0.1)) }) }))])
    }
}
