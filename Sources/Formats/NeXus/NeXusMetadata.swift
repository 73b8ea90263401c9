import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Maps normalized metadata (and a sidecar) onto NXem (NeXus definitions v2026.01,
/// applications/NXem.nxdl.xml):
/// - entry level: `start_time`/`end_time` (NXentry), `sample` (NXsample: is_simulation,
///   preparation_date, atom_types, physical_form, identifier_sample, name, description,
///   thickness), `userN` (NXuser), `note_sidecar`/`note_extra` (NXnote);
/// - static `measurement/instrument` (NXem_instrument): name, location, `fabrication`
///   (vendor, model, serial_number), `program1` (NXprogram, with @version), `ebeam_column`
///   (NXebeam_column, required by NXem whenever `measurement` exists) with `electron_source/
///   emitter_type` when known, `detector1` (NXdetector: name);
/// - dynamic `measurement/event1/instrument`: `ebeam_column/electron_source/voltage`,
///   `ebeam_column/scan_controller/{scan_schema, dwell_time}` (NXscan_controller), `optics`
///   (NXem_optical_system: camera_length, magnification, semi_convergence_angle, probe_current,
///   rotation), `detector1` (operation_mode, count_time, frame_time, threshold_energy).
/// Only what the source (or the sidecar) states is written; a value emconv derived is marked by
/// `emconv/FIELD_derived` in its group (an NXcollection: NXem documents no such attribute).
/// Units are written as the reader gave them (ASCII).
public enum NeXusMetadata {
    /// `NormalizedMetadata.entries` key → path (relative to the NXentry) of the field holding it.
    /// Used by the writer's tests to check that `info` and the NeXus output agree.
    public static let fieldPaths: [String: String] = [
        "beam_energy": "measurement/event1/instrument/ebeam_column/electron_source/voltage",
        "dwell_time": "measurement/event1/instrument/ebeam_column/scan_controller/dwell_time",
        "scan_schema": "measurement/event1/instrument/ebeam_column/scan_controller/scan_schema",
        "camera_length": "measurement/event1/instrument/optics/camera_length",
        "magnification": "measurement/event1/instrument/optics/magnification",
        "convergence_semi_angle": "measurement/event1/instrument/optics/semi_convergence_angle",
        "probe_current": "measurement/event1/instrument/optics/probe_current",
        "scan_rotation": "measurement/event1/instrument/optics/rotation",
        "detector_mode": "measurement/event1/instrument/detector1/operation_mode",
        "exposure_time": "measurement/event1/instrument/detector1/count_time",
        "frame_time": "measurement/event1/instrument/detector1/frame_time",
        "detector_threshold": "measurement/event1/instrument/detector1/threshold_energy",
        "detector": "measurement/instrument/detector1/name",
        "instrument_name": "measurement/instrument/name",
        "instrument_location": "measurement/instrument/location",
        "instrument_vendor": "measurement/instrument/fabrication/vendor",
        "instrument_model": "measurement/instrument/fabrication/model",
        "instrument_serial_number": "measurement/instrument/fabrication/serial_number",
        "emitter_type": "measurement/instrument/ebeam_column/electron_source/emitter_type",
        "start_time": "start_time",
        "end_time": "end_time",
    ]

    /// The first value any dataset has for a metadata field.
    public static func first<T>(_ file: OpenedFile, _ key: (NormalizedMetadata) -> T?) -> T? {
        for ds in file.datasets { if let v = key(ds.metadata) { return v } }
        return nil
    }

    static func isDerived(_ file: OpenedFile, _ key: String) -> Bool {
        file.datasets.contains { $0.metadata.derived.contains(key) }
    }

    /// Marks field `name` of `g` as derived by emconv when the metadata say so.
    static func markDerived(_ g: HDF5Group, _ name: String, file: OpenedFile, key: String) throws {
        guard isDerived(file, key) else { return }
        let own = try g.openGroup(NeXusWriter.collectionName) ?? g.createGroup(NeXusWriter.collectionName, nxClass: "NXcollection")
        try own.writeString("\(name)_derived", "derived by emconv, not stated by the source")
    }

    @discardableResult
    static func string(_ g: HDF5Group, _ name: String, _ value: String, file: OpenedFile, key: String) throws -> HDF5Dataset {
        let d = try g.writeString(name, value)
        try markDerived(g, name, file: file, key: key)
        return d
    }

    static func quantity(_ g: HDF5Group, _ name: String, _ q: Quantity, file: OpenedFile, key: String) throws {
        try g.writeDoubles(name, [q.value], shape: [], units: q.units)
        try markDerived(g, name, file: file, key: key)
    }

    // MARK: Entry level

    /// `sample`, `userN` and the documents that supplied them (NXem: sampleID, userID, noteID).
    static func writeEntryMetadata(_ sup: Supplement, into entry: HDF5Group) throws {
        let sample = sup.sample
        if !sample.isEmpty {
            let s = try entry.createGroup("sample", nxClass: "NXsample")
            if let v = sample.isSimulation { try s.writeBool("is_simulation", v) }
            if let v = sample.preparationDate { try s.writeString("preparation_date", v.raw ?? v.iso8601) }
            // NXem: "List of comma-separated elements from the periodic table".
            if let v = sample.atomTypes { try s.writeString("atom_types", v.joined(separator: ", ")) }
            if let v = sample.name { try s.writeString("name", v) }
            if let v = sample.physicalForm { try s.writeString("physical_form", v) }
            if let v = sample.identifier {
                let d = try s.writeString("identifier_sample", v)
                try d.setAttribute("type", sample.identifierType ?? "local")
            }
            if let v = sample.description { try s.writeString("description", v) }
            if let v = sample.thickness { try s.writeDoubles("thickness", [v.value], shape: [], units: v.units) }
        }
        for (i, u) in sup.users.enumerated() {
            let g = try entry.createGroup("user\(i + 1)", nxClass: "NXuser")
            if let v = u.name { try g.writeString("name", v) }
            if let v = u.affiliation { try g.writeString("affiliation", v) }
            if let v = u.email { try g.writeString("email", v) }
            if let v = u.role { try g.writeString("role", v) }
            if let v = u.orcid {
                let d = try g.writeString("identifier_orcid", v)
                try d.setAttribute("type", "ORCID")
            }
        }
        // Provenance of every value the user supplied: the documents themselves, verbatim.
        for doc in sup.documents {
            let note = try entry.createGroup("note_\(doc.role)", nxClass: "NXnote")
            try note.writeString("description", doc.description)
            try note.writeString("file_name", doc.fileName)
            try note.writeString("type", doc.mediaType)
            if let sum = doc.sha256, !sum.isEmpty {
                try note.writeString("checksum", sum)
                try note.writeString("algorithm", "sha256")
            }
            try note.writeBinaryText("data", doc.text)
        }
    }

    // MARK: measurement/instrument (static)

    static func writeStaticInstrument(_ file: OpenedFile, into measurement: HDF5Group) throws {
        let vendor = first(file) { $0.instrumentVendor }
        let model = first(file) { $0.instrumentModel }
        let serial = first(file) { $0.instrumentSerialNumber }
        let name = first(file) { $0.instrumentName }
        let location = first(file) { $0.instrumentLocation }
        let emitter = first(file) { $0.emitterType }
        let software = first(file) { $0.softwareName }
        let softwareVersion = first(file) { $0.softwareVersion }
        let detector = first(file) { $0.detectorName }
        let detectorModel = first(file) { $0.detectorModel }
        let inst = try measurement.createGroup("instrument", nxClass: "NXem_instrument")
        if let name { try string(inst, "name", name, file: file, key: "instrument_name") }
        if let location { try string(inst, "location", location, file: file, key: "instrument_location") }
        if vendor != nil || model != nil || serial != nil {
            // NXem: fabrication/vendor and /model are required once the group exists; a missing
            // one is left out (never invented) and `emconv validate` names the sidecar key.
            let fab = try inst.createGroup("fabrication", nxClass: "NXfabrication")
            if let vendor { try string(fab, "vendor", vendor, file: file, key: "instrument_vendor") }
            if let model { try string(fab, "model", model, file: file, key: "instrument_model") }
            if let serial { try string(fab, "serial_number", serial, file: file, key: "instrument_serial_number") }
        }
        // NXprogram/program requires @version: without a version the program is not mapped
        // (it stays in the original-metadata note and in `info`).
        if let software, let softwareVersion {
            let prog = try inst.createGroup("program1", nxClass: "NXprogram")
            let p = try prog.writeString("program", software)
            try p.setAttribute("version", softwareVersion)
        }
        // Every electron microscope has an electron-beam column; NXem requires the group.
        let column = try inst.createGroup("ebeam_column", nxClass: "NXebeam_column")
        if let emitter {
            let src = try column.createGroup("electron_source", nxClass: "NXsource")
            try string(src, "emitter_type", emitter, file: file, key: "emitter_type")
        }
        if detector != nil || detectorModel != nil {
            let det = try inst.createGroup("detector1", nxClass: "NXdetector")
            try string(det, "name", detector ?? detectorModel!, file: file, key: "detector")
            if let detectorModel, detectorModel != detector {
                try det.writeString("description", "model: \(detectorModel)")
            }
        }
    }

    // MARK: measurement/event1/instrument (dynamic)

    static func writeEventInstrument(_ file: OpenedFile, into event: HDF5Group) throws {
        let voltage = first(file) { $0.beamEnergy }
        let cameraLength = first(file) { $0.cameraLength }
        let magnification = first(file) { $0.magnification }
        let convergence = first(file) { $0.convergenceSemiAngle }
        let probeCurrent = first(file) { $0.probeCurrent }
        let dwell = first(file) { $0.dwellTime }
        let schema = first(file) { $0.scanSchema }
        let exposure = first(file) { $0.exposureTime }
        let frameTime = first(file) { $0.frameTime }
        let mode = first(file) { $0.detectorMode }
        let threshold = first(file) { $0.detectorThreshold }
        let detector = first(file) { $0.detectorName }
        let scanRotation = first(file) { $0.scanRotation }
        let hasColumn = voltage != nil || dwell != nil
        let hasOptics = cameraLength != nil || magnification != nil || convergence != nil || probeCurrent != nil || scanRotation != nil
        let hasDetector = mode != nil || exposure != nil || threshold != nil || frameTime != nil
        guard hasColumn || hasOptics || hasDetector else { return }
        let inst = try event.createGroup("instrument", nxClass: "NXem_instrument")
        // NXem: event instrument requires ebeam_column.
        let col = try inst.createGroup("ebeam_column", nxClass: "NXebeam_column")
        if let voltage {
            let src = try col.createGroup("electron_source", nxClass: "NXsource")
            try quantity(src, "voltage", voltage, file: file, key: "beam_energy")
        }
        if let dwell {
            // NXem: scan_controller needs scan_schema and dwell_time; a missing one is reported
            // by `emconv validate` with the sidecar key (scan.schema).
            let scan = try col.createGroup("scan_controller", nxClass: "NXscan_controller")
            if let schema { try string(scan, "scan_schema", schema, file: file, key: "scan_schema") }
            try quantity(scan, "dwell_time", dwell, file: file, key: "dwell_time")
        }
        if hasOptics {
            let optics = try inst.createGroup("optics", nxClass: "NXem_optical_system")
            if let cameraLength { try quantity(optics, "camera_length", cameraLength, file: file, key: "camera_length") }
            if let magnification {
                try optics.writeDoubles("magnification", [magnification], shape: [])
                try markDerived(optics, "magnification", file: file, key: "magnification")
            }
            if let convergence { try quantity(optics, "semi_convergence_angle", convergence, file: file, key: "convergence_semi_angle") }
            if let probeCurrent { try quantity(optics, "probe_current", probeCurrent, file: file, key: "probe_current") }
            if let scanRotation { try quantity(optics, "rotation", scanRotation, file: file, key: "scan_rotation") }
        }
        if hasDetector {
            let det = try inst.createGroup("detector1", nxClass: "NXdetector")
            // NXem requires operation_mode: written only when known (sidecar: detector.operation_mode).
            if let mode { try string(det, "operation_mode", mode, file: file, key: "detector_mode") }
            if let detector { try det.writeString("local_name", detector) }
            if let exposure { try quantity(det, "count_time", exposure, file: file, key: "exposure_time") }
            if let frameTime { try quantity(det, "frame_time", frameTime, file: file, key: "frame_time") }
            if let threshold { try quantity(det, "threshold_energy", threshold, file: file, key: "detector_threshold") }
        }
    }
}

extension HDF5Group {
    /// A scalar fixed-length byte string: how NeXus stores NX_BINARY text such as JSON blobs
    /// (h5py reads it as `bytes`).
    @discardableResult
    func writeBinaryText(_ name: String, _ value: String) throws -> HDF5Dataset {
        let bytes = Array(value.utf8)
        let t = H5ID(H5Tcopy(emc_T_C_S1()), .datatype)
        H5Tset_size(t.id, max(1, bytes.count))
        H5Tset_strpad(t.id, H5T_STR_NULLPAD)
        let s = H5ID(H5Screate(H5S_SCALAR), .dataspace)
        let d = withExtendedLifetime(untrackedDCPL()) { H5Dcreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), $0.id, hid_t(H5P_DEFAULT)) }
        guard d >= 0 else { throw fail("create dataset \(name)") }
        var buf = bytes.isEmpty ? [UInt8(0)] : bytes
        try check(H5Dwrite(d, t.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &buf), "write \(name)")
        return HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
    }
}
