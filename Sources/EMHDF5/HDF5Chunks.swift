import EMCore
import Foundation
import CHDF5

// Raw chunk access, filter pipelines, external links and the bitshuffle filter (32008, with LZ4 or
// zstd blocks): what readers that decode chunks on their own threads need (Dectris), and what lets
// emconv read back its own bitshuffle output without an HDF5 plugin.

extension HDF5 {
    /// HDF5 filter id of bitshuffle (+ LZ4 when `cd_values[4]` is 2, + zstd when 3).
    public static let bitshuffleFilterID = H5Z_filter_t(BitshuffleLZ4.filterID)

    /// `cd_values` of the bitshuffle-LZ4 filter as hdf5plugin 4+ writes them: bitshuffle format
    /// version 0.4, element size, block size 0 (bitshuffle's default, 8 KiB), 2 = LZ4. Dectris
    /// writes version 0.3 with the same layout; decoders read the block size from each chunk.
    /// With zstd blocks, `cd_values[3]` is emconv's block size in elements (64 KiB), `cd_values[4]` 3
    /// and `cd_values[5]` the zstd level, as hdf5plugin's `Bitshuffle(nelems, cname='zstd', clevel)`
    /// writes them.
    public static func bitshuffleCDValues(elementSize: Int, codec: BitshuffleLZ4.BlockCodec = .lz4) -> [UInt32] {
        switch codec {
        case .lz4: return [0, 4, UInt32(elementSize), 0, BitshuffleLZ4.lz4Flag]
        case let .zstd(level):
            return [0, 4, UInt32(elementSize), UInt32(codec.writtenBlockElements(elementSize: elementSize)), BitshuffleLZ4.zstdFlag, UInt32(level)]
        }
    }

    /// The block codec that `cd_values` of filter 32008 declare: nil for bitshuffle alone (`cd_values[4]`
    /// absent or 0); throws on a compression emconv does not know.
    public static func bitshuffleCodec(cdValues cd: [UInt32]) throws -> BitshuffleLZ4.BlockCodec? {
        guard cd.count > 4, cd[4] != 0 else { return nil }
        switch cd[4] {
        case BitshuffleLZ4.lz4Flag: return .lz4
        case BitshuffleLZ4.zstdFlag: return .zstd(level: cd.count > 5 ? Int(cd[5]) : 0)
        default: throw EMError(.unsupported, "bitshuffle filter with compression \(cd[4]) (cd_values[4]): emconv reads 0 (none), 2 (LZ4) and 3 (zstd)")
        }
    }

    /// Lets `H5Fopen` open a file shorter than its superblock's end-of-file address (HDF5 1.10's
    /// file-access property `skip_eof_check`, which h5clear uses; ignored when absent).
    static func allowTruncated(_ fapl: hid_t) {
        guard H5Pexist(fapl, "skip_eof_check") > 0 else { return }
        var on: hbool_t = true
        _ = H5Pset(fapl, "skip_eof_check", &on)
    }

    static func registerBitshuffleFilter() {
        let name = strdup("bitshuffle; see https://github.com/kiyo-masui/bitshuffle")
        var cls = H5Z_class2_t()
        cls.version = Int32(emc_Z_CLASS_T_VERS())
        cls.id = bitshuffleFilterID
        cls.encoder_present = 1
        cls.decoder_present = 1
        cls.name = UnsafePointer(name)
        cls.can_apply = nil
        cls.set_local = nil
        cls.filter = bitshuffleFilterCallback
        _ = H5Zregister(&cls)
    }
}

extension HDF5 {
    /// Names of filters from The HDF Group's registry that files in this field use, for errors.
    public static let knownFilterNames: [Int: String] = [
        1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 5: "nbit", 6: "scale-offset",
        305: "LZO", 307: "bzip2", 32000: "LZF", 32001: "Blosc", 32004: "LZ4", 32008: "bitshuffle",
        32013: "ZFP", 32015: "Zstandard", 32017: "SZ", 32018: "FCIDECOMP", 32026: "Blosc2",
    ]

    /// HDF5 filter id of Blosc 1.
    public static let bloscFilterID = H5Z_filter_t(BloscChunk.filterID)

    /// Blosc chunks (filter 32001) for every HDF5 read path. (HDF5 refuses to create a dataset
    /// with a filter it cannot encode, so the encoder is there too; emconv's outputs do not use it.)
    static func registerBloscFilter() {
        let name = strdup("blosc; see https://www.blosc.org")
        var cls = H5Z_class2_t()
        cls.version = Int32(emc_Z_CLASS_T_VERS())
        cls.id = bloscFilterID
        cls.encoder_present = 1
        cls.decoder_present = 1
        cls.name = UnsafePointer(name)
        cls.can_apply = nil
        cls.set_local = nil
        cls.filter = bloscFilterCallback
        _ = H5Zregister(&cls)
    }
}

