import EMCore
import Foundation

/// Converter-level processing options (issue 16): which datasets to convert, and what to do to
/// their values on the way. Declared as data like the readers' and writers' options, so convert,
/// batch (and its children), `emconv formats` and the docs take them from this one list. Every
/// step that changes values is recorded in the dataset's ``Dataset/processing``; without these
/// options the output is a faithful copy.
public enum Processing {
    public static let options: [OptionSpec] = [
        OptionSpec("dataset", .text, valueName: "NAME|INDEX",
                   help: "convert only this dataset (its name, or its index from 0 as 'emconv info' lists them); repeatable",
                   default: "every dataset", repeatable: true),
        OptionSpec("crop", .axisRanges, valueName: "AXIS=A:B,…",
                   help: "keep indices A to B-1 of an axis (by name, e.g. scan_x, or index from 0); calibrations follow; repeatable",
                   default: "no crop", repeatable: true),
        OptionSpec("bin", .axisFactors, valueName: "AXIS=N,…",
                   help: "combine N consecutive values of an axis (e.g. det_y=2,det_x=2), after cropping; an incomplete last bin is dropped; repeatable",
                   default: "no binning", repeatable: true),
        OptionSpec("bin-mode", .choice(BinMode.allCases.map(\.rawValue)), valueName: "sum|mean",
                   help: "sum (integers in a type wide enough never to overflow, e.g. uint16 → uint32; floats in float64) or mean (float32)",
                   default: "sum"),
        OptionSpec("cast", .choice(castTypes.map(\.rawValue)), valueName: "TYPE",
                   help: "store the values as TYPE (e.g. float32 for Fiji, which cannot open 32-bit integer TIFFs), after crop and bin; floats become integers rounded to nearest and clamped; the first value that changes is named in a warning",
                   default: "the source's type"),
        OptionSpec("cast-exact", .flag, help: "with --cast: fail (exit 65, nothing written) when any value would change"),
    ] + Corrections.options + DerivedViews.options

    /// The types --cast accepts.
    public static let castTypes: [ElementType] = [.int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .float32, .float64]

    /// Applies the options to an opened file, in place: selects datasets, then crops and bins.
    /// Returns the warnings to show.
    public static func apply(_ values: OptionValues, to file: OpenedFile) throws -> [String] {
        var warnings: [String] = []
        let wanted = values.strings("dataset")
        if !wanted.isEmpty { file.datasets = try select(wanted, from: file) }
        let crops = try values.axisRanges("crop"), bins = try values.axisFactors("bin")
        // Corrections work on the detector's own frames, before anything else.
        if Corrections.requested(values) {
            if !crops.isEmpty || !bins.isEmpty || values.string("cast") != nil {
                throw EMError(.usage, at: "--dark/--gain/--flat-field/--pixel-mask", "cannot be combined with --crop, --bin or --cast yet (convert the corrected output again to shape it)")
            }
        }
        warnings += try Corrections.apply(values, to: file)
        if !crops.isEmpty || !bins.isEmpty {
            let mode = BinMode(rawValue: values.string("bin-mode")?.lowercased() ?? "sum") ?? .sum
            var changed = 0
            for (i, ds) in file.datasets.enumerated() {
                switch try cropAndBin(ds, crops: crops, bins: bins, mode: mode, file: file.path) {
                case let .done(out, notes):
                    file.datasets[i] = out
                    warnings += notes
                    changed += 1
                case let .notApplicable(why):
                    warnings.append("dataset '\(ds.name)' left unchanged: \(why)")
                }
            }
            if changed == 0 {
                let axes = file.datasets.map { "\($0.name): \($0.axes.map(\.name).joined(separator: ", "))" }.joined(separator: "; ")
                throw EMError(.usage, at: crops.isEmpty ? "--bin" : "--crop", "names no axis of any dataset (\(axes))")
            }
        } else if values.string("bin-mode") != nil {
            warnings.append("--bin-mode does nothing without --bin; ignored")
        }
        if let name = values.string("cast") {
            guard let type = ElementType(rawValue: name.lowercased()), castTypes.contains(type) else {
                throw EMError(.usage, at: "--cast", "takes one of \(castTypes.map(\.rawValue).joined(separator: ", ")) (got '\(name)')")
            }
            let exact = values.flag("cast-exact")
            for (i, ds) in file.datasets.enumerated() where ds.elementType != type {
                guard ds.elementType.isNumericScalar else {
                    throw EMError(.unsupported, file: file.path, "--cast \(type.rawValue): '\(ds.name)' holds \(ds.elementType.rawValue) values, which have no numeric cast")
                }
                let out = ds.reshaped(axes: ds.axes, elementType: type, frameRank: ds.frameRank,
                                      source: CastFrameSource(ds, to: type, exact: exact, file: file.path))
                out.processing.append(ProcessingStep(
                    name: "cast",
                    parameters: .object([("from", .string(ds.elementType.rawValue)), ("to", .string(type.rawValue)),
                                         ("exact", .bool(exact)),
                                         ("rule", .string("floats to integers: rounded to nearest, ties to even, clamped to the type's range, NaN to 0; to floats: the nearest value the type holds"))]),
                    description: "values cast from \(ds.elementType.rawValue) to \(type.rawValue)\(exact ? " (checked: no value changed)" : "")"))
                file.datasets[i] = out
            }
        } else if values.flag("cast-exact") {
            warnings.append("--cast-exact does nothing without --cast; ignored")
        }
        // Derived views of the data as written, computed while they stream.
        warnings += try DerivedViews.apply(values, to: file)
        return warnings
    }

