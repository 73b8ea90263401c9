import EMCore
import EMHDF5
import Foundation

/// Verifies corrected data in an emconv NeXus file (issue 16): for every NXdata whose dataset
/// records a `correct` step, the stored maps (`detector1/correction_*`) against their recorded
/// SHA-256, then, when `rederive` is set, every frame re-derived from the raw data kept beside it
/// (or from the `--source` input when the raw data were dropped) with ``CorrectionMaps``,
/// compared bit for bit with the stored corrected frame; with a source, its frames are also
/// compared with the stored raw data. The first difference is one error naming the frame and
/// the pixel.
public enum CorrectionCheck {
    /// One corrected dataset found in the file.
    struct Record {
        var group: HDF5Group
        var name: String
        var signal: HDF5Dataset
        var parameters: MetaValue
    }

    /// The names of the datasets whose corrections were checked (``EMRules/checkSource`` leaves
    /// them and their raw copies to this check).
    @discardableResult
    public static func run(_ h5: HDF5File, source: OpenedFile?, rederive: Bool, _ r: inout ValidationReport) -> Set<String> {
        guard let entry = NXemRules.children(h5.root, class: "NXentry").first,
              let event = entry.openGroup("measurement")?.openGroup("event1") else { return [] }
        let signals = namedSignals(event)
        var handled: Set<String> = []
        for rec in records(event, signals: signals) {
            handled.insert(rec.name)
            let p = rec.parameters
            let rawName = p["raw_dataset"]?.stringValue
            if let rawName { handled.insert(rawName) }
            guard let maps = loadMaps(entry, p, path: rec.signal.path, &r) else { continue }
            guard rederive else { continue }
            let raw = rawName.flatMap { signals[$0] }
            let src = source?.datasets.first { $0.name == rec.name }
            if let rawName, raw == nil {
                r.add("EM-CORRECTION", .error, rec.signal.path, "the raw data '\(rawName)' the record names are not in the file")
                continue
            }
            if raw == nil && src == nil {
                r.add("EM-CORRECTION", .warning, rec.signal.path, "the raw data were not kept (--drop-raw): give --source IN to re-derive the corrected data")
                continue
            }
            guard let inType = p["input_element_type"]?.stringValue.flatMap(ElementType.init(rawValue:)), CorrectionMaps.accepts(inType) else {
                r.add("EM-CORRECTION", .error, rec.signal.path, "the record's input_element_type is missing or not numeric")
                continue
            }
            if let src, src.elementType != inType || src.frameShape != maps.frameShape {
                r.add("EM-CORRECTION", .error, rec.signal.path, "--source: '\(src.name)' is \(src.elementType.rawValue) frames \(src.frameShape), the record says \(inType.rawValue) \(maps.frameShape)")
                continue
            }
            compare(rec, raw: raw, source: src, inType: inType, maps: maps, &r)
        }
        return handled
    }

    /// Every non-derived NXdata signal under `event`, by emconv's dataset name.
    static func namedSignals(_ event: HDF5Group) -> [String: HDF5Dataset] {
        var out: [String: HDF5Dataset] = [:]
        for n in event.childNames {
            guard let g = event.openGroup(n) else { continue }
            for dn in g.childNames {
                guard let d = g.openGroup(dn), d.stringAttribute("NX_class") == "NXdata",
                      let own = d.openGroup("emconv"), !own.exists("derived"),
                      let name = own.openDataset("dataset_name")?.readStringValues()?.first,
                      let sig = d.stringAttribute("signal"), let sd = d.openDataset(sig) else { continue }
                out[name] = sd
            }
        }
        return out
    }

