import CHDF5
import EMCore
import EMHDF5
import Foundation

/// HyperSpy's own HDF5 format (`.hspy`, RosettaSciIO `rsciio.hspy`): one `/Experiments/<title>`
/// group per dataset with `data`, `axis-N`, `metadata`, `original_metadata`. The same tree the
/// zspy writer builds in zarr (FORMAT.md in this folder gives the layout and its sources).
public enum HSpyWriter: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "hspy", longName: "HyperSpy HDF5 (hspy)", aliases: ["hyperspy"],
        extensions: ["hspy"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22] | bitshuffle-lz4 | bitshuffle-zstd[:1-22]",
                       default: "gzip:1 with shuffle, readable by h5py and HyperSpy without plugins"),
        ],
        notes: "HDF5 file read by hs.load / rsciio.hspy (HyperSpy 1.x and 2.x): Experiments/<title>/data (chunks of whole frames), axis-N, metadata, original_metadata.",
        holds: [.axisCalibration, .instrument, .provenance, .originalMetadata]
    )

    static let targetChunkBytes = 2 << 20

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        guard !file.datasets.isEmpty else {
            throw EMError(.badInput, file: file.path, "the file holds no dataset to convert")
        }
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        let compression = try context.compression(default: .gzip(level: 1))
        let h5 = try HDF5File(creating: path, truncate: true)
        let root = h5.root
        try root.setAttribute("file_format", "HyperSpy")
        try root.setAttribute("file_format_version", HyperSpyMetadata.formatVersion)
        let experiments = try root.createGroup("Experiments")
        var used: Set<String> = []
        var totalBytes: Int64 = file.datasets.map(\.byteCount).reduce(0, +)
        if totalBytes == 0 { totalBytes = 1 }
        var doneBytes: Int64 = 0
        for ds in file.datasets {
            var name = experimentName(ds.title)
            if used.contains(name) {
                var k = 2
                while used.contains("\(name)_\(k)") { k += 1 }
                name = "\(name)_\(k)"
            }
            used.insert(name)
            let g = try experiments.createGroup(name)
            try g.setAttribute("package", "")
            try g.setAttribute("package_version", "")
            for (i, a) in ds.axes.enumerated() { try writeAxis(a, into: g.createGroup("axis-\(i)")) }
            try HDF5Tree.write(HyperSpyMetadata.metadata(ds, file: file), into: g.createGroup("metadata"))
            try HDF5Tree.write(HyperSpyMetadata.original(ds, file: file), into: g.createGroup("original_metadata"))
            try g.createGroup("learning_results")
            try g.createGroup("attributes")
            try writeData(ds, into: g, compression: compression, context: context) { bytes in
                doneBytes += bytes
                context.progress?.progress(done: doneBytes, total: totalBytes, stage: ds.name)
            }
        }
        let sources: [MetaValue] = try context.provenance.sources().map {
            .object([("file_name", .string(($0.path as NSString).lastPathComponent)), ("size", .int($0.size)), ("sha256", .string($0.sha256))])
        }
        let provenance: MetaValue = .object([
            ("program", .string("emconv")), ("version", .string(EMConvVersion.string)),
            ("date", .string(context.provenance.time.iso8601)), ("command_line", .string(context.provenance.commandLine)),
            ("reader", .string(context.provenance.readerContext)), ("sources", .array(sources)),
            ("warnings", .array(file.warnings.map { .string($0) })),
        ])
        // Outside Experiments: HyperSpy ignores it, h5py users find the provenance.
        try HDF5Tree.write(provenance, into: root.createGroup("emconv"))
        try h5.flush()
        return WriteReport()
    }

    /// HDF5 link names cannot hold '/'; HyperSpy names an untitled signal `__unnamed__`.
    static func experimentName(_ title: String) -> String {
        let t = title.replacingOccurrences(of: "/", with: "-")
        if t.isEmpty { return "__unnamed__" }
        return t == "." ? "_" : t
    }

    static func writeAxis(_ a: Axis, into g: HDF5Group) throws {
        switch a.calibration {
        case let .uniform(offset, scale):
            try g.setAttribute("_type", "UniformDataAxis")
            try g.setAttribute("scale", scale)
            try g.setAttribute("offset", offset)
        case let .coordinates(c):
            // HyperSpy's non-uniform DataAxis keeps its coordinates in an `axis` dataset.
            try g.setAttribute("_type", "DataAxis")
            try g.writeDoubles("axis", c)
        }
        try g.setAttribute("name", a.name)
        try g.setAttribute("units", a.units)
        try g.setAttribute("navigate", bool: a.role == .navigation)
        try g.setAttribute("is_binned", bool: false)
        try g.setAttribute("size", Int64(a.size))
    }

    static func writeData(_ ds: Dataset, into g: HDF5Group, compression: Compression, context: WriteContext,
                          progress: (Int64) -> Void) throws {
        let plan = ChunkPlan(ds, targetBytes: targetChunkBytes)
        let period = PlaneDeflate.chunkPeriod(chunkShape: plan.chunkShape, frameRank: ds.frameRank)
        // HDF5's shuffle filter works on the stored type's size (8 for complex64, 3 for rgb8).
        let size = ds.elementType.size
        let data = try g.createChunkedDataset("data", type: ds.elementType, shape: ds.shape, chunk: plan.chunkShape,
                                              compression: compression, shuffle: size > 1)
        if ds.elementCount == 0 { return }
        let writeback = WritebackKicker(path: g.filePath)
        let frameBytes = ds.frameBytes
        try ChunkPipeline.run(
            count: plan.chunkCount, chunkBytes: plan.chunkBytes, workers: context.threads, producerSetup: { ds.source.prepareReadingThread() },
            produce: { i, buf in try plan.read(chunk: i, of: ds, into: buf) },
            transform: { _, slot in try slot.encode(compression: compression, shuffleElementSize: size, period: period) },
            consume: { i, out in
                try HDF5.lock.withLock { try data.writeChunk(offset: plan.chunkOffset(i), data: out.bytes) }
                writeback.wrote(Int64(out.count))
                progress(Int64(plan.frames(ofChunk: i).count) * Int64(frameBytes))
            })
    }
}

