import ArgumentParser
import EMConvKit
import Foundation

/// Options shared by commands that read inputs.
struct ReadOptionGroup: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Navigation (scan) shape, slowest first, e.g. 256,256.", valueName: "Y,X"))
    var scanShape: String?

    @Option(name: .long, help: ArgumentHelp("Raw input: element type in NumPy notation ('<u2', '>f4', 'uint8').", valueName: "dtype"))
    var rawDtype: String?

    @Option(name: .long, help: ArgumentHelp("Raw input: shape, slowest first (e.g. 256,256,128,128).", valueName: "N,…"))
    var rawShape: String?

    @Option(name: .long, help: ArgumentHelp("Raw input: bytes before the first frame.", valueName: "bytes"))
    var rawOffset: Int64 = 0

    @Option(name: .long, help: ArgumentHelp("Raw input: bytes before every frame.", valueName: "bytes"))
    var rawFrameHeader: Int = 0

    @Option(name: .long, help: ArgumentHelp("Raw input: bytes after every frame.", valueName: "bytes"))
    var rawFrameFooter: Int = 0

    @Option(name: .long, help: ArgumentHelp("Raw input: number of trailing dimensions forming one frame (default 2).", valueName: "n"))
    var rawSignalRank: Int?

    @Flag(name: .long, help: "MIB: flip detector rows like RosettaSciIO (default: on-disk row order, like LiberTEM).")
    var mibFlipRows = false

    @Option(name: .long, help: ArgumentHelp("Velox spectrum streams: only frames A to B-1 (0-based).", valueName: "A:B"))
    var frames: String?

    @Flag(name: .long, help: "Velox spectrum streams: one spectrum image per frame instead of their sum.")
    var noSumFrames = false

    @Flag(name: .long, help: "Velox EDS: one spectrum image per detector segment instead of their sum.")
    var separateDetectors = false

    static func parseInts(_ s: String, _ option: String) throws -> [Int] {
        let parts = s.split(whereSeparator: { $0 == "," || $0 == "x" || $0 == " " })
        let v = parts.compactMap { Int($0) }
        guard !v.isEmpty, v.count == parts.count, v.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("\(option) takes positive integers separated by commas, e.g. 256,256 (got '\(s)')")
        }
        return v
    }

    func readOptions() throws -> ReadOptions {
        var o = ReadOptions()
        if let s = scanShape { o.scanShape = try Self.parseInts(s, "--scan-shape") }
        if rawDtype != nil || rawShape != nil {
            guard let d = rawDtype, let s = rawShape else {
                throw ValidationError("raw input needs both --raw-dtype and --raw-shape")
            }
            o.raw = try RawDescription(dtype: d, shape: try Self.parseInts(s, "--raw-shape"), signalRank: rawSignalRank,
                                       offset: rawOffset, frameHeader: rawFrameHeader, frameFooter: rawFrameFooter)
        }
        o.flipMIBRows = mibFlipRows
        o.sumFrames = !noSumFrames
        o.separateDetectors = separateDetectors
        if let f = frames {
            let p = f.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
            guard p.count == 2, let a = p[0], let b = p[1], a >= 0, b > a else {
                throw ValidationError("--frames takes A:B with 0 <= A < B (got '\(f)')")
            }
            o.frameRange = a..<b
        }
        return o
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert one file (default output: NeXus/HDF5, NXem layout).",
        discussion: "The output appears only when complete (written to a temporary name beside it, then renamed).")

    @Argument(help: "Input file (.mib, EMPAD .xml, raw with --raw-* options, …).")
    var input: String

    @Option(name: .shortAndLong, help: "Output file (.nxs, .h5, .zspy, .zspy.zip, .tif).")
    var output: String

    @Option(name: .long, help: "Output format (default: from the output extension). See 'emconv formats'.")
    var format: String?

    @Option(name: .long, help: ArgumentHelp("none | gzip[:1-9] | zstd[:1-22] (default: NeXus gzip:1 with shuffle, zspy zstd:1, TIFF deflate).", valueName: "codec[:level]"))
    var compression: String?

    @Option(name: [.short, .long], help: "Compression threads (default: all cores).")
    var threads: Int?

    @OptionGroup var read: ReadOptionGroup

    @Flag(name: .long, help: "Replace an existing output.")
    var overwrite = false

    @Flag(name: .long, help: "Do not add the derived preview image of 4D data.")
    var noPreview = false

    @Flag(name: .long, help: "TIFF: write BigTIFF (automatic above 4 GiB).")
    var bigtiff = false

    @Flag(name: .long, help: "TIFF: write any dataset as a stack of its 2-D frames (e.g. 4D-STEM).")
    var stack = false

    @Flag(name: .long, help: "Print a JSON result object (input, output, bytes, sha256, seconds, warnings).")
    var json = false

    @Flag(name: .long, help: "No progress display.")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("Metadata sidecar (YAML or JSON) supplying what the input lacks: sample, users, instrument … ('emconv validate --template NXem' prints one).", valueName: "meta.yaml"))
    var metadata: String?

    @Flag(name: .long, help: "Sidecar values win where they contradict the input file (default: the file wins, with a warning).")
    var preferSidecar = false

    @Flag(name: .long, help: .hidden)
    var dieWithParent = false

    @Flag(name: .long, help: .hidden)
    var noOutputChecksum = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if preferSidecar && metadata == nil { throw ValidationError("--prefer-sidecar needs --metadata FILE") }
        if let c = compression { do { _ = try Compression.parse(c) } catch let e as EMError { throw ValidationError(e.message) } }
    }

    func run() throws {
        Converter.installSignalHandlers()
        if dieWithParent { Converter.exitWhenParentDies() }
        let progress = TerminalProgress(enabled: !quiet && !json)
        var wo = WriteOptions(compression: try compression.map(Compression.parse), commandLine: Tools.commandLine, progress: progress)
        if let threads { wo.threads = threads }
        wo.preview = !noPreview
        wo.bigTIFF = bigtiff
        wo.stackFrames = stack
        wo.outputChecksum = json && !noOutputChecksum
        var ro = try read.readOptions()
        if let metadata {
            let sc = try Sidecar.load(metadata)
            wo.sidecar = sc
            wo.preferSidecar = preferSidecar
            // The sidecar's scan shape reshapes only when asked to win (--scan-shape always does).
            if preferSidecar, ro.scanShape == nil, let shape = sc.scanShape { ro.scanShape = shape }
        }
        let r = try Converter.convert(input: input, output: output, format: format, overwrite: overwrite,
                                      readOptions: ro, writeOptions: wo)
        progress.finish()
        if json {
            Tools.printJSON(.object([
                ("input", .string(r.input)), ("output", .string(r.output)), ("format", .string(r.format)),
                ("input_bytes", .int(r.inputBytes)), ("output_bytes", .int(r.outputBytes)),
                ("output_sha256", .string(r.outputSHA256)), ("seconds", .double((r.seconds * 1000).rounded() / 1000)),
                ("datasets", .array(r.datasets.map { .string($0) })), ("warnings", .array(r.warnings.map { .string($0) })),
            ]))
        } else {
            for w in r.warnings { Tools.warn(w) }
            if !quiet {
                FileHandle.standardError.write(Data("emconv: wrote \(r.output) (\(human(r.outputBytes)) from \(human(r.inputBytes)) in \(String(format: "%.2f", r.seconds)) s)\n".utf8))
            }
        }
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe files from their headers (no pixel data is read).")

    @Argument(help: "Input files.")
    var inputs: [String]

    @Flag(name: .long, help: "Print a stable, versioned JSON document.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Include the original vendor metadata tree: none | all.", valueName: "none|all"))
    var tags: String = "none"

    @OptionGroup var read: ReadOptionGroup

    func validate() throws {
        guard ["none", "all"].contains(tags) else { throw ValidationError("--tags takes none or all") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one file") }
    }

    func run() throws {
        let ro = try read.readOptions()
        var results: [Result<OpenedFile, EMError>] = []
        for p in inputs {
            do { results.append(.success(try Registry.open(p, options: ro))) } catch let e as EMError { results.append(.failure(e)) }
        }
        if json {
            Tools.printJSON(InfoReport.json(results, paths: inputs, includeOriginal: tags == "all"))
        } else {
            for r in results {
                switch r {
                case let .success(f):
                    print(InfoReport.text(f), terminator: "")
                    if tags == "all" { print(f.original.json(pretty: true)) }
                case let .failure(e): FileHandle.standardError.write(Data("emconv: error: \(e.description)\n".utf8))
                }
            }
        }
        if let firstError = results.compactMap({ r -> EMError? in if case let .failure(e) = r { return e }; return nil }).first {
            throw ExitCode(firstError.code.exitCode)
        }
    }
}

