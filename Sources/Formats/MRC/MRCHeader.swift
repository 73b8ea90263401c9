import EMCore
import Foundation

/// The 1024-byte MRC header (MRC2014 and the older CCP4/IMOD/FEI variants), decoded in the
/// byte order its machine stamp names.
struct MRCHeader: Sendable {
    static let size = 1024
    /// IMOD writes this value at byte 152 ("IMOD") and its flags at 156.
    static let imodStamp: Int32 = 1_146_047_817

    var nx, ny, nz, mode: Int
    var nxstart, nystart, nzstart: Int
    var mx, my, mz: Int
    /// Cell dimensions in Å and angles in degrees.
    var cell: (Double, Double, Double)
    var cellAngles: (Double, Double, Double)
    var mapc, mapr, maps: Int
    var dmin, dmax, dmean: Double
    var ispg: Int
    /// Bytes of extended header between the main header and the data.
    var nsymbt: Int
    var exttyp: String
    var nversion: Int
    var imodStampFound: Bool
    var imodFlags: Int
    /// Origin in Å.
    var origin: (Double, Double, Double)
    var hasMapTag: Bool
    var machineStamp: [UInt8]
    var byteOrder: ByteOrder
    /// How the byte order was found: "machine stamp" or why the stamp was not used.
    var byteOrderSource: String
    var rms: Double
    var labels: [String]

    /// Modes emconv reads.
    static let modes: Set<Int> = [0, 1, 2, 3, 4, 6, 12, 101]

    /// Byte order named by a machine stamp (0x44 0x44 / 0x44 0x41 little, 0x11 0x11 big).
    static func stampOrder(_ s: [UInt8]) -> ByteOrder? {
        guard s.count == 4 else { return nil }
        if s[0] == 0x44 && (s[1] == 0x44 || s[1] == 0x41) { return .little }
        if s[0] == 0x11 && s[1] == 0x11 { return .big }
        return nil
    }

    /// The four dimension words and the mode look like an MRC header in this byte order.
    static func plausible(_ b: [UInt8], _ order: ByteOrder) -> Bool {
        guard b.count >= 96 else { return false }
        let nx = i32(b, 0, order), ny = i32(b, 4, order), nz = i32(b, 8, order), mode = i32(b, 12, order)
        let nsymbt = i32(b, 92, order)
        return nx > 0 && ny > 0 && nz > 0 && modes.contains(Int(mode)) && nsymbt >= 0
            && nx <= 1 << 20 && ny <= 1 << 20
    }

    static func i32(_ b: [UInt8], _ o: Int, _ order: ByteOrder) -> Int32 {
        let v = UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
        return Int32(bitPattern: order == .little ? v : v.byteSwapped)
    }

    static func f32(_ b: [UInt8], _ o: Int, _ order: ByteOrder) -> Double {
        Double(Float(bitPattern: UInt32(bitPattern: i32(b, o, order))))
    }

