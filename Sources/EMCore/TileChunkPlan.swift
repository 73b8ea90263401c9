import Foundation

/// The chunk layout a writer is asked for (`--chunks`): whole frames (the default), `balanced`
/// (chunks that split frames too, so both one frame and one detector pixel over the whole scan
/// read few bytes), or an explicit shape.
public enum ChunkChoice: Equatable, Sendable {
    case frame
    case balanced
    case explicit([Int])

    /// Parses `frame`, `balanced` or `N,N,…`.
    public static func parse(_ s: String?) throws -> ChunkChoice {
        guard let s, !s.isEmpty else { return .frame }
        switch s.lowercased() {
        case "frame": return .frame
        case "balanced": return .balanced
        default:
            let parts = s.split(separator: ",")
            let v = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !v.isEmpty, v.count == parts.count, v.allSatisfy({ $0 > 0 }) else {
                throw EMError(.usage, at: "--chunks", "takes frame, balanced or positive integers N,N,… one per axis (got '\(s)')")
            }
            return .explicit(v)
        }
    }

    /// The option writers declare (NeXus, zspy).
    public static let option = OptionSpec(
        "chunks", .wordOrInts(["frame", "balanced"]), valueName: "frame|balanced|N,N,…",
        help: "chunk layout: frame (whole frames; fastest to write, one frame reads one chunk), balanced (chunks of about 2 MiB cutting navigation and detector axes alike, so a virtual-detector pixel over the whole scan reads few bytes too; memory: one navigation tile of at most 64 MiB), or one size per axis",
        default: "frame; corrected frames (--dark/--gain/…) of 32768 to 4 x 32768 pixels: bands of whole rows, so gzip codes each against the previous frame")

    /// Memory for the frames of one chunk's navigation tile: the tile is read once and serves
    /// every chunk of it.
    public static let tileBudget = 64 << 20
}

/// Chunks that may split frames: the navigation part of a chunk (a tile of `tile` frames) is
/// read into memory once, then every chunk of that tile is cut from it, in C order over the
/// chunk grid (navigation chunk index slowest). Memory: one tile, at most
/// ``ChunkChoice/tileBudget`` bytes (`product(navigation chunk sizes) × frame bytes`), plus the
/// pipeline's chunk buffers. Edge chunks are padded with zeros as HDF5 and zarr expect.
public final class TileChunkPlan: @unchecked Sendable {
    public let shape: [Int]
    public let chunkShape: [Int]
    public let navRank: Int
    public let elementSize: Int
    let navChunks: [Int]
    let sigChunks: [Int]
    let sigBlocks: Int
    public let chunkCount: Int
    let frameShape: [Int]
    let frameBytes: Int
    private var tile: UnsafeMutableRawBufferPointer
    private var tileIndex = -1

    /// Checks `chunk` (one size per axis, clamped to the axis) against the tile budget.
    public init(_ ds: Dataset, chunk: [Int]) throws {
        guard chunk.count == ds.rank else {
            throw EMError(.usage, at: "--chunks", "gives \(chunk.count) sizes for '\(ds.name)', which has \(ds.rank) axes (\(ds.axes.map(\.name).joined(separator: ", ")))")
        }
        let shape = ds.shape, cs = zip(chunk, ds.shape).map { max(1, min($0, $1)) }, navRank = ds.rank - ds.frameRank
        self.shape = shape
        chunkShape = cs
        self.navRank = navRank
        elementSize = ds.elementType.size
        frameShape = ds.frameShape
        frameBytes = ds.frameBytes
        navChunks = (0..<navRank).map { (shape[$0] + cs[$0] - 1) / cs[$0] }
        sigChunks = (navRank..<shape.count).map { (shape[$0] + cs[$0] - 1) / cs[$0] }
        sigBlocks = sigChunks.reduce(1, *)
        chunkCount = navChunks.reduce(1, *) * sigBlocks
        let tileFrames = chunkShape.prefix(navRank).reduce(1, *)
        let tileBytes = tileFrames * frameBytes
        guard tileBytes <= ChunkChoice.tileBudget else {
            throw EMError(.usage, at: "--chunks",
                          "navigation chunk \(chunkShape.prefix(navRank).map(String.init).joined(separator: "x")) of '\(ds.name)' needs \(tileFrames) frames of \(frameBytes) bytes in memory (\(tileBytes >> 20) MiB, more than \(ChunkChoice.tileBudget >> 20) MiB); use smaller navigation chunk sizes")
        }
        tile = .allocate(byteCount: max(1, tileBytes), alignment: 64)
    }

    deinit { tile.deallocate() }

    public var chunkElements: Int { chunkShape.reduce(1, *) }
    public var chunkBytes: Int { chunkElements * elementSize }

    /// Balanced chunks for `ds`: about `targetBytes` each, with the navigation and the signal
    /// axes cut into the same fraction of their extent (one frame and one pixel over the scan
    /// then touch about as many chunks), the navigation tile kept within the budget.
    public static func balancedShape(_ ds: Dataset, targetBytes: Int) -> [Int] {
        let navRank = ds.rank - ds.frameRank
        let nav = Array(ds.shape.prefix(navRank)), sig = ds.frameShape
        guard navRank > 0, !sig.isEmpty else { return ds.shape.map { max(1, $0) } }
        let target = Double(max(1, targetBytes / ds.elementType.size))
        let navN = Double(nav.reduce(1, *)), sigN = Double(sig.reduce(1, *))
        // Elements of the chunk in its navigation and its signal part: n·s = target, n/N = s/S.
        var navPart = min(navN, (target * navN / sigN).squareRoot())
        navPart = min(navPart, Double(ChunkChoice.tileBudget / max(1, ds.frameBytes)))
        let sigPart = min(sigN, target / max(1, navPart))
        func cut(_ sizes: [Int], _ part: Double) -> [Int] {
            // The same fraction of every axis; powers of two when the axis allows.
            let f = pow(part / Double(sizes.reduce(1, *)), 1 / Double(sizes.count))
            return sizes.map { n in
                let want = max(1, Double(n) * f)
                let p2 = Int(pow(2, (log2(want)).rounded(.down)))
                return max(1, min(n, p2))
            }
        }
        return cut(nav, navPart) + cut(sig, sigPart)
    }

