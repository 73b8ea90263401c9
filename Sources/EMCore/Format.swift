import Foundation

/// What a writer can hold besides the data, so the converter can say what an output leaves out
/// (a TIFF has no room for the sample or the vendor's metadata tree).
public enum MetadataFacet: String, Sendable, CaseIterable, Comparable {
    case axisCalibration = "axis calibrations"
    case instrument = "instrument metadata"
    case sample = "sample"
    case users = "users"
    case provenance = "provenance (source checksums, command line)"
    case originalMetadata = "original vendor metadata"
    case attachedDocuments = "the documents the user supplied (e.g. the metadata sidecar)"

    public static func < (a: MetadataFacet, b: MetadataFacet) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The static description of a format: what `emconv formats` prints, what the help texts and
/// the generated docs list, and the options the format's reader or writer accepts.
public struct FormatDescriptor: Sendable {
    public var name: String
    public var longName: String
    public var aliases: [String]
    public var extensions: [String]
    public var reads: Bool
    public var writes: Bool
    /// Companion files the format uses, in words (".hdr beside the .mib", "the .raw named in the .xml").
    public var companions: String?
    /// Options of this format's reader (when `reads`) or writer (when `writes`).
    public var options: [OptionSpec]
    public var notes: String
    /// Container the format lives in (`HDF5`), when several formats share one: an unclaimed file
    /// of that container is told which layouts emconv knows.
    public var container: String?
    /// What identification looks for, in words ("a root attribute /Version (Velox)").
    public var signature: String
    /// Writers: what the output can hold besides the data.
    public var holds: Set<MetadataFacet>
    /// Writers: one output file holds one dataset; the converter writes a file per dataset
    /// (`{stem}_{dataset}.ext`) when the input has several.
    public var oneDatasetPerFile: Bool

    public init(name: String, longName: String, aliases: [String] = [], extensions: [String], reads: Bool,
                writes: Bool, companions: String? = nil, options: [OptionSpec] = [], notes: String = "",
                container: String? = nil, signature: String = "", holds: Set<MetadataFacet> = Set(MetadataFacet.allCases),
                oneDatasetPerFile: Bool = false) {
        self.oneDatasetPerFile = oneDatasetPerFile
        self.name = name
        self.longName = longName
        self.aliases = aliases
        self.extensions = extensions
        self.reads = reads
        self.writes = writes
        self.companions = companions
        self.options = options
        self.notes = notes
        self.container = container
        self.signature = signature
        self.holds = holds
    }
}

/// Answer of a cheap identification (GDAL's Identify): `yes` when the content proves the format,
/// `maybe` when it fits but a later reader may be more specific, `no` when it cannot be.
public enum Identification: Int, Comparable, Sendable {
    case no = 0, maybe = 1, yes = 2
    public static func < (a: Identification, b: Identification) -> Bool { a.rawValue < b.rawValue }
}

/// Thrown by a reader's `open` when a closer look shows the file is not its format after all;
/// the catalog then tries the next candidate. Never reaches the user.
public struct FormatDeclined: Error, Sendable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}

/// What identification sees: the path and the first bytes (up to 4 KiB).
public struct Probe: Sendable {
    public let path: String
    public let head: [UInt8]
    public let size: Int64

    public var fileExtension: String { (path as NSString).pathExtension.lowercased() }

    /// The input is a directory (a zarr directory store such as `.zspy`): no head bytes.
    public let isDirectory: Bool

    public init(path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            self.path = path
            self.size = 0
            self.head = []
            self.isDirectory = true
            return
        }
        let f = try RandomAccessFile(path: path)
        self.path = path
        self.size = f.size
        self.head = try f.readUpTo(at: 0, count: 4096)
        self.isDirectory = false
    }

    public init(path: String, head: [UInt8], size: Int64) {
        self.path = path
        self.head = head
        self.size = size
        self.isDirectory = false
    }

    public func headStarts(with s: String) -> Bool {
        let u = Array(s.utf8)
        return head.count >= u.count && Array(head[0..<u.count]) == u
    }

    /// The HDF5 signature at 0 or after a user block of 512, 1024, 2048 … bytes.
    public var isHDF5: Bool {
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        var off = 0
        while off + 8 <= head.count {
            if Array(head[off..<(off + 8)]) == signature { return true }
            off = off == 0 ? 512 : off * 2
        }
        return false
    }
}

/// Reader options are declared option values (``OptionSpec`` in the reader's descriptor).
public typealias ReadOptions = OptionValues

/// A reader: cheap identification, then opening into the common model.
public protocol FormatReader {
    static var descriptor: FormatDescriptor { get }
    /// Cheap, tri-state: never parses the whole file.
    static func identify(_ probe: Probe) -> Identification
    /// Parses headers (not pixel data) and returns lazily readable datasets. Throws
    /// ``FormatDeclined`` when the file turns out not to be this format.
    static func open(_ path: String, options: OptionValues) throws -> OpenedFile
    /// Files that belong to `path` as companions and must not be converted on their own.
    static func companions(of path: String) -> [String]
}

public extension FormatReader {
    static func companions(of path: String) -> [String] { [] }
}

/// The version recorded in every output's provenance.
public enum EMConvVersion {
    public static let string = "0.2.0"
}