/// Writes a MetaValue tree the way HyperSpy's hierarchical writer stores a dictionary in HDF5:
/// objects become groups, scalars and lists of scalars attributes, `None` the string `"_None_"`,
/// empty lists `_list_empty_<key>`, lists holding objects `_list_N_<key>` groups with children 0, 1, ….
enum HDF5Tree {
    static func write(_ v: MetaValue, into g: HDF5Group) throws {
        let pairs: [(String, MetaValue)]
        switch v {
        case let .object(p): pairs = p
        case let .array(a): pairs = a.enumerated().map { (String($0.offset), $0.element) }
        default: pairs = [("value", v)]
        }
        var used: Set<String> = []
        // Attribute names may hold any character; link (group, dataset) names no '/' and not '.'.
        func unique(_ k: String, link: Bool = false) -> String {
            var n = k.isEmpty ? "_" : k
            if link { n = n.replacingOccurrences(of: "/", with: "-") }
            if link && n == "." { n = "_" }
            let base = n
            var i = 2
            while used.contains(n) { n = "\(base)_\(i)"; i += 1 }
            used.insert(n)
            return n
        }
        for (k, value) in pairs {
            switch value {
            case .object:
                try write(value, into: g.createGroup(unique(k, link: true)))
            case let .array(items):
                if items.isEmpty {
                    try g.setAttribute(unique("_list_empty_" + k), "_None_")
                } else if items.allSatisfy(isScalar) {
                    try setList(unique(k, link: items.count > maxAttributeElements), items, on: g)
                } else {
                    try write(value, into: g.createGroup(unique("_list_\(items.count)_" + k, link: true)))
                }
            default:
                try setScalar(unique(k), value, on: g)
            }
        }
    }

    static func isScalar(_ v: MetaValue) -> Bool {
        switch v {
        case .object, .array: return false
        default: return true
        }
    }

    static func setScalar(_ k: String, _ v: MetaValue, on g: HDF5Group) throws {
        switch v {
        case .null: try g.setAttribute(k, "_None_")
        case let .bool(b): try g.setAttribute(k, bool: b)
        case let .int(i): try g.setAttribute(k, i)
        case let .uint(u): if u <= UInt64(Int64.max) { try g.setAttribute(k, Int64(u)) } else { try g.setAttribute(k, Double(u)) }
        case let .double(d): try g.setAttribute(k, d)
        case let .string(s): try g.setAttribute(k, s)
        default: break
        }
    }

    /// HDF5 keeps attributes in the object header (at most 64 KiB): longer numeric lists are
    /// datasets, which HyperSpy reads back as arrays.
    static let maxAttributeElements = 4096

    /// A list of scalars: one typed array when all are numbers (or all strings), else strings.
    static func setList(_ k: String, _ items: [MetaValue], on g: HDF5Group) throws {
        let big = items.count > maxAttributeElements
        if items.allSatisfy({ if case .int = $0 { return true }; return false }) {
            let v = items.map { if case let .int(i) = $0 { return i }; return 0 }
            if big { try g.writeInts(k, v) } else { try g.setAttribute(k, int64s: v) }
        } else if items.allSatisfy({ switch $0 { case .int, .uint, .double: return true; default: return false } }) {
            let v = items.map {
                switch $0 { case let .int(i): return Double(i); case let .uint(u): return Double(u); case let .double(d): return d; default: return 0 }
            }
            if big { try g.writeDoubles(k, v) } else { try g.setAttribute(k, doubles: v) }
        } else if big {
            // Strings in one JSON text: a 64 KiB header cannot hold them as an attribute.
            try g.writeString(k, MetaValue.array(items).json())
        } else {
            try g.setAttribute(k, items.map {
                switch $0 {
                case .null: return "_None_"
                case let .string(s): return s
                default: return $0.json()
                }
            })
        }
    }
}
