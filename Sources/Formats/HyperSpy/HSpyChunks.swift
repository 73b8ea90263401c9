import CDeflate
import CHDF5
import CZstd
import EMCore
import EMHDF5
import Foundation

/// `.hspy` chunks decoded by emconv on worker threads: the stored bytes are read under HDF5's
/// lock (`H5Dread_chunk`), then inflated outside it, so the chunks of a slab decode on all
/// cores (HDF5 filters run on one thread under its lock). Filters: deflate (1, RosettaSciIO's
/// default `gzip`), shuffle (2), Blosc (32001), Zstandard (32015). Every stage must give exactly
/// the declared chunk size.
struct HSpyChunkDecoder {
    enum Filter: Equatable { case deflate, shuffle(Int), blosc, zstd }

    /// In the order applied on writing.
    let filters: [Filter]
    let chunkBytes: Int
    let file: String
    let path: String

    /// nil when HDF5's own read is needed: another filter (fletcher32, szip, …), a type that is
    /// not a little-endian integer or float of `type`'s size, or chunks never written (fill value).
    init?(dataset: HDF5Dataset, type: ElementType, shape: [Int], chunk: [Int]) {
        guard type.isNumericScalar, type != .bool, let bytes = MemoryBudget.product(chunk + [type.size]) else { return nil }
        let t = H5Dget_type(dataset.id)
        guard t >= 0 else { return nil }
        defer { H5Tclose(t) }
        let cls = H5Tget_class(t)
        guard cls == H5T_INTEGER || cls == H5T_FLOAT, H5Tget_size(t) == type.size,
              type.size == 1 || H5Tget_order(t) == H5T_ORDER_LE else { return nil }
        var filters: [Filter] = []
        for (id, cd) in dataset.filterPipeline {
            switch id {
            case 1: filters.append(.deflate)
            case 2: filters.append(.shuffle(Int(cd.first ?? 0) > 0 ? Int(cd[0]) : type.size))
            case Int(HDF5.bloscFilterID): filters.append(.blosc)
            case 32015: filters.append(.zstd)
            default: return nil
            }
        }
        let space = H5Dget_space(dataset.id)
        guard space >= 0 else { return nil }
        defer { H5Sclose(space) }
        var stored: hsize_t = 0
        let grid = zip(shape, chunk).map { ($0 + $1 - 1) / max($1, 1) }.reduce(1, *)
        guard H5Dget_num_chunks(dataset.id, space, &stored) >= 0, Int(stored) == grid else { return nil }
        self.filters = filters
        chunkBytes = bytes
        file = dataset.filePath
        path = dataset.path
    }

    /// Reads (under HDF5's lock) and decodes the chunk at grid index `g` into `out`.
    func read(_ dataset: HDF5Dataset, grid g: [Int], chunk: [Int], into out: UnsafeMutableRawBufferPointer) throws {
        let origin = zip(g, chunk).map { $0 * $1 }
        let at = "\(path) chunk at \(origin)"
        let limit = chunkBytes + chunkBytes / 8 + (64 << 10) + BloscChunk.maxOverhead
        var raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 64)
        defer { raw.deallocate() }
        let mask: UInt32 = try HDF5.lock.withLock {
            HDF5.silenceErrorsOnThisThread()
            guard let size = dataset.chunkStorageSize(at: origin) else {
                throw EMError(.badInput, file: file, at: at, "the chunk was never written")
            }
            guard size <= limit else {
                throw EMError(.badInput, file: file, at: at, "the stored chunk has \(size) bytes, more than a chunk of \(chunkBytes) bytes can take")
            }
            raw.deallocate()
            raw = .allocate(byteCount: size, alignment: 64)
            return try dataset.readRawChunk(at: origin, into: raw)
        }
        try decode(UnsafeRawBufferPointer(raw), mask: mask, into: out, at: at)
    }

    func decode(_ raw: UnsafeRawBufferPointer, mask: UInt32, into out: UnsafeMutableRawBufferPointer, at: String) throws {
        func wrong(_ what: String, _ got: Int) -> EMError {
            EMError(.badInput, file: file, at: at, "the \(what) stage gives \(got) bytes, not the chunk's \(chunkBytes)")
        }
        let a = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { a.deallocate(); b.deallocate() }
        var input = raw
        var next = a, other = b
        for (i, f) in filters.enumerated().reversed() where mask & (1 << UInt32(i)) == 0 {
            let dst = UnsafeMutableRawBufferPointer(rebasing: next[0..<chunkBytes])
            switch f {
            case .deflate:
                guard let d = libdeflate_alloc_decompressor() else { throw EMError(.failure, file: file, "out of memory") }
                defer { libdeflate_free_decompressor(d) }
                var got = 0
                let r = libdeflate_zlib_decompress(d, input.baseAddress, input.count, dst.baseAddress, chunkBytes, &got)
                if r == LIBDEFLATE_INSUFFICIENT_SPACE { throw EMError(.badInput, file: file, at: at, "the deflate stream holds more than the chunk's \(chunkBytes) bytes") }
                guard r == LIBDEFLATE_SUCCESS else { throw EMError(.badInput, file: file, at: at, "the deflate stream is damaged") }
                guard got == chunkBytes else { throw wrong("deflate", got) }
            case let .shuffle(e):
                guard input.count == chunkBytes else { throw wrong("shuffle", input.count) }
                if e > 1 {
                    ZarrArray.unshuffle(UnsafeMutableRawBufferPointer(mutating: input), into: dst, elementSize: e)
                } else {
                    dst.copyMemory(from: input)
                }
            case .zstd:
                let r = ZSTD_decompress(dst.baseAddress, chunkBytes, input.baseAddress, input.count)
                if ZSTD_isError(r) != 0 { throw EMError(.badInput, file: file, at: at, "zstd could not decode the chunk (\(String(cString: ZSTD_getErrorName(r))))") }
                guard r == chunkBytes else { throw wrong("zstd", r) }
            case .blosc:
                guard let n = BloscChunk.declaredSize(input) else { throw EMError(.badInput, file: file, at: at, "a damaged Blosc frame (\(input.count) bytes)") }
                guard n == chunkBytes else { throw wrong("Blosc", n) }
                do { try BloscChunk.decode(input, into: dst) } catch let e as EMError { throw EMError(.badInput, file: file, at: at, e.message) }
            }
            input = UnsafeRawBufferPointer(dst)
            swap(&next, &other)
        }
        guard input.count == chunkBytes else { throw wrong("stored", input.count) }
        out.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: chunkBytes)
    }
}
