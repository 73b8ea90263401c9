import EMCore
import Foundation
import CHDF5

// Read-only inspection helpers for `emconv validate` (types, enum members, filter
// availability, chunk decoding).

extension HDF5Dataset {
    /// Names of the members of an enum type (h5py/NeXus booleans: FALSE, TRUE), else nil.
    public var enumMemberNames: [String]? {
        let t = H5ID(H5Dget_type(id), .datatype)
        guard H5Tget_class(t.id) == H5T_ENUM else { return nil }
        let n = H5Tget_nmembers(t.id)
        guard n >= 0, n < 1024 else { return nil }
        var out: [String] = []
        for i in 0..<UInt32(n) {
            guard let c = H5Tget_member_name(t.id, i) else { return nil }
            out.append(String(cString: c))
            H5free_memory(c)
        }
        return out
    }

    /// Filter ids of the pipeline that this HDF5 library cannot apply.
    public var unavailableFilters: [Int] {
        filters.filter { H5Zfilter_avail(H5Z_filter_t($0)) <= 0 }
    }

    public var isFixedLengthString: Bool {
        let i = typeInfo
        return i.cls == H5T_STRING && !i.isVariableString
    }

    /// Reads the first chunk (or the whole dataset when contiguous, up to 64 MiB) with the
    /// file's own type: whether the filter pipeline decodes.
    public func firstChunkDecodes() -> Bool {
        let shp = shape
        guard !shp.isEmpty, !shp.contains(0) else { return true }
        let chunk = chunkShape ?? shp
        let count = zip(chunk, shp).map { min($0, $1) }
        let t = H5ID(H5Dget_type(id), .datatype)
        let ts = H5Tget_size(t.id)
        // Variable-length data would need reclaiming; their decoding is covered by reading metadata.
        if H5Tget_class(t.id) == H5T_STRING && H5Tis_variable_str(t.id) > 0 { return true }
        if H5Tget_class(t.id) == H5T_VLEN { return true }
        // Nor compounds or arrays holding them: libhdf5 would allocate what their lengths declare.
        if H5Tdetect_class(t.id, H5T_VLEN) > 0 || (H5Tget_class(t.id) != H5T_STRING && H5Tdetect_class(t.id, H5T_STRING) > 0) { return true }
        let bytes = count.reduce(1, *) * ts
        guard bytes <= 64 << 20 else { return true }
        var buf = [UInt8](repeating: 0, count: max(1, bytes))
        let fs = H5ID(H5Dget_space(id), .dataspace)
        var st = [hsize_t](repeating: 0, count: shp.count)
        var ct = count.map { hsize_t($0) }
        guard H5Sselect_hyperslab(fs.id, H5S_SELECT_SET, &st, nil, &ct, nil) >= 0 else { return false }
        let ms = H5ID(H5Screate_simple(Int32(ct.count), &ct, nil), .dataspace)
        return H5Dread(id, t.id, ms.id, fs.id, hid_t(H5P_DEFAULT), &buf) >= 0
    }
}

extension HDF5Group {
    /// `(name, isGroup)` of every child, skipping dangling links.
    public var children: [(String, Bool)] {
        childNames.compactMap { n in
            guard let t = objectType(n) else { return nil }
            return (n, t == H5O_TYPE_GROUP)
        }
    }
}

/// Test and repair helpers: open an existing file for writing (used by the validation tests
/// to mutate a valid file).
public enum HDF5Edit {
    /// Runs `body` with the root group of `path` opened read-write.
    public static func update(_ path: String, _ body: (HDF5Group) throws -> Void) throws {
        HDF5.initialize()
        let fid = H5Fopen(path, emc_F_ACC_RDWR(), hid_t(H5P_DEFAULT))
        guard fid >= 0 else { throw EMError(.writeError, file: path, "HDF5 cannot open the file for writing") }
        let file = H5ID(fid, .file)
        try withExtendedLifetime(file) {
            let g = H5Gopen2(fid, "/", hid_t(H5P_DEFAULT))
            let root = HDF5Group(H5ID(g, .group), path: "/", filePath: path)
            try body(root)
            H5Fflush(fid, H5F_SCOPE_GLOBAL)
        }
    }
}

extension HDF5Node {
    public func deleteAttribute(_ name: String) {
        if H5Aexists(id, name) > 0 { H5Adelete(id, name) }
    }

    /// A signed 64-bit integer array attribute (tests: wrong-typed `AXISNAME_indices`).
    public func setAttribute(_ name: String, signed values: [Int64]) throws {
        deleteAttribute(name)
        var dims = [hsize_t(values.count)]
        let s = values.count == 1 ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(1, &dims, nil), .dataspace)
        let a = H5ID(H5Acreate2(id, name, emc_T_STD_I64LE(), s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { throw fail("create attribute \(name)") }
        try values.withUnsafeBytes { try check(H5Awrite(a.id, emc_T_NATIVE_INT64(), $0.baseAddress), "write attribute \(name)") }
    }
}

extension HDF5Group {
    /// Removes a link (tests).
    public func deleteLink(_ name: String) {
        if exists(name) { H5Ldelete(id, name, hid_t(H5P_DEFAULT)) }
    }

    /// A scalar fixed-length string dataset (tests: fixed-length date strings).
    @discardableResult
    public func writeFixedString(_ name: String, _ value: String) throws -> HDF5Dataset {
        let bytes = Array(value.utf8)
        let t = H5ID(H5Tcopy(emc_T_C_S1()), .datatype)
        H5Tset_size(t.id, max(1, bytes.count + 1))
        H5Tset_strpad(t.id, H5T_STR_NULLTERM)
        let s = H5ID(H5Screate(H5S_SCALAR), .dataspace)
        let d = H5Dcreate2(id, name, t.id, s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        guard d >= 0 else { throw fail("create dataset \(name)") }
        var buf = bytes + [0]
        try check(H5Dwrite(d, t.id, hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), &buf), "write \(name)")
        return HDF5Dataset(H5ID(d, .dataset), path: childPath(name), filePath: filePath)
    }
}
