import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Profile `em`: electron-microscopy domain sanity of an NXem file (not NeXus rules: checks
/// that the numbers make physical sense and that the data is stored so that frame-wise
/// readers stay fast), and `--source` re-verification.
public enum EMRules {
    public static func nxdataGroups(_ g: HDF5Group) -> [HDF5Group] {
        var out: [HDF5Group] = []
        for (n, isGroup) in g.children where isGroup {
            guard let sub = g.openGroup(n) else { continue }
            if sub.stringAttribute("NX_class") == "NXdata" { out.append(sub) }
            out += nxdataGroups(sub)
        }
        return out
    }

    public static func run(_ h5: HDF5File, _ r: inout ValidationReport) {
        for d in nxdataGroups(h5.root) {
            let name = d.path.split(separator: "/").last.map(String.init) ?? ""
            let axes = d.stringArrayAttribute("axes") ?? []
            for a in axes where a != "." {
                guard let ad = d.openDataset(a), ad.shape.count == 1, let v = try? ad.readAllDoubles() else { continue }
                if v.contains(where: { !$0.isFinite }) {
                    r.add("EM-AXIS", .error, ad.path, "axis has non-finite values")
                } else if v.count > 1 {
                    let steps = zip(v.dropFirst(), v).map { $0 - $1 }
                    if steps.contains(0) {
                        r.add("EM-AXIS", .error, ad.path, "axis has a zero step (repeated coordinate)")
                    } else if !(steps.allSatisfy { $0 > 0 } || steps.allSatisfy { $0 < 0 }) {
                        r.add("EM-AXIS", .error, ad.path, "axis is not monotonic")
                    }
                }
                // Physical dimension of the axis: energy axes in energy units; other axes in
                // length, reciprocal length, angle or time, or '' for index axes.
                let u = ad.stringAttribute("units") ?? ""
                guard !u.isEmpty, let p = Units.parse(u) else { continue }
                if a == "axis_energy" {
                    if p.dim != Units.energy { r.add("EM-AXIS-UNITS", .error, ad.path + "/@units", "energy axis in '\(u)', not an energy unit (eV, keV)") }
                } else if ![Units.length, Units.inverseLength, Units.angle, Units.time, Units.dimensionless].contains(p.dim) {
                    r.add("EM-AXIS-UNITS", .error, ad.path + "/@units", "axis '\(a)' in '\(u)': expected a length (real space), 1/length (reciprocal space), angle or time")
                }
            }
            // Chunks never split a spectrum, and split a detector frame at most into 4 bands of
            // whole rows (emconv's chunks of corrected frames): one frame then reads from at most
            // 4 chunks holding the same frames, which costs a frame-wise reader what chunks of
            // those whole frames do.
            guard let signal = d.stringAttribute("signal"), let sd = d.openDataset(signal), let chunk = sd.chunkShape else { continue }
            let shape = sd.shape
            let frameRank = name.hasPrefix("spectrum_") ? 1 : (shape.count >= 3 ? 2 : 0)
            let chunkFrame = Array(chunk.suffix(frameRank)), frame = Array(shape.suffix(frameRank))
            let rowBands = frameRank == 2 && chunkFrame.dropFirst() == frame.dropFirst() && (frame[0] + chunkFrame[0] - 1) / max(1, chunkFrame[0]) <= ChunkPlan.maxFrameBands
            if frameRank > 0, chunk.count == shape.count, chunkFrame != frame, !rowBands {
                r.add("EM-CHUNK", .error, sd.path, "chunk shape \(chunk) splits a \(frameRank == 2 ? "detector frame" : "spectrum") of shape \(Array(shape.suffix(frameRank))): frame-wise reading decodes every chunk several times")
            }
        }
        // Plausible ranges.
        walkFields(h5.root) { name, d in
            guard let u = d.stringAttribute("units"), let v = try? d.readAllDoubles(), v.count == 1 else { return }
            let q = Quantity(v[0], u)
            if name == "voltage", d.path.contains("electron_source"), let si = Units.si(q), si.1 == Units.voltage, !(1e3...1.5e6).contains(si.0) {
                r.add("EM-RANGE", .error, d.path, "acceleration voltage \(fmt(v[0])) \(u) is outside 1 kV – 1.5 MV")
            }
            if ["count_time", "dwell_time", "frame_time"].contains(name), v[0] <= 0 {
                r.add("EM-RANGE", .error, d.path, "\(name) must be > 0 (got \(fmt(v[0])) \(u))")
            }
        }
        func order(_ g: HDF5Group) {
            guard let s = g.openDataset("start_time")?.readStringValues()?.first.flatMap(Timestamp.parseISO),
                  let e = g.openDataset("end_time")?.readStringValues()?.first.flatMap(Timestamp.parseISO) else { return }
            if s.date > e.date { r.add("EM-RANGE", .error, g.path + "/end_time", "end_time is before start_time") }
        }
        for e in NXemRules.children(h5.root, class: "NXentry") {
            order(e)
            if let m = e.openGroup("measurement") { for ev in NXemRules.children(m, class: "NXem_event_data") { order(ev) } }
        }
    }

    public static func walkFields(_ g: HDF5Group, _ body: (String, HDF5Dataset) -> Void) {
        for (n, isGroup) in g.children {
            if isGroup { if let s = g.openGroup(n) { walkFields(s, body) } } else if let d = g.openDataset(n) { body(n, d) }
        }
    }

    // MARK: --source

    public static func fileSHA256(_ path: String) throws -> String {
        let f = try RandomAccessFile(path: path)
        let d = SHA256Digest()
        var off: Int64 = 0
        let block = 4 << 20
        var buf = [UInt8](repeating: 0, count: block)
        while off < f.size {
            let n = Int(min(Int64(block), f.size - off))
            try buf.withUnsafeMutableBytes { try f.read(at: off, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), what: "source") }
            buf.withUnsafeBytes { d.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            off += Int64(n)
        }
        return d.finalizeHex()
    }

    /// Re-reads `source`: its checksum against the stored provenance, and every frame of every
    /// dataset against the stored data, bit for bit.
    /// Datasets named in `skipping` (corrected data, checked by ``CorrectionCheck``) are left out;
    /// the others are found by emconv's dataset name, else in the writer's group order.
    public static func checkSource(_ h5: HDF5File, source file: OpenedFile, skipping: Set<String> = [], _ r: inout ValidationReport) {
        guard let entry = NXemRules.children(h5.root, class: "NXentry").first else { return }
        // Stored checksums: entry-level NXnote (file_name, checksum) and process/input.
        var stored: [String: [(String, String)]] = [:]
        func collect(_ g: HDF5Group) {
            for (n, isGroup) in g.children where isGroup {
                guard let s = g.openGroup(n) else { continue }
                if s.stringAttribute("NX_class") == "NXnote",
                   let fn = s.openDataset("file_name")?.readStringValues()?.first,
                   let cs = s.openDataset("checksum")?.readStringValues()?.first {
                    stored[fn, default: []].append((s.path, cs))
                }
                collect(s)
            }
        }
        collect(entry)
        for p in file.files {
            let base = (p as NSString).lastPathComponent
            guard let sums = stored[base] else {
                r.add("EM-SOURCE", .warning, entry.path, "no stored checksum for source file \(base)")
                continue
            }
            guard let actual = try? fileSHA256(p) else { r.add("EM-SOURCE", .error, "/", "cannot read \(p)"); continue }
            for (path, cs) in sums where cs != actual {
                r.add("EM-SOURCE", .error, path + "/checksum", "stored sha256 \(cs.prefix(12))… differs from the source's \(actual.prefix(12))… (\(base) changed or is not the converted file)")
            }
        }
        // Data, frame by frame, in the writer's group order.
        guard let event = entry.openGroup("measurement")?.openGroup("event1") else {
            r.add("EM-SOURCE", .error, entry.path + "/measurement/event1", "no event1 group to compare with")
            return
        }
        var imageIndex = 0, spectrumIndex = 0
        let named = CorrectionCheck.namedSignals(event)
        for ds in file.datasets {
            let layout = NXLayout(ds)
            let gname: String
            if layout.isSpectrum { spectrumIndex += 1; gname = "spectrum\(spectrumIndex)" } else { imageIndex += 1; gname = "image\(imageIndex)" }
            if skipping.contains(ds.name) { continue }
            let path = named[ds.name]?.path ?? "\(event.path)/\(gname)/\(layout.dataName)/\(layout.signalName)"
            guard let sd = named[ds.name] ?? event.openGroup(gname)?.openGroup(layout.dataName)?.openDataset(layout.signalName) else {
                r.add("EM-SOURCE", .error, path, "missing: the source's dataset \(ds.name) has no counterpart")
                continue
            }
            guard sd.shape == ds.shape else {
                r.add("EM-SOURCE", .error, path, "shape \(sd.shape) differs from the source's \(ds.shape)")
                continue
            }
            let fb = ds.frameBytes
            var a = [UInt8](repeating: 0, count: max(1, fb))
            var b = [UInt8](repeating: 0, count: max(1, fb))
            let nav = Array(ds.shape.dropLast(ds.frameRank))
            for f in 0..<ds.frameCount {
                var start = [Int](repeating: 0, count: ds.rank)
                var rem = f
                for i in stride(from: nav.count - 1, through: 0, by: -1) { start[i] = rem % nav[i]; rem /= nav[i] }
                let count = Array(repeating: 1, count: nav.count) + ds.frameShape
                do {
                    try a.withUnsafeMutableBytes { try ds.source.readFrame(f, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<fb])) }
                    try b.withUnsafeMutableBytes { try sd.read(start: start, count: count, as: ds.elementType, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<fb])) }
                } catch let e as EMError {
                    r.add("EM-SOURCE", .error, path, "frame \(f): \(e.message)")
                    break
                } catch {
                    r.add("EM-SOURCE", .error, path, "frame \(f): \(error)")
                    break
                }
                if a != b {
                    r.add("EM-SOURCE", .error, path, "frame \(f) (index \(start.prefix(nav.count).map(String.init).joined(separator: ","))) differs from the source")
                    break
                }
            }
        }
    }
}