    /// What the steps found while the data streamed (the values a cast changed), once the writer
    /// has read every frame.
    public static func findings(_ file: OpenedFile) -> [String] {
        file.datasets.compactMap { ds in
            guard let cast = ds.source as? CastFrameSource else { return nil }
            let (first, count) = cast.losses
            guard let first else { return nil }
            return "--cast \(cast.outputType.rawValue): \(count) value\(count == 1 ? "" : "s") of '\(ds.name)' changed; the first, \(first.original) at \(CastFrameSource.where(first, in: ds)), is stored as \(first.stored) (--cast-exact refuses)"
        }
    }

    /// The datasets named by `wanted` (names or indices), in the order given, each once.
    static func select(_ wanted: [String], from file: OpenedFile) throws -> [Dataset] {
        let all = file.datasets
        let listing = all.enumerated().map { "\($0.offset) \($0.element.name)" }.joined(separator: ", ")
        var out: [Dataset] = []
        for w in wanted {
            let hit: Dataset?
            if let i = Int(w) {
                hit = all.indices.contains(i) ? all[i] : nil
            } else {
                hit = all.first { $0.name == w } ?? all.first { $0.name.lowercased() == w.lowercased() }
            }
            guard let ds = hit else {
                throw EMError(.usage, file: file.path, "--dataset \(w): no such dataset (the file has: \(listing))")
            }
            if !out.contains(where: { $0 === ds }) { out.append(ds) }
        }
        return out
    }

    enum Shaped {
        case done(Dataset, [String])
        case notApplicable(String)
    }

    /// An axis by name or by index.
    static func axisIndex(_ key: String, in ds: Dataset) -> Int? {
        if let i = Int(key) { return ds.axes.indices.contains(i) ? i : nil }
        return ds.axes.firstIndex { $0.name == key }
    }

