import EMCore
import Foundation

/// Where a large array's values lie in a DM file (pixel data and other big arrays are never
/// read while parsing the tag tree).
public struct DMArrayRef: Sendable, Equatable {
    /// Byte offset of the first element.
    public var offset: Int64
    /// DM tag element type code (2…12) of the array.
    public var elementType: Int
    /// Number of elements.
    public var count: Int64
    /// Bytes of one element.
    public var elementBytes: Int
    public var byteCount: Int64 { count * Int64(elementBytes) }
}

/// The parsed tag tree of a DM3/DM4 file.
public struct DMTagTree {
    /// 3 or 4.
    public var version: Int
    /// Byte order of tag values and pixel data (from the header flag).
    public var byteOrder: ByteOrder
    /// The root-length field of the header.
    public var rootLength: UInt64
    /// The whole tree, lossless (large arrays summarized, see ``DMTagParser``).
    public var root: MetaValue
    /// Skipped arrays by tag path (components joined with "\u{1}"; unnamed entries are "[i]").
    public var arrays: [String: DMArrayRef]
    public var tagCount: Int

    public static func key(_ path: [String]) -> String { path.joined(separator: "\u{1}") }
}

/// Reads the DM tag tree. Layout (all structure fields big-endian; values in the header's byte
/// order): header (version u32, root length u32|u64, little-endian flag u32), root group
/// (sorted u8, open u8, count u32|u64), then per tag: kind u8 (20 group, 21 data, 0 end),
/// name length u16, name bytes, [DM4: u64 byte length of the rest of the tag], then for a group
/// sorted/open/count, for data `%%%%`, info-array length and info array (u32|u64 entries), then values.
public struct DMTagParser {
    public static let maxDepth = 64
    /// Numeric arrays up to this many elements are kept in the tree; longer ones are summarized
    /// as `{"dm_array": {"type", "count", "offset", "bytes"}}` and their values stay in the file.
    public static let maxInlineArray = 262_144
    /// Element type codes and sizes of simple values.
    static func simpleSize(_ t: Int) -> Int? {
        switch t {
        case 2, 4: return 2
        case 3, 5, 6: return 4
        case 7, 11, 12: return 8
        case 8, 9, 10: return 1
        default: return nil
        }
    }

    let path: String
    let size: Int64
    var cur: DMCursor
    var version = 3
    var order: ByteOrder = .little
    var arrays: [String: DMArrayRef] = [:]
    var tagCount = 0
    var wide: Bool { version == 4 }

    public static func parse(_ file: RandomAccessFile) throws -> DMTagTree {
        var p = DMTagParser(path: file.path, size: file.size, cur: DMCursor(file: file))
        return try p.run()
    }

    mutating func run() throws -> DMTagTree {
        guard size >= 16 else { throw EMError.bad(path, offset: 0, "file is too small to be a DigitalMicrograph file (\(size) bytes)") }
        let v = try cur.u32be()
        guard v == 3 || v == 4 else {
            throw EMError(.unsupported, file: path, at: "offset 0", "DigitalMicrograph version \(v) is not supported (only DM3 and DM4)")
        }
        version = Int(v)
        let rootLength = wide ? try cur.u64be() : UInt64(try cur.u32be())
        let flag = try cur.u32be()
        guard flag <= 1 else { throw EMError.bad(path, offset: cur.pos - 4, "byte-order flag is \(flag), expected 0 (big-endian) or 1 (little-endian)") }
        order = flag == 1 ? .little : .big
        let root = try group(depth: 0, path: [], tagEnd: nil)
        return DMTagTree(version: version, byteOrder: order, rootLength: rootLength, root: root, arrays: arrays, tagCount: tagCount)
    }

    mutating func count(_ what: String) throws -> Int64 {
        let at = cur.pos
        let n: UInt64 = wide ? try cur.u64be() : UInt64(try cur.u32be())
        guard n <= UInt64(size) else { throw EMError.bad(path, offset: at, "\(what) is \(n), more than the file size allows") }
        return Int64(n)
    }

