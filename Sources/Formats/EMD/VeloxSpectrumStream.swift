import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Velox EDS spectrum streams (`/Data/SpectrumStream/<uuid>/Data`, uint16): for each pixel in
/// raster order, one value per detected X-ray (its energy channel) and 65535 after the pixel
/// ("next pixel"); frames of H×W pixels follow each other. Decoded into (y, x, channels)
/// cubes, summed over frames (or one cube per frame) and over detector segments (or one per
/// segment), in row blocks of bounded size, rows decoded in parallel.
enum VeloxSpectrumStream {
    static let marker: UInt16 = 0xFFFF
    static let readPiece = 1 << 22

    /// Row index of one stream: `rowStart[k]` is the stream position where raster row `k`
    /// (over all frames: frame f, row r → k = f·H + r) begins; `rowStart[F·H]` is its end.
    final class StreamIndex {
        let dataset: HDF5Dataset
        let length: Int
        var rowStart: [Int] = []
        var markers = 0
        var outOfRange = 0
        var extraPixels = 0
        init(dataset: HDF5Dataset, length: Int) {
            self.dataset = dataset
            self.length = length
        }
    }

    /// Scans a stream once (pieces of 4 Mi values under the HDF5 lock) and records row starts.
    static func index(_ d: HDF5Dataset, width w: Int, channels c: Int) throws -> StreamIndex {
        let shape = d.shape
        guard (shape.count == 1 || (shape.count == 2 && shape[1] == 1)), let len = shape.first else {
            throw EMError(.badInput, file: d.filePath, at: d.path, "stream has shape \(shape), expected (n, 1)")
        }
        try MemoryBudget.check(d.declaredBytes, what: "spectrum stream of \(len) values", file: d.filePath, at: d.path,
                               stored: d.knownStoredBytes, budget: false)
        let idx = StreamIndex(dataset: d, length: len)
        var starts: [Int] = [0]
        var markers = 0, bad = 0, sinceRow = 0
        let buf = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: min(readPiece, max(len, 1)))
        defer { buf.deallocate() }
        var pos = 0
        while pos < len {
            let n = min(readPiece, len - pos)
            try HDF5.lock.withLock {
                try d.readRun(start: pos, count: n, as: .uint16, into: UnsafeMutableRawBufferPointer(start: buf.baseAddress, count: n * 2))
            }
            let cc = UInt16(truncatingIfNeeded: c)
            for i in 0..<n {
                let v = buf[i]
                if v == marker {
                    markers += 1
                    sinceRow += 1
                    if sinceRow == w { sinceRow = 0; starts.append(pos + i + 1) }
                } else if v >= cc || c > 65535 {
                    if c <= 65535 { bad += 1 }
                }
            }
            pos += n
        }
        idx.rowStart = starts
        idx.markers = markers
        idx.outOfRange = bad
        return idx
    }

    /// Fixes the index to exactly `rows` rows: extra pixels beyond are dropped (counted), a
    /// short stream ends with empty rows.
    static func finish(_ idx: StreamIndex, rows: Int, pixelsPerRow w: Int) {
        if idx.rowStart.count - 1 > rows { idx.rowStart.removeSubrange((rows + 1)...) }
        // A short stream ends with empty rows; the row holding its tail runs to the end.
        while idx.rowStart.count < rows + 1 { idx.rowStart.append(idx.length) }
        // Values after the last row of the raster are ignored (counted).
        idx.extraPixels = idx.length - idx.rowStart[rows]
    }

    static func datasets(_ streams: [HDF5Group], data: HDF5Group, file: HDF5File, path: String, emd: EMDOptions,
                         warnings: inout [String]) throws -> [Dataset] {
        var infos: [Info] = []
        for g in streams {
            guard let settings = VeloxEMD.jsonDataset(g.openDataset("AcquisitionSettings")) else {
                warnings.append("spectrum stream \(g.path): AcquisitionSettings missing or not JSON; stream skipped")
                continue
            }
            guard let c = settings["bincount"]?.intValue, c > 0, c < 65535 else {
                warnings.append("spectrum stream \(g.path): AcquisitionSettings.bincount missing or out of range; stream skipped")
                continue
            }
            let enc = settings["StreamEncoding"]?.stringValue ?? settings["encoding"]?.stringValue ?? "uint16"
            guard enc == "uint16", let d = g.openDataset("Data"), d.elementType == .uint16 else {
                warnings.append("spectrum stream \(g.path): encoding '\(enc)' or data type not supported (uint16 expected); stream skipped")
                continue
            }
            var om: MetaValue = .object([])
            if let m = g.openDataset("Metadata") {
                do { om = try VeloxEMD.frameMetadata(m, frame: 0) } catch let e as EMError { warnings.append("spectrum stream \(g.path): \(e.message)") }
            }
            infos.append(Info(g: g, d: d, c: c, om: om, settings: settings, flt: g.openDataset("FrameLocationTable")?.shape.first))
        }
        guard !infos.isEmpty else { throw EMError(.badInput, file: path, at: "/Data/SpectrumStream", "no decodable spectrum stream") }

        // Declared frame count: SpectrumImageSettings.endFramePosition, else FrameLocationTable.
        var declaredSI: Int?
        if let si = data.openGroup("SpectrumImage"), let k = si.groupNames.first,
           let s = VeloxEMD.jsonDataset(si.openGroup(k)?.openDataset("SpectrumImageSettings")) {
            declaredSI = s["endFramePosition"]?.intValue
        }

        // Raster of each stream from its own metadata (Scan.ScanSize x Scan.ScanArea); else the
        // images acquired with the spectrum image; else the stream's RasterScanDefinition.
        var imageShapes: [(Int, Int, Int)] = []
        if let images = data.openGroup("Image") {
            for k in images.groupNames {
                if let s = images.openGroup(k)?.openDataset("Data")?.shape, s.count == 3 { imageShapes.append((s[0], s[1], s[2])) }
            }
        }
        var groups: [(h: Int, w: Int, how: String, members: [Int])] = []
        for (i, info) in infos.enumerated() {
            var h = 0, w = 0, how = ""
            if let r = VeloxEMD.scanRaster(info.om) {
                (h, w, how) = (r.h, r.w, "the stream's own metadata: Scan.ScanSize x Scan.ScanArea")
            } else if let s = imageShapes.first(where: { $0.2 == (declaredSI ?? info.flt) && $0.2 > 1 }) ?? imageShapes.first {
                (h, w, how) = (s.0, s.1, "size of the images acquired with the spectrum image")
                if Set(imageShapes.map { "\($0.0)x\($0.1)" }).count > 1 {
                    warnings.append("spectrum stream \(info.g.path): no scan raster in its metadata and images of different sizes; raster taken as \(h)x\(w)")
                }
            } else if let rw = info.settings["RasterScanDefinition"]?["Width"]?.intValue,
                      let rh = info.settings["RasterScanDefinition"]?["Height"]?.intValue {
                (h, w, how) = (rh, rw, "RasterScanDefinition of the stream")
                warnings.append("spectrum stream \(info.g.path): no scan raster in its metadata and no image; using RasterScanDefinition \(h)x\(w)")
            }
            guard h > 0, w > 0, h <= 1 << 16, w <= 1 << 16 else {
                throw EMError(.badInput, file: path, at: info.g.path, "cannot tell the raster size of the spectrum image")
            }
            if let k = groups.firstIndex(where: { $0.h == h && $0.w == w && infos[$0.members[0]].c == info.c }) {
                groups[k].members.append(i)
            } else {
                groups.append((h, w, how, [i]))
            }
        }
        if groups.count > 1 {
            warnings.append("spectrum streams on \(groups.count) different rasters (\(groups.map { "\($0.h)x\($0.w)" }.joined(separator: ", "))): one spectrum image per raster")
        }
        var out: [Dataset] = []
        for g in groups {
            out += try cubes(g.members.map { infos[$0] }, h: g.h, w: g.w, rasterSource: g.how,
                             declared: declaredSI ?? infos[g.members[0]].flt, path: path, emd: emd, warnings: &warnings)
        }
        return out
    }

    struct Info { let g: HDF5Group; let d: HDF5Dataset; let c: Int; let om: MetaValue; let settings: MetaValue; let flt: Int? }

    /// The EDS cubes of streams sharing one raster (H x W) and channel count.
    static func cubes(_ infos: [Info], h: Int, w: Int, rasterSource: String, declared: Int?, path: String, emd: EMDOptions,
                      warnings: inout [String]) throws -> [Dataset] {
        let first = infos[0], c = first.c
        // One decoded raster row (all channels of w pixels) must fit the memory budget.
        try MemoryBudget.check(MemoryBudget.product([w, c, 4]), what: "one decoded row of \(w) pixels x \(c) channels",
                               file: path, at: "/Data/SpectrumStream")
        var indexes: [StreamIndex] = []
        for i in infos { indexes.append(try index(i.d, width: w, channels: c)) }
        let maxMarkers = indexes.map(\.markers).max() ?? 0
        let fromMarkers = max(1, (maxMarkers + h * w - 1) / (h * w))
        var frames = fromMarkers
        if let declared, declared > 0 {
            if declared <= fromMarkers + 1 { frames = declared } else {
                warnings.append("spectrum stream \(first.g.path): \(declared) frames declared but the stream holds \(fromMarkers) of \(h)x\(w) pixels; using \(fromMarkers)")
            }
        }
        for (i, idx) in indexes.enumerated() {
            finish(idx, rows: frames * h, pixelsPerRow: w)
            if idx.extraPixels > 0 {
                warnings.append("spectrum stream \(infos[i].g.path): \(idx.extraPixels) stream values beyond the \(frames) frames of \(h)x\(w) pixels (more pixels than the raster) were ignored")
            }
            if idx.outOfRange > 0 {
                warnings.append("spectrum stream \(infos[i].g.path): \(idx.outOfRange) counts in channels >= \(c) were skipped")
            }
        }
        var range = 0..<frames
        if let r = emd.frameRange {
            guard r.lowerBound >= 0, r.upperBound <= frames, !r.isEmpty else {
                throw EMError(.usage, file: path, "frame range \(r.lowerBound):\(r.upperBound) outside the \(frames) frames of the spectrum image")
            }
            range = r
        }

        // Spatial and energy axes from the stream's metadata.
        let om = first.om
        let spatial = VeloxEMD.spatialAxes(om["BinaryResult"], h: h, w: w, role: .navigation, key: "stream", warnings: &warnings)
        let energy = VeloxEMD.energyAxis(om, size: c) ?? Axis(name: "energy", size: c, role: .signal, longName: "channel")
        if VeloxEMD.energyAxis(om, size: c) == nil { warnings.append("spectrum stream: no energy calibration (Dispersion/OffsetEnergy)") }
        var md = VeloxEMD.normalized(om)
        md.scanShape = [h, w]
        md.scanShapeSource = rasterSource
        md.extra["frames"] = "\(range.count) of \(frames)" + (emd.sumFrames ? " (summed)" : "")

        let groups: [[Int]] = emd.separateDetectors ? infos.indices.map { [$0] } : [Array(infos.indices)]
        var out: [Dataset] = []
        for grp in groups {
            let sel = grp.map { indexes[$0] }
            let cube = StreamCube(streams: sel, h: h, w: w, c: c, frames: range, perFrame: !emd.sumFrames,
                                  threads: max(1, emd.threads), blockBytes: emd.blockBytes)
            var axes = spatial + [energy]
            if !emd.sumFrames {
                let ft = md.frameTime?.value
                axes.insert(Axis(name: "time", size: range.count, role: .navigation, units: ft == nil ? "" : "s",
                                 calibration: .uniform(offset: 0, scale: ft ?? 1), longName: ft == nil ? "frame" : "time"), at: 0)
            }
            let detNames = grp.map { infos[$0].om["BinaryResult"]?["Detector"]?.stringValue ?? "EDS" }
            var dmd = md
            dmd.detectorName = detNames.count == 1 ? detNames[0] : detNames.joined(separator: "+")
            let name = emd.separateDetectors ? "eds_" + detNames[0] : "eds"
            let orig: MetaValue = .object(grp.map { i in (infos[i].g.path, .object([("AcquisitionSettings", infos[i].settings), ("metadata", infos[i].om)])) })
            out.append(Dataset(name: name, title: "EDS " + (dmd.detectorName ?? ""), axes: axes, elementType: cube.elementType,
                               frameRank: 1, quantity: "counts", signalKind: "eds", metadata: dmd, original: orig,
                               conventions: ["decoding": "Velox spectrum stream decoded by emconv: " +
                                             (emd.sumFrames ? "frames \(range.lowerBound)..<\(range.upperBound) summed" : "one cube per frame") +
                                             (sel.count > 1 ? ", \(sel.count) detector segments summed" : "") +
                                             "; \(cube.elementType) chosen so that no count can overflow"],
                               source: cube))
        }
        return out
    }
}

