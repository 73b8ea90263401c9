import Foundation

/// An option a format accepts, declared as data so `emconv formats`, validation and the docs
/// share one source.
public struct FormatOption: Sendable {
    public var name: String
    public var values: String
    public var help: String
    public init(_ name: String, _ values: String, _ help: String) {
        self.name = name
        self.values = values
        self.help = help
    }
}

/// The static description of a format: what `emconv formats` prints and formats.md tabulates.
public struct FormatDescriptor: Sendable {
    public var name: String
    public var longName: String
    public var aliases: [String]
    public var extensions: [String]
    public var reads: Bool
    public var writes: Bool
    /// Companion files the format uses, in words (".hdr beside the .mib", "the .raw named in the .xml").
    public var companions: String?
    public var options: [FormatOption]
    public var notes: String

    public init(name: String, longName: String, aliases: [String] = [], extensions: [String], reads: Bool,
                writes: Bool, companions: String? = nil, options: [FormatOption] = [], notes: String = "") {
        self.name = name
        self.longName = longName
        self.aliases = aliases
        self.extensions = extensions
        self.reads = reads
        self.writes = writes
        self.companions = companions
        self.options = options
        self.notes = notes
    }
}

/// Answer of a cheap identification over the first bytes of a file.
public enum Identification: Int, Comparable, Sendable {
    case no = 0, maybe = 1, yes = 2
    public static func < (a: Identification, b: Identification) -> Bool { a.rawValue < b.rawValue }
}

/// What identification sees: the path and the first bytes (up to 4 KiB).
public struct Probe {
    public let path: String
    public let head: [UInt8]
    public let size: Int64

    public var fileExtension: String { (path as NSString).pathExtension.lowercased() }

    public init(path: String) throws {
        let f = try RandomAccessFile(path: path)
        self.path = path
        self.size = f.size
        self.head = try f.readUpTo(at: 0, count: 4096)
    }

    public init(path: String, head: [UInt8], size: Int64) {
        self.path = path
        self.head = head
        self.size = size
    }

    public func headStarts(with s: String) -> Bool {
        let u = Array(s.utf8)
        return head.count >= u.count && Array(head[0..<u.count]) == u
    }
}

/// Options that change how inputs are read. Readers use what concerns them and ignore the rest.
public struct ReadOptions: Sendable {
    /// Navigation shape override, slowest first (`--scan-shape Y,X`).
    public var scanShape: [Int]?
    /// Generic raw description (`--raw-*` options or a descriptor file).
    public var raw: RawDescription?
    /// Keep MIB frames flipped like RosettaSciIO instead of on-disk row order.
    public var flipMIBRows: Bool = false
    /// Time series inside one acquisition (Velox spectrum streams): sum the frames (default) or
    /// keep them, and which frames to read (`--frames A:B`, 0-based, B excluded).
    public var sumFrames: Bool = true
    public var frameRange: Range<Int>?
    /// Segmented detectors (Velox Super-X EDS): one dataset per segment instead of their sum.
    public var separateDetectors: Bool = false

    public init(scanShape: [Int]? = nil, raw: RawDescription? = nil) {
        self.scanShape = scanShape
        self.raw = raw
    }
}

/// A reader: cheap identification, then opening into the common model.
public protocol FormatReader {
    static var descriptor: FormatDescriptor { get }
    /// Cheap, tri-state: never parses the whole file.
    static func identify(_ probe: Probe) -> Identification
    /// Parses headers (not pixel data) and returns lazily readable datasets.
    static func open(_ path: String, options: ReadOptions) throws -> OpenedFile
    /// Files that belong to `path` as companions and must not be converted on their own.
    static func companions(of path: String) -> [String]
}

public extension FormatReader {
    static func companions(of path: String) -> [String] { [] }
}

/// The version recorded in every output's provenance.
public enum EMConvVersion {
    public static let string = "0.1.0"
}