    /// A tag group: sorted, open, count, then the tags.
    mutating func group(depth: Int, path tagPath: [String], tagEnd: Int64?) throws -> MetaValue {
        guard depth <= Self.maxDepth else {
            throw EMError.bad(path, offset: cur.pos, "tag groups are nested more than \(Self.maxDepth) deep (corrupt or hostile file)")
        }
        _ = try cur.u8(); _ = try cur.u8()
        let n = try count("tag count")
        var entries: [(String, MetaValue)] = []
        var unnamed = 0
        var allUnnamed = true
        for _ in 0..<n {
            let at = cur.pos
            let kind = try cur.u8()
            if kind == 0 { break }  // end marker seen in some files
            let nameLen = Int(try cur.u16be())
            let nameBytes = try cur.bytes(nameLen)
            let name = DMText.latin1OrUTF8(nameBytes)
            var end: Int64?
            if wide {
                let lenAt = cur.pos
                let len = try cur.u64be()
                guard len <= UInt64(size - cur.pos) else { throw EMError.bad(path, offset: lenAt, "tag '\(name)' claims \(len) bytes, past the end of the file") }
                end = cur.pos + Int64(len)
            }
            if let tagEnd, cur.pos > tagEnd { throw EMError.bad(path, offset: at, "tag '\(name)' extends past its enclosing group") }
            let key: String
            if name.isEmpty { key = "[\(unnamed)]"; unnamed += 1 } else { key = name; allUnnamed = false }
            tagCount += 1
            let value: MetaValue
            switch kind {
            case 20: value = try group(depth: depth + 1, path: tagPath + [key], tagEnd: end)
            case 21: value = try data(path: tagPath + [key], name: name)
            default: throw EMError.bad(path, offset: at, "unknown tag kind \(kind) (expected 20 for a group or 21 for data)")
            }
            if let end {
                guard cur.pos <= end else { throw EMError.bad(path, offset: at, "tag '\(name)' is longer than its stated length") }
                cur.pos = end
            }
            entries.append((name, value))
        }
        if allUnnamed && !entries.isEmpty { return .array(entries.map(\.1)) }
        return .object(entries.enumerated().map { i, e in (e.0.isEmpty ? "[\(i)]" : e.0, e.1) })
    }

    mutating func data(path tagPath: [String], name: String) throws -> MetaValue {
        let at = cur.pos
        let delim = try cur.bytes(4)
        guard delim == Array("%%%%".utf8) else { throw EMError.bad(path, offset: at, "data tag '\(name)' lacks its '%%%%' marker") }
        let ninfoAt = cur.pos
        let ninfo = try count("info array length")
        guard ninfo >= 1, ninfo <= 1 << 20, ninfo * (wide ? 8 : 4) <= size - cur.pos else {
            throw EMError.bad(path, offset: ninfoAt, "data tag '\(name)' has an info array of \(ninfo) entries, more than the file holds")
        }
        var info: [Int64] = []
        info.reserveCapacity(Int(ninfo))
        for _ in 0..<ninfo { info.append(try count("info array entry")) }
        let isPixelData = name == "Data" && tagPath.count >= 2 && tagPath[tagPath.count - 2] == "ImageData"
        func bad(_ m: String) -> EMError { EMError.bad(path, offset: ninfoAt, "data tag '\(name)': \(m)") }
        let t = Int(info[0])
        if let s = Self.simpleSize(t) {
            guard ninfo == 1 else { throw bad("simple type \(t) with \(ninfo) info entries") }
            return try simple(t, s)
        }
        switch t {
        case 18:  // string: length in bytes follows
            guard ninfo == 2 else { throw bad("string with \(ninfo) info entries") }
            let b = try cur.bytes(Int(info[1]), what: "string '\(name)'")
            return .string(DMText.latin1OrUTF8(b))
        case 15:
            let fields = try structFields(info, from: 1, bad)
            guard ninfo == 3 + 2 * Int64(fields.count) else { throw bad("struct info array has the wrong length") }
            return .array(try fields.map { try simple($0, Self.simpleSize($0)!) })
        case 20:
            guard ninfo >= 3 else { throw bad("array with \(ninfo) info entries") }
            let et = Int(info[1])
            if let es = Self.simpleSize(et) {
                guard ninfo == 3 else { throw bad("array info array has \(ninfo) entries, expected 3") }
                let n = info[2]
                return try simpleArray(et, es, n, isPixelData: isPixelData, tagPath: tagPath, name: name)
            } else if et == 15 {
                let fields = try structFields(info, from: 2, bad)
                guard ninfo == 5 + 2 * Int64(fields.count) else { throw bad("array-of-struct info array has the wrong length") }
                let n = info[Int(ninfo) - 1]
                let es = fields.reduce(0) { $0 + Self.simpleSize($1)! }
                return try complexArray(n: n, elementBytes: es, tagPath: tagPath, name: name, isPixelData: isPixelData) { me in
                    var vals: [MetaValue] = []
                    for ft in fields { vals.append(try me.simple(ft, Self.simpleSize(ft)!)) }
                    return .array(vals)
                }
            } else if et == 18 {
                guard ninfo == 4 else { throw bad("array-of-string info array has \(ninfo) entries") }
                let len = Int(info[2]), n = info[3]
                return try complexArray(n: n, elementBytes: len, tagPath: tagPath, name: name) {
                    .string(DMText.latin1OrUTF8(try $0.cur.bytes(len)))
                }
            } else if et == 20 {
                guard ninfo == 5, let es = Self.simpleSize(Int(info[2])) else { throw bad("unsupported array-of-array layout") }
                let inner = info[3], n = info[4]
                let (eb, o) = inner.multipliedReportingOverflow(by: Int64(es))
                guard !o, eb <= size else { throw bad("inner array of \(inner) elements is larger than the file") }
                return try complexArray(n: n, elementBytes: Int(eb), tagPath: tagPath, name: name) {
                    try $0.simpleArray(Int(info[2]), es, inner, isPixelData: false, tagPath: [], name: name)
                }
            }
            throw EMError(.unsupported, file: path, at: "offset \(ninfoAt)", "data tag '\(name)': array element type \(et) is not a known DM type")
        default:
            throw EMError(.unsupported, file: path, at: "offset \(ninfoAt)", "data tag '\(name)': type code \(t) is not a known DM type")
        }
    }

