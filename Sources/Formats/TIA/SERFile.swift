import EMCore
import Foundation

/// Little-endian fields from a byte array; every read is bounds-checked and names the file
/// offset it failed at.
struct LEBytes {
    let bytes: [UInt8]
    /// File offset of `bytes[0]`.
    let base: Int64
    let path: String
    var pos = 0

    init(_ bytes: [UInt8], base: Int64, path: String) {
        self.bytes = bytes
        self.base = base
        self.path = path
    }

    mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard n >= 0, pos + n <= bytes.count else {
            throw EMError.bad(path, offset: base + Int64(pos), "file is truncated inside \(what)")
        }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }

    mutating func uint(_ n: Int, _ what: String) throws -> UInt64 {
        let s = try take(n, what)
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    mutating func u16(_ w: String) throws -> UInt16 { UInt16(try uint(2, w)) }
    mutating func u32(_ w: String) throws -> UInt32 { UInt32(try uint(4, w)) }
    mutating func i32(_ w: String) throws -> Int32 { Int32(bitPattern: UInt32(try uint(4, w))) }
    mutating func i16(_ w: String) throws -> Int16 { Int16(bitPattern: UInt16(try uint(2, w))) }
    mutating func u64(_ w: String) throws -> UInt64 { try uint(8, w) }
    mutating func f64(_ w: String) throws -> Double { Double(bitPattern: try uint(8, w)) }
    var offset: Int64 { base + Int64(pos) }
}

/// A TIA series file (.ser): header, dimension arrays, the offset arrays and the element
/// headers, all checked against the file size. Pixel data stays on disk.
struct SERFile {
    /// One series dimension as the header lists it (the first varies fastest).
    struct Dimension {
        var size: Int
        var offset: Double
        var delta: Double
        var element: Int32
        var description: String
        var units: String
    }

    /// Calibration of one axis of an element (offset, delta, element: value(i) = offset + (i − element) × delta).
    struct Calibration: Equatable {
        var offset: Double
        var delta: Double
        var element: Int32
    }

    enum ElementKind { case spectrum, image }
    enum TagKind { case time, timePosition, none }

    let path: String
    let file: RandomAccessFile
    let version: UInt16
    let kind: ElementKind
    let tagKind: TagKind
    let tagTypeID: UInt32
    let totalElements: Int
    let validElements: Int
    let dimensions: [Dimension]
    let dataType: Int16
    let elementType: ElementType
    /// Spectrum: [channels]; image: [rows (ArraySizeY), columns (ArraySizeX)].
    let frameShape: [Int]
    /// Calibrations of the element axes (spectrum: [x]; image: [x, y]).
    let calibrations: [Calibration]
    /// File offset of the values of each valid element.
    let dataStarts: [Int64]
    let tagOffsets: [Int64]
    let warnings: [String]

    static let magic: [UInt8] = [0x49, 0x49, 0x97, 0x01]

    /// The SER data type codes (1 … 10).
    static func elementType(code: Int16) -> ElementType? {
        switch code {
        case 1: return .uint8
        case 2: return .uint16
        case 3: return .uint32
        case 4: return .int8
        case 5: return .int16
        case 6: return .int32
        case 7: return .float32
        case 8: return .float64
        case 9: return .complex64
        case 10: return .complex128
        default: return nil
        }
    }

    var frameBytes: Int { frameShape.reduce(1, *) * elementType.size }
    var offsetBits: Int { version >= 0x0220 ? 64 : 32 }

