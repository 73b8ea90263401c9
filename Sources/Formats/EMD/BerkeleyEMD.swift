import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Berkeley EMD v0.2 (NCEM, HyperSpy, Prismatic): groups with `emd_group_type = 1` hold a
/// data array and `dim1..dimN` vectors (1-based: `dimK` describes axis K-1 in C order).
enum BerkeleyEMD {
    static let maxNodes = 10_000
    static let metadataGroups = ["microscope", "sample", "user", "comments", "stage"]

    static func groupType(_ g: HDF5Node) -> Int? {
        guard let v = g.attributeMeta("emd_group_type") else { return nil }
        return v.intValue
    }

    static func looksLikeBerkeley(_ root: HDF5Group) -> Bool {
        if root.hasAttribute("version_major") { return true }
        for n in root.groupNames.prefix(64) {
            if let g = root.openGroup(n), groupType(g) != nil || g.hasAttribute("version_major") { return true }
        }
        return false
    }

    /// Every `emd_group_type = 1` group, depth-first in stored order.
    static func dataGroups(_ root: HDF5Group, path: String) throws -> [HDF5Group] {
        var out: [HDF5Group] = []
        var visited = 0
        func walk(_ g: HDF5Group, depth: Int) {
            guard depth < 12 else { return }
            for n in g.groupNames {
                visited += 1
                if visited > maxNodes { return }
                guard let c = g.openGroup(n) else { continue }
                if groupType(c) == 1 { out.append(c) } else { walk(c, depth: depth + 1) }
            }
        }
        walk(root, depth: 0)
        return out
    }

    static func open(_ path: String, file: HDF5File, handle: RandomAccessFile) throws -> OpenedFile {
        let root = file.root
        var warnings: [String] = []
        let prismatic = root.groupNames.contains { n in root.openGroup(n).map { groupType($0) == 2 } ?? false }
        let vmaj = root.attributeMeta("version_major")?.stringValue
        let vmin = root.attributeMeta("version_minor")?.stringValue

        // File-level metadata: root attributes and the metadata groups (attributes).
        var top: [(String, MetaValue)] = [("attributes", root.attributesMeta)]
        for m in metadataGroups {
            if let g = root.openGroup(m) { top.append((m, g.attributesMeta)) }
        }
        var md = NormalizedMetadata()
        mapMetadata(root, into: &md)
        if prismatic { md.softwareName = "Prismatic" }

        var datasets: [Dataset] = []
        var names = Set<String>()
        for g in try dataGroups(root, path: path) {
            do {
                guard let ds = try dataset(g, file: file, path: path, metadata: md, warnings: &warnings) else { continue }
                var name = ds.name
                var k = 2
                while names.contains(name) { name = "\(ds.name)_\(k)"; k += 1 }
                ds.name = name
                names.insert(name)
                datasets.append(ds)
            } catch let e as EMError {
                warnings.append("\(g.path): skipped: \(e.message)")
            }
        }
        guard !datasets.isEmpty else {
            throw EMError(.badInput, file: path, "EMD file holds no readable data group (emd_group_type = 1 with a data array and dims)")
        }
        let variant = prismatic ? "Prismatic EMD" : "Berkeley EMD v\(vmaj ?? "?").\(vmin ?? "?")"
        return OpenedFile(path: path, format: "emd", variant: variant, datasets: datasets, files: [path],
                          original: .object(top), warnings: warnings, readerName: "emconv-emd",
                          readerVersion: EMDReader.version, handles: [handle])
    }

