import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// HyperSpy's zarr format (`.zspy`, RosettaSciIO `rsciio.zspy`) as a directory tree (zarr v2
/// NestedDirectoryStore layout, chunk keys separated by `/`).
public enum ZspyWriter: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "zspy", longName: "HyperSpy zarr (zspy)", aliases: ["zarr"],
        extensions: ["zspy"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22]",
                       default: "zstd:1 (numcodecs 'zstd'; gzip is numcodecs 'zlib' with a 'shuffle' filter)"),
            ChunkChoice.option,
        ],
        notes: "Directory tree read by hs.load / rsciio.zspy: Experiments/<title>/data (chunks of whole frames), axis-N, metadata, original_metadata.",
        holds: zspyHolds
    )

    public static var writesDirectory: Bool { true }

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        try ZspyLayout.check(file, context: context)
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        let sink = try DirectorySink(root: path)
        return try ZspyLayout.write(file, into: sink, context: context)
    }
}

/// The same tree in one ZIP archive of stored members (`.zspy.zip`, zarr's ZipStore).
public enum ZspyZipWriter: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "zspy-zip", longName: "HyperSpy zarr in a ZIP (zspy.zip)", aliases: ["zspy.zip", "zspyzip"],
        extensions: ["zip"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22]",
                       default: "zstd:1 inside the archive (the archive stores its members uncompressed)"),
            ChunkChoice.option,
        ],
        notes: "Single-file variant: a ZIP (stored, ZIP64 when needed) of the zspy tree; hs.load('x.zspy.zip', file_format='zspy') opens it with zarr's ZipStore (or write it as x.zspy with --format zspy-zip).",
        holds: zspyHolds
    )

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        try ZspyLayout.check(file, context: context)
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        let sink = try ZipSink(path: path)
        return try ZspyLayout.write(file, into: sink, context: context)
    }
}

/// zspy keeps axes, instrument metadata, provenance and the original metadata; HyperSpy's tree has
/// no place emconv fills for the sample, users or the sidecar file.
let zspyHolds: Set<MetadataFacet> = [.axisCalibration, .instrument, .provenance, .originalMetadata]

/// Builds the zspy tree (FORMAT.md in this folder gives the layout and its sources).
enum ZspyLayout {
    /// HyperSpy hierarchical format version written (rsciio `_hierarchical.version`).
    static let formatVersion = HyperSpyMetadata.formatVersion
    static let defaultCompression = Compression.zstd(level: 1)
    static let targetChunkBytes = 2 << 20

    static func check(_ file: OpenedFile, context: WriteContext) throws {
        let c = try context.compression(default: defaultCompression)
        if c.bitshuffleCodec != nil {
            throw EMError(.usage, at: "--compression", "\(c) is an HDF5 filter: zspy takes none, gzip or zstd (or write .nxs)")
        }
        _ = try ChunkChoice.parse(context.options.string("chunks"))
        guard !file.datasets.isEmpty else {
            throw EMError(.badInput, file: file.path, "the file holds no dataset to convert")
        }
    }

    /// Zarr v2 dtype of an element type (structured RGB like HyperSpy's rgb8/rgba8).
    static func zarrDType(_ t: ElementType) -> MetaValue {
        switch t {
        case .rgb8: return .array(["R", "G", "B"].map { .array([.string($0), .string("|u1")]) })
        case .rgba8: return .array(["R", "G", "B", "A"].map { .array([.string($0), .string("|u1")]) })
        default: return .string(t.numpyString)
        }
    }

    static func fillValue(_ t: ElementType) -> MetaValue {
        switch t {
        case .rgb8, .rgba8, .complex64, .complex128: return .null
        case .float32, .float64: return .double(0)
        case .bool: return .bool(false)
        default: return .int(0)
        }
    }

    static func compressorJSON(_ c: Compression) -> MetaValue {
        switch c {
        case .none: return .null
        case let .zstd(l): return .object([("id", .string("zstd")), ("level", .int(Int64(l)))])
        case let .gzip(l): return .object([("id", .string("zlib")), ("level", .int(Int64(l)))])
        case .bitshuffleLZ4, .bitshuffleZstd: return .null  // refused by check(_:context:)
        }
    }

