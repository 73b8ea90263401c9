import EMCore
import Foundation

/// Streaming transpose: the file holds a C-order (rows, cols) matrix of elements and frame `c`
/// is column `c` (all `rows` elements). Serves spectrum images (energy slowest on disk: rows =
/// channels, cols = scan positions) and the transposed 4D-STEM layout (rows = detector pixels,
/// cols = scan positions). A block of consecutive columns is read with one read per row and
/// transposed strip by strip into a frame-major cache, so memory stays at `budget` bytes (or one frame if a frame is larger) whatever the
/// file size; frames read in increasing order hit the cache.
final class DMTransposeSource: FrameSource {
    let file: RandomAccessFile
    let base: Int64
    let rows: Int
    let cols: Int
    let es: Int
    let fix: PixelFix
    let block: Int
    private var cache: UnsafeMutableRawBufferPointer
    private var cacheStart = -1
    private var cacheCount = 0


    init(file: RandomAccessFile, base: Int64, rows: Int, cols: Int, elementBytes: Int, fix: PixelFix, budget: Int) {
        self.file = file
        self.base = base
        self.rows = rows
        self.cols = cols
        self.es = elementBytes
        self.fix = fix
        let colBytes = max(1, rows * elementBytes)
        block = max(1, min(cols, budget / colBytes))
        cache = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, block * colBytes), alignment: 64)
    }

    deinit { cache.deallocate() }

    /// Reads columns start..<start+n strip by strip (a few rows at a time, one read per row, or
    /// one read per strip when whole rows are wanted) and transposes each strip into the cache,
    /// which holds the block frame after frame.
    private func load(_ start: Int) throws {
        let n = min(block, cols - start)
        let run = n * es
        let stripRows = max(1, min(rows, 64, (4 << 20) / max(1, run)))
        let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: stripRows * run, alignment: 64)
        defer { staging.deallocate() }
        var r0 = 0
        while r0 < rows {
            let sr = min(stripRows, rows - r0)
            if n == cols {
                try file.read(at: base + Int64(r0) * Int64(cols) * Int64(es),
                              into: UnsafeMutableRawBufferPointer(rebasing: staging[0..<(sr * run)]), what: "pixel data")
            } else {
                for r in 0..<sr {
                    let off = base + (Int64(r0 + r) * Int64(cols) + Int64(start)) * Int64(es)
                    try file.read(at: off, into: UnsafeMutableRawBufferPointer(rebasing: staging[(r * run)..<((r + 1) * run)]), what: "pixel data")
                }
            }
            transposeStrip(UnsafeRawPointer(staging.baseAddress!), rowsInStrip: sr, firstRow: r0, n: n)
            r0 += sr
        }
        cacheStart = start
        cacheCount = n
    }

    @inline(__always)
    private func move<T>(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _: T.Type, sr: Int, firstRow: Int, n: Int) {
        // Tiles of 8 rows × 64 columns: the 8 source rows stay in L1 (rows are often 4 KiB
        // apart and alias to one cache set) while 64 destination frames are filled.
        let s = src.assumingMemoryBound(to: T.self), d = dst.assumingMemoryBound(to: T.self)
        var rb = 0
        while rb < sr {
            let re = min(rb + 8, sr)
            var cb = 0
            while cb < n {
                let ce = min(cb + 64, n)
                for c in cb..<ce {
                    let o = c * rows + firstRow
                    for r in rb..<re { d[o + r] = s[r * n + c] }
                }
                cb = ce
            }
            rb = re
        }
    }

    private func transposeStrip(_ src: UnsafeRawPointer, rowsInStrip sr: Int, firstRow: Int, n: Int) {
        let dst = cache.baseAddress!
        switch es {
        case 1: move(src, dst, UInt8.self, sr: sr, firstRow: firstRow, n: n)
        case 2: move(src, dst, UInt16.self, sr: sr, firstRow: firstRow, n: n)
        case 4: move(src, dst, UInt32.self, sr: sr, firstRow: firstRow, n: n)
        case 8: move(src, dst, UInt64.self, sr: sr, firstRow: firstRow, n: n)
        default:
            for c in 0..<n {
                for r in 0..<sr { (dst + ((c * rows + firstRow + r) * es)).copyMemory(from: src + (r * n + c) * es, byteCount: es) }
            }
        }
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard index >= 0 && index < cols else { throw EMError(.failure, file: file.path, at: "frame \(index)", "frame index out of range") }
        if !(index >= cacheStart && index < cacheStart + cacheCount) { try load(index) }
        let frameBytes = rows * es
        let j = index - cacheStart
        buffer.baseAddress!.copyMemory(from: cache.baseAddress! + j * frameBytes, byteCount: frameBytes)
        fix.apply(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<frameBytes]))
    }
}

/// Packed complex FFT images (DataType 27/28: half spectrum per row; DataType 5: the old
/// 2N×2N packing), unpacked to a full complex array. One frame = the whole 2-D image.
final class DMPackedComplexSource: FrameSource {
    let file: RandomAccessFile
    let base: Int64
    let rows: Int
    let colsOut: Int
    let dataType: Int
    let order: ByteOrder

