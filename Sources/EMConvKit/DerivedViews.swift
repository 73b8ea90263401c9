import EMCore
import Foundation

/// Derived views of 4D-STEM data (issue 16): virtual bright-field and annular dark-field images
/// and the sum and maximum diffraction patterns, computed while the data stream (``DerivedViewTap``)
/// and written beside them as datasets marked derived, each with its step recorded.
public enum DerivedViews {
    public static let options: [OptionSpec] = [
        OptionSpec("vbf", .text, valueName: "R",
                   help: "add a virtual bright-field image: per scan position, the sum of the detector pixels at distance <= R from the centre; R in pixels, or e.g. 12mrad when the detector axes are calibrated in angles",
                   default: "none"),
        OptionSpec("vadf", .text, valueName: "RIN:ROUT",
                   help: "add a virtual annular dark-field image: the sum of the pixels at distance > RIN and <= ROUT (pixels, or e.g. 20mrad:60mrad)",
                   default: "none"),
        OptionSpec("centre", .text, valueName: "X,Y",
                   help: "centre of the virtual detectors, in pixel indices (column, row; fractions allowed)",
                   default: "the detector centre ((columns-1)/2, (rows-1)/2)"),
        OptionSpec("sum-pattern", .flag, help: "add the sum of all diffraction patterns (float64; NaN values left out)"),
        OptionSpec("max-pattern", .flag, help: "add the per-pixel maximum over all diffraction patterns (float64; NaN values left out)"),
    ]

    public static func requested(_ values: OptionValues) -> Bool {
        values.string("vbf") != nil || values.string("vadf") != nil || values.flag("sum-pattern") || values.flag("max-pattern")
    }

    /// A radius as given: a number of pixels, or an angle in mrad.
    struct Radius: Equatable {
        var value: Double
        var mrad: Bool
        var text: String { mrad ? "\(fmt(value)) mrad" : "\(fmt(value)) px" }
    }

    static func fmt(_ v: Double) -> String { v.rounded() == v && abs(v) < 1e12 ? String(Int64(v)) : String(v) }

