import ArgumentParser
import EMConvKit
import Foundation

/// Options `convert` and `batch` share: the output format, threads, the sidecar, overwriting.
struct ConversionOptionGroup: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Output format (default: from the output extension; batch: nexus). See 'emconv formats'.", valueName: "name"))
    var format: String?

    @Option(name: [.short, .long], help: "Compression threads (default: all cores; batch: SLURM_CPUS_PER_TASK or all cores, shared by the jobs).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("Metadata sidecar (YAML or JSON) supplying what the input lacks: sample, users, instrument … ('emconv validate --template NXem' prints one).", valueName: "meta.yaml"))
    var metadata: String?

    @Flag(name: .long, help: "Sidecar values win where they contradict the input file (default: the file wins, with a warning).")
    var preferSidecar = false

    @Flag(name: .long, help: "Replace an existing output (atomically).")
    var overwrite = false

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if preferSidecar && metadata == nil { throw ValidationError("--prefer-sidecar needs --metadata FILE") }
        if let format, Catalog.writer(named: format) == nil {
            throw ValidationError("unknown output format '\(format)' (writers: \(Catalog.writers.map { $0.descriptor.name }.joined(separator: ", ")))")
        }
    }

    /// The sidecar, loaded once.
    func sidecar() throws -> Sidecar? { try metadata.map { try Sidecar.load($0) } }
}

/// The format options found on the command line (see ``FormatArguments``).
func formatArguments() throws -> FormatArguments {
    switch FormatArguments.current {
    case let .success(f): return f
    case let .failure(e): throw e
    }
}

struct Convert: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Convert one file (default output: NeXus/HDF5, NXem layout).",
            discussion: """
            The reader is chosen by content; the output format follows from the
            extension (or --format). The output appears only when complete: it is
            written to a temporary name beside the target, synced, then renamed.

            EXAMPLES
              emconv convert scan.mib -o scan.nxs
              emconv convert scan.mib -o scan.zspy --scan-shape 256,256
              emconv convert scan.mib -o scan.nxs --compression zstd:3
              emconv convert d.raw -o d.nxs --raw-dtype '<u2' --raw-shape 8,8,64,64
              emconv convert image.dm4 -o image.tif --metadata meta.yaml
              emconv convert -o odd.nxs -- -odd-name.dm3   (after --, never options)

            \(FormatArguments.helpSection(writers: true))
            """)
    }

    @Argument(help: "Input file (.mib, .dm3/.dm4, .emd, EMPAD .xml, .nxs/.h5, raw with --raw-* options, …).")
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output file (.nxs, .h5, .zspy, .zspy.zip, .tif).", valueName: "file"))
    var output: String

    @OptionGroup var conversion: ConversionOptionGroup
    @OptionGroup var log: OutputOptions

    @Flag(name: .long, help: "Print a JSON result object (input, output, bytes, sha256, seconds, warnings).")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Progress display: auto (a live line on a terminal), json (NDJSON on stderr), none.", valueName: "mode"))
    var progress: String = "auto"

    @Flag(name: .long, help: .hidden)
    var dieWithParent = false

    @Flag(name: .long, help: .hidden)
    var noOutputChecksum = false

    func validate() throws {
        guard ["auto", "json", "none"].contains(progress) else { throw ValidationError("--progress takes auto, json or none") }
    }

    func run() throws {
        ActiveWork.installSignalHandlers()
        if dieWithParent { ActiveWork.exitWhenParentDies() }
        let fa = try formatArguments()
        let terminal = TerminalProgress(enabled: progress == "auto" && !log.quiet && !json)
        var o = ConversionOptions(commandLine: Tools.commandLine)
        if let t = conversion.threads { o.threads = t }
        o.format = conversion.format
        o.overwrite = conversion.overwrite
        o.read = fa.read
        o.write = fa.write
        o.process = fa.process
        o.progress = progress == "json" ? JSONProgress() : terminal
        o.outputChecksum = json && !noOutputChecksum
        if let sc = try conversion.sidecar() {
            o.sidecar = sc
            o.preferSidecar = conversion.preferSidecar
            // The sidecar's scan shape reshapes only when asked to win (--scan-shape always does).
            if conversion.preferSidecar, o.read["scan-shape"] == nil, let shape = sc.scanShape {
                o.read.set("scan-shape", shape.map(String.init).joined(separator: ","))
            }
        }
        if log.verbose {
            let names = (try? Catalog.candidates(for: input, options: o.read).map { $0.descriptor.name }) ?? []
            log.detail("readers that identify \(input), best first: \(names.isEmpty ? "none" : names.joined(separator: ", "))")
            if !o.read.isEmpty { log.detail("reader options: " + o.read.keys.map { "\($0)=\(o.read[$0] ?? "")" }.joined(separator: " ")) }
            if !o.write.isEmpty { log.detail("writer options: " + o.write.keys.map { "\($0)=\(o.write[$0] ?? "")" }.joined(separator: " ")) }
        }
        let r = try Converter.convert(input: input, output: output, options: o)
        terminal.finish()
        if json {
            Tools.printJSON(.object([
                ("input", .string(r.input)), ("output", .string(r.output)), ("outputs", .array(r.outputs.map { .string($0) })),
                ("format", .string(r.format)),
                ("input_bytes", .int(r.inputBytes)), ("output_bytes", .int(r.outputBytes)),
                ("output_sha256", .string(r.outputSHA256)), ("outputs_sha256", .array(r.outputsSHA256.map { .string($0) })),
                ("seconds", .double((r.seconds * 1000).rounded() / 1000)),
                ("datasets", .array(r.datasets.map { .string($0) })), ("warnings", .array(r.warnings.map { .string($0) })),
            ]))
        } else {
            for w in r.warnings { log.warn(w) }
            log.info("wrote \(r.outputs.joined(separator: ", ")) (\(human(r.outputBytes)) from \(human(r.inputBytes)) in \(String(format: "%.2f", r.seconds)) s)")
            log.detail("datasets: \(r.datasets.joined(separator: ", ")); output format \(r.format)")
        }
    }
}

