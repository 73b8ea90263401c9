import CHDF5
import EMCore
import EMHDF5
import Foundation

/// Reads HyperSpy's HDF5 format (`.hspy`, RosettaSciIO `rsciio.hspy`), written by HyperSpy
/// 1.x/2.x or by emconv: one dataset per `Experiments/<title>` group holding `data`, with its
/// `axis-N` groups, `metadata` (mapped by ``HyperSpyMetadata``) and `original_metadata`.
/// Frames are read lazily as HDF5 hyperslabs (any chunking and filter HDF5 decodes).
public enum HSpyReader: FormatReader {
    public static let descriptor = FormatDescriptor(
        name: "hspy", longName: "HyperSpy HDF5 (hspy)", aliases: ["hyperspy"],
        extensions: ["hspy"], reads: true, writes: false,
        notes: "Reads files saved by HyperSpy (s.save('x.hspy')) and by emconv: Experiments/<title>/data, axis-N, metadata, original_metadata.",
        container: "HDF5", signature: "root attribute file_format = \"HyperSpy\" and an Experiments group"
    )

    static let version = "1.0"

    public static func identify(_ probe: Probe) -> Identification {
        guard probe.isHDF5 else { return .no }
        guard let ok = HDF5Peek.root(probe.path, { root -> Bool in
            root.stringAttribute("file_format")?.lowercased() == "hyperspy" && root.openGroup("Experiments") != nil
        }) else { return .maybe }
        return ok ? .yes : .no
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        try HDF5.lock.withLock {
            let h5 = try HDF5File(reading: path)
            return try h5.guarded { try read(h5, path: path) }
        }
    }

    static func read(_ h5: HDF5File, path: String) throws -> OpenedFile {
        let root = h5.root
        guard root.stringAttribute("file_format")?.lowercased() == "hyperspy", let experiments = root.openGroup("Experiments") else {
            throw FormatDeclined("no root attribute file_format = \"HyperSpy\" with an Experiments group")
        }
        let version = root.stringAttribute("file_format_version") ?? ""
        // HyperSpy before 1.2 called the trees mapped_parameters and original_parameters.
        let old = version.split(separator: ".").compactMap { Int($0) }.lexicographicallyPrecedes([1, 2])
        let handle = try RandomAccessFile(path: path)
        var datasets: [Dataset] = []
        var warnings: [String] = []
        for name in experiments.groupNames {
            guard let g = experiments.openGroup(name), let data = g.openDataset("data") else { continue }
            guard let type = data.elementType else {
                throw EMError(.unsupported, file: path, at: data.path, "the data's HDF5 type is not supported (integers, float32/64, complex, bool, RGB(A))")
            }
            let shape = data.shape
            guard !shape.isEmpty else {
                throw EMError(.badInput, file: path, at: data.path, "the signal's data has no dimensions (HyperSpy stores at least one; damaged file)")
            }
            var axes: [MetaValue] = []
            var coordinates: [Int: [Double]] = [:]
            for i in 0..<shape.count {
                guard let a = g.openGroup("axis-\(i)") else {
                    throw EMError(.badInput, file: path, at: g.path, "axis-\(i) is missing for \(shape.count)-dimensional data")
                }
                axes.append(a.attributesMeta)
                if let c = a.openDataset("axis") {
                    guard c.shape.reduce(1, *) == shape[i] else {
                        throw EMError(.badInput, file: path, at: c.path, "\(c.shape.reduce(1, *)) coordinates for an axis of size \(shape[i])")
                    }
                    coordinates[i] = try c.readAllDoubles()
                } else if HyperSpyMetadata.text(axes[i]["_type"]) == "FunctionalDataAxis" {
                    warnings.append("\(a.path): a FunctionalDataAxis (coordinates from an expression) is read as pixel indices")
                }
            }
            var budget = TreeBudget()
            let metadata = try tree(g.openGroup(old ? "mapped_parameters" : "metadata"), path: path, budget: &budget).value
            let original = try tree(g.openGroup(old ? "original_parameters" : "original_metadata"), path: path, budget: &budget).value
            let stored = HyperSpyStoredSignal(groupName: name, axes: axes, coordinates: coordinates, metadata: metadata,
                                              original: original, shape: shape, elementType: type)
            let frameRank = HyperSpyMetadata.frameRank(stored)
            // HyperSpy chunks lazily saved data in tiles that may cut frames (e.g. 26x26x26x26):
            // the cache holds the chunks one frame spans, so the frames that share them (along
            // the fastest navigation axis) decompress each chunk once, not once per frame.
            var reading = data
            if let chunk = data.chunkShape, chunk.count == shape.count, let bytes = data.chunkBytes {
                let perFrame = zip(shape.suffix(frameRank), chunk.suffix(frameRank)).map { ($0 + $1 - 1) / max($1, 1) }.reduce(1, *)
                let want = MemoryBudget.product([perFrame, bytes]).map { $0 + (1 << 20) } ?? MemoryBudget.maxAllocation
                if want > 2 << 20, let d = g.openDataset("data", chunkCacheBytes: min(want, 128 << 20)) { reading = d }
            }
            let source = slabSource(handle: handle, dataset: data, shape: shape, frameRank: frameRank, type: type)
                ?? HDF5HyperslabSource(owner: handle, dataset: reading, shape: shape, frameRank: frameRank, type: type)
            let ds = try HyperSpyMetadata.dataset(stored, file: path, source: source)
            if datasets.contains(where: { $0.name == ds.name }) { ds.name = name }
            datasets.append(ds)
        }
        guard !datasets.isEmpty else {
            throw EMError(.badInput, file: path, at: "/Experiments", "a HyperSpy file with no signal (no Experiments/<title>/data)")
        }
        return OpenedFile(path: path, format: "hspy", variant: "HyperSpy \(version), \(datasets.count) signal(s)", datasets: datasets,
                          files: [path], original: .object([("file_format_version", .string(version))]), warnings: warnings,
                          readerName: "hspy", readerVersion: Self.version, handles: [handle])
    }

