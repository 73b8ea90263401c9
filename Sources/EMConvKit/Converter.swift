import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Receives progress of long operations (bytes of source data done out of total).
public protocol ProgressSink: AnyObject {
    func progress(done: Int64, total: Int64, stage: String)
}

/// Options every writer understands.
public struct WriteOptions {
    public var compression: Compression?
    /// Worker threads for compression (default: all cores).
    public var threads: Int
    /// The command line recorded in provenance.
    public var commandLine: String
    public var progress: ProgressSink?
    /// Whether to add derived previews (sum over detector axes of 4D data).
    public var preview: Bool = true
    /// Whether ``Converter`` re-reads the finished output to report its SHA-256 (costs a read
    /// of the whole output; `convert --json` and batch reports ask for it).
    public var outputChecksum: Bool = false
    /// TIFF: write BigTIFF even when the classic 4 GiB limit would do (`--bigtiff`).
    public var bigTIFF: Bool = false
    /// TIFF: write any dataset as a stack of its 2-D frames (`--stack`).
    public var stackFrames: Bool = false
    /// Metadata sidecar (`--metadata`): fills what the input lacks (sample, users, instrument).
    public var sidecar: Sidecar?
    /// `--prefer-sidecar`: sidecar values win over contradicting file values.
    public var preferSidecar: Bool = false

    public init(compression: Compression? = nil, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                commandLine: String = "", progress: ProgressSink? = nil) {
        self.compression = compression
        self.threads = max(1, threads)
        self.commandLine = commandLine
        self.progress = progress
    }
}

/// What a writer reports back.
public struct WriteReport {
    public var bytesWritten: Int64 = 0
    public var warnings: [String] = []
    public var sourceChecksums: [String: String] = [:]
}

/// A writer of one output format. It knows no vendor: it consumes the common model.
public protocol FormatWriter {
    static var descriptor: FormatDescriptor { get }
    /// Refuses impossible combinations before anything is written.
    static func check(_ file: OpenedFile, options: WriteOptions) throws
    /// Writes `file` to `path` (a temporary name chosen by ``Converter``).
    static func write(_ file: OpenedFile, to path: String, options: WriteOptions) throws -> WriteReport
    /// Whether the output is a directory tree (zarr directory store) rather than one file.
    static var writesDirectory: Bool { get }
}

public extension FormatWriter {
    static func check(_ file: OpenedFile, options: WriteOptions) throws {}
    static var writesDirectory: Bool { false }
}

/// Result of one conversion, as `convert --json` prints it.
public struct ConversionResult {
    public var input: String
    public var output: String
    public var format: String
    public var inputBytes: Int64
    public var outputBytes: Int64
    /// Empty unless ``WriteOptions/outputChecksum`` was set.
    public var outputSHA256: String
    public var seconds: Double
    public var warnings: [String]
    public var datasets: [String]
}

/// Temporary outputs in progress, removed if the process is interrupted (signal-safe list).
enum TempFiles {
    nonisolated(unsafe) static var current: UnsafeMutablePointer<CChar>?
    static let lock = NSLock()

    static func set(_ path: String?) {
        lock.lock(); defer { lock.unlock() }
        let old = current
        current = path.map { strdup($0) }
        if let old { free(old) }
    }

    /// The input being read, named by the fatal-signal handler.
    nonisolated(unsafe) static var input: UnsafeMutablePointer<CChar>?

    static func setInput(_ path: String) {
        lock.lock(); defer { lock.unlock() }
        let old = input
        input = strdup(path)
        if let old { free(old) }
    }

    /// Installs handlers for SIGSEGV/SIGBUS/SIGFPE/SIGILL on an alternate stack: a library fault
    /// while reading a corrupt file (HDF5 1.10 can crash on damaged metadata) becomes the usual
    /// one-line error naming the file, the partial output is removed, and the exit status is 65.
    static func installFaultHandlers() {
        let size = 256 << 10
        var ss = stack_t()
        ss.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        ss.ss_size = size
        ss.ss_flags = 0
        sigaltstack(&ss, nil)
        for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { _ in
                if let p = TempFiles.current { unlink(p) }
                let head = "emconv: error: "
                _ = head.withCString { write(2, $0, strlen($0)) }
                if let i = TempFiles.input { write(2, i, strlen(i)); _ = ": ".withCString { write(2, $0, 2) } }
                let msg = "reading failed inside a library: the file is damaged (please report it if it opens elsewhere)\n"
                _ = msg.withCString { write(2, $0, strlen($0)) }
                _exit(65)
            }
            sa.sa_flags = Int32(SA_ONSTACK) | Int32(bitPattern: UInt32(SA_RESETHAND))
            sigemptyset(&sa.sa_mask)
            sigaction(s, &sa, nil)
        }
    }

    /// Installs SIGINT/SIGTERM/SIGHUP handlers that unlink the temporary output and exit
    /// with 128+signal (130 for Ctrl-C).
    static func installSignalHandlers() {
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { sig in
                if let p = TempFiles.current, unlink(p) != 0 { OutputTree.removeTreeUnsafe(p) }
                let msg = "emconv: interrupted, partial output removed\n"
                _ = msg.withCString { write(2, $0, strlen($0)) }
                _exit(128 + sig)
            }
        }
    }
}

