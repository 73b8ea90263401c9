/// Element (pixel) types of the common model. Values are held in memory in the machine's
/// native byte order (little-endian on every platform emconv supports); the source's byte
/// order is recorded separately in ``Dataset/sourceByteOrder``.
public enum ElementType: String, Sendable, CaseIterable, Codable {
    case int8, uint8, int16, uint16, int32, uint32, int64, uint64
    case float32, float64
    /// Interleaved (re, im) float32 pairs.
    case complex64
    /// Interleaved (re, im) float64 pairs.
    case complex128
    /// One byte per element, 0 or 1.
    case bool
    /// Three uint8 channels per element (R, G, B).
    case rgb8
    /// Four uint8 channels per element (R, G, B, A).
    case rgba8

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64, .complex64: return 8
        case .complex128: return 16
        case .rgb8: return 3
        case .rgba8: return 4
        }
    }

    /// Bytes of one scalar component (for byte swapping and shuffling).
    public var componentSize: Int {
        switch self {
        case .complex64: return 4
        case .complex128: return 8
        case .rgb8, .rgba8: return 1
        default: return size
        }
    }

    public var isInteger: Bool {
        switch self {
        case .int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .bool: return true
        default: return false
        }
    }

    public var isNumericScalar: Bool {
        switch self {
        case .rgb8, .rgba8, .complex64, .complex128: return false
        default: return true
        }
    }

    /// NumPy-style type string in little-endian order (`<u2`, `|u1`, `<c8`, …).
    public var numpyString: String {
        switch self {
        case .int8: return "|i1"
        case .uint8: return "|u1"
        case .bool: return "|b1"
        case .int16: return "<i2"
        case .uint16: return "<u2"
        case .int32: return "<i4"
        case .uint32: return "<u4"
        case .int64: return "<i8"
        case .uint64: return "<u8"
        case .float32: return "<f4"
        case .float64: return "<f8"
        case .complex64: return "<c8"
        case .complex128: return "<c16"
        case .rgb8: return "|V3"
        case .rgba8: return "|V4"
        }
    }

    /// Parses a NumPy-style type (`<u2`, `>f4`, `uint16`, `u1`, …). Returns the type and the
    /// byte order the string names (native little-endian when it names none).
    public static func parse(numpy s: String) -> (ElementType, ByteOrder)? {
        var str = Substring(s.trimmingCharacters(in: .whitespaces))
        var order: ByteOrder = .little
        if let c = str.first, "<>|=!".contains(c) {
            order = (c == ">" || c == "!") ? .big : .little
            str = str.dropFirst()
        }
        let named: [String: ElementType] = [
            "int8": .int8, "uint8": .uint8, "int16": .int16, "uint16": .uint16, "int32": .int32,
            "uint32": .uint32, "int64": .int64, "uint64": .uint64, "float32": .float32,
            "float64": .float64, "complex64": .complex64, "complex128": .complex128, "bool": .bool,
            "i1": .int8, "u1": .uint8, "i2": .int16, "u2": .uint16, "i4": .int32, "u4": .uint32,
            "i8": .int64, "u8": .uint64, "f4": .float32, "f8": .float64, "c8": .complex64,
            "c16": .complex128, "b1": .bool, "b": .int8, "B": .uint8, "?": .bool,
        ]
        guard let t = named[String(str)] else { return nil }
        return (t, t.componentSize == 1 ? .little : order)
    }
}

import Foundation

/// Byte order of multi-byte values in a source file.
public enum ByteOrder: String, Sendable, Codable {
    case little, big

    public static var native: ByteOrder {
        1.littleEndian == 1 ? .little : .big
    }
}

/// Swaps every `componentSize`-byte value in place.
@inline(__always)
public func byteSwapInPlace(_ buf: UnsafeMutableRawBufferPointer, componentSize: Int) {
    let n = buf.count / componentSize
    switch componentSize {
    case 2:
        let p = buf.baseAddress!.assumingMemoryBound(to: UInt16.self)
        for i in 0..<n { p[i] = p[i].byteSwapped }
    case 4:
        let p = buf.baseAddress!.assumingMemoryBound(to: UInt32.self)
        for i in 0..<n { p[i] = p[i].byteSwapped }
    case 8:
        let p = buf.baseAddress!.assumingMemoryBound(to: UInt64.self)
        for i in 0..<n { p[i] = p[i].byteSwapped }
    default:
        break
    }
}
