import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one conversion is asked to do besides input and output.
public struct ConversionOptions: Sendable {
    /// Output format name; nil: from the output's extension.
    public var format: String?
    public var overwrite = false
    /// Values of reader options (declared in the readers' descriptors).
    public var read = OptionValues()
    /// Values of writer options (declared in the writers' descriptors).
    public var write = OptionValues()
    /// Values of processing options (``Processing/options``: dataset selection, crop, bin).
    public var process = OptionValues()
    /// Worker threads for compression (default: all cores).
    public var threads: Int
    /// The command line recorded in provenance.
    public var commandLine = ""
    public var progress: ProgressSink?
    /// Metadata sidecar (`--metadata`): fills what the input lacks (sample, users, instrument).
    public var sidecar: Sidecar?
    /// `--prefer-sidecar`: sidecar values win over contradicting file values.
    public var preferSidecar = false
    /// Re-read the finished output to report its SHA-256 (`convert --json`, batch reports).
    public var outputChecksum = false

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, commandLine: String = "",
                overwrite: Bool = false, compression: Compression? = nil) {
        self.threads = max(1, threads)
        self.commandLine = commandLine
        self.overwrite = overwrite
        if let compression { write.set("compression", compression.description) }
    }
}

/// Result of one conversion, as `convert --json` prints it.
public struct ConversionResult: Sendable {
    public var input: String
    /// The output (the first file, when a one-dataset-per-file writer wrote several).
    public var output: String
    /// Every file written: one, or one per dataset (`{stem}_{dataset}.tif`).
    public var outputs: [String]
    public var format: String
    public var inputBytes: Int64
    public var outputBytes: Int64
    /// Empty unless ``ConversionOptions/outputChecksum`` was set.
    public var outputSHA256: String
    /// The SHA-256 of each of ``outputs``, in order (empty unless ``ConversionOptions/outputChecksum`` was set).
    public var outputsSHA256: [String] = []
    public var seconds: Double
    public var warnings: [String]
    public var datasets: [String]
}

/// Converts one input to one output, the same way for every writer: opens the input with the
/// reader the catalog picks, merges the sidecar, makes the provenance, says what the output
/// format leaves out, then lets the writer write to a temporary name beside the target and
/// renames it into place only when complete. Conversions are independent: several may run at
/// once in one process.
public enum Converter {
    public static func outputFormat(for output: String, explicit: String?) throws -> FormatWriter.Type {
        if let explicit {
            guard let w = Catalog.writer(named: explicit) else {
                throw EMError(.usage, "unknown output format '\(explicit)' (see 'emconv formats')")
            }
            return w
        }
        let ext = (output as NSString).pathExtension
        guard let w = Catalog.writer(forExtension: ext) else {
            if output.hasSuffix("/") || isDirectory(output) {
                throw EMError(.usage, file: output, "-o names a directory; give the output file's name (e.g. \((output as NSString).appendingPathComponent("scan.nxs")))")
            }
            throw EMError(.usage, file: output, "cannot tell the output format from the extension '.\(ext)'; use --format (see 'emconv formats')")
        }
        return w
    }

