import EMCore
import EMHDF5
import Foundation

/// Writes NeXus/HDF5 following the NXem application definition: one NXentry whose
/// `measurement/event1` holds every dataset of the input as an NXimage (`image_1d`…`image_4d`)
/// or NXspectrum (`spectrum_0d`…`spectrum_3d`) NXdata, with full axis coordinates, provenance and
/// the original metadata as JSON. Chunks hold whole frames; compression runs on all cores and
/// chunks are written with `H5Dwrite_chunk`.
public enum NeXusWriter: FormatWriter {
    public static let descriptor = FormatDescriptor(
        name: "nexus", longName: "NeXus/HDF5 (NXem)", aliases: ["nxs", "hdf5", "h5", "nxem"],
        extensions: ["nxs", "h5", "hdf5", "nx5"], reads: false, writes: true,
        options: [
            OptionSpec("compression", .compression, valueName: "codec[:level]",
                       help: "compression: none | gzip[:1-9] | zstd[:1-22] | bitshuffle-lz4 | bitshuffle-zstd[:1-22]",
                       default: "gzip:1 with shuffle, readable everywhere; zstd is HDF5 filter 32015, bitshuffle-lz4/-zstd filter 32008 (h5py needs hdf5plugin)"),
            OptionSpec("no-preview", .flag, help: "do not add the derived sum image of 4D data"),
            ChunkChoice.option,
        ],
        notes: "Default output. Layout: /entry1/measurement/event1/imageN/image_Nd (NXdata, signal 'real')."
    )

    /// Target size of one chunk (whole frames are never split, unless --chunks asks).
    static let targetChunkBytes = 2 << 20

    public static func check(_ file: OpenedFile, context: WriteContext) throws {
        guard !file.datasets.isEmpty else {
            throw EMError(.badInput, file: file.path, "the file holds no dataset to convert")
        }
        _ = try ChunkChoice.parse(context.options.string("chunks"))
    }