    /// The data array of a group: `data`, Prismatic `datacube`/`realslice`/`diffractionslice`,
    /// else the only non-dim dataset.
    static func dataArray(_ g: HDF5Group) -> HDF5Dataset? {
        for n in ["data", "datacube", "realslice", "diffractionslice"] {
            if let d = g.openDataset(n) { return d }
        }
        let others = g.datasetNames.filter { $0.range(of: #"^dim\d+$"#, options: .regularExpression) == nil }
        return others.count == 1 ? g.openDataset(others[0]) : nil
    }

    static func dataset(_ g: HDF5Group, file: HDF5File, path: String, metadata: NormalizedMetadata,
                        warnings: inout [String], firstDim: Int = 1) throws -> Dataset? {
        guard let data = dataArray(g) else {
            warnings.append("\(g.path): no data array, skipped")
            return nil
        }
        let shape = data.shape
        guard let type = data.elementType, !shape.isEmpty else {
            warnings.append("\(data.path): element type or shape not supported (\(data.typeInfo.cls)), skipped")
            return nil
        }
        guard shape.allSatisfy({ $0 > 0 }) else {
            warnings.append("\(data.path): empty array \(shape), skipped")
            return nil
        }
        let (axes, dimMeta) = readDims(g, shape: shape, firstDim: firstDim, warnings: &warnings)
        let frameRank = shape.count >= 2 ? 2 : 1
        var roledAxes = axes
        for i in 0..<roledAxes.count { roledAxes[i].role = i >= shape.count - frameRank ? .signal : .navigation }
        let groupName = (g.path as NSString).lastPathComponent
        let kind: String
        switch shape.count {
        case 1: kind = "spectrum"
        case 2: kind = "image"
        case 4: kind = "4d-stem"
        default: kind = "stack"
        }
        var original: [(String, MetaValue)] = [("group", .string(g.path)), ("attributes", g.attributesMeta), ("dims", .object(dimMeta))]
        original.append(("data_attributes", data.attributesMeta))
        let units = data.attributeString("units") ?? ""
        let title = g.attributeString("title") ?? groupName
        return Dataset(name: sanitize(groupName), title: title, axes: roledAxes, elementType: type,
                       frameRank: frameRank, quantity: "intensity", quantityUnits: EMDUnits.normalize(units),
                       signalKind: kind, metadata: metadata, original: .object(original),
                       conventions: ["axis_order": "as stored (C order); dims name each axis"],
                       source: HDF5HyperslabSource(owner: file, dataset: data, shape: shape, frameRank: frameRank, type: type))
    }

    /// Axes from `dim<firstDim>…`: names, units, coordinates or 2-value linear, string labels.
    static func readDims(_ g: HDF5Group, shape: [Int], firstDim: Int, warnings: inout [String]) -> ([Axis], [(String, MetaValue)]) {
        var axes: [Axis] = []
        var meta: [(String, MetaValue)] = []
        for (i, size) in shape.enumerated() {
            let dimName = "dim\(i + firstDim)"
            var axis = Axis(name: "axis_\(i)", size: size, role: .navigation)
            guard let d = g.openDataset(dimName) else {
                warnings.append("\(g.path): no \(dimName) for axis \(i) (size \(size)); axis left uncalibrated")
                axes.append(axis)
                continue
            }
            let name = d.attributeString("name")?.trimmingCharacters(in: CharacterSet(charactersIn: "\0 ")) ?? ""
            let rawUnits = d.attributeString("units")?.trimmingCharacters(in: CharacterSet(charactersIn: "\0 ")) ?? ""
            if !name.isEmpty { axis.name = name }
            axis.longName = name.isEmpty ? nil : name
            var dm: [(String, MetaValue)] = [("name", .string(name)), ("units", .string(rawUnits))]
            if d.typeInfo.cls == H5T_STRING {
                // String-valued dim: labels of a stack axis; kept in metadata, axis uncalibrated.
                if let labels = d.readStringValues() { dm.append(("labels", .array(labels.map { .string($0) }))) }
                axes.append(axis)
                meta.append((dimName, .object(dm)))
                continue
            }
            let n = d.elementCount
            guard n <= max(size, 2), let values = try? d.readAllDoubles() else {
                warnings.append("\(d.path): \(n) values for an axis of size \(size); axis left uncalibrated")
                axes.append(axis)
                meta.append((dimName, .object(dm)))
                continue
            }
            if let cal = EMDAxes.calibration(values, size: size) {
                axis.calibration = cal
                axis.units = EMDUnits.normalize(rawUnits)
            } else {
                warnings.append("\(d.path): \(n) values for an axis of size \(size); axis left uncalibrated")
            }
            if values.count <= 16 { dm.append(("values", .array(values.map { .double($0) }))) }
            meta.append((dimName, .object(dm)))
            axes.append(axis)
        }
        return (axes, meta)
    }

    static func sanitize(_ s: String) -> String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-"))
        let t = String(s.unicodeScalars.map { allowed.contains($0) && $0.isASCII ? Character($0) : "_" })
        return t.isEmpty ? "data" : t
    }

    /// Normalized metadata from the `microscope` group (values as the file states them).
    static func mapMetadata(_ root: HDF5Group, into md: inout NormalizedMetadata) {
        guard let m = root.openGroup("microscope") else { return }
        for n in m.attributeNames {
            guard let v = m.attributeMeta(n) else { continue }
            let key = n.lowercased()
            switch key {
            case "name":
                if let s = v.stringValue, !s.trimmingCharacters(in: CharacterSet(charactersIn: "\0 ")).isEmpty { md.instrumentName = s }
            case "high tension", "voltage", "accelerating voltage", "acceleration voltage":
                if let d = v.doubleValue { md.beamEnergy = Quantity(d, "V") } else if let s = v.stringValue, let q = parseVoltage(s) { md.beamEnergy = q }
            case "magnification":
                if let d = v.doubleValue { md.magnification = d }
            case "dwell time":
                if let d = v.doubleValue { md.dwellTime = Quantity(d, "s") }
            default:
                if let s = v.stringValue { md.extra["microscope/\(n)"] = s }
                else if case let .array(a) = v { md.extra["microscope/\(n)"] = a.compactMap(\.stringValue).joined(separator: ", ") }
            }
        }
    }

    /// "300kV", "300 kV", "200000 V" → volts.
    static func parseVoltage(_ s: String) -> Quantity? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        for (suffix, f) in [("kv", 1e3), ("mv", 1e6), ("v", 1.0)] where t.hasSuffix(suffix) {
            if let d = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)) { return Quantity(d * f, "V") }
        }
        return nil
    }
}