/// HDF5 filter callback for Blosc. Decoding: the declared size must be the chunk's size
/// (`cd_values[3]`, which every Blosc filter writes) before anything is allocated. Encoding:
/// `cd_values` [2] element size, [4] level, [5] shuffle, [6] codec.
private let bloscFilterCallback: H5Z_func_t = { flags, cdNelmts, cdValues, nbytes, bufSize, buf in
    guard let buf, let bufSize, let input = buf.pointee else { return 0 }
    let src = UnsafeRawBufferPointer(start: input, count: nbytes)
    if flags & emc_Z_FLAG_REVERSE() == 0 {
        let cd = (0..<7).map { i -> UInt32? in i < cdNelmts ? cdValues?[i] : nil }
        guard let out = malloc(nbytes + BloscChunk.maxOverhead) else { return 0 }
        let m = BloscChunk.encode(src, into: out, capacity: nbytes + BloscChunk.maxOverhead, elementSize: Int(cd[2] ?? 1),
                                  level: Int(cd[4] ?? 5), shuffle: Int(cd[5] ?? 1), codec: Int(cd[6] ?? 0))
        guard m > 0 else { free(out); return 0 }
        free(input)
        buf.pointee = out
        bufSize.pointee = nbytes + BloscChunk.maxOverhead
        return m
    }
    guard let n = BloscChunk.declaredSize(src) else { return 0 }
    if cdNelmts > 3, let cd = cdValues, cd[3] > 0 {
        guard n == Int(cd[3]) else { return 0 }
    } else if n > 1 << 28 {
        return 0  // no chunk size to compare with: a damaged header's size is not trusted past 256 MiB
    }
    guard let out = malloc(max(n, 1)) else { return 0 }
    do {
        try BloscChunk.decode(src, into: UnsafeMutableRawBufferPointer(start: out, count: n))
    } catch {
        free(out)
        return 0
    }
    free(input)
    buf.pointee = out
    bufSize.pointee = max(n, 1)
    return n
}

/// HDF5 filter callback for bitshuffle(-LZ4), both directions; buffers are malloc'ed as HDF5
/// expects. A chunk's declared size is checked before anything is allocated.
private let bitshuffleFilterCallback: H5Z_func_t = { flags, cdNelmts, cdValues, nbytes, bufSize, buf in
    guard let buf, let bufSize, let input = buf.pointee, cdNelmts >= 3, let cd = cdValues else { return 0 }
    let e = Int(cd[2])
    let block = cdNelmts > 3 ? Int(cd[3]) : 0
    let codec: BitshuffleLZ4.BlockCodec?  // nil: bitshuffle alone
    do { codec = try HDF5.bitshuffleCodec(cdValues: (0..<min(Int(cdNelmts), 6)).map { cd[$0] }) } catch { return 0 }
    guard e > 0 else { return 0 }
    let src = UnsafeRawBufferPointer(start: input, count: nbytes)
    var outSize: Int
    var capacity: Int
    if flags & emc_Z_FLAG_REVERSE() != 0 {
        if let codec {
            guard let h = BitshuffleLZ4.header(src), h.total < (1 << 34),
                  h.total <= UInt64(BitshuffleLZ4.maxDecodedBytes(encodedBytes: nbytes, codec: codec)) else { return 0 }
            outSize = Int(h.total)
        } else {
            outSize = nbytes
        }
        capacity = outSize
    } else {
        guard nbytes % e == 0 else { return 0 }
        capacity = codec.map { BitshuffleLZ4.compressBound(bytes: nbytes, elementSize: e, blockElements: block, codec: $0) } ?? nbytes
        outSize = nbytes
    }
    guard let out = malloc(max(capacity, 1)) else { return 0 }
    let dst = UnsafeMutableRawBufferPointer(start: out, count: capacity)
    do {
        if flags & emc_Z_FLAG_REVERSE() != 0 {
            if let codec { try BitshuffleLZ4.decode(src, elementSize: e, codec: codec, into: dst) }
            else { try BitshuffleLZ4.unshuffleOnly(src, elementSize: e, blockElements: block, into: dst) }
        } else if let codec {
            outSize = try BitshuffleLZ4.encode(src, elementSize: e, blockElements: block, codec: codec, into: out, capacity: capacity)
        } else {
            let b = block > 0 ? block : BitshuffleLZ4.defaultBlockElements(elementSize: e)
            let n = nbytes / e
            var i = 0
            while i + 8 <= n {
                let m = min(b, (n - i) / 8 * 8)
                BitshuffleLZ4.bitshuffle(input + i * e, into: out + i * e, elements: m, elementSize: e)
                i += m
            }
            if i < n { (out + i * e).copyMemory(from: input + i * e, byteCount: (n - i) * e) }
        }
    } catch {
        free(out)
        return 0
    }
    free(input)
    buf.pointee = out
    bufSize.pointee = capacity
    return outSize
}

/// Where one chunk lives in the file.
public struct HDF5ChunkLocation: Sendable, Equatable {
    public var address: UInt64
    public var size: Int
    /// Bit i set: filter i of the pipeline was skipped for this chunk.
    public var filterMask: UInt32
}