    public static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport {
        var report = WriteReport()
        let h5 = try HDF5File(creating: path, truncate: true)
        let root = h5.root
        let now = context.provenance.time
        try root.setAttribute("NX_class", "NXroot")
        try root.setAttribute("default", "entry1")
        try root.setAttribute("file_name", context.provenance.outputName)
        try root.setAttribute("file_time", now.iso8601)
        try root.setAttribute("HDF5_Version", HDF5.libraryVersion)
        try root.setAttribute("creator", "emconv")
        try root.setAttribute("creator_version", EMConvVersion.string)

        let entry = try root.createGroup("entry1", nxClass: "NXentry")
        try entry.setAttribute("default", NeXusDefaultPlot.groupName)
        try entry.writeString("definition", "NXem")
        // Sample, users and the documents that supplied them (NeXusMetadata.swift).
        try NeXusMetadata.writeEntryMetadata(file.supplement, into: entry)
        // NX_DATE_TIME needs a UTC offset: a time whose zone the source does not state is kept
        // in the original metadata and as `emconv/start_time_local` (an NXcollection: NXentry does not
        // document the field; the sidecar's start_time fills `start_time`).
        let allStarts = file.datasets.compactMap { $0.metadata.startTime }.sorted { $0.date < $1.date }
        let starts = allStarts.filter { $0.utcOffsetSeconds != nil }
        let ends = file.datasets.compactMap { $0.metadata.endTime }.filter { $0.utcOffsetSeconds != nil }.sorted { $0.date < $1.date }
        if let s = starts.first { try entry.writeString("start_time", s.iso8601) }
        if let e = ends.last { try entry.writeString("end_time", e.iso8601) }
        if starts.isEmpty, let local = allStarts.first {
            let own = try entry.createGroup(collectionName, nxClass: "NXcollection")
            try own.writeString("start_time_local", local.raw ?? local.iso8601)
            report.warnings.append("the acquisition time \(local.raw ?? local.iso8601) has no time zone: NXem start_time not written (give start_time in a --metadata sidecar)")
        }

        let measurement = try entry.createGroup("measurement", nxClass: "NXem_measurement")
        try measurement.setAttribute("default", "event1")
        try NeXusMetadata.writeStaticInstrument(file, into: measurement)
        try NeXusMetadata.writeAuxiliary(file, into: measurement)
        let event = try measurement.createGroup("event1", nxClass: "NXem_event_data")
        if let s = starts.first { try event.writeString("start_time", s.iso8601) }
        if let e = ends.last { try event.writeString("end_time", e.iso8601) }
        try NeXusMetadata.writeEventInstrument(file, into: event)

        // Stream every dataset, then add previews.
        var imageIndex = 0, spectrumIndex = 0
        var defaultChild: String?
        var groups: [(Dataset, HDF5Group)] = []
        var views: [NeXusDefaultPlot.Measured] = []
        var totalBytes: Int64 = file.datasets.map(\.byteCount).reduce(0, +)
        if totalBytes == 0 { totalBytes = 1 }
        var doneBytes: Int64 = 0
        var previews: [(Dataset, [Double])] = []
        for original in file.datasets {
            let (ds, storedAs) = storageForm(of: original)
            ds.processing = original.processing
            let layout = NXLayout(ds)
            let groupName: String
            if layout.isSpectrum { spectrumIndex += 1; groupName = "spectrum\(spectrumIndex)" } else { imageIndex += 1; groupName = "image\(imageIndex)" }
            let g = try event.createGroup(groupName, nxClass: layout.isSpectrum ? "NXspectrum" : "NXimage")
            try g.setAttribute("default", layout.dataName)
            if defaultChild == nil { defaultChild = groupName }
            let data = try g.createGroup(layout.dataName, nxClass: "NXdata")
            let preview = try writeNXdata(ds, layout: layout, storedAs: storedAs, into: data, context: context) { bytes in
                doneBytes += bytes
                context.progress?.progress(done: doneBytes, total: totalBytes, stage: ds.name)
            }
            if let preview { previews.append((ds, preview)) }
            views.append(NeXusDefaultPlot.Measured(ds: ds, layout: layout, nxdata: data, name: groupName))
            groups.append((ds, g))
        }
        try event.setAttribute("default", defaultChild ?? "image1")
        try NeXusDefaultPlot.write(views, into: entry)

        // Source checksums are complete only now (computed while the data streamed).
        let sources = try context.provenance.sources().map { ($0.path, $0.size, $0.sha256) }
        for (ds, g) in groups {
            try writeProcess(ds, file: file, sources: sources, derived: ds.derived, into: g, context: context, now: now)
        }
        for (ds, sums) in previews {
            imageIndex += 1
            let g = try event.createGroup("image\(imageIndex)", nxClass: "NXimage")
            try g.setAttribute("default", "image_2d")
            try writePreview(ds, sums: sums, into: g)
            try writeProcess(ds, file: file, sources: sources,
                             derived: "sum over the detector axes of \(ds.name) (derived by emconv, not measured)",
                             into: g, context: context, now: now)
        }
        try writeNotes(file, sources: sources, into: entry, context: context, now: now)
        try h5.flush()
        return report
    }

    // MARK: NXdata

    /// NXem's `real` is NX_NUMBER: booleans are stored as uint8 0/1 and RGB(A) as uint8 with a
    /// trailing channel axis (the bytes are the same); `emconv/element_type` tells readers.
    static func storageForm(of ds: Dataset) -> (Dataset, String?) {
        switch ds.elementType {
        case .bool:
            return (Dataset(name: ds.name, title: ds.title, axes: ds.axes, elementType: .uint8, sourceByteOrder: ds.sourceByteOrder,
                            frameRank: ds.frameRank, quantity: ds.quantity, quantityUnits: ds.quantityUnits, signalKind: ds.signalKind,
                            metadata: ds.metadata, original: ds.original, conventions: ds.conventions, source: ds.source), "bool")
        case .rgb8, .rgba8:
            let c = ds.elementType == .rgb8 ? 3 : 4
            let channel = Axis(name: "channel", size: c, role: .signal, longName: ds.elementType == .rgb8 ? "colour channel (R, G, B)" : "colour channel (R, G, B, A)")
            return (Dataset(name: ds.name, title: ds.title, axes: ds.axes + [channel], elementType: .uint8, sourceByteOrder: ds.sourceByteOrder,
                            frameRank: ds.frameRank + 1, quantity: ds.quantity, quantityUnits: ds.quantityUnits, signalKind: "image",
                            metadata: ds.metadata, original: ds.original, conventions: ds.conventions, source: ds.source), ds.elementType.rawValue)
        default:
            return (ds, nil)
        }
    }

