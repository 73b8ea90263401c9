import EMCore
import EMHDF5
import Foundation

/// Dectris ARINA / QUADRO / EIGER acquisitions: an HDF5 master file (`NAME_master.h5`, detector
/// metadata, flat field, pixel mask, count-rate tables) whose `entry/data/data_NNNNNN` external
/// links point into data files (`NAME_data_NNNNNN.h5`) of frames, usually bitshuffle-LZ4
/// compressed. Frames keep their stored type; chunks are decoded by emconv on all cores, so no
/// HDF5 plugin is needed.
public enum DectrisReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "dectris", longName: "Dectris ARINA/QUADRO/EIGER HDF5", aliases: ["arina", "eiger", "quadro"],
        extensions: ["h5", "hdf5", "nxs"], reads: true, writes: false,
        companions: "the data files the master links (NAME_data_NNNNNN.h5) and the scan side file NAME.h5",
        options: [
            OptionSpec("scan-shape", .intList, valueName: "Y,X", help: "navigation (scan) shape, slowest first",
                       default: "the side file's NumPixelsY/X, else ntrigger x nimages, else a frame stack"),
        ],
        notes: "Frames keep their stored type (bit_depth_image is recorded, never used to cast); flat field, pixel mask and count-rate tables are kept (NeXus: NXdetector fields), not applied.",
        container: "HDF5",
        signature: "entry/instrument/detector/detectorSpecific and entry/data/data_* links"
    )

    static let detectorPath = "entry/instrument/detector"

    public static func identify(_ probe: Probe) -> Identification {
        guard probe.isHDF5 else { return .no }
        if isMaster(probe.path) { return .yes }
        // A data file opened on its own: the acquisition is its master.
        if masterOfDataFile(probe.path) != nil { return .maybe }
        return .no
    }

    static func isMaster(_ path: String) -> Bool {
        HDF5Peek.root(path) { root -> Bool in
            guard let entry = root.openGroup("entry"), let data = entry.openGroup("data"),
                  root.openGroup(detectorPath + "/detectorSpecific") != nil else { return false }
            return data.childNames.contains { $0.hasPrefix("data_") }
        } ?? false
    }

    /// `NAME_master.h5` beside a `NAME_data_NNNNNN.h5`, when it is a master.
    static func masterOfDataFile(_ path: String) -> String? {
        guard let stem = dataFileStem(path) else { return nil }
        let master = stem + "_master.h5"
        return FileManager.default.fileExists(atPath: master) && isMaster(master) ? master : nil
    }

    /// `dir/NAME` of `dir/NAME_data_000001.h5`.
    static func dataFileStem(_ path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        guard let r = name.range(of: "_data_", options: .backwards), name.hasSuffix(".h5") else { return nil }
        let digits = name[r.upperBound..<name.index(name.endIndex, offsetBy: -3)]
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let dir = (path as NSString).deletingLastPathComponent
        let stem = String(name[..<r.lowerBound])
        return dir.isEmpty ? stem : dir + "/" + stem
    }

    /// `dir/NAME` of `dir/NAME_master.h5`.
    static func masterStem(_ path: String) -> String? {
        guard path.hasSuffix("_master.h5") else { return nil }
        return String(path.dropLast("_master.h5".count))
    }

    /// The side file `NAME.h5` (scan metadata written beside ARINA masters), when present.
    static func sideFile(of master: String) -> String? {
        guard let stem = masterStem(master) else { return nil }
        let side = stem + ".h5"
        return FileManager.default.fileExists(atPath: side) ? side : nil
    }

    public static func companions(of path: String) -> [String] {
        guard isMaster(path) else { return [] }
        var out: [String] = []
        if let links = HDF5Peek.root(path, { root in (try? dataLinks(root, master: path, requireFiles: false)) ?? [] }) {
            out += links.map(\.file)
        }
        // Siblings of the same acquisition (a data file whose link is missing still belongs).
        if let stem = masterStem(path) {
            let dir = (stem as NSString).deletingLastPathComponent
            let base = (stem as NSString).lastPathComponent
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
            for n in names.sorted() where n.hasPrefix(base + "_data_") && dataFileStem(n) == base {
                let full = dir.isEmpty ? n : dir + "/" + n
                if !out.contains(full) { out.append(full) }
            }
        }
        if let side = sideFile(of: path) { out.append(side) }
        return out
    }

    struct DataLink {
        let name: String
        let file: String
        let object: String
    }

    /// The `entry/data/data_*` links in name order, resolved to files in the master's folder
    /// tree. With `requireFiles`, a missing data file is an error (exit 66) naming it.
    static func dataLinks(_ root: HDF5Group, master: String, requireFiles: Bool) throws -> [DataLink] {
        guard let data = root.openGroup("entry/data") else { return [] }
        let dir = ((master as NSString).deletingLastPathComponent as NSString).standardizingPath
        let base = dir.isEmpty ? FileManager.default.currentDirectoryPath : dir
        var out: [DataLink] = []
        for name in data.childNames.filter({ $0.hasPrefix("data_") }).sorted() {
            guard let target = data.externalLink(name) else {
                // A dataset inside the master itself.
                if data.openDataset(name) != nil { out.append(DataLink(name: name, file: master, object: "entry/data/" + name)) }
                continue
            }
            let (file, object) = target
            let parts = file.split(separator: "/")
            guard !file.hasPrefix("/"), !parts.contains(".."), !file.isEmpty else {
                throw EMError(.badInput, file: master, at: "entry/data/\(name)",
                              "links to '\(file)', outside the master's folder (only files beside it or below are followed)")
            }
            let full = (base as NSString).appendingPathComponent(file)
            if requireFiles {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir) else {
                    throw EMError(.missingInput, file: full, "data file missing (linked from \((master as NSString).lastPathComponent) as entry/data/\(name))")
                }
                let attrs = try? FileManager.default.attributesOfItem(atPath: full)
                guard !isDir.boolValue, (attrs?[.type] as? FileAttributeType) == .typeRegular else {
                    throw EMError(.badInput, file: full, "is not a regular file (linked from \((master as NSString).lastPathComponent) as entry/data/\(name))")
                }
            }
            out.append(DataLink(name: name, file: dir.isEmpty ? file : full, object: object.hasPrefix("/") ? String(object.dropFirst()) : object))
        }
        return out
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        if !isMaster(path) {
            if let master = masterOfDataFile(path) {
                let f = try open(master, options: options)
                f.warnings.insert("\((path as NSString).lastPathComponent) is a data file: read the acquisition of its master \((master as NSString).lastPathComponent)", at: 0)
                return f
            }
            throw FormatDeclined("no entry/instrument/detector/detectorSpecific with entry/data/data_* links")
        }
        return try HDF5.lock.withLock { try openMaster(path, options: options) }
    }

    static func openMaster(_ path: String, options: OptionValues) throws -> OpenedFile {
        let h5 = try HDF5File(reading: path)
        let root = h5.root
        guard let det = root.openGroup(detectorPath) else { throw FormatDeclined("no \(detectorPath)") }
        let links = try dataLinks(root, master: path, requireFiles: true)
        guard !links.isEmpty else { throw EMError(.badInput, file: path, at: "entry/data", "no data_* link to a data file") }
        var warnings: [String] = []

        // Data files, in link order; a file cut short ends the acquisition there.
        var parts: [DectrisPart] = []
        var frameShape: [Int]?
        var type: ElementType?
        var stopped = false
        for link in links {
            if stopped {
                warnings.append("\((link.file as NSString).lastPathComponent): not converted (an earlier data file is incomplete)")
                continue
            }
            let part = try openPart(link, master: path, expectShape: frameShape, expectType: type, warnings: &warnings)
            frameShape = frameShape ?? Array(part.dataset.shape.dropFirst())
            type = type ?? part.dataset.elementType
            if part.frames < part.dataset.shape[0] { stopped = true }
            if part.frames > 0 { parts.append(part) }
        }
        guard let frameShape, let type, !parts.isEmpty else {
            throw EMError(.badInput, file: links[0].file, "no complete frame in the data files")
        }
        let source = DectrisFrameSource(parts: parts, frameShape: frameShape, type: type)
        let available = source.frameCount

        let side = sideFile(of: path)
        let sideMeta = try side.flatMap { try readSideFile($0) }
        let spec = det.openGroup("detectorSpecific")
        let ntrigger = spec?.openDataset("ntrigger")?.readMeta()?.intValue
        let nimages = spec?.openDataset("nimages")?.readMeta()?.intValue
        let (nav, navSource) = try scanShape(available: available, options: options, side: sideMeta,
                                             ntrigger: ntrigger, nimages: nimages, path: path, warnings: &warnings)

        var axes: [Axis] = []
        let step = sideMeta?.pixelSizeNM
        if nav.count == 2 {
            let cal: AxisCalibration = .uniform(offset: 0, scale: step ?? 1)
            let units = step == nil ? "" : "nm"
            axes.append(Axis(name: "scan_y", size: nav[0], role: .navigation, units: units, calibration: cal, longName: "scan position y"))
            axes.append(Axis(name: "scan_x", size: nav[1], role: .navigation, units: units, calibration: cal, longName: "scan position x"))
        } else if nav[0] > 1 || frameShape.count < 2 {
            axes.append(Axis(name: "frame", size: nav[0], role: .navigation, longName: "frame number"))
        }
        let detNames = frameShape.count == 2 ? ["det_y", "det_x"] : (0..<frameShape.count).map { "det_\($0)" }
        for (n, s) in zip(detNames, frameShape) {
            axes.append(Axis(name: n, size: s, role: .signal, longName: n == "det_y" ? "detector row (pixel)" : n == "det_x" ? "detector column (pixel)" : nil))
        }

        var md = DectrisMetadata.normalized(det)
        if let s = sideMeta { DectrisMetadata.apply(side: s, to: &md) }
        if nav.count == 2 { md.scanShape = nav; md.scanShapeSource = navSource }
        let description = det.openDataset("description")?.readMeta()?.stringValue ?? "Dectris"

        let ds = Dataset(name: "dectris", title: (path as NSString).lastPathComponent, axes: axes, elementType: type,
                         sourceByteOrder: .little, frameRank: frameShape.count, quantity: "counts",
                         signalKind: nav.count == 2 ? "4d-stem" : "diffraction", metadata: md, original: .object([]),
                         conventions: ["emconv_orientation": "stored row order: row 0 is the first row of each frame in the data file (as h5py reads it)"],
                         source: source)
        ds.auxiliary = try DectrisMetadata.auxiliary(det)

        var tree: [(String, MetaValue)] = [("master", DectrisMetadata.tree(root, depth: 0))]
        if let s = sideMeta { tree.append(("side_file", s.tree)) }
        tree.append(("data_files", .array(parts.map { .string($0.path) })))
        tree.append(("frames_in_files", .int(Int64(available))))
        tree.append(("navigation_shape_source", .string(navSource)))

        let codecs = Set(parts.map { p -> String in
            switch p.codec {
            case .bitshuffleBlocks(.lz4): return "bitshuffle-LZ4"
            case .bitshuffleBlocks(.zstd): return "bitshuffle-zstd"
            case .bitshuffle: return "bitshuffle"
            case .blosc: return "Blosc"
            case .raw: return "uncompressed"
            case .hdf5: return "filters " + p.dataset.filters.map(String.init).joined(separator: "+")
            }
        }).sorted().joined(separator: ", ")
        let variant = "\(description), \(frameShape.map(String.init).joined(separator: "x")) \(type.rawValue), \(available) frames in \(parts.count) data file\(parts.count == 1 ? "" : "s"), \(codecs)"
        var files = [path] + parts.map(\.path)
        if let side { files.append(side) }
        var handles = [try RandomAccessFile(path: path)] + parts.map(\.handle)
        if let side { handles.append(try RandomAccessFile(path: side)) }
        let opened = OpenedFile(path: path, format: descriptor.name, variant: variant, datasets: [ds], files: files,
                                original: .object(tree), warnings: warnings, readerName: "dectris", readerVersion: version,
                                handles: handles)
        _ = h5
        return opened
    }

    /// Opens one data file and indexes its chunks; a file cut short keeps its complete frames.
    static func openPart(_ link: DataLink, master: String, expectShape: [Int]?, expectType: ElementType?,
                         warnings: inout [String]) throws -> DectrisPart {
        let name = (link.file as NSString).lastPathComponent
        let file: HDF5File
        var reopened = false
        if let f = try? HDF5File(reading: link.file) {
            file = f
        } else {
            // HDF5 refuses files shorter than their superblock says: look at what is there.
            file = try HDF5File(reading: link.file, skipEOFCheck: true)
            reopened = true
        }
        guard let ds = file.root.openDataset(link.object) else {
            throw EMError(.badInput, file: link.file, at: link.object, "no such dataset (linked from \((master as NSString).lastPathComponent) as entry/data/\(link.name))")
        }
        let shape = ds.shape
        guard shape.count >= 2, shape.dropFirst().allSatisfy({ $0 > 0 }) else {
            throw EMError(.badInput, file: link.file, at: link.object, "expected frames (N, rows, columns), found shape \(shape)")
        }
        guard let type = ds.elementType, type.isNumericScalar else {
            throw EMError(.unsupported, file: link.file, at: link.object, "frames of this HDF5 type are not supported")
        }
        if let expectShape, expectShape != Array(shape.dropFirst()) {
            throw EMError(.badInput, file: link.file, at: link.object, "frame shape \(Array(shape.dropFirst())) differs from the first data file's \(expectShape)")
        }
        if let expectType, expectType != type {
            throw EMError(.badInput, file: link.file, at: link.object, "stores \(type.rawValue), the first data file \(expectType.rawValue)")
        }
        let handle = try RandomAccessFile(path: link.file)
        // Sizes come from the file: multiplied without overflow (nil beyond Int).
        guard let frameBytes = MemoryBudget.product(Array(shape.dropFirst()) + [type.size]) else {
            throw EMError(.badInput, file: link.file, at: link.object,
                          "frames of \(shape.dropFirst().map(String.init).joined(separator: " x ")) \(type.rawValue): the declared size overflows (damaged file)")
        }
        let pipeline = ds.filterPipeline
        var codec: DectrisPart.Codec = .hdf5
        var chunkFrames = 1
        if let chunk = ds.chunkShape, chunk.count == shape.count, Array(chunk.dropFirst()) == Array(shape.dropFirst()),
           chunk[0] > 0, let chunkBytes = MemoryBudget.product([chunk[0], frameBytes]), chunkBytes <= 1 << 30 {
            chunkFrames = chunk[0]
            if pipeline.isEmpty {
                codec = .raw
            } else if pipeline.count == 1, pipeline[0].id == BitshuffleLZ4.filterID, pipeline[0].cdValues.count >= 3,
                      Int(pipeline[0].cdValues[2]) == type.size {
                let cd = pipeline[0].cdValues
                do {
                    codec = try HDF5.bitshuffleCodec(cdValues: cd).map { .bitshuffleBlocks($0) } ?? .bitshuffle(block: cd.count > 3 ? Int(cd[3]) : 0)
                } catch let e as EMError {
                    throw EMError(e.code, file: link.file, at: link.object, e.message)
                }
            } else if pipeline.count == 1, pipeline[0].id == BloscChunk.filterID {
                codec = .blosc
            }
        }
        // Chunks of whole frames are written in order: the complete ones are a prefix. A file cut
        // short (opened past HDF5's end-of-file check) keeps the chunks that end inside it; a
        // chunk never written ends the frames too. (Locations only for cut files: HDF5 1.10 finds
        // a chunk's address by scanning all chunks, so a binary search keeps it to log N scans.)
        var frames = shape[0]
        if ds.chunkShape.map({ Array($0.dropFirst()) == Array(shape.dropFirst()) }) == true, shape[0] > 0 {
            let n = shape[0] / chunkFrames + (shape[0] % chunkFrames == 0 ? 0 : 1)
            let zeros = shape.dropFirst().map { _ in 0 }
            func complete(_ c: Int) -> Bool {
                let origin = [c * chunkFrames] + zeros
                if reopened {
                    guard let loc = ds.chunkLocation(at: origin) else { return false }
                    // Compared without overflow: a damaged chunk index may hold any address.
                    return loc.address <= UInt64(handle.size) && UInt64(loc.size) <= UInt64(handle.size) - loc.address
                }
                return ds.chunkStorageSize(at: origin) != nil
            }
            if !complete(n - 1) {
                var lo = 0, hi = n - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if complete(mid) { lo = mid + 1 } else { hi = mid }
                }
                frames = lo * chunkFrames
                let reason = reopened ? "the file ends inside chunk \(lo)" : "chunk \(lo) was never written"
                warnings.append("\(name): \(reason) (interrupted acquisition?); kept \(frames) complete frames of \(shape[0])")
            }
        } else if reopened {
            warnings.append("\(name): the file is shorter than HDF5 says (interrupted acquisition?); frames past its end fail to read")
        }
        return DectrisPart(path: link.file, file: file, dataset: ds, handle: handle, frames: frames,
                           chunkFrames: chunkFrames, codec: codec)
    }

    /// The navigation shape and where it came from.
    static func scanShape(available: Int, options: OptionValues, side: DectrisSideFile?, ntrigger: Int?, nimages: Int?,
                          path: String, warnings: inout [String]) throws -> ([Int], String) {
        if let s = try options.ints("scan-shape") {
            guard let need = MemoryBudget.product(s), need <= available else {
                throw EMError(.usage, file: path, "--scan-shape \(s.map(String.init).joined(separator: ",")) needs \(MemoryBudget.product(s).map(String.init) ?? "more than 2^63") frames but the data files hold \(available)")
            }
            if need < available { warnings.append("--scan-shape uses \(need) of \(available) frames; the rest are not converted") }
            return (s, "--scan-shape")
        }
        if let side, let y = side.scanY, let x = side.scanX, y > 0, x > 0 {
            // Products of declared sizes are compared without overflow (a damaged file's 2^62 x 4).
            if MemoryBudget.product([y, x]) == available { return ([y, x], "side file NumPixelsY/NumPixelsX") }
            warnings.append("side file scan \(y)x\(x) does not match the \(available) frames: read as a frame stack")
        } else if let t = ntrigger, let n = nimages, t > 1, n > 1 {
            if MemoryBudget.product([t, n]) == available { return ([t, n], "ntrigger x nimages") }
            warnings.append("ntrigger x nimages = \(t)x\(n) does not match the \(available) frames: read as a frame stack")
        }
        return ([available], "frame stack")
    }
}