    /// The offset (first element per axis) of chunk `i`.
    public func chunkOffset(_ i: Int) -> [Int] {
        var t = i / sigBlocks, b = i % sigBlocks
        var off = Array(repeating: 0, count: shape.count)
        for d in stride(from: navRank - 1, through: 0, by: -1) {
            off[d] = (t % navChunks[d]) * chunkShape[d]
            t /= navChunks[d]
        }
        for d in stride(from: shape.count - 1, through: navRank, by: -1) {
            let k = d - navRank
            off[d] = (b % sigChunks[k]) * chunkShape[d]
            b /= sigChunks[k]
        }
        return off
    }

    /// Source bytes chunk `i` covers first (its tile's frames, counted once, at the tile's first chunk).
    public func sourceBytes(ofChunk i: Int) -> Int64 {
        guard i % sigBlocks == 0 else { return 0 }
        let off = chunkOffset(i)
        var frames = 1
        for d in 0..<navRank { frames *= min(chunkShape[d], shape[d] - off[d]) }
        return Int64(frames) * Int64(frameBytes)
    }

    /// Reads chunk `i` into `buf` (C order within the chunk, zero padding at the edges), loading
    /// its navigation tile first when it is not the current one. `onFrame` sees every frame once,
    /// as its tile is loaded (flat frame index, the frame's bytes).
    public func read(chunk i: Int, of ds: Dataset, into buf: ChunkBuffer,
                     onFrame: ((Int, UnsafeRawBufferPointer) -> Void)? = nil) throws {
        let off = chunkOffset(i)
        let t = i / sigBlocks
        let tileShape = (0..<navRank).map { min(chunkShape[$0], shape[$0] - off[$0]) }
        let tileFrames = tileShape.reduce(1, *)
        if t != tileIndex {
            for k in 0..<tileFrames {
                var rest = k, flat = 0
                var idx = Array(repeating: 0, count: navRank)
                for d in stride(from: navRank - 1, through: 0, by: -1) { idx[d] = rest % tileShape[d]; rest /= tileShape[d] }
                for d in 0..<navRank { flat = flat * shape[d] + off[d] + idx[d] }
                let dst = UnsafeMutableRawBufferPointer(rebasing: tile[(k * frameBytes)..<((k + 1) * frameBytes)])
                try ds.source.readFrame(flat, into: dst)
                onFrame?(flat, UnsafeRawBufferPointer(dst))
            }
            tileIndex = t
        }
        buf.reserve(chunkBytes)
        buf.count = chunkBytes
        // Copy runs along the fastest axis: for each frame of the tile and each row of the block.
        let r = frameShape.count
        let cs = Array(chunkShape.suffix(r)), so = Array(off.suffix(r))
        let used = (0..<r).map { min(cs[$0], frameShape[$0] - so[$0]) }
        // Only an edge chunk has padding (zeros, as HDF5 and zarr expect); a full one is overwritten.
        if tileFrames < chunkShape.prefix(navRank).reduce(1, *) || used != cs {
            UnsafeMutableRawBufferPointer(rebasing: buf.raw[0..<chunkBytes]).initializeMemory(as: UInt8.self, repeating: 0)
        }
        var fStride = Array(repeating: 1, count: r), cStride = Array(repeating: 1, count: r)
        for d in stride(from: r - 2, through: 0, by: -1) {
            fStride[d] = fStride[d + 1] * frameShape[d + 1]
            cStride[d] = cStride[d + 1] * cs[d + 1]
        }
        let chunkFrameElements = cs.reduce(1, *)
        let navChunkShape = Array(chunkShape.prefix(navRank))
        let run = (r == 0 ? 1 : used[r - 1]) * elementSize
        let src = UnsafeRawPointer(tile.baseAddress!), dst = buf.raw.baseAddress!
        for k in 0..<tileFrames {
            // Position of tile frame k inside the (possibly larger) chunk's navigation block.
            var rest = k, pos = 0
            var idx = Array(repeating: 0, count: navRank)
            for d in stride(from: navRank - 1, through: 0, by: -1) { idx[d] = rest % tileShape[d]; rest /= tileShape[d] }
            for d in 0..<navRank { pos = pos * navChunkShape[d] + idx[d] }
            let frameBase = src + k * frameBytes
            let chunkBase = dst + pos * chunkFrameElements * elementSize
            if r == 0 { chunkBase.copyMemory(from: frameBase, byteCount: elementSize); continue }
            var m = Array(repeating: 0, count: r)
            while true {
                var fo = so[r - 1], co = 0
                for d in 0..<(r - 1) { fo += (so[d] + m[d]) * fStride[d]; co += m[d] * cStride[d] }
                (chunkBase + co * elementSize).copyMemory(from: frameBase + fo * elementSize, byteCount: run)
                var d = r - 2
                while d >= 0 {
                    m[d] += 1
                    if m[d] < used[d] { break }
                    m[d] = 0
                    d -= 1
                }
                if d < 0 { break }
            }
        }
    }
}