    /// Streams the dataset into `real`/`intensity` and writes the axes. Returns per-frame sums for
    /// the preview of 4D data.
    static func writeNXdata(_ ds: Dataset, layout: NXLayout, storedAs: String? = nil, into g: HDF5Group, context: WriteContext,
                            progress: (Int64) -> Void) throws -> [Double]? {
        try g.setAttribute("signal", layout.signalName)
        try g.setAttribute("axes", layout.axisNames)
        if !ds.title.isEmpty { try g.writeString("title", ds.title) }
        // emconv's own model facts, so its NeXus reader restores the dataset exactly. They go to
        // an NXcollection (NeXus' place for terms no definition documents; NXobject allows it in
        // every group), so NXem validators see only documented concepts.
        let own = try g.createGroup(collectionName, nxClass: "NXcollection")
        try own.writeString("dataset_name", ds.name)
        try own.writeString("signal_kind", ds.signalKind)
        try own.writeInts("frame_rank", [Int64(ds.frameRank)], shape: [])
        if let storedAs { try own.writeString("element_type", storedAs) }
        // A view emconv computed (virtual image, sum pattern): marked, so readers tell it from data.
        if let derived = ds.derived { try own.writeString("derived", derived) }
        for (i, a) in ds.axes.enumerated() {
            let name = layout.axisNames[i]
            try g.setAttribute("\(name)_indices", unsigned: [UInt32(i)])
            let units = layout.axisUnits[i]
            let axisDS = try g.writeDoubles(name, a.coordinates, units: units)
            try axisDS.setAttribute("long_name", a.longName ?? (a.units.isEmpty ? a.name : "\(a.name) (\(a.units))"))
            try own.writeString("\(name)_name", a.name)
            if units != a.units { try own.writeString("\(name)_units", a.units) }
            // [offset, scale] in one field (NeXus reserves the suffix _offset for other uses).
            if case let .uniform(offset, scale) = a.calibration {
                try own.writeDoubles("\(name)_calibration", [offset, scale])
            }
        }
        let plan = ChunkPlan(ds, targetBytes: targetChunkBytes)
        // --chunks balanced or N,N,…: chunks cut from navigation tiles (TileChunkPlan); frame: `plan`.
        let tiles: TileChunkPlan?
        let chunkOption = context.options.string("chunks")
        switch try ChunkChoice.parse(chunkOption) {
        // Not chosen: the dataset's preferred chunks (corrected frames: frame bands), else frames.
        case .frame: tiles = try chunkOption == nil ? ds.preferredChunkShape.map { try TileChunkPlan(ds, chunk: $0) } : nil
        case .balanced: tiles = try TileChunkPlan(ds, chunk: TileChunkPlan.balancedShape(ds, targetBytes: targetChunkBytes))
        case let .explicit(sizes): tiles = try TileChunkPlan(ds, chunk: sizes)
        }
        let chunkShape = tiles?.chunkShape ?? plan.chunkShape
        let period = PlaneDeflate.chunkPeriod(chunkShape: chunkShape, frameRank: ds.frameRank)
        let chunkOffset = { (i: Int) in tiles?.chunkOffset(i) ?? plan.chunkOffset(i) }
        let compression = try context.compression(default: .defaultValue)
        // HDF5's shuffle filter unshuffles by the stored type's size (8 for complex64, 3 for rgb8).
        let shuffleSize = ds.elementType.size
        // NXem's image fields: `real` (NX_NUMBER, required) and `imag`. Complex data are stored as
        // the two float parts, bit-exact, and marked so readers recombine them.
        let isComplex = ds.elementType == .complex64 || ds.elementType == .complex128
        let componentType: ElementType = ds.elementType == .complex128 ? .float64 : .float32
        let storedType = isComplex ? componentType : ds.elementType
        let signal = try g.createChunkedDataset(layout.signalName, type: storedType, shape: ds.shape,
                                                chunk: chunkShape, compression: compression, shuffle: storedType.size > 1)
        let imag = isComplex ? try g.createChunkedDataset("imag", type: componentType, shape: ds.shape, chunk: chunkShape,
                                                            compression: compression, shuffle: true) : nil
        if isComplex { try own.writeString("complex", "real+imag") }
        let units = Units.isParsable(ds.quantityUnits) ? ds.quantityUnits : ""
        let quantity = units == ds.quantityUnits ? ds.quantity : [ds.quantity, ds.quantityUnits].filter { !$0.isEmpty }.joined(separator: ", ")
        for (field, part) in [(signal, isComplex ? " (real part)" : "")] + (imag.map { [($0, " (imaginary part)")] } ?? []) {
            try field.setAttribute("long_name", (units.isEmpty ? quantity : "\(quantity) (\(units))") + part)
        }
        // NXimage/NXspectrum declare the signal NX_UNITLESS: the intensity units go to
        // @long_name and, for emconv's reader, `emconv/quantity_units`; the reader's conventions
        // (orientation, axis order, decoding …) to `emconv/convention_KEY`, as in zspy outputs.
        if !ds.quantityUnits.isEmpty { try own.writeString("quantity_units", ds.quantityUnits) }
        for (k, v) in ds.conventions.sorted(by: { $0.key < $1.key }) { try own.writeString(conventionPrefix + k, v) }
        let splitLock = NSLock()
        var splits: [Int: Int] = [:]

        let writeback = WritebackKicker(path: g.filePath)
        let wantPreview = !context.options.flag("no-preview") && layout.isFourD && ds.elementType.isNumericScalar
        var sums = wantPreview ? [Double](repeating: 0, count: ds.frameCount) : []
        let frameBytes = ds.frameBytes
        let elementType = ds.elementType
        // A live stream: chunks of frames that never arrived stay unwritten (count 0 marks them).
        let live = tiles == nil ? ds.source as? ArrivingFrameSource : nil
        try sums.withUnsafeMutableBufferPointer { sumsPtr in
            let sumsBase = sumsPtr.baseAddress
            try ChunkPipeline.run(
                count: tiles?.chunkCount ?? plan.chunkCount, chunkBytes: tiles?.chunkBytes ?? plan.chunkBytes, workers: context.threads,
                producerSetup: { ds.source.prepareReadingThread() },
                produce: { i, buf in
                    if let tiles {
                        // Frames pass through the producer once, as their tile is read: the preview sums them there.
                        try tiles.read(chunk: i, of: ds, into: buf, onFrame: wantPreview ? { f, bytes in sumsBase?[f] = frameSum(bytes, elementType) } : nil)
                    } else if let live, !live.waitForFrame(plan.frames(ofChunk: i).first) {
                        buf.count = 0
                    } else {
                        try plan.read(chunk: i, of: ds, into: buf)
                    }
                },
                transform: { i, slot in
                    if live != nil && slot.input.count == 0 { return slot.input }
                    if wantPreview, tiles == nil, let sumsBase {
                        let (first, n) = plan.frames(ofChunk: i)
                        for k in 0..<n {
                            let fr = UnsafeRawBufferPointer(rebasing: slot.input.raw[(k * frameBytes)..<((k + 1) * frameBytes)])
                            sumsBase[first + k] = frameSum(fr, elementType)
                        }
                    }
                    if isComplex {
                        let (out, split) = try slot.encodeComplexSplit(componentSize: componentType.size, compression: compression)
                        splitLock.withLock { splits[i] = split }
                        return out
                    }
                    return try slot.encode(compression: compression, shuffleElementSize: shuffleSize, period: period)
                },
                consume: { i, out in
                    if live != nil && out.count == 0 {
                        progress(Int64(plan.frames(ofChunk: i).count) * Int64(frameBytes))
                        return
                    }
                    if let imag {
                        let split = splitLock.withLock { splits.removeValue(forKey: i)! }
                        try HDF5.lock.withLock {
                            try signal.writeChunk(offset: chunkOffset(i), data: UnsafeRawBufferPointer(rebasing: out.bytes[0..<split]))
                            try imag.writeChunk(offset: chunkOffset(i), data: UnsafeRawBufferPointer(rebasing: out.bytes[split...]))
                        }
                    } else {
                        try HDF5.lock.withLock { try signal.writeChunk(offset: chunkOffset(i), data: out.bytes) }
                    }
                    writeback.wrote(Int64(out.count))
                    progress(tiles?.sourceBytes(ofChunk: i) ?? Int64(plan.frames(ofChunk: i).count) * Int64(frameBytes))
                })
        }
        return wantPreview ? sums : nil
    }

