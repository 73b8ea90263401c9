import EMCore
import Foundation

/// Maps DM ImageTags to the normalized model. Values keep the units DM states; nothing is invented.
enum DMMetadata {
    static func normalize(_ tags: MetaValue) -> NormalizedMetadata {
        var m = NormalizedMetadata()
        func v(_ p: String...) -> MetaValue? { tags.value(at: p) }
        func d(_ p: String...) -> Double? { tags.value(at: p)?.doubleValue }
        func s(_ p: String...) -> String? {
            guard let x = tags.value(at: p)?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !x.isEmpty else { return nil }
            return x
        }
        let mi = "Microscope Info"
        if let x = d(mi, "Voltage") { m.beamEnergy = Quantity(x, "V") }
        if let x = d(mi, "Indicated Magnification") { m.magnification = x }
        if let x = d(mi, "STEM Camera Length") { m.cameraLength = Quantity(x, "mm") }
        if let x = d(mi, "Probe Current (nA)") { m.probeCurrent = Quantity(x, "nA") }
        if let x = s(mi, "Illumination Mode") { m.extra["illumination_mode"] = x }
        if let x = s(mi, "Imaging Mode") { m.extra["imaging_mode"] = x }
        if let x = s(mi, "Operation Mode") { m.extra["operation_mode"] = x }
        if let x = s(mi, "Name") ?? s(mi, "Microscope") { m.instrumentName = x }
        if case let .object(stage)? = v(mi, "Stage Position") {
            for (k, x) in stage { if let t = x.stringValue { m.extra["stage_position." + k] = t } }
        }
        if let x = s("Session Info", "Operator") { m.extra["operator"] = x }
        if let x = s("Session Info", "Specimen") { m.extra["specimen"] = x }
        if let x = s("Session Info", "Microscope"), m.instrumentName == nil { m.instrumentName = x }
        m.deriveVendorFromInstrumentName()
        if let x = s("DataBar", "Device Name") ?? s("Acquisition", "Device", "Name") { m.detectorName = x }
        if let x = d("DataBar", "Exposure Time (s)") ?? d("Acquisition", "Parameters", "High Level", "Exposure (s)") {
            m.exposureTime = Quantity(x, "s")
        }
        if let x = d("EELS", "Acquisition", "Exposure (s)"), m.exposureTime == nil { m.exposureTime = Quantity(x, "s") }
        if let x = d("EELS", "Acquisition", "Integration time (s)") { m.extra["eels.integration_time"] = "\(fmt(x)) s" }
        if let x = d("EELS", "Acquisition", "Number of frames") { m.extra["eels.number_of_frames"] = fmt(x) }
        if let x = d("EELS", "Experimental Conditions", "Convergence semi-angle (mrad)") { m.convergenceSemiAngle = Quantity(x, "mrad") }
        if let x = d("EELS", "Experimental Conditions", "Collection semi-angle (mrad)") { m.extra["eels.collection_semi_angle"] = "\(fmt(x)) mrad" }
        if let x = d("EDS", "Live time") { m.extra["eds.live_time"] = "\(fmt(x)) s" }
        if let x = d("EDS", "Real time") { m.extra["eds.real_time"] = "\(fmt(x)) s" }
        if let x = d("DigiScan", "Sample Time") { m.dwellTime = Quantity(x, "us") }
        if let x = d("DigiScan", "Rotation") { m.scanRotation = Quantity(x, "deg") }
        if let x = s("Meta Data", "Format") { m.extra["dm_format"] = x }
        if let x = s("Meta Data", "Signal") { m.extra["dm_signal"] = x }
        if let x = s("GMS Version", "Saved") ?? s("GMS Version", "Created") {
            m.softwareName = "Gatan DigitalMicrograph"
            m.softwareVersion = x
        }
        let date = s("DataBar", "Acquisition Date")
        let time = s("DataBar", "Acquisition Time")
        let os = d("DataBar", "Acquisition Time (OS)")
        if date != nil || time != nil {
            let raw = [date, time].compactMap { $0 }.joined(separator: " ")
            m.extra["acquisition_datetime_raw"] = raw
            if let ts = DMDates.timestamp(date: date, time: time, osTime: os) { m.startTime = ts }
        }
        return m
    }
}

