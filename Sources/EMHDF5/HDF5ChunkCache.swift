import CHDF5
import EMCore

extension HDF5Group {
    /// Opens `name` (admitted by the input guard like ``openDataset(_:)``) with a chunk cache of
    /// `bytes` (at most the memory budget), for readers whose frames span many chunks: reading
    /// frames in order then decompresses a chunk once while consecutive frames share it.
    public func openDataset(_ name: String, chunkCacheBytes bytes: Int) -> HDF5Dataset? {
        guard let admitted = openDataset(name), let guardian = inputGuard else { return openDataset(name) }
        let p = H5ID(H5Pcopy(guardian.dapl.id), .plist)
        H5Pset_chunk_cache(p.id, 10_007, max(1 << 20, min(bytes, MemoryBudget.maxAllocation)), 0.75)
        let id = H5Dopen2(self.id, name, p.id)
        guard id >= 0 else { return admitted }
        let ds = HDF5Dataset(H5ID(id, .dataset), path: childPath(name), filePath: filePath)
        ds.inputGuard = guardian
        return ds
    }
}
