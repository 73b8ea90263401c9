import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Profile `nexus`: generic rules from the NeXus base classes and the NeXus manual
/// (nexusformat/definitions v2026.01). Each rule cites its source.
public enum NeXusRules {
    /// NeXus manual, "Rules for Naming in NeXus" (Design, v2020.10+): valid names match this.
    public static let validName = #"^[a-zA-Z0-9_]([a-zA-Z0-9_.]*[a-zA-Z0-9_])?$"#
    /// ... and the recommended (lower case) form this.
    public static let recommendedName = #"^[a-z_][a-z0-9_]*$"#

    /// Fields of type NX_DATE_TIME in the base classes emconv writes or reads (NXentry
    /// start_time/end_time, NXsample preparation_date, NXprocess/NXnote date, NXdetector
    /// calibration_date, NXem_event_data start_time/end_time).
    public static let dateFields: Set<String> = ["start_time", "end_time", "preparation_date", "date", "calibration_date"]
    /// Fields of type NX_BOOLEAN (NXsample is_simulation; NXdetector *_applied; NXem_optical_system).
    public static func isBooleanField(_ name: String) -> Bool {
        name == "is_simulation" || name == "applied" || name.hasSuffix("_applied") || name == "tilt_correction" || name == "dynamic_focus_correction"
    }

