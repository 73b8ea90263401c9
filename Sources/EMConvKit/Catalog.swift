import Foundation

/// All readers and writers. Each format declares itself (descriptor, identify, open); this list
/// is the only place that names them.
public enum Registry {
    public static let readers: [FormatReader.Type] = [
        MIBReader.self,
        EMPADReader.self,
        EMDReader.self,
        NeXusReader.self,
        DMReader.self,
        RawReader.self,
    ]

    public static let writers: [FormatWriter.Type] = [
        NeXusWriter.self,
        ZspyWriter.self,
        ZspyZipWriter.self,
        TIFFWriter.self,
    ]

    /// Descriptors of every format, readers first, merged by name.
    public static var descriptors: [FormatDescriptor] {
        var out: [FormatDescriptor] = []
        for d in readers.map({ $0.descriptor }) + writers.map({ $0.descriptor }) {
            if let i = out.firstIndex(where: { $0.name == d.name }) {
                out[i].writes = out[i].writes || d.writes
                out[i].reads = out[i].reads || d.reads
                out[i].options += d.options
            } else {
                out.append(d)
            }
        }
        return out
    }

    /// Picks the reader for `path`: by content first (yes beats maybe), extension as tie-breaker.
    /// With raw options given, the generic raw reader is used.
    public static func reader(for path: String, options: ReadOptions = ReadOptions()) throws -> FormatReader.Type {
        if options.raw != nil { return RawReader.self }
        let probe = try Probe(path: path)
        var best: (FormatReader.Type, Identification, Bool)?
        for r in readers {
            let id = r.identify(probe)
            guard id != .no else { continue }
            let extMatch = r.descriptor.extensions.contains(probe.fileExtension)
            if let b = best {
                if id > b.1 || (id == b.1 && extMatch && !b.2) { best = (r, id, extMatch) }
            } else {
                best = (r, id, extMatch)
            }
        }
        guard let best else {
            let ext = probe.fileExtension
            let claimed = readers.first { $0.descriptor.extensions.contains(ext) }
            if let claimed {
                throw EMError.bad(path, offset: 0, "not a valid \(claimed.descriptor.longName) file (its first bytes do not match the format)")
            }
            throw EMError(.unsupported, file: path, "no reader recognizes this file (run 'emconv formats' for the supported formats)")
        }
        return best.0
    }

    /// Opens `path` with the right reader.
    public static func open(_ path: String, options: ReadOptions = ReadOptions()) throws -> OpenedFile {
        TempFiles.setInput(path)
        Watchdog.arm(Watchdog.headerSeconds, "reading the file's structure")
        defer { Watchdog.disarm() }
        return try reader(for: path, options: options).open(path, options: options)
    }

    public static func writer(named name: String) -> FormatWriter.Type? {
        let n = name.lowercased()
        return writers.first { $0.descriptor.name == n || $0.descriptor.aliases.contains(n) }
    }

    public static func writer(forExtension ext: String) -> FormatWriter.Type? {
        writers.first { $0.descriptor.extensions.contains(ext.lowercased()) }
    }
}
