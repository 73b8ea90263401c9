import XCTest
@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatMIB
@testable import FormatEMPAD
@testable import FormatDM
@testable import FormatRaw
@testable import FormatEMD
@testable import FormatNeXus
@testable import WriterZspy
@testable import WriterTIFF
import EMConvTestSupport

/// EMD (Velox, Berkeley v0.2/Prismatic, EMD 1.0) against the shared reference data, the NeXus
/// output, and hostile inputs.
final class EMDTests: XCTestCase {

    // MARK: Helpers

    /// Reference JSON files of the EMD formats (including second references such as `@frames`).
    func referenceFiles() throws -> [(String, MetaValue)] {
        guard let root = SharedTestData.root else { return [] }
        let dir = root + "/reference"
        return try FileManager.default.contentsOfDirectory(atPath: dir).sorted().compactMap { name in
            guard name.hasPrefix("emd_"), name.hasSuffix(".json") else { return nil }
            let v = try MetaValue.parseJSON(try String(contentsOfFile: dir + "/" + name, encoding: .utf8))
            guard let f = v["format"]?.stringValue, f == "EMD (Velox)" || f == "EMD (Berkeley/NCEM)" else { return nil }
            return (name, v)
        }
    }

    /// Reader options a reference was made with (rsciio kwargs → EMDOptions).
    func options(_ ref: MetaValue) -> EMDOptions {
        var o = EMDOptions()
        if ref.value(at: ["reader", "kwargs", "sum_frames"]) == .bool(false) { o.sumFrames = false }
        return o
    }

