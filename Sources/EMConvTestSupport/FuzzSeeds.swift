import CHDF5
import EMConvKit
import Foundation

/// Small generated inputs for the fuzz targets whose formats have no committed fixtures (MRC,
/// TIA, TIFF, Dectris), and the fixed companions those targets put beside the fuzzed bytes.
/// Nothing here comes from ../shared/testdata.
public enum FuzzSeeds {
    /// A Dectris acquisition: `NAME_master.h5` (detector fields, external link `data_000001`)
    /// and `NAME_data_000001.h5` with `frames` frames of `frame` uint16 pixels, one frame per
    /// chunk, bitshuffle with `codec` blocks (emconv's encoder) or uncompressed.
    public static func writeDectris(dir: String, name: String, frames: Int = 3, frame: [Int] = [8, 6],
                                    bitshuffle: Bool = true, codec: BitshuffleLZ4.BlockCodec = .lz4, dataFileName: String? = nil) throws {
        let dataName = dataFileName ?? "\(name)_data_000001.h5"
        let elements = frame.reduce(1, *)
        let h5 = try HDF5File(creating: dir + "/" + dataName, truncate: true)
        let g = try h5.root.createGroup("entry/data", nxClass: "NXdata")
        let ds = try g.createChunkedDataset("data", type: .uint16, shape: [frames] + frame, chunk: [1] + frame,
                                            compression: !bitshuffle ? .none : codec == .lz4 ? .bitshuffleLZ4 : .bitshuffleZstd(level: 1), shuffle: false)
        for f in 0..<frames {
            var raw = [UInt8](repeating: 0, count: elements * 2)
            for i in 0..<elements where (i + f) % 3 == 0 { raw[2 * i] = UInt8(truncatingIfNeeded: i * 7 + f) }
            var chunk = raw
            if bitshuffle {
                let cap = BitshuffleLZ4.compressBound(bytes: raw.count, elementSize: 2, blockElements: 0, codec: codec)
                var out = [UInt8](repeating: 0, count: cap)
                let n = try raw.withUnsafeBytes { src in
                    try out.withUnsafeMutableBytes {
                        try BitshuffleLZ4.encode(src, elementSize: 2, blockElements: 0, codec: codec, into: $0.baseAddress!, capacity: cap)
                    }
                }
                chunk = Array(out.prefix(n))
            }
            try chunk.withUnsafeBytes { try ds.writeChunk(offset: [f] + frame.map { _ in 0 }, data: $0) }
        }
        try h5.flush()
        let master = try HDF5File(creating: dir + "/\(name)_master.h5", truncate: true)
        let data = try master.root.createGroup("entry/data", nxClass: "NXdata")
        guard H5Lcreate_external(dataName, "/entry/data/data", data.id, "data_000001", hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)) >= 0 else {
            throw EMError(.writeError, file: dir + "/\(name)_master.h5", "cannot create the external link")
        }
        let det = try master.root.createGroup("entry/instrument/detector", nxClass: "NXdetector")
        try det.writeString("description", "Dectris QUADRO Si")
        try det.writeDoubles("count_time", [0.001], shape: [], units: "s")
        try det.writeDoubles("frame_time", [0.0011], shape: [], units: "s")
        try det.writeDoubles("x_pixel_size", [7.5e-5], shape: [], units: "m")
        try det.writeInts("bit_depth_image", [16], shape: [])
        let spec = try det.createGroup("detectorSpecific")
        try spec.writeString("data_collection_date", "2025-01-02T03:04:05.600+01:00")
        try spec.writeInts("ntrigger", [1], shape: [])
        try spec.writeInts("nimages", [Int64(frames)], shape: [])
        let ones = (0..<elements).map { _ in Float(1).bitPattern }
        try spec.writeArray("flatfield", type: .float32, shape: frame, bytes: ones.withUnsafeBytes { Array($0) })
        try master.flush()
    }

    /// Writes the seeds of `target` (mrc, tia, tiff, dectris, emd) into the existing folder `dir`,
    /// each file laid out as the target expects its input (see ``FuzzTarget``).
    public static func write(_ target: FuzzTarget, into dir: String) throws {
        func pattern(_ n: Int, _ k: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 * 31 + k) } }
        switch target {
        case .mrc:
            var specs: [(String, MRCSpec)] = []
            for mode in [0, 1, 2, 6, 12] { specs.append(("mode\(mode)", MRCSpec(nx: 6, ny: 4, nz: 3, mode: mode))) }
            var big = MRCSpec(nx: 5, ny: 3, nz: 2, mode: 1); big.bigEndian = true
            specs.append(("big-endian", big))
            var fei = MRCSpec(nx: 4, ny: 4, nz: 6, mode: 2); fei.extended = .fei(version: 1, records: 6); fei.feiScan = (2, 3)
            specs.append(("fei-ext", fei))
            for (n, s) in specs { _ = try MRCWriter.write(s, to: "\(dir)/seed-\(n).mrc") }
        case .tia:
            let tmp = dir + "/.tia"
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: tmp) }
            let cases: [(String, UInt16, Bool, Int16, [Int], [SERWriter.Dim], Bool)] = [
                ("image-u16", 0x0210, true, 2, [4, 5], [SERWriter.Dim(2)], false),
                ("spectra-f32", 0x0220, false, 7, [16], [SERWriter.Dim(3, delta: 1e-9, description: "Position", units: "meters"),
                                                         SERWriter.Dim(2, delta: 1e-9, description: "Position", units: "meters")], true),
                ("image-i32", 0x0220, true, 6, [3, 3], [SERWriter.Dim(1)], true),
            ]
            for (n, version, image, type, frame, dims, pos) in cases {
                let size = SERWriter.valueSize(type) * frame.reduce(1, *)
                try SERWriter.write("\(tmp)/\(n)_1.ser", version: version, image: image, dataType: type, frame: frame,
                                    dims: dims, positionTags: pos) { pattern(size, $0) }
                // Even first byte: a .ser beside the fixed .emi; odd: an .emi beside the fixed .ser.
                try Data([0] + Array(FileManager.default.contents(atPath: "\(tmp)/\(n)_1.ser")!)).write(to: URL(fileURLWithPath: "\(dir)/seed-ser-\(n)"))
            }
            try SERWriter.writeEMI("\(tmp)/x.emi", objects: [("STEM BF", "Image", "input_1.ser", SERWriter.objectInfo())])
            try Data([1] + Array(FileManager.default.contents(atPath: "\(tmp)/x.emi")!)).write(to: URL(fileURLWithPath: "\(dir)/seed-emi"))
        case .tiff:
            let px16 = pattern(6 * 4 * 2, 3), px8 = pattern(5 * 3, 1), pxf = pattern(4 * 4 * 4, 9)
            try TIFFFixtureWriter.build("\(dir)/seed-u16.tif", pages: [.init(width: 6, height: 4, bitsPerSample: 16, rowsPerStrip: 2, pixels: px16)])
            try TIFFFixtureWriter.build("\(dir)/seed-u8-stack-be.tif", pages: [.init(width: 5, height: 3, bitsPerSample: 8, pixels: px8),
                                                                              .init(width: 5, height: 3, bitsPerSample: 8, pixels: px8)], bigEndian: true)
            try TIFFFixtureWriter.build("\(dir)/seed-f32-big.tif", pages: [.init(width: 4, height: 4, bitsPerSample: 32, sampleFormat: 3, pixels: pxf,
                                                                                tags: [(270, .ascii("ImageJ=1.53t\nunit=micron\n"))])], big: true)
            try TIFFFixtureWriter.writeTiled("\(dir)/seed-tiled.tif", big: false, width: 20, height: 18, pages: 2, tile: 16) { UInt16(truncatingIfNeeded: $0 * 1000 + $1 * 20 + $2) }
        case .dectris:
            let tmp = dir + "/.dectris"
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: tmp) }
            for (n, bs, codec) in [("bslz4", true, BitshuffleLZ4.BlockCodec.lz4), ("bszstd", true, .zstd(level: 1)), ("plain", false, .lz4)] {
                try writeDectris(dir: tmp, name: n, bitshuffle: bs, codec: codec, dataFileName: "input_data_000001.h5")
                // Even first byte: the master beside the fixed data file; odd: a data file beside the fixed master.
                try Data([0] + Array(FileManager.default.contents(atPath: "\(tmp)/\(n)_master.h5")!)).write(to: URL(fileURLWithPath: "\(dir)/seed-master-\(n)"))
                try Data([1] + Array(FileManager.default.contents(atPath: "\(tmp)/input_data_000001.h5")!)).write(to: URL(fileURLWithPath: "\(dir)/seed-data-\(n)"))
            }
        case .emd:
            _ = try HDF5Regressions.base(at: "\(dir)/seed-berkeley.emd")
            var v = VeloxEELSEDSSpec()
            v.eelsH = 2; v.eelsW = 3; v.channels = 16; v.eelsRanges = [(-20, 0.25)]
            v.edsH = 4; v.edsW = 4; v.bincount = 32
            try VeloxWriter.writeEELSWithEDSStream(v, to: "\(dir)/seed-velox.emd")
        case .deflate:
            // Byte 0: planes - 1, byte 1: level - 1, then a chunk: sparse 16-bit counts, float32-like noise, a ramp.
            var sparse = [UInt8](repeating: 0, count: 4096)
            for i in stride(from: 0, to: sparse.count, by: 37) { sparse[i] = UInt8(truncatingIfNeeded: i / 37 + 1) }
            let noise = (0..<4096).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
            let ramp = (0..<4096).map { UInt8(truncatingIfNeeded: $0) }
            for (n, head, body) in [("sparse-u16", [1, 0], sparse), ("float-l1", [3, 0], noise), ("ramp-l6", [0, 5], ramp)] as [(String, [UInt8], [UInt8])] {
                try Data(head + body).write(to: URL(fileURLWithPath: "\(dir)/seed-\(n)"))
            }
        default:
            throw EMError(.usage, "no generated seeds for the \(target.rawValue) target")
        }
    }
}
