import Foundation

/// A number with its unit, as a file states it (never converted silently).
public struct Quantity: Sendable, Equatable, Codable {
    public var value: Double
    public var units: String
    public init(_ value: Double, _ units: String) {
        self.value = value
        self.units = units
    }
}

/// A point in time with the time zone the source gave (or that emconv derived, see `note`).
public struct Timestamp: Sendable, Equatable {
    public var date: Date
    /// Offset from UTC in seconds; nil when the source gave none (then the value is local time
    /// of unknown zone and outputs must say so).
    public var utcOffsetSeconds: Int?
    /// The original string, kept when the source's text was parsed.
    public var raw: String?

    public init(date: Date, utcOffsetSeconds: Int?, raw: String? = nil) {
        self.date = date
        self.utcOffsetSeconds = utcOffsetSeconds
        self.raw = raw
    }

    /// Seconds since 1970 that ISO 8601 can write: years 1 to 9999 (0001-01-01 to 9999-12-31 UTC).
    public static let representable: ClosedRange<Double> = -62_135_596_800 ... 253_402_300_799

    /// A time stamp from seconds since 1970 (UTC) read from a file, or nil when they are not a
    /// finite number in ``representable`` (a damaged field; readers then ignore it).
    public static func unix(_ seconds: Double, utcOffsetSeconds: Int?, raw: String? = nil) -> Timestamp? {
        guard seconds.isFinite, representable.contains(seconds) else { return nil }
        return Timestamp(date: Date(timeIntervalSince1970: seconds), utcOffsetSeconds: utcOffsetSeconds, raw: raw)
    }

    /// Now, or `SOURCE_DATE_EPOCH` (seconds, UTC) when set: reproducible outputs.
    public static func now() -> Timestamp {
        if let e = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let v = Double(e) {
            return Timestamp(date: Date(timeIntervalSince1970: v), utcOffsetSeconds: 0)
        }
        return Timestamp(date: Date(), utcOffsetSeconds: TimeZone.current.secondsFromGMT())
    }

    /// ISO 8601 with the offset (`2021-04-15T13:44:43.100924+00:00`), or without one when unknown.
    public var iso8601: String {
        let off = utcOffsetSeconds ?? 0
        // A date outside years 1-9999 (made by hand, not by a reader) is written at the nearest end.
        var t = date.timeIntervalSince1970 + Double(off)
        t = t.isNaN ? 0 : min(max(t, Timestamp.representable.lowerBound), Timestamp.representable.upperBound)
        var secs = floor(t)
        var micros = Int(((t - secs) * 1_000_000).rounded())
        if micros >= 1_000_000 { micros -= 1_000_000; secs += 1 }
        var tt = time_t(secs)
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        var s = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                       Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
        if micros != 0 { s += String(format: ".%06d", micros) }
        if let o = utcOffsetSeconds {
            let sign = o < 0 ? "-" : "+"
            s += String(format: "%@%02d:%02d", sign, abs(o) / 3600, (abs(o) % 3600) / 60)
        }
        return s
    }

    /// Parses ISO 8601 (`2021-04-15T13:44:43.100924481Z`, `…+02:00`, `2021-04-15 14:44:43.1`).
    public static func parseISO(_ s: String) -> Timestamp? {
        let str = s.trimmingCharacters(in: .whitespaces)
        let b = Array(str.utf8)
        func num(_ r: Range<Int>) -> Int? {
            guard r.upperBound <= b.count else { return nil }
            return Int(String(decoding: b[r], as: UTF8.self))
        }
        guard b.count >= 19, let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10),
              let h = num(11..<13), let mi = num(14..<16), let se = num(17..<19),
              b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61 else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                frac += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset: Int?
        if i < b.count {
            if b[i] == UInt8(ascii: "Z") {
                offset = 0
            } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                let rest = String(decoding: b[(i + 1)...], as: UTF8.self).replacingOccurrences(of: ":", with: "")
                guard rest.count == 4 || rest.count == 2, let v = Int(rest) else { return nil }
                offset = sign * (rest.count == 4 ? (v / 100) * 3600 + (v % 100) * 60 : v * 3600)
            } else {
                return nil
            }
        }
        var comps = DateComponents()
        comps.year = y; comps.month = mo; comps.day = d; comps.hour = h; comps.minute = mi; comps.second = se
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(secondsFromGMT: 0)!
        guard let base = cal.date(from: comps) else { return nil }
        let date = base.addingTimeInterval(frac - Double(offset ?? 0))
        return Timestamp(date: date, utcOffsetSeconds: offset, raw: s)
    }
}