/// The decoded cube of one or more streams; frames of the model are single spectra (C values),
/// served from a decoded block of raster rows.
final class StreamCube: FrameSource {
    func prepareReadingThread() { HDF5.silenceErrorsOnThisThread() }

    let streams: [VeloxSpectrumStream.StreamIndex]
    let h: Int, w: Int, c: Int
    let frames: Range<Int>
    let perFrame: Bool
    let threads: Int
    let elementType: ElementType
    let rowsPerBlock: Int
    let maxEvents = 1 << 24
    /// Output rows: H (summed) or F·H (per frame).
    var outRows: Int { perFrame ? frames.count * h : h }
    private var acc: UnsafeMutablePointer<UInt32>
    private var blockStart = -1
    private var blockCount = 0
    /// Events decoded (counts and markers), for benchmarks.
    private(set) var eventsDecoded = 0

    init(streams: [VeloxSpectrumStream.StreamIndex], h: Int, w: Int, c: Int, frames: Range<Int>, perFrame: Bool,
         threads: Int, blockBytes: Int) {
        self.streams = streams
        self.h = h
        self.w = w
        self.c = c
        self.frames = frames
        self.perFrame = perFrame
        self.threads = threads
        rowsPerBlock = max(1, min(perFrame ? frames.count * h : h, blockBytes / max(1, w * c * 4)))
        acc = .allocate(capacity: rowsPerBlock * w * c)
        // The largest possible count of one bin is bounded by the events of one output row.
        var maxRow = 0
        for r in 0..<(perFrame ? frames.count * h : h) {
            var n = 0
            for s in streams {
                if perFrame {
                    let k = frames.lowerBound * h + r
                    n += s.rowStart[k + 1] - s.rowStart[k]
                } else {
                    for f in frames { let k = f * h + r; n += s.rowStart[k + 1] - s.rowStart[k] }
                }
            }
            maxRow = max(maxRow, n)
        }
        elementType = maxRow <= 65535 ? .uint16 : .uint32
    }