/// DataBar dates: locale-dependent text ("12/10/2019", "27/08/2016", "27.08.2016", "2019-12-10")
/// and time ("3:32:41 PM", "15:32:41"), plus "Acquisition Time (OS)" (Windows FILETIME, 100 ns
/// ticks since 1601-01-01 UTC) when present, which fixes the instant and the UTC offset.
enum DMDates {
    struct DMY { var y: Int, m: Int, d: Int }

    /// Candidate (year, month, day) readings of a date string.
    static func candidates(_ s: String) -> [DMY] {
        let t = s.trimmingCharacters(in: .whitespaces)
        for sep: Character in ["/", ".", "-"] {
            let parts = t.split(separator: sep).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard parts.count == 3, let a = Int(parts[0]), let b = Int(parts[1]), var c = Int(parts[2]) else { continue }
            if parts[0].count == 4 { return valid([DMY(y: a, m: b, d: c)]) }  // Y-M-D
            if c < 100 { c += 2000 }
            if sep == "." { return valid([DMY(y: c, m: b, d: a)]) }  // D.M.Y
            return valid([DMY(y: c, m: a, d: b), DMY(y: c, m: b, d: a)])  // M/D/Y or D/M/Y
        }
        return []
    }

    static func valid(_ c: [DMY]) -> [DMY] {
        var out: [DMY] = []
        for x in c where (1...12).contains(x.m) && (1...31).contains(x.d) && !out.contains(where: { $0.y == x.y && $0.m == x.m && $0.d == x.d }) {
            out.append(x)
        }
        return out
    }

    /// Seconds since midnight.
    static func seconds(_ s: String) -> Double? {
        var t = s.trimmingCharacters(in: .whitespaces).uppercased()
        var pm: Bool?
        if t.hasSuffix("PM") { pm = true; t = String(t.dropLast(2)) } else if t.hasSuffix("AM") { pm = false; t = String(t.dropLast(2)) }
        let parts = t.trimmingCharacters(in: .whitespaces).split(separator: ":")
        guard parts.count >= 2, parts.count <= 3, var h = Int(parts[0]), let mi = Int(parts[1]) else { return nil }
        let se = parts.count == 3 ? Double(parts[2]) ?? -1 : 0
        if let pm {
            guard (1...12).contains(h) else { return nil }
            if pm && h != 12 { h += 12 } else if !pm && h == 12 { h = 0 }
        }
        guard (0..<24).contains(h), (0..<60).contains(mi), se >= 0, se < 61 else { return nil }
        return Double(h * 3600 + mi * 60) + se
    }

    static func epoch(_ x: DMY, _ secs: Double) -> Double? {
        var comps = DateComponents()
        comps.year = x.y; comps.month = x.m; comps.day = x.d
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(secondsFromGMT: 0)!
        guard let d = cal.date(from: comps) else { return nil }
        return d.timeIntervalSince1970 + secs
    }

    static func timestamp(date: String?, time: String?, osTime: Double?) -> Timestamp? {
        let raw = [date, time].compactMap { $0 }.joined(separator: " ")
        let secs = time.flatMap { seconds($0) }
        let cands = date.map { candidates($0) } ?? []
        var utc: Double?
        if let osTime, osTime > 1e16, osTime < 1e19 { utc = osTime / 1e7 - 11_644_473_600 }
        guard let secs, !cands.isEmpty else {
            if let utc { return Timestamp(date: Date(timeIntervalSince1970: utc), utcOffsetSeconds: 0, raw: raw.isEmpty ? nil : raw) }
            return nil
        }
        if let utc {
            // Pick the reading whose local time is a plausible zone offset from the OS instant.
            for c in cands {
                guard let local = epoch(c, secs) else { continue }
                let off = local - utc
                if abs(off) <= 14 * 3600 {
                    let q = Int((off / 900).rounded()) * 900
                    return Timestamp(date: Date(timeIntervalSince1970: local - Double(q)), utcOffsetSeconds: q, raw: raw)
                }
            }
            return Timestamp(date: Date(timeIntervalSince1970: utc), utcOffsetSeconds: 0, raw: raw)
        }
        // No OS time: only an unambiguous date is used (local time of unknown zone).
        guard cands.count == 1, let local = epoch(cands[0], secs) else { return nil }
        return Timestamp(date: Date(timeIntervalSince1970: local), utcOffsetSeconds: nil, raw: raw)
    }
}