    /// ISO 8601 date and time with a UTC offset, `T` separator (nxdlTypes.xsd NX_DATE_TIME:
    /// "ISO 8601 date and time"; NeXus requires the time zone; `-00:00`, RFC 3339's "offset
    /// unknown", is refused like pynxtools does).
    public static func isISO8601WithOffset(_ s: String) -> Bool {
        s.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, options: .regularExpression) != nil
            && !s.hasSuffix("-00:00") && Timestamp.parseISO(s) != nil
    }

    public static func run(_ h5: HDF5File, _ r: inout ValidationReport) {
        let root = h5.root
        // NXroot (base_classes/NXroot.nxdl.xml): @NX_class is NXroot when present;
        // @file_time, @file_update_time are NX_DATE_TIME.
        if let c = root.stringAttribute("NX_class"), c != "NXroot" {
            r.add("NX-ROOT", .error, "/", "root @NX_class is '\(c)', NXroot.nxdl.xml requires 'NXroot'")
        }
        for a in ["file_time", "file_update_time"] where root.hasAttribute(a) {
            if let v = root.stringAttribute(a) {
                if !isISO8601WithOffset(v) {
                    r.add("NX-DATE", .error, "/@\(a)", "'\(v)' is not ISO 8601 date-time with a UTC offset (NXroot/@\(a) is NX_DATE_TIME)")
                }
            } else {
                r.add("NX-DATE", .error, "/@\(a)", "is not a string (NXroot/@\(a) is NX_DATE_TIME)")
            }
        }
        walk(root, &r)
        defaultChain(root, &r)
    }

    public static func walk(_ g: HDF5Group, _ r: inout ValidationReport) {
        let nxClass = g.stringAttribute("NX_class")
        if g.path != "/" {
            // NXDL (nxdl.xsd, "NX_class attribute"): every NeXus group names its base class.
            if let c = nxClass {
                if !NeXusRules.knownClasses.contains(c) {
                    r.add("NX-CLASS", .error, g.path, "@NX_class '\(c)' is not a NeXus base class, contributed definition or application definition")
                }
            } else {
                r.add("NX-CLASS", .warning, g.path, "group has no @NX_class (not a NeXus group; NeXus readers skip it)")
            }
        }
        if nxClass == "NXdata" { nxdata(g, &r) }
        for (name, isGroup) in g.children {
            let path = g.path == "/" ? "/" + name : g.path + "/" + name
            name_(name, path, &r)
            if isGroup {
                if let sub = g.openGroup(name) { walk(sub, &r) }
            } else if let d = g.openDataset(name) {
                field(name, d, parentClass: nxClass, &r)
            }
        }
    }

    public static func name_(_ name: String, _ path: String, _ r: inout ValidationReport) {
        if name.range(of: validName, options: .regularExpression) == nil {
            r.add("NX-NAME", .warning, path, "'\(name)' is not a valid NeXus name (NeXus manual, Rules for Naming: \(validName))")
        }
    }

    public static func field(_ name: String, _ d: HDF5Dataset, parentClass: String?, _ r: inout ValidationReport) {
        let info = d.typeInfo
        // NX_DATE_TIME fields (nxdlTypes.xsd).
        if dateFields.contains(name) {
            if info.cls == H5T_STRING {
                if info.isVariableString == false {
                    r.add("NX-STRTYPE", .warning, d.path, "date stored as a fixed-length string; NeXus and h5py expect variable-length UTF-8 strings for NX_DATE_TIME (nxdlTypes.xsd NX_CHAR/NX_DATE_TIME)")
                }
                if let v = d.readStringValues()?.first, !isISO8601WithOffset(v) {
                    r.add("NX-DATE", .error, d.path, "'\(v)' is not ISO 8601 date-time with a UTC offset (NX_DATE_TIME, nxdlTypes.xsd)")
                }
            } else {
                r.add("NX-DATE", .error, d.path, "NX_DATE_TIME field is not a string")
            }
        }
        // NX_BOOLEAN (nxdlTypes.xsd: "true/false value ( true | 1 | false | 0 )"); stored as
        // HDF5 enum {FALSE=0, TRUE=1} over 8-bit integers (h5py, NeXus convention).
        if isBooleanField(name) {
            if let members = d.enumMemberNames {
                if Set(members) != ["FALSE", "TRUE"] {
                    r.add("NX-BOOL", .error, d.path, "enum members \(members) are not FALSE/TRUE (NX_BOOLEAN)")
                }
            } else if info.cls == H5T_INTEGER, let v = try? d.readAllDoubles(), v.allSatisfy({ $0 == 0 || $0 == 1 }) {
                r.add("NX-BOOL", .warning, d.path, "NX_BOOLEAN stored as integer 0/1; NeXus tools (h5py, pynxtools) expect the HDF5 enum FALSE/TRUE")
            } else {
                r.add("NX-BOOL", .error, d.path, "NX_BOOLEAN field is not a boolean (HDF5 enum FALSE/TRUE)")
            }
        }
        // Units (NeXus manual, "Design: Units"): when given, parsable.
        if let u = d.stringAttribute("units") {
            if Units.parse(u) == nil {
                r.add("NX-UNITS", .error, d.path + "/@units", "unit '\(u)' cannot be parsed (NeXus: UDUNITS-compatible ASCII units)")
            }
        } else if d.hasAttribute("units") {
            r.add("NX-UNITS", .error, d.path + "/@units", "@units is not a string")
        }
        // Filters (HDF5 filter pipeline; NeXus manual "NeXus HDF5 rules": compressed data must
        // be readable): every filter available here and one chunk decodes.
        let missing = d.unavailableFilters
        if !missing.isEmpty {
            r.add("NX-FILTER", .error, d.path, "HDF5 filter(s) \(missing.map(String.init).joined(separator: ", ")) not available: data cannot be decoded here")
        } else if !d.firstChunkDecodes() {
            r.add("NX-FILTER", .error, d.path, "the first chunk does not decode (corrupt or wrong filter parameters)")
        }
    }

    /// NXdata (base_classes/NXdata.nxdl.xml): @signal names a numeric field; @axes has one entry
    /// per signal dimension ('.' for none); AXISNAME_indices are integers in range; each axis
    /// field's length matches the signal's dimension; axis fields carry @units.
    public static func nxdata(_ g: HDF5Group, _ r: inout ValidationReport) {
        guard let signal = g.stringAttribute("signal") else {
            r.add("NX-SIGNAL", .error, g.path + "/@signal", "NXdata has no @signal (NXdata.nxdl.xml)")
            return
        }
        guard let sd = g.openDataset(signal) else {
            r.add("NX-SIGNAL", .error, g.path + "/@signal", "@signal names '\(signal)', which is not a field of this group")
            return
        }
        let cls = sd.typeInfo.cls
        if !(cls == H5T_INTEGER || cls == H5T_FLOAT || cls == H5T_COMPOUND || cls == H5T_ENUM) {
            r.add("NX-SIGNAL", .error, sd.path, "signal '\(signal)' is not numeric")
        }
        let shape = sd.shape
        guard g.hasAttribute("axes") else { return }
        guard let axes = g.stringArrayAttribute("axes") else {
            r.add("NX-AXES", .error, g.path + "/@axes", "@axes is not a string or string array (NXdata.nxdl.xml)")
            return
        }
        if axes.count != shape.count {
            r.add("NX-AXES", .error, g.path + "/@axes", "@axes has \(axes.count) entries but the signal '\(signal)' has rank \(shape.count) (NXdata.nxdl.xml: one per dimension)")
        }
        for (pos, a) in axes.enumerated() where a != "." {
            guard let ad = g.openDataset(a) else {
                r.add("NX-AXES", .error, g.path + "/@axes", "@axes names '\(a)', which is not a field of this group")
                continue
            }
            var dims = [pos]
            let attr = "\(a)_indices"
            if g.hasAttribute(attr) {
                let ti = g.attributeTypeInfo(attr)
                if ti?.cls != H5T_INTEGER {
                    r.add("NX-INDICES", .error, g.path + "/@" + attr, "@\(attr) must be an integer (NXdata.nxdl.xml AXISNAME_indices is NX_INT)")
                } else if let v = g.numericAttribute(attr) {
                    if let bad = v.first(where: { $0 < 0 || Int($0) >= shape.count }) {
                        r.add("NX-INDICES", .error, g.path + "/@" + attr, "@\(attr) = \(fmt(bad)) is outside 0..<\(shape.count)")
                    } else {
                        dims = v.map { Int($0) }
                    }
                }
            }
            let ashape = ad.shape
            if ashape.count == 1 && dims.count == 1 && dims[0] < shape.count && ashape[0] != shape[dims[0]] && ashape[0] != shape[dims[0]] + 1 {
                r.add("NX-AXIS-LEN", .error, ad.path, "axis '\(a)' has \(ashape[0]) values but signal dimension \(dims[0]) has \(shape[dims[0]]) (NXdata.nxdl.xml)")
            } else if ashape.count == dims.count, zip(ashape, dims).contains(where: { $1 < shape.count && $0 != shape[$1] }) {
                r.add("NX-AXIS-LEN", .error, ad.path, "axis '\(a)' shape \(ashape) does not match the signal dimensions \(dims)")
            }
            if !ad.hasAttribute("units") {
                r.add("NX-UNITS", .error, ad.path, "axis '\(a)' has no @units (NXdata.nxdl.xml AXISNAME: units NX_ANY; use '' only for index axes)")
            }
        }
    }

    /// NXroot/@default → NXentry/@default → … ends at an NXdata (NXroot.nxdl.xml, NXentry.nxdl.xml
    /// "default" attribute; NeXus manual "Find the plottable data").
    public static func defaultChain(_ root: HDF5Group, _ r: inout ValidationReport) {
        var g = root
        var hops = 0
        while g.stringAttribute("NX_class") != "NXdata" {
            guard let d = g.stringAttribute("default") else {
                r.add("NX-DEFAULT", g.path == "/" ? .warning : .error, g.path + "/@default",
                      g.path == "/" ? "no @default: readers cannot find the plottable data" : "the @default chain stops at \(g.stringAttribute("NX_class") ?? "a group"), before reaching an NXdata")
                return
            }
            guard let next = g.openGroup(d) else {
                r.add("NX-DEFAULT", .error, g.path + "/@default", "@default names '\(d)', which is not a child group")
                return
            }
            g = next
            hops += 1
            if hops > 16 { r.add("NX-DEFAULT", .error, g.path, "@default chain longer than 16 groups"); return }
        }
    }
}
