import Foundation

/// How `--mask-fill` replaces the values of masked pixels.
public enum MaskFill: String, Sendable, CaseIterable {
    /// 0.
    case zero
    /// NaN (float32 quiet NaN, bits 0x7FC00000).
    case nan
    /// The mean of the pixel's unmasked 4-neighbours inside the frame (see ``CorrectionMaps``).
    case interpolate
}

/// The per-pixel maps of a detector correction, each of one frame's shape, as float32 (the
/// pixel mask as 0/1). One correction, applied frame by frame, is reproducible bit for bit:
///
/// 1. `v = Float(raw)` (integers and float64 rounded to the nearest float32, ties to even);
/// 2. with a dark frame: `v = v - dark[p]`;
/// 3. with a gain map: `v = v * gain[p]`;
/// 4. with a flat field (multiplicative factors, the Dectris convention): `v = v * flat[p]`;
/// 5. every masked pixel (mask value non-zero) is then replaced: `zero` 0, `nan` NaN,
///    `interpolate` the mean of the values that steps 1-4 gave its unmasked neighbours above,
///    left, right and below (in that order, those inside the frame), summed in float32 and
///    divided by their count in float32; 0 when it has none.
///
/// Each step is one IEEE-754 float32 operation rounded to nearest (no fused multiply-add); NaN
/// and infinity in the raw data propagate. Maps themselves must be finite.
public struct CorrectionMaps: Sendable {
    /// Frame shape (rows, columns), or any rank: maps are flat arrays in C order.
    public let frameShape: [Int]
    public let dark: [Float]?
    public let gain: [Float]?
    public let flat: [Float]?
    /// Non-zero = masked.
    public let mask: [UInt8]?
    public let fill: MaskFill
    /// Masked pixel indices, increasing; with `interpolate`, each one's unmasked neighbours.
    let masked: [Int]
    let neighbours: [[Int]]

    public init(frameShape: [Int], dark: [Float]?, gain: [Float]?, flat: [Float]?, mask: [UInt8]?, fill: MaskFill) {
        let n = frameShape.reduce(1, *)
        precondition([dark?.count, gain?.count, flat?.count, mask?.count].allSatisfy { $0 == nil || $0 == n })
        self.frameShape = frameShape
        self.dark = dark
        self.gain = gain
        self.flat = flat
        self.mask = mask
        self.fill = fill
        var masked: [Int] = [], neighbours: [[Int]] = []
        if let mask {
            let cols = frameShape.last ?? 1
            let rows = n / max(1, cols)
            for p in 0..<n where mask[p] != 0 {
                masked.append(p)
                guard fill == .interpolate else { continue }
                let y = p / cols, x = p % cols
                var nb: [Int] = []
                if y > 0, mask[p - cols] == 0 { nb.append(p - cols) }
                if x > 0, mask[p - 1] == 0 { nb.append(p - 1) }
                if x + 1 < cols, mask[p + 1] == 0 { nb.append(p + 1) }
                if y + 1 < rows, mask[p + cols] == 0 { nb.append(p + cols) }
                neighbours.append(nb)
            }
        }
        self.masked = masked
        self.neighbours = neighbours
    }

    public var pixelCount: Int { frameShape.reduce(1, *) }
    public var maskedCount: Int { masked.count }

    /// Corrects one frame of `type` values (native order) into `out` (`pixelCount` floats).
    public func apply(_ raw: UnsafeRawBufferPointer, _ type: ElementType, into out: UnsafeMutablePointer<Float>) {
        let n = pixelCount
        Self.withPointer(dark) { d in
            Self.withPointer(gain) { g in
                switch type {
                case .int8: Self.correct(raw, Int8.self, n, d, g, out) { Float($0) }
                case .uint8, .bool: Self.correct(raw, UInt8.self, n, d, g, out) { Float($0) }
                case .int16: Self.correct(raw, Int16.self, n, d, g, out) { Float($0) }
                case .uint16: Self.correct(raw, UInt16.self, n, d, g, out) { Float($0) }
                case .int32: Self.correct(raw, Int32.self, n, d, g, out) { Float($0) }
                case .uint32: Self.correct(raw, UInt32.self, n, d, g, out) { Float($0) }
                case .int64: Self.correct(raw, Int64.self, n, d, g, out) { Float($0) }
                case .uint64: Self.correct(raw, UInt64.self, n, d, g, out) { Float($0) }
                case .float32: Self.correct(raw, Float.self, n, d, g, out) { $0 }
                case .float64: Self.correct(raw, Double.self, n, d, g, out) { Float($0) }
                default: preconditionFailure("correcting \(type) values")
                }
            }
        }
        if let flat { flat.withUnsafeBufferPointer { f in for i in 0..<n { out[i] = out[i] * f[i] } } }
        switch fill {
        case .zero: for p in masked { out[p] = 0 }
        case .nan: for p in masked { out[p] = .nan }
        case .interpolate:
            // Neighbours are unmasked, so their values are final before any fill.
            var values = [Float](repeating: 0, count: masked.count)
            for (k, nb) in neighbours.enumerated() where !nb.isEmpty {
                var s: Float = 0
                for q in nb { s = s + out[q] }
                values[k] = s / Float(nb.count)
            }
            for (k, p) in masked.enumerated() { out[p] = values[k] }
        }
    }

