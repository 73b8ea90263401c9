import EMCore
import Foundation

/// Frames of an HDF5 dataset read as hyperslabs of its `frameRank` trailing dimensions, under
/// ``HDF5/lock``. With `imag`, the dataset holds the real parts and `imag` the imaginary parts
/// of complex data (`type` complex64/128), interleaved on reading.
public final class HDF5HyperslabSource: FrameSource {
    public func prepareReadingThread() { HDF5.silenceErrorsOnThisThread() }

    /// Keeps the file (or whatever owns the dataset) open.
    public let owner: AnyObject
    public let dataset: HDF5Dataset
    public let shape: [Int]
    public let frameRank: Int
    public let type: ElementType
    public let imag: HDF5Dataset?

    public init(owner: AnyObject, dataset: HDF5Dataset, shape: [Int], frameRank: Int, type: ElementType, imag: HDF5Dataset? = nil) {
        self.owner = owner
        self.dataset = dataset
        self.shape = shape
        self.frameRank = frameRank
        self.type = type
        self.imag = imag
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let lead = Array(shape.dropLast(frameRank))
        var start = Array(repeating: 0, count: shape.count)
        var i = index
        for d in stride(from: lead.count - 1, through: 0, by: -1) {
            start[d] = i % lead[d]
            i /= lead[d]
        }
        let count = Array(repeating: 1, count: lead.count) + shape.suffix(frameRank)
        let n = shape.suffix(frameRank).reduce(1, *)
        guard buffer.count >= n * type.size else {
            throw EMError(.failure, file: dataset.filePath, at: dataset.path, "frame buffer too small")
        }
        let (st, ct) = shape.isEmpty ? ([], []) : (start, count)
        guard let imag else {
            try HDF5.lock.withLock { try dataset.read(start: st, count: ct, as: type, into: buffer) }
            return
        }
        let part: ElementType = type == .complex64 ? .float32 : .float64
        let c = part.size
        let re = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, n * c), alignment: 16)
        let im = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, n * c), alignment: 16)
        defer { re.deallocate(); im.deallocate() }
        try HDF5.lock.withLock {
            try dataset.read(start: st, count: ct, as: part, into: re)
            try imag.read(start: st, count: ct, as: part, into: im)
        }
        for k in 0..<n {
            (buffer.baseAddress! + 2 * k * c).copyMemory(from: re.baseAddress! + k * c, byteCount: c)
            (buffer.baseAddress! + (2 * k + 1) * c).copyMemory(from: im.baseAddress! + k * c, byteCount: c)
        }
    }
}