    func structFields(_ info: [Int64], from i: Int, _ bad: (String) -> EMError) throws -> [Int] {
        guard info.count > i + 1 else { throw bad("truncated struct definition") }
        let nf = info[i + 1]
        guard nf >= 0, Int64(info.count) >= Int64(i + 2) + 2 * nf else { throw bad("struct with \(nf) fields does not fit its info array") }
        var out: [Int] = []
        for k in 0..<Int(nf) {
            let ft = Int(info[i + 2 + 2 * k + 1])
            guard Self.simpleSize(ft) != nil else { throw bad("struct field type \(ft) is not a simple DM type") }
            out.append(ft)
        }
        return out
    }

    mutating func simple(_ t: Int, _ s: Int) throws -> MetaValue {
        let b = try cur.bytes(s)
        return DMText.value(b, 0, t, order)
    }

    mutating func simpleArray(_ et: Int, _ es: Int, _ n: Int64, isPixelData: Bool, tagPath: [String], name: String) throws -> MetaValue {
        let at = cur.pos
        let (bytes, o) = n.multipliedReportingOverflow(by: Int64(es))
        guard n >= 0, !o, bytes <= size - at else {
            throw EMError.bad(path, offset: at, "array '\(name)' of \(n) elements × \(es) bytes runs past the end of the file")
        }
        if isPixelData || n > Self.maxInlineArray {
            let ref = DMArrayRef(offset: at, elementType: et, count: n, elementBytes: es)
            if !tagPath.isEmpty { arrays[DMTagTree.key(tagPath)] = ref }
            cur.pos = at + bytes
            return .object([("dm_array", .object([("type", .int(Int64(et))), ("count", .int(n)), ("offset", .int(at)), ("bytes", .int(bytes))]))])
        }
        let b = try cur.bytes(Int(bytes))
        if et == 4 {  // uint16 arrays hold UTF-16 text in DM
            var units = [UInt16](repeating: 0, count: Int(n))
            for i in 0..<Int(n) { units[i] = order == .little ? UInt16(b[2 * i]) | UInt16(b[2 * i + 1]) << 8 : UInt16(b[2 * i]) << 8 | UInt16(b[2 * i + 1]) }
            if let s = DMText.utf16(units) { return .string(s) }
            return .array(units.map { .int(Int64($0)) })
        }
        var out: [MetaValue] = []
        out.reserveCapacity(Int(n))
        for i in 0..<Int(n) { out.append(DMText.value(b, i * es, et, order)) }
        return .array(out)
    }

