import EMCore
import EMHDF5
import Foundation
import CHDF5

/// Velox EELS spectrum images (`/Data/EelsSpectrumImage/<id>`): `Data` is stored (x, energy, y)
/// (RosettaSciIO reads it with `transpose(2, 0, 1)`), or (x, energy) for a line; `Metadata` is the
/// cube's own Velox document (scan raster, pixel size), `AcquisitionMetadata` holds the energy
/// calibration (`Data.offset`, `Data.dispersion`, eV). emconv exposes (y, x, energy).
extension VeloxEMD {
    /// The scanned raster (height, width) a Velox metadata document describes: `Scan.ScanSize`
    /// (the full scan field) times the fraction of it that `Scan.ScanArea` covers.
    static func scanRaster(_ om: MetaValue) -> (h: Int, w: Int)? {
        guard let sw = om["Scan"]?["ScanSize"]?["width"]?.intValue, let sh = om["Scan"]?["ScanSize"]?["height"]?.intValue,
              sw > 0, sh > 0, sw <= 1 << 16, sh <= 1 << 16 else { return nil }
        var w = Double(sw), h = Double(sh)
        if let a = om["Scan"]?["ScanArea"], let l = double(a["left"]), let r = double(a["right"]),
           let t = double(a["top"]), let b = double(a["bottom"]), r > l, b > t, l >= -1e-9, t >= -1e-9, r <= 1 + 1e-9, b <= 1 + 1e-9 {
            w *= r - l
            h *= b - t
        }
        let wi = Int(w.rounded()), hi = Int(h.rounded())
        guard wi >= 1, hi >= 1 else { return nil }
        return (hi, wi)
    }

    /// Which stored dimension is y, x and energy. `raster` (from the metadata) decides; Velox's
    /// own order (x, energy, y) is preferred when sizes leave a choice (a square scan).
    static func eelsLayout(shape: [Int], raster: (h: Int, w: Int)?) -> (y: Int?, x: Int, e: Int, how: String)? {
        if shape.count == 2 {
            if let r = raster, r.h == 1 || r.w == 1 {
                let n = max(r.h, r.w)
                if shape[0] == n { return (nil, 0, 1, "stored (x, energy); \(n) positions from the scan metadata") }
                if shape[1] == n { return (nil, 1, 0, "stored (energy, x); \(n) positions from the scan metadata") }
            }
            return (nil, 0, 1, "stored (x, energy) (Velox order)")
        }
        guard shape.count == 3 else { return nil }
        // (y, x, e) candidates, Velox's order first.
        let orders: [(Int, Int, Int)] = [(2, 0, 1), (0, 1, 2), (1, 0, 2), (0, 2, 1), (1, 2, 0), (2, 1, 0)]
        func name(_ o: (Int, Int, Int)) -> String {
            var n = ["", "", ""]
            n[o.0] = "y"; n[o.1] = "x"; n[o.2] = "energy"
            return "(" + n.joined(separator: ", ") + ")"
        }
        guard let r = raster else {
            return (2, 0, 1, "stored (x, energy, y) (Velox order; the cube's metadata gives no scan raster)")
        }
        if let o = orders.first(where: { shape[$0.0] == r.h && shape[$0.1] == r.w }) {
            return (o.0, o.1, o.2, "stored \(name(o)), from the \(r.h)x\(r.w) scan raster of the metadata")
        }
        return nil
    }

