import Foundation

/// Converts a dataset's values to another numeric type while streaming, and notes every value
/// that does not survive: floats become integers rounded to nearest (ties to even) and clamped to
/// the type's range (NaN becomes 0); integers and floats become floats at the nearest value the
/// type holds. A value survives when the stored value equals the original. With `exact`, the
/// first value that would change stops the conversion (``EMError/Code/unsupported``, exit 65).
public final class CastFrameSource: FrameSource, @unchecked Sendable {
    /// The first value that changed, and how many changed (so far, in the frames read).
    public struct Loss: Sendable, Equatable {
        public var frame: Int
        /// Index within the frame, per frame axis.
        public var position: [Int]
        public var original: String
        public var stored: String
    }

    let input: Dataset
    public let outputType: ElementType
    let exact: Bool
    let file: String
    private var scratch: UnsafeMutableRawBufferPointer
    private let lock = NSLock()
    private var first: Loss?
    private var changed: Int64 = 0
    private var seen = Set<Int>()

    public init(_ input: Dataset, to type: ElementType, exact: Bool, file: String) {
        precondition(input.elementType.isNumericScalar && type.isNumericScalar)
        self.input = input
        outputType = type
        self.exact = exact
        self.file = file
        scratch = .allocate(byteCount: max(1, input.frameBytes), alignment: 16)
    }

    deinit { scratch.deallocate() }

    public func prepareReadingThread() { input.source.prepareReadingThread() }

    /// The first changed value and the number of changed values over the frames read.
    public var losses: (first: Loss?, count: Int64) {
        lock.lock(); defer { lock.unlock() }
        return (first, changed)
    }

    enum Scalar: CustomStringConvertible {
        case int(Int64), uint(UInt64), float(Double)
        var description: String {
            switch self {
            case let .int(v): return String(v)
            case let .uint(v): return String(v)
            case let .float(v): return v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : "\(v)"
            }
        }
    }

    static func load(_ p: UnsafeRawPointer, _ t: ElementType, _ i: Int) -> Scalar {
        switch t {
        case .int8: return .int(Int64(p.load(fromByteOffset: i, as: Int8.self)))
        case .uint8, .bool: return .int(Int64(p.load(fromByteOffset: i, as: UInt8.self)))
        case .int16: return .int(Int64(p.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
        case .uint16: return .int(Int64(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        case .int32: return .int(Int64(p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
        case .uint32: return .int(Int64(p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        case .int64: return .int(p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
        case .uint64: return .uint(p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
        case .float32: return .float(Double(p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)))
        case .float64: return .float(p.loadUnaligned(fromByteOffset: 8 * i, as: Double.self))
        default: preconditionFailure("cast from \(t)")
        }
    }

    /// Stores `s` as an integer of type D; false when the stored value differs.
    @inline(__always)
    static func putInt<D: FixedWidthInteger>(_ p: UnsafeMutableRawPointer, _ i: Int, _ s: Scalar, _: D.Type) -> Bool {
        let v: D, same: Bool
        switch s {
        case let .int(x):
            if let d = D(exactly: x) { v = d; same = true } else { v = x < 0 ? D.min : D.max; same = false }
        case let .uint(x):
            if let d = D(exactly: x) { v = d; same = true } else { v = D.max; same = false }
        case let .float(x):
            if x.isNaN { v = 0; same = false } else {
                let r = x.rounded(.toNearestOrEven)
                if let d = D(exactly: r) { v = d; same = r == x } else { v = r < 0 ? D.min : D.max; same = false }
            }
        }
        p.storeBytes(of: v, toByteOffset: i * MemoryLayout<D>.size, as: D.self)
        return same
    }

    /// Stores `s` as a float of type D; false when the stored value differs.
    @inline(__always)
    static func putFloat<D: BinaryFloatingPoint>(_ p: UnsafeMutableRawPointer, _ i: Int, _ s: Scalar, _: D.Type) -> Bool {
        let v: D, same: Bool
        switch s {
        case let .int(x): v = D(x); same = Int64(exactly: v) == x
        case let .uint(x): v = D(x); same = UInt64(exactly: v) == x
        case let .float(x): v = D(x); same = Double(v) == x || (x.isNaN && v.isNaN)
        }
        p.storeBytes(of: v, toByteOffset: i * MemoryLayout<D>.size, as: D.self)
        return same
    }

    static func put(_ p: UnsafeMutableRawPointer, _ t: ElementType, _ i: Int, _ s: Scalar) -> Bool {
        switch t {
        case .int8: return putInt(p, i, s, Int8.self)
        case .uint8: return putInt(p, i, s, UInt8.self)
        case .int16: return putInt(p, i, s, Int16.self)
        case .uint16: return putInt(p, i, s, UInt16.self)
        case .int32: return putInt(p, i, s, Int32.self)
        case .uint32: return putInt(p, i, s, UInt32.self)
        case .int64: return putInt(p, i, s, Int64.self)
        case .uint64: return putInt(p, i, s, UInt64.self)
        case .float32: return putFloat(p, i, s, Float.self)
        case .float64: return putFloat(p, i, s, Double.self)
        default: preconditionFailure("cast to \(t)")
        }
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try input.source.readFrame(index, into: scratch)
        let src = UnsafeRawPointer(scratch.baseAddress!), dst = buffer.baseAddress!
        let from = input.elementType, to = outputType
        var lost = 0, firstAt = -1
        for i in 0..<input.frameElements where !Self.put(dst, to, i, Self.load(src, from, i)) {
            if firstAt < 0 { firstAt = i }
            lost += 1
        }
        guard lost > 0 else { return }
        var pos: [Int] = [], rest = firstAt
        for n in input.frameShape.reversed() { pos.insert(rest % n, at: 0); rest /= n }
        let loss = Loss(frame: index, position: pos, original: Self.load(src, from, firstAt).description,
                        stored: Self.load(UnsafeRawPointer(dst), to, firstAt).description)
        if exact {
            throw EMError(.unsupported, file: file,
                          "--cast-exact: '\(input.name)' value \(loss.original) at \(Self.where(loss, in: input)) would be stored as \(loss.stored) in \(to.rawValue)")
        }
        lock.lock(); defer { lock.unlock() }
        // A frame read twice (a writer that re-reads) is counted once.
        guard seen.insert(index).inserted else { return }
        changed += Int64(lost)
        if first == nil || index < first!.frame { first = loss }
    }

    /// "(3, 17) of frame 5" or "(3, 17)" for a dataset of one frame.
    public static func `where`(_ l: Loss, in ds: Dataset) -> String {
        let p = "(" + l.position.map(String.init).joined(separator: ", ") + ")"
        return ds.frameCount > 1 ? "\(p) of frame \(l.frame)" : p
    }
}
