import EMCore
import Foundation

/// A minimal reader of TIFF directory entries (classic and BigTIFF, either byte order), for the
/// private vendor tags libtiff does not interpret. Pixel data are read through libtiff.
struct TIFFTagReader {
    struct Entry {
        var tag: UInt16
        var type: UInt16
        var count: UInt64
        /// Absolute file offset of the value bytes (inline values: inside the entry).
        var valueOffset: Int64
    }

    let file: RandomAccessFile
    let big: Bool
    let bigEndian: Bool
    let firstIFD: UInt64

    static func typeSize(_ t: UInt16) -> Int {
        switch t {
        case 1, 2, 6, 7: return 1
        case 3, 8: return 2
        case 4, 9, 11, 13: return 4
        case 5, 10, 12, 16, 17, 18: return 8
        default: return 0
        }
    }

    init(file: RandomAccessFile) throws {
        self.file = file
        let h = try file.read(at: 0, count: min(16, Int(file.size)), what: "TIFF header")
        guard h.count >= 8 else { throw EMError.bad(file.path, offset: 0, "file is truncated inside the TIFF header") }
        if h[0] == 0x49, h[1] == 0x49 { bigEndian = false } else if h[0] == 0x4D, h[1] == 0x4D { bigEndian = true } else {
            throw EMError.bad(file.path, offset: 0, "not a TIFF file (byte order mark)")
        }
        let magic = TIFFTagReader.uint(h, 2, 2, bigEndian)
        if magic == 42 {
            big = false
            firstIFD = TIFFTagReader.uint(h, 4, 4, bigEndian)
        } else if magic == 43, h.count >= 16 {
            big = true
            firstIFD = TIFFTagReader.uint(h, 8, 8, bigEndian)
        } else {
            throw EMError.bad(file.path, offset: 2, "not a TIFF file (magic \(magic))")
        }
    }

    static func uint(_ b: [UInt8], _ at: Int, _ n: Int, _ be: Bool) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n {
            let byte = UInt64(b[at + (be ? i : n - 1 - i)])
            v = v << 8 | byte
        }
        return v
    }

    /// The entries of the directory at `offset`.
    func entries(at offset: UInt64) throws -> [UInt16: Entry] {
        let countSize = big ? 8 : 2, entrySize = big ? 20 : 12, inline = big ? 8 : 4
        guard offset >= 8, Int64(offset) + Int64(countSize) <= file.size else {
            throw EMError.bad(file.path, offset: Int64(clamping: offset), "TIFF directory offset \(offset) lies outside the file of \(file.size) bytes")
        }
        let n = TIFFTagReader.uint(try file.read(at: Int64(offset), count: countSize, what: "TIFF directory"), 0, countSize, bigEndian)
        guard n <= 4096, Int64(offset) + Int64(countSize) + Int64(n) * Int64(entrySize) <= file.size else {
            throw EMError.bad(file.path, offset: Int64(offset), "TIFF directory claims \(n) entries, beyond the file")
        }
        let b = try file.read(at: Int64(offset) + Int64(countSize), count: Int(n) * entrySize, what: "TIFF directory")
        var out: [UInt16: Entry] = [:]
        for i in 0..<Int(n) {
            let p = i * entrySize
            let tag = UInt16(TIFFTagReader.uint(b, p, 2, bigEndian))
            let type = UInt16(TIFFTagReader.uint(b, p + 2, 2, bigEndian))
            let count = TIFFTagReader.uint(b, p + 4, big ? 8 : 4, bigEndian)
            let valuePos = p + (big ? 12 : 8)
            let size = UInt64(TIFFTagReader.typeSize(type))
            guard size > 0, count < (1 << 40) else { continue }
            let total = size * count
            let at: Int64
            if total <= UInt64(inline) {
                at = Int64(offset) + Int64(countSize) + Int64(valuePos)
            } else {
                at = Int64(clamping: TIFFTagReader.uint(b, valuePos, inline, bigEndian))
            }
            out[tag] = Entry(tag: tag, type: type, count: count, valueOffset: at)
        }
        return out
    }

    /// The value bytes (at most 16 MiB; nil when outside the file).
    func bytes(_ e: Entry) -> [UInt8]? {
        let total = UInt64(TIFFTagReader.typeSize(e.type)) * e.count
        guard total <= 16 << 20, e.valueOffset >= 0, e.valueOffset <= file.size - Int64(total) else { return nil }
        return try? file.read(at: e.valueOffset, count: Int(total), what: "TIFF tag \(e.tag)")
    }

    /// ASCII/BYTE/UNDEFINED value as text (up to the first NUL), Latin-1 when not UTF-8.
    func string(_ e: Entry) -> String? {
        guard var b = bytes(e) else { return nil }
        if let z = b.firstIndex(of: 0) { b = Array(b[..<z]) }
        return String(bytes: b, encoding: .utf8) ?? String(bytes: b, encoding: .isoLatin1)
    }

    /// Numeric values of any numeric type.
    func numbers(_ e: Entry) -> [Double]? {
        guard let b = bytes(e) else { return nil }
        let s = TIFFTagReader.typeSize(e.type)
        return (0..<Int(e.count)).map { i in
            let p = i * s
            switch e.type {
            case 1, 7: return Double(b[p])
            case 6: return Double(Int8(bitPattern: b[p]))
            case 3: return Double(TIFFTagReader.uint(b, p, 2, bigEndian))
            case 8: return Double(Int16(bitPattern: UInt16(TIFFTagReader.uint(b, p, 2, bigEndian))))
            case 4, 13: return Double(TIFFTagReader.uint(b, p, 4, bigEndian))
            case 9: return Double(Int32(bitPattern: UInt32(TIFFTagReader.uint(b, p, 4, bigEndian))))
            case 5:
                let d = TIFFTagReader.uint(b, p + 4, 4, bigEndian)
                return d == 0 ? .nan : Double(TIFFTagReader.uint(b, p, 4, bigEndian)) / Double(d)
            case 10:
                let nn = Int32(bitPattern: UInt32(TIFFTagReader.uint(b, p, 4, bigEndian)))
                let d = Int32(bitPattern: UInt32(TIFFTagReader.uint(b, p + 4, 4, bigEndian)))
                return d == 0 ? .nan : Double(nn) / Double(d)
            case 11: return Double(Float(bitPattern: UInt32(TIFFTagReader.uint(b, p, 4, bigEndian))))
            case 12: return Double(bitPattern: TIFFTagReader.uint(b, p, 8, bigEndian))
            case 16, 18: return Double(TIFFTagReader.uint(b, p, 8, bigEndian))
            case 17: return Double(Int64(bitPattern: TIFFTagReader.uint(b, p, 8, bigEndian)))
            default: return .nan
            }
        }
    }

    /// Bytes of a structure a LONG/IFD tag points to (TVIPS, Olympus SIS), or the tag's own bytes.
    func pointedBytes(_ e: Entry, length: Int) -> [UInt8]? {
        if [4, 13, 16, 18].contains(e.type), e.count == 1, let off = numbers(e)?.first, off >= 8,
           Int64(off) + Int64(length) <= file.size {
            return try? file.read(at: Int64(off), count: length, what: "TIFF tag \(e.tag) structure")
        }
        if let b = bytes(e), b.count >= length { return b }
        return nil
    }
}
