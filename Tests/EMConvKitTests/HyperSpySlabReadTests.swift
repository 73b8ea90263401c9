@testable import EMConvKit
@testable import EMCore
@testable import FormatHyperSpy
import EMConvTestSupport
import Foundation
import XCTest

/// Issue 14 follow-up: tiles that cut frames (HyperSpy's lazy saves) are read a slab of
/// navigation rows at a time, each stored chunk decoded once per slab; batch takes `.zspy`
/// stores as inputs.
final class HyperSpySlabReadTests: TempDirectoryTestCase {
    /// uint16 values of `shape` and a decoder that cuts chunk `g` (edge chunks zero-padded)
    /// from them, counting how often each chunk is decoded.
    final class TiledArray: @unchecked Sendable {
        let shape: [Int], chunks: [Int], values: [UInt16]
        private let lock = NSLock()
        private(set) var decoded: [[Int]: Int] = [:]

        init(shape: [Int], chunks: [Int]) {
            self.shape = shape
            self.chunks = chunks
            values = (0..<shape.reduce(1, *)).map { UInt16(truncatingIfNeeded: $0 &* 40503 &+ 7) }
        }

        func decode(_ g: [Int], into out: UnsafeMutableRawBufferPointer) {
            lock.withLock { decoded[g, default: 0] += 1 }
            let o = out.bindMemory(to: UInt16.self)
            for e in 0..<chunks.reduce(1, *) {
                var rem = e, flat = 0, inside = true
                var c = [Int](repeating: 0, count: shape.count)
                for d in stride(from: shape.count - 1, through: 0, by: -1) { c[d] = rem % chunks[d]; rem /= chunks[d] }
                for d in 0..<shape.count {
                    let x = g[d] * chunks[d] + c[d]
                    if x >= shape[d] { inside = false; break }
                    flat = flat * shape[d] + x
                }
                o[e] = inside ? values[flat] : 0xDEAD
            }
        }

        var gridCount: Int { zip(shape, chunks).map { ($0 + $1 - 1) / $1 }.reduce(1, *) }

        func source(frameRank: Int, budget: Int) -> SlabFrameSource? {
            let nav = shape.count - frameRank
            return SlabFrameSource(navShape: Array(shape.prefix(nav)), navChunks: Array(chunks.prefix(nav)),
                                   frameBytes: shape.suffix(frameRank).reduce(2, *), budget: budget) { slab, region in
                try slab.fillFromChunks(shape: self.shape, chunks: self.chunks, elementSize: 2, into: region) { self.decode($0, into: $1) }
            }
        }

