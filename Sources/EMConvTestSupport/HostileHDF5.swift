import CHDF5
import EMConvKit
import Foundation

/// Hand-made HDF5 inputs that point outside themselves or declare more than they hold, in the
/// two layouts emconv reads as HDF5 (Berkeley EMD v0.2, NeXus NXdata). Written with the HDF5
/// C API, so the tests need no Python.
public enum HostileHDF5 {
    /// Where the signal's values come from.
    public enum Storage {
        /// Written in the file (4 x 16 uint8 values `payload`).
        case plain
        /// External raw storage: the values are read from `file` (offset 0).
        case externalRaw(file: String)
        /// The signal is an external link to `/payload` of `file` (as written in the link).
        case externalLink(file: String)
        /// The signal is a virtual dataset mapping all of `/payload` in `file`.
        case virtual(file: String)
    }

    public enum Layout { case berkeley, nexus }

    /// 64 recognisable bytes: the values of every signal (and of `payloadFile`).
    public static let payload: [UInt8] = Array("FOREIGN-PAYLOAD-".utf8) + (0..<48).map { UInt8(65 + $0 % 26) }
    public static let shape: [Int] = [4, 16]

    /// An HDF5 file holding `/payload` (4 x 16 uint8): the target of links and VDS mappings.
    public static func payloadFile(at path: String, storage: Storage = .plain) throws {
        let f = try create(path)
        defer { H5Fclose(f) }
        try dataset(f, "payload", storage: storage)
    }

    /// A Berkeley EMD or NeXus file whose signal is stored as `storage` says.
    public static func input(at path: String, layout: Layout, storage: Storage) throws {
        let f = try create(path)
        defer { H5Fclose(f) }
        switch layout {
        case .berkeley:
            intAttribute(f, "version_major", 0)
            intAttribute(f, "version_minor", 2)
            let data = group(f, "data")
            defer { H5Gclose(data) }
            let sig = group(data, "signal")
            defer { H5Gclose(sig) }
            intAttribute(sig, "emd_group_type", 1)
            try dataset(sig, "data", storage: storage)
        case .nexus:
            stringAttribute(f, "NX_class", "NXroot")
            stringAttribute(f, "default", "entry")
            let entry = group(f, "entry")
            defer { H5Gclose(entry) }
            stringAttribute(entry, "NX_class", "NXentry")
            stringAttribute(entry, "default", "data")
            let nx = group(entry, "data")
            defer { H5Gclose(nx) }
            stringAttribute(nx, "NX_class", "NXdata")
            stringAttribute(nx, "signal", "data")
            try dataset(nx, "data", storage: storage)
        }
    }

