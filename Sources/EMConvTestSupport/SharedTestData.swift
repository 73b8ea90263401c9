import EMConvKit
import Foundation

/// Access to `../shared/testdata` (real instrument files with reference JSON made by
/// independent readers). Tests use it when present and say they skipped when not.
public enum SharedTestData {
    /// The folder, found from the package root (`EMCONV_TESTDATA` overrides).
    public static var root: String? {
        if let env = ProcessInfo.processInfo.environment["EMCONV_TESTDATA"], !env.isEmpty {
            return FileManager.default.fileExists(atPath: env) ? env : nil
        }
        let candidates = [packageRoot + "/../shared/testdata", FileManager.default.currentDirectoryPath + "/../shared/testdata"]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/reference") }
    }

    /// The package root (two levels above this source file's folder).
    public static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }

    public static let skipMessage = "skipped: ../shared/testdata not found"

    /// Reference JSON of a case: `id` is the primary file's path below testdata (`mib/x.mib`).
    public static func reference(_ id: String) throws -> MetaValue {
        guard let root else { throw EMError(.missingInput, "shared testdata not found") }
        var path = root + "/reference/" + id.replacingOccurrences(of: "/", with: "__") + ".json"
        // Ids with spaces ("03_Scanning Preview.emi") have references named with '_' instead.
        if !FileManager.default.fileExists(atPath: path) { path = path.replacingOccurrences(of: " ", with: "_") }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try MetaValue.parseJSON(text)
    }

    /// Every reference id whose format (reference `format` field) is one of `formats`.
    public static func cases(format formats: Set<String>) throws -> [String] {
        guard let root else { return [] }
        let dir = root + "/reference"
        return try FileManager.default.contentsOfDirectory(atPath: dir).sorted().compactMap { name in
            guard name.hasSuffix(".json") else { return nil }
            let v = try MetaValue.parseJSON(try String(contentsOfFile: dir + "/" + name, encoding: .utf8))
            guard let f = v["format"]?.stringValue, formats.contains(f), let id = v["id"]?.stringValue else { return nil }
            return id
        }
    }
}

/// Hashes of data in the reference convention: sha256 of the values in C order,
/// little-endian, in the dataset's element type.
public enum DataHash {
    /// Reads every frame of `ds` (optionally flipping rows of each 2-D frame) and hashes.
    public static func sha256(_ ds: Dataset, flipRows: Bool = false) throws -> String {
        let d = SHA256Digest()
        let n = ds.frameBytes
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 64)
        defer { buf.deallocate() }
        for i in 0..<ds.frameCount {
            try ds.source.readFrame(i, into: buf)
            if flipRows { flip(buf, rows: ds.frameShape.dropLast().reduce(1, *), rowBytes: (ds.frameShape.last ?? 1) * ds.elementType.size) }
            d.update(UnsafeRawBufferPointer(buf))
        }
        return d.finalizeHex()
    }

    /// Reads all values of a dataset into one array (small test data only).
    public static func bytes(_ ds: Dataset) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(ds.byteCount))
        let n = ds.frameBytes
        try out.withUnsafeMutableBytes { p in
            for i in 0..<ds.frameCount {
                try ds.source.readFrame(i, into: UnsafeMutableRawBufferPointer(rebasing: p[(i * n)..<((i + 1) * n)]))
            }
        }
        return out
    }

    public static func flip(_ buf: UnsafeMutableRawBufferPointer, rows: Int, rowBytes: Int) {
        var tmp = [UInt8](repeating: 0, count: rowBytes)
        for r in 0..<(rows / 2) {
            let a = buf.baseAddress! + r * rowBytes
            let b = buf.baseAddress! + (rows - 1 - r) * rowBytes
            tmp.withUnsafeMutableBytes { t in
                t.baseAddress!.copyMemory(from: a, byteCount: rowBytes)
                a.copyMemory(from: b, byteCount: rowBytes)
                b.copyMemory(from: t.baseAddress!, byteCount: rowBytes)
            }
        }
    }

    /// Reads an emconv NeXus output back through emconv's NeXus reader and hashes the dataset
    /// named `name` (complex data stored as `real` + `imag` come back complex).
    public static func sha256(nexus path: String, name: String) throws -> (String, [Int], ElementType) {
        let f = try Catalog.open(path)
        guard let ds = f.datasets.first(where: { $0.name == name }) else {
            throw EMError(.badInput, file: path, "no dataset named '\(name)' (have \(f.datasets.map(\.name)))")
        }
        return (try sha256(ds), ds.shape, ds.elementType)
    }

    /// sha256 of the `signal` dataset of an HDF5/NeXus file, read back through HDF5.
    public static func sha256(hdf5 path: String, dataset: String) throws -> (String, [Int], ElementType) {
        let f = try HDF5File(reading: path)
        guard let ds = f.root.openDataset(dataset), let t = ds.elementType else {
            throw EMError(.badInput, file: path, at: dataset, "dataset missing or of unknown type")
        }
        let shape = ds.shape
        let d = SHA256Digest()
        // Read slab by slab along the first axis to bound memory.
        let rowElems = shape.dropFirst().reduce(1, *)
        let n0 = shape.first ?? 1
        var buf = [UInt8](repeating: 0, count: max(1, rowElems * t.size))
        for i in 0..<n0 {
            try buf.withUnsafeMutableBytes { p in
                if shape.isEmpty {
                    try ds.read(start: [], count: [], as: t, into: p)
                } else {
                    try ds.read(start: [i] + Array(repeating: 0, count: shape.count - 1), count: [1] + Array(shape.dropFirst()), as: t, into: p)
                }
            }
            d.update(buf)
        }
        return (d.finalizeHex(), shape, t)
    }
}
