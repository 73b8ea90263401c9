import EMCore
import Foundation

/// How to read a headerless binary file: element type and byte order, shape (C order),
/// offsets, and per-frame header/footer bytes.
public struct RawDescription: Sendable, Equatable {
    public var elementType: ElementType
    public var byteOrder: ByteOrder
    /// Full shape, slowest first.
    public var shape: [Int]
    /// Number of trailing dimensions that form a frame (default 2, or 1 for 1-D data).
    public var signalRank: Int
    public var offset: Int64 = 0
    public var frameHeader: Int = 0
    public var frameFooter: Int = 0
    public var axisNames: [String]?
    public var axisUnits: [String]?
    public var axisScales: [Double]?
    public var axisOffsets: [Double]?

    public init(dtype: String, shape: [Int], signalRank: Int? = nil, offset: Int64 = 0, frameHeader: Int = 0,
                frameFooter: Int = 0, source: String = "--raw-dtype") throws {
        guard let (t, o) = ElementType.parse(numpy: dtype) else {
            throw EMError(.usage, at: source, "unknown element type '\(dtype)' (use NumPy notation: '<u2', '>f4', 'uint8', …)")
        }
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) else {
            throw EMError(.usage, at: "--raw-shape", "shape must be positive integers, slowest first (e.g. 256,256,128,128)")
        }
        var total = 1
        for s in shape {
            let (p, overflow) = total.multipliedReportingOverflow(by: s)
            guard !overflow, p < (1 << 50) else { throw EMError(.usage, at: "--raw-shape", "shape \(shape) is impossibly large") }
            total = p
        }
        if let r = signalRank, r < 1 {
            throw EMError(.usage, at: source == "--raw-dtype" ? "--raw-signal-rank" : "signal_rank", "the signal rank must be at least 1 (got \(r))")
        }
        guard offset >= 0, frameHeader >= 0, frameFooter >= 0 else {
            throw EMError(.usage, at: "--raw-offset", "offsets and header/footer sizes must be >= 0")
        }
        elementType = t
        byteOrder = o
        self.shape = shape
        self.signalRank = min(signalRank ?? (shape.count >= 2 ? 2 : 1), shape.count)
        self.offset = offset
        self.frameHeader = frameHeader
        self.frameFooter = frameFooter
    }

    /// Reads a JSON descriptor: `{"dtype": "<u2", "shape": [..], "offset": 0, "frame_header": 0,
    /// "frame_footer": 0, "signal_rank": 2, "axes": [{"name", "units", "scale", "offset"}]}`.
    public static func load(json path: String) throws -> RawDescription {
        let f = try RandomAccessFile(path: path)
        guard f.size < 1 << 20 else { throw EMError.bad(path, offset: 0, "descriptor is larger than 1 MiB") }
        let text = String(decoding: try f.read(at: 0, count: Int(f.size), what: "descriptor"), as: UTF8.self)
        let v: MetaValue
        do { v = try MetaValue.parseJSON(text) } catch let e as JSONScanner.Failure {
            throw EMError.bad(path, offset: Int64(e.offset), "descriptor is not valid JSON: \(e.reason)")
        }
        guard let dtype = v["dtype"]?.stringValue else { throw EMError.bad(path, field: "dtype", "descriptor needs \"dtype\" (e.g. \"<u2\")") }
        guard case let .array(sh)? = v["shape"] else { throw EMError.bad(path, field: "shape", "descriptor needs \"shape\" (a list of integers, slowest first)") }
        let shape = try sh.map { x -> Int in
            guard let i = x.intValue else { throw EMError.bad(path, field: "shape", "shape entries must be integers") }
            return i
        }
        do {
            var d = try RawDescription(dtype: dtype, shape: shape, signalRank: v["signal_rank"]?.intValue,
                                       offset: Int64(v["offset"]?.intValue ?? 0), frameHeader: v["frame_header"]?.intValue ?? 0,
                                       frameFooter: v["frame_footer"]?.intValue ?? 0, source: "dtype")
            if case let .array(axes)? = v["axes"] {
                guard axes.count == shape.count else { throw EMError.bad(path, field: "axes", "\"axes\" has \(axes.count) entries for \(shape.count) dimensions") }
                d.axisNames = axes.map { $0["name"]?.stringValue ?? "" }
                d.axisUnits = axes.map { $0["units"]?.stringValue ?? "" }
                d.axisScales = axes.map { $0["scale"]?.doubleValue ?? 1 }
                d.axisOffsets = axes.map { $0["offset"]?.doubleValue ?? 0 }
            }
            return d
        } catch var e as EMError {
            e.file = path
            e.code = .badInput
            throw e
        }
    }

    var frameElements: Int { shape.suffix(signalRank).reduce(1, *) }
    var frameCount: Int { shape.dropLast(signalRank).reduce(1, *) }
    var frameStride: Int64 { Int64(frameHeader + frameElements * elementType.size + frameFooter) }
    var expectedSize: Int64 { offset + Int64(frameCount) * frameStride }
}

/// Generic raw reader: any headerless binary file described by `--raw-*` options or by a JSON
/// descriptor `<file>.json` (or `<stem>.json` containing `"emconv_raw"`) beside the data.
public enum RawReader: FormatReader {
    public static let version = "1.0"

