import EMCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// EMPAD (Electron Microscope Pixel Array Detector): an `.xml` acquisition description and the
/// `.raw` it names, frames of 130 rows × 128 float32 (little-endian) whose last 2 rows are a
/// per-frame footer.
public enum EMPADReader: FormatReader {
    public static let version = "1.0"
    static let detRows = 128, detCols = 128, storedRows = 130

    public static let descriptor = FormatDescriptor(
        name: "empad", longName: "EMPAD (xml + raw)", aliases: [], extensions: ["xml"], reads: true, writes: false,
        companions: "the .raw file named in the .xml (raw_file/@filename), beside it",
        options: [OptionSpec("scan-shape", .intList, valueName: "Y,X", help: "navigation (scan) shape, slowest first",
                             default: "from the xml, checked against the raw size")],
        notes: "Frames 128x128 float32; the 2 footer rows of each stored 130-row frame are dropped."
    )

    public static func identify(_ probe: Probe) -> Identification {
        guard probe.fileExtension == "xml" else { return .no }
        let text = String(decoding: probe.head, as: UTF8.self)
        if text.contains("<root") && (text.contains("<raw_file") || text.contains("<pix_x>") || text.contains("scan_parameters")) { return .yes }
        return .no
    }

    public static func companions(of path: String) -> [String] {
        guard let x = try? parseXML(path), let raw = rawFileName(x) else { return [] }
        return [((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(raw)]
    }

    static func rawFileName(_ x: MetaValue) -> String? {
        x["raw_file"]?["@filename"]?.stringValue
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let xml = try parseXML(path)
        guard let rawName = rawFileName(xml) else {
            throw EMError.bad(path, field: "raw_file", "the xml names no raw file (<raw_file filename=…>)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let rawPath = dir.isEmpty ? rawName : (dir as NSString).appendingPathComponent((rawName as NSString).lastPathComponent)
        guard FileManager.default.fileExists(atPath: rawPath) else {
            throw EMError(.missingInput, file: path, at: "field 'raw_file'", "the raw file '\(rawName)' it names is missing")
        }
        let raw = try RandomAccessFile(path: rawPath)
        let stride = Int64(storedRows * detCols * 4)
        guard raw.size % stride == 0, raw.size > 0 else {
            throw EMError.bad(rawPath, offset: raw.size, "raw file size \(raw.size) is not a whole number of 130x128 float32 frames (\(stride) bytes each); truncated?")
        }
        let frames = Int(raw.size / stride)

        // Candidate navigation shapes, most specific first; the raw size decides.
        var candidates: [([Int], String)] = []
        let scanShape = try options.ints("scan-shape")
        if let s = scanShape { candidates.append((s, "--scan-shape")) }
        if let n = xml.value(at: ["scan_parameters", "series_count"])?.intValue ?? findSeriesCount(xml) {
            candidates.append(([n], "xml series_count"))
        }
        if let x = xml["pix_x"]?.intValue, let y = xml["pix_y"]?.intValue { candidates.append(([y, x], "xml pix_x/pix_y")) }
        for mode in ["acquire", "search"] {
            if let block = scanBlock(xml, mode: mode), let x = block["scan_resolution_x"]?.intValue, let y = block["scan_resolution_y"]?.intValue {
                candidates.append(([y, x], "xml scan_parameters mode=\(mode)"))
            }
        }
        if let (x, y) = scanFromFileName(rawName) { candidates.append(([y, x], "raw file name")) }
        guard let (nav, navSource) = candidates.first(where: { $0.0.reduce(1, *) == frames }) else {
            let tried = candidates.map { "\($0.0.map(String.init).joined(separator: "x")) (\($0.1))" }.joined(separator: ", ")
            if let scanShape {
                throw EMError(.usage, file: rawPath, "--scan-shape needs \(scanShape.reduce(1, *)) frames but the raw file holds \(frames)")
            }
            throw EMError.bad(rawPath, offset: raw.size,
                              "raw file holds \(frames) frames, which matches no scan shape in the xml (\(tried.isEmpty ? "none stated" : tried)); wrong raw file or truncated")
        }
        var warnings: [String] = []
        if navSource != candidates.first?.1, let first = candidates.first {
            warnings.append("scan shape \(nav.map(String.init).joined(separator: "x")) from \(navSource) (the raw size rules out \(first.0.map(String.init).joined(separator: "x")) from \(first.1))")
        }

        // Calibration.
        var axes: [Axis] = []
        let iom = xml["iom_measurements"]
        if nav.count == 2 {
            var scale: Double?
            if let fovText = iom?["optics.get_full_scan_field_of_view"]?.stringValue,
               let fov = parseList(fovText).first {
                scale = fov / Double(nav[0])
            } else if let fx = iom?.value(at: ["full_scan_field_of_view", "x"])?.doubleValue,
                      let sf = iom?.value(at: ["full_scan_field_of_view", "scale_factor"])?.doubleValue, sf > 0 {
                // The stored field of view is the internal one times scale_factor, for the larger scan side.
                scale = fx / sf / Double(max(nav[0], nav[1]))
            }
            if scale == nil { warnings.append("the xml gives no scan field of view: scan axes are uncalibrated") }
            for (i, name) in ["scan_y", "scan_x"].enumerated() {
                axes.append(Axis(name: name, size: nav[i], role: .navigation, units: scale == nil ? "" : "nm",
                                 calibration: .uniform(offset: 0, scale: scale.map { $0 * 1e9 } ?? 1)))
            }
        } else if let t = frameInterval(xml) {
            // An image series: one frame per exposure + post-exposure (both ms in the xml).
            axes.append(Axis(name: "time", size: nav[0], role: .navigation, units: "s",
                             calibration: .uniform(offset: 0, scale: t), longName: "time"))
        } else {
            axes.append(Axis(name: "frame", size: nav[0], role: .navigation))
            warnings.append("the xml gives no exposure_time: the frame axis of the series is uncalibrated")
        }
        let q = iom?["calibrated_pixelsize"]?.doubleValue.map { $0 * 1e9 }
        for name in ["det_y", "det_x"] {
            let s = q ?? 1
            axes.append(Axis(name: name, size: detRows, role: .signal, units: q == nil ? "" : "1/nm",
                             calibration: .uniform(offset: -64 * s, scale: s)))
        }

        var md = NormalizedMetadata()
        md.detectorName = "EMPAD"
        md.softwareName = "EMPAD"
        md.softwareVersion = xml["software_version"]?.stringValue
        if let v = iom?["source.get_voltage"]?.doubleValue ?? iom?["high_voltage"]?.doubleValue { md.beamEnergy = Quantity(v, "V") }
        if let cl = iom?["optics.get_cameralength"]?.doubleValue ?? iom?["nominal_camera_length"]?.doubleValue { md.cameraLength = Quantity(cl, "m") }
        if let e = xml["exposure_time"]?.doubleValue { md.exposureTime = Quantity(e, "ms") }
        if let r = iom?["column.get_scanrotation"]?.doubleValue ?? iom?["scan_rotation"]?.doubleValue { md.scanRotation = Quantity(r, "rad") }
        if let ts = xml["timestamp"] {
            let iso = ts["@isoformat"]?.stringValue.flatMap { Timestamp.parseISO($0) }
            // A Unix time stamp outside years 1-9999 (a damaged field) is ignored.
            let unix = ts["@timestamp"]?.doubleValue.flatMap { Timestamp.unix($0, utcOffsetSeconds: nil) }
            if let unix {
                // isoformat is local time; the difference to the Unix time stamp is the UTC offset
                // (in quarter hours; none when it is not a zone offset, at most 14 h).
                var off: Int?
                if let iso {
                    let d = iso.date.timeIntervalSince1970 - unix.date.timeIntervalSince1970
                    if abs(d) <= 14 * 3600 { off = Int((d / 900).rounded()) * 900 }
                }
                md.startTime = Timestamp(date: unix.date, utcOffsetSeconds: off, raw: ts["@isoformat"]?.stringValue)
            } else if let iso {
                md.startTime = iso
            }
        }
        if nav.count == 2 { md.scanShape = nav; md.scanShapeSource = navSource }

        let src = StridedFrameSource(file: raw, firstFrame: 0, stride: stride, frameBytes: detRows * detCols * 4)
        let ds = Dataset(name: "empad", title: (path as NSString).lastPathComponent, axes: axes, elementType: .float32,
                         sourceByteOrder: .little, frameRank: 2, quantity: "intensity", signalKind: nav.count == 2 ? "4d-stem" : "diffraction",
                         metadata: md, conventions: ["emconv_orientation": "on-disk row order; 2 footer rows per frame dropped"], source: src)
        return OpenedFile(path: path, format: descriptor.name, variant: "\(nav.count == 1 ? "series of \(nav[0]) frames" : nav.map(String.init).joined(separator: "x") + " scan"), software \(md.softwareVersion ?? "unknown")",
                          datasets: [ds], files: [path, rawPath], original: xml, warnings: warnings, readerName: "empad",
                          readerVersion: version, handles: [try RandomAccessFile(path: path), raw])
    }

    /// Time from one frame to the next in seconds: `exposure_time` + `post_exposure_time` (ms).
    static func frameInterval(_ x: MetaValue) -> Double? {
        guard let e = x["exposure_time"]?.doubleValue, e.isFinite, e >= 0 else { return nil }
        let post = x["post_exposure_time"]?.doubleValue ?? 0
        let ms = e + (post.isFinite && post >= 0 ? post : 0)
        return ms > 0 ? ms / 1000 : nil
    }

    static func findSeriesCount(_ x: MetaValue) -> Int? {
        if case let .array(blocks)? = x["scan_parameters"] {
            for b in blocks { if let n = b["series_count"]?.intValue { return n } }
        }
        return nil
    }

    static func scanBlock(_ x: MetaValue, mode: String) -> MetaValue? {
        guard case let .object(pairs) = x else { return nil }
        for (k, v) in pairs where k == "scan_parameters" {
            if v["@mode"]?.stringValue == mode { return v }
        }
        return nil
    }

    static func scanFromFileName(_ name: String) -> (Int, Int)? {
        let stem = ((name as NSString).lastPathComponent as NSString).deletingPathExtension
        let parts = stem.split(separator: "_")
        guard parts.count >= 3, parts[parts.count - 2].hasPrefix("x"), parts[parts.count - 1].hasPrefix("y"),
              let x = Int(parts[parts.count - 2].dropFirst()), let y = Int(parts[parts.count - 1].dropFirst()) else { return nil }
        return (x, y)
    }

    static func parseList(_ s: String) -> [Double] {
        s.trimmingCharacters(in: CharacterSet(charactersIn: "[]() ")).split(separator: ",").compactMap {
            Double($0.trimmingCharacters(in: .whitespaces))
        }
    }

    /// The whole XML as an ordered tree: attributes as `@name`, text as the value (or `#text`).
    static func parseXML(_ path: String) throws -> MetaValue {
        let f = try RandomAccessFile(path: path)
        guard f.size < 64 << 20 else { throw EMError.bad(path, offset: 0, "xml larger than 64 MiB; not an EMPAD description") }
        let bytes = try f.read(at: 0, count: Int(f.size), what: "xml")
        // Foundation's XMLParser traps on element names that are not UTF-8: refuse them first.
        if let bad = firstInvalidUTF8(bytes) {
            throw EMError.bad(path, offset: Int64(bad), "xml is not UTF-8 text")
        }
        let parser = XMLParser(data: Data(bytes))
        let builder = XMLTreeBuilder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else {
            let line = parser.lineNumber
            throw EMError(.badInput, file: path, at: "line \(line)", "not well-formed XML: \(parser.parserError?.localizedDescription ?? "parse error")")
        }
        return root
    }
}

/// Offset of the first byte that is not part of a valid UTF-8 sequence, nil when all are.
func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
    var it = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &it) {
        case .valid(let s): offset += s.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

/// Builds a ``MetaValue`` tree from XML events.
final class XMLTreeBuilder: NSObject, XMLParserDelegate {
    private var stack: [(name: String, pairs: [(String, MetaValue)], text: String)] = []
    var root: MetaValue?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        guard stack.count < 200 else { parser.abortParsing(); return }
        stack.append((elementName, attributeDict.sorted { $0.key < $1.key }.map { ("@" + $0.key, .string($0.value)) }, ""))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        let e = stack.removeLast()
        let text = e.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let value: MetaValue
        if e.pairs.isEmpty {
            value = .string(text)
        } else {
            var p = e.pairs
            if !text.isEmpty { p.append(("#text", .string(text))) }
            value = .object(p)
        }
        if stack.isEmpty {
            var p: [(String, MetaValue)] = []
            if case let .object(o) = value { p = o } else { p = [("#text", value)] }
            root = .object(p)
        } else {
            stack[stack.count - 1].pairs.append((elementName, value))
        }
    }
}
