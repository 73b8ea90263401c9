import Foundation

/// Maps normalized metadata onto NXem's static (`measurement/instrument`) and dynamic
/// (`measurement/event1/instrument`) instrument groups. Only what the source states is written.
enum NeXusMetadata {
    /// The first value any dataset has for a metadata field.
    static func first<T>(_ file: OpenedFile, _ key: (NormalizedMetadata) -> T?) -> T? {
        for ds in file.datasets { if let v = key(ds.metadata) { return v } }
        return nil
    }

    static func writeStaticInstrument(_ file: OpenedFile, into measurement: HDF5Group) throws {
        let vendor = first(file) { $0.instrumentVendor }
        let model = first(file) { $0.instrumentModel }
        let name = first(file) { $0.instrumentName }
        let software = first(file) { $0.softwareName }
        let softwareVersion = first(file) { $0.softwareVersion }
        let detector = first(file) { $0.detectorName }
        let detectorModel = first(file) { $0.detectorModel }
        let inst = try measurement.createGroup("instrument", nxClass: "NXem_instrument")
        if let name { try inst.writeString("name", name) }
        if vendor != nil || model != nil {
            let fab = try inst.createGroup("fabrication", nxClass: "NXfabrication")
            if let vendor { try fab.writeString("vendor", vendor) }
            if let model { try fab.writeString("model", model) }
        }
        if let software {
            let prog = try inst.createGroup("program1", nxClass: "NXprogram")
            let p = try prog.writeString("program", software)
            if let softwareVersion { try p.setAttribute("version", softwareVersion) }
        }
        if detector != nil || detectorModel != nil {
            let det = try inst.createGroup("detector1", nxClass: "NXdetector")
            try det.writeString("name", detector ?? detectorModel!)
            if let detectorModel {
                let fab = try det.createGroup("fabrication", nxClass: "NXfabrication")
                try fab.writeString("model", detectorModel)
            }
        }
    }

    static func writeEventInstrument(_ file: OpenedFile, into event: HDF5Group) throws {
        let voltage = first(file) { $0.beamEnergy }
        let cameraLength = first(file) { $0.cameraLength }
        let magnification = first(file) { $0.magnification }
        let convergence = first(file) { $0.convergenceSemiAngle }
        let probeCurrent = first(file) { $0.probeCurrent }
        let dwell = first(file) { $0.dwellTime }
        let exposure = first(file) { $0.exposureTime }
        let mode = first(file) { $0.detectorMode }
        let threshold = first(file) { $0.detectorThreshold }
        let detector = first(file) { $0.detectorName }
        let scanRotation = first(file) { $0.scanRotation }
        let hasColumn = voltage != nil || dwell != nil
        let hasOptics = cameraLength != nil || magnification != nil || convergence != nil || probeCurrent != nil || scanRotation != nil
        let hasDetector = mode != nil || exposure != nil || threshold != nil
        guard hasColumn || hasOptics || hasDetector else { return }
        let inst = try event.createGroup("instrument", nxClass: "NXem_instrument")
        if hasColumn {
            let col = try inst.createGroup("ebeam_column", nxClass: "NXebeam_column")
            if let voltage {
                let src = try col.createGroup("electron_source", nxClass: "NXsource")
                try src.writeDoubles("voltage", [voltage.value], shape: [], units: voltage.units)
            }
            if let dwell {
                let scan = try col.createGroup("scan_controller", nxClass: "NXscanbox_em")
                try scan.writeDoubles("dwell_time", [dwell.value], shape: [], units: dwell.units)
            }
        }
        if hasOptics {
            let optics = try inst.createGroup("optics", nxClass: "NXem_optical_system")
            if let cameraLength { try optics.writeDoubles("camera_length", [cameraLength.value], shape: [], units: cameraLength.units) }
            if let magnification { try optics.writeDoubles("magnification", [magnification], shape: []) }
            if let convergence { try optics.writeDoubles("semi_convergence_angle", [convergence.value], shape: [], units: convergence.units) }
            if let probeCurrent { try optics.writeDoubles("probe_current", [probeCurrent.value], shape: [], units: probeCurrent.units) }
            if let scanRotation { try optics.writeDoubles("rotation", [scanRotation.value], shape: [], units: scanRotation.units) }
        }
        if hasDetector {
            let det = try inst.createGroup("detector1", nxClass: "NXdetector")
            if let detector { try det.writeString("name", detector) }
            try det.writeString("operation_mode", mode ?? "unknown")
            if let exposure { try det.writeDoubles("count_time", [exposure.value], shape: [], units: exposure.units) }
            if let threshold { try det.writeDoubles("threshold_energy", [threshold.value], shape: [], units: threshold.units) }
        }
    }
}