/// EMD 1.0 (emdfile, py4DSTEM): root `emd_group_type = "file"`; `array` nodes hold `data` and
/// 0-based `dim0..` (full or 2-value linear); `metadatabundle` groups hold metadata datasets
/// with a `type` attribute.
enum EMD1 {
    static func open(_ path: String, file: HDF5File, handle: RandomAccessFile) throws -> OpenedFile {
        let root = file.root
        var warnings: [String] = []
        var datasets: [Dataset] = []
        var top: [(String, MetaValue)] = [("attributes", root.attributesMeta)]
        var names = Set<String>()
        var visited = 0

        func walk(_ g: HDF5Group, depth: Int, bundles: [(String, MetaValue)]) {
            guard depth < 16 else { return }
            // Metadata bundles of this node apply to its arrays.
            var local = bundles
            for n in g.groupNames {
                guard let c = g.openGroup(n), c.attributeMeta("emd_group_type")?.stringValue == "metadatabundle" else { continue }
                local.append((c.path, bundleMeta(c)))
            }
            for n in g.groupNames {
                visited += 1
                if visited > BerkeleyEMD.maxNodes { return }
                guard let c = g.openGroup(n) else { continue }
                let t = c.attributeMeta("emd_group_type")?.stringValue ?? ""
                switch t {
                case "array":
                    var md = NormalizedMetadata()
                    md.softwareName = root.attributeString("authoring_program")
                    if let read = try? BerkeleyEMD.dataset(c, file: file, path: path, metadata: md, warnings: &warnings, firstDim: 0) {
                        let cls = c.attributeString("python_class") ?? ""
                        if cls == "DataCube" { read.signalKind = "4d-stem" }
                        if cls == "DiffractionSlice" { read.signalKind = "diffraction" }
                        // emconv's outputs: the dataset as written (names, roles, frame rank, kind).
                        let ds = EMD1Model.restore(read, array: c, file: file)
                        var name = ds.name
                        var k = 2
                        while names.contains(name) { name = "\(ds.name)_\(k)"; k += 1 }
                        ds.name = name
                        names.insert(name)
                        var orig: [(String, MetaValue)] = []
                        if case let .object(p) = ds.original { orig = p }
                        orig.append(("python_class", .string(cls)))
                        var own = local
                        for n2 in c.groupNames {
                            if let b = c.openGroup(n2), b.attributeMeta("emd_group_type")?.stringValue == "metadatabundle" {
                                own.append((b.path, bundleMeta(b)))
                            }
                        }
                        if !own.isEmpty { orig.append(("metadata", .object(own))) }
                        ds.original = .object(orig)
                        applyCalibration(own, to: ds)
                        datasets.append(ds)
                    }
                case "metadatabundle", "metadata":
                    continue
                default:
                    walk(c, depth: depth + 1, bundles: local)
                }
            }
        }
        walk(root, depth: 0, bundles: [])
        top.append(("tree", .string(root.childNames.joined(separator: ", "))))
        guard !datasets.isEmpty else {
            throw EMError(.badInput, file: path, "EMD 1.0 file holds no readable array node")
        }
        let vmaj = root.attributeMeta("version_major")?.stringValue ?? "1"
        let vmin = root.attributeMeta("version_minor")?.stringValue ?? "0"
        return OpenedFile(path: path, format: "emd", variant: "EMD \(vmaj).\(vmin) (\(root.attributeString("authoring_program") ?? "emdfile"))",
                          datasets: datasets, files: [path], original: .object(top), warnings: warnings,
                          readerName: "emconv-emd", readerVersion: EMDReader.version, handles: [handle])
    }

    /// A metadatabundle: each `metadata` group's datasets (with their `type`) and subgroups.
    static func bundleMeta(_ b: HDF5Group) -> MetaValue {
        var out: [(String, MetaValue)] = []
        for n in b.groupNames {
            guard let m = b.openGroup(n) else { continue }
            out.append((n, groupMeta(m, depth: 0)))
        }
        return .object(out)
    }

    static func groupMeta(_ g: HDF5Group, depth: Int) -> MetaValue {
        var out: [(String, MetaValue)] = []
        for n in g.childNames.prefix(1000) {
            if let d = g.openDataset(n) {
                out.append((n, d.readMeta() ?? .string("(\(d.shape) array not stored in metadata)")))
            } else if depth < 6, let c = g.openGroup(n) {
                out.append((n, groupMeta(c, depth: depth + 1)))
            }
        }
        return .object(out)
    }

    /// py4DSTEM calibration: R/Q pixel sizes become metadata extras (dims already calibrate axes).
    static func applyCalibration(_ bundles: [(String, MetaValue)], to ds: Dataset) {
        for (_, b) in bundles {
            guard let cal = b["calibration"] else { continue }
            for k in ["R_pixel_size", "R_pixel_units", "Q_pixel_size", "Q_pixel_units", "QR_rotation_degrees", "QR_flip"] {
                if let v = cal[k]?.stringValue { ds.metadata.extra["calibration/\(k)"] = v }
            }
        }
    }
}
