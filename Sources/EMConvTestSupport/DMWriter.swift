import EMConvKit
import Foundation

/// Writes DigitalMicrograph DM3/DM4 files for tests and benchmarks: both versions, both byte
/// orders, every DataType, any rank, both 4D-STEM layouts, and files larger than 4 GiB (sparse).
/// The layout follows Sources/Formats/DM/FORMAT.md (the same layout the reader parses).
public enum DMWriter {
    /// A tag value.
    public indirect enum Tag {
        case group([(String, Tag)])
        case int16(Int16), int32(Int32), uint16(UInt16), uint32(UInt32), float32(Float), float64(Double)
        case bool(Bool), int8(Int8), uint8(UInt8), int64(Int64), uint64(UInt64)
        /// Text as a uint16 (UTF-16) array, the way DM stores strings.
        case text(String)
        /// Type-18 string (bytes).
        case string(String)
        /// Numeric array of a simple DM type (2…12); values converted to that type.
        case array(type: Int, [Double])
        /// Struct of simple fields (type, value).
        case structure([(Int, Double)])
        /// Array of structs with the given field types.
        case structArray(fields: [Int], [[Double]])
        /// Anything: an info array and payload bytes written as is (hostile-file tests).
        case raw(info: [Int64], payload: [UInt8])
        /// The pixel data of image `index` (written from ``Image/pixels``).
        case pixels(index: Int)
    }

    /// Where an image's pixel bytes come from.
    public enum Pixels {
        /// Values in native (little-endian) order, in DM order (Dimensions[0] fastest); the
        /// writer byte-swaps for big-endian files. RGB(A) bytes are written as given (B,G,R,A).
        case bytes([UInt8])
        /// `count` bytes produced in pieces: `fill(offset, buffer)` writes native-order values.
        case stream(count: Int64, fill: (Int64, UnsafeMutableRawBufferPointer) -> Void)
        /// A hole of `count` bytes (sparse file) with raw `patches` (offset within the data, bytes).
        case sparse(count: Int64, patches: [(Int64, [UInt8])])

        var count: Int64 {
            switch self {
            case let .bytes(b): return Int64(b.count)
            case let .stream(n, _): return n
            case let .sparse(n, _): return n
            }
        }
    }

    public struct Image {
        public var name: String
        public var dataType: Int
        /// DM order: Dimensions[0] is the fastest axis.
        public var dims: [Int]
        public var pixels: Pixels
        /// Per DM dimension (origin, scale, units); may be shorter than dims.
        public var calibrations: [(Double, Double, String)]
        public var brightness: (Double, Double, String)
        public var imageTags: [(String, Tag)]

        public init(name: String = "test", dataType: Int, dims: [Int], pixels: Pixels,
                    calibrations: [(Double, Double, String)]? = nil, brightness: (Double, Double, String) = (0, 1, ""),
                    imageTags: [(String, Tag)] = []) {
            self.name = name
            self.dataType = dataType
            self.dims = dims
            self.pixels = pixels
            self.calibrations = calibrations ?? dims.map { _ in (0, 1, "") }
            self.brightness = brightness
            self.imageTags = imageTags
        }
    }

    /// Bytes per pixel on disk and the element type of the Data tag array (simple type, or
    /// struct field types for complex).
    public static func pixelLayout(_ dt: Int) -> (bytes: Int, arrayType: Int, structFields: [Int]?, swap: Int) {
        switch dt {
        case 1: return (2, 2, nil, 2)
        case 2: return (4, 6, nil, 4)
        case 3: return (8, 15, [6, 6], 4)
        case 27: return (8, 6, nil, 4)   // packed complex: a float32 array (re, im pairs)
        case 28: return (16, 7, nil, 8)
        case 5: return (4, 6, nil, 4)
        case 6: return (1, 10, nil, 1)
        case 7: return (4, 3, nil, 4)
        case 8, 23: return (4, 5, nil, 1)
        case 9: return (1, 9, nil, 1)
        case 10: return (2, 4, nil, 2)
        case 11: return (4, 5, nil, 4)
        case 12: return (8, 7, nil, 8)
        case 13: return (16, 15, [7, 7], 8)
        case 14: return (1, 8, nil, 1)
        default: return (1, 10, nil, 1)
        }
    }

