import EMCore

/// Hyperslab reads cut into pieces that each touch a bounded number of chunks.
///
/// libhdf5 1.10 builds a selection for every chunk one `H5Dread` touches (about 3.7 KB each), so
/// a read over very small chunks allocates without bound: a damaged Dectris data file declaring
/// 8 x 6-byte chunks for 4194312 x 6 frames made one frame read allocate 3.4 GB (fuzz finding,
/// `fixtures/regressions/dectris/`). Reads are cut along their slowest axes into pieces of at
/// most ``limit`` chunks (C order, so each piece is one contiguous run of the caller's buffer),
/// and a read touching more than ``refused`` chunks is refused: no real layout needs that many
/// for one frame, and reading them one by one would take minutes.
public enum ChunkedPieces {
    /// Chunks per `H5Dread` (about 15 MB of libhdf5's selections).
    public static let limit = 4096
    /// Chunks one read may touch at all.
    public static let refused = 1 << 20

    /// Chunks the hyperslab (`start`, `count`) touches with chunks of `chunk` (Int.max when
    /// the product overflows).
    public static func touched(start: [Int], count: [Int], chunk: [Int]) -> Int {
        var n = 1
        for d in 0..<min(start.count, count.count, chunk.count) where count[d] > 0 {
            let c = max(1, chunk[d])
            let (p, o) = n.multipliedReportingOverflow(by: (start[d] + count[d] - 1) / c - start[d] / c + 1)
            if o { return Int.max }
            n = p
        }
        return n
    }

    /// Calls `body(start, count, firstElement)` for pieces of the hyperslab that each touch at
    /// most `limit` chunks, in C order; `firstElement` is where the piece starts in the whole
    /// hyperslab's C-order buffer (elements). A hyperslab within the limit is one piece.
    public static func forEach(start: [Int], count: [Int], chunk: [Int], limit: Int = ChunkedPieces.limit,
                               _ body: ([Int], [Int], Int) throws -> Void) rethrows {
        func go(_ s: [Int], _ c: [Int], _ offset: Int) throws {
            // The first axis with more than one index: the axes before it hold one, so the pieces
            // along it follow each other in the buffer.
            guard touched(start: s, count: c, chunk: chunk) > limit, let a = c.firstIndex(where: { $0 > 1 }), a < chunk.count else {
                try body(s, c, offset)
                return
            }
            let inner = c[(a + 1)...].reduce(1, *)
            var row = c
            row[a] = 1
            let perRow = touched(start: s, count: row, chunk: chunk)
            let step = max(1, chunk[a])
            var i = s[a]
            let end = s[a] + c[a]
            while i < end {
                // Whole chunk rows along `a` while a row stays within the limit; else one index
                // at a time, cut again along the next axis.
                let next = perRow <= limit ? min(end, (i / step + max(1, limit / perRow)) * step) : i + 1
                var ps = s, pc = c
                ps[a] = i
                pc[a] = next - i
                try go(ps, pc, offset + (i - s[a]) * inner)
                i = next
            }
        }
        try go(start, count, 0)
    }
}
