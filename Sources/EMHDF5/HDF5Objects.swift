import EMCore
import Foundation
import CHDF5

/// Common behaviour of groups and datasets: attributes.
public class HDF5Node {
    let handle: H5ID
    public let path: String
    public let filePath: String
    /// What this object's file may point at (set on files opened for reading; see ``HDF5Guard``).
    var inputGuard: HDF5Guard?

    public init(_ handle: H5ID, path: String, filePath: String) {
        self.handle = handle
        self.path = path
        self.filePath = filePath
    }

    public var id: hid_t { handle.id }

    public func fail(_ what: String) -> EMError {
        EMError(.writeError, file: filePath, at: path, "HDF5 could not \(what)")
    }

    public func check(_ r: herr_t, _ what: String) throws {
        if r < 0 { throw fail(what) }
    }

    private func replaceAttribute(_ name: String) {
        if H5Aexists(id, name) > 0 { H5Adelete(id, name) }
    }

    /// Scalar variable-length UTF-8 string attribute.
    public func setAttribute(_ name: String, _ value: String) throws {
        replaceAttribute(name)
        let t = vlenStringType()
        let s = H5ID(H5Screate(H5S_SCALAR), .dataspace)
        let a = H5ID(H5Acreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { throw fail("create attribute \(name)") }
        try value.withCString { p in
            var ptr: UnsafePointer<CChar>? = p
            try check(H5Awrite(a.id, t.id, &ptr), "write attribute \(name)")
        }
    }

    /// 1-D array of variable-length UTF-8 strings.
    public func setAttribute(_ name: String, _ values: [String]) throws {
        replaceAttribute(name)
        let t = vlenStringType()
        var dims = [hsize_t(values.count)]
        let s = H5ID(H5Screate_simple(1, &dims, nil), .dataspace)
        let a = H5ID(H5Acreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { throw fail("create attribute \(name)") }
        let cstrs = values.map { strdup($0) }
        defer { cstrs.forEach { free($0) } }
        var ptrs: [UnsafePointer<CChar>?] = cstrs.map { UnsafePointer($0) }
        try check(H5Awrite(a.id, t.id, &ptrs), "write attribute \(name)")
    }

    private func numericAttribute<T>(_ name: String, _ values: [T], fileType: hid_t, memType: hid_t, scalar: Bool) throws {
        replaceAttribute(name)
        var dims = [hsize_t(values.count)]
        let s = scalar ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(1, &dims, nil), .dataspace)
        let a = H5ID(H5Acreate2(id, name, fileType, s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { throw fail("create attribute \(name)") }
        try values.withUnsafeBytes { try check(H5Awrite(a.id, memType, $0.baseAddress), "write attribute \(name)") }
    }

    public func setAttribute(_ name: String, _ value: Int64) throws {
        try numericAttribute(name, [value], fileType: emc_T_STD_I64LE(), memType: emc_T_NATIVE_INT64(), scalar: true)
    }

    public func setAttribute(_ name: String, _ value: Double) throws {
        try numericAttribute(name, [value], fileType: emc_T_IEEE_F64LE(), memType: emc_T_NATIVE_DOUBLE(), scalar: true)
    }

    /// Unsigned integer attribute (`AXISNAME_indices`): scalar for one value, else an array.
    public func setAttribute(_ name: String, unsigned values: [UInt32]) throws {
        try numericAttribute(name, values, fileType: emc_T_STD_U32LE(), memType: emc_T_NATIVE_UINT32(), scalar: values.count == 1)
    }

    // MARK: Reading

    public func hasAttribute(_ name: String) -> Bool { H5Aexists(id, name) > 0 }

    /// Reads a string attribute (variable or fixed length, scalar or first element of an array).
    public func stringAttribute(_ name: String) -> String? { stringArrayAttribute(name)?.first }

    /// Reads a string or string-array attribute (variable or fixed length, ASCII or UTF-8).
    public func stringArrayAttribute(_ name: String) -> [String]? { attributeStrings(name) }

    /// Reads a numeric attribute as doubles.
    public func numericAttribute(_ name: String) -> [Double]? {
        guard H5Aexists(id, name) > 0 else { return nil }
        let a = H5ID(H5Aopen(id, name, hid_t(H5P_DEFAULT)), .attribute)
        let ft = H5ID(H5Aget_type(a.id), .datatype)
        let cls = H5Tget_class(ft.id)
        guard cls == H5T_INTEGER || cls == H5T_FLOAT else { return nil }
        let sp = H5ID(H5Aget_space(a.id), .dataspace)
        let n = max(1, Int(H5Sget_simple_extent_npoints(sp.id)))
        guard checkAttributeRead(name, elements: n, elementSize: max(8, H5Tget_size(ft.id))) else { return nil }
        var out = [Double](repeating: 0, count: n)
        guard H5Aread(a.id, emc_T_NATIVE_DOUBLE(), &out) >= 0 else { return nil }
        return out
    }

    /// HDF5 class and size of an attribute's type (for validation: integer vs string, signedness).
    public func attributeTypeInfo(_ name: String) -> (cls: H5T_class_t, size: Int, signed: Bool)? {
        guard H5Aexists(id, name) > 0 else { return nil }
        let a = H5ID(H5Aopen(id, name, hid_t(H5P_DEFAULT)), .attribute)
        let ft = H5ID(H5Aget_type(a.id), .datatype)
        let cls = H5Tget_class(ft.id)
        return (cls, H5Tget_size(ft.id), cls == H5T_INTEGER ? H5Tget_sign(ft.id) == H5T_SGN_2 : false)
    }

    public var attributeNames: [String] {
        var info = H5O_info_t()
        guard H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)) >= 0 else { return [] }
        var names: [String] = []
        for i in 0..<info.num_attrs {
            let len = H5Aget_name_by_idx(id, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            var ok = len >= 0
            var idxType = H5_INDEX_CRT_ORDER
            var l = len
            if !ok {
                idxType = H5_INDEX_NAME
                l = H5Aget_name_by_idx(id, ".", idxType, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
                ok = l >= 0
            }
            guard ok, l < 1 << 16 else { continue }
            var buf = [CChar](repeating: 0, count: Int(l) + 1)
            H5Aget_name_by_idx(id, ".", idxType, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
            names.append(String(cString: buf))
        }
        return names
    }
}

/// An HDF5 file: created for writing (exclusive or truncating) or opened read-only.
public final class HDF5File {
    let handle: H5ID
    public let path: String
    public let root: HDF5Group
    /// The guard of a file opened for reading (nil for files emconv writes).
    public let inputGuard: HDF5Guard?

    /// Creates a new file. Fails if it exists unless `truncate`.
    public init(creating path: String, truncate: Bool = false) throws {
        HDF5.initialize()
        let fapl = H5ID(H5Pcreate(emc_P_FILE_ACCESS()), .plist)
        // Earliest format: readable by every HDF5 1.8+ (Debian's 1.10, h5py, MATLAB).
        H5Pset_libver_bounds(fapl.id, emc_F_LIBVER_EARLIEST(), emc_F_LIBVER_V18())
        let id = H5Fcreate(path, truncate ? emc_F_ACC_TRUNC() : emc_F_ACC_EXCL(), hid_t(H5P_DEFAULT), fapl.id)
        guard id >= 0 else {
            var hint = ""
            let dir = (path as NSString).deletingLastPathComponent
            if access(dir.isEmpty ? "." : dir, W_OK) == 0, ProcessInfo.processInfo.environment["HDF5_USE_FILE_LOCKING"] == nil {
                hint = " (if this is a shared filesystem such as NFS or Lustre, HDF5 file locking may be failing: set HDF5_USE_FILE_LOCKING=FALSE)"
            }
            throw EMError(.writeError, file: path, "cannot create HDF5 file\(hint)")
        }
        handle = H5ID(id, .file)
        self.path = path
        let g = H5Gopen2(id, "/", hid_t(H5P_DEFAULT))
        root = HDF5Group(H5ID(g, .group), path: "/", filePath: path)
        inputGuard = nil
    }

    /// Opens an existing file read-only, guarded (see ``HDF5Guard``): what it may point at is
    /// checked on every open, and ``guarded(_:)`` reports a refusal. With `skipEOFCheck`, a file
    /// shorter than its superblock says (an interrupted acquisition) opens too; objects past its
    /// end fail when read.
    public convenience init(reading path: String, skipEOFCheck: Bool = false) throws {
        HDF5.initialize()
        try self.init(reading: path, guard: HDF5Guard(input: path), skipEOFCheck: skipEOFCheck)
    }

    init(reading path: String, guard inputGuard: HDF5Guard, skipEOFCheck: Bool = false) throws {
        HDF5.initialize()
        guard FileManager.default.fileExists(atPath: path) else { throw EMError(.missingInput, file: path, "no such file") }
        guard H5Fis_hdf5(path) > 0 else { throw EMError(.badInput, file: path, "not an HDF5 file") }
        let fapl = H5ID(H5Pcreate(emc_P_FILE_ACCESS()), .plist)
        if skipEOFCheck { HDF5.allowTruncated(fapl.id) }
        let id = H5Fopen(path, emc_F_ACC_RDONLY(), fapl.id)
        guard id >= 0 else { throw EMError(.badInput, file: path, "HDF5 cannot open this file (damaged or written by a newer HDF5)") }
        handle = H5ID(id, .file)
        self.path = path
        let g = H5Gopen2(id, "/", hid_t(H5P_DEFAULT))
        root = HDF5Group(H5ID(g, .group), path: "/", filePath: path)
        root.inputGuard = inputGuard
        self.inputGuard = inputGuard
        if !root.linksReadable(), let e = inputGuard.refusal { throw e }
    }

    public func flush() throws {
        if H5Fflush(handle.id, H5F_SCOPE_GLOBAL) < 0 { throw EMError(.writeError, file: path, "HDF5 flush failed") }
    }
}

/// An HDF5 group.
public final class HDF5Group: HDF5Node {
    public func childPath(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    /// Creates a subgroup, with `NX_class` when given.
    @discardableResult
    public func createGroup(_ name: String, nxClass: String? = nil) throws -> HDF5Group {
        let lcpl = H5ID(H5Pcreate(emc_P_LINK_CREATE()), .plist)
        H5Pset_create_intermediate_group(lcpl.id, 1)
        let gcpl = H5ID(H5Pcreate(emc_P_GROUP_CREATE()), .plist)
        H5Pset_obj_track_times(gcpl.id, false)
        let g = H5Gcreate2(id, name, lcpl.id, gcpl.id, hid_t(H5P_DEFAULT))
        guard g >= 0 else { throw fail("create group \(name)") }
        let group = HDF5Group(H5ID(g, .group), path: childPath(name), filePath: filePath)
        if let nxClass { try group.setAttribute("NX_class", nxClass) }
        return group
    }

    /// The link access list of reads (guarded) or the default.
    var lapl: hid_t { inputGuard?.lapl.id ?? hid_t(H5P_DEFAULT) }

    public func openGroup(_ name: String) -> HDF5Group? {
        guard exists(name), objectType(name) == H5O_TYPE_GROUP else { return nil }
        let g = H5Gopen2(id, name, lapl)
        guard g >= 0 else { return nil }
        let group = HDF5Group(H5ID(g, .group), path: childPath(name), filePath: filePath)
        group.inputGuard = inputGuard
        return group
    }

    public func openDataset(_ name: String) -> HDF5Dataset? {
        guard exists(name), objectType(name) == H5O_TYPE_DATASET else { return nil }
        if let inputGuard { return inputGuard.openDataset(in: self, name) }
        let d = H5Dopen2(id, name, hid_t(H5P_DEFAULT))
        return d >= 0 ? HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath) : nil
    }

    /// Whether a link (possibly a path with '/') exists. On files opened for reading, the local
    /// heap of each group on the way is checked before HDF5 looks a name up in it.
    public func exists(_ name: String) -> Bool {
        guard linksReadable() else { return false }
        var cur = ""
        for part in name.split(separator: "/") {
            if !cur.isEmpty, !linksReadable(at: cur) { return false }
            cur += (cur.isEmpty ? "" : "/") + part
            if H5Lexists(id, cur, lapl) <= 0 { return false }
        }
        return true
    }

    public func objectType(_ name: String) -> H5O_type_t? {
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(id, name, &info, UInt32(H5O_INFO_BASIC), lapl) >= 0 else { return nil }
        return info.type
    }

    /// Names of the direct children, in creation (or name) order.
    public var childNames: [String] {
        var names: [String] = []
        guard linksReadable() else { return [] }
        var info = H5G_info_t()
        guard H5Gget_info(id, &info) >= 0 else { return [] }
        for i in 0..<info.nlinks {
            var idx = H5_INDEX_CRT_ORDER
            var l = H5Lget_name_by_idx(id, ".", idx, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            if l < 0 {
                idx = H5_INDEX_NAME
                l = H5Lget_name_by_idx(id, ".", idx, H5_ITER_INC, i, nil, 0, hid_t(H5P_DEFAULT))
            }
            guard l >= 0, l < 1 << 16 else { continue }
            var buf = [CChar](repeating: 0, count: Int(l) + 1)
            H5Lget_name_by_idx(id, ".", idx, H5_ITER_INC, i, &buf, buf.count, hid_t(H5P_DEFAULT))
            names.append(String(cString: buf))
        }
        return names
    }

    /// Scalar variable-length UTF-8 string dataset.
    @discardableResult
    public func writeString(_ name: String, _ value: String, attributes: [String: String] = [:]) throws -> HDF5Dataset {
        let t = vlenStringType()
        let s = H5ID(H5Screate(H5S_SCALAR), .dataspace)
        let d = withExtendedLifetime(untrackedDCPL()) { H5Dcreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), $0.id, hid_t(H5P_DEFAULT)) }
        guard d >= 0 else { throw fail("create dataset \(name)") }
        let ds = HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
        try value.withCString { p in
            var ptr: UnsafePointer<CChar>? = p
            try check(H5Dwrite(d, t.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &ptr), "write \(name)")
        }
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try ds.setAttribute(k, v) }
        return ds
    }

    /// Numeric dataset (scalar when `shape` is empty), float64 or int64, with optional units.
    @discardableResult
    public func writeDoubles(_ name: String, _ values: [Double], shape: [Int]? = nil, units: String? = nil) throws -> HDF5Dataset {
        let ds = try writeNumeric(name, values, shape: shape ?? [values.count], fileType: emc_T_IEEE_F64LE(), memType: emc_T_NATIVE_DOUBLE())
        if let units { try ds.setAttribute("units", units) }
        return ds
    }

    @discardableResult
    public func writeInts(_ name: String, _ values: [Int64], shape: [Int]? = nil, units: String? = nil) throws -> HDF5Dataset {
        let ds = try writeNumeric(name, values, shape: shape ?? [values.count], fileType: emc_T_STD_I64LE(), memType: emc_T_NATIVE_INT64())
        if let units { try ds.setAttribute("units", units) }
        return ds
    }

    @discardableResult
    public func writeBool(_ name: String, _ value: Bool) throws -> HDF5Dataset {
        let t = boolEnumType()
        let s = H5ID(H5Screate(H5S_SCALAR), .dataspace)
        let d = withExtendedLifetime(untrackedDCPL()) { H5Dcreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), $0.id, hid_t(H5P_DEFAULT)) }
        guard d >= 0 else { throw fail("create dataset \(name)") }
        var v: Int8 = value ? 1 : 0
        try check(H5Dwrite(d, t.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &v), "write \(name)")
        return HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
    }

