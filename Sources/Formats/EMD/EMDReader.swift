import EMCore
import EMHDF5
import Foundation

/// Options of the EMD reader as a library API (the CLI sets them through the declared options;
/// defaults match what `emconv convert` does).
public struct EMDOptions: Sendable {
    /// Velox spectrum streams: sum the frames (default) or keep one cube per frame.
    public var sumFrames: Bool = true
    /// Velox spectrum streams: frames `lowerBound..<upperBound` only (nil: all).
    public var frameRange: Range<Int>? = nil
    /// Velox spectrum streams: sum the EDS detector segments (default) or one dataset per segment.
    public var separateDetectors: Bool = false
    /// Threads decoding spectrum streams (default: all cores).
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Upper bound of the memory used by one decoded block of a spectrum image (bytes).
    public var blockBytes: Int = 64 << 20

    public init() {}
}

/// EMD files: Thermo Fisher Velox EMD, Berkeley EMD v0.2 (also Prismatic) and EMD 1.0
/// (emdfile / py4DSTEM). All are HDF5; the variant is decided from the content.
public enum EMDReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "emd", longName: "EMD (Velox, Berkeley EMD v0.2 / Prismatic, EMD 1.0 / py4DSTEM)",
        aliases: ["velox", "emd-velox", "emd-berkeley"], extensions: ["emd", "h5", "hdf5"], reads: true, writes: false,
        options: [
            OptionSpec("frames", .range, valueName: "A:B", help: "Velox spectrum streams: only frames A to B-1 (0-based)", default: "all frames"),
            OptionSpec("no-sum-frames", .flag, help: "Velox spectrum streams: one spectrum image per frame instead of their sum"),
            OptionSpec("separate-detectors", .flag, help: "Velox EDS: one spectrum image per detector segment instead of their sum"),
        ],
        notes: "Velox images keep the file's dtype, frames first (N, y, x); EDS spectrum streams are decoded into "
            + "(y, x, energy) cubes summed over frames and detector segments. Berkeley/EMD 1.0 arrays keep the "
            + "stored axis order; dims give names, units and calibration.",
        container: "HDF5", signature: "Velox: /Version and /Data; Berkeley EMD: version_major; EMD 1.0: root emd_group_type = file"
    )

    static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Whether the HDF5 signature is at 0 or at a userblock offset inside `head`.
    static func hasHDF5Signature(_ head: [UInt8]) -> Bool {
        for off in [0, 512, 1024, 2048] where head.count >= off + 8 {
            if Array(head[off..<(off + 8)]) == hdf5Signature { return true }
        }
        return false
    }

    /// Velox (/Version + /Data), EMD 1.0 (root emd_group_type = file) or Berkeley EMD v0.2
    /// (version_major, emd_group_type groups): decided from the root's structure.
    static func layout(_ root: HDF5Group) -> String? {
        if root.openDataset("Version") != nil && root.openGroup("Data") != nil { return "velox" }
        if let t = root.attributeMeta("emd_group_type")?.stringValue, t == "file" { return "emd1" }
        if BerkeleyEMD.looksLikeBerkeley(root) { return "berkeley" }
        return nil
    }

    public static func identify(_ probe: Probe) -> Identification {
        guard probe.isHDF5 else { return .no }
        guard let found = HDF5Peek.root(probe.path, layout) else { return .maybe }
        return found == nil ? .no : .yes
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        var emd = EMDOptions()
        emd.sumFrames = !options.flag("no-sum-frames")
        emd.frameRange = try options.range("frames")
        emd.separateDetectors = options.flag("separate-detectors")
        return try open(path, options: options, emd: emd)
    }

    public static func open(_ path: String, options: OptionValues = OptionValues(), emd: EMDOptions) throws -> OpenedFile {
        let raf = try RandomAccessFile(path: path)
        let head = try raf.readUpTo(at: 0, count: 4096)
        guard hasHDF5Signature(head) else {
            throw EMError.bad(path, offset: 0, "not an HDF5 file (no HDF5 signature), so not an EMD file")
        }
        return try HDF5.lock.withLock {
            let file = try HDF5File(reading: path)
            return try file.guarded {
                let root = file.root
                switch layout(root) {
                case "velox": return try VeloxEMD.open(path, file: file, handle: raf, emd: emd)
                case "emd1": return try EMD1.open(path, file: file, handle: raf)
                case "berkeley": return try BerkeleyEMD.open(path, file: file, handle: raf)
                default: throw FormatDeclined("no Velox /Version, no EMD version_major/emd_group_type")
                }
            }
        }
    }
}

// MARK: Shared helpers

enum EMDUnits {
    /// ASCII units for NeXus from what EMD writers store: `[n_m]` → `nm`, `n_m` → `nm`,
    /// `A^-1` → `1/angstrom`, `µm` → `um`, `[]` → ``.
    static func normalize(_ s: String) -> String {
        var u = s.trimmingCharacters(in: .whitespaces)
        if u.hasPrefix("["), u.hasSuffix("]") { u = String(u.dropFirst().dropLast()) }
        u = u.replacingOccurrences(of: "_", with: "")
        let table: [String: String] = [
            "A": "angstrom", "Å": "angstrom", "Ang": "angstrom", "A^-1": "1/angstrom", "1/A": "1/angstrom",
            "Å^-1": "1/angstrom", "1/Å": "1/angstrom", "1 / Å": "1/angstrom", "µm": "um", "μm": "um",
            "1/µm": "1/um", "nm^-1": "1/nm", "m^-1": "1/m", "pixels": "pixel", "pixel": "pixel",
        ]
        if let t = table[u] { return t }
        // Keep only printable ASCII; non-ASCII units not in the table are spelled out.
        return String(u.unicodeScalars.filter { $0.isASCII && $0.value >= 32 }.map(Character.init))
    }
}

enum EMDAxes {
    /// A calibration from a dim vector: full coordinates (uniform when linear to float
    /// precision), or 2 values (first two coordinates of a linear axis).
    static func calibration(_ values: [Double], size: Int) -> AxisCalibration? {
        if values.count == 2 && size != 2 {
            return .uniform(offset: values[0], scale: values[1] - values[0])
        }
        guard values.count == size, size > 0 else { return nil }
        if size == 1 { return .uniform(offset: values[0], scale: 1) }
        let scale = (values[size - 1] - values[0]) / Double(size - 1)
        let tol = max(abs(scale), abs(values[0]), abs(values[size - 1])) * 1e-5
        for i in 0..<size where abs(values[0] + Double(i) * scale - values[i]) > tol {
            return .coordinates(values)
        }
        if size >= 2 { return .uniform(offset: values[0], scale: values[1] - values[0]) }
        return .uniform(offset: values[0], scale: scale)
    }
}

extension MetaValue {
    /// Flattened leaves `a.b.c` → value (for per-frame difference tracking).
    func flattened(prefix: String = "", into out: inout [(String, MetaValue)]) {
        switch self {
        case let .object(pairs):
            for (k, v) in pairs { v.flattened(prefix: prefix.isEmpty ? k : prefix + "." + k, into: &out) }
        default:
            out.append((prefix, self))
        }
    }
}