    @inline(__always) static func withPointer(_ a: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        if let a { a.withUnsafeBufferPointer { body($0.baseAddress) } } else { body(nil) }
    }

    /// Conversion, dark and gain in one pass, one float32 rounding per operation as the
    /// arithmetic rule says: (float(raw) - dark) * gain. Inlined at each call, so every case is a
    /// loop the compiler vectorizes (a closure call per value cost 2 ns: 2.3 s of the reading
    /// thread for a 2 GiB scan).
    @inline(__always) static func correct<T>(_ raw: UnsafeRawBufferPointer, _: T.Type, _ n: Int, _ d: UnsafePointer<Float>?,
                                            _ g: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>, _ conv: (T) -> Float) {
        let p = raw.baseAddress!.assumingMemoryBound(to: T.self)
        if let d, let g {
            for i in 0..<n { out[i] = (conv(p[i]) - d[i]) * g[i] }
        } else if let d {
            for i in 0..<n { out[i] = conv(p[i]) - d[i] }
        } else if let g {
            for i in 0..<n { out[i] = conv(p[i]) * g[i] }
        } else {
            for i in 0..<n { out[i] = conv(p[i]) }
        }
    }

    /// The element types a correction accepts.
    public static func accepts(_ type: ElementType) -> Bool { type.isNumericScalar }
}

/// A dataset's frames corrected with ``CorrectionMaps``, as float32.
public final class CorrectedFrameSource: FrameSource, @unchecked Sendable {
    let input: Dataset
    public let maps: CorrectionMaps
    private var scratch: UnsafeMutableRawBufferPointer

    public init(_ input: Dataset, maps: CorrectionMaps) {
        precondition(input.frameElements == maps.pixelCount)
        self.input = input
        self.maps = maps
        scratch = .allocate(byteCount: max(1, input.frameBytes), alignment: 16)
    }

    deinit { scratch.deallocate() }

    public func prepareReadingThread() { input.source.prepareReadingThread() }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try input.source.readFrame(index, into: scratch)
        maps.apply(UnsafeRawBufferPointer(scratch), input.elementType, into: buffer.baseAddress!.assumingMemoryBound(to: Float.self))
    }
}

/// Float32 values as little-endian bytes (how maps are stored and checksummed).
public func float32Bytes(_ v: [Float]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: v.count * 4)
    for (i, x) in v.enumerated() {
        let b = x.bitPattern.littleEndian
        out[4 * i] = UInt8(truncatingIfNeeded: b)
        out[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
        out[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16)
        out[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
    }
    return out
}

/// A frame's values as Double, whatever their numeric type (for map loading and derived views).
public func frameDoubles(_ buf: UnsafeRawBufferPointer, _ type: ElementType, count n: Int, into out: UnsafeMutablePointer<Double>) {
    func load<T>(_: T.Type, _ conv: (T) -> Double) {
        let p = buf.baseAddress!.assumingMemoryBound(to: T.self)
        for i in 0..<n { out[i] = conv(p[i]) }
    }
    switch type {
    case .int8: load(Int8.self) { Double($0) }
    case .uint8, .bool: load(UInt8.self) { Double($0) }
    case .int16: load(Int16.self) { Double($0) }
    case .uint16: load(UInt16.self) { Double($0) }
    case .int32: load(Int32.self) { Double($0) }
    case .uint32: load(UInt32.self) { Double($0) }
    case .int64: load(Int64.self) { Double($0) }
    case .uint64: load(UInt64.self) { Double($0) }
    case .float32: load(Float.self) { Double($0) }
    case .float64: load(Double.self) { $0 }
    default: preconditionFailure("reading \(type) values as numbers")
    }
}