    /// Name of the NXcollection in each NXdata that holds emconv's own facts (read back by
    /// `NeXusReader`), and the prefix of the reader conventions kept there.
    static let collectionName = "emconv"
    static let conventionPrefix = "convention_"

    static func writePreview(_ ds: Dataset, sums: [Double], into g: HDF5Group) throws {
        let data = try g.createGroup("image_2d", nxClass: "NXdata")
        let nav = Array(ds.axes.prefix(ds.rank - ds.frameRank))
        try data.setAttribute("signal", "real")
        try data.setAttribute("axes", ["axis_j", "axis_i"])
        try data.writeString("title", "sum over detector axes (derived)")
        let names = ["axis_j", "axis_i"]
        for (i, a) in nav.enumerated() {
            try data.setAttribute("\(names[i])_indices", unsigned: [UInt32(i)])
            let axisDS = try data.writeDoubles(names[i], a.coordinates, units: a.units)
            try axisDS.setAttribute("long_name", a.longName ?? (a.units.isEmpty ? a.name : "\(a.name) (\(a.units))"))
        }
        let real = try data.writeDoubles("real", sums, shape: nav.map(\.size))
        try real.setAttribute("long_name", "sum of \(ds.quantity) over the detector")
        // Marks the preview as derived (emconv's reader skips it).
        let own = try data.createGroup(collectionName, nxClass: "NXcollection")
        try own.writeString("derived", "sum over the detector axes of \(ds.name) (derived by emconv, not measured)")
    }