    static func isDirectory(_ path: String) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeDirectory
    }

    /// Options given that neither the reader nor the writer declares: said, never silently dropped.
    static func unusedOptions(_ options: ConversionOptions, reader: FormatDescriptor, writer: FormatDescriptor) -> [String] {
        var out: [String] = []
        for k in options.read.keys where !reader.options.contains(where: { $0.key == k }) {
            out.append("--\(k) does not apply to \(reader.longName) input; ignored")
        }
        for k in options.write.keys where !writer.options.contains(where: { $0.key == k }) {
            out.append("--\(k) does not apply to \(writer.longName) output; ignored")
        }
        return out
    }

    /// What the file carries (data aside) that the writer cannot hold.
    static func leftOut(_ file: OpenedFile, writer: FormatDescriptor) -> [MetadataFacet] {
        var present = file.supplement.facets
        present.insert(.provenance)
        if file.datasets.contains(where: { $0.axes.contains { !$0.units.isEmpty || $0.scale != 1 || $0.offset != 0 } }) {
            present.insert(.axisCalibration)
        }
        if file.datasets.contains(where: { !$0.metadata.entries.isEmpty }) { present.insert(.instrument) }
        if file.original != .object([]) || file.datasets.contains(where: { $0.original != .object([]) }) {
            present.insert(.originalMetadata)
        }
        return present.subtracting(writer.holds).sorted()
    }

    /// `{stem}_{dataset}.ext` for each dataset: names made of letters, digits, `_`, `-` and `.`,
    /// numbered when two would collide.
    public static func perDatasetOutputs(_ output: String, datasets: [String]) -> [String] {
        let ns = output as NSString
        let ext = ns.pathExtension
        let stem = ext.isEmpty ? output : ns.deletingPathExtension
        var used: Set<String> = [], out: [String] = []
        for (i, name) in datasets.enumerated() {
            var clean = String(name.map { $0.isLetter || $0.isNumber || "_-.".contains($0) ? $0 : "_" })
            if clean.isEmpty { clean = String(i) }
            if used.contains(clean) { clean += "_\(i)" }
            used.insert(clean)
            out.append(stem + "_" + clean + (ext.isEmpty ? "" : "." + ext))
        }
        return out
    }

    public static func convert(input: String, output: String, options: ConversionOptions = ConversionOptions()) throws -> ConversionResult {
        let start = Date()
        let writer = try outputFormat(for: output, explicit: options.format)
        let fm = FileManager.default
        guard fm.fileExists(atPath: input) else { throw EMError(.missingInput, file: input, "no such file") }
        if fm.fileExists(atPath: output) && !options.overwrite {
            throw EMError(.outputExists, file: output, "output exists (use --overwrite to replace it)")
        }
        if isDirectory(output) && !(writer.writesDirectory && options.overwrite) {
            throw EMError(.outputExists, file: output, "output is a directory")
        }
        if isDirectory(output), let why = OutputSafety.replaceRefusal(ofFolder: output) {
            throw EMError(.outputExists, file: output, "not replaced: \(why)")
        }
        return try convert(opened: try Catalog.open(input, options: options.read), input: input, output: output,
                           options: options, start: start)
    }

    /// Converts an already opened file (a live recording amends it before it is written).
    public static func convert(opened file: OpenedFile, input: String, output: String, options: ConversionOptions,
                               start: Date = Date()) throws -> ConversionResult {
        let writer = try outputFormat(for: output, explicit: options.format)
        let fm = FileManager.default
        let outputIsDirectory = isDirectory(output)
        var warnings = unusedOptions(options, reader: Catalog.readers.first { $0.reader.descriptor.name == file.format }?.reader.descriptor
                                     ?? FormatDescriptor(name: file.format, longName: file.format, extensions: [], reads: true, writes: false),
                                     writer: writer.descriptor)
        // Declared frame sizes before anything reads a frame (a dark from the input's own first
        // frames); the datasets' plausibility after the output's free space, below.
        try MemoryBudget.checkDeclared(file, framesOnly: true)
        // Frame-sized buffers besides the pipeline's (a corrected frame's input, derived views'
        // sums, a tile): the watchdog's memory ceiling grows with the largest frame.
        let frameAllowance = Watchdog.allow(MemoryBudget.product([4, file.datasets.map(\.frameBytes).max() ?? 0]) ?? 0)
        defer { frameAllowance() }
        warnings += try Processing.apply(options.process, to: file)
        if writer.descriptor.name != "nexus", file.datasets.contains(where: { $0.processing.contains { $0.name == "correct" } }) {
            warnings.append("\(writer.descriptor.longName) output records the correction (what was done, the maps' SHA-256 and origins) but not the maps themselves (NeXus keeps them)")
        }
        if let sc = options.sidecar {
            warnings += SidecarMerge.apply(sc, to: file, preferSidecar: options.preferSidecar)
            file.supplement = sc.supplement(preferSidecar: options.preferSidecar)
        }
        let missing = leftOut(file, writer: writer.descriptor)
        if !missing.isEmpty {
            warnings.append("\(writer.descriptor.longName) output leaves out: \(missing.map(\.rawValue).joined(separator: ", ")) (NeXus keeps them)")
        }
        // One file per dataset for writers that hold one (TIFF), each written like a single output.
        var parts: [(OpenedFile, String)] = [(file, output)]
        if writer.descriptor.oneDatasetPerFile && file.datasets.count > 1 {
            let names = perDatasetOutputs(output, datasets: file.datasets.map(\.name))
            parts = zip(file.datasets, names).map { ds, name in
                let one = OpenedFile(path: file.path, format: file.format, variant: file.variant, datasets: [ds], files: file.files,
                                     original: file.original, warnings: file.warnings, readerName: file.readerName,
                                     readerVersion: file.readerVersion, handles: file.handles)
                one.supplement = file.supplement
                return (one, name)
            }
            for (_, name) in parts where fm.fileExists(atPath: name) && !options.overwrite {
                throw EMError(.outputExists, file: name, "output exists (use --overwrite to replace it)")
            }
            warnings.append("\(writer.descriptor.longName) holds one dataset per file: writing \(parts.count) files, \(parts.map { ($0.1 as NSString).lastPathComponent }.joined(separator: ", "))")
        }
        for (one, name) in parts {
            try OutputSafety.refuseReplacingInputs(output: name, inputs: file.files + [input])
            let provenance = Provenance(file: one, outputName: (name as NSString).lastPathComponent, commandLine: options.commandLine)
            do {
                try writer.check(one, context: WriteContext(options: options.write, threads: options.threads, progress: options.progress, provenance: provenance))
            } catch var e as EMError where parts.count > 1 {
                e.message = "dataset '\(one.datasets[0].name)': " + e.message + "; choose the datasets to write with --dataset (this file has \(file.datasets.map(\.name).joined(separator: ", ")))"
                throw e
            }
        }
        let compressed = (((try? options.write.compression()) ?? nil) ?? .defaultValue) != .none
        try OutputSpace.ensureRoom(estimatedBytes: OutputSpace.estimate(file, compressed: compressed), forOutput: output)
        try MemoryBudget.checkDeclared(file)
        var outSize: Int64 = 0, hashes: [String] = [], reportWarnings: [String] = []
        for (one, name) in parts {
            let provenance = Provenance(file: one, outputName: (name as NSString).lastPathComponent, commandLine: options.commandLine)
            let context = WriteContext(options: options.write, threads: options.threads, progress: options.progress, provenance: provenance)
            let report = try writeOne(one, to: name, writer: writer, context: context, overwrite: options.overwrite)
            reportWarnings += report.warnings
            outSize += OutputTree.size(name)
            if options.outputChecksum { hashes.append(try OutputTree.sha256(name)) }
        }
        reportWarnings += Processing.findings(file)
        let inSize = file.files.compactMap { (try? fm.attributesOfItem(atPath: $0)[.size] as? NSNumber)?.int64Value }.reduce(0, +)
        return ConversionResult(input: input, output: parts[0].1, outputs: parts.map(\.1), format: writer.descriptor.name, inputBytes: inSize,
                                outputBytes: outSize, outputSHA256: hashes.first ?? "", outputsSHA256: hashes, seconds: Date().timeIntervalSince(start),
                                warnings: file.warnings + warnings + reportWarnings, datasets: file.datasets.map(\.name))
    }

    /// Writes one output to a temporary name beside it, syncs it and renames it into place.
    static func writeOne(_ file: OpenedFile, to output: String, writer: FormatWriter.Type, context: WriteContext,
                         overwrite: Bool) throws -> WriteReport {
        let fm = FileManager.default
        if fm.fileExists(atPath: output) && !overwrite {
            throw EMError(.outputExists, file: output, "output exists (use --overwrite to replace it)")
        }
        let outputIsDirectory = isDirectory(output)
        if outputIsDirectory && !(writer.writesDirectory && overwrite) {
            throw EMError(.outputExists, file: output, "output is a directory")
        }
        if outputIsDirectory, let why = OutputSafety.replaceRefusal(ofFolder: output) {
            throw EMError(.outputExists, file: output, "not replaced: \(why)")
        }
        let dir = (output as NSString).deletingLastPathComponent
        let base = (output as NSString).lastPathComponent
        let tmp = OutputSafety.temporaryName(for: output)
        if !dir.isEmpty, !fm.fileExists(atPath: dir) {
            throw EMError(.writeError, file: output, "the output directory does not exist")
        }
        var report = WriteReport()
        report.warnings += OutputSafety.removeStaleTemporaries(for: [output]).map { "removed stale partial output \($0) of an interrupted conversion" }
        OutputTree.remove(tmp)
        let token = ActiveWork.shared.beginOutput(tmp)
        defer { token.end() }
        do {
            let written = try writer.write(file, to: tmp, context: context)
            report.bytesWritten = written.bytesWritten
            report.warnings += written.warnings
            let fd = open(tmp, O_RDONLY)
            // A directory tree (zarr store) is flushed with one syncfs instead of an fsync per file.
            if fd >= 0 { if writer.writesDirectory { OutputTree.syncFilesystem(fd) } else { fsync(fd) }; close(fd) }
            var old: String?
            if outputIsDirectory || (writer.writesDirectory && fm.fileExists(atPath: output)) {
                // Replacing a directory: move the old tree aside, move the new one in, then delete the old.
                let aside = (dir.isEmpty ? "" : dir + "/") + ".\(base).old-emconv-\(getpid())"
                OutputTree.remove(aside)
                if rename(output, aside) != 0 {
                    throw EMError(.writeError, file: output, "cannot move the existing output aside: \(String(cString: strerror(errno)))")
                }
                old = aside
            }
            do { try OutputSafety.moveIntoPlace(tmp, output, replace: overwrite) } catch {
                if let old { rename(old, output) }
                throw error
            }
            if let old { OutputTree.remove(old) }
        } catch {
            let restated = OutputSafety.restate(error, tmp: tmp, output: output)
            OutputTree.remove(tmp)
            throw restated
        }
        return report
    }
}
