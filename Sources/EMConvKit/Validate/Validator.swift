import EMCore
import Foundation
import CHDF5

/// `emconv validate`: NeXus files against the `nexus`, `nxem` and `em` profiles; vendor input
/// files against what NXem will need (what the reader found, which required metadata is
/// missing and the sidecar key that supplies it).
public struct ValidateOptions {
    /// nil: `nexus`, plus `nxem` when `/entry*/definition` is "NXem".
    public var profiles: Set<ValidationProfile>?
    public var strict = false
    /// `--source IN`: the input the file was converted from (checksums, frame-by-frame data).
    public var source: String?
    public var readOptions = ReadOptions()
    /// For vendor inputs: a sidecar whose values count as present.
    public var sidecar: Sidecar?
    public init() {}
}

public enum Validator {
    public static func validate(_ path: String, options: ValidateOptions = ValidateOptions()) -> ValidationReport {
        var r = ValidationReport(file: path)
        r.strict = options.strict
        guard FileManager.default.fileExists(atPath: path) else {
            r.unreadable = true
            r.missingInput = true
            r.add("READ", .error, "/", "no such file")
            return r
        }
        if let src = options.source, !FileManager.default.fileExists(atPath: src) {
            r.missingInput = true
            r.add("EM-SOURCE", .error, "/", "--source \(src): no such file")
            return r
        }
        HDF5.initialize()
        if H5Fis_hdf5(path) > 0, let h5 = try? HDF5File(reading: path), isNeXus(h5) {
            validateNeXus(h5, options: options, &r)
            return r
        }
        validateSource(path, options: options, &r)
        return r
    }

    /// NeXus: NXroot at the root, or an NXentry group at the top.
    static func isNeXus(_ h5: HDF5File) -> Bool {
        if h5.root.stringAttribute("NX_class") == "NXroot" { return true }
        return h5.root.children.contains { $0.1 && h5.root.openGroup($0.0)?.stringAttribute("NX_class") == "NXentry" }
    }

    static func validateNeXus(_ h5: HDF5File, options: ValidateOptions, _ r: inout ValidationReport) {
        var profiles = options.profiles ?? []
        if options.profiles == nil {
            profiles.insert(.nexus)
            let defs = NXemRules.children(h5.root, class: "NXentry").compactMap { $0.openDataset("definition")?.readStringValues()?.first }
            if defs.contains("NXem") { profiles.insert(.nxem) }
        }
        profiles.insert(.nexus)
        r.profiles = ValidationProfile.allCases.filter { profiles.contains($0) }.map(\.rawValue)
        HDF5.lock.withLock {
            NeXusRules.run(h5, &r)
            if profiles.contains(.nxem) { NXemRules.run(h5, &r) }
            if profiles.contains(.em) { EMRules.run(h5, &r) }
        }
        // What the file points at outside itself was not read (see HDF5Guard): say so.
        if let refused = h5.inputGuard?.refusal { r.add("HDF5-REFUSED", .error, "/", refused.description) }
        var source: OpenedFile?
        if let src = options.source {
            do {
                let opened = try Catalog.open(src, options: options.readOptions)
                try MemoryBudget.checkDeclared(opened)  // before its frames are compared
                source = opened
            } catch let e as EMError {
                r.add("EM-SOURCE", .error, "/", "cannot read the source: \(e.description)")
            } catch {
                r.add("EM-SOURCE", .error, "/", "cannot read the source: \(error)")
            }
        }
        // Corrected data: the maps' checksums always; with --source or the em profile, every
        // frame re-derived bit for bit.
        let corrected = CorrectionCheck.run(h5, source: source, rederive: source != nil || profiles.contains(.em), &r)
        if let source { EMRules.checkSource(h5, source: source, skipping: corrected, &r) }
    }