    // MARK: Provenance

    static func writeProcess(_ ds: Dataset, file: OpenedFile, sources: [(String, Int64, String)], derived: String?,
                             into g: HDF5Group, context: WriteContext, now: Timestamp) throws {
        let p = try g.createGroup("process", nxClass: "NXprocess")
        try p.writeString("program", "emconv")
        try p.writeString("version", EMConvVersion.string)
        try p.writeString("date", now.iso8601)
        try p.writeString("detector_identifier", ds.metadata.detectorName ?? ds.name)
        // NXprocess documents no description field: what was derived goes to an NXnote.
        if let derived {
            let n = try p.createGroup("note", nxClass: "NXnote")
            try n.writeString("type", "text/plain")
            try n.writeString("description", derived)
        }
        func writeInput(_ p: HDF5Group) throws {
            guard let src = sources.first else { return }
            let input = try p.createGroup("input", nxClass: "NXnote")
            try input.writeString("type", "file")
            try input.writeString("file_name", (src.0 as NSString).lastPathComponent)
            try input.writeString("checksum", src.2)
            try input.writeString("algorithm", "sha256")
            try input.writeString("context", context.provenance.readerContext)
        }
        try writeInput(p)
        // What emconv did to the values (crop, bin …): one NXprocess per step, in order, each
        // naming the detector and the source file (with its checksum) as NXem asks of a process.
        for (n, step) in ds.processing.enumerated() {
            let s = try g.createGroup("processing\(n + 1)", nxClass: "NXprocess")
            try s.writeInts("sequence_index", [Int64(n + 1)], shape: [])
            try s.writeString("detector_identifier", ds.metadata.detectorName ?? ds.name)
            try writeInput(s)
            try s.writeString("program", step.program)
            try s.writeString("version", step.version)
            try s.writeString("date", now.iso8601)
            // What the step did goes to the NXnote with its parameters (NXprocess has no description field).
            let p = try s.createGroup("parameters", nxClass: "NXnote")
            try p.writeString("type", "application/json")
            try p.writeString("description", step.description)
            try p.writeBinaryText("data", MetaValue.object([("step", .string(step.name)), ("parameters", step.parameters)]).json())
        }
    }

