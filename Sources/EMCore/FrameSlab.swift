import Foundation

/// A run of consecutive frames read together from chunked storage whose chunks cut frames:
/// for a navigation grid (…, rows, columns) chunked (…, r, c), a slab is up to `r` rows of
/// navigation positions (all columns) inside one chunk row, so every stored chunk it
/// intersects is decoded once per slab, not once per frame or per row.
public struct FrameSlab: Equatable, Sendable {
    /// First navigation index of the slab along each navigation dimension.
    public var start: [Int]
    /// Extent along each navigation dimension (1 before the row dimension, the full size after it).
    public var count: [Int]
    /// The frame indices it holds (contiguous in C order).
    public var frames: Range<Int>

    /// The slab holding `frame` for navigation `shape` chunked by `chunks`, at most `rows` rows
    /// tall; chunk rows are split into equal pieces so that no piece is shorter than needed.
    public static func containing(_ frame: Int, shape: [Int], chunks: [Int], rows: Int) -> FrameSlab {
        let n = shape.count
        guard n > 0 else { return FrameSlab(start: [], count: [], frames: 0..<1) }
        let rowAxis = n >= 2 ? n - 2 : 0
        var index = [Int](repeating: 0, count: n)
        var i = frame
        for d in stride(from: n - 1, through: 0, by: -1) { index[d] = i % shape[d]; i /= shape[d] }
        let c = max(chunks[rowAxis], 1)
        let pieces = (c + max(rows, 1) - 1) / max(rows, 1)
        let k = (c + pieces - 1) / pieces
        let y = index[rowAxis]
        let chunkStart = y / c * c
        let r0 = chunkStart + (y - chunkStart) / k * k
        let r1 = min(r0 + k, chunkStart + c, shape[rowAxis])
        var start = index, count = [Int](repeating: 1, count: n)
        start[rowAxis] = r0
        count[rowAxis] = r1 - r0
        if n >= 2 { start[n - 1] = 0; count[n - 1] = shape[n - 1] }
        var first = 0
        for d in 0..<n { first = first * shape[d] + start[d] }
        return FrameSlab(start: start, count: count, frames: first..<(first + count.reduce(1, *)))
    }

    /// Rows a slab may hold within `budget` bytes (0: not even one row fits).
    public static func rows(shape: [Int], chunks: [Int], frameBytes: Int, budget: Int) -> Int {
        guard let rowAxis = shape.indices.last.map({ shape.count >= 2 ? $0 - 1 : $0 }) else { return 0 }
        let rowFrames = shape.count >= 2 ? max(shape[shape.count - 1], 1) : 1
        guard let rowBytes = MemoryBudget.product([rowFrames, max(frameBytes, 1)]), rowBytes <= budget else { return 0 }
        return min(max(chunks[rowAxis], 1), budget / rowBytes)
    }
}

/// Frames handed out from slabs (``FrameSlab``) that `fill` reads whole: the slab buffer is
/// the slab's frames in order (navigation `count` x frame shape, C order). Memory: one slab.
/// Frames are read in any order; reading them in order fills each slab once.
public final class SlabFrameSource: FrameSource {
    public let navShape: [Int]
    public let navChunks: [Int]
    public let frameBytes: Int
    public let rows: Int
    let fill: (FrameSlab, UnsafeMutableRawBufferPointer) throws -> Void
    let prepare: () -> Void
    /// Bytes the input stores for these frames, when the reader knows (an HDF5 dataset's
    /// allocated storage): reported like every HDF5 source's (``StoredSizeReporting``).
    public var stored: (() -> Int64?)?
    private var current: FrameSlab?
    private var buffer: UnsafeMutableRawBufferPointer?
    private let lock = NSLock()

    /// nil when one row of frames does not fit `budget` (the caller keeps its frame-by-frame path).
    public init?(navShape: [Int], navChunks: [Int], frameBytes: Int, budget: Int,
                 prepareThread: @escaping () -> Void = {},
                 fill: @escaping (FrameSlab, UnsafeMutableRawBufferPointer) throws -> Void) {
        guard navShape.count == navChunks.count, !navShape.isEmpty, frameBytes > 0 else { return nil }
        let r = FrameSlab.rows(shape: navShape, chunks: navChunks, frameBytes: frameBytes, budget: budget)
        guard r >= 1 else { return nil }
        self.navShape = navShape
        self.navChunks = navChunks
        self.frameBytes = frameBytes
        self.rows = r
        self.fill = fill
        self.prepare = prepareThread
    }

    deinit { buffer?.deallocate() }

    public func prepareReadingThread() { prepare() }

    public func readFrame(_ index: Int, into out: UnsafeMutableRawBufferPointer) throws {
        try lock.withLock {
            if current?.frames.contains(index) != true {
                let slab = FrameSlab.containing(index, shape: navShape, chunks: navChunks, rows: rows)
                let bytes = slab.frames.count * frameBytes
                if (buffer?.count ?? 0) < bytes {
                    buffer?.deallocate()
                    buffer = nil
                    buffer = .allocate(byteCount: bytes, alignment: 64)
                }
                current = nil
                try fill(slab, UnsafeMutableRawBufferPointer(rebasing: buffer![0..<bytes]))
                current = slab
            }
            let off = (index - current!.frames.lowerBound) * frameBytes
            out.baseAddress!.copyMemory(from: buffer!.baseAddress! + off, byteCount: min(frameBytes, out.count))
        }
    }
}