    static func write(_ file: OpenedFile, into sink: ZarrSink, context: WriteContext) throws -> WriteReport {
        try check(file, context: context)
        var report = WriteReport()
        let compression = try context.compression(default: defaultCompression)
        try sink.put(".zgroup", #"{"zarr_format":2}"#)
        try sink.put("Experiments/.zgroup", #"{"zarr_format":2}"#)
        var used: Set<String> = []
        var totalBytes: Int64 = file.datasets.map(\.byteCount).reduce(0, +)
        if totalBytes == 0 { totalBytes = 1 }
        var doneBytes: Int64 = 0
        for ds in file.datasets {
            let title = ds.title.isEmpty ? "" : ds.title
            var name = ZarrTree.sanitize(title.isEmpty ? "__unnamed__" : title)
            if used.contains(name) {
                var k = 2
                while used.contains("\(name)_\(k)") { k += 1 }
                name = "\(name)_\(k)"
            }
            used.insert(name)
            let base = "Experiments/\(name)"
            try sink.put(base + "/.zgroup", #"{"zarr_format":2}"#)
            try sink.put(base + "/.zattrs", MetaValue.object([("package", .string("")), ("package_version", .string(""))]).json())
            try writeAxes(ds, base: base, sink: sink)
            try ZarrTree.writeGroup(HyperSpyMetadata.metadata(ds, file: file), at: base + "/metadata", sink: sink)
            let original = HyperSpyMetadata.original(ds, file: file)
            try ZarrTree.writeGroup(original, at: base + "/original_metadata", sink: sink)
            try ZarrTree.writeGroup(.object([]), at: base + "/learning_results", sink: sink)
            try ZarrTree.writeGroup(.object([]), at: base + "/attributes", sink: sink)
            try writeData(ds, key: base + "/data", sink: sink, compression: compression, context: context) { bytes in
                doneBytes += bytes
                context.progress?.progress(done: doneBytes, total: totalBytes, stage: ds.name)
            }
        }
        let sources: [MetaValue] = try context.provenance.sources().map {
            .object([("file_name", .string(($0.path as NSString).lastPathComponent)), ("size", .int($0.size)), ("sha256", .string($0.sha256))])
        }
        let now = context.provenance.time
        let provenance: MetaValue = .object([
            ("program", .string("emconv")), ("version", .string(EMConvVersion.string)), ("date", .string(now.iso8601)),
            ("command_line", .string(context.provenance.commandLine)),
            ("reader", .string(context.provenance.readerContext)),
            ("sources", .array(sources)),
            ("warnings", .array(file.warnings.map { .string($0) })),
        ] + (file.datasets.allSatisfy { $0.processing.isEmpty } ? [] : [
            ("processing", .object(file.datasets.map { ($0.name, .array($0.processing.map(\.metaValue))) })),
        ]))
        try sink.put(".zattrs", MetaValue.object([("file_format", .string("ZSpy")), ("file_format_version", .string(formatVersion)),
                                                   ("emconv", provenance)]).json())
        try sink.finish()
        return report
    }

    static func writeAxes(_ ds: Dataset, base: String, sink: ZarrSink) throws {
        for (i, a) in ds.axes.enumerated() {
            let g = "\(base)/axis-\(i)"
            try sink.put(g + "/.zgroup", #"{"zarr_format":2}"#)
            var attrs: [(String, MetaValue)] = [
                ("name", .string(a.name)), ("units", .string(a.units)), ("navigate", .bool(a.role == .navigation)),
                ("is_binned", .bool(false)), ("size", .int(Int64(a.size))),
            ]
            switch a.calibration {
            case let .uniform(offset, scale):
                attrs.insert(("_type", .string("UniformDataAxis")), at: 0)
                attrs += [("scale", .double(scale)), ("offset", .double(offset))]
            case let .coordinates(c):
                // HyperSpy's non-uniform DataAxis: coordinates in an `axis` array of the group.
                attrs.insert(("_type", .string("DataAxis")), at: 0)
                try ZarrTree.writeSmallArray(c, key: g + "/axis", sink: sink)
            }
            try sink.put(g + "/.zattrs", MetaValue.object(attrs).json())
        }
    }

    static func writeData(_ ds: Dataset, key: String, sink: ZarrSink, compression: Compression, context: WriteContext,
                          progress: (Int64) -> Void) throws {
        let plan = ChunkPlan(ds, targetBytes: targetChunkBytes)
        // --chunks balanced or N,N,…: chunks cut from navigation tiles (TileChunkPlan); frame: `plan`.
        let tiles: TileChunkPlan?
        switch try ChunkChoice.parse(context.options.string("chunks")) {
        case .frame: tiles = nil
        case .balanced: tiles = try TileChunkPlan(ds, chunk: TileChunkPlan.balancedShape(ds, targetBytes: targetChunkBytes))
        case let .explicit(sizes): tiles = try TileChunkPlan(ds, chunk: sizes)
        }
        let shuffleSize = compression == .none ? 0 : ds.elementType.componentSize
        let filters: MetaValue = shuffleSize > 1
            ? .array([.object([("id", .string("shuffle")), ("elementsize", .int(Int64(shuffleSize)))])]) : .null
        let zarray: MetaValue = .object([
            ("chunks", .array((tiles?.chunkShape ?? plan.chunkShape).map { .int(Int64($0)) })),
            ("compressor", compressorJSON(compression)),
            ("dimension_separator", .string("/")),
            ("dtype", zarrDType(ds.elementType)),
            ("fill_value", fillValue(ds.elementType)),
            ("filters", filters),
            ("order", .string("C")),
            ("shape", .array(ds.shape.map { .int(Int64($0)) })),
            ("zarr_format", .int(2)),
        ])
        try sink.put(key + "/.zarray", zarray.json())
        let frameBytes = ds.frameBytes
        let chunkShape = tiles?.chunkShape ?? plan.chunkShape
        if ds.elementCount == 0 { return }
        try ChunkPipeline.run(
            count: tiles?.chunkCount ?? plan.chunkCount, chunkBytes: tiles?.chunkBytes ?? plan.chunkBytes, workers: context.threads,
            producerSetup: { ds.source.prepareReadingThread() },
            produce: { i, buf in
                if let tiles { try tiles.read(chunk: i, of: ds, into: buf) } else { try plan.read(chunk: i, of: ds, into: buf) }
            },
            transform: { _, slot in
                try slot.encode(compression: compression, shuffleElementSize: shuffleSize)
            },
            consume: { i, out in
                let off = tiles?.chunkOffset(i) ?? plan.chunkOffset(i)
                let idx = ds.rank == 0 ? ["0"] : zip(off, chunkShape).map { String($0 / $1) }
                try sink.put(key + "/" + idx.joined(separator: "/"), out.bytes)
                progress(tiles?.sourceBytes(ofChunk: i) ?? Int64(plan.frames(ofChunk: i).count) * Int64(frameBytes))
            })
    }
}

/// Writes a MetaValue tree the way HyperSpy's hierarchical writer stores a dictionary: objects
/// become groups, scalars and lists of scalars become attributes, `None` becomes `"_None_"`,
/// lists holding objects become `_list_N_key` groups with children `0`, `1`, ….
enum ZarrTree {
    /// Zarr key component: no `/`, not empty, not starting with `.`.
    static func sanitize(_ s: String) -> String {
        var t = s.replacingOccurrences(of: "/", with: "-").replacingOccurrences(of: "\\", with: "-")
        t = String(t.unicodeScalars.map { $0.value < 32 ? "_" : Character($0) })
        if t.isEmpty { return "_" }
        if t.hasPrefix(".") { t = "_" + t.dropFirst() }
        return t
    }

    static func isScalar(_ v: MetaValue) -> Bool {
        switch v {
        case .object, .array: return false
        default: return true
        }
    }

    static func writeGroup(_ v: MetaValue, at path: String, sink: ZarrSink) throws {
        try sink.put(path + "/.zgroup", #"{"zarr_format":2}"#)
        var attrs: [(String, MetaValue)] = []
        var used: Set<String> = []
        func unique(_ k: String) -> String {
            var n = k
            var i = 2
            while used.contains(n) { n = "\(k)_\(i)"; i += 1 }
            used.insert(n)
            return n
        }
        let pairs: [(String, MetaValue)]
        switch v {
        case let .object(p): pairs = p
        case let .array(a): pairs = a.enumerated().map { (String($0.offset), $0.element) }
        default: pairs = [("value", v)]
        }
        for (k, value) in pairs {
            switch value {
            case .object:
                try writeGroup(value, at: path + "/" + unique(sanitize(k)), sink: sink)
            case let .array(items):
                if items.isEmpty {
                    attrs.append((unique("_list_empty_" + k), .string("_None_")))
                } else if items.allSatisfy(isScalar) {
                    attrs.append((unique(k), .array(items.map { $0 == .null ? .string("_None_") : $0 })))
                } else {
                    try writeGroup(value, at: path + "/" + unique("_list_\(items.count)_" + sanitize(k)), sink: sink)
                }
            case .null:
                attrs.append((unique(k), .string("_None_")))
            default:
                attrs.append((unique(k), value))
            }
        }
        try sink.put(path + "/.zattrs", MetaValue.object(attrs).json())
    }

    /// A small float64 array in one uncompressed chunk.
    static func writeSmallArray(_ values: [Double], key: String, sink: ZarrSink) throws {
        let zarray: MetaValue = .object([
            ("chunks", .array([.int(Int64(max(1, values.count)))])), ("compressor", .null), ("dtype", .string("<f8")),
            ("fill_value", .double(0)), ("filters", .null), ("order", .string("C")),
            ("shape", .array([.int(Int64(values.count))])), ("zarr_format", .int(2)),
        ])
        try sink.put(key + "/.zarray", zarray.json())
        if !values.isEmpty {
            try values.withUnsafeBytes { try sink.put(key + "/0", $0) }
        }
    }
}