    init(path: String) throws {
        self.path = path
        file = try RandomAccessFile(path: path)
        let size = file.size
        let headLen = Int(min(size, 64 << 10))
        var r = LEBytes(try file.read(at: 0, count: headLen, what: "header"), base: 0, path: path)
        let order = try r.u16("the header")
        let seriesID = try r.u16("the header")
        guard order == 0x4949, seriesID == 0x0197 else {
            throw EMError.bad(path, offset: 0, "not a TIA series file (expected byte order 0x4949 and series ID 0x0197)")
        }
        version = try r.u16("the header")
        guard version == 0x0210 || version == 0x0220 else {
            throw EMError(.unsupported, file: path, at: "offset 4", "SER version 0x\(String(version, radix: 16)) is not supported (0x0210 and 0x0220 are)")
        }
        let dataTypeID = try r.u32("the header")
        switch dataTypeID {
        case 0x4120: kind = .spectrum
        case 0x4122: kind = .image
        default: throw EMError.bad(path, offset: 6, "unknown SER data type ID 0x\(String(dataTypeID, radix: 16)) (0x4120 spectra, 0x4122 images)")
        }
        tagTypeID = try r.u32("the header")
        switch tagTypeID {
        case 0x4152: tagKind = .time
        case 0x4142: tagKind = .timePosition
        case 0: tagKind = .none
        default: throw EMError.bad(path, offset: 10, "unknown SER tag type ID 0x\(String(tagTypeID, radix: 16)) (0x4152 time, 0x4142 time and position)")
        }
        let total = try r.u32("the header")
        let valid = try r.u32("the header")
        let offsetSize = version >= 0x0220 ? 8 : 4
        let arrayOffset = Int64(bitPattern: offsetSize == 8 ? try r.u64("the header") : UInt64(try r.u32("the header")))
        let ndim = try r.u32("the header")
        // Each element needs two offsets: the offset arrays alone bound the counts.
        guard Int64(total) * Int64(2 * offsetSize) <= size else {
            throw EMError.bad(path, offset: 14, "the header claims \(total) elements, more than a file of \(size) bytes can hold")
        }
        guard valid <= total else {
            throw EMError.bad(path, offset: 18, "the header claims \(valid) valid elements out of \(total)")
        }
        guard valid > 0 else { throw EMError.bad(path, offset: 18, "the series holds no valid element") }
        guard (1...16).contains(ndim) else {
            throw EMError.bad(path, offset: Int64(r.pos - 4), "implausible number of series dimensions \(ndim)")
        }
        totalElements = Int(total)
        validElements = Int(valid)
        var dims: [Dimension] = []
        for i in 0..<Int(ndim) {
            let w = "series dimension \(i + 1)"
            let n = try r.u32(w)
            let off = try r.f64(w), delta = try r.f64(w)
            let el = try r.i32(w)
            let dl = try r.i32(w)
            guard dl >= 0, dl < 4096 else { throw EMError.bad(path, offset: r.offset - 4, "implausible description length \(dl) in \(w)") }
            let desc = String(decoding: try r.take(Int(dl), w), as: UTF8.self)
            let ul = try r.i32(w)
            guard ul >= 0, ul < 4096 else { throw EMError.bad(path, offset: r.offset - 4, "implausible units length \(ul) in \(w)") }
            let units = String(decoding: try r.take(Int(ul), w), as: UTF8.self)
            guard n > 0, n <= total else { throw EMError.bad(path, offset: r.offset, "\(w) has size \(n) (the series has \(total) elements)") }
            dims.append(Dimension(size: Int(n), offset: off, delta: delta, element: el, description: desc, units: units))
        }
        dimensions = dims

        // Offset arrays: data offsets then tag offsets, one per element.
        let arraysBytes = Int64(total) * Int64(offsetSize) * 2
        guard arrayOffset >= Int64(r.pos), arrayOffset <= size - arraysBytes else {
            throw EMError.bad(path, offset: 14 + 8, "offset arrays at \(arrayOffset) (\(arraysBytes) bytes) lie outside the file of \(size) bytes; truncated?")
        }
        var a = LEBytes(try file.read(at: arrayOffset, count: Int(arraysBytes), what: "offset arrays"), base: arrayOffset, path: path)
        var dataOffsets: [Int64] = [], tags: [Int64] = []
        dataOffsets.reserveCapacity(validElements)
        for i in 0..<(2 * totalElements) {
            let v = Int64(bitPattern: offsetSize == 8 ? try a.u64("offset arrays") : UInt64(try a.u32("offset arrays")))
            let isData = i < totalElements
            let k = isData ? i : i - totalElements
            guard k < validElements else { continue }
            if isData { dataOffsets.append(v) } else { tags.append(v) }
        }

        // The first element defines type and shape; every valid element must match.
        let kind = self.kind, file = self.file, validElements = self.validElements
        let headerBytes = kind == .spectrum ? 26 : 50
        func elementHeader(_ i: Int) throws -> (Int16, [Int], [Calibration]) {
            let off = dataOffsets[i]
            guard off > 0, off <= size - Int64(headerBytes) else {
                throw EMError.bad(path, offset: off, "element \(i + 1) of \(validElements) starts outside the file of \(size) bytes; truncated?")
            }
            var e = LEBytes(try file.read(at: off, count: headerBytes, what: "element \(i + 1) header"), base: off, path: path)
            let w = "element \(i + 1) header"
            if kind == .spectrum {
                let c = Calibration(offset: try e.f64(w), delta: try e.f64(w), element: try e.i32(w))
                let t = try e.i16(w)
                let n = try e.i32(w)
                return (t, [Int(n)], [c])
            }
            let cx = Calibration(offset: try e.f64(w), delta: try e.f64(w), element: try e.i32(w))
            let cy = Calibration(offset: try e.f64(w), delta: try e.f64(w), element: try e.i32(w))
            let t = try e.i16(w)
            let nx = try e.i32(w), ny = try e.i32(w)
            return (t, [Int(ny), Int(nx)], [cx, cy])
        }
        let (t0, shape0, cal0) = try elementHeader(0)
        guard let et = SERFile.elementType(code: t0) else {
            throw EMError.bad(path, offset: dataOffsets[0] + Int64(headerBytes - (kind == .spectrum ? 6 : 10)), "unknown SER data type code \(t0) (1…10)")
        }
        // Overflow-safe: each of two sizes may be up to 2^31 - 1 and a value 16 bytes.
        let declared = shape0.reduce(Int64(et.size)) { acc, d in
            let (m, o) = acc.multipliedReportingOverflow(by: Int64(d))
            return o ? Int64.max : m
        }
        guard shape0.allSatisfy({ $0 > 0 }), declared <= size else {
            throw EMError.bad(path, offset: dataOffsets[0], "element size \(shape0.map(String.init).joined(separator: "x")) does not fit in the file of \(size) bytes")
        }
        dataType = t0
        elementType = et
        frameShape = shape0
        calibrations = cal0
        let fb = Int64(shape0.reduce(1, *) * et.size)
        let (all, overflow) = Int64(validElements).multipliedReportingOverflow(by: fb)
        guard !overflow, all <= size else {
            throw EMError.bad(path, offset: dataOffsets[0], "\(validElements) elements of \(fb) bytes do not fit in the file of \(size) bytes; truncated?")
        }
        var warns: [String] = []
        var calibrationDiffers = false
        for i in 0..<validElements {
            let (t, s, c) = i == 0 ? (t0, shape0, cal0) : try elementHeader(i)
            guard t == t0, s == shape0 else {
                throw EMError.bad(path, offset: dataOffsets[i], "element \(i + 1) is \(s.map(String.init).joined(separator: "x")) of type \(t), unlike element 1 (\(shape0.map(String.init).joined(separator: "x")) of type \(t0))")
            }
            if c != cal0 { calibrationDiffers = true }
            let end = dataOffsets[i] + Int64(headerBytes) + fb
            guard end <= size else {
                throw EMError.bad(path, offset: dataOffsets[i], "element \(i + 1) of \(validElements) needs bytes up to \(end) but the file has \(size); truncated?")
            }
        }
        if calibrationDiffers { warns.append("elements carry different calibrations; the first element's is used") }
        dataStarts = dataOffsets.map { $0 + Int64(headerBytes) }
        tagOffsets = tags
        warnings = warns
    }