struct Info: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Describe files from their headers (no pixel data is read).",
            discussion: """
            EXAMPLES
              emconv info scan.mib
              emconv info --json scan.mib other.dm4        (a stable, versioned document)
              emconv info --json --tags all scan.emd       (plus the complete original metadata tree)
              emconv info dump.raw --raw-dtype '<f4' --raw-shape 64,64

            \(FormatArguments.helpSection(writers: false))
            """)
    }

    @Argument(help: "Input files.")
    var inputs: [String] = []

    @Flag(name: .long, help: "Print a stable, versioned JSON document.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Include the original vendor metadata tree: none | all.", valueName: "none|all"))
    var tags: String = "none"

    @OptionGroup var log: OutputOptions

    func validate() throws {
        guard ["none", "all"].contains(tags) else { throw ValidationError("--tags takes none or all") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one file (e.g. emconv info scan.mib)") }
    }

    func run() throws {
        let ro = try formatArguments().read
        var results: [Result<OpenedFile, EMError>] = []
        for p in inputs {
            do { results.append(.success(try Catalog.open(p, options: ro))) } catch let e as EMError { results.append(.failure(e)) }
        }
        if json {
            Tools.printJSON(InfoReport.json(results, paths: inputs, includeOriginal: tags == "all"))
        } else {
            for r in results {
                switch r {
                case let .success(f):
                    print(InfoReport.text(f), terminator: "")
                    if tags == "all" { print(f.original.json(pretty: true)) }
                case let .failure(e): Tools.stderr("emconv: error: \(e.description)\n")
                }
            }
        }
        if let firstError = results.compactMap({ r -> EMError? in if case let .failure(e) = r { return e }; return nil }).first {
            throw ExitCode(firstError.code.exitCode)
        }
    }
}

struct Formats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the supported formats and their options (generated from the format descriptors).",
        discussion: """
        EXAMPLES
          emconv formats
          emconv formats --json
          emconv formats --markdown      (the tables README and formats.md embed)
        """)

    @Flag(name: .long, help: "JSON output.")
    var json = false

    @Flag(name: .long, help: "Markdown tables (as in README and formats.md).")
    var markdown = false

    @OptionGroup var log: OutputOptions

    func run() throws {
        let ds = Catalog.descriptors
        if json {
            Tools.printJSON(.array(ds.map { d in
                .object([("name", .string(d.name)), ("long_name", .string(d.longName)), ("aliases", .array(d.aliases.map { .string($0) })),
                         ("extensions", .array(d.extensions.map { .string($0) })), ("reads", .bool(d.reads)), ("writes", .bool(d.writes)),
                         ("companions", d.companions.map { .string($0) } ?? .null),
                         ("options", .array(d.options.map {
                             .object([("name", .string($0.flag)), ("values", .string($0.valueName)), ("help", .string($0.help)),
                                      ("default", $0.defaultText.map { .string($0) } ?? .null)])
                         })),
                         ("notes", .string(d.notes))])
            }))
        } else if markdown {
            print(Catalog.markdownTable())
            print(Catalog.markdownOptions())
        } else {
            for d in ds {
                let rw = (d.reads ? "r" : "-") + (d.writes ? "w" : "-")
                print("\(d.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(rw)  \(d.longName)  [\(d.extensions.map { "." + $0 }.joined(separator: " "))]")
                if let c = d.companions { print("             companions: \(c)") }
                for o in d.options { print("             \(o.helpLine)") }
                if !d.notes.isEmpty { print("             \(d.notes)") }
            }
            print("processing options (convert and batch, every format; recorded in the output):")
            for o in Processing.options { print("             \(o.helpLine)") }
        }
    }
}