/// Metadata normalized across vendors: what NeXus concepts need, with units. Every field is
/// optional; readers set what the file states and never invent values.
public struct NormalizedMetadata: Sendable, Equatable {
    public var beamEnergy: Quantity?            // acceleration voltage, V
    public var cameraLength: Quantity?          // m
    public var magnification: Double?
    public var exposureTime: Quantity?          // s, per frame
    public var dwellTime: Quantity?             // s, per scan position
    public var frameTime: Quantity?
    public var convergenceSemiAngle: Quantity?  // rad
    public var probeCurrent: Quantity?
    public var detectorName: String?
    public var detectorModel: String?
    public var detectorMode: String?            // counting mode, chip mode …
    public var detectorThreshold: Quantity?     // keV
    public var counterDepthBits: Int?
    public var instrumentVendor: String?
    public var instrumentModel: String?
    public var instrumentName: String?
    public var softwareName: String?
    public var softwareVersion: String?
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    /// Scan geometry: shape (y, x) and where it came from.
    public var scanShape: [Int]?
    public var scanShapeSource: String?
    public var scanRotation: Quantity?
    // For the NXem mapping; readers may set them, the sidecar fills them.
    public var instrumentSerialNumber: String?
    public var instrumentLocation: String?
    /// NXsource/emitter_type of the electron gun (e.g. "schottky", "cold_cathode_field_emitter").
    public var emitterType: String?
    /// Scan pattern (NXscan_controller/scan_schema, e.g. "raster").
    public var scanSchema: String?
    /// Keys of ``entries`` whose value emconv derived rather than read (e.g. a vendor split from
    /// a model string); the NeXus output marks them.
    public var derived: Set<String> = []
    /// Free-form extras (name → value with units) that map to no field above.
    public var extra: [String: String]

    public init() { extra = [:] }

    /// When no vendor is stated, takes it from an instrument name that starts with a known
    /// microscope manufacturer ("FEI Tecnai" → "FEI") and marks it derived. Never guesses a model.
    public mutating func deriveVendorFromInstrumentName() {
        guard instrumentVendor == nil, let name = instrumentName ?? instrumentModel else { return }
        let known: [(String, String)] = [
            ("thermo fisher", "Thermo Fisher Scientific"), ("thermofisher", "Thermo Fisher Scientific"), ("fei", "FEI"),
            ("jeol", "JEOL"), ("hitachi", "Hitachi"), ("nion", "Nion"), ("zeiss", "Carl Zeiss"), ("tescan", "TESCAN"),
            ("philips", "Philips"),
        ]
        let lower = name.lowercased()
        for (prefix, vendor) in known where lower == prefix || lower.hasPrefix(prefix + " ") || lower.hasPrefix(prefix + "-") {
            instrumentVendor = vendor
            derived.insert("instrument_vendor")
            return
        }
    }

    /// Key/value view with units, for `info` and the NeXus writer.
    public var entries: [(String, String)] {
        var out: [(String, String)] = []
        func q(_ k: String, _ v: Quantity?) { if let v { out.append((k, "\(fmt(v.value)) \(v.units)")) } }
        func s(_ k: String, _ v: String?) { if let v, !v.isEmpty { out.append((k, v)) } }
        q("beam_energy", beamEnergy)
        q("camera_length", cameraLength)
        if let magnification { out.append(("magnification", fmt(magnification))) }
        q("exposure_time", exposureTime)
        q("dwell_time", dwellTime)
        q("frame_time", frameTime)
        q("convergence_semi_angle", convergenceSemiAngle)
        q("probe_current", probeCurrent)
        s("detector", detectorName)
        s("detector_model", detectorModel)
        s("detector_mode", detectorMode)
        q("detector_threshold", detectorThreshold)
        if let counterDepthBits { out.append(("counter_depth", "\(counterDepthBits) bit")) }
        s("instrument_vendor", instrumentVendor)
        s("instrument_model", instrumentModel)
        s("instrument_name", instrumentName)
        s("instrument_serial_number", instrumentSerialNumber)
        s("instrument_location", instrumentLocation)
        s("emitter_type", emitterType)
        s("scan_schema", scanSchema)
        s("software", [softwareName, softwareVersion].compactMap { $0 }.joined(separator: " "))
        s("start_time", startTime?.iso8601)
        s("end_time", endTime?.iso8601)
        if let scanShape { out.append(("scan_shape", scanShape.map(String.init).joined(separator: "x") + (scanShapeSource.map { " (\($0))" } ?? ""))) }
        q("scan_rotation", scanRotation)
        for k in extra.keys.sorted() { out.append((k, extra[k]!)) }
        return out
    }
}

/// Shortest faithful decimal text of a double.
public func fmt(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
    return "\(v)"
}