    /// Decodes the header; nil when neither byte order gives a plausible header.
    static func parse(_ b: [UInt8]) -> MRCHeader? {
        guard b.count >= size else { return nil }
        let stamp = Array(b[212..<216])
        var order: ByteOrder
        var source: String
        if let o = stampOrder(stamp), plausible(b, o) {
            order = o
            source = "machine stamp"
        } else if plausible(b, .little) {
            order = .little
            source = stampOrder(stamp) == nil ? "machine stamp \(hex(stamp)) unknown; little-endian fits the header"
                : "machine stamp \(hex(stamp)) contradicted by the header; little-endian fits it"
        } else if plausible(b, .big) {
            order = .big
            source = stampOrder(stamp) == nil ? "machine stamp \(hex(stamp)) unknown; big-endian fits the header"
                : "machine stamp \(hex(stamp)) contradicted by the header; big-endian fits it"
        } else {
            return nil
        }
        func i(_ o: Int) -> Int { Int(i32(b, o, order)) }
        func f(_ o: Int) -> Double { f32(b, o, order) }
        var labels: [String] = []
        let nlabl = max(0, min(10, i(220)))
        for k in 0..<nlabl {
            let raw = b[(224 + 80 * k)..<(304 + 80 * k)]
            let s = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if !s.isEmpty { labels.append(s) }
        }
        let ext = b[104..<108]
        let exttyp = ext.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) ? String(decoding: ext, as: UTF8.self).trimmingCharacters(in: .whitespaces) : ""
        return MRCHeader(
            nx: i(0), ny: i(4), nz: i(8), mode: i(12), nxstart: i(16), nystart: i(20), nzstart: i(24),
            mx: i(28), my: i(32), mz: i(36), cell: (f(40), f(44), f(48)), cellAngles: (f(52), f(56), f(60)),
            mapc: i(64), mapr: i(68), maps: i(72), dmin: f(76), dmax: f(80), dmean: f(84), ispg: i(88), nsymbt: i(92),
            exttyp: exttyp, nversion: i(108), imodStampFound: i32(b, 152, order) == imodStamp, imodFlags: i(156),
            origin: (f(196), f(200), f(204)), hasMapTag: Array(b[208..<212]) == Array("MAP ".utf8),
            machineStamp: stamp, byteOrder: order, byteOrderSource: source, rms: f(216), labels: labels)
    }

    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// The element type the model holds, and what is done to the stored values to reach it.
    enum Storage: Equatable {
        /// Stored as the model type (byte-swapped when needed).
        case plain(ElementType)
        /// IEEE half floats, widened to float32.
        case float16
        /// Pairs of int16 (mode 3), widened to complex64.
        case complexInt16
        /// Two 4-bit values per byte, low nibble first, rows padded to whole bytes (mode 101).
        case nibbles
    }

    var storage: Storage {
        switch mode {
        case 0: return .plain(mode0Unsigned ? .uint8 : .int8)
        case 1: return .plain(.int16)
        case 2: return .plain(.float32)
        case 3: return .complexInt16
        case 4: return .plain(.complex64)
        case 6: return .plain(.uint16)
        case 12: return .float16
        default: return .nibbles
        }
    }

    /// Mode 0 is signed in MRC2014; IMOD files say so with bit 0 of their flags and are
    /// unsigned without it.
    var mode0Unsigned: Bool { imodStampFound && imodFlags & 1 == 0 }

    var elementType: ElementType {
        switch storage {
        case let .plain(t): return t
        case .float16: return .float32
        case .complexInt16: return .complex64
        case .nibbles: return .uint8
        }
    }

    /// Bytes one stored row takes.
    var rowBytes: Int {
        switch mode {
        case 0: return nx
        case 1, 6, 12: return nx * 2
        case 2, 3: return nx * 4
        case 4: return nx * 8
        default: return (nx + 1) / 2
        }
    }

    var frameBytesOnDisk: Int { rowBytes * ny }
    var dataOffset: Int64 { Int64(Self.size) + Int64(nsymbt) }

    var modeName: String {
        switch mode {
        case 0: return mode0Unsigned ? "mode 0 (uint8, IMOD unsigned bytes)" : "mode 0 (int8)"
        case 1: return "mode 1 (int16)"
        case 2: return "mode 2 (float32)"
        case 3: return "mode 3 (complex int16)"
        case 4: return "mode 4 (complex64)"
        case 6: return "mode 6 (uint16)"
        case 12: return "mode 12 (float16)"
        default: return "mode 101 (4-bit packed)"
        }
    }

    var metaValue: MetaValue {
        .object([
            ("nx", .int(Int64(nx))), ("ny", .int(Int64(ny))), ("nz", .int(Int64(nz))), ("mode", .int(Int64(mode))),
            ("nxstart", .int(Int64(nxstart))), ("nystart", .int(Int64(nystart))), ("nzstart", .int(Int64(nzstart))),
            ("mx", .int(Int64(mx))), ("my", .int(Int64(my))), ("mz", .int(Int64(mz))),
            ("cella_angstrom", .array([.double(cell.0), .double(cell.1), .double(cell.2)])),
            ("cellb_degrees", .array([.double(cellAngles.0), .double(cellAngles.1), .double(cellAngles.2)])),
            ("mapc", .int(Int64(mapc))), ("mapr", .int(Int64(mapr))), ("maps", .int(Int64(maps))),
            ("dmin", .double(dmin)), ("dmax", .double(dmax)), ("dmean", .double(dmean)),
            ("ispg", .int(Int64(ispg))), ("nsymbt", .int(Int64(nsymbt))), ("exttyp", .string(exttyp)),
            ("nversion", .int(Int64(nversion))),
            ("imod_stamp", .bool(imodStampFound)), ("imod_flags", .int(Int64(imodFlags))),
            ("origin_angstrom", .array([.double(origin.0), .double(origin.1), .double(origin.2)])),
            ("map", .bool(hasMapTag)), ("machine_stamp", .string(Self.hex(machineStamp))),
            ("byte_order", .string(byteOrder.rawValue)), ("byte_order_source", .string(byteOrderSource)),
            ("rms", .double(rms)), ("labels", .array(labels.map { .string($0) })),
        ])
    }
}
