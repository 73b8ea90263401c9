import CHDF5
@testable import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Variable-length strings are checked against their global heap objects before libhdf5 reads
/// them (Sources/EMHDF5/HDF5VariableLength.swift): a damaged length or heap is the input's
/// one-line error, never a 1.7 GB allocation or an endless loop inside libhdf5.
final class VariableLengthGuardTests: TempDirectoryTestCase {
    /// Runs the CLI; returns exit status, stderr, peak RSS (bytes) and seconds.
    func run(_ args: [String]) throws -> (Int32, String, Int, Double) {
        let t0 = Date()
        let r = try CLIRunner.run(args, timeout: 120)
        let seconds = Date().timeIntervalSince(t0)
        guard let bin = CLIRunner.binary else { throw EMError(.failure, "emconv not built") }
        let m = try SpinningLibraryTests.runMeasured(bin, args)
        XCTAssertEqual(m.status, r.status)
        return (r.status, r.stderr, m.peakRSS, seconds)
    }

    /// The descriptor of `/user@email` declares 1.7 GB: libhdf5 used to allocate and clear it
    /// (peak RSS 1.9 GB). Now `info` and `convert` refuse it in one line, well under 512 MiB.
    func testAttributeLengthOf1_7GBIsRefusedBeforeLibhdf5AllocatesIt() throws {
        let input = tmp + "/len.emd"
        try HDF5Regressions.vlenAttributeLength(at: input)
        for args in [["info", input], ["convert", input, "-o", tmp + "/out.nxs"]] {
            let (status, err, rss, _) = try run(args)
            XCTAssertEqual(status, 65, err)
            XCTAssertEqual(err.split(separator: "\n").count, 1, err)
            XCTAssertTrue(err.contains("attribute email") && err.contains("1703936000 bytes"), err)
            XCTAssertLessThan(rss, 512 << 20, "\(args[0]): peak RSS \(rss >> 20) MiB")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/out.nxs"))
    }

    /// A global heap object declaring -512 bytes made libhdf5 walk its collection backwards
    /// until the watchdog fired; the collection is now checked first and refused at once.
    func testGlobalHeapObjectOfNegativeSizeIsRefusedWithoutLooping() throws {
        let input = tmp + "/loop.emd"
        try HDF5Regressions.globalHeapLoop(at: input)
        setenv("EMCONV_WATCHDOG_SECONDS", "60", 1)
        defer { unsetenv("EMCONV_WATCHDOG_SECONDS") }
        let (status, err, _, seconds) = try run(["info", input])
        XCTAssertEqual(status, 65, err)
        XCTAssertTrue(err.contains("global heap collection") && !err.contains("no progress"), err)
        XCTAssertLessThan(seconds, 20)
    }

    /// The free-space object ending a global heap collection declares 0 bytes (nexus fuzz
    /// target): libhdf5 parsed it without advancing until the watchdog; now refused at once.
    func testGlobalHeapFreeSpaceOfSizeZeroIsRefusedWithoutLooping() throws {
        let input = tmp + "/free.emd"
        try HDF5Regressions.globalHeapFreeSpaceLoop(at: input)
        setenv("EMCONV_WATCHDOG_SECONDS", "60", 1)
        defer { unsetenv("EMCONV_WATCHDOG_SECONDS") }
        let (status, err, _, seconds) = try run(["info", input])
        XCTAssertEqual(status, 65, err)
        XCTAssertTrue(err.contains("global heap collection") && !err.contains("no progress"), err)
        XCTAssertLessThan(seconds, 20)
    }

    /// A local heap whose free list points at itself (dectris fuzz target): libhdf5 allocated
    /// a list entry per step (894 MB in 6 s until the watchdog); a heap declaring 2^64 - 1 bytes
    /// made it corrupt the malloc heap (glibc's own line, then the fault handler). Both are now
    /// refused before libhdf5 reads the heap: one line of emconv's, little memory, at once.
    func testDamagedLocalHeapsAreRefusedBeforeLibhdf5ReadsThem() throws {
        setenv("EMCONV_WATCHDOG_SECONDS", "60", 1)
        defer { unsetenv("EMCONV_WATCHDOG_SECONDS") }
        let cycle = tmp + "/cycle.h5", size = tmp + "/size.h5"
        try HDF5Regressions.localHeapFreeListCycle(at: cycle)
        try HDF5Regressions.localHeapSize(at: size)
        for (input, what) in [(cycle, "leaves the data segment or loops"), (size, "declares a data segment of 18446744073709551615 bytes")] {
            let (status, err, rss, seconds) = try run(["info", input])
            XCTAssertEqual(status, 65, err)
            XCTAssertEqual(err.split(separator: "\n").count, 1, err)
            XCTAssertTrue(err.hasPrefix("emconv: error: ") && err.contains("local heap") && err.contains(what), err)
            XCTAssertLessThan(rss, 512 << 20, "peak RSS \(rss >> 20) MiB")
            XCTAssertLessThan(seconds, 20)
        }
        XCTAssertThrowsError(try HDF5File(reading: cycle)) { XCTAssertTrue("\($0)".contains("local heap"), "\($0)") }
    }

    /// In-process: the refusal is the error `Catalog.open` throws (not a missing attribute).
    func testDamagedAttributeIsTheOpenError() throws {
        let input = tmp + "/len.emd"
        try HDF5Regressions.vlenAttributeLength(at: input)
        XCTAssertThrowsError(try Catalog.open(input)) { e in
            XCTAssertTrue("\(e)".contains("/user attribute email") && "\(e)".contains("variable-length string"), "\(e)")
        }
    }

    /// Intact strings still read: the generated EMD's /user attributes (v1 object header with a
    /// continuation block) come out in the original metadata.
    func testIntactAttributesInAContinuationBlockRead() throws {
        let input = tmp + "/ok.emd"
        _ = try HDF5Regressions.base(at: input)
        let f = try HDF5File(reading: input)
        let user = try XCTUnwrap(f.root.openGroup("user"))
        XCTAssertEqual(user.stringAttribute("email"), "tester@example.org")
        XCTAssertEqual(user.stringAttribute("note5"), "note number 5")
        XCTAssertNil(f.inputGuard?.refusal)
    }

    /// A file in the newest format (version 2 object headers, "OHDR"): an intact string reads;
    /// with its global heap object damaged (size -512; the heap has no checksum) it is refused
    /// naming the heap, so the check found the attribute in the v2 header. Attributes in dense
    /// storage (a fractal heap) read under the allocation ceiling.
    func testVersion2HeadersAndDenseStorage() throws {
        func write(_ path: String, dense: Bool) throws -> [UInt8] {
            let fapl = H5Pcreate(emc_P_FILE_ACCESS())
            H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110)
            let f = H5Fcreate(path, emc_F_ACC_TRUNC(), hid_t(H5P_DEFAULT), fapl)
            let gcpl = H5Pcreate(emc_P_GROUP_CREATE())
            if dense { H5Pset_attr_phase_change(gcpl, 0, 0) }
            let g = H5Gcreate2(f, "g", hid_t(H5P_DEFAULT), gcpl, hid_t(H5P_DEFAULT))
            let t = H5Tcopy(emc_T_C_S1())
            H5Tset_size(t, emc_T_VARIABLE())
            let s = H5Screate(H5S_SCALAR)
            let a = H5Acreate2(g, "title", t, s, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
            let c = strdup("a title of 24 characters")
            var p: UnsafePointer<CChar>? = UnsafePointer(c)
            H5Awrite(a, t, &p)
            free(c)
            H5Aclose(a); H5Sclose(s); H5Tclose(t); H5Gclose(g); H5Pclose(gcpl); H5Fclose(f); H5Pclose(fapl)
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        }
        for dense in [false, true] {
            let path = tmp + "/v2-\(dense).h5"
            var b = try write(path, dense: dense)
            XCTAssertTrue(HDF5Regressions.find(Array("OHDR".utf8), in: b) != nil)
            let f = try HDF5File(reading: path)
            XCTAssertEqual(f.root.openGroup("g")?.stringAttribute("title"), "a title of 24 characters", "dense \(dense)")
            XCTAssertNil(f.inputGuard?.refusal, "dense \(dense)")
            if !dense {
                let gcol = try XCTUnwrap(HDF5Regressions.find(Array("GCOL".utf8), in: b))
                XCTAssertEqual(b[gcol + 16], 1)          // object 1: the title
                b.replaceSubrange((gcol + 24)..<(gcol + 32), with: HDF5Regressions.le(UInt64(bitPattern: -512), 8))
                try Data(b).write(to: URL(fileURLWithPath: path))
                let g = try HDF5File(reading: path)
                XCTAssertNil(g.root.openGroup("g")?.stringAttribute("title"))
                let r = try XCTUnwrap(g.inputGuard?.refusal)
                XCTAssertTrue(r.description.contains("attribute title") && r.description.contains("global heap collection"), r.description)
            }
        }
    }

    /// A variable-length string dataset whose length field says 4 GB (the NeXus title): the
    /// refusal is now the one-line error of the whole open, naming the dataset.
    func testDamagedStringDatasetIsTheOpenError() throws {
        let input = tmp + "/title.nxs"
        try HostileHDF5.nexusWithStringLength(at: input, length: 0xFFFF_FFF0)
        let f = try HDF5File(reading: input)
        XCTAssertNil(f.root.openDataset("entry/data/title")?.readStringValues())
        XCTAssertTrue(f.inputGuard?.refusal?.description.contains("/entry/data/title") ?? false, "\(String(describing: f.inputGuard?.refusal))")
    }
}

/// The fuzz targets added for MRC, TIA, TIFF and Dectris read their generated seeds in full
/// (so their corpora start from valid inputs and the harness layouts are right).
final class NewFuzzTargetTests: TempDirectoryTestCase {
    func testGeneratedSeedsReadInFullThroughTheirTargets() throws {
        for target in [FuzzTarget.mrc, .tia, .tiff, .dectris, .emd] {
            let seeds = try dir("seeds-\(target.rawValue)")
            try FuzzSeeds.write(target, into: seeds)
            let names = try FileManager.default.contentsOfDirectory(atPath: seeds).filter { !$0.hasPrefix(".") }.sorted()
            XCTAssertGreaterThanOrEqual(names.count, 2, "\(target)")
            for n in names {
                let bytes = try XCTUnwrap(FileManager.default.contents(atPath: seeds + "/" + n))
                let work = try dir("run-\(target.rawValue)-\(n)")
                let result = bytes.withUnsafeBytes { FuzzInputs.run(target, $0, in: work) }
                XCTAssertNil(result, "\(target)/\(n): \(String(describing: result))")
            }
        }
    }
}

/// No file under fixtures/regressions may be derived from ../shared/testdata (which must not
/// reach the repository): at most a tenth of its 48-byte runs (other than runs of few distinct
/// bytes) occur in any one shared file. The four former mutants of shared files shared 90-100 %.
final class RegressionProvenanceTests: XCTestCase {
    func testNoRegressionFileCarriesBytesOfASharedFile() throws {
        guard let shared = SharedTestData.root else { throw XCTSkip(SharedTestData.skipMessage) }
        let w = 48
        let base: UInt64 = 1_000_003
        var pow: UInt64 = 1
        for _ in 0..<w { pow = pow &* base }
        let root = SharedTestData.packageRoot + "/fixtures/regressions"
        var owners: [UInt64: Set<String>] = [:]
        var totals: [String: Int] = [:]
        for case let rel as String in FileManager.default.enumerator(atPath: root)! where !rel.hasSuffix(".md") {
            guard let d = FileManager.default.contents(atPath: root + "/" + rel), d.count >= w else { continue }
            let b = [UInt8](d)
            var hs = Set<UInt64>()
            for o in stride(from: 0, through: b.count - w, by: w) where Set(b[o..<(o + w)]).count > 6 {
                hs.insert(b[o..<(o + w)].reduce(UInt64(0)) { $0 &* base &+ UInt64($1) })
            }
            totals[rel] = hs.count
            for h in hs { owners[h, default: []].insert(rel) }
        }
        XCTAssertGreaterThanOrEqual(totals.count, 6)
        for case let rel as String in FileManager.default.enumerator(atPath: shared)! where !rel.hasSuffix(".json") {
            let path = shared + "/" + rel
            guard let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size <= 4 << 20,
                  let d = FileManager.default.contents(atPath: path), d.count >= w else { continue }
            var found: [String: Set<UInt64>] = [:]
            [UInt8](d).withUnsafeBufferPointer { b in
                var h: UInt64 = 0
                for i in 0..<b.count {
                    h = h &* base &+ UInt64(b[i])
                    if i >= w { h = h &- pow &* UInt64(b[i - w]) }
                    if i >= w - 1, let files = owners[h] { for f in files { found[f, default: []].insert(h) } }
                }
            }
            for (file, hs) in found {
                XCTAssertLessThanOrEqual(hs.count, max(4, totals[file, default: 0] / 10),
                                         "\(file): \(hs.count) of its \(totals[file, default: 0]) 48-byte runs occur in shared/\(rel)")
            }
        }
    }
}

/// Findings of the new fuzz targets (fixtures/regressions/<target>/), beyond the generic replay.
final class NewTargetFindingTests: TempDirectoryTestCase {
    /// A SER element of 2^31 x 2^31 values: the size check itself overflowed (Swift trap);
    /// now the element is refused as not fitting the file.
    func testSERElementSizeThatOverflowsIsRefused() throws {
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: SharedTestData.packageRoot + "/fixtures/regressions/tia/ser-element-size-overflows"))
        let result = bytes.withUnsafeBytes { FuzzInputs.run(.tia, $0, in: tmp) }
        let e = try XCTUnwrap(result as? EMError, "\(String(describing: result))")
        XCTAssertEqual(e.code, .badInput)
        XCTAssertTrue(e.description.contains("does not fit in the file"), e.description)
    }
}

extension NewTargetFindingTests {
    /// A BigTIFF tag whose value offset is near Int64.max: the check "does the value lie inside
    /// the file" overflowed (Swift trap); now the file is read or refused, one line.
    func testTIFFTagValueOffsetNearInt64MaxDoesNotTrap() throws {
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: SharedTestData.packageRoot + "/fixtures/regressions/tiff/tag-value-offset-near-int64-max.tif"))
        let result = bytes.withUnsafeBytes { FuzzInputs.run(.tiff, $0, in: tmp) }
        XCTAssertFalse(result is FuzzInputs.Finding)
        if let result {
            let e = try XCTUnwrap(result as? EMError, "\(result)")
            XCTAssertFalse(e.description.contains("\n"), e.description)
        }
    }
}