struct Formats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the supported formats (generated from the format descriptors).")

    @Flag(name: .long, help: "JSON output.")
    var json = false

    @Flag(name: .long, help: "Markdown table (as in README and formats.md).")
    var markdown = false

    func run() throws {
        let ds = Registry.descriptors
        if json {
            Tools.printJSON(.array(ds.map { d in
                .object([("name", .string(d.name)), ("long_name", .string(d.longName)), ("aliases", .array(d.aliases.map { .string($0) })),
                         ("extensions", .array(d.extensions.map { .string($0) })), ("reads", .bool(d.reads)), ("writes", .bool(d.writes)),
                         ("companions", d.companions.map { .string($0) } ?? .null),
                         ("options", .array(d.options.map { .object([("name", .string($0.name)), ("values", .string($0.values)), ("help", .string($0.help))]) })),
                         ("notes", .string(d.notes))])
            }))
        } else if markdown {
            print(FormatTable.markdown())
        } else {
            for d in ds {
                let rw = (d.reads ? "r" : "-") + (d.writes ? "w" : "-")
                print("\(d.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rw)  \(d.longName)  [\(d.extensions.map { "." + $0 }.joined(separator: " "))]")
                if let c = d.companions { print("             companions: \(c)") }
                for o in d.options { print("             \(o.name) \(o.values): \(o.help)") }
                if !d.notes.isEmpty { print("             \(d.notes)") }
            }
        }
    }
}