    static func cropAndBin(_ ds: Dataset, crops: [(axis: String, range: Range<Int>)], bins: [(axis: String, factor: Int)],
                           mode: BinMode, file: String) throws -> Shaped {
        var ranges = ds.axes.map { 0..<$0.size }
        var factors = Array(repeating: 1, count: ds.rank)
        var cropParams: [(String, MetaValue)] = [], binParams: [(String, MetaValue)] = []
        var notes: [String] = [], cropSaid: [String] = [], binSaid: [String] = []
        for c in crops {
            guard let i = axisIndex(c.axis, in: ds) else {
                return .notApplicable("--crop \(c.axis): no such axis (axes: \(ds.axes.map(\.name).joined(separator: ", ")))")
            }
            let a = ds.axes[i]
            guard c.range.upperBound <= a.size else {
                throw EMError(.usage, file: file, "--crop \(c.axis)=\(c.range.lowerBound):\(c.range.upperBound): axis '\(a.name)' of '\(ds.name)' has \(a.size) values (indices 0:\(a.size))")
            }
            ranges[i] = c.range
            cropSaid.append("\(a.name) \(c.range.lowerBound):\(c.range.upperBound)")
            cropParams.append((a.name, .array([.int(Int64(c.range.lowerBound)), .int(Int64(c.range.upperBound))])))
        }
        for b in bins {
            guard let i = axisIndex(b.axis, in: ds) else {
                return .notApplicable("--bin \(b.axis): no such axis (axes: \(ds.axes.map(\.name).joined(separator: ", ")))")
            }
            let a = ds.axes[i]
            guard b.factor <= ranges[i].count else {
                throw EMError(.usage, file: file, "--bin \(b.axis)=\(b.factor): axis '\(a.name)' of '\(ds.name)' has only \(ranges[i].count) values")
            }
            factors[i] = b.factor
            binSaid.append("\(a.name) by \(b.factor)")
            let dropped = ranges[i].count % b.factor
            var p: [(String, MetaValue)] = [("factor", .int(Int64(b.factor)))]
            if dropped > 0 {
                p.append(("dropped_trailing", .int(Int64(dropped))))
                notes.append("--bin \(a.name)=\(b.factor): \(ranges[i].count) values do not divide into bins of \(b.factor); the last \(dropped) are dropped")
            }
            binParams.append((a.name, .object(p)))
        }
        let k = factors.reduce(1, *)
        guard let outType = CropBinFrameSource.binnedType(ds.elementType, count: k, mode: mode) else {
            let why = ds.elementType.isNumericScalar ? "summing could overflow even 64-bit integers; use --bin-mode mean" : "only numeric scalar data can be binned"
            throw EMError(.unsupported, file: file, "cannot bin '\(ds.name)' (\(ds.elementType.rawValue)): \(why)")
        }
        let axes = ds.axes.indices.map { croppedBinnedAxis(ds.axes[$0], range: ranges[$0], factor: factors[$0]) }
        let source = CropBinFrameSource(ds, ranges: ranges, factors: factors, mode: mode, outputType: outType)
        let out = ds.reshaped(axes: axes, elementType: outType, frameRank: ds.frameRank, source: source)
        let shape = { (s: [Int]) in s.map(String.init).joined(separator: "x") }
        if !cropParams.isEmpty {
            out.processing.append(ProcessingStep(
                name: "crop",
                parameters: .object([("ranges", .object(cropParams)), ("convention", .string("index ranges A:B keep A to B-1, counted from 0")),
                                     ("input_shape", .array(ds.shape.map { .int(Int64($0)) }))]),
                description: "cropped \(cropSaid.joined(separator: ", ")) (indices from 0, end excluded); axis offsets follow"))
        }
        if !binParams.isEmpty {
            out.processing.append(ProcessingStep(
                name: "bin",
                parameters: .object([("factors", .object(binParams)), ("mode", .string(mode.rawValue)),
                                     ("input_element_type", .string(ds.elementType.rawValue)),
                                     ("output_element_type", .string(outType.rawValue)),
                                     ("output_shape", .array(out.shape.map { .int(Int64($0)) }))]),
                description: "binned \(binSaid.joined(separator: ", ")) (\(mode == .sum ? "sum" : "mean") of each bin, stored as \(outType.rawValue)); bin centres are the new axis coordinates"))
            if outType != ds.elementType {
                notes.append("'\(ds.name)': binned \(shape(ds.shape)) \(ds.elementType.rawValue) → \(shape(out.shape)) \(outType.rawValue) (\(mode.rawValue) of \(k) values\(mode == .sum ? ", a type wide enough never to overflow" : ""))")
            }
        }
        return .done(out, notes)
    }
}
