import EMCore
import EMHDF5
import Foundation

/// The scan record an ARINA acquisition writes beside its master (`NAME.h5`, group `STEM Metadata`).
struct DectrisSideFile {
    var scanX: Int?
    var scanY: Int?
    /// Scan step (`Pixel Size`, nm).
    var pixelSizeNM: Double?
    var highTensionV: Double?
    var cameraLengthM: Double?
    var magnification: Double?
    var dwellTimeS: Double?
    var tree: MetaValue
}

extension DectrisReader {
    static func readSideFile(_ path: String) throws -> DectrisSideFile? {
        guard let f = try? HDF5File(reading: path), let g = f.root.openGroup("STEM Metadata") else { return nil }
        func num(_ n: String) -> Double? { g.numericAttribute(n)?.first }
        func positive(_ n: String) -> Double? { num(n).flatMap { $0 > 0 ? $0 : nil } }
        return DectrisSideFile(scanX: num("NumPixelsX").map { Int($0) }, scanY: num("NumPixelsY").map { Int($0) },
                               pixelSizeNM: positive("Pixel Size"), highTensionV: positive("High Tension"),
                               cameraLengthM: positive("Camera Length"), magnification: positive("Magnification"),
                               dwellTimeS: positive("ScanDwellTime"), tree: .object([("STEM Metadata", g.attributesMeta)]))
    }
}

/// Dectris NXdetector fields → the normalized model, the vendor tree and the detector tables.
enum DectrisMetadata {
    static func value(_ g: HDF5Group, _ name: String) -> MetaValue? { g.openDataset(name)?.readMeta(maxElements: 16) }

    /// A number with its `units` attribute, converted to `to` when the units are known.
    static func quantity(_ g: HDF5Group, _ name: String) -> Quantity? {
        guard let d = g.openDataset(name), let v = d.readMeta(maxElements: 1)?.doubleValue, v.isFinite else { return nil }
        return Quantity(v, d.stringAttribute("units") ?? "")
    }

    static func normalized(_ det: HDF5Group) -> NormalizedMetadata {
        var md = NormalizedMetadata()
        let spec = det.openGroup("detectorSpecific")
        if let q = quantity(det, "count_time") { md.exposureTime = q }
        if let q = quantity(det, "frame_time") { md.frameTime = q }
        let description = value(det, "description")?.stringValue
        md.detectorName = description.map { $0.isEmpty ? "Dectris" : $0 } ?? "Dectris"
        if let t = quantity(det, "threshold_energy"), t.value > 0 {
            md.detectorThreshold = t.units == "eV" ? Quantity(t.value / 1000, "keV") : t
        }
        if let bits = value(det, "bit_depth_image")?.intValue { md.counterDepthBits = bits }
        var mode: [String] = []
        if let trig = spec.flatMap({ value($0, "trigger_mode")?.stringValue }), !trig.isEmpty { mode.append("trigger \(trig)") }
        if let bits = md.counterDepthBits { mode.append("\(bits)-bit images") }
        md.detectorMode = mode.isEmpty ? nil : mode.joined(separator: ", ")
        md.softwareName = "Dectris detector firmware"
        md.softwareVersion = spec.flatMap { value($0, "software_version")?.stringValue }
        if let s = spec.flatMap({ value($0, "data_collection_date")?.stringValue }) { md.startTime = Timestamp.parseISO(s) }
        // Electron detectors record the beam energy as photon_energy.
        if let e = spec.flatMap({ quantity($0, "photon_energy") }), e.units == "eV", e.value > 0 { md.beamEnergy = Quantity(e.value, "V") }
        func extra(_ key: String, _ q: Quantity?) { if let q { md.extra[key] = "\(fmt(q.value)) \(q.units)".trimmingCharacters(in: .whitespaces) } }
        extra("detector_pixel_size_x", quantity(det, "x_pixel_size"))
        extra("detector_pixel_size_y", quantity(det, "y_pixel_size"))
        extra("detector_distance", quantity(det, "detector_distance"))
        extra("beam_center_x", quantity(det, "beam_center_x"))
        extra("beam_center_y", quantity(det, "beam_center_y"))
        extra("sensor_thickness", quantity(det, "sensor_thickness"))
        if let s = value(det, "sensor_material")?.stringValue, !s.isEmpty { md.extra["sensor_material"] = s }
        if let s = value(det, "detector_number")?.stringValue, !s.isEmpty { md.extra["detector_serial_number"] = s }
        if let s = value(det, "saturation_value")?.intValue { md.extra["saturation_value"] = String(s) }
        if let s = spec.flatMap({ value($0, "eiger_fw_version")?.stringValue }), !s.isEmpty { md.extra["firmware_version"] = s }
        if let s = spec.flatMap({ value($0, "countrate_correction_count_cutoff")?.intValue }) { md.extra["countrate_correction_count_cutoff"] = String(s) }
        return md
    }

