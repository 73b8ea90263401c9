import CHDF5
@testable import EMConvKit
import EMConvTestSupport
@testable import FormatDectris
import Foundation
import XCTest

/// The bitshuffle-LZ4 codec (filter 32008), the Dectris reader on the shared ARINA acquisition
/// and on acquisitions written here (own encoder; check_dectris.py covers hdf5plugin's), and
/// bitshuffle-lz4 as an output compression.
final class DectrisTests: TempDirectoryTestCase {
    // MARK: Codec

    func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    func decode(_ chunk: [UInt8], elementSize: Int, bytes: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes)
        try chunk.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes { try BitshuffleLZ4.decode(src, elementSize: elementSize, into: $0) }
        }
        return out
    }

    func encode(_ data: [UInt8], elementSize: Int, blockElements: Int = 0, codec: BitshuffleLZ4.BlockCodec = .lz4) throws -> [UInt8] {
        let cap = BitshuffleLZ4.compressBound(bytes: data.count, elementSize: elementSize, blockElements: blockElements, codec: codec)
        var out = [UInt8](repeating: 0, count: cap)
        let n = try data.withUnsafeBytes { src in
            try out.withUnsafeMutableBytes {
                try BitshuffleLZ4.encode(src, elementSize: elementSize, blockElements: blockElements, codec: codec, into: $0.baseAddress!, capacity: cap)
            }
        }
        return Array(out.prefix(n))
    }

    func bytes<T: FixedWidthInteger>(_ v: [T]) -> [UInt8] { v.withUnsafeBytes { Array($0) } }

    /// Chunks written by h5py + hdf5plugin 7.1 (read with read_direct_chunk): 21 uint16 (one
    /// partial block of 16 + 5 elements stored as they are) and 300 uint32 in blocks of 64
    /// (4 blocks, a partial block of 40, 4 trailing elements).
    func testDecodesChunksWrittenByHdf5plugin() throws {
        let a = hex("000000000000002a0000200000000022f011aaaaccccf0f0aa5566cc1e3c54a9329b0e87fe8054d532b3a42538c6c00700f890bb49c702d3bbde74ea")
        let expectA = (0..<21).map { UInt16($0 * 3001 % 65521) }
        XCTAssertEqual(try decode(a, elementSize: 2, bytes: 42), bytes(expectA))
        let b = hex(Self.hdf5pluginU32Blocks64)
        let expectB = (0..<300).map { UInt32(truncatingIfNeeded: UInt64($0) * UInt64($0) * UInt64($0) % 4_294_967_291) }
        XCTAssertEqual(try decode(b, elementSize: 4, bytes: 1200), bytes(expectB))
        // Our encoding of the same values decodes to them too (LZ4 bytes may differ by library version).
        XCTAssertEqual(try decode(try encode(bytes(expectB), elementSize: 4, blockElements: 64), elementSize: 4, bytes: 1200), bytes(expectB))
    }

    func testRoundTripsEveryElementSizeLengthAndBlockSize() throws {
        var rng = SystemRandomNumberGenerator()
        for e in [1, 2, 3, 4, 8] {
            for n in [0, 1, 7, 8, 9, 143, 2048, 4096 + 13, 10_000] {
                for block in [0, 8, 64, 1000 / 8 * 8] {
                    let data = (0..<(n * e)).map { i in i % 5 == 0 ? UInt8.random(in: 0...255, using: &rng) : 0 }
                    let enc = try encode(data, elementSize: e, blockElements: block)
                    XCTAssertLessThanOrEqual(enc.count, BitshuffleLZ4.compressBound(bytes: data.count, elementSize: e, blockElements: block))
                    XCTAssertEqual(try decode(enc, elementSize: e, bytes: data.count), data, "e=\(e) n=\(n) block=\(block)")
                }
            }
        }
    }

    func testBitTranspositionPutsBitKOfByteJInRow8JPlusK() {
        // 8 uint16: element i has only bit 9 (byte 1, bit 1) set when i is odd.
        let src: [UInt16] = (0..<8).map { $0 % 2 == 1 ? 1 << 9 : 0 }
        var out = [UInt8](repeating: 0, count: 16)
        src.withUnsafeBytes { s in out.withUnsafeMutableBytes { BitshuffleLZ4.bitshuffle(s.baseAddress!, into: $0.baseAddress!, elements: 8, elementSize: 2) } }
        var expect = [UInt8](repeating: 0, count: 16)
        expect[9] = 0b1010_1010
        XCTAssertEqual(out, expect)
    }

    func testRejectsDamagedChunksWithoutCrashing() throws {
        let data = bytes((0..<1000).map { UInt32($0 % 17) })
        let good = try encode(data, elementSize: 4)
        func fails(_ chunk: [UInt8], _ bytes: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try decode(chunk, elementSize: 4, bytes: bytes), what, file: file, line: line) { e in
                XCTAssertTrue((e as? EMError)?.message.hasPrefix("bitshuffle-LZ4 chunk:") == true, "\(e)", file: file, line: line)
            }
        }
        fails(good, 4004, "declared size differs from the frame size")
        fails(Array(good.prefix(11)), 4000, "shorter than the header")
        fails(Array(good.prefix(good.count - 3)), 4000, "cut short")
        var badBlock = good
        badBlock[11] = 12  // 12 bytes = 3 elements: not a multiple of 8
        fails(badBlock, 4000, "block size not a multiple of 8 elements")
        var past = good
        past[12] = 0x7F  // first block's compressed size far past the end
        fails(past, 4000, "block size past the end")
        // Random damage: an error or (rarely) wrong values, never a crash.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var c = good
            for _ in 0..<3 { c[Int.random(in: 12..<c.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            _ = try? decode(c, elementSize: 4, bytes: 4000)
        }
    }

    func testCompressionParsesBitshuffleSpellings() throws {
        XCTAssertEqual(try Compression.parse("bitshuffle-lz4"), .bitshuffleLZ4)
        XCTAssertEqual(try Compression.parse("BSLZ4"), .bitshuffleLZ4)
        XCTAssertEqual(Compression.bitshuffleLZ4.description, "bitshuffle-lz4")
        XCTAssertThrowsError(try Compression.parse("bitshuffle-lz4:3"))
    }

    // MARK: Generated acquisitions

    struct Acquisition {
        var master: String
        var frames: [UInt8]
        var frameCount: Int
    }

    /// Writes `NAME_master.h5` with Dectris' detector fields and `NAME_data_NNNNNN.h5` files of
    /// `perFile` frames, bitshuffle-LZ4 chunks of `chunkFrames` frames encoded by emconv.
    func writeAcquisition(_ dir: String, _ name: String, type: ElementType, frame: [Int], perFile: [Int], chunkFrames: Int = 1,
                          ntrigger: Int = 1, nimages: Int? = nil, compression: Compression = .bitshuffleLZ4) throws -> Acquisition {
        let total = perFile.reduce(0, +)
        let frameElements = frame.reduce(1, *)
        let e = type.size
        var rng = SystemRandomNumberGenerator()
        var frames = [UInt8](repeating: 0, count: total * frameElements * e)
        for i in 0..<(total * frameElements) where i % 3 == 0 || i % (frameElements) == 5 {
            for k in 0..<(i % frameElements == 5 ? e : 1) { frames[i * e + k] = UInt8.random(in: 0...255, using: &rng) }
        }
        var start = 0
        var names: [String] = []
        for (f, n) in perFile.enumerated() {
            let fname = "\(name)_data_\(String(format: "%06d", f + 1)).h5"
            names.append(fname)
            let h5 = try HDF5File(creating: dir + "/" + fname)
            let g = try h5.root.createGroup("entry/data", nxClass: "NXdata")
            let ds = try g.createChunkedDataset("data", type: type, shape: [n] + frame, chunk: [chunkFrames] + frame,
                                                compression: compression, shuffle: false)
            let chunkBytes = chunkFrames * frameElements * e
            for c in 0..<((n + chunkFrames - 1) / chunkFrames) {
                var chunk = [UInt8](repeating: 0, count: chunkBytes)
                let first = (start + c * chunkFrames) * frameElements * e
                let have = min(chunkBytes, (start + n) * frameElements * e - first)
                chunk.replaceSubrange(0..<have, with: frames[first..<(first + have)])
                let enc = compression == .none ? chunk : try encode(chunk, elementSize: e, codec: compression.bitshuffleCodec ?? .lz4)
                try enc.withUnsafeBytes { try ds.writeChunk(offset: [c * chunkFrames] + frame.map { _ in 0 }, data: $0) }
            }
            try h5.flush()
            start += n
        }
        let master = dir + "/\(name)_master.h5"
        let h5 = try HDF5File(creating: master)
        let data = try h5.root.createGroup("entry/data", nxClass: "NXdata")
        for (i, fname) in names.enumerated() {
            XCTAssertGreaterThanOrEqual(H5Lcreate_external(fname, "/entry/data/data", data.id, "data_\(String(format: "%06d", i + 1))",
                                                           hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), 0)
        }
        let det = try h5.root.createGroup("entry/instrument/detector", nxClass: "NXdetector")
        try det.writeString("description", "Dectris QUADRO Si")
        try det.writeString("detector_number", "Q-01-0042")
        try det.writeDoubles("count_time", [0.001], shape: [], units: "s")
        try det.writeDoubles("frame_time", [0.0011], shape: [], units: "s")
        try det.writeDoubles("threshold_energy", [4000], shape: [], units: "eV")
        try det.writeDoubles("x_pixel_size", [7.5e-5], shape: [], units: "m")
        try det.writeInts("bit_depth_image", [Int64(8 * e)], shape: [])
        try det.writeInts("saturation_value", [Int64(min(Int64(UInt32.max), (Int64(1) << (8 * e)) - 1))], shape: [])
        let spec = try det.createGroup("detectorSpecific")
        try spec.writeString("software_version", "1.8.0")
        try spec.writeString("data_collection_date", "2025-01-02T03:04:05.600+01:00")
        try spec.writeInts("ntrigger", [Int64(ntrigger)], shape: [])
        try spec.writeInts("nimages", [Int64(nimages ?? total)], shape: [])
        try spec.writeArray("flatfield", type: .float32, shape: frame, bytes: bytes((0..<frameElements).map { Float(1 + Double($0) / 1000).bitPattern }))
        try spec.writeArray("pixel_mask", type: .uint32, shape: frame, bytes: bytes((0..<frameElements).map { UInt32($0 == 0 ? 1 : 0) }))
        try h5.flush()
        return Acquisition(master: master, frames: frames, frameCount: total)
    }

    func readAll(_ ds: Dataset) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ds.frameCount * ds.frameBytes)
        try out.withUnsafeMutableBytes { buf in
            for i in 0..<ds.frameCount {
                try ds.source.readFrame(i, into: UnsafeMutableRawBufferPointer(rebasing: buf[(i * ds.frameBytes)..<((i + 1) * ds.frameBytes)]))
            }
        }
        return out
    }

    func testGeneratedAcquisitionsReadBitExactInTheirStoredType() throws {
        let cases: [(ElementType, [Int], [Int], Int)] = [
            (.uint8, [13, 11], [5, 4], 1),      // 143 elements: a partial block and 7 trailing elements
            (.uint16, [64, 48], [8, 8, 4], 1),  // three data files
            (.uint32, [96, 96], [6], 1),
            (.uint32, [16, 24], [7], 2),        // chunks of two frames, the last half empty
        ]
        for (k, (type, frame, perFile, chunkFrames)) in cases.enumerated() {
            let acq = try writeAcquisition(try dir("c\(k)"), "c\(k)", type: type, frame: frame, perFile: perFile, chunkFrames: chunkFrames)
            let file = try Catalog.open(acq.master)
            XCTAssertEqual(file.format, "dectris")
            let ds = file.datasets[0]
            XCTAssertEqual(ds.elementType, type, "case \(k)")
            XCTAssertEqual(ds.frameShape, frame)
            XCTAssertEqual(ds.frameCount, acq.frameCount)
            XCTAssertEqual(try readAll(ds), acq.frames, "case \(k): frames bit-exact")
            XCTAssertEqual(file.files.count, 1 + perFile.count)
            XCTAssertEqual(ds.metadata.counterDepthBits, 8 * type.size)
        }
    }

    /// Data files whose chunks are bitshuffle + zstd (filter 32008, cd_values[4] = 3) are decoded by
    /// emconv's chunk path, bit-exact, and named so in the variant.
    func testBitshuffleZstdAcquisitionsReadBitExact() throws {
        let cases: [(ElementType, [Int], [Int], Int)] = [(.uint8, [13, 11], [5], 1), (.uint16, [64, 48], [4, 3], 1), (.uint32, [16, 24], [7], 2)]
        for (k, (type, frame, perFile, chunkFrames)) in cases.enumerated() {
            let acq = try writeAcquisition(try dir("z\(k)"), "z\(k)", type: type, frame: frame, perFile: perFile, chunkFrames: chunkFrames,
                                           compression: .bitshuffleZstd(level: 3))
            let file = try Catalog.open(acq.master)
            XCTAssertTrue(file.variant.contains("bitshuffle-zstd"), file.variant)
            XCTAssertEqual(try readAll(file.datasets[0]), acq.frames, "case \(k): frames bit-exact")
        }
    }

    func testNtriggerTimesNimagesGivesTheScanShapeAndOptionOverrides() throws {
        let acq = try writeAcquisition(try dir("s"), "s", type: .uint16, frame: [8, 8], perFile: [12], ntrigger: 3, nimages: 4)
        XCTAssertEqual(try Catalog.open(acq.master).datasets[0].shape, [3, 4, 8, 8])
        var o = OptionValues()
        o.set("scan-shape", "2,6")
        let ds = try Catalog.open(acq.master, options: o).datasets[0]
        XCTAssertEqual(ds.shape, [2, 6, 8, 8])
        XCTAssertEqual(ds.metadata.scanShapeSource, "--scan-shape")
    }

    func testMissingDataFileExits66NamingIt() throws {
        let d = try dir("m")
        let acq = try writeAcquisition(d, "m", type: .uint16, frame: [8, 8], perFile: [3, 3])
        try FileManager.default.removeItem(atPath: d + "/m_data_000002.h5")
        let r = try CLIRunner.run(["convert", acq.master, "-o", d + "/out.nxs"])
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertTrue(r.stderr.contains("m_data_000002.h5") && r.stderr.contains("missing"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d + "/out.nxs"))
    }

    func testTruncatedDataFileKeepsCompleteFramesAndWarns() throws {
        let d = try dir("t")
        let acq = try writeAcquisition(d, "t", type: .uint16, frame: [32, 32], perFile: [4, 6])
        let p = d + "/t_data_000002.h5"
        let last = try XCTUnwrap(HDF5.lock.withLock { () -> HDF5ChunkLocation? in
            let f = try? HDF5File(reading: p)
            return f?.root.openDataset("entry/data/data")?.chunkLocation(at: [5, 0, 0])
        })
        XCTAssertTrue(truncate(p, off_t(last.address) + off_t(last.size / 2)) == 0)
        let file = try Catalog.open(acq.master)
        let ds = file.datasets[0]
        XCTAssertEqual(ds.frameCount, 9)
        XCTAssertTrue(file.warnings.contains { $0.contains("t_data_000002.h5") && $0.contains("kept 5 complete frames of 6") }, "\(file.warnings)")
        XCTAssertEqual(try readAll(ds), Array(acq.frames.prefix(9 * 32 * 32 * 2)))
    }

    func testDataFileIsACompanionAndOpensItsMaster() throws {
        let d = try dir("c")
        let acq = try writeAcquisition(d, "c", type: .uint8, frame: [4, 4], perFile: [2, 2])
        XCTAssertEqual(DectrisReader.companions(of: acq.master), [d + "/c_data_000001.h5", d + "/c_data_000002.h5"])
        let f = try Catalog.open(d + "/c_data_000002.h5")
        XCTAssertEqual(f.path, acq.master)
        XCTAssertEqual(f.datasets[0].frameCount, 4)
    }

    func testDamagedChunkIsAOneLineErrorNamingFileAndChunk() throws {
        try damagedChunkIsAOneLineError(.bitshuffleLZ4, "x")
    }

    func testDamagedBitshuffleZstdChunkIsAOneLineErrorNamingFileAndChunk() throws {
        try damagedChunkIsAOneLineError(.bitshuffleZstd(level: 1), "xz")
    }

    /// Chunk 1 declares 2 GiB: refused before allocating, one line naming the file and the chunk.
    func damagedChunkIsAOneLineError(_ compression: Compression, _ name: String) throws {
        let d = try dir(name)
        let acq = try writeAcquisition(d, name, type: .uint32, frame: [16, 16], perFile: [3], compression: compression)
        let p = d + "/\(name)_data_000001.h5"
        let loc = try XCTUnwrap(HDF5.lock.withLock { try? HDF5File(reading: p).root.openDataset("entry/data/data")?.chunkLocation(at: [1, 0, 0]) })
        let fh = try XCTUnwrap(FileHandle(forUpdatingAtPath: p))
        fh.seek(toFileOffset: loc.address)
        fh.write(Data([0, 0, 0, 0, 0x7F, 0, 0, 0]))  // declared size 0x7F000000 bytes (2 GiB)
        fh.closeFile()
        let ds = try Catalog.open(acq.master).datasets[0]
        XCTAssertThrowsError(try readAll(ds)) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("\(name)_data_000001.h5") && s.contains("chunk 1") && s.contains("declares") && !s.contains("\n"), s)
        }
    }

    /// Random bytes flipped in the master or a data file (some in the first 4 KiB: superblock,
    /// object headers): every run ends in time with success or one error line (65/66), and
    /// leaves no output or temporary file behind. Runs the CLI, whose fault handler turns a crash
    /// inside HDF5 into exit 65.
    func testCorruptionSweepEndsCleanly() throws {
        let d = try dir("sweep")
        let acq = try writeAcquisition(d, "k", type: .uint16, frame: [16, 16], perFile: [3, 2])
        let files = [acq.master, d + "/k_data_000001.h5"]
        let originals = try files.map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let outDir = try dir("sweep-out")
        // A damaged file may make HDF5 loop: the watchdog ends such a run (exit 65) well within the timeout.
        setenv("EMCONV_WATCHDOG_SECONDS", "10", 1)
        defer { unsetenv("EMCONV_WATCHDOG_SECONDS") }
        var rng = SweepRNG(seed: 13)
        for round in 0..<24 {
            for (f, o) in zip(files, originals) { try o.write(to: URL(fileURLWithPath: f)) }
            var bytes = [UInt8](originals[round % 2])
            for k in 0..<6 {
                let pos = Int.random(in: 0..<(k < 2 ? min(4096, bytes.count) : bytes.count), using: &rng)
                bytes[pos] ^= UInt8.random(in: 1...255, using: &rng)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: files[round % 2]))
            let out = outDir + "/out\(round).nxs"
            let r = try CLIRunner.run(["convert", acq.master, "-o", out, "--quiet"], timeout: 60)
            XCTAssertTrue([0, 65, 66].contains(r.status), "round \(round): exit \(r.status): \(r.stderr)")
            if r.status != 0 {
                XCTAssertFalse(FileManager.default.fileExists(atPath: out), "round \(round)")
                XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.hasPrefix("emconv: error") }.count, 1, r.stderr)
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: outDir).filter { $0.contains("tmp-emconv") }
            XCTAssertEqual(left, [], "round \(round)")
        }
    }

    // MARK: Shared ARINA acquisition

    func testSharedARINAConvertsWithReferenceValuesMetadataAndTables() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let master = root + "/arina/test_00_master.h5"
        let ref = try SharedTestData.reference("arina/test_00_master.h5")
        let file = try Catalog.open(master)
        XCTAssertEqual(file.format, "dectris")
        let ds = file.datasets[0]
        XCTAssertEqual(ds.elementType, .uint32, "the file stores uint32; kept")
        XCTAssertEqual(ds.shape, [4, 4, 192, 192])
        // Values as the reference's uint16 (RosettaSciIO casts to the detector's bit depth).
        let values = try readAll(ds).withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
        XCTAssertTrue(values.allSatisfy { $0 <= UInt32(UInt16.max) })
        let u16 = values.map { UInt16($0) }
        guard case let .array(signals)? = ref["signals"] else { return XCTFail("reference has no signals") }
        XCTAssertEqual(SHA256Digest.hex(bytes(u16)), signals[0]["data_sha256"]?.stringValue)
        let md = ds.metadata
        // The file stores float32-rounded times as float64 (9.950000094249845e-05).
        XCTAssertEqual(md.exposureTime?.value ?? 0, 9.95e-05, accuracy: 1e-12)
        XCTAssertEqual(md.exposureTime?.units, "s")
        XCTAssertEqual(md.frameTime?.value ?? 0, 9.96e-05, accuracy: 1e-12)
        XCTAssertEqual(md.detectorThreshold, Quantity(17.5, "keV"))
        XCTAssertEqual(md.detectorName, "Dectris ARINA CZT")
        XCTAssertEqual(md.softwareVersion, "1.8.0")
        XCTAssertEqual(md.counterDepthBits, 32)
        XCTAssertEqual(md.beamEnergy, Quantity(300_000, "V"))
        XCTAssertEqual(md.cameraLength, Quantity(0.115, "m"))
        XCTAssertEqual(md.extra["detector_serial_number"], "A-01-0011")
        XCTAssertEqual(md.extra["saturation_value"], "8352")
        XCTAssertEqual(md.extra["sensor_material"], "CZT")
        XCTAssertEqual(md.extra["detector_pixel_size_x"], "0.0001 m")
        XCTAssertEqual(md.scanShapeSource, "side file NumPixelsY/NumPixelsX")
        XCTAssertEqual(ds.axes[0].scale, 0.139152, accuracy: 1e-6)
        XCTAssertEqual(ds.axes[0].units, "nm")
        XCTAssertEqual(Set(file.files.map { ($0 as NSString).lastPathComponent }), ["test_00_master.h5", "test_00_data_000001.h5", "test_00.h5"])

        let out = tmp + "/arina.nxs"
        _ = try Converter.convert(input: master, output: out, options: ConversionOptions(threads: 2, commandLine: "test", compression: .bitshuffleLZ4))
        let (hash, shape, type) = try DataHash.sha256(hdf5: out, dataset: "entry1/measurement/event1/image1/image_4d/real")
        XCTAssertEqual(shape, [4, 4, 192, 192])
        XCTAssertEqual(type, .uint32)
        XCTAssertEqual(hash, SHA256Digest.hex(bytes(values)))
        try HDF5.lock.withLock {
            let f = try HDF5File(reading: out)
            let det = try XCTUnwrap(f.root.openGroup("entry1/measurement/instrument/detector1"))
            XCTAssertEqual(det.openDataset("flatfield")?.shape, [192, 192])
            XCTAssertEqual(det.openDataset("flatfield")?.elementType, .float32)
            XCTAssertEqual(det.openDataset("pixel_mask")?.elementType, .uint32)
            XCTAssertEqual(det.openDataset("countrate_correction_table")?.shape, [8398, 2])
            XCTAssertEqual(det.openDataset("pixel_mask_applied")?.readMeta(), .bool(true))
            let real = try XCTUnwrap(f.root.openDataset("entry1/measurement/event1/image1/image_4d/real"))
            XCTAssertEqual(real.filterPipeline.map(\.id), [32008])
            XCTAssertEqual(real.filterPipeline.first?.cdValues, [0, 4, 4, 0, 2])
            XCTAssertEqual(f.root.openDataset("entry1/measurement/event1/instrument/detector1/count_time")?.readMeta()?.doubleValue ?? 0, 9.95e-05, accuracy: 1e-12)
        }
    }

    // MARK: bitshuffle-lz4 output

    func testBitshuffleOutputReadsBackThroughEmconvsOwnFilter() throws {
        let acq = try writeAcquisition(try dir("o"), "o", type: .uint16, frame: [13, 11], perFile: [6])
        let out = tmp + "/o.nxs"
        _ = try Converter.convert(input: acq.master, output: out, options: ConversionOptions(threads: 2, commandLine: "test", compression: .bitshuffleLZ4))
        let back = try Catalog.open(out)
        XCTAssertEqual(back.format, "nexus")
        XCTAssertEqual(try readAll(back.datasets[0]), acq.frames)
    }

    func testBitshuffleZstdOutputDeclaresHdf5pluginsCDValuesAndReadsBack() throws {
        let acq = try writeAcquisition(try dir("oz"), "oz", type: .uint32, frame: [13, 11], perFile: [6])
        let out = tmp + "/oz.nxs"
        _ = try Converter.convert(input: acq.master, output: out,
                                  options: ConversionOptions(threads: 2, commandLine: "test", compression: .bitshuffleZstd(level: 2)))
        try HDF5.lock.withLock {
            let f = try HDF5File(reading: out)
            let data = try XCTUnwrap(f.root.openDataset("entry1/measurement/event1/image1/image_3d/real"))
            XCTAssertEqual(data.filterPipeline.map(\.id), [32008])
            XCTAssertEqual(data.filterPipeline.first?.cdValues, [0, 4, 4, 16384, 3, 2])
            // The first chunk's header: its size in bytes, then 64 KiB blocks.
            let loc = try XCTUnwrap(data.chunkLocation(at: [0, 0, 0]))
            let total = try XCTUnwrap(data.chunkShape).reduce(1, *) * 4
            let fh = try XCTUnwrap(FileHandle(forReadingAtPath: out))
            fh.seek(toFileOffset: loc.address)
            let head = [UInt8](fh.readData(ofLength: 12))
            XCTAssertEqual(head, (0..<8).map { UInt8(truncatingIfNeeded: total >> (56 - 8 * $0)) } + [0, 1, 0, 0])
        }
        let back = try Catalog.open(out)
        XCTAssertEqual(try readAll(back.datasets[0]), acq.frames)
    }

    func testZspyAndTIFFRefuseBitshuffleWithAUsageError() throws {
        let acq = try writeAcquisition(try dir("z"), "z", type: .uint16, frame: [8, 8], perFile: [2])
        for out in [tmp + "/z.zspy", tmp + "/z.tif"] {
            for c in ["bitshuffle-lz4", "bitshuffle-zstd:1"] {
                let r = try CLIRunner.run(["convert", acq.master, "-o", out, "--compression", c])
                XCTAssertEqual(r.status, 64, r.stderr)
                XCTAssertTrue(r.stderr.contains("\(c) is an HDF5 filter"), r.stderr)
                XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            }
        }
    }

    static let hdf5pluginU32Blocks64 = "00000000000004b0000001000000008b13aa01001388010013a00100226cc6020040e86a42c00400f04920cc224c8a6688e6f0161cf87a34945a4076cc1ca4b8a2f0808cd272aca6f21200579e21d8294a7f0098b4bffada782100e0d86a0653861500001fb354c901a60000e0c3986d556d000000fce07166b600000000ff8187c708004100fe07f808003200f8ff08000f020052500000000000000000a513aa01001388010013a00100226cc6020040e86a42c00400f17020cc224c8a6688e65abcb652d09e3ef04ade6e1e2432885064ea1e9e424a14fcec3f322d18e1c41198eee0ed8ec48a7d504ebe4caed70423ca716b8c6498fd15c67f4c59e21fa90c942a253b1ee031a918b34952abaa9464e0c3719c3333d9b600fc811f3c3c1ec7ffff01e03fc01ff80000feff3f00e0ff00000000c0ffff08000f02003c500000000000000000b613aa01001388010013a00100226cc6020040e86a42c00400f08120cc224c8a6688e6f0161cf87a34945aeadc66b60e12085a2a04f0d0a6a4fa18c4b9504f34c7ac996cb256f35e9e562b989eec747609764350de7d8d8c057386604b7c56025671542a397c9854cd7098e6f8831f6796da4ab45255b5d2b2c939386366269b246dadc08387c7e3388e3100fc07f8033ff0c10000f8ff03c0ff01ffffffff030000fe00000000fcffffff08000f02002c500000000000000000bb13aa01001388010013a00100226cc6020040e86a42c00400f08520cc224c8a6688e65abcb652d09e3ef0e074c4b48e9822fac4ca9e3ec8c2365682d15ce37e8f08fd98acae8de2c82211a41246123a81507dc2a129f4b8508b23fe6ab0f26c60f91554e63f5b1a80ad0c321ec06353559b030efeff836366d2aa54abaa56292d496667cccc64b24992b4870f0f87c3711cc7f80ff007fc811ff8ff0f00f8ff01e0ffff0f000000feffff00f0ffff02001f000100275000000000000000008810aa01001088010010a00100f05f6cc66cc66ce86a42c0e820cc224c8af0161cf87a4076cc1ca42a2678d8062a75b6a9dac4567ad9166c0430208298da4befa0509e86e594604bfe4972809354dbf1aab6cd38f0668ec307f0b4d46a55a538e78c9939c0070f1e3e00f80fe03f0000f0ff3f00000000c0ffffffffff0a000f02000750000000000000ba8b0139c08f0168cd930193e19701"
}

/// A seeded generator, so a failing corruption round can be replayed.
struct SweepRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