extension HDF5Dataset {
    /// The filter pipeline with each filter's `cd_values`, in the order applied on writing.
    public var filterPipeline: [(id: Int, cdValues: [UInt32])] {
        let p = H5ID(H5Dget_create_plist(id), .plist)
        let n = H5Pget_nfilters(p.id)
        guard n > 0 else { return [] }
        var out: [(Int, [UInt32])] = []
        for i in 0..<n {
            var flags: UInt32 = 0
            var nelm: Int = 16
            var cd = [UInt32](repeating: 0, count: 16)
            var name = [CChar](repeating: 0, count: 64)
            var conf: UInt32 = 0
            let f = H5Pget_filter2(p.id, UInt32(i), &flags, &nelm, &cd, 64, &name, &conf)
            out.append((Int(f), Array(cd.prefix(min(nelm, 16)))))
        }
        return out
    }

    /// The stored chunk whose first element is `offset`, or nil when it was never written.
    public func chunkLocation(at offset: [Int]) -> HDF5ChunkLocation? {
        var off = offset.map { hsize_t($0) }
        var mask: UInt32 = 0
        var addr: haddr_t = 0
        var size: hsize_t = 0
        guard H5Dget_chunk_info_by_coord(id, &off, &mask, &addr, &size) >= 0, addr != haddr_t.max, size > 0 else { return nil }
        return HDF5ChunkLocation(address: UInt64(addr), size: Int(size), filterMask: mask)
    }

    /// Stored (filtered) size of the chunk whose first element is `offset`; nil when it was never
    /// written. A B-tree lookup (HDF5 1.10's `H5Dget_chunk_info_by_coord` scans every chunk).
    public func chunkStorageSize(at offset: [Int]) -> Int? {
        var off = offset.map { hsize_t($0) }
        var size: hsize_t = 0
        guard H5Dget_chunk_storage_size(id, &off, &size) >= 0, size > 0 else { return nil }
        return Int(size)
    }

    /// Reads the stored bytes of the chunk at `offset` into `buffer` (exactly its storage size);
    /// returns the chunk's filter mask.
    public func readRawChunk(at offset: [Int], into buffer: UnsafeMutableRawBufferPointer) throws -> UInt32 {
        var off = offset.map { hsize_t($0) }
        var mask: UInt32 = 0
        guard H5Dread_chunk(id, hid_t(H5P_DEFAULT), &off, &mask, buffer.baseAddress) >= 0 else {
            throw EMError(.badInput, file: filePath, at: "\(path) chunk at \(offset)", "HDF5 could not read the stored chunk")
        }
        return mask
    }

    /// The whole dataset in native order of `type` (small arrays: masks, tables), at most `maxBytes`.
    public func readAll(as type: ElementType, maxBytes: Int = 1 << 28) throws -> [UInt8] {
        let s = shape
        let n = s.reduce(1, *) * type.size
        guard n <= maxBytes else { throw EMError(.badInput, file: filePath, at: path, "\(n) bytes is too large for a detector table") }
        var out = [UInt8](repeating: 0, count: max(n, 1))
        try out.withUnsafeMutableBytes { try read(start: s.map { _ in 0 }, count: s, as: type, into: $0) }
        return Array(out.prefix(n))
    }
}

extension HDF5Group {
    /// The target (file name as stored, object path) of the external link `name`, or nil when
    /// `name` is not an external link.
    public func externalLink(_ name: String) -> (file: String, object: String)? {
        var info = H5L_info_t()
        guard H5Lget_info(id, name, &info, hid_t(H5P_DEFAULT)) >= 0, info.type == H5L_TYPE_EXTERNAL else { return nil }
        let size = info.u.val_size
        guard size > 0, size < 1 << 16 else { return nil }
        var buf = [UInt8](repeating: 0, count: size)
        guard H5Lget_val(id, name, &buf, size, hid_t(H5P_DEFAULT)) >= 0 else { return nil }
        var flags: UInt32 = 0
        var file: UnsafePointer<CChar>?
        var object: UnsafePointer<CChar>?
        guard H5Lunpack_elink_val(&buf, size, &flags, &file, &object) >= 0, let file, let object else { return nil }
        return (String(cString: file), String(cString: object))
    }

    /// A contiguous numeric dataset of `type` from native-order bytes (auxiliary detector arrays).
    @discardableResult
    public func writeArray(_ name: String, type: ElementType, shape: [Int], bytes: [UInt8]) throws -> HDF5Dataset {
        guard bytes.count == shape.reduce(1, *) * type.size else { throw fail("write \(name): \(bytes.count) bytes for shape \(shape)") }
        let ft = h5Type(type)
        var dims = shape.map { hsize_t($0) }
        let s = shape.isEmpty ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(Int32(dims.count), &dims, nil), .dataspace)
        let d = withExtendedLifetime(untrackedDCPL()) { H5Dcreate2(id, name, ft.id, s.id, hid_t(H5P_DEFAULT), $0.id, hid_t(H5P_DEFAULT)) }
        guard d >= 0 else { throw fail("create dataset \(name)") }
        let ds = HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
        let mt = ds.memType(type)
        try bytes.withUnsafeBytes {
            try check(H5Dwrite(d, mt.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0.baseAddress), "write \(name)")
        }
        return ds
    }
}