    static func parseRadius(_ s: String, _ flag: String) throws -> Radius {
        var t = s.trimmingCharacters(in: .whitespaces).lowercased()
        var mrad = false
        if t.hasSuffix("mrad") { mrad = true; t = String(t.dropLast(4)) } else if t.hasSuffix("px") { t = String(t.dropLast(2)) }
        guard let v = Double(t.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else {
            throw EMError(.usage, at: flag, "takes a radius >= 0 in pixels (12) or mrad (12mrad) (got '\(s)')")
        }
        return Radius(value: v, mrad: mrad)
    }

    /// Adds the requested views for every 4D dataset (2-D frames over a scan) that is not the raw
    /// copy of a corrected one. Returns the warnings.
    static func apply(_ values: OptionValues, to file: OpenedFile) throws -> [String] {
        if !requested(values) {
            return values.string("centre") != nil ? ["--centre does nothing without --vbf or --vadf; ignored"] : []
        }
        let vbf = try values.string("vbf").map { try parseRadius($0, "--vbf") }
        var vadf: (Radius, Radius)?
        if let s = values.string("vadf") {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else { throw EMError(.usage, at: "--vadf", "takes RIN:ROUT (got '\(s)')") }
            let a = try parseRadius(parts[0], "--vadf"), b = try parseRadius(parts[1], "--vadf")
            guard a.mrad == b.mrad, b.value > a.value else {
                throw EMError(.usage, at: "--vadf", "takes RIN:ROUT in one unit with RIN < ROUT (got '\(s)')")
            }
            vadf = (a, b)
        }
        var centre: (Double, Double)?
        if let s = values.string("centre") {
            let p = s.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard p.count == 2, let x = p[0], let y = p[1], x.isFinite, y.isFinite else {
                throw EMError(.usage, at: "--centre", "takes X,Y in pixel indices (got '\(s)')")
            }
            centre = (x, y)
        }
        let rawNames = Set(file.datasets.flatMap(\.processing).filter { $0.name == "correct" }.compactMap { $0.parameters["raw_dataset"]?.stringValue })
        var main: [Dataset] = [], views: [Dataset] = []
        var warnings: [String] = []
        for ds in file.datasets {
            guard ds.derived == nil, !rawNames.contains(ds.name), ds.frameRank == 2, ds.rank > 2, ds.elementType.isNumericScalar else {
                main.append(ds)
                continue
            }
            let (rows, cols) = (ds.frameShape[0], ds.frameShape[1])
            let cx = centre?.0 ?? Double(cols - 1) / 2, cy = centre?.1 ?? Double(rows - 1) / 2
            let yAxis = ds.axes[ds.rank - 2], xAxis = ds.axes[ds.rank - 1]
            let wantsMrad = (vbf?.mrad ?? false) || (vadf?.0.mrad ?? false)
            var sx = 1.0, sy = 1.0
            if wantsMrad {
                guard let fx = mradPerUnit(xAxis.units), let fy = mradPerUnit(yAxis.units) else {
                    throw EMError(.usage, file: file.path, "radii in mrad need detector axes calibrated in angles; '\(ds.name)' has \(yAxis.name) in '\(yAxis.units)' and \(xAxis.name) in '\(xAxis.units)' (give radii in pixels)")
                }
                sx = abs(xAxis.scale) * fx
                sy = abs(yAxis.scale) * fy
            }
            var detectors: [VirtualDetector] = []
            if let vbf { detectors.append(VirtualDetector(name: "vbf", inner: nil, outer: vbf.value)) }
            if let vadf { detectors.append(VirtualDetector(name: "vadf", inner: vadf.0.value, outer: vadf.1.value)) }
            let tap = DerivedViewTap(ds, detectors: detectors, distance: { p in
                let dy = (Double(p / cols) - cy) * sy, dx = (Double(p % cols) - cx) * sx
                return (dx * dx + dy * dy).squareRoot()
            }, sum: values.flag("sum-pattern"), max: values.flag("max-pattern"))
            let tapped = ds.reshaped(axes: ds.axes, elementType: ds.elementType, frameRank: ds.frameRank, source: tap)
            tapped.auxiliary = ds.auxiliary
            main.append(tapped)
            let nav = Array(ds.axes.prefix(ds.rank - 2)).map { a -> Axis in var b = a; b.role = .signal; return b }
            let centreParams: MetaValue = .array([.double(cx), .double(cy)])
            for (k, det) in detectors.enumerated() {
                let isBF = det.inner == nil
                let radius: MetaValue = isBF ? .string(vbf!.text) : .array([.string(vadf!.0.text), .string(vadf!.1.text)])
                let rule = isBF ? "sum of the pixels with distance d <= R from the centre" : "sum of the pixels with RIN < d <= ROUT from the centre"
                let text = "virtual \(isBF ? "bright-field" : "annular dark-field") image of \(ds.name): \(rule), \(isBF ? "R = \(vbf!.text)" : "RIN = \(vadf!.0.text), ROUT = \(vadf!.1.text)") (derived by emconv, not measured)"
                let v = view(ds, name: "\(ds.name)_\(det.name)", title: isBF ? "virtual bright field" : "virtual annular dark field",
                             axes: nav, kind: "image", source: DerivedViewSource(tap, .virtual(k)), text: text)
                v.processing.append(ProcessingStep(
                    name: isBF ? "virtual_bright_field" : "virtual_annular_dark_field",
                    parameters: .object([("of", .string(ds.name)), ("radius", radius), ("centre_xy_pixels", centreParams),
                                         ("distance", .string(wantsMrad ? "sqrt(((x-cx)*|scale_x|)^2 + ((y-cy)*|scale_y|)^2) in mrad from the detector axes' calibration" : "sqrt((x-cx)^2 + (y-cy)^2) in pixels")),
                                         ("pixels", .int(Int64(tap.pixels[k].count))),
                                         ("rule", .string(rule + "; float64; NaN values left out"))]),
                    description: text))
                views.append(v)
                if tap.pixels[k].isEmpty { warnings.append("--\(det.name) on '\(ds.name)': no detector pixel lies in the given radii; the image is 0") }
            }
            let frameAxes = Array(ds.axes.suffix(2))
            for (on, kind, title, view) in [(values.flag("sum-pattern"), "sum", "sum of all diffraction patterns", DerivedViewTap.View.sum),
                                             (values.flag("max-pattern"), "max", "maximum over all diffraction patterns", .max)] where on {
                let text = "\(title) of \(ds.name), per detector pixel, float64, NaN values left out (derived by emconv, not measured)"
                let v = self.view(ds, name: "\(ds.name)_\(kind)_pattern", title: title, axes: frameAxes, kind: "diffraction",
                                  source: DerivedViewSource(tap, view), text: text)
                v.processing.append(ProcessingStep(name: "\(kind)_pattern",
                                                   parameters: .object([("of", .string(ds.name)), ("frames", .int(Int64(ds.frameCount)))]),
                                                   description: text))
                views.append(v)
            }
        }
        guard !views.isEmpty else {
            throw EMError(.usage, file: file.path, "--vbf/--vadf/--sum-pattern/--max-pattern need 4D data (2-D detector frames over a scan); no dataset has them")
        }
        file.datasets = main + views
        return warnings
    }

    static func view(_ ds: Dataset, name: String, title: String, axes: [Axis], kind: String, source: FrameSource, text: String) -> Dataset {
        let v = Dataset(name: name, title: title, axes: axes, elementType: .float64, frameRank: axes.count,
                        quantity: ds.quantity, quantityUnits: ds.quantityUnits, signalKind: kind, metadata: ds.metadata,
                        conventions: ds.conventions, source: source)
        v.processing = ds.processing
        v.derived = text
        return v
    }

    /// mrad per unit of an angle unit (nil: not an angle).
    static func mradPerUnit(_ units: String) -> Double? {
        guard !units.isEmpty, let p = Units.parse(units), p.dim == Units.angle else { return nil }
        return p.scale * 1000
    }
}