    static func writeNotes(_ file: OpenedFile, sources: [(String, Int64, String)], into entry: HDF5Group,
                           context: WriteContext, now: Timestamp) throws {
        // NXem `profiling` (NXcs_profiling): the command line and the program that wrote the file.
        let profiling = try entry.createGroup("profiling", nxClass: "NXcs_profiling")
        try profiling.writeString("command_line_call", context.provenance.commandLine)
        let program = try profiling.createGroup("program1", nxClass: "NXprogram")
        try program.writeString("program", "emconv").setAttribute("version", EMConvVersion.string)
        var n = 0
        for (path, size, sum) in sources {
            n += 1
            let note = try entry.createGroup("note\(n)", nxClass: "NXnote")
            try note.writeString("description", n == 1 ? "source file (primary)" : "source file (companion)")
            try note.writeString("file_name", (path as NSString).lastPathComponent)
            try note.writeString("type", "application/octet-stream")
            try note.writeString("checksum", sum)
            try note.writeString("algorithm", "sha256")
            try note.writeString("date", now.iso8601)
            // What NXnote does not document: in an NXcollection.
            let own = try note.createGroup(collectionName, nxClass: "NXcollection")
            try own.writeInts("file_size", [size], shape: [], units: "B")
            try own.writeString("source_path", path)
            try own.writeString("reader", "\(file.readerName) \(file.readerVersion)")
        }
        n += 1
        let meta = try entry.createGroup("note\(n)", nxClass: "NXnote")
        try meta.writeString("description", "original vendor metadata, complete and unmodified, as JSON")
        try meta.writeString("type", "application/json")
        try meta.writeString("file_name", (file.path as NSString).lastPathComponent)
        var perDataset: [(String, MetaValue)] = []
        for ds in file.datasets where ds.original != .object([]) { perDataset.append((ds.name, ds.original)) }
        let tree: MetaValue = perDataset.isEmpty ? file.original : .object([("file", file.original), ("datasets", .object(perDataset))])
        try meta.writeBinaryText("data", tree.json())  // NXnote/data is NX_BINARY
        if !file.warnings.isEmpty {
            n += 1
            let w = try entry.createGroup("note\(n)", nxClass: "NXnote")
            try w.writeString("description", "warnings raised while reading the source")
            try w.writeString("type", "text/plain")
            try w.writeString("file_name", (file.path as NSString).lastPathComponent)
            try w.writeBinaryText("data", file.warnings.joined(separator: "\n"))  // NX_BINARY
        }
    }
}

/// How a dataset maps onto NXem's NXimage/NXspectrum NXdata names.
struct NXLayout {
    let isSpectrum: Bool
    let isFourD: Bool
    let dataName: String
    let signalName: String
    let axisNames: [String]
    /// The @units written on each axis field (the axis' own units except where NXem needs a
    /// category an uncalibrated axis cannot give).
    let axisUnits: [String]

    /// Written instead of '' on uncalibrated axes where NXem asks for NX_LENGTH (NXspectrum's
    /// axis_i/j/k): a pixel index (pynxtools and `emconv validate` accept it as a length).
    static let indexLengthUnit = "pixel"

