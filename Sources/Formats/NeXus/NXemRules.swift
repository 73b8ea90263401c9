import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Profile `nxem`: the application definition NXem (nexusformat/definitions v2026.01,
/// applications/NXem.nxdl.xml, as bundled by pynxtools 0.16.0). In an application definition
/// a concept is required unless optional/recommended/minOccurs=0, and a required child is
/// required only when its (optional) parent exists. Missing required fields are errors naming
/// the sidecar key that fills them; missing recommended ones are warnings.
public enum NXemRules {
    public static let imageAxes = ["axis_m", "axis_k", "axis_j", "axis_i"]
    public static let spectrumAxes = ["axis_k", "axis_j", "axis_i"]

    /// NXDL unit categories of the NXem fields emconv maps (NXem, NXsource, NXscan_controller,
    /// NXem_optical_system, NXdetector, NXsample).
    public static let unitCategories: [String: String] = [
        "electron_source/voltage": "NX_VOLTAGE", "scan_controller/dwell_time": "NX_TIME",
        "optics/camera_length": "NX_LENGTH", "optics/semi_convergence_angle": "NX_ANGLE", "optics/rotation": "NX_ANGLE",
        "optics/probe_current": "NX_CURRENT", "optics/magnification": "NX_DIMENSIONLESS",
        "detector/count_time": "NX_TIME", "detector/frame_time": "NX_TIME", "detector/threshold_energy": "NX_ENERGY",
        "sample/thickness": "NX_LENGTH", "stage/tilt1": "NX_ANGLE", "stage/tilt2": "NX_ANGLE", "stage/rotation": "NX_ANGLE",
        "stage/position": "NX_LENGTH",
    ]

    public struct Ctx {
        var r: ValidationReport
        mutating func need(_ g: HDF5Group, _ name: String, field: Bool = true, required: Bool, key: String?, what: String) {
            guard !g.exists(name) else { return }
            let path = g.path + "/" + name
            let fill = key.map { " (sidecar: \($0))" } ?? ""
            if required {
                r.add("NXEM-REQ", .error, path, "required by NXem: \(what)\(fill)")
            } else {
                r.add("NXEM-REC", .warning, path, "recommended by NXem: \(what)\(fill)")
            }
        }
        mutating func needAttr(_ node: HDF5Node, _ name: String, what: String) {
            if !node.hasAttribute(name) { r.add("NXEM-REQ", .error, node.path + "/@" + name, "required by NXem: \(what)") }
        }
    }

    public static func children(_ g: HDF5Group, class cls: String) -> [HDF5Group] {
        g.children.filter { $0.1 }.compactMap { g.openGroup($0.0) }.filter { $0.stringAttribute("NX_class") == cls }
    }

    public static func run(_ h5: HDF5File, _ report: inout ValidationReport) {
        var c = Ctx(r: report)
        defer { report = c.r }
        let entries = children(h5.root, class: "NXentry")
        if entries.isEmpty { c.r.add("NXEM-REQ", .error, "/", "no NXentry group (NXem: NXentry minOccurs=1)"); return }
        for e in entries {
            // NXentry/definition: enumeration {NXem}.
            if let d = e.openDataset("definition")?.readStringValues()?.first {
                if d != "NXem" { c.r.add("NXEM-DEF", .error, e.path + "/definition", "definition is '\(d)', not NXem") }
            } else {
                c.need(e, "definition", required: true, key: nil, what: "definition = NXem")
            }
            c.need(e, "start_time", required: true, key: "start_time", what: "NXentry/start_time (NX_DATE_TIME)")
            c.need(e, "end_time", required: false, key: "end_time", what: "NXentry/end_time")
            sample(e, &c)
            for u in children(e, class: "NXuser") {
                if !u.childNames.contains(where: { $0.hasPrefix("identifier") }) {
                    c.r.add("NXEM-REC", .warning, u.path + "/identifierNAME", "recommended by NXem: a user identifier, e.g. identifier_orcid with @type ORCID (sidecar: users[].orcid)")
                }
                for n in u.childNames where n.hasPrefix("identifier") {
                    if let d = u.openDataset(n) { c.needAttr(d, "type", what: "NXuser/identifierNAME/@type") }
                }
            }
            for n in children(e, class: "NXnote") {
                c.need(n, "file_name", required: true, key: nil, what: "NXnote/file_name (noteID)")
            }
            if let m = e.openGroup("measurement") { measurement(m, &c) }
        }
    }

    public static func sample(_ e: HDF5Group, _ c: inout Ctx) {
        let samples = children(e, class: "NXsample")
        guard let s = samples.first else {
            c.r.add("NXEM-REQ", .error, e.path + "/sample", "required by NXem: NXsample (sampleID, minOccurs=1) with is_simulation, preparation_date, atom_types (sidecar: sample.is_simulation, sample.preparation_date, sample.atom_types)")
            return
        }
        for s in samples {
            c.need(s, "is_simulation", required: true, key: "sample.is_simulation", what: "NXsample/is_simulation (NX_BOOLEAN)")
            c.need(s, "preparation_date", required: true, key: "sample.preparation_date", what: "NXsample/preparation_date (NX_DATE_TIME)")
            c.need(s, "atom_types", required: true, key: "sample.atom_types", what: "NXsample/atom_types (comma-separated element symbols)")
            c.need(s, "name", required: false, key: "sample.name", what: "NXsample/name")
            c.need(s, "physical_form", required: false, key: "sample.physical_form", what: "NXsample/physical_form")
            c.need(s, "identifier_sample", required: false, key: "sample.identifier", what: "NXsample/identifier_sample")
            if let a = s.openDataset("atom_types")?.readStringValues()?.first {
                let items = a.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if let bad = items.first(where: { !NXemVocabulary.elements.contains($0) }) {
                    c.r.add("NXEM-ATOMS", .error, s.path + "/atom_types", "'\(bad)' is not an element symbol (NXem: comma-separated elements of the periodic table)")
                }
            }
            // NXem's enumeration here is open: another value is a note, not an error (as in pynxtools).
            if let p = s.openDataset("physical_form")?.readStringValues()?.first, !NXemVocabulary.physicalForms.contains(p) {
                c.r.add("NXEM-ENUM", .info, s.path + "/physical_form", "'\(p)' is not one of NXem's suggested values \(NXemVocabulary.physicalForms.joined(separator: ", ")) (open enumeration: accepted)")
            }
            if let d = s.openDataset("identifier_sample") { c.needAttr(d, "type", what: "identifier_sample/@type") }
        }
        _ = s
    }

    public static func units(_ g: HDF5Group, _ name: String, _ key: String, _ c: inout Ctx) {
        guard let d = g.openDataset(name), let cat = unitCategories[key] else { return }
        let cls = d.typeInfo.cls
        if cls != H5T_INTEGER && cls != H5T_FLOAT {
            c.r.add("NXEM-TYPE", .error, d.path, "\(name) must be a number (NX_NUMBER)")
        }
        guard let u = d.stringAttribute("units") else {
            if cat != "NX_DIMENSIONLESS" { c.r.add("NXEM-UNITS", .error, d.path, "\(name) has no @units (\(cat))") }
            return
        }
        if Units.parse(u) != nil, !Units.matches(u, category: cat), !(cat == "NX_DIMENSIONLESS" && u.isEmpty) {
            c.r.add("NXEM-UNITS", .error, d.path + "/@units", "unit '\(u)' is not a \(cat) unit")
        }
    }

    public static func measurement(_ m: HDF5Group, _ c: inout Ctx) {
        // measurement/instrument (NXem_instrument), required when measurement exists.
        if let inst = m.openGroup("instrument") {
            c.need(inst, "name", required: false, key: "instrument.name", what: "NXem_instrument/name")
            c.need(inst, "location", required: false, key: "instrument.location", what: "NXem_instrument/location")
            if let fab = inst.openGroup("fabrication") {
                c.need(fab, "vendor", required: true, key: "instrument.vendor", what: "fabrication/vendor")
                c.need(fab, "model", required: true, key: "instrument.model", what: "fabrication/model")
                c.need(fab, "serial_number", required: false, key: "instrument.serial_number", what: "fabrication/serial_number")
            } else {
                c.r.add("NXEM-REQ", .error, inst.path + "/fabrication", "required by NXem: NXfabrication with vendor and model (sidecar: instrument.vendor, instrument.model)")
            }
            for p in children(inst, class: "NXprogram") {
                if let prog = p.openDataset("program") { c.needAttr(prog, "version", what: "NXprogram/program/@version") } else {
                    c.need(p, "program", required: true, key: nil, what: "NXprogram/program")
                }
            }
            if let col = inst.openGroup("ebeam_column") {
                if let src = col.openGroup("electron_source") {
                    c.need(src, "emitter_type", required: true, key: "instrument.emitter_type", what: "electron_source/emitter_type")
                } else {
                    c.r.add("NXEM-REC", .warning, col.path + "/electron_source", "recommended by NXem: electron_source with emitter_type (sidecar: instrument.emitter_type)")
                }
            } else {
                c.r.add("NXEM-REQ", .error, inst.path + "/ebeam_column", "required by NXem: NXebeam_column")
            }
            for d in children(inst, class: "NXdetector") {
                c.need(d, "name", required: true, key: nil, what: "NXdetector/name")
            }
        } else {
            c.r.add("NXEM-REQ", .error, m.path + "/instrument", "required by NXem when measurement exists: NXem_instrument")
        }
        for ev in children(m, class: "NXem_event_data") { event(ev, &c) }
    }

    public static func event(_ ev: HDF5Group, _ c: inout Ctx) {
        c.need(ev, "start_time", required: false, key: "start_time", what: "event start_time")
        c.need(ev, "end_time", required: false, key: "end_time", what: "event end_time")
        if let inst = ev.openGroup("instrument") {
            if let col = inst.openGroup("ebeam_column") {
                if let src = col.openGroup("electron_source") {
                    c.need(src, "voltage", required: true, key: nil, what: "electron_source/voltage (NX_VOLTAGE)")
                    units(src, "voltage", "electron_source/voltage", &c)
                }
                if let sc = col.openGroup("scan_controller") {
                    c.need(sc, "scan_schema", required: true, key: "scan.schema", what: "scan_controller/scan_schema")
                    c.need(sc, "dwell_time", required: true, key: nil, what: "scan_controller/dwell_time (NX_TIME)")
                    units(sc, "dwell_time", "scan_controller/dwell_time", &c)
                }
            } else {
                c.r.add("NXEM-REQ", .error, inst.path + "/ebeam_column", "required by NXem in the event instrument: NXebeam_column")
            }
            if let o = inst.openGroup("optics") {
                for f in ["camera_length", "semi_convergence_angle", "rotation", "probe_current", "magnification"] { units(o, f, "optics/\(f)", &c) }
            }
            for d in children(inst, class: "NXdetector") {
                c.need(d, "operation_mode", required: true, key: "detector.operation_mode", what: "NXdetector/operation_mode")
                for f in ["count_time", "frame_time", "threshold_energy"] { units(d, f, "detector/\(f)", &c) }
            }
            for s in children(inst, class: "NXmanipulator") {
                for f in ["tilt1", "tilt2", "rotation", "position"] {
                    c.need(s, f, required: true, key: nil, what: "stage/\(f)")
                    units(s, f, "stage/\(f)", &c)
                }
            }
        }
        for img in children(ev, class: "NXimage") { dataHolder(img, spectrum: false, &c) }
        for sp in children(ev, class: "NXspectrum") { dataHolder(sp, spectrum: true, &c) }
    }

    /// NXimage/image_Nd and NXspectrum/spectrum_Nd (NXem eventID/imageID, spectrumID), and
    /// their NXprocess (detector_identifier, input NXnote).
    public static func dataHolder(_ g: HDF5Group, spectrum: Bool, _ c: inout Ctx) {
        for p in children(g, class: "NXprocess") {
            c.need(p, "detector_identifier", required: true, key: nil, what: "NXprocess/detector_identifier")
            if let input = p.openGroup("input") {
                for f in ["type", "file_name", "checksum", "algorithm", "context"] {
                    c.need(input, f, required: true, key: nil, what: "process/input/\(f)")
                }
            } else {
                c.r.add("NXEM-REC", .warning, p.path + "/input", "recommended by NXem: process/input (NXnote naming the source file and its checksum)")
            }
        }
        for d in children(g, class: "NXdata") {
            let name = d.path.split(separator: "/").last.map(String.init) ?? ""
            let prefix = spectrum ? "spectrum_" : "image_"
            guard name.hasPrefix(prefix) || name.hasPrefix("stack_"), name.hasSuffix("d"), let n = Int(name.dropFirst(name.hasPrefix("stack_") ? 6 : prefix.count).dropLast()) else {
                c.r.add("NXEM-DATA", .warning, d.path, "NXdata in \(spectrum ? "NXspectrum" : "NXimage") is not one of NXem's \(prefix)Nd / stack_Nd")
                continue
            }
            if name.hasPrefix("stack_") { continue }
            let signal = spectrum ? "intensity" : "real"
            let expectedAxes = spectrum ? Array(spectrumAxes.suffix(n)) + ["axis_energy"] : Array(imageAxes.suffix(n))
            if d.stringAttribute("signal") != signal {
                c.r.add("NXEM-DATA", .error, d.path + "/@signal", "NXem \(name) has signal '\(signal)', not '\(d.stringAttribute("signal") ?? "")'")
            }
            if let sd = d.openDataset(signal) {
                c.needAttr(sd, "long_name", what: "\(name)/\(signal)/@long_name")
                // NXem: real/intensity are NX_NUMBER (integers or floats); complex values go
                // to the NX_COMPLEX field ('complex'; 'magnitude' in image_2d).
                let cls = sd.typeInfo.cls
                if cls != H5T_INTEGER && cls != H5T_FLOAT {
                    c.r.add("NXEM-TYPE", .error, sd.path, "\(name)/\(signal) must be NX_NUMBER (integer or float)\(cls == H5T_COMPOUND ? "; complex values belong in NXem's NX_COMPLEX field" : "")")
                }
                if sd.shape.count != expectedAxes.count {
                    c.r.add("NXEM-DATA", .error, sd.path, "\(name)/\(signal) has rank \(sd.shape.count); NXem \(name) has rank \(expectedAxes.count)")
                }
            } else {
                c.need(d, signal, required: true, key: nil, what: "\(name)/\(signal)")
            }
            if let axes = d.stringArrayAttribute("axes"), axes != expectedAxes, axes.count == expectedAxes.count {
                c.r.add("NXEM-DATA", .error, d.path + "/@axes", "NXem \(name) axes are \(expectedAxes), not \(axes)")
            }
            for a in expectedAxes {
                if let ad = d.openDataset(a) {
                    c.needAttr(ad, "long_name", what: "\(name)/\(a)/@long_name")
                } else {
                    c.need(d, a, required: true, key: nil, what: "\(name)/\(a)")
                }
                // NXspectrum (base class): axis_energy is NX_ENERGY, axis_i/j/k NX_LENGTH (a pixel
                // index passes, '' does not: the same verdict as pynxtools). NXimage's are NX_ANY.
                if spectrum, let ad = d.openDataset(a) {
                    let cat = a == "axis_energy" ? "NX_ENERGY" : "NX_LENGTH"
                    let what = a == "axis_energy" ? "an energy unit" : "a length unit (or pixel for an index axis)"
                    if let u = ad.stringAttribute("units") {
                        if !Units.matchesNXDL(u, category: cat) {
                            c.r.add("NXEM-UNITS", .error, ad.path + "/@units", "\(a) unit '\(u)' is not \(what) (NXspectrum: \(cat))")
                        }
                    } else {
                        c.r.add("NXEM-UNITS", .error, ad.path, "\(a) has no @units (NXspectrum: \(cat))")
                    }
                }
                let attr = "\(a)_indices"
                // NXem declares AXISNAME_indices as NX_UINT (NXdata itself: NX_INT).
                if let ti = d.attributeTypeInfo(attr), ti.cls == H5T_INTEGER, ti.signed {
                    c.r.add("NXEM-INDICES", .error, d.path + "/@" + attr, "@\(attr) is a signed integer; NXem declares AXISNAME_indices as NX_UINT")
                }
            }
        }
    }
}
