import Foundation

/// One thing emconv did to a dataset's values on the way (crop, bin, cast …), recorded by every
/// writer that can hold it (NeXus: an NXprocess with its parameters; zspy: its provenance).
public struct ProcessingStep: Sendable, Equatable {
    /// Short name: `crop`, `bin`, `cast`.
    public var name: String
    /// The step's parameters as given and as resolved (axis names, ranges, factors, types).
    public var parameters: MetaValue
    /// One sentence saying what changed.
    public var description: String
    public var program: String
    public var version: String

    public init(name: String, parameters: MetaValue, description: String,
                program: String = "emconv", version: String = EMConvVersion.string) {
        self.name = name
        self.parameters = parameters
        self.description = description
        self.program = program
        self.version = version
    }

    /// The step as one metadata object (zspy provenance, JSON reports).
    public var metaValue: MetaValue {
        .object([("name", .string(name)), ("description", .string(description)), ("program", .string(program)),
                 ("version", .string(version)), ("parameters", parameters)])
    }
}

public extension Dataset {
    /// A dataset like this one (name, metadata, conventions, processing so far) with other axes,
    /// values and element type.
    func reshaped(axes: [Axis], elementType: ElementType, frameRank: Int, source: FrameSource) -> Dataset {
        let d = Dataset(name: name, title: title, axes: axes, elementType: elementType, sourceByteOrder: sourceByteOrder,
                        frameRank: frameRank, quantity: quantity, quantityUnits: quantityUnits, signalKind: signalKind,
                        metadata: metadata, original: original, conventions: conventions, source: source)
        d.processing = processing
        // Same shape (a tap, a conversion of the values): the same preferred chunks.
        if axes.map(\.size) == shape && frameRank == self.frameRank { d.preferredChunkShape = preferredChunkShape }
        return d
    }
}

/// How binned values combine.
public enum BinMode: String, Sendable, CaseIterable {
    /// The sum, in an integer type wide enough that it cannot overflow (floats: float64).
    case sum
    /// The mean, in float32.
    case mean
}

/// Crops and bins a dataset while streaming: output frame `j` reads the `k` input frames its
/// navigation bin covers (one at a time, into one frame buffer) and accumulates the cropped,
/// binned signal block. Memory: one input frame plus one accumulator frame, whatever the size
/// of the dataset. Bins that the cropped length does not fill are dropped (as NumPy reshaping
/// would refuse them); the step's record says so.
public final class CropBinFrameSource: FrameSource, @unchecked Sendable {
    let input: Dataset
    let lower: [Int]
    let factors: [Int]
    let outShape: [Int]
    let mode: BinMode
    public let outputType: ElementType
    let navRank: Int
    let inFrameShape: [Int]
    let outFrameShape: [Int]
    private var scratch: UnsafeMutableRawBufferPointer
    private var accInt: [Int64] = []
    private var accDouble: [Double] = []

    /// `ranges` and `factors` have one entry per axis (full range, factor 1 where unchanged).
    public init(_ input: Dataset, ranges: [Range<Int>], factors: [Int], mode: BinMode, outputType: ElementType) {
        precondition(ranges.count == input.rank && factors.count == input.rank)
        self.input = input
        lower = ranges.map(\.lowerBound)
        self.factors = factors
        outShape = zip(ranges, factors).map { $0.count / $1 }
        self.mode = mode
        self.outputType = outputType
        navRank = input.rank - input.frameRank
        inFrameShape = input.frameShape
        outFrameShape = Array(outShape.suffix(input.frameRank))
        scratch = .allocate(byteCount: max(1, input.frameBytes), alignment: 16)
    }

    deinit { scratch.deallocate() }

    public func prepareReadingThread() { input.source.prepareReadingThread() }

    var binsAnything: Bool { factors.contains { $0 > 1 } }