    init(_ ds: Dataset) {
        let rank = ds.rank
        let signalRank = ds.axes.filter { $0.role == .signal }.count
        // NXspectrum needs an energy axis (axis_energy, NX_ENERGY); a 1-D signal without energy
        // units (an uncalibrated plot, a wavelength spectrum) is an NXimage image_Nd.
        let lastUnits = ds.axes.last?.units ?? ""
        let spectral = signalRank == 1 && ["spectrum", "eels", "eds", "cl"].contains(ds.signalKind)
            && Units.isParsable(lastUnits) && Units.matches(lastUnits, category: "NX_ENERGY")
        // NXspectrum's other axes are NX_LENGTH: lengths, or uncalibrated (written as pixel
        // indices); a spectrum over time or angle is an NXimage (axes NX_ANY).
        let positional = ds.axes.dropLast().allSatisfy { $0.units.isEmpty || Units.matchesNXDL($0.units, category: "NX_LENGTH") }
        isSpectrum = spectral && rank <= 4 && positional
        isFourD = rank == 4 && ds.frameRank == 2
        if isSpectrum {
            dataName = "spectrum_\(rank - 1)d"
            signalName = "intensity"
            axisNames = Array(["axis_k", "axis_j", "axis_i"].suffix(rank - 1)) + ["axis_energy"]
            axisUnits = ds.axes.dropLast().map { $0.units.isEmpty ? NXLayout.indexLengthUnit : $0.units } + [lastUnits]
            return
        }
        axisUnits = ds.axes.map(\.units)
        if rank <= 4 {
            dataName = "image_\(rank)d"
            signalName = "real"
            axisNames = Array(["axis_m", "axis_k", "axis_j", "axis_i"].suffix(rank))
        } else {
            dataName = "data_\(rank)d"
            signalName = "real"
            axisNames = (0..<rank).map { "axis_\($0)" }
        }
    }
}

/// Sum of a frame's values as Double (for previews). Floating-point values are summed in eight
/// running sums (SIMD lanes) and then added: one chain of dependent additions made the float32
/// frames of a corrected 2 GiB scan cost 1.4 s of CPU.
func frameSum(_ buf: UnsafeRawBufferPointer, _ t: ElementType) -> Double {
    func lanes<V: SIMD>(_: V.Type, _ widen: (V) -> SIMD8<Double>, _ scalar: (V.Scalar) -> Double) -> Double {
        let n = buf.count / MemoryLayout<V.Scalar>.stride, w = V.scalarCount
        var acc = SIMD8<Double>()
        var i = 0
        while i + w <= n {
            acc += widen(buf.loadUnaligned(fromByteOffset: i * MemoryLayout<V.Scalar>.stride, as: V.self))
            i += w
        }
        var total = acc.sum()
        while i < n {
            total += scalar(buf.loadUnaligned(fromByteOffset: i * MemoryLayout<V.Scalar>.stride, as: V.Scalar.self))
            i += 1
        }
        return total
    }
    func s<T>(_: T.Type, _ conv: (T) -> Double) -> Double {
        let p = buf.bindMemory(to: T.self)
        var acc = 0.0
        for v in p { acc += conv(v) }
        return acc
    }
    func si<T: FixedWidthInteger>(_: T.Type) -> Double {
        let p = buf.bindMemory(to: T.self)
        var acc: Int64 = 0
        var total = 0.0
        var n = 0
        for v in p {
            acc &+= Int64(truncatingIfNeeded: v)
            n += 1
            if n == 4096 { total += Double(acc); acc = 0; n = 0 }
        }
        return total + Double(acc)
    }
    switch t {
    case .uint8, .bool: return si(UInt8.self)
    case .int8: return si(Int8.self)
    case .uint16: return si(UInt16.self)
    case .int16: return si(Int16.self)
    case .uint32: return si(UInt32.self)
    case .int32: return si(Int32.self)
    case .int64: return s(Int64.self) { Double($0) }
    case .uint64: return s(UInt64.self) { Double($0) }
    case .float32: return lanes(SIMD8<Float>.self, { SIMD8<Double>($0) }, { Double($0) })
    case .float64: return lanes(SIMD8<Double>.self, { $0 }, { $0 })
    default: return 0
    }
}
