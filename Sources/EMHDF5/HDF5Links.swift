import CHDF5
import EMCore

extension HDF5Group {
    /// Creates a soft link `name` in this group pointing at the absolute path `target`
    /// (the NeXus way to show one field in several groups without copying it).
    public func linkSoft(_ name: String, to target: String) throws {
        let r = H5Lcreate_soft(target, id, name, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        if r < 0 { throw fail("link \(name) to \(target)") }
    }

    /// Whether the child `name` is a soft link (not the object itself).
    public func isSoftLink(_ name: String) -> Bool {
        var info = H5L_info_t()
        guard H5Lget_info(id, name, &info, hid_t(H5P_DEFAULT)) >= 0 else { return false }
        return info.type == H5L_TYPE_SOFT
    }
}
