import EMCore
import EMHDF5
import Foundation

/// emconv's own EMD 1.0 outputs carry the model facts py4DSTEM has no place for in the
/// `emconv` metadata of each array (Sources/Writers/EMD1/FORMAT.md): axis names, units and roles,
/// frame rank, signal kind, title, quantity; and the normalized metadata in `instrument`.
/// Reading them back makes EMD 1.0 → any output a faithful round trip.
enum EMD1Model {
    /// The dataset as emconv wrote it, or `ds` unchanged when the array has no (usable) `emconv` metadata.
    static func restore(_ ds: Dataset, array g: HDF5Group, file: HDF5File) -> Dataset {
        guard let bundle = g.openGroup("metadatabundle"), let m = bundle.openGroup("emconv"),
              m.attributeMeta("emd_group_type")?.stringValue == "metadata" else { return ds }
        func text(_ k: String) -> String? { m.openDataset(k)?.readMeta()?.stringValue }
        func list(_ k: String) -> [String]? {
            guard let l = m.openGroup(k), let n = l.attributeMeta("length")?.intValue, n == ds.rank else { return nil }
            var out: [String] = []
            for i in 0..<n {
                guard let s = l.openDataset(String(i))?.readMeta()?.stringValue else { return nil }
                out.append(s)
            }
            return out
        }
        func numbers(_ k: String) -> [Double]? {
            guard let d = m.openDataset(k), d.shape == [ds.rank], let v = try? d.readDoubles(), v.count == ds.rank else { return nil }
            return v
        }
        var out = ds
        if let fr = m.openDataset("frame_rank")?.readMeta()?.intValue, fr >= 0, fr <= ds.rank, fr != ds.frameRank,
           let data = BerkeleyEMD.dataArray(g) {
            out = Dataset(name: ds.name, title: ds.title, axes: ds.axes, elementType: ds.elementType, frameRank: fr,
                          quantity: ds.quantity, quantityUnits: ds.quantityUnits, signalKind: ds.signalKind,
                          metadata: ds.metadata, original: ds.original, conventions: ds.conventions,
                          source: HDF5HyperslabSource(owner: file, dataset: data, shape: ds.shape, frameRank: fr, type: ds.elementType))
        }
        if let offsets = numbers("axis_offsets"), let scales = numbers("axis_scales") {
            for i in 0..<out.rank where offsets[i].isFinite && scales[i].isFinite {
                if case .uniform = out.axes[i].calibration { out.axes[i].calibration = .uniform(offset: offsets[i], scale: scales[i]) }
            }
        }
        if let names = list("axis_names") { for i in 0..<out.rank { out.axes[i].name = names[i]; out.axes[i].longName = nil } }
        if let units = list("axis_units") { for i in 0..<out.rank { out.axes[i].units = units[i] } }
        if let roles = list("axis_roles") {
            for i in 0..<out.rank { if let r = AxisRole(rawValue: roles[i]) { out.axes[i].role = r } }
        } else {
            for i in 0..<out.rank { out.axes[i].role = i >= out.rank - out.frameRank ? .signal : .navigation }
        }
        if let v = text("dataset_name"), !v.isEmpty { out.name = BerkeleyEMD.sanitize(v) }
        if let v = text("title") { out.title = v }
        if let v = text("signal_kind"), !v.isEmpty { out.signalKind = v }
        if let v = text("quantity"), !v.isEmpty { out.quantity = v }
        if let v = text("quantity_units") { out.quantityUnits = v }
        if let c = m.openGroup("conventions") {
            for k in c.datasetNames.prefix(256) { if let v = c.openDataset(k)?.readMeta()?.stringValue { out.conventions[k] = v } }
        }
        if let i = bundle.openGroup("instrument") { instrument(i, into: &out.metadata) }
        return out
    }

    /// The normalized metadata the writer's `instrument` holds (quantities with `KEY_units`).
    static func instrument(_ g: HDF5Group, into md: inout NormalizedMetadata) {
        func q(_ k: String) -> Quantity? {
            guard let v = g.openDataset(k)?.readMeta()?.doubleValue, let u = g.openDataset(k + "_units")?.readMeta()?.stringValue else { return nil }
            return Quantity(v, u)
        }
        func s(_ k: String) -> String? { g.openDataset(k)?.readMeta()?.stringValue }
        md.beamEnergy = q("beam_energy") ?? md.beamEnergy
        md.cameraLength = q("camera_length") ?? md.cameraLength
        md.exposureTime = q("exposure_time") ?? md.exposureTime
        md.dwellTime = q("dwell_time") ?? md.dwellTime
        md.frameTime = q("frame_time") ?? md.frameTime
        md.convergenceSemiAngle = q("convergence_semi_angle") ?? md.convergenceSemiAngle
        md.probeCurrent = q("probe_current") ?? md.probeCurrent
        md.scanRotation = q("scan_rotation") ?? md.scanRotation
        md.detectorThreshold = q("detector_threshold") ?? md.detectorThreshold
        if let v = g.openDataset("magnification")?.readMeta()?.doubleValue { md.magnification = v }
        md.detectorName = s("detector") ?? md.detectorName
        md.detectorModel = s("detector_model") ?? md.detectorModel
        md.detectorMode = s("detector_mode") ?? md.detectorMode
        md.instrumentVendor = s("instrument_vendor") ?? md.instrumentVendor
        md.instrumentModel = s("instrument_model") ?? md.instrumentModel
        md.instrumentName = s("instrument_name") ?? md.instrumentName
        md.softwareName = s("software_name") ?? md.softwareName
        md.softwareVersion = s("software_version") ?? md.softwareVersion
        if let v = s("start_time") { md.startTime = Timestamp.parseISO(v) ?? md.startTime }
        if let v = s("end_time") { md.endTime = Timestamp.parseISO(v) ?? md.endTime }
    }
}