    /// Per-element tags (acquisition time, stage position), as arrays over the valid elements.
    /// A tag outside the file is reported, not fatal (the data are complete).
    func readTags() -> (MetaValue, [String]) {
        guard tagKind != .none else { return (.object([]), []) }
        let tagBytes = tagKind == .time ? 8 : 24
        var times: [MetaValue] = [], xs: [MetaValue] = [], ys: [MetaValue] = []
        var missing = 0
        for off in tagOffsets {
            guard off > 0, off <= file.size - Int64(tagBytes), let b = try? file.read(at: off, count: tagBytes, what: "tag") else {
                missing += 1
                continue
            }
            var r = LEBytes(b, base: off, path: path)
            _ = try? r.u32("tag")
            times.append(.int(Int64((try? r.u32("tag")) ?? 0)))
            if tagKind == .timePosition {
                xs.append(.double((try? r.f64("tag")) ?? .nan))
                ys.append(.double((try? r.f64("tag")) ?? .nan))
            }
        }
        var pairs: [(String, MetaValue)] = [("tag_type", .string(tagKind == .time ? "0x4152 time" : "0x4142 time and position")),
                                            ("time_unix_s", .array(times))]
        if tagKind == .timePosition {
            pairs.append(("position_x_m", .array(xs)))
            pairs.append(("position_y_m", .array(ys)))
        }
        let w = missing > 0 ? ["\(missing) of \(tagOffsets.count) element tags lie outside the file (truncated?); their time and position are missing"] : []
        return (.object(pairs), w)
    }

