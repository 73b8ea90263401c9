import EMCore
import Foundation

/// One reader in the catalog, with the reason for its place.
public struct CatalogEntry {
    public let reader: FormatReader.Type
    public let why: String
}

/// The one ordered list of formats (Bio-Formats' readers.txt): adding a format is one folder plus
/// one line here. Readers are chosen by content: every reader identifies the file, candidates
/// are tried best answer first (yes before maybe; among equals, one whose extension matches,
/// then this order), and a reader that declines on a closer look hands over to the next.
public enum Catalog {
    public static let readers: [CatalogEntry] = [
        CatalogEntry(reader: MIBReader.self, why: "magic 'MQ1,' in the first bytes (or an .hdr beside its .mib)"),
        CatalogEntry(reader: DMReader.self, why: "version 3/4 header with valid flags"),
        CatalogEntry(reader: EMPADReader.self, why: "an .xml with EMPAD elements; before nothing else that reads XML"),
        CatalogEntry(reader: EMDReader.self, why: "HDF5 with Velox /Version or EMD version_major/emd_group_type attributes"),
        CatalogEntry(reader: DectrisReader.self, why: "HDF5 with entry/instrument/detector/detectorSpecific and entry/data/data_* links; before NeXus, which would take the NeXus-like master"),
        CatalogEntry(reader: HSpyReader.self, why: "HDF5 with root attribute file_format = HyperSpy; before NeXus, which declines it anyway (no NXentry)"),
        CatalogEntry(reader: NeXusReader.self, why: "HDF5 with an NXentry holding NXdata; after EMD, whose files may also carry NX classes"),
        CatalogEntry(reader: TIAReader.self, why: "SER magic 49 49 97 01 or an .emi starting 'JK' 00 02"),
        CatalogEntry(reader: ZspyReader.self, why: "a directory (or ZIP) zarr store whose root .zattrs says file_format ZSpy"),
        CatalogEntry(reader: MRCReader.self, why: "weak signature ('MAP ' at byte 208, absent before MRC2014; else header sanity + extension): after every reader with a magic at a fixed place, before Raw"),
        CatalogEntry(reader: TIFFReader.self, why: "TIFF goes last: it accepts any TIFF, so every specific reader declines first"),
        CatalogEntry(reader: RawReader.self, why: "last: any bytes with a JSON descriptor or --raw-* options"),
    ]

    public static let writers: [FormatWriter.Type] = [
        NeXusWriter.self,
        ZspyWriter.self,
        ZspyZipWriter.self,
        HSpyWriter.self,
        TIFFWriter.self,
        EMD1Writer.self,
    ]

    /// Descriptors of every format, readers first, merged by name (a format read and written
    /// lists its reader's and its writer's options).
    public static var descriptors: [FormatDescriptor] {
        var out: [FormatDescriptor] = []
        for d in readers.map({ $0.reader.descriptor }) + writers.map({ $0.descriptor }) {
            if let i = out.firstIndex(where: { $0.name == d.name }) {
                out[i].writes = out[i].writes || d.writes
                out[i].reads = out[i].reads || d.reads
                for o in d.options where !out[i].options.contains(where: { $0.key == o.key }) { out[i].options.append(o) }
                if out[i].signature.isEmpty { out[i].signature = d.signature }
            } else {
                out.append(d)
            }
        }
        return out
    }

    /// An option with the formats that declare it.
    public struct DeclaredOption {
        public var spec: OptionSpec
        public var formats: [String]
        /// The default of each declaring format, where they differ ("nexus: gzip:1 …").
        public var defaults: [(String, String)]

        /// The defaults in words: one text when all formats agree.
        public var defaultText: String {
            let texts = defaults.map(\.1)
            if Set(texts).count <= 1 { return texts.first ?? "" }
            return defaults.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
        }
    }

    private static func collect(_ ds: [FormatDescriptor]) -> [DeclaredOption] {
        var out: [DeclaredOption] = []
        for d in ds {
            for o in d.options {
                if let i = out.firstIndex(where: { $0.spec.key == o.key }) {
                    out[i].formats.append(d.name)
                    if let t = o.defaultText { out[i].defaults.append((d.name, t)) }
                } else {
                    out.append(DeclaredOption(spec: o, formats: [d.name], defaults: o.defaultText.map { [(d.name, $0)] } ?? []))
                }
            }
        }
        return out
    }

    /// Every reader option, once, with the readers that declare it.
    public static var readerOptions: [DeclaredOption] { collect(readers.map { $0.reader.descriptor }) }

    /// Every writer option, once, with the writers that declare it.
    public static var writerOptions: [DeclaredOption] { collect(writers.map { $0.descriptor }) }

    /// The converter's processing options (``Processing/options``), for every input and output.
    public static var processingOptions: [DeclaredOption] {
        Processing.options.map { DeclaredOption(spec: $0, formats: ["all"], defaults: $0.defaultText.map { [("all", $0)] } ?? []) }
    }

    // MARK: Choosing a reader