    /// Chunked data read a slab of navigation rows at a time (``SlabFrameSource``, at most half
    /// the memory budget): the slab's chunks are decoded once each, on all cores when emconv
    /// decodes their filters (``HSpyChunkDecoder``), else by one hyperslab read under HDF5's lock.
    /// nil for contiguous data or when one row of frames does not fit.
    static func slabSource(handle: AnyObject, dataset: HDF5Dataset, shape: [Int], frameRank: Int, type: ElementType) -> FrameSource? {
        let navRank = shape.count - frameRank
        guard navRank > 0, let chunk = dataset.chunkShape, chunk.count == shape.count,
              let frameElements = MemoryBudget.product(Array(shape.suffix(frameRank))), frameElements > 0 else { return nil }
        let frameShape = Array(shape.suffix(frameRank))
        let fill: (FrameSlab, UnsafeMutableRawBufferPointer) throws -> Void
        if let decoder = HSpyChunkDecoder(dataset: dataset, type: type, shape: shape, chunk: chunk) {
            fill = { slab, region in
                _ = handle
                try slab.fillFromChunks(shape: shape, chunks: chunk, elementSize: type.size, into: region) {
                    try decoder.read(dataset, grid: $0, chunk: chunk, into: $1)
                }
            }
        } else {
            fill = { slab, region in
                _ = handle
                try HDF5.lock.withLock { try dataset.read(start: slab.start + frameShape.map { _ in 0 }, count: slab.count + frameShape, as: type, into: region) }
            }
        }
        let source = SlabFrameSource(navShape: Array(shape.prefix(navRank)), navChunks: Array(chunk.prefix(navRank)),
                                     frameBytes: frameElements * type.size, budget: MemoryBudget.maxAllocation / 2,
                                     prepareThread: { HDF5.silenceErrorsOnThisThread() }, fill: fill)
        // Its declared size is checked against what the file stores, as for any HDF5 source.
        source?.stored = { HDF5.lock.withLock { dataset.knownStoredBytes } }
        return source
    }

    /// Limits on the metadata trees a file may declare (nodes and depth).
    struct TreeBudget {
        var nodes = 0
        static let maxNodes = 200_000
        static let maxDepth = 64
    }

    /// A metadata group as stored: attributes, child groups, small datasets.
    static func tree(_ g: HDF5Group?, path: String, budget: inout TreeBudget, depth: Int = 0) throws -> HyperSpyStoredGroup {
        var out = HyperSpyStoredGroup()
        guard let g else { return out }
        guard depth < TreeBudget.maxDepth else { throw EMError(.badInput, file: path, at: g.path, "metadata nested deeper than \(TreeBudget.maxDepth) levels") }
        if case let .object(pairs) = g.attributesMeta { out.attributes = pairs }
        for n in g.childNames {
            budget.nodes += 1
            guard budget.nodes <= TreeBudget.maxNodes else {
                throw EMError(.badInput, file: path, at: g.path, "metadata with more than \(TreeBudget.maxNodes) entries")
            }
            switch g.objectType(n) {
            case H5O_TYPE_GROUP?: out.groups.append((n, try tree(g.openGroup(n), path: path, budget: &budget, depth: depth + 1)))
            case H5O_TYPE_DATASET?:
                if let v = g.openDataset(n)?.readMeta(maxElements: 1 << 16) { out.arrays.append((n, v)) }
            default: break
            }
        }
        return out
    }
}