    /// Values of `ds` with the axes permuted (`perm[i]` = source axis of output axis i).
    func permuted(_ ds: Dataset, _ perm: [Int]) throws -> [UInt8] {
        let bytes = try DataHash.bytes(ds)
        if perm == Array(0..<ds.rank) { return bytes }
        let shape = ds.shape, es = ds.elementType.size
        var srcStrides = Array(repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { srcStrides[i] = srcStrides[i + 1] * shape[i + 1] }
        let outShape = perm.map { shape[$0] }
        var out = [UInt8](repeating: 0, count: bytes.count)
        var idx = Array(repeating: 0, count: shape.count)
        for o in 0..<ds.elementCount {
            var src = 0
            for i in 0..<perm.count { src += idx[i] * srcStrides[perm[i]] }
            for b in 0..<es { out[o * es + b] = bytes[src * es + b] }
            var d = shape.count - 1
            while d >= 0 { idx[d] += 1; if idx[d] < outShape[d] { break }; idx[d] = 0; d -= 1 }
        }
        return out
    }

    static let unitFactors: [String: Double] = [
        "m": 1, "nm": 1e-9, "µm": 1e-6, "um": 1e-6, "pm": 1e-12, "mm": 1e-3, "Å": 1e-10, "angstrom": 1e-10, "n_m": 1e-9,
        "1/nm": 1e9, "1 / nm": 1e9, "1/µm": 1e6, "1 / µm": 1e6, "1/um": 1e6, "1 / Å": 1e10, "1/angstrom": 1e10,
        "1 / pm": 1e12, "1/m": 1, "keV": 1e3, "eV": 1, "s": 1, "ms": 1e-3, "mrad": 1, "": 1, "[]": 1,
    ]

    /// Compares a reference axis (rsciio: scale/offset/units) with ours, physically.
    func assertAxis(_ ref: MetaValue, _ a: Axis, _ ctx: String) {
        XCTAssertEqual(ref["size"]?.intValue, a.size, "\(ctx): size")
        let ru = ref["units"]?.stringValue ?? ""
        guard let rf = Self.unitFactors[ru], let mf = Self.unitFactors[a.units] else {
            XCTFail("\(ctx): unknown units '\(ru)' / '\(a.units)'"); return
        }
        let rs = (ref["scale"]?.doubleValue ?? 1) * rf, ro = (ref["offset"]?.doubleValue ?? 0) * rf
        let ms = a.scale * mf, mo = a.offset * mf
        // Float32 coordinate vectors: scales agree to float precision.
        XCTAssertEqual(ms, rs, accuracy: abs(rs) * 1e-5 + 1e-300, "\(ctx): scale \(a.scale) \(a.units) vs \(ref["scale"]!) \(ru)")
        XCTAssertEqual(mo, ro, accuracy: abs(rs) * 1e-4 + abs(ro) * 1e-6 + 1e-300, "\(ctx): offset \(a.offset) \(a.units) vs \(ref["offset"]!) \(ru)")
    }

    // MARK: Shared data

    func testEveryReferenceSignalFoundBitExactly() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let refs = try referenceFiles()
        XCTAssertFalse(refs.isEmpty, "no EMD reference found")
        var checked = 0
        for (refName, ref) in refs {
            guard let id = ref["id"]?.stringValue else { continue }
            let path = root + "/" + id
            guard FileManager.default.fileExists(atPath: path) else { print("skipped \(refName): \(id) missing"); continue }
            let file = try EMDReader.open(path, emd: options(ref))
            XCTAssertEqual(file.format, "emd")
            guard case let .array(signals)? = ref["signals"] else { XCTFail("\(refName): no signals"); continue }
            // Our hashes: each dataset as is, its first frame, and reversed axis order (Prismatic).
            var ours: [(String, Dataset, [Int], String)] = []
            for ds in file.datasets {
                let ident = Array(0..<ds.rank)
                ours.append((try DataHash.sha256(ds), ds, ident, "as is"))
                if ds.rank >= 2 { ours.append((SHA256Digest.hex(try permuted(ds, ident.reversed())), ds, ident.reversed(), "reversed")) }
                if ds.rank == 3, ds.frameRank == 2 {
                    var b = [UInt8](repeating: 0, count: ds.frameBytes)
                    try b.withUnsafeMutableBytes { try ds.source.readFrame(0, into: $0) }
                    ours.append((SHA256Digest.hex(b), ds, [1, 2], "frame 0"))
                }
            }
            // Prismatic depth series: the reference stacks the depth groups.
            let prismatic = file.variant.hasPrefix("Prismatic") && file.datasets.count > 1
            var stacked: String?
            if prismatic {
                var all: [UInt8] = []
                for ds in file.datasets { all += try permuted(ds, Array((0..<ds.rank).reversed())) }
                stacked = SHA256Digest.hex(all)
            }
            for (i, s) in signals.enumerated() {
                let want = s["data_sha256"]?.stringValue ?? ""
                let ctx = "\(refName) signal \(i) (\(s["metadata"]?["General"]?["title"]?.stringValue ?? ""))"
                if prismatic, want == stacked {
                    checked += 1
                    // Axes 1... of the reference are the reversed axes of each depth dataset.
                    if case let .array(ax)? = s["axes"] {
                        let ds = file.datasets[0]
                        for (j, a) in ax.dropFirst().enumerated() { assertAxis(a, ds.axes[ds.rank - 1 - j], ctx + " axis \(j + 1)") }
                    }
                    continue
                }
                // Prefer a match whose axis sizes equal the reference shape (constant data match several).
                var refShape: [Int] = []
                if case let .array(a)? = s["shape"] { refShape = a.compactMap { $0.intValue } }
                let matches = ours.filter { $0.0 == want }
                let best = matches.first { m in
                    let sh: [Int] = m.3 == "frame 0" ? [m.1.shape[1], m.1.shape[2]] : m.2.map { m.1.shape[$0] }
                    return sh == refShape
                } ?? matches.first
                guard let m = best else {
                    XCTFail("\(ctx): no dataset matches \(s["shape"]!) \(s["dtype"]!) sha \(want.prefix(12))"); continue
                }
                checked += 1
                let (_, ds, perm, how) = m
                // Element type preserved (the reference dtype is the file's for these cases).
                let refType = s["dtype"]?.stringValue ?? ""
                XCTAssertEqual(refType.replacingOccurrences(of: "<", with: ""), ds.elementType.rawValue.replacingOccurrences(of: "bool", with: "bool"), "\(ctx): dtype")
                if case let .array(ax)? = s["axes"] {
                    let outAxes: [Axis] = how == "frame 0" ? [ds.axes[1], ds.axes[2]] : perm.map { ds.axes[$0] }
                    XCTAssertEqual(ax.count, outAxes.count, "\(ctx): rank")
                    for (j, a) in ax.enumerated() where j < outAxes.count { assertAxis(a, outAxes[j], ctx + " axis \(j) (\(how))") }
                }
            }
        }
        print("EMD: \(checked) reference signals matched bit-exactly")
        XCTAssertGreaterThan(checked, 30)
    }

