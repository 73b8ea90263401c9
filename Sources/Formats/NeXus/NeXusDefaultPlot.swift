import EMCore
import EMHDF5

/// HyperSpy's view of the measured data, kept out of NXem's validated tree.
///
/// RosettaSciIO splits navigation from signal only through the NXdata group attribute
/// `@interpretation`, which NXdata does not document (pynxtools reports it as undocumented in
/// its default mode). So each measured dataset gets a second NXdata, `entry1/hyperspy/<group>`,
/// inside an NXcollection (pynxtools checks nothing below one), whose fields are soft links to
/// the measured fields and which carries `@interpretation`. `entry1/data` is a soft link to the
/// first of them and the entry's `@default`: pynxtools does not report undocumented nodes reached
/// through a soft link, RosettaSciIO follows soft links to groups, and its `use_default=True`
/// keeps exactly the NXdata paths containing `/entry1/data`.
enum NeXusDefaultPlot {
    /// The entry's `@default`: a soft link to the first view.
    static let groupName = "data"
    /// The NXcollection holding one view per measured dataset.
    static let collectionName = "hyperspy"

    /// NXdata `@interpretation` (RosettaSciIO reads it from the NXdata group): the trailing one
    /// or two dimensions are the signal, the others navigate. nil when the frame is neither a
    /// spectrum nor a plain 2-D image (an RGB channel axis, a 3-D volume, a scalar per position).
    static func interpretation(_ ds: Dataset) -> String? {
        switch ds.frameRank {
        case 1: return "spectrum"
        case 2: return ds.elementType == .rgb8 || ds.elementType == .rgba8 ? nil : "image"
        default: return nil
        }
    }

    /// One measured dataset: its model, layout, NXdata and the name of its NXimage/NXspectrum.
    struct Measured {
        var ds: Dataset
        var layout: NXLayout
        var nxdata: HDF5Group
        var name: String
    }

    /// Writes `entry/hyperspy/<name>` for every measured dataset and `entry/data` linking the first.
    static func write(_ measured: [Measured], into entry: HDF5Group) throws {
        guard let first = measured.first else { return }
        let collection = try entry.createGroup(collectionName, nxClass: "NXcollection")
        for m in measured { try writeView(m, into: collection) }
        // A linked group carries @target too (pynxtools: MissingTargetAttribute).
        let target = collection.childPath(first.name)
        try collection.openGroup(first.name)?.setAttribute("target", target)
        try entry.linkSoft(groupName, to: target)
    }

    static func writeView(_ m: Measured, into collection: HDF5Group) throws {
        let g = try collection.createGroup(m.name, nxClass: "NXdata")
        try g.setAttribute("signal", m.layout.signalName)
        try g.setAttribute("axes", m.layout.axisNames)
        if let i = interpretation(m.ds) { try g.setAttribute("interpretation", i) }
        // NeXus links: the linked field carries @target, its own absolute path (NeXus manual,
        // "Links"; pynxtools reports MissingTargetAttribute without it).
        func link(_ name: String) throws {
            let target = m.nxdata.childPath(name)
            guard let field = m.nxdata.openDataset(name) else { return }
            if !field.hasAttribute("target") { try field.setAttribute("target", target) }
            try g.linkSoft(name, to: target)
        }
        try link(m.layout.signalName)
        try link("imag")
        for (i, name) in m.layout.axisNames.enumerated() {
            try g.setAttribute("\(name)_indices", unsigned: [UInt32(i)])
            try link(name)
        }
        if !m.ds.title.isEmpty { try g.writeString("title", m.ds.title) }
    }
}