    static func eelsDataset(_ g: HDF5Group, key: String, data: HDF5Group, file: HDF5File, warnings: inout [String]) throws -> Dataset? {
        guard let d = g.openDataset("Data"), let type = d.elementType, type.size > 0 else {
            throw EMError(.badInput, file: file.path, at: g.path, "no readable Data array")
        }
        let shape = d.shape
        guard shape.count == 3 || shape.count == 2, shape.allSatisfy({ $0 > 0 }) else {
            throw EMError(.badInput, file: file.path, at: d.path, "EELS data has shape \(shape), expected (x, energy, y) or (x, energy)")
        }
        var acq: MetaValue = .object([])
        if let a = g.openDataset("AcquisitionMetadata") {
            if a.typeInfo.cls == H5T_STRING { acq = jsonDataset(a) ?? .object([]) } else { acq = (try? frameMetadata(a, frame: 0)) ?? .object([]) }
        }
        // The cube's own metadata; the (first) SpectrumImage's for what it lacks (RosettaSciIO's source).
        var own: MetaValue = .object([])
        if let m = g.openDataset("Metadata") {
            do { own = try frameMetadata(m, frame: 0) } catch let e as EMError { warnings.append("EELS \(key): \(e.message)") }
        }
        var siMeta: MetaValue?
        if let si = data.openGroup("SpectrumImage"), let k = si.groupNames.first, let m = si.openGroup(k)?.openDataset("Metadata") {
            siMeta = try? frameMetadata(m, frame: 0)
        }
        let raster = scanRaster(own) ?? siMeta.flatMap(scanRaster)
        let br = own["BinaryResult"]?["PixelSize"] != nil ? own["BinaryResult"] : siMeta?["BinaryResult"]

        guard let layout = eelsLayout(shape: shape, raster: raster) else {
            let r = raster.map { "\($0.h)x\($0.w)" } ?? "?"
            throw EMError(.badInput, file: file.path, at: d.path, "EELS data has shape \(shape), which does not hold the \(r) scan raster of its metadata")
        }
        let ne = shape[layout.e]
        var energy = Axis(name: "energy_loss", size: ne, role: .signal, longName: "energy loss")
        if let off = double(acq["Data"]?["offset"]), let disp = double(acq["Data"]?["dispersion"]) {
            energy.units = "eV"
            energy.calibration = .uniform(offset: off, scale: disp)
        } else {
            warnings.append("EELS \(key): no energy calibration (AcquisitionMetadata Data.offset/dispersion)")
        }
        var axes: [Axis]
        let h = layout.y.map { shape[$0] } ?? 1, w = shape[layout.x]
        if layout.y != nil {
            axes = spatialAxes(br, h: h, w: w, role: .navigation, key: key, warnings: &warnings)
        } else {
            axes = [spatialAxes(br, h: 1, w: w, role: .navigation, key: key, warnings: &warnings)[1]]
        }
        axes.append(energy)
        var md = normalized(own)
        md.detectorName = own["BinaryResult"]?["Detector"]?.stringValue
        if layout.y != nil {
            md.scanShape = [h, w]
            md.scanShapeSource = raster != nil ? "Velox Scan.ScanSize x Scan.ScanArea of the EELS metadata" : "EELS data shape (Velox order)"
        }
        let source = try PermutedSpectrumSource(dataset: d, owner: file, shape: shape, layout: (layout.y, layout.x, layout.e),
                                            type: type, blockBytes: 64 << 20)
        return Dataset(name: "eels", title: "EELS", axes: axes, elementType: type, frameRank: 1, quantity: "counts",
                       signalKind: "eels", metadata: md,
                       original: .object([("group", .string(g.path)), ("acquisition", acq), ("metadata", own)]),
                       conventions: ["axis_order": "Velox EELS cube \(layout.how); exposed (y, x, energy)"],
                       source: source)
    }
}

/// Spectra of a cube stored with its axes in any order: frame i is the spectrum at (y, x) =
/// (i / W, i % W). Whole rows of y (aligned to the HDF5 chunks) are read with one hyperslab and
/// reordered in memory, so each chunk is decompressed once, not once per spectrum.
final class PermutedSpectrumSource: FrameSource {
    let dataset: HDF5Dataset
    let owner: AnyObject
    let shape: [Int]
    /// Stored dimension of y (nil: a line), x and energy.
    let dimY: Int?, dimX: Int, dimE: Int
    let type: ElementType
    let h: Int, w: Int, e: Int
    let rowsPerBlock: Int
    let rowBytes: Int
    private var block = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var blockStart = -1
    private var blockRows = 0
    private let lock = NSLock()
    /// HDF5 reads made so far (one per block), for tests and benchmarks.
    private(set) var hyperslabReads = 0

