import EMCore
import Foundation

/// Merges a sidecar into what a reader found: sidecar values fill gaps; where both state a value
/// and they differ, the file wins and a warning names both values (`--prefer-sidecar`: the
/// sidecar wins, still with the warning). Never silent.
public enum SidecarMerge {
    /// Applies `sidecar` to every dataset of `file` (in place) and returns the warnings.
    @discardableResult
    public static func apply(_ sidecar: Sidecar, to file: OpenedFile, preferSidecar: Bool) -> [String] {
        // Notes the sidecar parser made (e.g. a value outside NXem's open enumeration).
        var warnings: [String] = sidecar.warnings
        func note(_ w: String) { if !warnings.contains(w) { warnings.append(w) } }
        func pick<T>(_ key: String, _ fileValue: T?, _ side: T?, same: (T, T) -> Bool, show: (T) -> String) -> T? {
            guard let side else { return fileValue }
            guard let fileValue else { return side }
            if same(fileValue, side) { return fileValue }
            if preferSidecar {
                note("sidecar \(key) '\(show(side))' replaces the file's '\(show(fileValue))' (--prefer-sidecar)")
                return side
            }
            note("sidecar \(key) '\(show(side))' contradicts the file's '\(show(fileValue))'; keeping the file's value (use --prefer-sidecar to override)")
            return fileValue
        }
        let eqS: (String, String) -> Bool = { $0.trimmingCharacters(in: .whitespaces).caseInsensitiveCompare($1.trimmingCharacters(in: .whitespaces)) == .orderedSame }
        let eqQ: (Quantity, Quantity) -> Bool = { a, b in
            guard let x = Units.si(a), let y = Units.si(b), x.1 == y.1 else { return a == b }
            return abs(x.0 - y.0) <= 1e-9 * max(abs(x.0), abs(y.0))
        }
        let eqT: (Timestamp, Timestamp) -> Bool = { abs($0.date.timeIntervalSince($1.date)) < 0.001 && $0.utcOffsetSeconds == $1.utcOffsetSeconds }
        let showQ: (Quantity) -> String = { "\(fmt($0.value)) \($0.units)" }
        for ds in file.datasets {
            var m = ds.metadata
            m.instrumentName = pick("instrument.name", m.instrumentName, sidecar.instrumentName, same: eqS, show: { $0 })
            // A vendor emconv derived from the instrument name yields to a stated one.
            if m.derived.contains("instrument_vendor"), let v = sidecar.instrumentVendor {
                m.instrumentVendor = v
                m.derived.remove("instrument_vendor")
            }
            m.instrumentVendor = pick("instrument.vendor", m.instrumentVendor, sidecar.instrumentVendor, same: eqS, show: { $0 })
            m.instrumentModel = pick("instrument.model", m.instrumentModel, sidecar.instrumentModel, same: eqS, show: { $0 })
            m.instrumentSerialNumber = pick("instrument.serial_number", m.instrumentSerialNumber, sidecar.instrumentSerialNumber, same: eqS, show: { $0 })
            m.instrumentLocation = pick("instrument.location", m.instrumentLocation, sidecar.instrumentLocation, same: eqS, show: { $0 })
            m.emitterType = pick("instrument.emitter_type", m.emitterType, sidecar.emitterType, same: eqS, show: { $0 })
            m.detectorMode = pick("detector.operation_mode", m.detectorMode, sidecar.detectorOperationMode, same: eqS, show: { $0 })
            m.scanSchema = pick("scan.schema", m.scanSchema, sidecar.scanSchema, same: eqS, show: { $0 })
            m.cameraLength = pick("camera_length", m.cameraLength, sidecar.cameraLength, same: eqQ, show: showQ)
            // A file time without a time zone is not an NX_DATE_TIME: a sidecar time with a zone fills it.
            let fileStart = m.startTime?.utcOffsetSeconds == nil && sidecar.startTime != nil ? nil : m.startTime
            let fileEnd = m.endTime?.utcOffsetSeconds == nil && sidecar.endTime != nil ? nil : m.endTime
            m.startTime = pick("start_time", fileStart, sidecar.startTime, same: eqT, show: { $0.raw ?? $0.iso8601 })
            m.endTime = pick("end_time", fileEnd, sidecar.endTime, same: eqT, show: { $0.raw ?? $0.iso8601 })
            ds.metadata = m

            // Scan shape: the reader decides the array shape (use --scan-shape to change it).
            let nav = Array(ds.shape.dropLast(ds.frameRank))
            if let shape = sidecar.scanShape, nav.count == shape.count, nav != shape {
                note("sidecar scan.shape \(shape.map(String.init).joined(separator: "x")) contradicts the file's navigation shape \(nav.map(String.init).joined(separator: "x")) of \(ds.name); keeping the file's (pass --scan-shape to reshape)")
            }
            // Scan step: calibrates uncalibrated navigation axes.
            if let step = sidecar.scanStep, let units = sidecar.scanStepUnits, nav.count >= 1 {
                let navAxes = Array(0..<nav.count).suffix(min(2, nav.count))
                for (k, ai) in navAxes.enumerated() {
                    let s = step.count == 1 ? step[0] : step[min(k + (step.count - navAxes.count), step.count - 1)]
                    var a = ds.axes[ai]
                    let calibrated = !a.units.isEmpty || a.scale != 1 || a.offset != 0
                    if calibrated {
                        let fileQ = Quantity(a.scale, a.units), sideQ = Quantity(s, units)
                        if !eqQ(fileQ, sideQ) {
                            if preferSidecar {
                                note("sidecar scan.step \(showQ(sideQ)) replaces the file's \(showQ(fileQ)) for axis \(a.name) (--prefer-sidecar)")
                                a.calibration = .uniform(offset: 0, scale: s)
                                a.units = units
                            } else {
                                note("sidecar scan.step \(showQ(sideQ)) contradicts the file's \(showQ(fileQ)) for axis \(a.name); keeping the file's value (use --prefer-sidecar to override)")
                            }
                        }
                    } else {
                        a.calibration = .uniform(offset: 0, scale: s)
                        a.units = units
                        a.longName = nil
                    }
                    ds.axes[ai] = a
                }
            }
        }
        return warnings
    }
}