    /// The output element type binning `type` by `k` values in `mode`; nil when the sum could
    /// overflow every integer type (64-bit integers) or the type cannot be binned.
    public static func binnedType(_ type: ElementType, count k: Int, mode: BinMode) -> ElementType? {
        if k == 1 { return type }
        guard type.isNumericScalar else { return nil }
        if mode == .mean { return .float32 }
        let kk = Double(k)
        switch type {
        case .bool, .uint8, .uint16:
            let m: Double = type == .uint16 ? 65535 : (type == .uint8 ? 255 : 1)
            return m * kk <= Double(UInt32.max) ? .uint32 : .uint64
        case .int8, .int16:
            let m: Double = type == .int16 ? 32768 : 128
            return m * kk <= Double(Int32.max) ? .int32 : .int64
        case .uint32: return kk * Double(UInt32.max) < Double(Int64.max) ? .uint64 : nil
        case .int32: return kk * 2_147_483_648 < Double(Int64.max) ? .int64 : nil
        case .int64, .uint64: return nil
        case .float32, .float64: return .float64
        default: return nil
        }
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        // This output frame's navigation index, then every input frame its bin covers.
        var o = Array(repeating: 0, count: navRank)
        var rest = index
        for d in stride(from: navRank - 1, through: 0, by: -1) {
            o[d] = rest % outShape[d]
            rest /= outShape[d]
        }
        let outElements = outFrameShape.reduce(1, *)
        let accumulate = binsAnything
        let useInt = accumulate && input.elementType.isInteger && mode == .sum
        if accumulate {
            if useInt {
                if accInt.count != outElements { accInt = Array(repeating: 0, count: outElements) } else { accInt.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
            } else {
                if accDouble.count != outElements { accDouble = Array(repeating: 0, count: outElements) } else { accDouble.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
            }
        }
        let navFactors = Array(factors.prefix(navRank))
        let k = navFactors.reduce(1, *)
        let inNavShape = Array(input.shape.prefix(navRank))
        for t in 0..<k {
            var tt = t, flat = 0
            var offs = Array(repeating: 0, count: navRank)
            for d in stride(from: navRank - 1, through: 0, by: -1) {
                offs[d] = tt % navFactors[d]
                tt /= navFactors[d]
            }
            for d in 0..<navRank { flat = flat * inNavShape[d] + lower[d] + o[d] * navFactors[d] + offs[d] }
            try input.source.readFrame(flat, into: scratch)
            if !accumulate {
                copySignal(into: buffer)
            } else if useInt {
                accInt.withUnsafeMutableBufferPointer { acc in addSignal(intoInt: acc.baseAddress!) }
            } else {
                accDouble.withUnsafeMutableBufferPointer { acc in addSignal(intoDouble: acc.baseAddress!) }
            }
        }
        guard accumulate else { return }
        if useInt {
            accInt.withUnsafeBufferPointer { store($0, into: buffer) }
        } else if mode == .mean {
            let n = Double(factors.reduce(1, *))
            let p = buffer.baseAddress!.assumingMemoryBound(to: Float.self)
            for i in 0..<outElements { p[i] = Float(accDouble[i] / n) }
        } else {
            let p = buffer.baseAddress!.assumingMemoryBound(to: Double.self)
            for i in 0..<outElements { p[i] = accDouble[i] }
        }
    }

    /// Visits the used block of the input frame: for every run along the fastest signal axis,
    /// the input element offset of its first used element and the output element offset of its
    /// first bin.
    private func forEachRun(_ body: (_ inBase: Int, _ outBase: Int) -> Void) {
        let r = inFrameShape.count
        if r == 0 { body(0, 0); return }
        var inStride = Array(repeating: 1, count: r), outStride = Array(repeating: 1, count: r)
        for d in stride(from: r - 2, through: 0, by: -1) {
            inStride[d] = inStride[d + 1] * inFrameShape[d + 1]
            outStride[d] = outStride[d + 1] * outFrameShape[d + 1]
        }
        let lo = Array(lower.suffix(r)), f = Array(factors.suffix(r))
        let used = zip(outFrameShape, f).map { $0 * $1 }
        var m = Array(repeating: 0, count: r)
        while true {
            var inBase = lo[r - 1], outBase = 0
            for d in 0..<(r - 1) {
                inBase += (lo[d] + m[d]) * inStride[d]
                outBase += (m[d] / f[d]) * outStride[d]
            }
            body(inBase, outBase)
            var d = r - 2
            while d >= 0 {
                m[d] += 1
                if m[d] < used[d] { break }
                m[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    private var runLength: Int { inFrameShape.isEmpty ? 1 : outFrameShape.last! * factors.last! }
    private var runFactor: Int { inFrameShape.isEmpty ? 1 : factors.last! }

    private func copySignal(into buffer: UnsafeMutableRawBufferPointer) {
        let size = input.elementType.size, n = runLength
        let src = UnsafeRawPointer(scratch.baseAddress!), dst = buffer.baseAddress!
        forEachRun { inBase, outBase in
            (dst + outBase * size).copyMemory(from: src + inBase * size, byteCount: n * size)
        }
    }

    // Inlined into each caller below, so `conv` is no call per value; each output value takes its
    // `f` inputs in order (no division per value). The Double sums keep the order of additions
    // into each accumulator (value by value, run by run): the results are bit-identical.
    @inline(__always) private func addRuns<T>(_: T.Type, into acc: UnsafeMutablePointer<Int64>, _ conv: (T) -> Int64) {
        let src = UnsafeRawPointer(scratch.baseAddress!).assumingMemoryBound(to: T.self)
        let f = runFactor, outs = runLength / runFactor
        forEachRun { inBase, outBase in
            var q = src + inBase
            for j in 0..<outs {
                var sum: Int64 = 0
                for k in 0..<f { sum &+= conv(q[k]) }
                acc[outBase + j] &+= sum
                q += f
            }
        }
    }

    @inline(__always) private func addRuns<T>(_: T.Type, into acc: UnsafeMutablePointer<Double>, _ conv: (T) -> Double) {
        let src = UnsafeRawPointer(scratch.baseAddress!).assumingMemoryBound(to: T.self)
        let f = runFactor, outs = runLength / runFactor
        forEachRun { inBase, outBase in
            var q = src + inBase
            for j in 0..<outs {
                for k in 0..<f { acc[outBase + j] += conv(q[k]) }
                q += f
            }
        }
    }

    private func addSignal(intoInt acc: UnsafeMutablePointer<Int64>) {
        switch input.elementType {
        case .int8: addRuns(Int8.self, into: acc) { Int64($0) }
        case .uint8, .bool: addRuns(UInt8.self, into: acc) { Int64($0) }
        case .int16: addRuns(Int16.self, into: acc) { Int64($0) }
        case .uint16: addRuns(UInt16.self, into: acc) { Int64($0) }
        case .int32: addRuns(Int32.self, into: acc) { Int64($0) }
        case .uint32: addRuns(UInt32.self, into: acc) { Int64($0) }
        default: preconditionFailure("integer sum of \(input.elementType)")
        }
    }

    private func addSignal(intoDouble acc: UnsafeMutablePointer<Double>) {
        switch input.elementType {
        case .int8: addRuns(Int8.self, into: acc) { Double($0) }
        case .uint8, .bool: addRuns(UInt8.self, into: acc) { Double($0) }
        case .int16: addRuns(Int16.self, into: acc) { Double($0) }
        case .uint16: addRuns(UInt16.self, into: acc) { Double($0) }
        case .int32: addRuns(Int32.self, into: acc) { Double($0) }
        case .uint32: addRuns(UInt32.self, into: acc) { Double($0) }
        case .int64: addRuns(Int64.self, into: acc) { Double($0) }
        case .uint64: addRuns(UInt64.self, into: acc) { Double($0) }
        case .float32: addRuns(Float.self, into: acc) { Double($0) }
        case .float64: addRuns(Double.self, into: acc) { $0 }
        default: preconditionFailure("binning \(input.elementType)")
        }
    }

    private func store(_ acc: UnsafeBufferPointer<Int64>, into buffer: UnsafeMutableRawBufferPointer) {
        let b = buffer.baseAddress!
        switch outputType {
        case .uint32: let p = b.assumingMemoryBound(to: UInt32.self); for i in acc.indices { p[i] = UInt32(truncatingIfNeeded: acc[i]) }
        case .int32: let p = b.assumingMemoryBound(to: Int32.self); for i in acc.indices { p[i] = Int32(truncatingIfNeeded: acc[i]) }
        case .uint64: let p = b.assumingMemoryBound(to: UInt64.self); for i in acc.indices { p[i] = UInt64(bitPattern: acc[i]) }
        case .int64: let p = b.assumingMemoryBound(to: Int64.self); for i in acc.indices { p[i] = acc[i] }
        default: preconditionFailure("integer sum into \(outputType)")
        }
    }
}

/// Axis calibrations after cropping `range` and binning by `factor` (bins centred on the mean
/// coordinate of the values they combine).
public func croppedBinnedAxis(_ a: Axis, range: Range<Int>, factor: Int) -> Axis {
    var b = a
    let n = range.count / factor
    b.size = n
    switch a.calibration {
    case let .uniform(offset, scale):
        let first = offset + Double(range.lowerBound) * scale
        b.calibration = .uniform(offset: first + Double(factor - 1) * scale / 2, scale: scale * Double(factor))
    case let .coordinates(c):
        b.calibration = .coordinates((0..<n).map { j in
            let s = range.lowerBound + j * factor
            return c[s..<(s + factor)].reduce(0, +) / Double(factor)
        })
    }
    return b
}
