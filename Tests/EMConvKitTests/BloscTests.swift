import CBlosc
import CHDF5
@testable import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Blosc (HDF5 filter 32001) chunks as input: decoded by emconv in the Dectris chunk path and by
/// the decoder emconv registers with HDF5 everywhere else; a filter emconv lacks is named.
extension DectrisTests {
    /// Chunks written by h5py + hdf5plugin 7.1: 1000 uint16 values (i mod 37 where i mod 5 is 0,
    /// else 0), LZ4 with bit shuffle and zstd with byte shuffle.
    static let bloscLZ4BitShuffle = "02012402d0070000d00700002702000014000000fd010000a0208000020801041040080a005000010410000a0010400a005002082080100a005000020820000a00002d00602004104000210a0010000a000437000141001042370005410000370001410010840a00054100013700024100f003840040080180100000210010020020040042140010001400600200210000421400804008008410000801230051210400420037005e00801000083700014b000e3700014b000b3700009b0090000410020001800042a0005100080104009b0040000820040e01a184104000200010020800dc00a00010400800040002082122014120041000dc00004b00e100080004104200018000400820005401004b00005500302084006400036e00024b00220084dc0011025f00200021b900100178001101a500008700000e0100b900100278001002130110003c00000e01000401013c0000be002021008700001e0010013b0110003101013c0000870000820010023b01003c0000be00508400400000220110006301220084050010001d01030500522104000008050010009f010305002042083700010500033c00034100003700010500033c0016003c0017213c0000db010178006100000008000087000205001002910000180050100000008009000105005004000000200e0001050010010a000005000e3c00054100013700010500003c000105000e3c000f0200df5000000000000e0000001f000100ffffffd2500000000000"
    static let bloscZstdByteShuffle = "02019102d0070000d007000069000000140000005100000028b52ffd60d0063d0200924b0e091038be19a0040b59293f78efb3a7fe79e58b2f3ce0b7b73e7ae68f3fbce0bbc77e7ae793279ef0df6b5f3df4cb1b6ff8c0737fbdf4cd233f0200e8a102b994bcca4801"

    func testDecodesBloscChunksWrittenByHdf5plugin() throws {
        let expected = bytes((0..<1000).map { UInt16($0 % 5 == 0 ? $0 % 37 : 0) })
        for h in [Self.bloscLZ4BitShuffle, Self.bloscZstdByteShuffle] {
            let chunk = hex(h)
            var out = [UInt8](repeating: 0, count: 2000)
            try chunk.withUnsafeBytes { src in
                XCTAssertEqual(BloscChunk.declaredSize(src), 2000)
                try out.withUnsafeMutableBytes { try BloscChunk.decode(src, into: $0) }
            }
            XCTAssertEqual(out, expected)
            // A wrong expected size and a cut frame are one-line errors, not a read past the end.
            var small = [UInt8](repeating: 0, count: 1998)
            XCTAssertThrowsError(try chunk.withUnsafeBytes { src in try small.withUnsafeMutableBytes { try BloscChunk.decode(src, into: $0) } })
            XCTAssertThrowsError(try Array(chunk.prefix(chunk.count - 9)).withUnsafeBytes { src in
                try out.withUnsafeMutableBytes { try BloscChunk.decode(src, into: $0) }
            })
        }
    }