extension Sidecar {
    /// What the sidecar supplies beside the input, in the common model: the sample, the users,
    /// and the sidecar itself (and its free-form `extra:` section) kept verbatim.
    public func supplement(preferSidecar: Bool) -> Supplement {
        var s = Supplement()
        s.sample.name = sampleName
        s.sample.atomTypes = atomTypes
        s.sample.preparationDate = preparationDate
        s.sample.physicalForm = physicalForm
        s.sample.identifier = sampleIdentifier
        s.sample.identifierType = sampleIdentifierType
        s.sample.isSimulation = isSimulation
        s.sample.description = sampleDescription
        s.sample.thickness = sampleThickness
        s.users = users.map { UserInfo(name: $0.name, affiliation: $0.affiliation, email: $0.email, orcid: $0.orcid, role: $0.role) }
        let fileName = (path as NSString).lastPathComponent
        s.documents.append(AttachedDocument(
            role: "sidecar",
            description: "metadata sidecar given with --metadata" + (preferSidecar ? " (--prefer-sidecar)" : "") + (notes.map { "; notes: " + $0 } ?? ""),
            fileName: fileName, mediaType: isJSON ? "application/json" : "application/yaml", sha256: sha256, text: text))
        if let extra, extra != .null {
            s.documents.append(AttachedDocument(role: "extra", description: "free-form 'extra:' section of the metadata sidecar, kept verbatim",
                                                fileName: fileName, mediaType: "application/json", text: extra.json()))
        }
        return s
    }
}