    static func records(_ event: HDF5Group, signals: [String: HDF5Dataset]) -> [Record] {
        var out: [Record] = []
        for n in event.childNames {
            guard let g = event.openGroup(n) else { continue }
            for pn in g.childNames where pn.hasPrefix("processing") {
                guard let text = g.openGroup(pn)?.openGroup("parameters")?.openDataset("data")?.readStringValues()?.first,
                      let json = try? MetaValue.parseJSON(text), json["step"]?.stringValue == "correct",
                      let params = json["parameters"] else { continue }
                // The corrected dataset: this group's NXdata.
                guard let name = signals.first(where: { $0.value.path.hasPrefix(g.path + "/") })?.key, let sd = signals[name] else { continue }
                out.append(Record(group: g, name: name, signal: sd, parameters: params))
            }
        }
        return out
    }

    /// The stored maps, each checked against the checksum the record gives.
    static func loadMaps(_ entry: HDF5Group, _ p: MetaValue, path: String, _ r: inout ValidationReport) -> CorrectionMaps? {
        guard case let .object(maps)? = p["maps"], case let .array(fs)? = p["frame_shape"] else {
            r.add("EM-CORRECTION", .error, path, "the correct record has no maps or frame_shape")
            return nil
        }
        let frameShape = fs.compactMap(\.intValue)
        var n = 1
        for d in frameShape {
            let (m, overflow) = n.multipliedReportingOverflow(by: max(0, d))
            n = overflow ? Int.max : m
        }
        // Checked before any buffer is allocated: at most 2^24 pixels (64 MiB of float32).
        guard frameShape.count == fs.count, frameShape.allSatisfy({ $0 > 0 && $0 <= 1 << 24 }), n > 0, n <= 1 << 24 else {
            r.add("EM-CORRECTION", .error, path, "the record's frame_shape \(fs.map { $0.json() }) is not a frame shape")
            return nil
        }
        let det = entry.openGroup("measurement")?.openGroup("instrument")?.openGroup("detector1")
        var floats: [String: [Float]] = [:]
        var mask: [UInt8]?
        var ok = true
        for (field, info) in maps {
            let at = (det?.path ?? entry.path + "/measurement/instrument/detector1") + "/" + field
            guard let d = det?.openDataset(field) else {
                r.add("EM-CORRECTION", .error, at, "the map the record names is missing")
                ok = false
                continue
            }
            let isMask = field == "correction_pixel_mask"
            let type: ElementType = isMask ? .uint8 : .float32
            guard d.shape == frameShape, d.elementType == type else {
                r.add("EM-CORRECTION", .error, at, "map is \(d.shape) \(d.elementType?.rawValue ?? "?"), the record says \(frameShape) \(type.rawValue)")
                ok = false
                continue
            }
            var bytes = [UInt8](repeating: 0, count: n * type.size)
            do { try bytes.withUnsafeMutableBytes { try d.read(start: frameShape.map { _ in 0 }, count: frameShape, as: type, into: $0) } } catch {
                r.add("EM-CORRECTION", .error, at, "cannot read the map: \(error)")
                ok = false
                continue
            }
            let actual = SHA256Digest.hex(bytes)
            let recorded = info["sha256"]?.stringValue ?? ""
            if actual != recorded {
                r.add("EM-CORRECTION", .error, at, "map changed: the sha256 of its values is \(actual.prefix(12))…, the correct record says \(recorded.prefix(12))…")
                ok = false
            }
            if let attr = d.stringAttribute("sha256"), attr != recorded {
                r.add("EM-CORRECTION", .error, at + "/@sha256", "differs from the correct record's sha256 \(recorded.prefix(12))…")
                ok = false
            }
            if isMask { mask = bytes } else {
                floats[field] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
        }
        guard ok else { return nil }
        let fill = p["mask_fill"]?.stringValue.flatMap(MaskFill.init(rawValue:)) ?? .zero
        return CorrectionMaps(frameShape: frameShape, dark: floats["correction_dark"], gain: floats["correction_gain"],
                              flat: floats["correction_flatfield"], mask: mask, fill: fill)
    }

    /// Frame by frame: the source against the stored raw data, and the corrected data against
    /// the re-derivation.
    static func compare(_ rec: Record, raw: HDF5Dataset?, source: Dataset?, inType: ElementType, maps: CorrectionMaps,
                        _ r: inout ValidationReport) {
        let shape = rec.signal.shape
        let frameRank = maps.frameShape.count
        guard shape.count >= frameRank, Array(shape.suffix(frameRank)) == maps.frameShape, rec.signal.elementType == .float32 else {
            r.add("EM-CORRECTION", .error, rec.signal.path, "corrected data \(shape) \(rec.signal.elementType?.rawValue ?? "?") are not float32 frames \(maps.frameShape)")
            return
        }
        if let raw, raw.shape != shape {
            r.add("EM-CORRECTION", .error, raw.path, "raw data \(raw.shape) do not have the corrected data's shape \(shape)")
            return
        }
        if let source, source.shape != shape {
            r.add("EM-CORRECTION", .error, rec.signal.path, "--source: '\(source.name)' is \(source.shape), the corrected data \(shape)")
            return
        }
        let nav = Array(shape.dropLast(frameRank))
        var frames = 1
        for d in nav {
            let (m, overflow) = frames.multipliedReportingOverflow(by: d)
            guard !overflow else {
                r.add("EM-CORRECTION", .error, rec.signal.path, "declared shape \(shape) is too large")
                return
            }
            frames = m
        }
        let n = maps.pixelCount
        var rawBuf = [UInt8](repeating: 0, count: max(1, n * inType.size))
        var srcBuf = [UInt8](repeating: 0, count: max(1, n * inType.size))
        var stored = [Float](repeating: 0, count: n), derived = [Float](repeating: 0, count: n)
        let cols = maps.frameShape.last ?? 1
        source?.source.prepareReadingThread()
        for f in 0..<frames {
            var start = [Int](repeating: 0, count: shape.count)
            var rem = f
            for i in stride(from: nav.count - 1, through: 0, by: -1) { start[i] = rem % nav[i]; rem /= nav[i] }
            let count = Array(repeating: 1, count: nav.count) + maps.frameShape
            let index = start.prefix(nav.count).map(String.init).joined(separator: ",")
            do {
                if let source {
                    try srcBuf.withUnsafeMutableBytes { try source.source.readFrame(f, into: $0) }
                }
                if let raw {
                    try rawBuf.withUnsafeMutableBytes { try raw.read(start: start, count: count, as: inType, into: $0) }
                    if source != nil && srcBuf != rawBuf {
                        let p = zip(srcBuf, rawBuf).enumerated().first { $0.element.0 != $0.element.1 }!.offset / inType.size
                        r.add("EM-CORRECTION", .error, raw.path, "frame \(f) (index \(index)) pixel (row \(p / cols), column \(p % cols)): the stored raw data differ from the source")
                        return
                    }
                } else {
                    rawBuf = srcBuf
                }
                try stored.withUnsafeMutableBytes { try rec.signal.read(start: start, count: count, as: .float32, into: $0) }
            } catch let e as EMError {
                r.add("EM-CORRECTION", .error, rec.signal.path, "frame \(f): \(e.message)")
                return
            } catch {
                r.add("EM-CORRECTION", .error, rec.signal.path, "frame \(f): \(error)")
                return
            }
            rawBuf.withUnsafeBytes { b in derived.withUnsafeMutableBufferPointer { maps.apply(b, inType, into: $0.baseAddress!) } }
            for p in 0..<n where stored[p].bitPattern != derived[p].bitPattern {
                r.add("EM-CORRECTION", .error, rec.signal.path, "frame \(f) (index \(index)) pixel (row \(p / cols), column \(p % cols)): stored \(stored[p]) differs from \(derived[p]) re-derived from the \(raw != nil ? "raw data" : "source") and the maps")
                return
            }
        }
        r.add("EM-CORRECTION", .info, rec.signal.path, "\(frames) frame(s) re-derived bit for bit from the \(raw != nil ? "raw data" : "source") and the stored maps\(raw != nil && source != nil ? "; the raw data equal the source" : "")")
    }
}