    /// A NeXus file (plain signal) whose NXdata `title` is a variable-length string whose on-disk
    /// length field says `length` bytes (the string itself is 5 bytes in the global heap).
    public static func nexusWithStringLength(at path: String, length: UInt32) throws {
        try input(at: path, layout: .nexus, storage: .plain)
        let f = H5Fopen(path, emc_F_ACC_RDWR(), hid_t(H5P_DEFAULT))
        guard f >= 0 else { throw EMError(.writeError, file: path, "cannot reopen") }
        let t = H5Tcopy(emc_T_C_S1())
        H5Tset_size(t, emc_T_VARIABLE())
        let s = H5Screate(H5S_SCALAR)
        let d = H5Dcreate2(f, "/entry/data/title", t, s, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        let text = strdup("hello")
        var p: UnsafePointer<CChar>? = UnsafePointer(text)
        H5Dwrite(d, t, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &p)
        free(text)
        let offset = H5Dget_offset(d)
        H5Dclose(d); H5Sclose(s); H5Tclose(t); H5Fclose(f)
        guard offset != UInt64.max, let fh = FileHandle(forUpdatingAtPath: path) else {
            throw EMError(.writeError, file: path, "the string has no contiguous storage")
        }
        defer { try? fh.close() }
        try fh.seek(toOffset: UInt64(offset))
        try fh.write(contentsOf: withUnsafeBytes(of: length.littleEndian) { Data($0) })
    }

    /// A NeXus file whose signal declares `shape` of uint16 in chunks of `chunk`, nothing stored
    /// (every value is the fill value).
    public static func unwrittenNeXus(at path: String, shape: [Int], chunk: [Int]) throws {
        try nexusWithChunk(at: path, shape: shape, chunk: chunk, maxShape: nil, deflatedZeroChunk: false, inflatedBytes: nil)
    }

    /// A NeXus file whose uint8 signal of `shape` (growable) is stored in one gzip chunk of
    /// `chunk` values, all zero: a small file that decompresses to chunk-product bytes, or to
    /// `inflatedBytes` (more than the chunk holds) when given.
    public static func zeroChunkBomb(at path: String, shape: [Int], chunk: [Int], inflatedBytes: Int? = nil) throws {
        try nexusWithChunk(at: path, shape: shape, chunk: chunk, maxShape: shape.map { _ in -1 }, deflatedZeroChunk: true,
                           inflatedBytes: inflatedBytes)
    }

    private static func nexusWithChunk(at path: String, shape: [Int], chunk: [Int], maxShape: [Int]?, deflatedZeroChunk: Bool,
                                       inflatedBytes: Int?) throws {
        let f = try create(path)
        defer { H5Fclose(f) }
        stringAttribute(f, "NX_class", "NXroot")
        stringAttribute(f, "default", "entry")
        let entry = group(f, "entry")
        defer { H5Gclose(entry) }
        stringAttribute(entry, "NX_class", "NXentry")
        stringAttribute(entry, "default", "data")
        let nx = group(entry, "data")
        defer { H5Gclose(nx) }
        stringAttribute(nx, "NX_class", "NXdata")
        stringAttribute(nx, "signal", "data")
        var dims = shape.map { hsize_t($0) }
        var maxd = (maxShape ?? shape).map { $0 < 0 ? emc_S_UNLIMITED() : hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, &maxd)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(emc_P_DATASET_CREATE())
        defer { H5Pclose(dcpl) }
        var c = chunk.map { hsize_t($0) }
        H5Pset_chunk(dcpl, Int32(c.count), &c)
        let type = deflatedZeroChunk ? emc_T_STD_U8LE() : emc_T_STD_U16LE()
        if deflatedZeroChunk { H5Pset_deflate(dcpl, 1) }
        let d = H5Dcreate2(nx, "data", type, space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
        guard d >= 0 else { throw EMError(.writeError, file: path, "cannot create the dataset") }
        defer { H5Dclose(d) }
        if deflatedZeroChunk {
            let z = zlibZeros(count: inflatedBytes ?? chunk.reduce(1, *))
            var off = chunk.map { _ in hsize_t(0) }
            guard z.withUnsafeBytes({ H5Dwrite_chunk(d, hid_t(H5P_DEFAULT), 0, &off, $0.count, $0.baseAddress) }) >= 0 else {
                throw EMError(.writeError, file: path, "cannot write the chunk")
            }
        }
    }

    /// A zlib stream of `count` zero bytes (a literal zero, then matches of 258 at distance 1,
    /// fixed Huffman codes): about 13 bits per 258 bytes.
    public static func zlibZeros(count: Int) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var acc: UInt64 = 0, nbits = 0
        func put(_ value: UInt64, _ n: Int) {            // LSB-first bit fields
            acc |= value << UInt64(nbits); nbits += n
            while nbits >= 8 { out.append(UInt8(acc & 0xFF)); acc >>= 8; nbits -= 8 }
        }
        func putCode(_ code: UInt64, _ n: Int) {         // Huffman codes are MSB-first
            var r: UInt64 = 0
            for i in 0..<n { r |= ((code >> UInt64(i)) & 1) << UInt64(n - 1 - i) }
            put(r, n)
        }
        put(1, 1); put(1, 2)                             // final block, fixed Huffman
        var left = count
        if left > 0 { putCode(0x30, 8); left -= 1 }      // literal 0
        while left >= 258 { putCode(0xC5, 8); putCode(0, 5); left -= 258 }   // length 258 (code 285), distance 1
        if left >= 3 { encodeLength(left, putCode, put); putCode(0, 5); left = 0 }
        while left > 0 { putCode(0x30, 8); left -= 1 } // trailing literals
        putCode(0, 7)                                    // end of block (code 256)
        if nbits > 0 { out.append(UInt8(acc & 0xFF)) }
        let a: UInt32 = 1, b = UInt32(count % 65521)     // Adler-32 of zeros
        let adler = (b << 16) | a
        out += [UInt8(adler >> 24), UInt8((adler >> 16) & 0xFF), UInt8((adler >> 8) & 0xFF), UInt8(adler & 0xFF)]
        return out
    }

    /// Length 3…257 with the fixed code table (codes 257…284 and their extra bits).
    private static func encodeLength(_ len: Int, _ putCode: (UInt64, Int) -> Void, _ put: (UInt64, Int) -> Void) {
        let base = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227]
        let extra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5]
        var i = base.count - 1
        while base[i] > len { i -= 1 }
        let sym = 257 + i
        if sym <= 279 { putCode(UInt64(sym - 256), 7) } else { putCode(UInt64(0xC0 + sym - 280), 8) }
        if extra[i] > 0 { put(UInt64(len - base[i]), extra[i]) }
    }

    // MARK: C API helpers

    private static func create(_ path: String) throws -> hid_t {
        HDF5.initialize()
        let f = H5Fcreate(path, emc_F_ACC_TRUNC(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        guard f >= 0 else { throw EMError(.writeError, file: path, "cannot create HDF5 file") }
        return f
    }

    private static func group(_ loc: hid_t, _ name: String) -> hid_t {
        H5Gcreate2(loc, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
    }

    private static func intAttribute(_ loc: hid_t, _ name: String, _ value: Int32) {
        let s = H5Screate(H5S_SCALAR)
        let a = H5Acreate2(loc, name, emc_T_STD_I32LE(), s, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        var v = value
        H5Awrite(a, emc_T_NATIVE_INT32(), &v)
        H5Aclose(a)
        H5Sclose(s)
    }

    private static func stringAttribute(_ loc: hid_t, _ name: String, _ value: String) {
        let t = H5Tcopy(emc_T_C_S1())
        H5Tset_size(t, max(1, value.utf8.count))
        let s = H5Screate(H5S_SCALAR)
        let a = H5Acreate2(loc, name, t, s, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        var bytes = Array(value.utf8)
        if bytes.isEmpty { bytes = [0] }
        H5Awrite(a, t, &bytes)
        H5Aclose(a)
        H5Sclose(s)
        H5Tclose(t)
    }

    private static func dataset(_ loc: hid_t, _ name: String, storage: Storage) throws {
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(2, &dims, nil)
        defer { H5Sclose(space) }
        switch storage {
        case .plain:
            let d = H5Dcreate2(loc, name, emc_T_STD_U8LE(), space, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
            var p = payload
            H5Dwrite(d, emc_T_NATIVE_UINT8(), hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &p)
            H5Dclose(d)
        case let .externalRaw(file):
            let dcpl = H5Pcreate(emc_P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            H5Pset_external(dcpl, file, 0, hsize_t(payload.count))
            let d = H5Dcreate2(loc, name, emc_T_STD_U8LE(), space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
            guard d >= 0 else { throw EMError(.writeError, file: file, "cannot create an externally stored dataset") }
            H5Dclose(d)
        case let .externalLink(file):
            guard H5Lcreate_external(file, "/payload", loc, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)) >= 0 else {
                throw EMError(.writeError, file: file, "cannot create the external link")
            }
        case let .virtual(file):
            let dcpl = H5Pcreate(emc_P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            let src = H5Screate_simple(2, &dims, nil)
            defer { H5Sclose(src) }
            H5Pset_virtual(dcpl, space, file, "/payload", src)
            let d = H5Dcreate2(loc, name, emc_T_STD_U8LE(), space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
            guard d >= 0 else { throw EMError(.writeError, file: file, "cannot create the virtual dataset") }
            H5Dclose(d)
        }
    }
}