extension FrameSlab {
    /// The stored chunks (`chunks` over the full `shape`, the navigation dimensions first) that
    /// hold part of this slab: first grid index and extent per dimension.
    public func chunkRange(shape: [Int], chunks: [Int]) -> (first: [Int], extent: [Int]) {
        let n = start.count
        var first: [Int] = [], extent: [Int] = []
        for d in 0..<shape.count {
            let c = max(chunks[d], 1)
            let lo = d < n ? start[d] / c : 0
            let hi = d < n ? (start[d] + count[d] - 1) / c : max(shape[d] - 1, 0) / c
            first.append(lo)
            extent.append(hi - lo + 1)
        }
        return (first, extent)
    }

    /// Grid index of the `k`-th chunk (C order) of ``chunkRange(shape:chunks:)``.
    static func chunkIndex(_ k: Int, first: [Int], extent: [Int]) -> [Int] {
        var g = first, r = k
        for d in stride(from: first.count - 1, through: 0, by: -1) { g[d] += r % extent[d]; r /= extent[d] }
        return g
    }

    /// Grid indices of the chunks that hold part of this slab, in C order.
    public func chunkIndices(shape: [Int], chunks: [Int]) -> [[Int]] {
        let (first, extent) = chunkRange(shape: shape, chunks: chunks)
        return (0..<extent.reduce(1, *)).map { Self.chunkIndex($0, first: first, extent: extent) }
    }

    /// Copies the part of a decoded chunk (grid index `grid`, C order, `chunks` elements per
    /// dimension) that lies in this slab into `region` (the slab's frames: `count` x frame shape).
    public func copy(chunk: UnsafeRawBufferPointer, grid: [Int], shape: [Int], chunks: [Int], elementSize e: Int,
                     into region: UnsafeMutableRawBufferPointer) {
        let r = shape.count, n = start.count
        let rStart = start + [Int](repeating: 0, count: r - n)
        let rCount = count + Array(shape.suffix(r - n))
        var lo = [Int](repeating: 0, count: r), hi = lo, cStride = lo, rStride = lo
        for d in 0..<r {
            let o = grid[d] * chunks[d]
            lo[d] = max(o, rStart[d]) - o
            hi[d] = min(o + chunks[d], rStart[d] + rCount[d], shape[d]) - o
            if lo[d] >= hi[d] { return }
        }
        var cs = 1, rs = 1
        for d in stride(from: r - 1, through: 0, by: -1) { cStride[d] = cs; rStride[d] = rs; cs *= chunks[d]; rs *= rCount[d] }
        let run = (hi[r - 1] - lo[r - 1]) * e
        var x = lo
        while true {
            var src = 0, dst = 0
            for d in 0..<r {
                src += x[d] * cStride[d]
                dst += (x[d] + grid[d] * chunks[d] - rStart[d]) * rStride[d]
            }
            (region.baseAddress! + dst * e).copyMemory(from: chunk.baseAddress! + src * e, byteCount: run)
            var d = r - 2
            while d >= 0 {
                x[d] += 1
                if x[d] < hi[d] { break }
                x[d] = lo[d]
                d -= 1
            }
            if d < 0 { return }
        }
    }

    /// Fills `region` from the chunks holding this slab, decoded on all cores by `decode`
    /// (called concurrently: it must be thread-safe). Memory: one chunk per worker.
    public func fillFromChunks(shape: [Int], chunks: [Int], elementSize: Int, into region: UnsafeMutableRawBufferPointer,
                               decode: @escaping ([Int], UnsafeMutableRawBufferPointer) throws -> Void) throws {
        // Grid indices are made per iteration: tiny chunks make many of them (at most one per
        // element of the slab, which fits the budget).
        let (first, extent) = chunkRange(shape: shape, chunks: chunks)
        let job = SlabChunkJob(slab: self, first: first, extent: extent, shape: shape, chunks: chunks,
                               elementSize: elementSize, region: region, decode: decode)
        DispatchQueue.concurrentPerform(iterations: extent.reduce(1, *)) { job.run($0) }
        if let e = job.failure { throw e }
    }
}

/// One slab's chunks decoded in parallel: each iteration has its own chunk buffer and writes
/// a part of the region no other chunk covers.
final class SlabChunkJob: @unchecked Sendable {
    let slab: FrameSlab
    let first: [Int], extent: [Int]
    let shape: [Int], chunks: [Int], elementSize: Int
    let region: UnsafeMutableRawBufferPointer
    let decode: ([Int], UnsafeMutableRawBufferPointer) throws -> Void
    let chunkBytes: Int
    private let lock = NSLock()
    private(set) var failure: Error?

    init(slab: FrameSlab, first: [Int], extent: [Int], shape: [Int], chunks: [Int], elementSize: Int, region: UnsafeMutableRawBufferPointer,
         decode: @escaping ([Int], UnsafeMutableRawBufferPointer) throws -> Void) {
        self.slab = slab
        self.first = first
        self.extent = extent
        self.shape = shape
        self.chunks = chunks
        self.elementSize = elementSize
        self.region = region
        self.decode = decode
        chunkBytes = chunks.reduce(elementSize, *)
    }

    func run(_ k: Int) {
        if lock.withLock({ failure != nil }) { return }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { buf.deallocate() }
        let g = FrameSlab.chunkIndex(k, first: first, extent: extent)
        do {
            try decode(g, buf)
            slab.copy(chunk: UnsafeRawBufferPointer(buf), grid: g, shape: shape, chunks: chunks, elementSize: elementSize, into: region)
        } catch {
            lock.withLock { if failure == nil { failure = error } }
        }
    }
}

extension SlabFrameSource: StoredSizeReporting {
    public var storedBytes: Int64? { stored?() }
}