        /// Reads frames in `order` and compares each with the values.
        func check(_ src: FrameSource, frameRank: Int, order: [Int], _ tag: String) throws {
            let n = shape.suffix(frameRank).reduce(1, *)
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: n * 2, alignment: 16)
            defer { buf.deallocate() }
            for f in order {
                try src.readFrame(f, into: buf)
                XCTAssertEqual(Array(buf.bindMemory(to: UInt16.self)), Array(values[(f * n)..<((f + 1) * n)]), "\(tag): frame \(f)")
            }
        }
    }

    func testSlabsDecodeEachTileCuttingFramesOnceAndHandOutFramesBitExactly() throws {
        // 7 x 9 scan of 10 x 11 frames in 3 x 4 x 4 x 5 tiles (partial tiles on every edge).
        let a = TiledArray(shape: [7, 9, 10, 11], chunks: [3, 4, 4, 5])
        let src = try XCTUnwrap(a.source(frameRank: 2, budget: 1 << 30))
        XCTAssertEqual(src.rows, 3, "a slab spans one chunk row")
        try a.check(src, frameRank: 2, order: Array(0..<63), "in order")
        XCTAssertEqual(a.decoded.count, a.gridCount, "every tile decoded")
        XCTAssertEqual(Set(a.decoded.values), [1], "every tile decoded exactly once")

        // Room for two rows of frames only: chunk rows of 3 split in two, a tile decoded at most twice.
        let row = 9 * 10 * 11 * 2
        let b = TiledArray(shape: [7, 9, 10, 11], chunks: [3, 4, 4, 5])
        let small = try XCTUnwrap(b.source(frameRank: 2, budget: 2 * row + 100))
        XCTAssertEqual(small.rows, 2)
        try b.check(small, frameRank: 2, order: Array(0..<63), "two-row slabs")
        XCTAssertEqual(b.decoded.count, b.gridCount)
        XCTAssertEqual(b.decoded.values.max(), 2)
        XCTAssertNil(b.source(frameRank: 2, budget: row - 1), "not one row fits: the reader keeps its frame-by-frame path")

        // Any order reads the right frames.
        let c = TiledArray(shape: [7, 9, 10, 11], chunks: [3, 4, 4, 5])
        try c.check(try XCTUnwrap(c.source(frameRank: 2, budget: 1 << 30)), frameRank: 2, order: [62, 0, 31, 30, 5, 44, 8, 9], "random order")

        // One navigation axis (a stack) and spectra (frame rank 1).
        let d = TiledArray(shape: [10, 6, 5], chunks: [4, 3, 5])
        try d.check(try XCTUnwrap(d.source(frameRank: 2, budget: 1 << 30)), frameRank: 2, order: Array(0..<10), "stack")
        XCTAssertEqual(Set(d.decoded.values), [1])
        let e = TiledArray(shape: [5, 6, 17], chunks: [2, 4, 8])
        try e.check(try XCTUnwrap(e.source(frameRank: 1, budget: 1 << 30)), frameRank: 1, order: Array(0..<30), "spectrum image")
        XCTAssertEqual(Set(e.decoded.values), [1])
    }

    func testFrameSlabGeometryFollowsChunkRows() {
        let s = FrameSlab.containing(30, shape: [7, 9], chunks: [3, 4], rows: 3)  // scan row 3
        XCTAssertEqual(s.start, [3, 0])
        XCTAssertEqual(s.count, [3, 9])
        XCTAssertEqual(s.frames, 27..<54)
        let last = FrameSlab.containing(62, shape: [7, 9], chunks: [3, 4], rows: 3)
        XCTAssertEqual(last.frames, 54..<63, "the partial last chunk row")
        XCTAssertEqual(last.chunkIndices(shape: [7, 9, 10], chunks: [3, 4, 4]).count, 3 * 3)
        // rows 2 of a chunk row of 3: pieces of 2 and 1.
        XCTAssertEqual(FrameSlab.containing(10, shape: [7, 9], chunks: [3, 4], rows: 2).frames, 0..<18)
        XCTAssertEqual(FrameSlab.containing(20, shape: [7, 9], chunks: [3, 4], rows: 2).frames, 18..<27)
        // Leading navigation axes stay fixed.
        let s3 = FrameSlab.containing(2 * 63 + 30, shape: [3, 7, 9], chunks: [2, 3, 4], rows: 3)
        XCTAssertEqual(s3.start, [2, 3, 0])
        XCTAssertEqual(s3.count, [1, 3, 9])
    }

    func testFilesHyperSpySavesInTilesCuttingFramesAreReadThroughSlabsBitExactly() throws {
        let python = SharedTestData.packageRoot + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("skipped: .venv with HyperSpy not found (scripts/interop.sh makes it)")
        }
        let script = """
        import sys, numpy as np, hyperspy.api as hs
        out = sys.argv[1]
        data = np.random.default_rng(3).integers(0, 65535, (9, 10, 12, 13), dtype=np.uint16)
        s = hs.signals.Signal2D(data).as_lazy()
        s.save(f"{out}/lazy.hspy", overwrite=True, chunks=(4, 4, 5, 6))
        s.save(f"{out}/lazy.zspy", overwrite=True, chunks=(4, 4, 5, 6))
        s.save(f"{out}/lazy_plain.hspy", overwrite=True, chunks=(4, 4, 5, 6), compression=None)
        # fletcher32 (a filter emconv leaves to HDF5) and zstd (hdf5plugin) on the same tiles.
        import h5py, shutil, hdf5plugin
        for name, kw in (("lazy_f32", dict(fletcher32=True, compression="gzip", shuffle=True)),
                         ("lazy_zstd", dict(**hdf5plugin.Zstd(clevel=1), shuffle=True))):
            shutil.copy(f"{out}/lazy.hspy", f"{out}/{name}.hspy")
            with h5py.File(f"{out}/{name}.hspy", "r+") as f:
                g = f["Experiments/__unnamed__"]
                del g["data"]
                g.create_dataset("data", data=data, chunks=(4, 4, 5, 6), **kw)
        shutil.copy(f"{out}/lazy.hspy", f"{out}/lazy_bad.hspy")
        with h5py.File(f"{out}/lazy_bad.hspy", "r") as f:
            info = f["Experiments/__unnamed__/data"].id.get_chunk_info(5)
        with open(f"{out}/lazy_bad.hspy", "r+b") as f:  # a damaged deflate stream in one tile
            f.seek(info.byte_offset + 2); f.write(b"\\xff" * min(64, info.size - 2))
        data.tofile(f"{out}/lazy.bin")
        """
        try script.write(toFile: tmp + "/gen.py", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [tmp + "/gen.py", tmp]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("skipped: the venv's HyperSpy could not save the test files") }
        let raw = try Data(contentsOf: URL(fileURLWithPath: tmp + "/lazy.bin"))
        let d = SHA256Digest()
        raw.withUnsafeBytes { d.update($0) }
        let want = d.finalizeHex()
        // Which .hspy tiles emconv decodes itself on all cores (the others: one HDF5 read per slab).
        for (name, own) in [("lazy.hspy", true), ("lazy_plain.hspy", true), ("lazy_zstd.hspy", true), ("lazy_f32.hspy", false)] {
            let h5 = try HDF5File(reading: tmp + "/" + name)
            let d = try XCTUnwrap(h5.root.openGroup("Experiments")?.openGroup("__unnamed__")?.openDataset("data"))
            XCTAssertEqual(HSpyChunkDecoder(dataset: d, type: .uint16, shape: d.shape, chunk: d.chunkShape ?? []) != nil, own, name)
        }
        for name in ["lazy.hspy", "lazy.zspy", "lazy_plain.hspy", "lazy_zstd.hspy", "lazy_f32.hspy"] {
            let ds = try Catalog.open(tmp + "/" + name).datasets[0]
            XCTAssertEqual(ds.shape, [9, 10, 12, 13], name)
            let slabs = try XCTUnwrap(ds.source as? SlabFrameSource, "\(name): read through slabs")
            XCTAssertEqual(slabs.navChunks, [4, 4], "\(name): the saved tiles")
            XCTAssertEqual(try DataHash.sha256(ds), want, "\(name): data bit-exact")
        }
        // A damaged tile: a one-line error naming the file and the chunk, no output left behind.
        let out = tmp + "/bad.nxs"
        XCTAssertThrowsError(try Converter.convert(input: tmp + "/lazy_bad.hspy", output: out, options: ConversionOptions(threads: 2, commandLine: "test"))) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .badInput, "\(e)")
            XCTAssertTrue(err?.location?.contains("chunk at [") == true, "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testBatchTakesZspyStoresAsOneInputAndDoesNotWalkTheirChunks() throws {
        let fm = FileManager.default
        let root = tmp + "/in"
        try fm.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        let values = (0..<(3 * 4 * 5 * 6)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let axes = [3, 4, 5, 6].enumerated().map { i, s in Axis(name: "a\(i)", size: s, role: i < 2 ? .navigation : .signal, units: "nm") }
        let ds = Dataset(name: "d", title: "t", axes: axes, elementType: .uint8, frameRank: 2, quantity: "counts", quantityUnits: "",
                         signalKind: "4d-stem", metadata: NormalizedMetadata(), original: .object([]), conventions: [:],
                         source: MemorySource(bytes: values, frameBytes: 30))
        let f = OpenedFile(path: tmp + "/x.bin", format: "raw", variant: "test", datasets: [ds], files: [], original: .object([]),
                           readerName: "test", readerVersion: "0")
        _ = try ZspyWriter.write(f, to: root + "/dir.zspy", context: .standalone(f))
        _ = try ZspyZipWriter.write(f, to: root + "/zipped.zspy", context: .standalone(f))
        _ = try ZspyWriter.write(f, to: root + "/sub/deep.zspy", context: .standalone(f))
        var p = BatchPlanner(outputDirectory: tmp + "/out", outputExtension: "nxs")
        var (items, skipped) = try p.plan([root])
        XCTAssertEqual(items.map { ($0.input as NSString).lastPathComponent }, ["dir.zspy", "zipped.zspy"], "not recursive: the two stores")
        XCTAssertEqual(items.map(\.format), ["zspy", "zspy"])
        XCTAssertGreaterThan(items[0].size, Int64(values.count / 2), "a store's size is its files' size")
        p.recursive = true
        (items, skipped) = try p.plan([root])
        XCTAssertEqual(items.map { $0.input.replacingOccurrences(of: root + "/", with: "") }, ["dir.zspy", "sub/deep.zspy", "zipped.zspy"])
        XCTAssertFalse(skipped.contains { $0.path.contains(".zspy/") }, "the stores' members are neither inputs nor skipped: \(skipped)")
        XCTAssertTrue(items.contains { $0.output == tmp + "/out/sub/deep.nxs" }, "\(items.map(\.output))")
        // A store named on the command line is one input too.
        (items, _) = try p.plan([root + "/dir.zspy"])
        XCTAssertEqual(items.map(\.input), [root + "/dir.zspy"])
        // --watch sees a store change below its top level (chunks still being written).
        let before = try XCTUnwrap(BatchWatcher.signature(items[0]))
        let chunk = try XCTUnwrap(fm.subpathsOfDirectory(atPath: root + "/dir.zspy").first { $0.hasSuffix("data/0/0/0/0") || $0.hasSuffix("data/0.0.0.0") })
        let chunkPath = root + "/dir.zspy/" + chunk
        let stored = try Data(contentsOf: URL(fileURLWithPath: chunkPath))
        try (stored + Data([1])).write(to: URL(fileURLWithPath: chunkPath))
        XCTAssertNotEqual(BatchWatcher.signature(items[0]), before, "a chunk grew")
        try stored.write(to: URL(fileURLWithPath: chunkPath))
        // End to end: the CLI converts all three, bit-exact.
        let r = try CLIRunner.run(["batch", root, "-r", "-o", tmp + "/out", "--quiet"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for out in ["dir.nxs", "zipped.nxs", "sub/deep.nxs"] {
            let back = try Catalog.open(tmp + "/out/" + out).datasets[0]
            XCTAssertEqual(try DataHash.sha256(back), try DataHash.sha256(ds), out)
        }
    }
}
