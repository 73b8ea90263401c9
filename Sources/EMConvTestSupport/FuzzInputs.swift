import CDeflate
import EMConvKit
import Foundation

/// The fuzz targets (fuzz/targets/<name>.swift) and how each turns a byte string into files:
/// shared by the libFuzzer harnesses and by the replay of fixtures/regressions in the unit tests.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The bytes are a .mib; first byte odd: a fixed .hdr (9 frames, 2x2 quad, 12-bit raw) beside it.
    case mib
    /// First byte even: the rest is the .xml beside a fixed 2x2 raw file; odd: the rest is that raw
    /// file beside a fixed xml naming it.
    case empad
    /// The bytes are a .dm4 (the reader tells DM3 from DM4 by content).
    case dm
    /// The bytes are an HDF5 file named .emd (Velox or Berkeley).
    case emd
    /// The bytes are an HDF5 file named .nxs.
    case nexus
    /// The bytes are the JSON descriptor `<file>.raw.json` beside a fixed 12 KiB data file.
    case raw
    /// The bytes are a metadata sidecar (YAML or JSON by content), loaded as `--metadata` does.
    case sidecar
    /// The bytes are an HDF5 file named .hspy (HyperSpy).
    case hspy
    /// The bytes are a ZIP store named .zspy (HyperSpy zarr: ZIP directory, JSON, chunk codecs).
    case zspy
    /// The bytes are an .mrc (MRC2014, FEI extended headers, DE-16 variants).
    case mrc
    /// First byte even: the rest is `input_1.ser` beside a fixed generated `input.emi`, opened as
    /// the .ser; odd: the rest is `input.emi` beside a fixed generated `input_1.ser`, opened as the .emi.
    case tia
    /// The bytes are a .tif (classic or BigTIFF; read through libtiff).
    case tiff
    /// First byte even: the rest is `input_master.h5` beside a fixed generated
    /// `input_data_000001.h5`; odd: the rest is that data file beside a fixed generated master.
    /// The master is opened.
    case dectris
    /// Byte 0 picks the planes (1-8, low 3 bits) and the frame period (high 5 bits: none, 2-17,
    /// 128-32768, and beyond deflate's window), byte 1 the level (1-9), the rest is a chunk: compressed by
    /// emconv's deflate encoder (``PlaneDeflate``, the `gzip` writers' codec) and inflated by
    /// libdeflate; any difference from the chunk is a finding (no file is written).
    case deflate
}

public enum FuzzInputs {
    /// A result the fuzzer must report (the library accepted a size it must refuse first).
    public struct Finding: Error, CustomStringConvertible {
        public var description: String
    }

    /// Frames larger than this are not read: the library must refuse such sizes before.
    public static let frameBudget = 512 << 20

    /// Companion files, from the package root (`EMCONV_ROOT` overrides).
    nonisolated(unsafe) private static var cache: [String: [UInt8]] = [:]
    static func fixture(_ relative: String) -> [UInt8] {
        if let c = cache[relative] { return c }
        let root = ProcessInfo.processInfo.environment["EMCONV_ROOT"] ?? SharedTestData.packageRoot
        guard let d = FileManager.default.contents(atPath: root + "/" + relative) else {
            fatalError("fuzz: fixture \(relative) not found under \(root) (set EMCONV_ROOT to the package root)")
        }
        cache[relative] = [UInt8](d)
        return [UInt8](d)
    }

    /// Writes the input of `target` into the empty folder `dir` and runs it: open and read every
    /// frame of every dataset (sidecar: load it). Returns what the library threw (nil: it read
    /// the input in full); a ``Finding`` when it declared frames beyond ``frameBudget``.
    @discardableResult
    /// The `deflate` target: a ``Finding`` when the stream does not inflate to the chunk.
    static func deflateRoundTrip(_ bytes: UnsafeRawBufferPointer) -> Error? {
        guard bytes.count >= 2 else { return nil }
        let planes = 1 + Int(bytes[0] % 8), level = 1 + Int(bytes[1] % 9)
        let k = Int(bytes[0] >> 3)
        let period = k == 0 ? 0 : k <= 16 ? k + 1 : k <= 25 ? 1 << (k - 10) : 32768 + (k - 25) * 4096
        let chunk = UnsafeRawBufferPointer(rebasing: bytes[2...])
        let stream: [UInt8]
        do { stream = try PlaneDeflate().compress(chunk, planes: planes, level: level, period: period) } catch { return error }
        guard let d = libdeflate_alloc_decompressor() else { return nil }
        defer { libdeflate_free_decompressor(d) }
        var back = [UInt8](repeating: 0, count: chunk.count + 1)
        var got = 0
        let r = stream.withUnsafeBytes { s in
            back.withUnsafeMutableBytes { libdeflate_zlib_decompress(d, s.baseAddress, s.count, $0.baseAddress, $0.count, &got) }
        }
        guard r == LIBDEFLATE_SUCCESS, got == chunk.count, back[0..<got].elementsEqual(chunk) else {
            return Finding(description: "deflate: \(chunk.count) bytes in \(planes) planes at level \(level), period \(period), do not round-trip (libdeflate result \(r.rawValue), \(got) bytes)")
        }
        return nil
    }

