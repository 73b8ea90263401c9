import Foundation

/// Receives progress of long operations (bytes of source data done out of total).
public protocol ProgressSink: AnyObject, Sendable {
    func progress(done: Int64, total: Int64, stage: String)
}

/// One source file of a conversion, with its checksum.
public struct SourceRecord: Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var sha256: String
}

/// Provenance of one conversion, made once by the converter before the writer runs: the
/// reader, the command line, the time and the final output name. Source checksums are computed
/// while the data stream (in the background, by the input's file handles) and are final when
/// ``sources()`` returns, after the writer has read the data; every writer records the same values.
public final class Provenance: @unchecked Sendable {
    public let program = "emconv"
    public let version = EMConvVersion.string
    public let commandLine: String
    public let time: Timestamp
    public let readerName: String
    public let readerVersion: String
    public let format: String
    public let variant: String
    /// The primary input's file name.
    public let inputName: String
    /// The name the output will have once complete (the writer writes to a temporary name).
    public let outputName: String
    private let handles: [RandomAccessFile]
    private let lock = NSLock()
    private var cached: [SourceRecord]?

    public init(file: OpenedFile, outputName: String, commandLine: String, time: Timestamp = .now()) {
        self.commandLine = commandLine
        self.time = time
        readerName = file.readerName
        readerVersion = file.readerVersion
        format = file.format
        variant = file.variant
        inputName = (file.path as NSString).lastPathComponent
        self.outputName = outputName
        handles = file.handles
        for h in handles { h.enableDigest() }
    }

    /// Every file the reader used, primary first, with size and SHA-256 (waits for the checksums).
    public func sources() throws -> [SourceRecord] {
        lock.lock(); defer { lock.unlock() }
        if let cached { return cached }
        var out: [SourceRecord] = []
        for h in handles { out.append(SourceRecord(path: h.path, size: h.size, sha256: try h.finishDigest())) }
        cached = out
        return out
    }

    /// "read by the emconv mib reader 1.0 (mib: quad 2x2, 12-bit)".
    public var readerContext: String { "read by the emconv \(readerName) reader \(readerVersion) (\(format): \(variant))" }
}

/// Everything a writer gets besides the data: its declared options, the shared knobs, and the
/// provenance the converter made. Writers never see the sidecar or the CLI: the converter has
/// already merged the sidecar into the file's datasets and ``OpenedFile/supplement``.
public struct WriteContext: Sendable {
    /// Values of the writer's declared options (``FormatDescriptor/options``).
    public var options: OptionValues
    /// Worker threads for compression.
    public var threads: Int
    public var progress: ProgressSink?
    public var provenance: Provenance

    public init(options: OptionValues = OptionValues(), threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                progress: ProgressSink? = nil, provenance: Provenance) {
        self.options = options
        self.threads = max(1, threads)
        self.progress = progress
        self.provenance = provenance
    }

    /// A context for writing `file` outside a converter (library callers, tests): its own provenance.
    public static func standalone(_ file: OpenedFile, outputName: String = "output", options: OptionValues = OptionValues(),
                                  threads: Int = 2, commandLine: String = "") -> WriteContext {
        WriteContext(options: options, threads: threads,
                     provenance: Provenance(file: file, outputName: outputName, commandLine: commandLine))
    }

    /// The `compression` option, or `fallback`.
    public func compression(default fallback: Compression) throws -> Compression {
        try options.compression() ?? fallback
    }
}

/// What a writer reports back.
public struct WriteReport: Sendable {
    public var bytesWritten: Int64 = 0
    public var warnings: [String] = []
    public init() {}
}

/// A writer of one output format. It knows no vendor: it consumes the common model.
public protocol FormatWriter {
    static var descriptor: FormatDescriptor { get }
    /// Refuses impossible combinations before anything is written.
    static func check(_ file: OpenedFile, context: WriteContext) throws
    /// Writes `file` to `path` (a temporary name chosen by the converter; the final name is
    /// ``Provenance/outputName``).
    static func write(_ file: OpenedFile, to path: String, context: WriteContext) throws -> WriteReport
    /// Whether the output is a directory tree (zarr directory store) rather than one file.
    static var writesDirectory: Bool { get }
}

public extension FormatWriter {
    static func check(_ file: OpenedFile, context: WriteContext) throws {}
    static var writesDirectory: Bool { false }
}