    mutating func complexArray(n: Int64, elementBytes: Int, tagPath: [String], name: String, isPixelData: Bool = false,
                               element: (inout DMTagParser) throws -> MetaValue) throws -> MetaValue {
        let at = cur.pos
        let (bytes, o) = n.multipliedReportingOverflow(by: Int64(max(elementBytes, 0)))
        guard n >= 0, elementBytes >= 0, !o, bytes <= size - at else {
            throw EMError.bad(path, offset: at, "array '\(name)' of \(n) elements × \(elementBytes) bytes runs past the end of the file")
        }
        if isPixelData || n > Self.maxInlineArray / 4 || (elementBytes == 0 && n > 0) {
            if isPixelData { arrays[DMTagTree.key(tagPath)] = DMArrayRef(offset: at, elementType: 15, count: n, elementBytes: elementBytes) }
            cur.pos = at + bytes
            return .object([("dm_array", .object([("type", .string("composite")), ("count", .int(n)), ("offset", .int(at)), ("bytes", .int(bytes))]))])
        }
        var out: [MetaValue] = []
        for _ in 0..<n { out.append(try element(&self)) }
        return .array(out)
    }
}

/// Buffered big-endian/any-order reading over a ``RandomAccessFile``.
struct DMCursor {
    let file: RandomAccessFile
    var pos: Int64 = 0
    var buf: [UInt8] = []
    var bufStart: Int64 = 0

    init(file: RandomAccessFile) { self.file = file }

    mutating func bytes(_ n: Int, what: String = "tag data") throws -> [UInt8] {
        guard n >= 0, Int64(n) <= file.size - pos else {
            throw EMError.bad(file.path, offset: pos, "file is truncated: \(what) needs \(n) bytes at offset \(pos) but the file has \(file.size) bytes")
        }
        if n > 1 << 20 {
            let r = try file.readUpTo(at: pos, count: n)
            pos += Int64(n)
            return r
        }
        if pos < bufStart || pos + Int64(n) > bufStart + Int64(buf.count) {
            buf = try file.readUpTo(at: pos, count: max(n, 1 << 16))
            bufStart = pos
            guard buf.count >= n else { throw EMError.bad(file.path, offset: pos, "file ended early") }
        }
        let s = Int(pos - bufStart)
        pos += Int64(n)
        return Array(buf[s..<(s + n)])
    }

    mutating func u8() throws -> UInt8 { try bytes(1)[0] }
    mutating func u16be() throws -> UInt16 { let b = try bytes(2); return UInt16(b[0]) << 8 | UInt16(b[1]) }
    mutating func u32be() throws -> UInt32 { let b = try bytes(4); return b.reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func u64be() throws -> UInt64 { let b = try bytes(8); return b.reduce(0) { $0 << 8 | UInt64($1) } }
}

enum DMText {
    static func latin1OrUTF8(_ b: [UInt8]) -> String {
        if let s = String(validatingUTF8: b.map { CChar(bitPattern: $0) } + [0]), s.utf8.count == b.count { return s }
        return String(b.map { Character(Unicode.Scalar($0)) })
    }

    /// Decodes UTF-16 code units; nil when they are not valid UTF-16 (then kept as numbers).
    static func utf16(_ units: [UInt16]) -> String? {
        var s = String.UnicodeScalarView()
        let failed = transcode(units.makeIterator(), from: UTF16.self, to: UTF32.self, stoppingOnError: true) {
            if let u = Unicode.Scalar($0) { s.append(u) }
        }
        return failed ? nil : String(s)
    }

    static func raw<T: FixedWidthInteger>(_ b: [UInt8], _ o: Int, _ order: ByteOrder, _: T.Type) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size {
            let byte = T(truncatingIfNeeded: b[o + i])
            v |= order == .little ? byte << (8 * i) : byte << (8 * (MemoryLayout<T>.size - 1 - i))
        }
        return v
    }

    static func value(_ b: [UInt8], _ o: Int, _ t: Int, _ order: ByteOrder) -> MetaValue {
        switch t {
        case 2: return .int(Int64(Int16(bitPattern: raw(b, o, order, UInt16.self))))
        case 3: return .int(Int64(Int32(bitPattern: raw(b, o, order, UInt32.self))))
        case 4: return .int(Int64(raw(b, o, order, UInt16.self)))
        case 5: return .int(Int64(raw(b, o, order, UInt32.self)))
        case 6: return .double(Double(Float(bitPattern: raw(b, o, order, UInt32.self))))
        case 7: return .double(Double(bitPattern: raw(b, o, order, UInt64.self)))
        case 8: return .bool(b[o] != 0)
        case 9: return .int(Int64(Int8(bitPattern: b[o])))
        case 10: return .int(Int64(b[o]))
        case 11: return .int(Int64(bitPattern: raw(b, o, order, UInt64.self)))
        case 12: return .uint(raw(b, o, order, UInt64.self))
        default: return .null
        }
    }
}
