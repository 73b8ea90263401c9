import EMCore
import Foundation

/// Pixel encodings of a Merlin frame (header field 7).
enum MIBPixelFormat: String {
    case u1 = "U01", u8 = "U08", u16 = "U16", u32 = "U32", u64 = "U64", r64 = "R64"

    var bytesPerPixel: Int? {
        switch self {
        case .u1, .u8: return 1
        case .u16: return 2
        case .u32: return 4
        case .u64: return 8
        case .r64: return nil
        }
    }
}

/// One parsed Merlin frame header (`MQ1,seq,offset,nchips,width,height,format,layout,…`).
/// Field positions follow the Merlin manual; see formats.md.
struct MIBHeader {
    var sequence: Int
    var headerBytes: Int
    var chips: Int
    var width: Int
    var height: Int
    var format: MIBPixelFormat
    var layout: String
    var chipSelect: String
    var timestamp: String
    var shutterSeconds: Double?
    var counter: Int?
    var colourMode: Int?
    var gainMode: Int?
    var thresholds: [Double]
    /// MQ1A extension (Merlin 0.76+): ISO 8601 UTC time with ns, exposure in ns, counter depth.
    var isoTimestamp: String?
    var exposureNanoseconds: Double?
    var counterDepth: Int?
    var fields: [String]

    static let prefix = Array("MQ1,".utf8)