    func testNeXusOutputKeepsValuesAndTypes() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let tmp = NSTemporaryDirectory() + "emd-nx-\(getpid())"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let ids = ["emd_velox/fei_emd_si.emd", "emd_velox/FFTComplexEven.emd", "emd_velox/fei_example_tem_stack.emd",
                   "emd_velox/Test SI 16x16 215 kx.emd", "emd_berkeley/py4DSTEM_size2x3x4x5.h5", "emd_berkeley/Si100_3D.emd",
                   "emd_berkeley/Acquisition_18.emd", "emd_berkeley/example_spectrum.emd"]
        for id in ids {
            let path = root + "/" + id
            guard FileManager.default.fileExists(atPath: path) else { print("skipped \(id): missing"); continue }
            let out = tmp + "/" + (id as NSString).lastPathComponent + ".nxs"
            let res = try Converter.convert(input: path, output: out, options: ConversionOptions(threads: 2))
            let file = try Catalog.open(path)
            for ds in file.datasets {
                let dpath = ds.name
                let (sha, shape, type) = try DataHash.sha256(nexus: out, name: ds.name)
                XCTAssertEqual(sha, try DataHash.sha256(ds), "\(id) \(ds.name) at \(dpath)")
                XCTAssertEqual(shape, ds.shape, "\(id) \(ds.name)")
                XCTAssertEqual(type, ds.elementType, "\(id) \(ds.name)")
            }
            XCTAssertEqual(res.datasets.count, file.datasets.count)
        }
    }

    /// Identification looks at the structure, not the extension: a Velox file is EMD under any
    /// name, a plain HDF5 file is not EMD even named .emd, and an HDF5 head that cannot be opened
    /// (a damaged file) stays "maybe" so that opening reports the damage.
    func testIdentify() throws {
        let velox = try makeVelox("v.emd")
        let renamed = dir + "/v.h5"
        try FileManager.default.copyItem(atPath: velox, toPath: renamed)
        XCTAssertEqual(EMDReader.identify(try Probe(path: velox)), .yes)
        XCTAssertEqual(EMDReader.identify(try Probe(path: renamed)), .yes)
        let plain = dir + "/plain.emd"
        let f = try HDF5File(creating: plain)
        try f.root.createGroup("stuff")
        try f.flush()
        XCTAssertEqual(EMDReader.identify(try Probe(path: plain)), .no)
        XCTAssertEqual(NeXusReader.identify(try Probe(path: plain)), .no)
        let h5 = EMDReader.hdf5Signature + [UInt8](repeating: 0, count: 100)
        XCTAssertEqual(EMDReader.identify(Probe(path: dir + "/missing.emd", head: h5, size: 108)), .maybe)
        var ub = [UInt8](repeating: 0, count: 512) + h5
        XCTAssertEqual(EMDReader.identify(Probe(path: dir + "/missing.emd", head: ub, size: Int64(ub.count))), .maybe)
        ub[512] = 0
        XCTAssertEqual(EMDReader.identify(Probe(path: dir + "/missing.emd", head: ub, size: Int64(ub.count))), .no)
    }

    // MARK: Synthetic files (bad input)

    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "emd-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes a raw uncompressed array as one chunk.
    func writeArray(_ g: HDF5Group, _ name: String, type: ElementType, shape: [Int], bytes: [UInt8]) throws {
        let d = try g.createChunkedDataset(name, type: type, shape: shape, chunk: shape, compression: .none, shuffle: false)
        try bytes.withUnsafeBytes { try d.writeChunk(offset: Array(repeating: 0, count: shape.count), data: $0) }
    }

    func metadataColumn(_ json: String) -> [UInt8] {
        var b = Array(json.utf8)
        b += [UInt8](repeating: 0, count: 60000 - b.count)
        return b
    }

    func le16(_ v: [UInt16]) -> [UInt8] { v.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }

    static let imageMeta = #"{"BinaryResult": {"Detector": "HAADF", "PixelSize": {"width": "1e-9", "height": "2e-9"}, "PixelUnitX": "m", "PixelUnitY": "m", "Offset": {"x": "0", "y": "0"}}, "Detectors": {"Detector-0": {"DetectorName": "SuperXG21", "Dispersion": "10", "OffsetEnergy": "-100"}}}"#

    func makeVelox(_ name: String, version: String = #"{"version": "4", "format": "Velox"}"#, imageMeta: String = imageMeta,
                   stream: [UInt16]? = nil, bincount: Int = 16) throws -> String {
        let path = dir + "/" + name
        let f = try HDF5File(creating: path)
        try f.root.writeString("Version", version)
        let data = try f.root.createGroup("Data")
        let img = try data.createGroup("Image/abc")
        try writeArray(img, "Data", type: .uint16, shape: [2, 3, 1], bytes: le16([1, 2, 3, 4, 5, 6]))
        try writeArray(img, "Metadata", type: .uint8, shape: [60000, 1], bytes: metadataColumn(imageMeta))
        if let stream {
            let si = try data.createGroup("SpectrumImage/si")
            try si.writeString("SpectrumImageSettings", #"{"startFramePosition": "1", "endFramePosition": "2"}"#)
            let s = try data.createGroup("SpectrumStream/s1")
            try s.writeString("AcquisitionSettings", #"{"bincount": "\#(bincount)", "StreamEncoding": "uint16"}"#)
            try writeArray(s, "Data", type: .uint16, shape: [stream.count, 1], bytes: le16(stream))
            try writeArray(s, "Metadata", type: .uint8, shape: [60000, 1], bytes: metadataColumn(#"{"BinaryResult": {"Detector": "SuperXG21"}, "Detectors": {"Detector-0": {"DetectorName": "SuperXG21", "Dispersion": "10", "OffsetEnergy": "-100"}}}"#))
        }
        try f.flush()
        return path
    }

    func testHDF5ButNotEMD() throws {
        let path = dir + "/plain.h5"
        let f = try HDF5File(creating: path)
        try f.root.createGroup("stuff")
        try f.flush()
        XCTAssertThrowsError(try Catalog.open(path)) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .unsupported)
            XCTAssertEqual(err?.code.exitCode, 65)
            // Says it is HDF5, what is in it, and which HDF5 layouts emconv knows.
            for s in ["HDF5 file that no reader claims", "top level: stuff", "Velox", "NXentry"] {
                XCTAssertTrue(err?.message.contains(s) ?? false, "\(s): \(e)")
            }
        }
    }

    func testMalformedVeloxJSON() throws {
        let bad = try makeVelox("badversion.emd", version: "{not json")
        XCTAssertThrowsError(try EMDReader.open(bad, emd: EMDOptions())) { e in
            XCTAssertEqual((e as? EMError)?.code, .badInput)
            XCTAssertTrue("\(e)".contains("Version"), "\(e)")
        }
        // Broken per-image metadata: the image is still read, uncalibrated, with a warning.
        let badMeta = try makeVelox("badmeta.emd", imageMeta: #"{"BinaryResult": {"PixelSize": "#)
        let f = try EMDReader.open(badMeta, emd: EMDOptions())
        XCTAssertEqual(f.datasets.count, 1)
        XCTAssertEqual(f.datasets[0].shape, [2, 3])
        XCTAssertEqual(try DataHash.bytes(f.datasets[0]), le16([1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(f.datasets[0].axes[0].units, "")
        XCTAssertTrue(f.warnings.contains { $0.contains("not valid JSON") }, "\(f.warnings)")
        // Missing keys: axes uncalibrated, no crash.
        let noKeys = try makeVelox("nokeys.emd", imageMeta: #"{"Something": {}}"#)
        let g = try EMDReader.open(noKeys, emd: EMDOptions())
        XCTAssertEqual(g.datasets[0].title, "image")
        XCTAssertEqual(g.datasets[0].axes.map(\.units), ["", ""])
        // Calibrated case: m → nm, height/width kept apart.
        let ok = try EMDReader.open(try makeVelox("ok.emd"), emd: EMDOptions())
        XCTAssertEqual(ok.datasets[0].axes[0].scale, 2, accuracy: 1e-12)
        XCTAssertEqual(ok.datasets[0].axes[1].scale, 1, accuracy: 1e-12)
        XCTAssertEqual(ok.datasets[0].axes[0].units, "nm")
    }

    func testSpectrumStreamDecodingAndHostileStreams() throws {
        let M: UInt16 = 0xFFFF
        // Raster 2x3 (from the image), 16 channels, 2 frames; frame 2 pixel 5 has no final marker.
        var s: [UInt16] = []
        for f in 0..<2 {
            for p in 0..<6 {
                s += Array(repeating: UInt16(p), count: f + 1)   // p counts in channel p (f+1 times)
                if !(f == 1 && p == 5) { s.append(M) }
            }
        }
        let path = try makeVelox("si.emd", stream: s)
        let file = try EMDReader.open(path, emd: EMDOptions())
        let eds = try XCTUnwrap(file.datasets.first { $0.signalKind == "eds" })
        XCTAssertEqual(eds.shape, [2, 3, 16])
        XCTAssertEqual(eds.elementType, .uint16)
        let v = try DataHash.bytes(eds)
        for p in 0..<6 {
            for ch in 0..<16 {
                let val = Int(v[(p * 16 + ch) * 2]) | Int(v[(p * 16 + ch) * 2 + 1]) << 8
                XCTAssertEqual(val, ch == p ? 3 : 0, "pixel \(p) channel \(ch)")
            }
        }
        XCTAssertEqual(eds.axes[2].units, "eV")
        XCTAssertEqual(eds.axes[2].offset, -100)
        // Per frame, and a frame range.
        var o = EMDOptions(); o.sumFrames = false; o.threads = 3
        let pf = try EMDReader.open(path, emd: o).datasets.first { $0.signalKind == "eds" }!
        XCTAssertEqual(pf.shape, [2, 2, 3, 16])
        let pv = try DataHash.bytes(pf)
        XCTAssertEqual(pv[((6 + 4) * 16 + 4) * 2], 2)   // frame 1, pixel 4, channel 4
        o = EMDOptions(); o.frameRange = 1..<2; o.blockBytes = 1   // one row per block
        let one = try EMDReader.open(path, emd: o).datasets.first { $0.signalKind == "eds" }!
        XCTAssertEqual(try DataHash.bytes(one), Array(pv[(6 * 16 * 2)...]))

        // Out-of-range channels and more pixels than the raster: warnings, values skipped.
        var hostile = s + [M]
        hostile.insert(5000, at: 0)
        hostile += Array(repeating: M, count: 20) + [3, 3, 3]
        let hp = try makeVelox("hostile.emd", stream: hostile)
        let hf = try EMDReader.open(hp, emd: EMDOptions())
        XCTAssertTrue(hf.warnings.contains { $0.contains("channels >= 16") }, "\(hf.warnings)")
        XCTAssertTrue(hf.warnings.contains { $0.contains("more pixels than the raster") || $0.contains("frames declared") }, "\(hf.warnings)")
        let hd = hf.datasets.first { $0.signalKind == "eds" }!
        XCTAssertNoThrow(try DataHash.bytes(hd))

        // Bincount out of range: stream skipped with a warning; the image remains.
        let bc = try makeVelox("bincount.emd", stream: s, bincount: 70000)
        let bf = try EMDReader.open(bc, emd: EMDOptions())
        XCTAssertEqual(bf.datasets.count, 1)
        XCTAssertTrue(bf.warnings.contains { $0.contains("bincount") }, "\(bf.warnings)")
    }
}