    /// A vendor file: what the reader found, and what NXem needs that it lacks.
    static func validateSource(_ path: String, options: ValidateOptions, _ r: inout ValidationReport) {
        r.kind = "source"
        r.profiles = ["nxem"]
        let file: OpenedFile
        do { file = try Catalog.open(path, options: options.readOptions) } catch let e as EMError {
            r.unreadable = true
            r.missingInput = e.code == .missingInput
            r.add("READ", .error, "/", e.description)
            return
        } catch {
            r.unreadable = true
            r.add("READ", .error, "/", "\(error)")
            return
        }
        r.add("READ", .info, "/", "\(file.format) (\(file.variant)), read by \(file.readerName) \(file.readerVersion); \(file.datasets.count) dataset(s)")
        for ds in file.datasets {
            r.add("READ", .info, "/" + ds.name, "\(ds.shape.map(String.init).joined(separator: "x")) \(ds.elementType.rawValue) \(ds.signalKind); metadata: \(ds.metadata.entries.map { "\($0.0)=\($0.1)" }.joined(separator: ", "))")
        }
        for w in file.warnings { r.add("READ", .warning, "/", w) }
        if let sc = options.sidecar {
            for w in SidecarMerge.apply(sc, to: file, preferSidecar: false) { r.add("SIDECAR", .warning, "/", w) }
        }
        for f in missingForNXem(file, sidecar: options.sidecar) { r.findings.append(f) }
    }

    /// What the NeXus output of `file` (with `sidecar`) would lack for NXem, at the paths the
    /// writer uses, each with its sidecar key.
    public static func missingForNXem(_ file: OpenedFile, sidecar: Sidecar?) -> [Finding] {
        func first<T>(_ k: (NormalizedMetadata) -> T?) -> T? { NeXusMetadata.first(file, k) }
        var out: [Finding] = []
        func req(_ path: String, _ what: String, _ key: String) {
            out.append(Finding("NXEM-REQ", .error, path, "required by NXem: \(what), not in the file (sidecar: \(key))"))
        }
        func rec(_ path: String, _ what: String, _ key: String) {
            out.append(Finding("NXEM-REC", .warning, path, "recommended by NXem: \(what), not in the file (sidecar: \(key))"))
        }
        let sc = sidecar
        if first({ $0.startTime }) == nil { req("/entry1/start_time", "NXentry/start_time", "start_time") }
        if first({ $0.endTime }) == nil { rec("/entry1/end_time", "NXentry/end_time", "end_time") }
        if sc?.isSimulation == nil { req("/entry1/sample/is_simulation", "NXsample/is_simulation", "sample.is_simulation") }
        if sc?.preparationDate == nil { req("/entry1/sample/preparation_date", "NXsample/preparation_date", "sample.preparation_date") }
        if sc?.atomTypes == nil { req("/entry1/sample/atom_types", "NXsample/atom_types", "sample.atom_types") }
        if sc?.sampleName == nil { rec("/entry1/sample/name", "NXsample/name", "sample.name") }
        if sc?.physicalForm == nil { rec("/entry1/sample/physical_form", "NXsample/physical_form", "sample.physical_form") }
        if first({ $0.instrumentVendor }) == nil { req("/entry1/measurement/instrument/fabrication/vendor", "instrument vendor", "instrument.vendor") }
        if first({ $0.instrumentModel }) == nil { req("/entry1/measurement/instrument/fabrication/model", "instrument model", "instrument.model") }
        if first({ $0.instrumentName }) == nil { rec("/entry1/measurement/instrument/name", "instrument name", "instrument.name") }
        if first({ $0.emitterType }) == nil { rec("/entry1/measurement/instrument/ebeam_column/electron_source/emitter_type", "electron source emitter type", "instrument.emitter_type") }
        let hasDetector = first({ $0.exposureTime }) != nil || first({ $0.detectorThreshold }) != nil || first({ $0.frameTime }) != nil
        if hasDetector && first({ $0.detectorMode }) == nil {
            req("/entry1/measurement/event1/instrument/detector1/operation_mode", "detector operation mode (the file records detector settings)", "detector.operation_mode")
        }
        if first({ $0.dwellTime }) != nil && first({ $0.scanSchema }) == nil {
            req("/entry1/measurement/event1/instrument/ebeam_column/scan_controller/scan_schema", "scan schema (the file records a dwell time)", "scan.schema")
        }
        return out
    }
}