    init(dataset: HDF5Dataset, owner: AnyObject, shape: [Int], layout: (Int?, Int, Int), type: ElementType, blockBytes: Int) throws {
        self.dataset = dataset
        self.owner = owner
        self.shape = shape
        (dimY, dimX, dimE) = layout
        self.type = type
        h = dimY.map { shape[$0] } ?? 1
        w = shape[dimX]
        e = shape[dimE]
        // A block is whole rows of y (a line: whole runs of x), a multiple of the chunk's extent.
        let outer = dimY ?? dimX, outerCount = shape[outer]
        let rowElements = shape.enumerated().filter { $0.offset != outer }.map(\.element).reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard rowElements > 0, rowElements <= (4 * blockBytes) / type.size else {
            throw EMError(.badInput, file: dataset.filePath, at: dataset.path, "EELS data shape \(shape): one row of spectra is larger than \(4 * blockBytes >> 20) MiB")
        }
        rowBytes = rowElements * type.size
        var rows = max(1, blockBytes / rowBytes)
        if let c = dataset.chunkShape, c.count == shape.count, c[outer] > 1, c[outer] * rowBytes <= 4 * blockBytes {
            rows = max(c[outer], rows / c[outer] * c[outer])
        }
        rowsPerBlock = min(outerCount, rows)
    }

    deinit { if block.baseAddress != nil { block.deallocate() } }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard index >= 0, index < h * w else { throw EMError(.failure, "spectrum index \(index) out of range") }
        let perRow = dimY == nil ? 1 : w
        let row = index / perRow
        lock.lock()
        defer { lock.unlock() }
        if !(blockStart..<(blockStart + blockRows)).contains(row) { try load(from: row / rowsPerBlock * rowsPerBlock) }
        let bytes = e * type.size
        let off = ((row - blockStart) * perRow + index % perRow) * bytes
        buffer.baseAddress!.copyMemory(from: block.baseAddress! + off, byteCount: bytes)
    }

    /// Reads rows `r0 ..< r0 + rowsPerBlock` (of y, or of x for a line) and reorders them to (row, [x,] energy).
    private func load(from r0: Int) throws {
        let outer = dimY ?? dimX
        let n = min(rowsPerBlock, shape[outer] - r0)
        var start = Array(repeating: 0, count: shape.count), count = shape
        start[outer] = r0
        count[outer] = n
        let total = count.reduce(1, *)
        if block.baseAddress == nil { block = .allocate(byteCount: rowsPerBlock * rowBytes, alignment: 64) }
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: total * type.size, alignment: 64)
        defer { tmp.deallocate() }
        try HDF5.lock.withLock { try dataset.read(start: start, count: count, as: type, into: tmp) }
        hyperslabReads += 1
        // Output strides (elements) of each stored dimension, in the (row, [x,] energy) block.
        var outStride = Array(repeating: 0, count: shape.count)
        outStride[dimE] = 1
        if let dy = dimY { outStride[dy] = w * e; outStride[dimX] = e } else { outStride[dimX] = e }
        // Pad to three stored dimensions (leading size-1 dimension for a line).
        let c3 = Array(repeating: 1, count: 3 - count.count) + count
        let s3 = Array(repeating: 0, count: 3 - count.count) + outStride
        switch type.size {
        case 1: permute(UInt8.self, tmp, c3, s3)
        case 2: permute(UInt16.self, tmp, c3, s3)
        case 4: permute(UInt32.self, tmp, c3, s3)
        case 8: permute(UInt64.self, tmp, c3, s3)
        default:
            let es = type.size
            var i = 0
            for a in 0..<c3[0] { for b in 0..<c3[1] { for c in 0..<c3[2] {
                let o = a * s3[0] + b * s3[1] + c * s3[2]
                (block.baseAddress! + o * es).copyMemory(from: tmp.baseAddress! + i * es, byteCount: es)
                i += 1
            } } }
        }
        blockStart = r0
        blockRows = n
    }

    private func permute<T>(_: T.Type, _ src: UnsafeMutableRawBufferPointer, _ c: [Int], _ s: [Int]) {
        let inp = src.bindMemory(to: T.self), out = block.bindMemory(to: T.self)
        var i = 0
        for a in 0..<c[0] {
            for b in 0..<c[1] {
                let base = a * s[0] + b * s[1]
                for k in 0..<c[2] {
                    out[base + k * s[2]] = inp[i]
                    i += 1
                }
            }
        }
    }
}