    private func writeNumeric<T>(_ name: String, _ values: [T], shape: [Int], fileType: hid_t, memType: hid_t) throws -> HDF5Dataset {
        var dims = shape.map { hsize_t($0) }
        let s = shape.isEmpty ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(Int32(dims.count), &dims, nil), .dataspace)
        let d = withExtendedLifetime(untrackedDCPL()) { H5Dcreate2(id, name, fileType, s.id, hid_t(H5P_DEFAULT), $0.id, hid_t(H5P_DEFAULT)) }
        guard d >= 0 else { throw fail("create dataset \(name)") }
        try values.withUnsafeBytes {
            try check(H5Dwrite(d, memType, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0.baseAddress), "write \(name)")
        }
        return HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
    }

    /// Creates a chunked dataset whose chunks emconv compresses itself and writes with
    /// `H5Dwrite_chunk`. The filter pipeline declared here tells readers how to decode.
    public func createChunkedDataset(_ name: String, type: ElementType, shape: [Int], chunk: [Int],
                                     compression: Compression, shuffle: Bool) throws -> HDF5Dataset {
        guard !shape.isEmpty else {
            throw EMError(.unsupported, file: filePath, at: childPath(name),
                          "a single value (a dataset of 0 dimensions) cannot be stored in chunks; zspy output holds it")
        }
        let ft = h5Type(type)
        var dims = shape.map { hsize_t($0) }
        var cdims = chunk.map { hsize_t($0) }
        let s = H5ID(H5Screate_simple(Int32(dims.count), &dims, nil), .dataspace)
        let dcpl = H5ID(H5Pcreate(emc_P_DATASET_CREATE()), .plist)
        try check(H5Pset_chunk(dcpl.id, Int32(cdims.count), &cdims), "set chunk shape of \(name)")
        // Chunks are allocated when written; never pre-filled (saves a full pass on 100 GB).
        H5Pset_fill_time(dcpl.id, H5D_FILL_TIME_NEVER)
        H5Pset_obj_track_times(dcpl.id, false)
        H5Pset_alloc_time(dcpl.id, H5D_ALLOC_TIME_INCR)
        switch compression {
        case .none: break
        case let .gzip(level):
            if shuffle { try check(H5Pset_shuffle(dcpl.id), "set shuffle on \(name)") }
            try check(H5Pset_deflate(dcpl.id, UInt32(level)), "set deflate on \(name)")
        case let .zstd(level):
            if shuffle { try check(H5Pset_shuffle(dcpl.id), "set shuffle on \(name)") }
            var cd: [UInt32] = [UInt32(level)]
            try check(H5Pset_filter(dcpl.id, HDF5.zstdFilterID, UInt32(emc_Z_FLAG_OPTIONAL()), 1, &cd), "set zstd on \(name)")
        case .bitshuffleLZ4, .bitshuffleZstd:
            var cd = HDF5.bitshuffleCDValues(elementSize: H5Tget_size(ft.id), codec: compression.bitshuffleCodec!)
            try check(H5Pset_filter(dcpl.id, HDF5.bitshuffleFilterID, UInt32(emc_Z_FLAG_OPTIONAL()), cd.count, &cd), "set \(compression) on \(name)")
        }
        let d = H5Dcreate2(id, name, ft.id, s.id, hid_t(H5P_DEFAULT), dcpl.id, hid_t(H5P_DEFAULT))
        guard d >= 0 else { throw fail("create dataset \(name)") }
        return HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
    }
}

