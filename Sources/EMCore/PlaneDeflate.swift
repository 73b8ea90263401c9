import CEMDeflate

/// emconv's deflate encoder (C, Sources/CEMDeflate): one standard zlib stream per chunk whose
/// byte planes (after the shuffle) are coded by kind. `gzip:1`: noise as stored blocks, sparse planes
/// with long runs as run-length matches with dynamic Huffman codes, other low-entropy planes (short
/// runs: float exponents, busy counts) as Huffman-coded literals, planes where LZ77
/// clearly wins (ramps, repeats) with libdeflate level 1. `gzip:2`-`9`: near-random planes stored,
/// the rest libdeflate at that level. Any inflate decodes it.
public final class PlaneDeflate {
    /// How the planes of the last chunk were coded.
    public struct PlaneModes: Equatable, Sendable {
        public var stored = 0, runLength = 0, lz77 = 0, literal = 0, period = 0
        public init(stored: Int = 0, runLength: Int = 0, lz77: Int = 0, literal: Int = 0, period: Int = 0) {
            self.stored = stored
            self.runLength = runLength
            self.lz77 = lz77
            self.literal = literal
            self.period = period
        }
    }

    private let ctx: OpaquePointer

    public init() throws {
        guard let c = emc_deflate_alloc() else { throw EMError(.failure, "out of memory (deflate encoder)") }
        ctx = c
    }

    deinit { emc_deflate_free(ctx) }

    /// The largest stream `compress` writes for `count` bytes in `planes` planes.
    public func bound(_ count: Int, planes: Int) -> Int { emc_deflate_bound(ctx, count, max(1, planes)) }

    /// Compresses `src`, seen as `planes` equal byte planes (the last takes the tail), into `dst`
    /// at deflate `level` (1-9). `period` (level 1): the elements of one frame band when the chunk
    /// stacks frames (``chunkPeriod(chunkShape:frameRank:)``); planes that mostly repeat the
    /// previous frame are then coded as matches at that distance. 0: none.
    public func compress(_ src: UnsafeRawBufferPointer, planes: Int, level: Int = 1, period: Int = 0,
                         into dst: UnsafeMutableRawPointer, capacity: Int) throws -> Int {
        let n = level <= 1 && period > 0
            ? emc_deflate_zlib_period(ctx, src.baseAddress, src.count, max(1, planes), period, dst, capacity)
            : emc_deflate_zlib_level(ctx, src.baseAddress, src.count, max(1, planes), Int32(min(max(level, 1), 12)), dst, capacity)
        guard n > 0 else { throw EMError(.failure, "deflate compression failed (output buffer too small)") }
        return n
    }

    /// Compresses into a new array (tests, small data).
    public func compress(_ src: UnsafeRawBufferPointer, planes: Int, level: Int = 1, period: Int = 0) throws -> [UInt8] {
        let cap = bound(src.count, planes: planes)
        var out = [UInt8](repeating: 0, count: cap)
        let n = try out.withUnsafeMutableBytes { try compress(src, planes: planes, level: level, period: period, into: $0.baseAddress!, capacity: cap) }
        out.removeLast(cap - n)
        return out
    }

    public var lastModes: PlaneModes {
        var c = [Int](repeating: 0, count: 5)  // emc_deflate_stats writes 5 counts
        c.withUnsafeMutableBufferPointer { emc_deflate_stats(ctx, $0.baseAddress!) }
        return PlaneModes(stored: c[0], runLength: c[1], lz77: c[2], literal: c[3], period: c[4])
    }

    /// The period matches may use in a chunk of `chunkShape` (navigation sizes, then the frame's
    /// `frameRank` sizes): the elements of one frame band, when the chunk holds two frames or more
    /// and a band fits deflate's 32 KiB window; else 0.
    public static func chunkPeriod(chunkShape: [Int], frameRank: Int) -> Int {
        guard frameRank >= 1, frameRank < chunkShape.count else { return 0 }
        let band = chunkShape.suffix(frameRank).reduce(1, *)
        let frames = chunkShape.dropLast(frameRank).reduce(1, *)
        return frames >= 2 && band >= 2 && band <= maxPeriod ? band : 0
    }

    /// The largest period: deflate's window (matches reach at most 32768 bytes back; a band's
    /// elements are bytes in each shuffled plane).
    public static let maxPeriod = 32768
}
