import EMCore
import EMHDF5
import Foundation

extension NeXusMetadata {
    /// The datasets' auxiliary arrays (flat field, pixel mask, count-rate tables) as fields of
    /// `measurement/instrument/detector1` (NXdetector), under their own names; the first dataset
    /// that has a name wins. Nothing is applied to the data.
    static func writeAuxiliary(_ file: OpenedFile, into measurement: HDF5Group) throws {
        var arrays: [String: AuxiliaryArray] = [:]
        for ds in file.datasets { arrays.merge(ds.auxiliary) { first, _ in first } }
        guard !arrays.isEmpty else { return }
        let inst = try measurement.openGroup("instrument") ?? measurement.createGroup("instrument", nxClass: "NXem_instrument")
        let det = try inst.openGroup("detector1") ?? inst.createGroup("detector1", nxClass: "NXdetector")
        for name in arrays.keys.sorted() where !det.exists(name) {
            let a = arrays[name]!
            let d = try det.writeArray(name, type: a.elementType, shape: a.shape, bytes: a.bytes)
            if let u = a.units { try d.setAttribute("units", u) }
            if let text = a.description { try d.setAttribute("long_name", text) }
            // Correction maps carry their checksum (emconv validate re-derives the data from them).
            if name.hasPrefix("correction_") { try d.setAttribute("sha256", SHA256Digest.hex(a.bytes)) }
        }
    }
}