/// Dataset creation properties without object time stamps: outputs of the same input are
/// byte-identical apart from the time stamps emconv itself writes (see `SOURCE_DATE_EPOCH`).
public func untrackedDCPL() -> H5ID {
    let p = H5ID(H5Pcreate(emc_P_DATASET_CREATE()), .plist)
    H5Pset_obj_track_times(p.id, false)
    return p
}

/// An HDF5 dataset.
public final class HDF5Dataset: HDF5Node {
    /// Chunk shape and bytes as declared (nil: not chunked), read once: every frame's read is
    /// checked (``checkRead``) and cut (``readPieces``) by them.
    lazy var declaredChunkShape: [Int]? = chunkShape
    lazy var declaredChunkBytes: Int? = chunkBytes
    /// Writes one already-filtered chunk at the chunk's element offset.
    public func writeChunk(offset: [Int], data: UnsafeRawBufferPointer, filterMask: UInt32 = 0) throws {
        var off = offset.map { hsize_t($0) }
        let r = H5Dwrite_chunk(id, hid_t(H5P_DEFAULT), filterMask, &off, data.count, data.baseAddress)
        if r < 0 { throw fail("write chunk at \(offset)") }
    }

    public var shape: [Int] {
        let sp = H5ID(H5Dget_space(id), .dataspace)
        let n = Int(H5Sget_simple_extent_ndims(sp.id))
        guard n > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: n)
        H5Sget_simple_extent_dims(sp.id, &dims, nil)
        return dims.map { Int($0) }
    }

    /// Chunk shape, or nil for contiguous/compact layout.
    public var chunkShape: [Int]? {
        let p = H5ID(H5Dget_create_plist(id), .plist)
        guard H5Pget_layout(p.id) == H5D_CHUNKED else { return nil }
        var dims = [hsize_t](repeating: 0, count: 32)
        let n = H5Pget_chunk(p.id, 32, &dims)
        return n > 0 ? dims.prefix(Int(n)).map { Int($0) } : nil
    }

    /// Filter ids of the pipeline (1 deflate, 2 shuffle, 32015 zstd, …).
    public var filters: [Int] {
        let p = H5ID(H5Dget_create_plist(id), .plist)
        let n = H5Pget_nfilters(p.id)
        guard n > 0 else { return [] }
        var out: [Int] = []
        for i in 0..<n {
            var flags: UInt32 = 0
            var nelm: Int = 8
            var cd = [UInt32](repeating: 0, count: 8)
            var name = [CChar](repeating: 0, count: 64)
            var conf: UInt32 = 0
            let f = H5Pget_filter2(p.id, UInt32(i), &flags, &nelm, &cd, 64, &name, &conf)
            out.append(Int(f))
        }
        return out
    }

    /// Element type class/size/sign, for validation and tests.
    public var typeInfo: (cls: H5T_class_t, size: Int, signed: Bool, isVariableString: Bool) {
        let t = H5ID(H5Dget_type(id), .datatype)
        let cls = H5Tget_class(t.id)
        return (cls, H5Tget_size(t.id), cls == H5T_INTEGER ? H5Tget_sign(t.id) == H5T_SGN_2 : false,
                cls == H5T_STRING ? H5Tis_variable_str(t.id) > 0 : false)
    }

    /// Maps the stored type back to an element type (integers, floats, bool enum, complex).
    public var elementType: ElementType? {
        let info = typeInfo
        switch info.cls {
        case H5T_INTEGER:
            switch (info.size, info.signed) {
            case (1, true): return .int8
            case (1, false): return .uint8
            case (2, true): return .int16
            case (2, false): return .uint16
            case (4, true): return .int32
            case (4, false): return .uint32
            case (8, true): return .int64
            case (8, false): return .uint64
            default: return nil
            }
        case H5T_FLOAT: return info.size == 4 ? .float32 : (info.size == 8 ? .float64 : nil)
        case H5T_ENUM: return info.size == 1 ? .bool : nil
        case H5T_COMPOUND:
            let t = H5ID(H5Dget_type(id), .datatype)
            let n = H5Tget_nmembers(t.id)
            if n == 2 { return info.size == 8 ? .complex64 : (info.size == 16 ? .complex128 : nil) }
            if n == 3, info.size == 3 { return .rgb8 }
            if n == 4, info.size == 4 { return .rgba8 }
            return nil
        default: return nil
        }
    }

    /// File and memory dataspaces for a hyperslab (`start`, `count` per dimension; empty: all of a scalar).
    func selection(start: [Int], count: [Int]) throws -> (file: H5ID, memory: H5ID) {
        let fs = H5ID(H5Dget_space(id), .dataspace)
        var st = start.map { hsize_t($0) }
        var ct = count.map { hsize_t($0) }
        if !start.isEmpty {
            try check(H5Sselect_hyperslab(fs.id, H5S_SELECT_SET, &st, nil, &ct, nil), "select hyperslab")
        }
        let ms = count.isEmpty ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(Int32(ct.count), &ct, nil), .dataspace)
        return (fs, ms)
    }

    /// Reads a hyperslab (`start`, `count` per dimension) in native order of `type`, in pieces
    /// of at most ``ChunkedPieces/limit`` chunks.
    public func read(start: [Int], count: [Int], as type: ElementType, into buffer: UnsafeMutableRawBufferPointer) throws {
        try checkRead(elements: count.reduce(1, *), elementSize: type.size, whole: false)
        defer { HDF5Guard.endRead() }
        let mt = memType(type)
        try readPieces(start: start, count: count, elementSize: type.size, into: buffer) { fs, ms, base in
            if H5Dread(id, mt.id, ms.id, fs.id, hid_t(H5P_DEFAULT), base) < 0 {
                throw EMError(.badInput, file: filePath, at: path, HDF5Guard.readFailure(readFailureReason))
            }
        }
    }

    /// Runs `read` (file and memory dataspaces, destination) on pieces of the hyperslab that
    /// touch at most ``ChunkedPieces/limit`` chunks each; refuses a hyperslab touching more than
    /// ``ChunkedPieces/refused``.
    func readPieces(start: [Int], count: [Int], elementSize: Int, into buffer: UnsafeMutableRawBufferPointer,
                    limit: Int = ChunkedPieces.limit, _ read: (H5ID, H5ID, UnsafeMutableRawPointer?) throws -> Void) throws {
        guard let chunk = declaredChunkShape, chunk.count == start.count, !start.isEmpty else {
            let (fs, ms) = try selection(start: start, count: count)
            try read(fs, ms, buffer.baseAddress)
            Watchdog.beat()
            return
        }
        let n = ChunkedPieces.touched(start: start, count: count, chunk: chunk)
        guard n <= ChunkedPieces.refused else {
            throw EMError(.badInput, file: filePath, at: path,
                          "chunks of \(chunk.map(String.init).joined(separator: " x ")) values: one read of \(count.map(String.init).joined(separator: " x ")) would touch \(n == Int.max ? "more than 2^63" : String(n)) chunks (emconv reads at most \(ChunkedPieces.refused) at a time); the chunk layout is damaged or unusable")
        }
        try ChunkedPieces.forEach(start: start, count: count, chunk: chunk, limit: limit) { s, c, first in
            let (fs, ms) = try selection(start: s, count: c)
            try read(fs, ms, buffer.baseAddress.map { $0 + first * elementSize })
            Watchdog.beat()
        }
    }

    /// Why a read failed, as far as the filter pipeline tells: a filter this emconv has no
    /// decoder for, by id and registered name, else a damaged or undecodable chunk.
    var readFailureReason: String {
        let missing = unavailableFilters
        guard !missing.isEmpty else { return "HDF5 could not read (a compression filter may be missing)" }
        let names = missing.map { id in HDF5.knownFilterNames[id].map { "\(id) (\($0))" } ?? "\(id)" }
        return "compressed with HDF5 filter \(names.joined(separator: ", ")), which emconv cannot decode"
    }

    /// Reads everything as doubles (small numeric datasets: axes, scalars).
    public func readDoubles() throws -> [Double] { try readAllDoubles() }

    /// Reads a scalar or 1-D string dataset (any string type).
    public func readStrings() -> [String]? { readStringValues() }

    func memType(_ t: ElementType) -> H5ID {
        switch t {
        case .int8: return H5ID(H5Tcopy(emc_T_NATIVE_INT8()), .datatype)
        case .uint8: return H5ID(H5Tcopy(emc_T_NATIVE_UINT8()), .datatype)
        case .int16: return H5ID(H5Tcopy(emc_T_NATIVE_INT16()), .datatype)
        case .uint16: return H5ID(H5Tcopy(emc_T_NATIVE_UINT16()), .datatype)
        case .int32: return H5ID(H5Tcopy(emc_T_NATIVE_INT32()), .datatype)
        case .uint32: return H5ID(H5Tcopy(emc_T_NATIVE_UINT32()), .datatype)
        case .int64: return H5ID(H5Tcopy(emc_T_NATIVE_INT64()), .datatype)
        case .uint64: return H5ID(H5Tcopy(emc_T_NATIVE_UINT64()), .datatype)
        case .float32: return H5ID(H5Tcopy(emc_T_NATIVE_FLOAT()), .datatype)
        case .float64: return H5ID(H5Tcopy(emc_T_NATIVE_DOUBLE()), .datatype)
        default: return h5Type(t)
        }
    }
}
