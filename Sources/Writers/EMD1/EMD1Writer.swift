import EMCore
import EMHDF5
import Foundation

/// Writes EMD 1.0 (the HDF5 layout of emdfile, which py4DSTEM 0.14 reads with `py4DSTEM.read`):
/// one EMD tree (`<name>_root`) per dataset; 4D-STEM data as a py4DSTEM `DataCube` with its
/// `Calibration` in the root's metadata, everything else as an emdfile `Array`. Chunks hold whole
/// frames and are compressed on the workers (``ChunkPipeline``), written with `H5Dwrite_chunk`.
/// Layout and sources: FORMAT.md in this folder.
public enum EMD1Writer: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "emd1", longName: "EMD 1.0 (py4DSTEM, emdfile)", aliases: ["py4dstem", "emdfile", "emd-1.0"],
        extensions: ["emd"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22] | bitshuffle-lz4 | bitshuffle-zstd[:1-22]",
                       default: "gzip:1 with shuffle, which py4DSTEM reads as it is; zstd and bitshuffle-lz4/-zstd need 'import hdf5plugin' first"),
        ],
        notes: "py4DSTEM.read(f) returns a DataCube (4D-STEM: R = scan, Q = detector, with R/Q pixel size and units) or an Array; "
            + "several datasets give one tree each (py4DSTEM.read(f, datapath='NAME_root')).",
        holds: [.axisCalibration, .instrument, .provenance, .originalMetadata]
    )

    /// Target size of one chunk (whole frames are never split).
    static let targetChunkBytes = 2 << 20

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        guard !file.datasets.isEmpty else {
            throw EMError(.badInput, file: file.path, "the file holds no dataset to convert")
        }
        _ = try context.compression(default: .defaultValue)
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        try check(file, context: context)
        var report = WriteReport()
        let h5 = try HDF5File(creating: path, truncate: true)
        let top = h5.root
        // emdfile's `_is_EMD_file` asks for exactly these (version 1.0, emd_group_type 'file').
        try top.setAttribute("emd_group_type", "file")
        try top.setAttribute("version_major", Int64(1))
        try top.setAttribute("version_minor", Int64(0))
        try top.setAttribute("authoring_program", "emconv \(EMConvVersion.string)")
        try top.setAttribute("authoring_user", "")

        var totalBytes: Int64 = file.datasets.map(\.byteCount).reduce(0, +)
        if totalBytes == 0 { totalBytes = 1 }
        var doneBytes: Int64 = 0
        var used = Set<String>()
        var roots: [(Dataset, HDF5Group, HDF5Group)] = []
        for ds in file.datasets {
            var name = EMD1Layout.linkName(ds.name)
            var k = 2
            while used.contains(name) { name = "\(EMD1Layout.linkName(ds.name))_\(k)"; k += 1 }
            used.insert(name)
            let root = try EMD1Layout.node(top, name + "_root", type: "root", pythonClass: "Root")
            let isCube = EMD1Layout.isDataCube(ds)
            let array = try EMD1Layout.node(root, name, type: "array", pythonClass: isCube ? "DataCube" : "Array")
            try writeData(ds, into: array, context: context) { bytes in
                doneBytes += bytes
                context.progress?.progress(done: doneBytes, total: totalBytes, stage: ds.name)
            }
            try writeDims(ds, cube: isCube, into: array)
            let bundle = try EMD1Layout.bundle(array)
            try EMD1Metadata.writeModel(ds, into: bundle)
            try EMD1Metadata.writeInstrument(ds.metadata, into: bundle)
            if ds.original != .object([]) {
                try EMD1Metadata.writeTree(ds.original, name: "original_metadata", into: bundle)
            }
            let rootBundle = try EMD1Layout.bundle(root)
            if isCube {
                let cal = EMD1Calibration(ds)
                report.warnings += cal.warnings.map { "\(ds.name): \($0)" }
                try cal.write(into: rootBundle, target: "/" + name)
            }
            try EMD1Metadata.writeTree(file.original, name: "original_metadata", into: rootBundle)
            roots.append((ds, root, rootBundle))
        }
        // Source checksums are complete only now (computed while the data streamed).
        let sources = try context.provenance.sources()
        for (ds, _, bundle) in roots {
            try EMD1Metadata.writeProvenance(ds, file: file, sources: sources, context: context, into: bundle)
        }
        try h5.flush()
        return report
    }

    /// Streams the dataset into `data` in its element type, chunked in whole frames.
    static func writeData(_ ds: Dataset, into g: HDF5Group, context: WriteContext, progress: (Int64) -> Void) throws {
        let plan = ChunkPlan(ds, targetBytes: targetChunkBytes)
        let period = PlaneDeflate.chunkPeriod(chunkShape: plan.chunkShape, frameRank: ds.frameRank)
        let compression = try context.compression(default: .defaultValue)
        let data = try g.createChunkedDataset("data", type: ds.elementType, shape: ds.shape, chunk: plan.chunkShape,
                                              compression: compression, shuffle: ds.elementType.size > 1)
        // emdfile reads `units` of every array (the intensity's units, or what it measures).
        try data.setAttribute("units", ds.quantityUnits.isEmpty ? ds.quantity : ds.quantityUnits)
        let shuffleSize = ds.elementType.size
        let frameBytes = ds.frameBytes
        let writeback = WritebackKicker(path: g.filePath)
        try ChunkPipeline.run(
            count: plan.chunkCount, chunkBytes: plan.chunkBytes, workers: context.threads,
            producerSetup: { ds.source.prepareReadingThread() },
            produce: { i, buf in try plan.read(chunk: i, of: ds, into: buf) },
            transform: { _, slot in try slot.encode(compression: compression, shuffleElementSize: shuffleSize, period: period) },
            consume: { i, out in
                try HDF5.lock.withLock { try data.writeChunk(offset: plan.chunkOffset(i), data: out.bytes) }
                writeback.wrote(Int64(out.count))
                progress(Int64(plan.frames(ofChunk: i).count) * Int64(frameBytes))
            })
    }

    /// `dim0…dimN-1`: two values (offset, offset + scale) for a uniform axis, else every
    /// coordinate; attributes `name` and `units`. A DataCube's dims carry py4DSTEM's names.
    static func writeDims(_ ds: Dataset, cube: Bool, into g: HDF5Group) throws {
        let cubeNames = ["Rx", "Ry", "Qx", "Qy"]
        for (i, a) in ds.axes.enumerated() {
            let values: [Double]
            switch a.calibration {
            case let .uniform(offset, scale): values = [offset, offset + scale]
            case let .coordinates(c): values = c
            }
            let d = try g.writeDoubles("dim\(i)", values)
            try d.setAttribute("name", cube ? cubeNames[i] : a.name)
            try d.setAttribute("units", a.units.isEmpty ? "pixels" : a.units)
        }
    }
}

/// Groups of the emdfile tree.
enum EMD1Layout {
    /// A node group with emdfile's tags.
    static func node(_ parent: HDF5Group, _ name: String, type: String, pythonClass: String?) throws -> HDF5Group {
        let g = try parent.createGroup(name)
        try g.setAttribute("emd_group_type", type)
        if let pythonClass { try g.setAttribute("python_class", pythonClass) }
        return g
    }

    /// The node's `metadatabundle` (created on first use).
    static func bundle(_ node: HDF5Group) throws -> HDF5Group {
        if let b = node.openGroup("metadatabundle") { return b }
        return try self.node(node, "metadatabundle", type: "metadatabundle", pythonClass: nil)
    }

    /// py4DSTEM's DataCube: R (2 scan axes) × Q (2 detector axes).
    static func isDataCube(_ ds: Dataset) -> Bool { ds.rank == 4 && ds.frameRank == 2 }

    /// An HDF5 link name: no '/', not empty, not '.'.
    static func linkName(_ s: String) -> String {
        let t = s.replacingOccurrences(of: "/", with: "_")
        return t.isEmpty || t == "." || t == ".." ? "data" : t
    }
}