    public static func run(_ target: FuzzTarget, _ bytes: UnsafeRawBufferPointer, in dir: String) -> Error? {
        func put(_ b: UnsafeRawBufferPointer, _ name: String) -> String {
            let path = dir + "/" + name
            unlink(path)
            FileManager.default.createFile(atPath: path, contents: Data(b))
            return path
        }
        func put(_ b: [UInt8], _ name: String) -> String { b.withUnsafeBytes { put($0, name) } }
        let rest = bytes.count > 0 ? UnsafeRawBufferPointer(rebasing: bytes[1...]) : bytes
        let odd = bytes.first.map { $0 & 1 == 1 } ?? false
        switch target {
        case .mib:
            if odd { _ = put(fixture("fixtures/mib/quad_r64_12bit.hdr"), "input.hdr") }
            return openAndReadAll(put(bytes, "input.mib"))
        case .empad:
            guard !bytes.isEmpty else { return nil }
            if odd {
                _ = put(rest, "scan_x2_y2.raw")
                return openAndReadAll(put(fixture("fixtures/empad/map_2x2.xml"), "input.xml"))
            }
            _ = put(fixture("fixtures/empad/scan_x2_y2.raw"), "scan_x2_y2.raw")
            return openAndReadAll(put(rest, "input.xml"))
        case .dm: return openAndReadAll(put(bytes, "input.dm4"))
        case .emd: return openAndReadAll(put(bytes, "input.emd"))
        case .nexus: return openAndReadAll(put(bytes, "input.nxs"))
        case .raw:
            _ = put(bytes, "input.raw.json")
            return openAndReadAll(put(fixture("fixtures/raw/stack_u16.raw"), "input.raw"))
        case .sidecar:
            do { _ = try Sidecar.load(put(bytes, "metadata.yaml")); return nil } catch { return error }
        case .hspy: return openAndReadAll(put(bytes, "input.hspy"))
        case .zspy: return openAndReadAll(put(bytes, "input.zspy"))
        case .mrc: return openAndReadAll(put(bytes, "input.mrc"))
        case .tiff: return openAndReadAll(put(bytes, "input.tif"))
        case .tia:
            guard !bytes.isEmpty else { return nil }
            if odd {
                _ = put(generated("tia", "input_1.ser"), "input_1.ser")
                return openAndReadAll(put(rest, "input.emi"))
            }
            _ = put(generated("tia", "input.emi"), "input.emi")
            return openAndReadAll(put(rest, "input_1.ser"))
        case .deflate:
            return deflateRoundTrip(bytes)
        case .dectris:
            guard !bytes.isEmpty else { return nil }
            if odd {
                _ = put(rest, "input_data_000001.h5")
                return openAndReadAll(put(generated("dectris", "input_master.h5"), "input_master.h5"))
            }
            _ = put(generated("dectris", "input_data_000001.h5"), "input_data_000001.h5")
            return openAndReadAll(put(rest, "input_master.h5"))
        }
    }

    /// The fixed companions of the tia and dectris targets, generated once per process.
    static func generated(_ kind: String, _ name: String) -> [UInt8] {
        let key = "generated/\(kind)/\(name)"
        if let c = cache[key] { return c }
        let dir = NSTemporaryDirectory() + "emconv-fuzz-companions-\(getpid())-\(kind)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            if kind == "tia" {
                try SERWriter.write(dir + "/input_1.ser", image: true, dataType: 2, frame: [4, 5], dims: [SERWriter.Dim(3)]) { i in
                    (0..<40).map { UInt8(truncatingIfNeeded: $0 + i) }
                }
                try SERWriter.writeEMI(dir + "/input.emi", objects: [("STEM BF", "Image", "input_1.ser", SERWriter.objectInfo())])
            } else {
                try FuzzSeeds.writeDectris(dir: dir, name: "input", bitshuffle: true)
            }
        } catch {
            fatalError("fuzz: cannot generate the \(kind) companions: \(error)")
        }
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            if let d = FileManager.default.contents(atPath: dir + "/" + f) { cache["generated/\(kind)/\(f)"] = [UInt8](d) }
        }
        guard let c = cache[key] else { fatalError("fuzz: generated \(kind) companions lack \(name)") }
        return c
    }

    /// Identifies and opens `path` as emconv does, then reads every frame of every dataset.
    public static func openAndReadAll(_ path: String) -> Error? {
        do {
            let file = try Catalog.open(path)
            // What every reading path checks before it reads a frame (convert, --dark/--gain
            // files, validate --source): frames and datasets within the budget and plausible.
            try MemoryBudget.checkDeclared(file)
            for ds in file.datasets {
                let size = ds.frameBytes
                guard size >= 0, size <= frameBudget else {
                    return Finding(description: "dataset '\(ds.name)' declares \(size)-byte frames")
                }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
                defer { buffer.deallocate() }
                let frame = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size])
                for i in 0..<ds.frameCount { try ds.source.readFrame(i, into: frame) }
            }
            return nil
        } catch {
            return error
        }
    }
}