    static func apply(side s: DectrisSideFile, to md: inout NormalizedMetadata) {
        if let v = s.highTensionV { md.beamEnergy = Quantity(v, "V") }
        if let v = s.cameraLengthM { md.cameraLength = Quantity(v, "m") }
        if let v = s.magnification { md.magnification = v }
        if let v = s.dwellTimeS { md.dwellTime = Quantity(v, "s") }
    }

    /// Flat field, pixel mask, count-rate tables and whether each was applied, by NXdetector field name.
    static func auxiliary(_ det: HDF5Group) throws -> [String: AuxiliaryArray] {
        var out: [String: AuxiliaryArray] = [:]
        guard let spec = det.openGroup("detectorSpecific") else { return out }
        let tables: [(String, String, String)] = [
            ("flatfield", "flatfield", "flat-field correction factors per pixel (Dectris detectorSpecific/flatfield)"),
            ("pixel_mask", "pixel_mask", "pixel mask, non-zero = excluded pixel (Dectris detectorSpecific/pixel_mask)"),
            ("countrate_correction_lookup_table", "countrate_correction_lookup_table", "count-rate correction lookup table (Dectris)"),
            ("countrate_correction_table", "countrate_correction_table", "count-rate correction table (Dectris)"),
        ]
        for (field, name, text) in tables {
            guard let d = spec.openDataset(name), let t = d.elementType, t.isNumericScalar else { continue }
            let bytes = try d.readAll(as: t)
            out[field] = AuxiliaryArray(elementType: t, shape: d.shape, bytes: bytes, units: d.stringAttribute("units"), description: text)
        }
        for (field, name) in [("flatfield_applied", "flatfield_correction_applied"), ("pixel_mask_applied", "pixel_mask_applied"),
                              ("countrate_correction_applied", "countrate_correction_applied")] {
            if let v = value(det, name)?.intValue {
                out[field] = AuxiliaryArray(elementType: .bool, shape: [], bytes: [v != 0 ? 1 : 0], description: "Dectris \(name)")
            }
        }
        return out
    }

    /// The master's groups and small datasets (external links as their target), depth-limited.
    static func tree(_ g: HDF5Group, depth: Int) -> MetaValue {
        var out: [(String, MetaValue)] = []
        if case let .object(attrs) = g.attributesMeta, !attrs.isEmpty { out.append(("@attributes", .object(attrs))) }
        for name in g.childNames {
            if let link = g.externalLink(name) {
                out.append((name, .string("external link to \(link.file)//\(link.object)")))
            } else if let sub = g.openGroup(name) {
                if depth < 8 { out.append((name, tree(sub, depth: depth + 1))) }
            } else if let d = g.openDataset(name) {
                if let v = d.readMeta(maxElements: 64) {
                    var units: MetaValue?
                    if let u = d.stringAttribute("units") { units = .string(u) }
                    out.append((name, units.map { .object([("value", v), ("units", $0)]) } ?? v))
                } else {
                    out.append((name, .string("array \(d.shape.map(String.init).joined(separator: "x")) (kept as a detector table or not copied)")))
                }
            }
        }
        return .object(out)
    }
}