    /// The readers that may read `path`, best first.
    public static func candidates(for path: String, options: OptionValues = OptionValues()) throws -> [FormatReader.Type] {
        let probe = try Probe(path: path)
        // Options only one reader declares (--raw-dtype) name that reader: it goes first.
        let named = Set(options.keys.compactMap { k -> String? in
            let owners = readerOptions.first { $0.spec.key == k }?.formats ?? []
            return owners.count == 1 ? owners[0] : nil
        })
        var scored: [(FormatReader.Type, Identification, Bool, Bool, Int)] = []
        for (i, e) in readers.enumerated() {
            let d = e.reader.descriptor
            let isNamed = named.contains(d.name)
            let id = e.reader.identify(probe)
            guard id != .no || isNamed else { continue }
            scored.append((e.reader, id, isNamed, d.extensions.contains(probe.fileExtension), i))
        }
        scored.sort { a, b in
            if a.2 != b.2 { return a.2 }
            if a.1 != b.1 { return a.1 > b.1 }
            if a.3 != b.3 { return a.3 }
            return a.4 < b.4
        }
        return scored.map(\.0)
    }

    /// Opens `path` with the first candidate that does not decline.
    public static func open(_ path: String, options: OptionValues = OptionValues()) throws -> OpenedFile {
        let token = ActiveWork.shared.beginInput(path)
        defer { token.end() }
        Watchdog.arm(Watchdog.headerSeconds, "reading the file's structure", growth: Watchdog.structureGrowth)
        defer { Watchdog.disarm() }
        guard FileManager.default.fileExists(atPath: path) else { throw EMError(.missingInput, file: path, "no such file") }
        var declined: [String] = []
        var tried: [String] = []
        for r in try candidates(for: path, options: options) {
            tried.append(r.descriptor.name)
            do {
                return try r.open(path, options: options)
            } catch let d as FormatDeclined {
                declined.append("\(r.descriptor.name): \(d.reason)")
            }
        }
        // No reader identified it: the reader its extension names says what is wrong (a raw file
        // without its description, a .dm3 with a damaged header) in its own words.
        let ext = (path as NSString).pathExtension.lowercased()
        if let named = readers.first(where: { $0.reader.descriptor.extensions.contains(ext) && !tried.contains($0.reader.descriptor.name) })?.reader,
           !(try Probe(path: path)).isHDF5 {
            do {
                return try named.open(path, options: options)
            } catch let d as FormatDeclined {
                declined.append("\(named.descriptor.name): \(d.reason)")
            }
        }
        throw try unclaimed(path, declined: declined)
    }

    /// The error for a file no reader takes: what it looked like, and what emconv knows.
    static func unclaimed(_ path: String, declined: [String]) throws -> EMError {
        let probe = try Probe(path: path)
        if probe.isHDF5 {
            let known = readers.map { $0.reader.descriptor }.filter { $0.container == "HDF5" }
                .map { "\($0.longName) (\($0.signature))" }.joined(separator: "; ")
            let top = HDF5Peek.topLevel(path).map { " (top level: \($0.prefix(8).joined(separator: ", ")))" } ?? ""
            return EMError(.unsupported, file: path, "an HDF5 file that no reader claims\(top); emconv reads these HDF5 layouts: \(known)")
        }
        if let claimed = readers.first(where: { $0.reader.descriptor.extensions.contains(probe.fileExtension) }) {
            let why = declined.isEmpty ? "its first bytes do not match the format" : declined.joined(separator: "; ")
            return EMError.bad(path, offset: 0, "not a valid \(claimed.reader.descriptor.longName) file (\(why))")
        }
        if !declined.isEmpty { return EMError(.unsupported, file: path, declined.joined(separator: "; ")) }
        return EMError(.unsupported, file: path, "no reader recognizes this file (run 'emconv formats' for the supported formats)")
    }

    // MARK: Writers

    public static func writer(named name: String) -> FormatWriter.Type? {
        let n = name.lowercased()
        return writers.first { $0.descriptor.name == n || $0.descriptor.aliases.contains(n) }
    }

    public static func writer(forExtension ext: String) -> FormatWriter.Type? {
        writers.first { $0.descriptor.extensions.contains(ext.lowercased()) }
    }

    /// The supported-formats table (README and formats.md embed it; `make docs` regenerates it).
    public static func markdownTable() -> String {
        var s = "| format | name | extensions | read | write | companions | options |\n|---|---|---|---|---|---|---|\n"
        for d in descriptors {
            let opts = d.options.map { "`\($0.flag)`" }.joined(separator: ", ")
            s += "| \(d.longName) | `\(d.name)` | \(d.extensions.map { "`.\($0)`" }.joined(separator: " ")) | \(d.reads ? "yes" : "") | \(d.writes ? "yes" : "") | \(d.companions ?? "") | \(opts) |\n"
        }
        return s
    }

    /// Every option of every format (README and formats.md embed it; `make docs` regenerates it).
    public static func markdownOptions() -> String {
        let cell = { (s: String) in s.replacingOccurrences(of: "|", with: "\\|") }
        var s = "| option | value | formats | what it does | default |\n|---|---|---|---|---|\n"
        for (side, list) in [("read", readerOptions), ("write", writerOptions), ("processing", processingOptions)] {
            for o in list {
                s += "| `\(o.spec.flag)` | \(o.spec.valueName.isEmpty ? "" : "`\(o.spec.valueName)`") | \(o.formats.joined(separator: ", ")) (\(side)) | \(cell(o.spec.help)) | \(cell(o.defaultText)) |\n"
            }
        }
        s += "\nEvery option also has a generic form: `--oo KEY=VALUE` for reader options, `--co KEY=VALUE` for writer options.\n"
        return s
    }
}