/// Converts one input to one output: picks the writer, refuses to overwrite, writes to a
/// temporary name beside the target and renames it into place only when complete.
public enum Converter {
    public static func outputFormat(for output: String, explicit: String?) throws -> FormatWriter.Type {
        if let explicit {
            guard let w = Registry.writer(named: explicit) else {
                throw EMError(.usage, "unknown output format '\(explicit)' (see 'emconv formats')")
            }
            return w
        }
        let ext = (output as NSString).pathExtension
        guard let w = Registry.writer(forExtension: ext) else {
            throw EMError(.usage, file: output, "cannot tell the output format from the extension '.\(ext)'; use --format")
        }
        return w
    }

    public static func convert(input: String, output: String, format: String? = nil, overwrite: Bool = false,
                               readOptions: ReadOptions = ReadOptions(), writeOptions: WriteOptions) throws -> ConversionResult {
        let start = Date()
        let writer = try outputFormat(for: output, explicit: format)
        let fm = FileManager.default
        guard fm.fileExists(atPath: input) else { throw EMError(.missingInput, file: input, "no such file") }
        if fm.fileExists(atPath: output) && !overwrite {
            throw EMError(.outputExists, file: output, "output exists (use --overwrite to replace it)")
        }
        let outputIsDirectory = (try? fm.attributesOfItem(atPath: output)[.type] as? FileAttributeType) == .typeDirectory
        if outputIsDirectory && !(writer.writesDirectory && overwrite) {
            throw EMError(.outputExists, file: output, "output is a directory")
        }
        let file = try Registry.open(input, options: readOptions)
        try writer.check(file, options: writeOptions)

        let dir = (output as NSString).deletingLastPathComponent
        let base = (output as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "" : dir + "/") + ".\(base).tmp-emconv-\(getpid())"
        if !dir.isEmpty, !fm.fileExists(atPath: dir) {
            throw EMError(.writeError, file: output, "the output directory does not exist")
        }
        OutputTree.remove(tmp)
        TempFiles.set(tmp)
        defer { TempFiles.set(nil) }
        var report: WriteReport
        do {
            report = try writer.write(file, to: tmp, options: writeOptions)
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
            if rename(tmp, output) != 0 {
                let e = String(cString: strerror(errno))
                if let old { rename(old, output) }
                throw EMError(.writeError, file: output, "cannot move the finished output into place: \(e)")
            }
            if let old { OutputTree.remove(old) }
        } catch {
            OutputTree.remove(tmp)
            throw error
        }
        let outSize = OutputTree.size(output)
        let outHash = writeOptions.outputChecksum ? try OutputTree.sha256(output) : ""
        let inSize = file.files.compactMap { (try? fm.attributesOfItem(atPath: $0)[.size] as? NSNumber)?.int64Value }.reduce(0, +)
        return ConversionResult(input: input, output: output, format: writer.descriptor.name, inputBytes: inSize,
                                outputBytes: outSize, outputSHA256: outHash, seconds: Date().timeIntervalSince(start),
                                warnings: file.warnings + report.warnings, datasets: file.datasets.map(\.name))
    }

    /// Call once from the CLI: interrupted conversions remove their temporary file.
    public static func installSignalHandlers() { TempFiles.installSignalHandlers() }

    /// Call once from the CLI: library faults on damaged input end with a one-line error (exit 65).
    public static func installFaultHandlers() { TempFiles.installFaultHandlers() }

    /// For child conversions of `batch`: when the parent dies (even by SIGKILL), terminate like
    /// on SIGTERM, removing the partial output.
    public static func exitWhenParentDies() {
        let parent = getppid()
        let t = Thread {
            while true {
                usleep(200_000)
                if getppid() != parent { kill(getpid(), SIGTERM); return }
            }
        }
        t.start()
    }
}