    public static let descriptor = FormatDescriptor(
        name: "raw", longName: "Generic raw binary", aliases: ["binary"], extensions: ["raw", "bin", "dat"],
        reads: true, writes: false, companions: "optional JSON descriptor <file>.json beside the data",
        options: [
            OptionSpec("raw-dtype", .text, valueName: "dtype", help: "element type and byte order in NumPy notation ('<u2', '>f4', 'uint8')"),
            OptionSpec("raw-shape", .intList, valueName: "N0,N1,...", help: "shape, slowest first (e.g. 256,256,128,128)"),
            OptionSpec("raw-offset", .int(min: 0), valueName: "bytes", help: "bytes before the first frame", default: "0"),
            OptionSpec("raw-frame-header", .int(min: 0), valueName: "bytes", help: "bytes before every frame", default: "0"),
            OptionSpec("raw-frame-footer", .int(min: 0), valueName: "bytes", help: "bytes after every frame", default: "0"),
            OptionSpec("raw-signal-rank", .int(min: 1), valueName: "n", help: "trailing dimensions forming one frame", default: "2 (1 for 1-D data)"),
        ],
        notes: "Identification needs the descriptor or the options: raw files have no signature."
    )

    static func descriptorPath(for path: String) -> String? {
        let candidates = [path + ".json", (path as NSString).deletingPathExtension + ".json"]
        for c in candidates where FileManager.default.fileExists(atPath: c) {
            if let f = try? RandomAccessFile(path: c), f.size < 1 << 20,
               let b = try? f.readUpTo(at: 0, count: Int(f.size)),
               String(decoding: b, as: UTF8.self).contains("\"dtype\"") { return c }
        }
        return nil
    }

    public static func identify(_ probe: Probe) -> Identification {
        descriptorPath(for: probe.path) != nil ? .maybe : .no
    }

    public static func companions(of path: String) -> [String] {
        descriptorPath(for: path).map { [$0] } ?? []
    }

    /// The description given by the `--raw-*` options, or nil when none was given.
    public static func description(from options: OptionValues) throws -> RawDescription? {
        let dtype = options.string("raw-dtype"), shape = try options.ints("raw-shape")
        guard dtype != nil || shape != nil else { return nil }
        guard let dtype, let shape else {
            throw EMError(.usage, "raw input needs both --raw-dtype and --raw-shape (or a JSON descriptor <file>.json beside the data)")
        }
        return try RawDescription(dtype: dtype, shape: shape, signalRank: try options.int("raw-signal-rank"),
                                  offset: Int64(try options.int("raw-offset") ?? 0), frameHeader: try options.int("raw-frame-header") ?? 0,
                                  frameFooter: try options.int("raw-frame-footer") ?? 0)
    }

    public static func open(_ path: String, options: OptionValues) throws -> OpenedFile {
        var files = [path]
        let desc: RawDescription
        if let d = try description(from: options) {
            desc = d
        } else if let jp = descriptorPath(for: path) {
            desc = try RawDescription.load(json: jp)
            files.append(jp)
        } else {
            throw EMError(.usage, file: path, "a raw file needs its description: --raw-dtype and --raw-shape (with --raw-offset, "
                + "--raw-frame-header, --raw-frame-footer as needed), or a JSON descriptor \((path as NSString).lastPathComponent).json beside it")
        }
        let f = try RandomAccessFile(path: path)
        var warnings: [String] = []
        if f.size < desc.expectedSize {
            throw EMError.bad(path, offset: f.size,
                              "file is too small: shape \(desc.shape.map(String.init).joined(separator: ",")) of \(desc.elementType.rawValue) with the given offsets needs \(desc.expectedSize) bytes, the file has \(f.size)")
        }
        if f.size > desc.expectedSize {
            warnings.append("file has \(f.size - desc.expectedSize) bytes after the described data; they are ignored")
        }
        let rank = desc.shape.count
        let navRank = rank - desc.signalRank
        var axes: [Axis] = []
        for (i, n) in desc.shape.enumerated() {
            let isNav = i < navRank
            let defaultName: String
            if isNav {
                defaultName = navRank == 2 ? ["scan_y", "scan_x"][i] : (navRank == 1 ? "frame" : "nav_\(i)")
            } else {
                let si = i - navRank
                defaultName = desc.signalRank == 2 ? ["det_y", "det_x"][si] : (desc.signalRank == 1 ? "channel" : "sig_\(si)")
            }
            axes.append(Axis(name: desc.axisNames?[i].isEmpty == false ? desc.axisNames![i] : defaultName, size: n,
                             role: isNav ? .navigation : .signal, units: desc.axisUnits?[i] ?? "",
                             calibration: .uniform(offset: desc.axisOffsets?[i] ?? 0, scale: desc.axisScales?[i] ?? 1)))
        }
        let src = StridedFrameSource(file: f, firstFrame: desc.offset + Int64(desc.frameHeader), stride: desc.frameStride,
                                     frameBytes: desc.frameElements * desc.elementType.size,
                                     fix: desc.byteOrder != .native ? .swap(desc.elementType.componentSize) : .none)
        let kind = desc.signalRank == 1 ? "spectrum" : (navRank == 2 ? "4d-stem" : "image")
        let ds = Dataset(name: "data", title: (path as NSString).lastPathComponent, axes: axes, elementType: desc.elementType,
                         sourceByteOrder: desc.byteOrder, frameRank: desc.signalRank, quantity: "intensity", signalKind: kind,
                         source: src)
        let tree: MetaValue = .object([
            ("dtype", .string((desc.byteOrder == .big ? ">" : "<") + String(desc.elementType.numpyString.dropFirst()))),
            ("shape", .array(desc.shape.map { .int(Int64($0)) })), ("offset", .int(desc.offset)),
            ("frame_header", .int(Int64(desc.frameHeader))), ("frame_footer", .int(Int64(desc.frameFooter))),
            ("signal_rank", .int(Int64(desc.signalRank))),
        ])
        return OpenedFile(path: path, format: descriptor.name, variant: "\(desc.elementType.rawValue) \(desc.byteOrder.rawValue)-endian",
                          datasets: [ds], files: files, original: tree, warnings: warnings, readerName: "raw",
                          readerVersion: version, handles: [f])
    }
}
