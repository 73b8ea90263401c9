import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// End-to-end: the built binary's output and exit codes (README documents them).
final class CLITests: TempDirectoryTestCase {
    /// A small raw file (4 frames of 8x8 uint16, big-endian) with known values.
    func makeRaw() throws -> String {
        var bytes: [UInt8] = []
        for i in 0..<(4 * 8 * 8) { bytes += [UInt8(i >> 8), UInt8(i & 0xFF)] }
        let p = tmp + "/d.raw"
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    func testVersionIsOneParsableLine() throws {
        let r = try CLIRunner.run(["--version"])
        XCTAssertEqual(r.status, 0)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1)
        XCTAssertTrue(lines[0].hasPrefix("emconv \(EMConvVersion.string) (hdf5 1."), String(lines[0]))
        XCTAssertTrue(lines[0].contains("zstd 1."))
    }

    func testFormatsJSONListsEveryRegisteredFormat() throws {
        let r = try CLIRunner.run(["formats", "--json"])
        XCTAssertEqual(r.status, 0)
        guard case let .array(items) = try MetaValue.parseJSON(r.stdout) else { return XCTFail("not a list") }
        let names = items.compactMap { $0["name"]?.stringValue }
        XCTAssertEqual(Set(names), Set(Catalog.descriptors.map(\.name)))
        XCTAssertTrue(names.contains("mib") && names.contains("nexus"))
    }

    func testRawConvertRoundTripsAndJSONResult() throws {
        let raw = try makeRaw()
        let out = tmp + "/d.nxs"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", ">u2", "--raw-shape", "4,8,8", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(j["output"]?.stringValue, out)
        XCTAssertEqual(j["output_sha256"]?.stringValue, try RandomAccessFile(path: out).finishDigest())
        let f = try HDF5File(reading: out)
        let ds = try XCTUnwrap(f.root.openDataset("entry1/measurement/event1/image1/image_3d/real"))
        XCTAssertEqual(ds.shape, [4, 8, 8])
        XCTAssertEqual(ds.elementType, .uint16)
        var vals = [UInt16](repeating: 0, count: 256)
        try vals.withUnsafeMutableBytes { try ds.read(start: [0, 0, 0], count: [4, 8, 8], as: .uint16, into: $0) }
        XCTAssertEqual(vals, (0..<256).map { UInt16($0) })
        // No temporary file left beside the output.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).sorted(), ["d.nxs", "d.raw"])
    }

    func testExistingOutputIsRefusedWithoutOverwrite() throws {
        let raw = try makeRaw()
        let out = tmp + "/exists.nxs"
        FileManager.default.createFile(atPath: out, contents: Data("keep".utf8))
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "4,8,8"])
        XCTAssertEqual(r.status, 73)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
        XCTAssertTrue(r.stderr.contains(out))
        let r2 = try CLIRunner.run(["convert", raw, "-o", out, "--raw-dtype", "<u2", "--raw-shape", "4,8,8", "--overwrite"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertNotNil(try HDF5File(reading: out).root.openGroup("entry1"))
    }

    func testMissingInputExits66() throws {
        let r = try CLIRunner.run(["convert", tmp + "/nope.mib", "-o", tmp + "/x.nxs"])
        XCTAssertEqual(r.status, 66)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("nope.mib"))
    }

    func testUsageErrorsExit64() throws {
        XCTAssertEqual(try CLIRunner.run(["convert", "a.mib"]).status, 64) // no -o
        XCTAssertEqual(try CLIRunner.run(["convert", "a.mib", "-o", "b.nxs", "--compression", "lz4"]).status, 64)
        XCTAssertEqual(try CLIRunner.run(["convert", "a.mib", "-o", "b.nxs", "--scan-shape", "0,4"]).status, 64)
        XCTAssertEqual(try CLIRunner.run(["frobnicate"]).status, 64)
        let raw = try makeRaw()
        let r = try CLIRunner.run(["convert", raw, "-o", tmp + "/o.xyz", "--raw-dtype", "<u2", "--raw-shape", "4,8,8"])
        XCTAssertEqual(r.status, 64, r.stderr)
    }

    func testUnknownFileIsBadInput() throws {
        let p = tmp + "/notes.txt"
        FileManager.default.createFile(atPath: p, contents: Data("hello".utf8))
        let r = try CLIRunner.run(["info", p])
        XCTAssertEqual(r.status, 65)
        XCTAssertTrue(r.stderr.contains("notes.txt"))
        let r2 = try CLIRunner.run(["convert", p, "-o", tmp + "/n.nxs"])
        XCTAssertEqual(r2.status, 65)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/n.nxs"))
    }

    func testInfoJSONOnSharedMIB() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let p = root + "/mib/Single_9_Frames_CounterDepth_12_Rows_256.mib"
        let r = try CLIRunner.run(["info", "--json", p])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(j["emconv_info_version"]?.intValue, InfoReport.schemaVersion)
        guard case let .array(files)? = j["files"], let f = files.first, case let .array(dss)? = f["datasets"], let d = dss.first else {
            return XCTFail("unexpected document")
        }
        XCTAssertEqual(f["format"]?.stringValue, "mib")
        XCTAssertEqual(d["dtype"]?.stringValue, "uint16")
        XCTAssertEqual(d["source_byte_order"]?.stringValue, "big")
        XCTAssertEqual(d["shape"], .array([.int(9), .int(256), .int(256)]))
        guard case let .array(used)? = f["files_used"] else { return XCTFail() }
        XCTAssertEqual(used.count, 2) // .mib + .hdr
        XCTAssertNil(f["original_metadata"])
        let r2 = try CLIRunner.run(["info", "--json", "--tags", "all", p])
        XCTAssertNotNil(try MetaValue.parseJSON(r2.stdout)["files"].flatMap { v -> MetaValue? in if case let .array(a) = v { return a.first?["original_metadata"] }; return nil })
    }
}