    /// Parses a header from its bytes. `file` and `offset` name the place in errors.
    static func parse(_ bytes: [UInt8], file: String, offset: Int64) throws -> MIBHeader {
        guard bytes.count >= 4, Array(bytes[0..<4]) == prefix else {
            throw EMError.bad(file, offset: offset, "not a Merlin frame header (expected 'MQ1,')")
        }
        // Header text ends at the first NUL or space padding; it is ASCII.
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        guard let text = String(bytes: bytes[0..<end], encoding: .ascii) else {
            throw EMError.bad(file, offset: offset, "frame header is not ASCII text")
        }
        let f = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard f.count >= 8 else {
            throw EMError.bad(file, offset: offset, "frame header has \(f.count) fields, at least 8 are needed")
        }
        func int(_ i: Int, _ name: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = Int(f[i]), range.contains(v) else {
                throw EMError(.badInput, file: file, at: "offset \(offset), header field \(i + 1) (\(name))",
                              "value '\(f[i].prefix(20))' is not a number in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        let seq = try int(1, "sequence number", 0...Int(Int32.max))
        let hb = try int(2, "header size", 16...1_048_576)
        let chips = try int(3, "number of chips", 1...64)
        let w = try int(4, "width", 1...65_536)
        let h = try int(5, "height", 1...65_536)
        guard let fmt = MIBPixelFormat(rawValue: f[6].uppercased()) else {
            throw EMError(.unsupported, file: file, at: "offset \(offset), header field 7 (pixel format)",
                          "unknown pixel format '\(f[6].prefix(8))' (known: U01, U08, U16, U32, U64, R64)")
        }
        var hdr = MIBHeader(sequence: seq, headerBytes: hb, chips: chips, width: w, height: h, format: fmt,
                            layout: f[7], chipSelect: f.count > 8 ? f[8] : "", timestamp: f.count > 9 ? f[9] : "",
                            shutterSeconds: f.count > 10 ? Double(f[10]) : nil, counter: f.count > 11 ? Int(f[11]) : nil,
                            colourMode: f.count > 12 ? Int(f[12]) : nil, gainMode: f.count > 13 ? Int(f[13]) : nil,
                            thresholds: f.count > 21 ? f[14...21].compactMap { Double($0) } : [],
                            isoTimestamp: nil, exposureNanoseconds: nil, counterDepth: nil, fields: f)
        if let a = f.firstIndex(of: "MQ1A"), a + 3 < f.count {
            hdr.isoTimestamp = f[a + 1]
            let exp = f[a + 2]
            hdr.exposureNanoseconds = Double(exp.hasSuffix("ns") ? String(exp.dropLast(2)) : exp)
            hdr.counterDepth = Int(f[a + 3])
        }
        return hdr
    }

    /// Short comparison key: frames of one acquisition share it.
    var geometryKey: String { "\(headerBytes),\(chips),\(width),\(height),\(format.rawValue),\(layout)" }

    var isQuad: Bool { chips == 4 && layout.uppercased().hasSuffix("2X2") }

    /// Time of this frame, from MQ1A (UTC) or the local-time field.
    var time: Timestamp? {
        if let iso = isoTimestamp, let t = Timestamp.parseISO(iso) { return t }
        if let t = Timestamp.parseISO(timestamp) { return Timestamp(date: t.date, utcOffsetSeconds: nil, raw: timestamp) }
        return nil
    }

    var exposureSeconds: Double? {
        if let ns = exposureNanoseconds { return ns * 1e-9 }
        return shutterSeconds
    }

    /// The header as named fields for the original-metadata tree.
    var metaValue: MetaValue {
        var o: [(String, MetaValue)] = [
            ("sequence_number", .int(Int64(sequence))), ("header_bytes", .int(Int64(headerBytes))),
            ("chips", .int(Int64(chips))), ("width", .int(Int64(width))), ("height", .int(Int64(height))),
            ("pixel_format", .string(format.rawValue)), ("sensor_layout", .string(layout)),
            ("chip_select", .string(chipSelect)), ("timestamp", .string(timestamp)),
        ]
        if let shutterSeconds { o.append(("shutter_time_s", .double(shutterSeconds))) }
        if let counter { o.append(("counter", .int(Int64(counter)))) }
        if let colourMode { o.append(("colour_mode", .int(Int64(colourMode)))) }
        if let gainMode { o.append(("gain_mode", .int(Int64(gainMode)))) }
        if !thresholds.isEmpty { o.append(("thresholds_keV", .array(thresholds.map { .double($0) }))) }
        if let isoTimestamp { o.append(("timestamp_utc", .string(isoTimestamp))) }
        if let exposureNanoseconds { o.append(("exposure_ns", .double(exposureNanoseconds))) }
        if let counterDepth { o.append(("counter_depth", .int(Int64(counterDepth)))) }
        o.append(("raw_fields", .array(fields.map { .string($0) })))
        return .object(o)
    }
}

/// The `.hdr` acquisition header: `Key (hint):\tvalue` lines between `HDR,` and `End`.
struct MIBHdrFile {
    var path: String
    var entries: [(String, String)]
    /// False when the text stops before its `End` line (a truncated or damaged .hdr).
    var complete = true

    static func read(_ path: String) throws -> MIBHdrFile {
        let f = try RandomAccessFile(path: path)
        guard f.size <= 1 << 20 else { throw EMError.bad(path, offset: 0, ".hdr file is larger than 1 MiB; not a Merlin header") }
        return try parse(try f.read(at: 0, count: Int(f.size), what: ".hdr"), path: path)
    }

    /// Parses `.hdr` text (a file's bytes, or the `HDR,` message of a live stream).
    static func parse(_ bytes: [UInt8], path: String) throws -> MIBHdrFile {
        // Merlin writes a NUL inside some values (`Dead Time File: Dummy (C:\<NUL>\)`): drop NULs
        // rather than stop there, or every line after it (frame counts, End) would be lost.
        let text = String(decoding: bytes.filter { $0 != 0 }, as: UTF8.self)
        guard text.hasPrefix("HDR") else { throw EMError.bad(path, offset: 0, "not a Merlin .hdr file (expected 'HDR,')") }
        var entries: [(String, String)] = []
        var sawEnd = false
        // Merlin writes CRLF; "\r\n" is one Character in Swift, so it must be named too.
        for raw in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
            let line = String(raw)
            if line.hasPrefix("End") { sawEnd = true }
            if line.hasPrefix("HDR") || line.hasPrefix("End") { continue }
            guard let tab = line.firstIndex(of: "\t") else { continue }
            var key = String(line[..<tab]).trimmingCharacters(in: .whitespaces)
            if key.hasSuffix(":") { key.removeLast() }
            let value = String(line[line.index(after: tab)...]).trimmingCharacters(in: .whitespaces)
            entries.append((key, value))
        }
        return MIBHdrFile(path: path, entries: entries, complete: sawEnd)
    }

    /// Value of the first key that starts with `prefix` (keys carry hints in parentheses).
    func value(_ prefix: String) -> String? {
        let p = prefix.lowercased()
        return entries.first { $0.0.lowercased().hasPrefix(p) }?.1
    }

    func int(_ prefix: String) -> Int? {
        guard let v = value(prefix) else { return nil }
        return Int(v.trimmingCharacters(in: .whitespaces))
    }

    var metaValue: MetaValue { .object(entries.map { ($0.0, .string($0.1)) }) }
}
