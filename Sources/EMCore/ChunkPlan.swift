import Foundation

/// Chunking of a dataset: whole frames, several consecutive frames along the fastest
/// navigation axis per chunk when frames are small.
public struct ChunkPlan {
    public let shape: [Int]
    public let navRank: Int
    public let framesPerChunk: Int
    public let frameBytes: Int
    public let chunkShape: [Int]
    public let chunkCount: Int
    public let chunksPerLine: Int
    public let lineLength: Int

    public init(_ ds: Dataset, targetBytes: Int) {
        shape = ds.shape
        navRank = ds.rank - ds.frameRank
        frameBytes = max(1, ds.frameBytes)
        let line = navRank > 0 ? ds.shape[navRank - 1] : 1
        lineLength = line
        var k = max(1, min(targetBytes / max(1, ds.frameBytes), line))
        // Prefer a divisor of the line length (no padded edge chunks) when one is close.
        if k < line, let d = (max(1, k / 2)...k).reversed().first(where: { line % $0 == 0 }) {
            k = d
        }
        framesPerChunk = navRank > 0 ? k : 1
        chunksPerLine = (lineLength + framesPerChunk - 1) / framesPerChunk
        var cs = Array(repeating: 1, count: navRank) + ds.frameShape
        if navRank > 0 { cs[navRank - 1] = framesPerChunk }
        if ds.rank == 0 { cs = [] }
        chunkShape = cs.map { max(1, $0) }
        let lines = navRank > 1 ? shape[0..<(navRank - 1)].reduce(1, *) : 1
        chunkCount = lines * chunksPerLine
    }

    public var chunkBytes: Int { framesPerChunk * frameBytes }

    /// The most bands of whole rows a chunk may cut a frame into (frame-wise readers then touch at
    /// most this many chunks per frame): emconv's banded chunks and `validate`'s EM-CHUNK rule.
    public static let maxFrameBands = 4

    /// Chunks of the same frames as `ChunkPlan(ds, targetBytes:)` whose frames are cut into bands
    /// of rows of at most 32768 elements, so that deflate (32 KiB window) can code each band as
    /// matches against the same band of the previous frame (``PlaneDeflate/chunkPeriod(chunkShape:frameRank:)``).
    /// nil when that cannot help or would cut a frame into more than 4 bands (frame-wise readers
    /// then touch at most 4 chunks, as `emconv validate`'s EM-CHUNK rule allows): fewer than two
    /// frames per chunk, frames that already fit, or frames of more than 4 x 32768 elements.
    public static func frameBandShape(_ ds: Dataset, targetBytes: Int) -> [Int]? {
        let most = maxFrameBands
        let plan = ChunkPlan(ds, targetBytes: targetBytes)
        let sig = ds.frameShape
        guard ds.frameRank >= 2, plan.navRank > 0, plan.framesPerChunk >= 2 else { return nil }
        let rest = sig.dropFirst().reduce(1, *), rows = sig[0]
        let window = PlaneDeflate.maxPeriod
        guard rest >= 1, rest <= window, rows * rest > window, rows * rest <= most * window else { return nil }
        var r = max(1, window / rest)
        // Prefer a divisor of the rows (no padded edge band) when one is close.
        if let d = (max(1, r / 2)...r).reversed().first(where: { rows % $0 == 0 }) { r = d }
        guard (rows + r - 1) / r <= most else { return nil }
        var shape = plan.chunkShape
        shape[plan.navRank] = r
        return shape
    }

    /// Whether `chunk` stores `ds` in frame bands as ``frameBandShape(_:targetBytes:)`` makes
    /// them (whatever the number of frames): several frames per chunk, whole rows, at most 4
    /// bands per frame, each within deflate's window. A re-conversion keeps such a layout (the
    /// writers' default, whole frames, would code each frame on its own).
    public static func isFrameBandShape(_ chunk: [Int], of ds: Dataset) -> Bool {
        let nav = ds.rank - ds.frameRank, sig = ds.frameShape
        guard ds.frameRank >= 2, nav > 0, chunk.count == ds.rank, chunk.allSatisfy({ $0 >= 1 }) else { return false }
        // Sizes come from the file: products without overflow (nil beyond Int).
        let rows = chunk[nav]
        guard let band = MemoryBudget.product(Array(chunk[nav...])), let frames = MemoryBudget.product(Array(chunk[..<nav])) else { return false }
        return frames >= 2 && Array(chunk[(nav + 1)...]) == Array(sig.dropFirst()) && rows < sig[0]
            && sig[0] / rows + (sig[0] % rows == 0 ? 0 : 1) <= maxFrameBands && band <= PlaneDeflate.maxPeriod
    }

    /// First frame (flat navigation index) and number of real frames of chunk `i`.
    public func frames(ofChunk i: Int) -> (first: Int, count: Int) {
        let line = i / chunksPerLine
        let start = (i % chunksPerLine) * framesPerChunk
        return (line * lineLength + start, min(framesPerChunk, lineLength - start))
    }

    /// Reads the frames of chunk `i` into `buf`, zero-filling the padding frames of an edge chunk.
    public func read(chunk i: Int, of ds: Dataset, into buf: ChunkBuffer) throws {
        let (first, n) = frames(ofChunk: i)
        buf.reserve(chunkBytes)
        for k in 0..<framesPerChunk {
            let dst = UnsafeMutableRawBufferPointer(rebasing: buf.raw[(k * frameBytes)..<((k + 1) * frameBytes)])
            if k < n {
                try ds.source.readFrame(first + k, into: dst)
            } else {
                dst.initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
        buf.count = chunkBytes
    }

    /// Element offset of chunk `i` in the dataset.
    public func chunkOffset(_ i: Int) -> [Int] {
        var off = Array(repeating: 0, count: shape.count)
        guard navRank > 0 else { return off }
        var line = i / chunksPerLine
        off[navRank - 1] = (i % chunksPerLine) * framesPerChunk
        if navRank > 1 {
            for d in stride(from: navRank - 2, through: 0, by: -1) {
                off[d] = line % shape[d]
                line /= shape[d]
            }
        }
        return off
    }
}