/// Ctrl-C and SIGTERM during a conversion: exit 130/143 and no partial output anywhere.
final class InterruptTests: XCTestCase {
    func testInterruptRemovesPartialOutput() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv binary not built") }
        let dir = NSTemporaryDirectory() + "emconv-int-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 96 MiB of pseudo-random 4-bit values in both bytes of uint16 frames: zstd:19 on one thread
        // takes well over 20 s on them (gzip:9 takes under 2 s since its encoder stores noise planes
        // and runs fast on such data, so the conversion could end before the signal).
        let raw = dir + "/big.raw"
        FileManager.default.createFile(atPath: raw, contents: nil)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: raw))
        var state: UInt64 = 0x9E3779B97F4A7C15
        var block = [UInt64](repeating: 0, count: 1 << 20)
        for _ in 0..<12 {
            for i in 0..<block.count {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                block[i] = state & 0x0F0F_0F0F_0F0F_0F0F
            }
            fh.write(block.withUnsafeBytes { Data($0) })
        }
        try fh.close()
        for (sig, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["convert", raw, "-o", dir + "/out.nxs", "--raw-dtype", "<u2", "--raw-shape", "768,256,256",
                           "--compression", "zstd:19", "--threads", "1", "--quiet"]
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Wait until the temporary output exists, then interrupt.
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, p.isRunning,
                  !(try FileManager.default.contentsOfDirectory(atPath: dir)).contains(where: { $0.contains("tmp-emconv") }) {
                usleep(20_000)
            }
            usleep(200_000)
            XCTAssertTrue(p.isRunning, "conversion finished before it could be interrupted")
            kill(p.processIdentifier, sig)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, code)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["big.raw"], "partial output left behind")
        }
    }
}

/// Velox spectrum-stream options reach the EMD reader through the CLI.
final class StreamOptionsCLITests: XCTestCase {
    func testFramesAndDetectorOptions() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let p = root + "/emd_velox/Test SI 16x16 215 kx.emd"
        func edsShapes(_ extra: [String]) throws -> [[Int]] {
            let r = try CLIRunner.run(["info", "--json", p] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            guard case let .array(files)? = try MetaValue.parseJSON(r.stdout)["files"], case let .array(dss)? = files.first?["datasets"] else { return [] }
            return dss.filter { $0["name"]?.stringValue?.hasPrefix("eds") == true }.compactMap { d in
                if case let .array(s)? = d["shape"] { return s.compactMap(\.intValue) }
                return nil
            }
        }
        let summed = try edsShapes([])
        XCTAssertEqual(summed.count, 1)
        XCTAssertEqual(summed.first?.count, 3, "one (y, x, energy) cube")
        XCTAssertEqual(try edsShapes(["--separate-detectors"]).count, 4, "one cube per Super-X segment")
        let perFrame = try edsShapes(["--frames", "0:2", "--no-sum-frames"])
        XCTAssertEqual(perFrame.first?.first, 2, "frames kept: (frame, y, x, energy)")
        XCTAssertEqual(try CLIRunner.run(["info", p, "--frames", "3:1"]).status, 64)
    }
}