    deinit { acc.deallocate() }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let g = index / w, x = index % w
        guard g >= 0, g < outRows else {
            throw EMError(.failure, "spectrum index \(index) out of range")
        }
        if !(blockStart..<(blockStart + blockCount)).contains(g) { try decodeBlock(from: g) }
        let src = acc + ((g - blockStart) * w + x) * c
        if elementType == .uint16 {
            let dst = buffer.bindMemory(to: UInt16.self)
            for i in 0..<c { dst[i] = UInt16(truncatingIfNeeded: src[i]) }
        } else {
            buffer.baseAddress!.copyMemory(from: src, byteCount: c * 4)
        }
    }

    /// One contiguous stream range: rows k0..<k1 of stream s map to output rows o0….
    private struct Run { let s: Int; let k0: Int; let k1: Int; let o0: Int; var base: Int }

    /// Decodes output rows g0 ..< g0+rowsPerBlock into the accumulator.
    func decodeBlock(from g0: Int) throws {
        let n = min(rowsPerBlock, outRows - g0)
        blockStart = g0
        blockCount = n
        acc.initialize(repeating: 0, count: n * w * c)
        var runs: [Run] = []
        for (si, _) in streams.enumerated() {
            if perFrame {
                let k0 = frames.lowerBound * h + g0
                runs.append(Run(s: si, k0: k0, k1: k0 + n, o0: g0, base: 0))
            } else {
                for f in frames { runs.append(Run(s: si, k0: f * h + g0, k1: f * h + g0 + n, o0: g0, base: 0)) }
            }
        }
        // Batches of runs whose events fit the buffer (a run larger than it is split by rows).
        var pending: [Run] = []
        for r in runs {
            let st = streams[r.s].rowStart
            var k = r.k0
            while k < r.k1 {
                var k2 = k + 1
                while k2 < r.k1, st[k2 + 1] - st[k] <= maxEvents { k2 += 1 }
                pending.append(Run(s: r.s, k0: k, k1: k2, o0: r.o0 + (k - r.k0), base: 0))
                k = k2
            }
        }
        var i = 0
        while i < pending.count {
            var batch: [Run] = []
            var total = 0
            while i < pending.count {
                let r = pending[i]
                let len = streams[r.s].rowStart[r.k1] - streams[r.s].rowStart[r.k0]
                if !batch.isEmpty && total + len > maxEvents { break }
                var rr = r
                rr.base = total
                batch.append(rr)
                total += len
                i += 1
            }
            try decodeBatch(batch, events: total, g0: g0, n: n)
        }
    }

    private func decodeBatch(_ batch: [Run], events: Int, g0: Int, n: Int) throws {
        let buf = UnsafeMutablePointer<UInt16>.allocate(capacity: max(events, 1))
        defer { buf.deallocate() }
        try HDF5.lock.withLock {
            for r in batch {
                let st = streams[r.s].rowStart
                let len = st[r.k1] - st[r.k0]
                if len > 0 {
                    try streams[r.s].dataset.readRun(start: st[r.k0], count: len, as: .uint16,
                                                     into: UnsafeMutableRawBufferPointer(start: buf + r.base, count: len * 2))
                }
            }
        }
        eventsDecoded += events
        let t = min(threads, n)
        let acc = self.acc, w = self.w, c = self.c, idxs = self.streams
        let cc = UInt16(truncatingIfNeeded: c)
        let work = { (part: Int) in
            let lo = g0 + part * n / t, hi = g0 + (part + 1) * n / t
            for r in batch {
                let st = idxs[r.s].rowStart
                let first = st[r.k0]
                let oLo = max(lo, r.o0), oHi = min(hi, r.o0 + (r.k1 - r.k0))
                guard oLo < oHi else { continue }
                for o in oLo..<oHi {
                    let k = r.k0 + (o - r.o0)
                    var p = buf + r.base + (st[k] - first)
                    let end = buf + r.base + (st[k + 1] - first)
                    let row = acc + (o - g0) * w * c
                    var pix = 0
                    while p < end {
                        let v = p.pointee
                        if v == VeloxSpectrumStream.marker {
                            pix += 1
                        } else if v < cc, pix < w {
                            row[pix * c + Int(v)] &+= 1
                        }
                        p += 1
                    }
                }
            }
        }
        if t <= 1 {
            work(0)
        } else {
            // Each iteration fills its own rows of the cube: no shared mutable state.
            nonisolated(unsafe) let rows = work
            DispatchQueue.concurrentPerform(iterations: t) { rows($0) }
        }
    }
}