    /// Hostile chunks: the pinned frames with 1-8 bytes changed (a third in the 16-byte header)
    /// or cut anywhere, 4000 times (seeded): each decodes or throws one line, never crashes, and a
    /// declared size other than the expected one is refused before decoding.
    func testDamagedBloscFramesThrowOrDecodeButNeverCrash() throws {
        var rng = SplitMix64(seed: 32001)
        let pinned = [hex(Self.bloscLZ4BitShuffle), hex(Self.bloscZstdByteShuffle)]
        var out = [UInt8](repeating: 0, count: 2000)
        var refused = 0
        for i in 0..<4000 {
            var chunk = pinned[i % 2]
            if i % 5 == 0 {
                chunk = Array(chunk.prefix(Int(rng.next() % UInt64(chunk.count))))
            } else {
                for _ in 0..<(1 + Int(rng.next() % 8)) {
                    let at = rng.next() % 3 == 0 ? Int(rng.next() % 16) : Int(rng.next() % UInt64(chunk.count))
                    chunk[at] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            let declared = chunk.withUnsafeBytes { BloscChunk.declaredSize($0) }
            do {
                try chunk.withUnsafeBytes { src in try out.withUnsafeMutableBytes { try BloscChunk.decode(src, into: $0) } }
                XCTAssertEqual(declared, 2000, "decoded a frame declaring \(String(describing: declared)) bytes")
            } catch let e as EMError {
                refused += 1
                XCTAssertFalse(e.message.contains("\n"))
            }
        }
        XCTAssertGreaterThan(refused, 1000)
    }

    /// Replaces data file `path` by one of the same frames in Blosc chunks made by libblosc.
    func writeBloscDataFile(_ path: String, frames: ArraySlice<UInt8>, count n: Int, frame: [Int], type: ElementType,
                            chunkFrames: Int, codec: String, shuffle: Int32) throws {
        try FileManager.default.removeItem(atPath: path)
        let e = type.size
        let frameBytes = frame.reduce(1, *) * e
        let chunkBytes = chunkFrames * frameBytes
        let h5 = try HDF5File(creating: path)
        let g = try h5.root.createGroup("entry/data", nxClass: "NXdata")
        var dims = ([n] + frame).map { hsize_t($0) }
        var cdims = ([chunkFrames] + frame).map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        let dcpl = H5Pcreate(emc_P_DATASET_CREATE())
        XCTAssertGreaterThanOrEqual(H5Pset_chunk(dcpl, Int32(cdims.count), &cdims), 0)
        let code: UInt32 = ["blosclz": 0, "lz4": 1, "lz4hc": 2, "zlib": 4, "zstd": 5][codec]!
        var cd: [UInt32] = [2, 2, UInt32(e), UInt32(chunkBytes), 5, UInt32(shuffle), code]
        XCTAssertGreaterThanOrEqual(H5Pset_filter(dcpl, H5Z_filter_t(BloscChunk.filterID), UInt32(emc_Z_FLAG_OPTIONAL()), cd.count, &cd), 0)
        let ft = [1: emc_T_STD_U8LE(), 2: emc_T_STD_U16LE(), 4: emc_T_STD_U32LE()][e]!
        let d = H5Dcreate2(g.id, "data", ft, space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
        XCTAssertGreaterThanOrEqual(d, 0)
        for c in 0..<((n + chunkFrames - 1) / chunkFrames) {
            var chunk = [UInt8](repeating: 0, count: chunkBytes)
            let first = frames.startIndex + c * chunkBytes
            let have = min(chunkBytes, frames.startIndex + n * frameBytes - first)
            chunk.replaceSubrange(0..<have, with: frames[first..<(first + have)])
            var enc = [UInt8](repeating: 0, count: chunkBytes + BloscChunk.maxOverhead)
            let m = blosc_compress_ctx(5, shuffle, e, chunkBytes, chunk, &enc, enc.count, codec, 0, 1)
            XCTAssertGreaterThan(m, 0, codec)
            var off = ([c * chunkFrames] + frame.map { _ in 0 }).map { hsize_t($0) }
            XCTAssertGreaterThanOrEqual(H5Dwrite_chunk(d, hid_t(H5P_DEFAULT), 0, &off, Int(m), enc), 0)
        }
        H5Dclose(d)
        H5Pclose(dcpl)
        H5Sclose(space)
        try h5.flush()
    }

    /// An acquisition whose data files hold Blosc chunks (codec, shuffle 0/1/2, chunk frames).
    func writeBloscAcquisition(_ name: String, type: ElementType, frame: [Int], perFile: [Int], chunkFrames: Int,
                               codec: String, shuffle: Int32) throws -> Acquisition {
        let d = try dir(name)
        let acq = try writeAcquisition(d, name, type: type, frame: frame, perFile: perFile, compression: .none)
        let frameBytes = frame.reduce(1, *) * type.size
        var start = 0
        for (f, n) in perFile.enumerated() {
            let path = d + "/\(name)_data_\(String(format: "%06d", f + 1)).h5"
            try writeBloscDataFile(path, frames: acq.frames[(start * frameBytes)..<((start + n) * frameBytes)], count: n, frame: frame,
                                   type: type, chunkFrames: chunkFrames, codec: codec, shuffle: shuffle)
            start += n
        }
        return acq
    }

    func testBloscChunksOfEveryCodecAndShuffleReadBitExactInBothPaths() throws {
        let cases: [(String, Int32, ElementType, [Int], [Int], Int)] = [
            ("lz4", 2, .uint16, [64, 48], [5, 4], 1),   // bit shuffle, two data files
            ("zstd", 1, .uint32, [40, 40], [6], 2),     // byte shuffle, chunks of two frames
            ("blosclz", 0, .uint8, [13, 11], [5], 1),   // no shuffle, 143-byte frames
            ("zlib", 1, .uint16, [24, 20], [8], 3),     // the last chunk a third full
            ("lz4hc", 1, .uint16, [32, 32], [4], 1),
        ]
        for (k, (codec, shuffle, type, frame, perFile, chunkFrames)) in cases.enumerated() {
            let acq = try writeBloscAcquisition("b\(k)", type: type, frame: frame, perFile: perFile, chunkFrames: chunkFrames,
                                                codec: codec, shuffle: shuffle)
            let file = try Catalog.open(acq.master)
            let ds = file.datasets[0]
            XCTAssertTrue(file.variant.contains("Blosc"), "\(codec): \(file.variant)")
            XCTAssertEqual(ds.elementType, type)
            XCTAssertEqual(try readAll(ds), acq.frames, "\(codec) shuffle \(shuffle): emconv's own chunk decoding")
            // HDF5's path: the registered decoder, reading the first data file whole.
            let n = perFile[0]
            let frameBytes = frame.reduce(1, *) * type.size
            var whole = [UInt8](repeating: 0, count: n * frameBytes)
            try HDF5.lock.withLock {
                let h5 = try HDF5File(reading: (acq.master as NSString).deletingLastPathComponent + "/b\(k)_data_000001.h5")
                let d = try XCTUnwrap(try h5.root.openDataset("entry/data/data"))
                try whole.withUnsafeMutableBytes { try d.read(start: [0, 0, 0], count: [n] + frame, as: type, into: $0) }
            }
            XCTAssertEqual(whole, Array(acq.frames[0..<(n * frameBytes)]), "\(codec) shuffle \(shuffle): HDF5's filter path")
        }
    }

    func testDamagedBloscChunkIsAOneLineErrorNamingFileAndChunk() throws {
        let acq = try writeBloscAcquisition("bd", type: .uint16, frame: [32, 32], perFile: [3], chunkFrames: 1, codec: "lz4", shuffle: 1)
        let p = (acq.master as NSString).deletingLastPathComponent + "/bd_data_000001.h5"
        let loc = try XCTUnwrap(HDF5.lock.withLock { try? HDF5File(reading: p).root.openDataset("entry/data/data")?.chunkLocation(at: [1, 0, 0]) })
        let fh = try XCTUnwrap(FileHandle(forUpdatingAtPath: p))
        fh.seek(toFileOffset: loc.address + 4)
        fh.write(Data([0, 0, 0, 0x40]))  // declared uncompressed size 1 GiB
        fh.closeFile()
        let ds = try Catalog.open(acq.master).datasets[0]
        XCTAssertThrowsError(try readAll(ds)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("bd_data_000001.h5") && s.contains("chunk 1") && s.contains("Blosc"), s)
            XCTAssertFalse(s.contains("\n"), s)
        }
    }

    /// A dataset compressed with a filter emconv has no decoder for (SZ, 32017): the read error
    /// names the filter instead of guessing.
    func testUnavailableFilterIsNamedInTheReadError() throws {
        let p = try dir("sz") + "/sz.h5"
        try HDF5.lock.withLock {
            let h5 = try HDF5File(creating: p)
            var dims: [hsize_t] = [4, 8]
            let space = H5Screate_simple(2, &dims, nil)
            let dcpl = H5Pcreate(emc_P_DATASET_CREATE())
            XCTAssertGreaterThanOrEqual(H5Pset_chunk(dcpl, 2, &dims), 0)
            XCTAssertGreaterThanOrEqual(H5Pset_filter(dcpl, 32017, UInt32(emc_Z_FLAG_OPTIONAL()), 0, nil), 0)
            let d = H5Dcreate2(h5.root.id, "data", emc_T_STD_U16LE(), space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
            XCTAssertGreaterThanOrEqual(d, 0)
            var off: [hsize_t] = [0, 0]
            let junk = [UInt8](repeating: 7, count: 40)
            XCTAssertGreaterThanOrEqual(H5Dwrite_chunk(d, hid_t(H5P_DEFAULT), 0, &off, junk.count, junk), 0)
            H5Dclose(d)
            H5Pclose(dcpl)
            H5Sclose(space)
            try h5.flush()
        }
        var out = [UInt8](repeating: 0, count: 64)
        XCTAssertThrowsError(try HDF5.lock.withLock {
            let d = try XCTUnwrap(try HDF5File(reading: p).root.openDataset("data"))
            try out.withUnsafeMutableBytes { try d.read(start: [0, 0], count: [4, 8], as: .uint16, into: $0) }
        }) { e in
            XCTAssertTrue("\(e)".contains("32017 (SZ)"), "\(e)")
        }
    }
}
