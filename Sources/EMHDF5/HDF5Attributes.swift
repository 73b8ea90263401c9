import CHDF5
import EMCore

extension HDF5Node {
    /// A boolean attribute as the HDF5 enum FALSE/TRUE over int8 (h5py reads `numpy.bool_`).
    public func setAttribute(_ name: String, bool value: Bool) throws {
        var v: Int8 = value ? 1 : 0
        let t = boolEnumType()
        try arrayAttribute(name, type: t.id, count: nil) { try check(H5Awrite($0, t.id, &v), "write attribute \(name)") }
    }

    /// A 1-D float64 array attribute (always an array, also for one value).
    public func setAttribute(_ name: String, doubles values: [Double]) throws {
        try arrayAttribute(name, type: emc_T_IEEE_F64LE(), count: values.count) { a in
            try values.withUnsafeBytes { try check(H5Awrite(a, emc_T_NATIVE_DOUBLE(), $0.baseAddress), "write attribute \(name)") }
        }
    }

    /// A 1-D int64 array attribute (always an array, also for one value).
    public func setAttribute(_ name: String, int64s values: [Int64]) throws {
        try arrayAttribute(name, type: emc_T_STD_I64LE(), count: values.count) { a in
            try values.withUnsafeBytes { try check(H5Awrite(a, emc_T_NATIVE_INT64(), $0.baseAddress), "write attribute \(name)") }
        }
    }

    private func arrayAttribute(_ name: String, type: hid_t, count: Int?, _ write: (hid_t) throws -> Void) throws {
        deleteAttribute(name)
        var dims = [hsize_t(count ?? 1)]
        let s = count == nil ? H5ID(H5Screate(H5S_SCALAR), .dataspace) : H5ID(H5Screate_simple(1, &dims, nil), .dataspace)
        let a = H5ID(H5Acreate2(id, name, type, s.id, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), .attribute)
        guard a.id >= 0 else { throw fail("create attribute \(name)") }
        try write(a.id)
    }
}