    init(file: RandomAccessFile, base: Int64, rows: Int, cols: Int, dataType: Int, order: ByteOrder) {
        self.file = file
        self.base = base
        self.rows = rows
        self.colsOut = cols
        self.dataType = dataType
        self.order = order
    }

    /// Bytes of packed data on disk.
    static func packedBytes(rows: Int, cols: Int, dataType: Int) -> Int {
        switch dataType {
        case 27: return rows * (cols / 2 + 1) * 8
        case 28: return rows * (cols / 2 + 1) * 16
        default: return rows * cols * 4  // 5: float32 values
        }
    }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let nb = Self.packedBytes(rows: rows, cols: colsOut, dataType: dataType)
        var raw = [UInt8](repeating: 0, count: nb)
        try raw.withUnsafeMutableBytes { p in
            try file.read(at: base, into: p, what: "packed complex data")
            if order != .native { byteSwapInPlace(p, componentSize: dataType == 28 ? 8 : 4) }
        }
        if dataType == 28 {
            raw.withUnsafeBytes { p in
                unpackRows(p.bindMemory(to: Double.self), buffer.bindMemory(to: Double.self))
            }
        } else if dataType == 27 {
            raw.withUnsafeBytes { p in
                unpackRows(p.bindMemory(to: Float.self), buffer.bindMemory(to: Float.self))
            }
        } else {
            raw.withUnsafeBytes { p in unpackOld(p.bindMemory(to: Float.self), buffer.bindMemory(to: Float.self)) }
        }
    }

    /// Row r of n = cols/2+1 packed values p becomes [p[n-1], …, p[0], conj(p[1]), …, conj(p[n-2])]
    /// (RosettaSciIO's unpacking, used so values agree with it).
    private func unpackRows<T: BinaryFloatingPoint>(_ src: UnsafeBufferPointer<T>, _ dst: UnsafeMutableBufferPointer<T>) {
        let n = colsOut / 2 + 1
        for r in 0..<rows {
            let s = r * n * 2
            var o = r * colsOut * 2
            for k in stride(from: n - 1, through: 0, by: -1) {
                dst[o] = src[s + 2 * k]; dst[o + 1] = src[s + 2 * k + 1]; o += 2
            }
            if n >= 3 {
                for k in 1..<(n - 1) {
                    dst[o] = src[s + 2 * k]; dst[o + 1] = -src[s + 2 * k + 1]; o += 2
                }
            }
        }
    }

    /// Old packed complex (DataType 5), 2N×2N, following the layout documented by RosettaSciIO.
    private func unpackOld(_ t: UnsafeBufferPointer<Float>, _ out: UnsafeMutableBufferPointer<Float>) {
        let size = colsOut
        let N = size / 2
        func set(_ i: Int, _ j: Int, _ re: Float, _ im: Float) { out[(i * size + j) * 2] = re; out[(i * size + j) * 2 + 1] = im }
        func get(_ i: Int, _ j: Int) -> (Float, Float) { (out[(i * size + j) * 2], out[(i * size + j) * 2 + 1]) }
        for k in 0..<out.count { out[k] = 0 }
        set(N, 0, t[0], 0)
        set(0, 0, t[1], 0)
        set(N, N, t[2 * N * N], 0)
        set(0, N, t[2 * N * N + 1], 0)
        for i in 0..<N {
            let start = 2 * i * N + 2
            for k in 0..<(N - 1) { set(i, N + 1 + k, t[start + 2 * k], t[start + 2 * k + 1]) }
        }
        do {
            let start = 2 * N
            for k in 0..<(N - 1) { set(N + 1 + k, 0, t[start + 2 * N * k], t[start + 2 * N * k + 1]) }
        }
        let start3 = 2 * N * N + 2
        for k in 0..<(N - 1) { set(N, N + 1 + k, t[start3 + 2 * k], t[start3 + 2 * k + 1]) }
        let start4 = start3 + 2 * (N - 1)
        var q = 0
        for i in (N + 1)..<max(N + 1, 2 * N) {
            for j in N..<(2 * N) { set(i, j, t[start4 + 2 * q], t[start4 + 2 * q + 1]); q += 1 }
        }
        func conjFrom(_ i: Int, _ j: Int, _ si: Int, _ sj: Int) { let (re, im) = get(si, sj); set(i, j, re, -im) }
        for j in 1..<max(1, N) { conjFrom(0, j, 0, size - j) }
        for j in 1..<max(1, N) { conjFrom(N, j, N, size - j) }
        for i in 1..<max(1, N) { conjFrom(i, 0, size - i, 0) }
        for i in 1..<max(1, N) { conjFrom(i, N, size - i, N) }
        for i in 1..<max(1, N) { for j in 1..<N { conjFrom(i, j, size - i, size - j) } }
        for i in (N + 1)..<max(N + 1, 2 * N) { for j in 1..<max(1, N) { conjFrom(i, j, size - i, size - j) } }
    }
}
