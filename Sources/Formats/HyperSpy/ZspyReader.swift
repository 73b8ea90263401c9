import EMCore
import Foundation

/// Reads HyperSpy's zarr format (`.zspy`, RosettaSciIO `rsciio.zspy`) as written by HyperSpy
/// (`s.save("x.zspy")`, Blosc-compressed, nested or flat chunk keys, directory or ZIP store) and
/// by emconv's zspy and zspy-zip writers: the same tree as `.hspy` (``HyperSpyMetadata``).
public enum ZspyReader: FormatReader {
    public static let descriptor = FormatDescriptor(
        name: "zspy", longName: "HyperSpy zarr (zspy)", aliases: ["zarr"],
        extensions: ["zspy"], reads: true, writes: false,
        notes: "Reads zspy directories and ZIP stores saved by HyperSpy (Blosc, zstd, zlib, gzip, none; shuffle) and by emconv.",
        signature: "a zarr v2 group (directory or ZIP) whose .zattrs has file_format = \"ZSpy\""
    )

    static let version = "1.0"

    public static func identify(_ probe: Probe) -> Identification {
        if probe.isDirectory {
            guard let attrs = try? DirectoryZarrStore(path: probe.path).json(".zattrs") else { return .no }
            return attrs["file_format"]?.stringValue?.lowercased() == "zspy" ? .yes : .no
        }
        // A ZIP (local file header) holding a zarr tree: emconv's and zarr's ZipStore write the
        // root .zgroup/.zattrs among the first members; `open` looks at the central directory.
        guard probe.headStarts(with: "PK\u{03}\u{04}") else { return .no }
        let head = String(decoding: probe.head, as: UTF8.self)
        if head.contains(".zgroup") || head.contains(".zattrs") || head.contains(".zarray") { return .yes }
        return ["zspy", "zip"].contains(probe.fileExtension) ? .maybe : .no
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        let store: ZarrReadStore
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            store = DirectoryZarrStore(path: path)
        } else {
            do { store = try ZipZarrStore(path: path) } catch let e as EMError where e.code == .badInput {
                throw FormatDeclined("not a ZIP archive (\(e.message))")
            }
        }
        guard let attrs = try store.json(".zattrs"), attrs["file_format"]?.stringValue?.lowercased() == "zspy" else {
            throw FormatDeclined("no root .zattrs with file_format = \"ZSpy\"")
        }
        let version = attrs["file_format_version"]?.stringValue ?? ""
        var datasets: [Dataset] = []
        var warnings: [String] = []
        var budget = 0
        for name in try store.children("Experiments") {
            let base = "Experiments/\(name)"
            guard try store.get(base + "/data/.zarray", limit: 1 << 20) != nil else { continue }
            let array = try ZarrArray(store: store, key: base + "/data")
            var axes: [MetaValue] = []
            var coordinates: [Int: [Double]] = [:]
            for i in 0..<array.rank {
                let g = "\(base)/axis-\(i)"
                guard let a = try store.json(g + "/.zattrs") else {
                    throw EMError(.badInput, file: path, at: base, "axis-\(i) is missing for \(array.rank)-dimensional data")
                }
                axes.append(a)
                if try store.get(g + "/axis/.zarray", limit: 1 << 20) != nil {
                    guard case let .array(c)? = try ZarrArray(store: store, key: g + "/axis").readSmall(maxElements: 1 << 24) else {
                        throw EMError(.badInput, file: path, at: g + "/axis", "the axis coordinates are not a numeric array")
                    }
                    coordinates[i] = c.map { $0.doubleValue ?? .nan }
                } else if HyperSpyMetadata.text(a["_type"]) == "FunctionalDataAxis" {
                    warnings.append("\(g): a FunctionalDataAxis (coordinates from an expression) is read as pixel indices")
                }
            }
            let metadata = try tree(store, base + "/metadata", budget: &budget).value
            let original = try tree(store, base + "/original_metadata", budget: &budget).value
            let stored = HyperSpyStoredSignal(groupName: name, axes: axes, coordinates: coordinates, metadata: metadata,
                                              original: original, shape: array.shape, elementType: array.elementType)
            let source = try frameSource(array, frameRank: HyperSpyMetadata.frameRank(stored))
            let ds = try HyperSpyMetadata.dataset(stored, file: path, source: source)
            if datasets.contains(where: { $0.name == ds.name }) { ds.name = name }
            datasets.append(ds)
        }
        guard !datasets.isEmpty else {
            throw EMError(.badInput, file: path, at: "Experiments", "a zspy store with no signal (no Experiments/<title>/data)")
        }
        let kind = store is ZipZarrStore ? "ZIP store" : "directory store"
        return OpenedFile(path: path, format: "zspy", variant: "ZSpy \(version) \(kind), \(datasets.count) signal(s)", datasets: datasets,
                          files: [path], original: .object([("file_format_version", .string(version))]), warnings: warnings,
                          readerName: "zspy", readerVersion: Self.version, handles: store.handles)
    }

    /// Frames from slabs of navigation rows (``SlabFrameSource``): every chunk is decoded once
    /// per slab, on all cores. The slab is at most half the memory budget; when not even one row
    /// of frames fits, frames are cut from the chunks frame by frame (``ZarrFrameSource``).
    static func frameSource(_ array: ZarrArray, frameRank: Int) throws -> FrameSource {
        let navRank = array.rank - frameRank
        let frameElements = MemoryBudget.product(Array(array.shape.suffix(frameRank))) ?? 0
        if navRank > 0, frameElements > 0,
           let slabs = SlabFrameSource(navShape: Array(array.shape.prefix(navRank)), navChunks: Array(array.chunks.prefix(navRank)),
                                       frameBytes: frameElements * array.elementType.size, budget: MemoryBudget.maxAllocation / 2,
                                       fill: { slab, region in
                                           try slab.fillFromChunks(shape: array.shape, chunks: array.chunks, elementSize: array.elementType.size,
                                                                   into: region) { try array.readChunk($0, into: $1) }
                                       }) {
            return slabs
        }
        return try ZarrFrameSource(array: array, frameRank: frameRank)
    }

    static let maxNodes = 200_000
    static let maxDepth = 64

    /// A metadata group as stored: `.zattrs`, child groups and small arrays.
    static func tree(_ store: ZarrReadStore, _ key: String, budget: inout Int, depth: Int = 0) throws -> HyperSpyStoredGroup {
        var out = HyperSpyStoredGroup()
        guard depth < maxDepth else { throw EMError(.badInput, file: store.path, at: key, "metadata nested deeper than \(maxDepth) levels") }
        if case let .object(pairs)? = try store.json(key + "/.zattrs") { out.attributes = pairs }
        for n in try store.children(key) {
            budget += 1
            guard budget <= maxNodes else { throw EMError(.badInput, file: store.path, at: key, "metadata with more than \(maxNodes) entries") }
            let child = key + "/" + n
            if try store.get(child + "/.zarray", limit: 1 << 20) != nil {
                if let v = try? ZarrArray(store: store, key: child).readSmall() { out.arrays.append((n, v)) }
            } else if try store.get(child + "/.zgroup", limit: 1 << 20) != nil {
                out.groups.append((n, try tree(store, child, budget: &budget, depth: depth + 1)))
            }
        }
        return out
    }
}
