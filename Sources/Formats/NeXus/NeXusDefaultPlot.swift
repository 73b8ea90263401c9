import EMCore
import EMHDF5

/// The entry's plottable data for general NeXus readers: `/entry1/data`, an NXdata whose fields
/// are soft links to the first measured dataset, so the `@default` chain ends after one hop.
/// RosettaSciIO's `use_default=True` keeps only NXdata whose path contains `/<entry>/<default>`;
/// pointing the entry at a group outside `measurement` keeps the derived preview out of it.
enum NeXusDefaultPlot {
    static let groupName = "data"

    /// NXdata `@interpretation` (RosettaSciIO reads it from the NXdata group): the trailing one
    /// or two dimensions are the signal, the others navigate. nil when the frame is neither a
    /// spectrum nor a plain 2-D image (an RGB channel axis, a 3-D volume, a scalar per position).
    static func interpretation(_ ds: Dataset) -> String? {
        switch ds.frameRank {
        case 1: return "spectrum"
        case 2: return "image"
        default: return nil
        }
    }

    /// Links the signal, `imag` (complex data) and the axis fields of `nxdata` into `entry/data`.
    static func write(_ ds: Dataset, layout: NXLayout, nxdata: HDF5Group, into entry: HDF5Group) throws {
        let g = try entry.createGroup(groupName, nxClass: "NXdata")
        try g.setAttribute("signal", layout.signalName)
        try g.setAttribute("axes", layout.axisNames)
        if let i = interpretation(ds) { try g.setAttribute("interpretation", i) }
        // NeXus links: the linked field carries @target, its own absolute path (NeXus manual,
        // "Links"; pynxtools reports MissingTargetAttribute without it).
        func link(_ name: String) throws {
            let target = nxdata.childPath(name)
            guard let field = nxdata.openDataset(name) else { return }
            try field.setAttribute("target", target)
            try g.linkSoft(name, to: target)
        }
        try link(layout.signalName)
        try link("imag")
        for (i, name) in layout.axisNames.enumerated() {
            try g.setAttribute("\(name)_indices", unsigned: [UInt32(i)])
            try link(name)
        }
        if !ds.title.isEmpty { try g.writeString("title", ds.title) }
    }
}
