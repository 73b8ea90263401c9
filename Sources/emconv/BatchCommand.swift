import ArgumentParser
import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct Batch: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Convert whole directory trees: in parallel, resumable, and across a cluster (SLURM job arrays).",
            discussion: """
            Inputs are directories, files or @list.txt. Files are identified by
            content; companions (.hdr, EMPAD .raw, MIB series) go with their primary.
            Each file is converted by a child 'emconv convert' process, which takes
            exactly the reader and writer options given here. Output names depend
            only on the input tree. Exit status: 0 all converted (or skipped), 2 some
            failed, 130/143 interrupted.

            EXAMPLES
              emconv batch /data/session1 -r -o /data/nexus
              emconv batch /data/session1 -r -o /data/nexus --dry-run
              emconv batch /data -r -o out --include '*.mib' -j 4
              emconv batch /data -r -o out --compression zstd --mib-flip-rows
              emconv batch /data -r -o out --manifest plan.jsonl
              emconv batch --from-manifest plan.jsonl -o out --emit-slurm
              emconv batch /data/incoming -r -o out --watch --settle 10

            \(FormatArguments.helpSection(writers: true))
            """)
    }

    @Argument(help: "Directories, files, or @list.txt (one path per line).")
    var inputs: [String] = []

    @Option(name: .shortAndLong, help: "Output directory (optional with --from-manifest: the plan records it).")
    var output: String?

    @Flag(name: .shortAndLong, help: "Walk directories recursively.")
    var recursive = false

    @Flag(name: .long, help: "Follow symbolic links that lead out of an input folder (default: skipped, with the reason in the plan).")
    var followSymlinks = false

    @Option(name: .long, help: ArgumentHelp("Only files matching this glob (path relative to its input, or name). Repeatable.", valueName: "glob"))
    var include: [String] = []

    @Option(name: .long, help: ArgumentHelp("Skip files matching this glob. Repeatable.", valueName: "glob"))
    var exclude: [String] = []

    @OptionGroup var conversion: ConversionOptionGroup
    @OptionGroup var log: OutputOptions

    @Option(name: .long, help: "Output naming: mirror (the input tree under OUTDIR) or flat.")
    var layout: String = "mirror"

    @Option(name: .long, help: ArgumentHelp("Output name template: {relpath} {stem} {name} {ext} {format} {index}.", valueName: "template"))
    var name: String?

    @Option(name: [.short, .long], help: "Files converted at once (default: cores, at most the number of files).")
    var jobs: Int?

    @Option(name: .long, help: ArgumentHelp("Upper bound for the memory of all jobs together, e.g. 4G (about 128 MiB per job).", valueName: "size"))
    var memoryLimit: String?

    @Flag(name: .long, help: "Treat an existing output as done.")
    var skipExisting = false

    @Flag(name: .long, help: "Stop at the first failed file.")
    var failFast = false

    @Option(name: .long, help: ArgumentHelp("JSON-lines report, one line per item, appended and flushed per item.", valueName: "file"))
    var report: String?

    @Option(name: .long, help: "Progress: auto (live on a terminal, lines otherwise), plain, json (NDJSON on stderr), none.")
    var progress: String = "auto"

    @Flag(name: .long, help: "Print the plan and touch nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Keep watching the input folders: convert each acquisition once it is complete (its files unchanged for --settle seconds; MIB: .hdr present); resumes from the report after a restart.")
    var watch = false

    @Option(name: .long, help: ArgumentHelp("With --watch: seconds an acquisition's files must stay unchanged.", valueName: "seconds"))
    var settle: Double = 5

    @Option(name: .long, help: ArgumentHelp("With --watch: seconds between scans of the folders.", valueName: "seconds"))
    var poll: Double = 2

    @Flag(name: .long, help: "With --watch: exit once every acquisition found is converted and nothing is still being written.")
    var once = false

    @Flag(name: .long, help: "With --dry-run: the plan as JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Write the plan (JSON lines) to this file and exit.", valueName: "plan.jsonl"))
    var manifest: String?

    @Option(name: .long, help: ArgumentHelp("Run the items of a plan written by --manifest.", valueName: "plan.jsonl"))
    var fromManifest: String?

    @Option(name: .long, help: ArgumentHelp("Run only items with index % N == i; 'auto' reads SLURM or SGE array variables.", valueName: "i/N|auto"))
    var shard: String?

    @Option(name: .long, help: ArgumentHelp("Merge the reports of a folder (or file), print the table and the failures, and exit.", valueName: "reports/"))
    var summary: String?

    @Flag(name: .long, help: "With --from-manifest: run only the items whose latest report status is failed.")
    var onlyFailed = false

    @Flag(name: .long, help: "Print an sbatch job-array script for --from-manifest (never submits).")
    var emitSlurm = false

    @Option(name: .long, help: "Shards (array tasks) for --emit-slurm.")
    var shards: Int = 1

    @Option(name: .long, help: "Array tasks running at once (--emit-slurm).")
    var maxConcurrent: Int?

    @Option(name: .long, help: "CPUs per task (--emit-slurm).")
    var cpus: Int = 4

    @Option(name: .long, help: "Memory per task (--emit-slurm).")
    var mem: String = "8G"

    @Option(name: .long, help: "Time limit per task (--emit-slurm).")
    var time: String = "04:00:00"

    func validate() throws {
        if summary != nil { return }
        guard output != nil || fromManifest != nil else { throw ValidationError("batch needs -o OUTDIR") }
        if fromManifest == nil && inputs.isEmpty { throw ValidationError("give input directories/files or --from-manifest") }
        if fromManifest != nil && !inputs.isEmpty { throw ValidationError("--from-manifest takes no other inputs") }
        guard OutputLayout(rawValue: layout) != nil else { throw ValidationError("--layout takes mirror or flat") }
        guard ProgressMode(rawValue: progress) != nil else { throw ValidationError("--progress takes auto, plain, json or none") }
        if skipExisting && conversion.overwrite { throw ValidationError("--skip-existing and --overwrite exclude each other") }
        if let j = jobs, j < 1 { throw ValidationError("--jobs must be at least 1") }
        if emitSlurm && fromManifest == nil { throw ValidationError("--emit-slurm needs --from-manifest plan.jsonl (write it with --manifest)") }
        if onlyFailed && fromManifest == nil { throw ValidationError("--only-failed needs --from-manifest") }
        if shard != nil && fromManifest == nil { throw ValidationError("--shard needs --from-manifest (every shard must run the same plan)") }
        if watch {
            if fromManifest != nil || manifest != nil || dryRun || emitSlurm { throw ValidationError("--watch takes input folders, not a manifest, --dry-run or --emit-slurm") }
            if conversion.overwrite { throw ValidationError("--watch never replaces outputs (an existing output counts as done); leave out --overwrite") }
            guard settle >= 0, poll > 0 else { throw ValidationError("--settle must be at least 0 and --poll positive") }
        } else if once || settle != 5 || poll != 2 {
            throw ValidationError("--settle, --poll and --once need --watch")
        }
    }

    static func parseSize(_ s: String) throws -> Int64 {
        let u = s.uppercased().trimmingCharacters(in: .whitespaces)
        let mult: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let last = u.last, let m = mult[last], let v = Double(u.dropLast()) { return Int64(v * Double(m)) }
        if let v = Int64(u) { return v }
        throw ValidationError("--memory-limit takes a size like 4G or 512M")
    }

    func run() throws {
        if let summary { return try printSummary(summary) }
        let format = conversion.format ?? "nexus"
        guard let writer = Catalog.writer(named: format) else { throw EMError(.usage, "unknown output format '\(format)' (see 'emconv formats')") }
        let fa = try formatArguments()
        var items: [BatchItem]
        var skipped: [SkippedFile] = []
        let outDir: String
        if let fromManifest {
            items = try Manifest.read(fromManifest)
            outDir = try Manifest.confine(items, to: output, manifest: fromManifest)
        } else {
            outDir = output!
            var planner = BatchPlanner(outputDirectory: outDir, outputExtension: writer.descriptor.extensions.first ?? format)
            planner.recursive = recursive
            planner.followSymlinks = followSymlinks
            planner.include = include
            planner.exclude = exclude
            planner.layout = OutputLayout(rawValue: layout)!
            planner.nameTemplate = name
            planner.readOptions = fa.read
            if watch { return try runWatch(planner: planner, outDir: outDir, format: format, fa: fa) }
            (items, skipped) = try planner.plan(inputs)
        }
        if let manifest {
            // Absolute paths: array tasks may start in another directory.
            let cwd = FileManager.default.currentDirectoryPath
            let abs = { (p: String) -> String in p.hasPrefix("/") ? p : ((cwd as NSString).appendingPathComponent(p) as NSString).standardizingPath }
            items = items.map { var i = $0; i.input = abs(i.input); i.output = abs(i.output); i.companions = i.companions.map(abs); i.outputRoot = abs(outDir); return i }
            try Manifest.write(items, to: manifest)
            Tools.stderr("emconv: wrote plan of \(items.count) items to \(manifest) (\(skipped.count) files skipped)\n")
            for s in skipped { Tools.stderr("  skipped \(s.path): \(s.reason)\n") }
            return
        }
        let exe = Self.executablePath
        let convertArgs = try childOptions(format: format, fa: fa)
        if emitSlurm {

            print(SlurmScript.make(manifest: fromManifest!, outputDirectory: outDir, shards: max(1, shards), maxConcurrent: maxConcurrent,
                                   cpus: cpus, memory: mem, time: time, executable: exe, extraArguments: convertArgs), terminator: "")
            return
        }
        var shardSpec: Shard?
        if let shard {
            shardSpec = try Shard.parse(shard)
            items = items.filter { shardSpec!.contains($0) }
        }
        let reportPath = report ?? (shardSpec.map { (outDir as NSString).appendingPathComponent("reports/" + $0.reportName) })
        if onlyFailed {
            let dir = reportPath.map { ($0 as NSString).deletingLastPathComponent } ?? (outDir as NSString).appendingPathComponent("reports")
            let latest = (try? ReportWriter.merge(dir)) ?? []
            let failed = Set(latest.filter { $0.status == .failed }.map(\.input))
            items = items.filter { failed.contains($0.input) }
        }
        if dryRun { return printPlan(items, skipped) }

        let cores = ProcessInfo.processInfo.activeProcessorCount
        let totalThreads = conversion.threads ?? ProcessInfo.processInfo.environment["SLURM_CPUS_PER_TASK"].flatMap(Int.init) ?? cores
        var nJobs = min(jobs ?? cores, max(1, items.count))
        let perJob = max(1, totalThreads / nJobs)
        if let memoryLimit {
            let limit = try Self.parseSize(memoryLimit)
            let jobMemory = Int64(64 << 20) + Int64(2 * perJob + 2) * 3 * Int64(4 << 20)
            nJobs = max(1, min(nJobs, Int(limit / jobMemory)))
        }
        let overwrite = conversion.overwrite, childArgs = convertArgs
        var cfg = BatchRunner.Config(executable: exe, jobs: nJobs, threadsPerJob: perJob) { item in
            ["convert", item.input, "-o", item.output, "--json", "--quiet", "--progress", "json", "--threads", String(perJob), "--die-with-parent"]
                + (overwrite ? ["--overwrite"] : []) + childArgs
        }
        cfg.overwrite = overwrite
        cfg.skipExisting = skipExisting
        cfg.failFast = failFast
        cfg.progress = ProgressMode(rawValue: progress)!
        cfg.shard = shardSpec
        for r in OutputSafety.removeStaleTemporaries(for: items.map(\.output)) {
            Tools.stderr("emconv: removed stale partial output \(r)\n")
        }
        let writerReport = try reportPath.map { try ReportWriter(path: $0) }
        if let writerReport, !skipped.isEmpty {
            for s in skipped { writerReport.append(BatchEntry(index: -1, input: s.path, output: "", status: .skipped, error: s.reason, shard: shardSpec?.description)) }
        }
        let runner = BatchRunner(config: cfg, report: writerReport)
        let entries = runner.run(items)
        if cfg.progress != .json { printTable(entries, skipped: skipped, interrupted: runner.interruptedBy) }
        if let sig = runner.interruptedBy { throw ExitCode(128 + sig) }
        if entries.contains(where: { $0.status == .failed }) { throw ExitCode(2) }
    }

    /// The options every child gets, spelled from the format descriptors' declarations.
    func childOptions(format: String, fa: FormatArguments) throws -> [String] {
        var convertArgs: [String] = ["--format", format]
        convertArgs += fa.read.arguments(specs: Catalog.readerOptions.map(\.spec))
        convertArgs += fa.write.arguments(specs: Catalog.writerOptions.map(\.spec))
        convertArgs += fa.process.arguments(specs: Catalog.processingOptions.map(\.spec))
        if let metadata = conversion.metadata {
            // Absolute: children (and array tasks) may run elsewhere; parse once here so a typo
            // fails the batch before any child starts.
            let abs = metadata.hasPrefix("/") ? metadata : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(metadata)
            _ = try Sidecar.load(abs)
            convertArgs += ["--metadata", abs]
            if conversion.preferSidecar { convertArgs.append("--prefer-sidecar") }
        }
        return convertArgs
    }

    /// `--watch`: scan, convert what has settled, repeat (see ``BatchWatcher``). The report
    /// (default OUT/reports/watch.jsonl) is what a restart resumes from.
    func runWatch(planner: BatchPlanner, outDir: String, format: String, fa: FormatArguments) throws {
        let childArgs = try childOptions(format: format, fa: fa)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let totalThreads = conversion.threads ?? ProcessInfo.processInfo.environment["SLURM_CPUS_PER_TASK"].flatMap(Int.init) ?? cores
        let nJobs = max(1, jobs ?? 1)
        let perJob = max(1, totalThreads / nJobs)
        var cfg = BatchRunner.Config(executable: Self.executablePath, jobs: nJobs, threadsPerJob: perJob) { item in
            ["convert", item.input, "-o", item.output, "--json", "--quiet", "--progress", "json", "--threads", String(perJob), "--die-with-parent"]
                + childArgs
        }
        cfg.skipExisting = true
        cfg.failFast = failFast
        cfg.progress = ProgressMode(rawValue: progress)!
        if cfg.progress == .auto && isatty(2) == 0 { cfg.progress = .plain }
        let reportPath = report ?? (outDir as NSString).appendingPathComponent("reports/watch.jsonl")
        let previous = FileManager.default.fileExists(atPath: reportPath) ? ((try? ReportWriter.merge(reportPath)) ?? []) : []
        let writerReport = try ReportWriter(path: reportPath)
        var wc = BatchWatcher.Config()
        wc.settle = settle
        wc.poll = poll
        wc.once = once
        let watcher = BatchWatcher(config: wc, previous: previous)
        if !log.quiet {
            Tools.stderr("emconv: watching \(inputs.joined(separator: ", ")) -> \(outDir) (settle \(settle) s, poll \(poll) s; report \(reportPath)\(previous.isEmpty ? "" : ", resuming after \(previous.count) reported items"))\n")
        }
        var failed = false
        let sig = try watcher.run(plan: { try planner.plan(inputs).items }, convert: { items in
            let runner = BatchRunner(config: cfg, report: writerReport)
            let entries = runner.run(items)
            if entries.contains(where: { $0.status == .failed }) { failed = true }
            return (entries, runner.interruptedBy)
        })
        if let sig { throw ExitCode(128 + sig) }
        if failed { throw ExitCode(2) }
    }

    /// This binary, for the child conversions.
    static var executablePath: String {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return CommandLine.arguments[0]
    }

    func printPlan(_ items: [BatchItem], _ skipped: [SkippedFile]) {
        if json {
            print(MetaValue.object([("items", .array(items.map(\.json))),
                                    ("skipped", .array(skipped.map { .object([("path", .string($0.path)), ("reason", .string($0.reason))]) }))]).json(pretty: true))
            return
        }
        print("plan: \(items.count) conversions, \(human(items.map(\.estimatedBytes).reduce(0, +))) in, \(skipped.count) files skipped")
        for it in items {
            print(String(format: "%5d  %-6@ %@ -> %@%@", it.index, it.format, it.input, it.output,
                         it.companions.isEmpty ? "" : "  (+ \(it.companions.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")))"))
        }
        for s in skipped { print("skip   \(s.path): \(s.reason)") }
    }

    func printTable(_ entries: [BatchEntry], skipped: [SkippedFile], interrupted: Int32?) {
        let ok = entries.filter { $0.status == .ok }, sk = entries.filter { $0.status == .skipped }, bad = entries.filter { $0.status == .failed }
        var s = "\nbatch summary\n"
        s += "  converted  \(ok.count)  (\(human(ok.map(\.bytes).reduce(0, +))) written, \(String(format: "%.1f", ok.map(\.seconds).reduce(0, +))) s of conversion)\n"
        s += "  skipped    \(sk.count + skipped.count)  (\(sk.count) existing outputs, \(skipped.count) files not converted)\n"
        s += "  failed     \(bad.count)\n"
        if let interrupted { s += "  interrupted by signal \(interrupted): the remaining items were not started\n" }
        for f in bad { s += "  FAILED \(f.input): \(f.error ?? "")\n" }
        Tools.stderr(s)
    }

    func printSummary(_ path: String) throws {
        let entries = try ReportWriter.merge(path)
        let items = entries.filter { $0.index >= 0 }
        let ok = items.filter { $0.status == .ok }.count, sk = items.filter { $0.status == .skipped }.count
        let bad = items.filter { $0.status == .failed }
        print("items \(items.count): ok \(ok), skipped \(sk), failed \(bad.count); files not converted: \(entries.count - items.count)")
        for f in bad { print("FAILED \(f.input): \(f.error ?? "")") }
        if !bad.isEmpty { throw ExitCode(2) }
    }
}