    static func simpleSize(_ t: Int) -> Int {
        switch t {
        case 2, 4: return 2
        case 3, 5, 6: return 4
        case 7, 11, 12: return 8
        default: return 1
        }
    }

    enum Segment {
        case bytes([UInt8])
        case pixels(Int)
    }

    struct Encoder {
        var version: Int
        var order: ByteOrder
        var images: [Image]
        var wide: Bool { version == 4 }

        func be(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(n - 1 - $0))) } }
        func count(_ v: Int64) -> [UInt8] { wide ? be(UInt64(bitPattern: v), 8) : be(UInt64(UInt32(truncatingIfNeeded: v)), 4) }
        func val(_ bits: UInt64, _ n: Int) -> [UInt8] {
            let b = (0..<n).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) }
            return order == .little ? b : b.reversed()
        }

        func simple(_ t: Int, _ v: Double) -> [UInt8] {
            switch t {
            case 2: return val(UInt64(UInt16(bitPattern: Int16(v))), 2)
            case 3: return val(UInt64(UInt32(bitPattern: Int32(v))), 4)
            case 4: return val(UInt64(UInt16(v)), 2)
            case 5: return val(UInt64(UInt32(v)), 4)
            case 6: return val(UInt64(Float(v).bitPattern), 4)
            case 7: return val(v.bitPattern, 8)
            case 8: return [v != 0 ? 1 : 0]
            case 9: return [UInt8(bitPattern: Int8(v))]
            case 10: return [UInt8(v)]
            case 11: return val(UInt64(bitPattern: Int64(v)), 8)
            default: return val(UInt64(v), 8)
            }
        }

        func data(_ info: [Int64], _ payload: [Segment]) -> [Segment] {
            var h = Array("%%%%".utf8) + count(Int64(info.count))
            for i in info { h += count(i) }
            return [.bytes(h)] + payload
        }

        func encodeValue(_ t: Tag) -> [Segment] {
            switch t {
            case let .int16(v): return data([2], [.bytes(simple(2, Double(v)))])
            case let .int32(v): return data([3], [.bytes(simple(3, Double(v)))])
            case let .uint16(v): return data([4], [.bytes(simple(4, Double(v)))])
            case let .uint32(v): return data([5], [.bytes(simple(5, Double(v)))])
            case let .float32(v): return data([6], [.bytes(simple(6, Double(v)))])
            case let .float64(v): return data([7], [.bytes(simple(7, v))])
            case let .bool(v): return data([8], [.bytes([v ? 1 : 0])])
            case let .int8(v): return data([9], [.bytes([UInt8(bitPattern: v)])])
            case let .uint8(v): return data([10], [.bytes([v])])
            case let .int64(v): return data([11], [.bytes(val(UInt64(bitPattern: v), 8))])
            case let .uint64(v): return data([12], [.bytes(val(v, 8))])
            case let .text(s):
                let u = Array(s.utf16)
                return data([20, 4, Int64(u.count)], [.bytes(u.flatMap { val(UInt64($0), 2) })])
            case let .string(s):
                let b = Array(s.utf8)
                return data([18, Int64(b.count)], [.bytes(b)])
            case let .array(type, vs):
                return data([20, Int64(type), Int64(vs.count)], [.bytes(vs.flatMap { simple(type, $0) })])
            case let .structure(fields):
                var info: [Int64] = [15, 0, Int64(fields.count)]
                for (ft, _) in fields { info += [0, Int64(ft)] }
                return data(info, [.bytes(fields.flatMap { simple($0.0, $0.1) })])
            case let .structArray(fields, rows):
                var info: [Int64] = [20, 15, 0, Int64(fields.count)]
                for ft in fields { info += [0, Int64(ft)] }
                info.append(Int64(rows.count))
                return data(info, [.bytes(rows.flatMap { r in zip(fields, r).flatMap { simple($0, $1) } })])
            case let .raw(info, payload):
                return data(info, [.bytes(payload)])
            case let .pixels(i):
                let img = images[i]
                let l = pixelLayout(img.dataType)
                let n = img.pixels.count / Int64(l.bytes)
                var info: [Int64]
                if let f = l.structFields {
                    info = [20, 15, 0, Int64(f.count)]
                    for ft in f { info += [0, Int64(ft)] }
                    info.append(n)
                } else {
                    let et = l.arrayType
                    info = [20, Int64(et), img.pixels.count / Int64(simpleSize(et))]
                }
                return data(info, [.pixels(i)])
            case .group:
                fatalError("groups are encoded by encodeGroup")
            }
        }

        func size(_ s: [Segment]) -> Int64 {
            s.reduce(0) { acc, seg in
                switch seg {
                case let .bytes(b): return acc + Int64(b.count)
                case let .pixels(i): return acc + images[i].pixels.count
                }
            }
        }

        func encodeGroup(_ entries: [(String, Tag)]) -> [Segment] {
            var out: [Segment] = [.bytes([0, 0] + count(Int64(entries.count)))]
            for (name, t) in entries {
                let nb = Array(name.utf8)
                var head: [UInt8]
                let body: [Segment]
                if case let .group(sub) = t {
                    head = [20]
                    body = encodeGroup(sub)
                } else {
                    head = [21]
                    body = encodeValue(t)
                }
                head += be(UInt64(nb.count), 2) + nb
                if wide { head += be(UInt64(size(body)), 8) }
                out.append(.bytes(head))
                out += body
            }
            return out
        }
    }

    static func imageGroup(_ img: Image, index: Int) -> Tag {
        let l = pixelLayout(img.dataType)
        var dimCals: [(String, Tag)] = []
        for (o, s, u) in img.calibrations {
            dimCals.append(("", .group([("Origin", .float32(Float(o))), ("Scale", .float32(Float(s))), ("Units", .text(u))])))
        }
        let (bo, bs, bu) = img.brightness
        let imageData: Tag = .group([
            ("Calibrations", .group([
                ("Brightness", .group([("Origin", .float32(Float(bo))), ("Scale", .float32(Float(bs))), ("Units", .text(bu))])),
                ("Dimension", .group(dimCals)),
                ("DisplayCalibratedUnits", .bool(true)),
            ])),
            ("Data", .pixels(index: index)),
            ("DataType", .int32(Int32(img.dataType))),
            ("Dimensions", .group(img.dims.map { ("", $0 <= Int(UInt32.max) ? .uint32(UInt32($0)) : .uint64(UInt64($0))) })),
            ("PixelDepth", .int32(Int32(l.bytes))),
        ])
        return .group([("ImageData", imageData), ("ImageTags", .group(img.imageTags)), ("Name", .text(img.name)),
                       ("UniqueID", .group([("", .uint32(UInt32(index + 1)))]))])
    }

    /// Writes `images` (after a 2×2 uint8 thumbnail at index 0 when `thumbnail`) to `path`.
    public static func write(_ path: String, version: Int = 4, byteOrder: ByteOrder = .little, images: [Image],
                             thumbnail: Bool = true, extraRootTags: [(String, Tag)] = []) throws {
        var all = images
        if thumbnail {
            all.insert(Image(name: "thumbnail", dataType: 6, dims: [2, 2], pixels: .bytes([1, 2, 3, 4])), at: 0)
        }
        let enc = Encoder(version: version, order: byteOrder, images: all)
        var root: [(String, Tag)] = [("ApplicationBounds", .array(type: 3, [0, 0, 100, 100]))]
        root.append(("ImageList", .group(all.enumerated().map { ("", imageGroup($1, index: $0)) })))
        root.append(("InImageMode", .bool(true)))
        if thumbnail {
            root.append(("Thumbnails", .group([("", .group([("ImageIndex", .uint32(0)), ("SourceSize_Pixels", .array(type: 3, [2, 2]))]))])))
        }
        root += extraRootTags
        var segs = enc.encodeGroup(root)
        if case let .bytes(b) = segs[0] { segs[0] = .bytes([1] + b.dropFirst()) }  // sorted = 1
        let body = enc.size(segs)
        var header = enc.be(UInt64(version), 4)
        header += version == 4 ? enc.be(UInt64(body + 8), 8) : enc.be(UInt64(body + 8), 4)
        header += enc.be(byteOrder == .little ? 1 : 0, 4)
        try writeSegments(path, header: header, segments: segs, trailer: [UInt8](repeating: 0, count: 8), images: all, order: byteOrder)
    }

    static func writeSegments(_ path: String, header: [UInt8], segments: [Segment], trailer: [UInt8], images: [Image], order: ByteOrder) throws {
        guard let fh = FileHandle(forWritingAtPath: path) ?? {
            FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { throw EMError(.writeError, file: path, "cannot create") }
        defer { try? fh.close() }
        try fh.truncate(atOffset: 0)
        try fh.write(contentsOf: header)
        for s in segments {
            switch s {
            case let .bytes(b): try fh.write(contentsOf: b)
            case let .pixels(i):
                let img = images[i]
                let swap = order == .native ? 1 : pixelLayout(img.dataType).swap
                switch img.pixels {
                case var .bytes(b):
                    if swap > 1 { b.withUnsafeMutableBytes { byteSwapInPlace($0, componentSize: swap) } }
                    try fh.write(contentsOf: b)
                case let .stream(count, fill):
                    let chunk = 8 << 20
                    var buf = [UInt8](repeating: 0, count: chunk)
                    var off: Int64 = 0
                    while off < count {
                        let n = Int(min(Int64(chunk), count - off))
                        buf.withUnsafeMutableBytes { p in
                            let sub = UnsafeMutableRawBufferPointer(rebasing: p[0..<n])
                            fill(off, sub)
                            if swap > 1 { byteSwapInPlace(sub, componentSize: swap) }
                        }
                        try fh.write(contentsOf: buf[0..<n])
                        off += Int64(n)
                    }
                case let .sparse(count, patches):
                    let start = try fh.offset()
                    for (o, b) in patches {
                        try fh.seek(toOffset: start + UInt64(o))
                        try fh.write(contentsOf: b)
                    }
                    try fh.seek(toOffset: start + UInt64(count))
                }
            }
        }
        try fh.write(contentsOf: trailer)
    }

    // MARK: conveniences

    /// A 4D-STEM image: values v(sy, sx, dy, dx) given natively as a function of the flat
    /// C-order index in (scan_y, scan_x, det_y, det_x); written in the requested layout.
    public static func fourD(scan: (Int, Int), det: (Int, Int), dataType: Int, contiguous: Bool,
                             value: @escaping (Int) -> [UInt8]) -> Image {
        let (sy, sx) = scan, (dy, dx) = det
        let es = pixelLayout(dataType).bytes
        let n = sy * sx * dy * dx
        let fill: (Int64, UnsafeMutableRawBufferPointer) -> Void = { off, buf in
            let first = Int(off) / es
            for k in 0..<(buf.count / es) {
                let diskIndex = first + k
                let logical: Int
                if contiguous {
                    logical = diskIndex
                } else {
                    // disk C order (dy, dx, sy, sx)
                    let p = diskIndex % (sy * sx), d = diskIndex / (sy * sx)
                    logical = p * (dy * dx) + d
                }
                let v = value(logical)
                for b in 0..<es { buf[k * es + b] = v[b] }
            }
        }
        let dims = contiguous ? [dx, dy, sx, sy] : [sx, sy, dx, dy]
        let cals: [(Double, Double, String)] = contiguous
            ? [(0, 0.1, "1/nm"), (0, 0.1, "1/nm"), (0, 2, "nm"), (0, 2, "nm")]
            : [(0, 2, "nm"), (0, 2, "nm"), (0, 0.1, "1/nm"), (0, 0.1, "1/nm")]
        var md: [(String, Tag)] = [("Format", .text("Diffraction image"))]
        if contiguous { md.append(("Data Order Swapped", .uint32(1))) }
        return Image(name: "4D", dataType: dataType, dims: dims, pixels: .stream(count: Int64(n * es), fill: fill),
                     calibrations: cals, imageTags: [("Meta Data", .group(md))])
    }
}