    /// The header as metadata.
    var headerMeta: MetaValue {
        .object([
            ("SeriesVersion", .string("0x" + String(version, radix: 16))),
            ("DataTypeID", .string(kind == .spectrum ? "0x4120 (1-D arrays)" : "0x4122 (2-D arrays)")),
            ("TagTypeID", .string("0x" + String(tagTypeID, radix: 16))),
            ("TotalNumberElements", .int(Int64(totalElements))),
            ("ValidNumberElements", .int(Int64(validElements))),
            ("OffsetBits", .int(Int64(offsetBits))),
            ("DataType", .int(Int64(dataType))),
            ("Dimensions", .array(dimensions.map { d in
                .object([("DimensionSize", .int(Int64(d.size))), ("CalibrationOffset", .double(d.offset)),
                         ("CalibrationDelta", .double(d.delta)), ("CalibrationElement", .int(Int64(d.element))),
                         ("Description", .string(d.description)), ("Units", .string(d.units))])
            })),
            ("ElementCalibration", .array(calibrations.map { c in
                .object([("CalibrationOffset", .double(c.offset)), ("CalibrationDelta", .double(c.delta)),
                         ("CalibrationElement", .int(Int64(c.element)))])
            })),
        ])
    }
}

/// Reads element `i` of a SER series: the values after its header, rows reversed for images
/// when `flipRows` (TIA stores the bottom row first).
final class SERFrameSource: FrameSource, @unchecked Sendable {
    let file: RandomAccessFile
    let starts: [Int64]
    let frameBytes: Int
    let rows: Int
    let flipRows: Bool

    init(file: RandomAccessFile, starts: [Int64], frameBytes: Int, rows: Int, flipRows: Bool) {
        self.file = file
        self.starts = starts
        self.frameBytes = frameBytes
        self.rows = rows
        self.flipRows = flipRows
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard index >= 0, index < starts.count else {
            throw EMError(.failure, file: file.path, "element \(index + 1) requested of \(starts.count)")
        }
        let p = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<frameBytes])
        try file.read(at: starts[index], into: p, what: "element \(index + 1)")
        guard flipRows, rows > 1 else { return }
        let rowBytes = frameBytes / rows
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: rowBytes, alignment: 16)
        defer { tmp.deallocate() }
        for r in 0..<(rows / 2) {
            let a = p.baseAddress! + r * rowBytes, b = p.baseAddress! + (rows - 1 - r) * rowBytes
            tmp.baseAddress!.copyMemory(from: a, byteCount: rowBytes)
            a.copyMemory(from: b, byteCount: rowBytes)
            b.copyMemory(from: tmp.baseAddress!, byteCount: rowBytes)
        }
    }
}
