import Foundation

/// Writes small TIA series files (.ser) and a minimal .emi for tests: both header versions
/// (0x0210 with 32-bit offsets, 0x0220 with 64-bit), spectra or images, every data type, a
/// series of any dimensions, time or time + position tags. The layout follows the SER
/// description in Sources/Formats/TIA/FORMAT.md.
public enum SERWriter {
    public struct Dim {
        public var size: Int
        public var offset: Double, delta: Double
        public var element: Int32
        public var description: String, units: String
        public init(_ size: Int, offset: Double = 0, delta: Double = 1, element: Int32 = 0, description: String = "Number", units: String = "") {
            self.size = size; self.offset = offset; self.delta = delta; self.element = element
            self.description = description; self.units = units
        }
    }

    /// Bytes per value of SER data type code 1…10.
    public static func valueSize(_ code: Int16) -> Int {
        [1: 1, 2: 2, 3: 4, 4: 1, 5: 2, 6: 4, 7: 4, 8: 8, 9: 8, 10: 16][Int(code)] ?? 1
    }

    /// A .ser with `valid` of `dims`' elements written (default all). Element `i` holds the
    /// bytes `values(i)` (`frame` values of `valueSize(dataType)` bytes); `frame` is
    /// [channels] for spectra or [rows, columns] for images (stored bottom row first, like TIA).
    public static func write(_ path: String, version: UInt16 = 0x0210, image: Bool, dataType: Int16, frame: [Int],
                             dims: [Dim], valid: Int? = nil, positionTags: Bool = false,
                             calibration: (offset: Double, delta: Double) = (0, 1),
                             values: (Int) -> [UInt8]) throws {
        var b: [UInt8] = []
        func u16(_ v: UInt16) { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func u32(_ v: UInt32) { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
        func u64(_ v: UInt64) { b += withUnsafeBytes(of: v.littleEndian, Array.init) }
        func f64(_ v: Double) { u64(v.bitPattern) }
        let total = dims.reduce(1) { $0 * $1.size }
        let nValid = valid ?? total
        let wide = version >= 0x0220
        u16(0x4949); u16(0x0197); u16(version)
        u32(image ? 0x4122 : 0x4120)
        u32(positionTags ? 0x4142 : 0x4152)
        u32(UInt32(total)); u32(UInt32(nValid))
        let arrayOffsetAt = b.count
        if wide { u64(0) } else { u32(0) }
        u32(UInt32(dims.count))
        for d in dims {
            u32(UInt32(d.size)); f64(d.offset); f64(d.delta); i32(d.element)
            i32(Int32(d.description.utf8.count)); b += Array(d.description.utf8)
            i32(Int32(d.units.utf8.count)); b += Array(d.units.utf8)
        }
        let arrayOffset = b.count
        let w = wide ? 8 : 4
        b += [UInt8](repeating: 0, count: 2 * total * w)
        func patch(_ at: Int, _ v: Int) {
            let bytes = wide ? withUnsafeBytes(of: UInt64(v).littleEndian, Array.init) : withUnsafeBytes(of: UInt32(v).littleEndian, Array.init)
            b.replaceSubrange(at..<(at + w), with: bytes)
        }
        patch(arrayOffsetAt, arrayOffset)
        let count = frame.reduce(1, *)
        for i in 0..<nValid {
            patch(arrayOffset + i * w, b.count)
            if image {
                for _ in 0..<2 { f64(calibration.offset); f64(calibration.delta); i32(0) }
                u16(UInt16(bitPattern: dataType))
                i32(Int32(frame[1])); i32(Int32(frame[0]))
            } else {
                f64(calibration.offset); f64(calibration.delta); i32(0)
                u16(UInt16(bitPattern: dataType))
                i32(Int32(frame[0]))
            }
            let v = values(i)
            precondition(v.count == count * valueSize(dataType), "element \(i): \(v.count) bytes for \(count) values")
            b += v
            patch(arrayOffset + (total + i) * w, b.count)
            u16(positionTags ? 0x4142 : 0x4152); u16(0)
            u32(UInt32(1_456_000_000 + i))
            if positionTags { f64(Double(i % max(1, dims[0].size)) * 1e-9); f64(Double(i / max(1, dims[0].size)) * 1e-9) }
        }
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// A minimal .emi: the signature, one named object per .ser (name, space, path) followed
    /// by its `<ObjectInfo>` XML, as TIA lays them out.
    public static func writeEMI(_ path: String, objects: [(name: String, space: String, ser: String, objectInfo: String)]) throws {
        var b: [UInt8] = [0x4A, 0x4B, 0x00, 0x02, 0, 0, 0, 0]
        func string(_ tag: [UInt8], _ s: String) {
            b += tag + [0x60, 0x00, 0x00, 0x01] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8)
        }
        string([0, 0, 0, 0], "4.5.1101.0")
        for o in objects {
            string([0x00, 0x00, 0x00, 0x00], o.space)
            string([0xB0, 0x49, 0x10, 0x06], o.name)
            string([0x70, 0x61, 0x63, 0x65], "C:\\data\\" + o.ser)
            b += [0x32, 0x00, 0x42] + Array(o.objectInfo.utf8)
        }
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// An `<ObjectInfo>` block with the fields emconv maps.
    public static func objectInfo(voltage: Double = 200_000, magnification: Double = 10_000, cameraLength: Double = 0.04, date: String = "Sun Feb 21 17:53:06 2016") -> String {
        "<ObjectInfo><ExperimentalConditions><MicroscopeConditions><AcceleratingVoltage>\(Int(voltage))</AcceleratingVoltage></MicroscopeConditions></ExperimentalConditions>"
            + "<ExperimentalDescription><Root><Data><Label>Microscope</Label><Value>Microscope Tecnai 200 kV</Value><Unit></Unit></Data>"
            + "<Data><Label>Magnification</Label><Value>\(Int(magnification))</Value><Unit>x</Unit></Data>"
            + "<Data><Label>Camera length</Label><Value>\(cameraLength)</Value><Unit>m</Unit></Data></Root></ExperimentalDescription>"
            + "<AcquireDate>\(date)</AcquireDate><AcquireInfo><DwellTimePath>0.000048</DwellTimePath></AcquireInfo><Manufacturer>FEI (ISAS)</Manufacturer></ObjectInfo>"
    }
}
