import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Sizes an HDF5 file declares are checked before anything is allocated or streamed: chunk
/// sizes against the memory budget, declared against stored bytes, the output against free
/// space (issue 11, defects 5 and 6).
final class DeclaredSizeTests: TempDirectoryTestCase {
    /// A 3 MB file whose one gzip chunk inflates to 512 MiB: refused before HDF5 inflates it.
    func testChunkLargerThanTheMemoryBudgetIsRefused() throws {
        let input = tmp + "/bomb.nxs"
        try HostileHDF5.zeroChunkBomb(at: input, shape: [4, 64], chunk: [1, 1 << 29])
        let t0 = Date()
        let r = try CLIRunner.run(["convert", input, "-o", tmp + "/out.nxs"], timeout: 60)
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("bomb.nxs") && r.stderr.contains("chunk") && r.stderr.contains("536870912"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/out.nxs"))
    }

    /// 2 x 10^12 bytes declared, nothing stored: `info` says so; `convert` refuses at once.
    func testUnwrittenTeraByteDatasetIsShownAndRefused() throws {
        let input = tmp + "/empty.nxs"
        try HostileHDF5.unwrittenNeXus(at: input, shape: [1_000_000, 1000, 1000], chunk: [1, 1000, 1000])
        let info = try CLIRunner.run(["info", input], timeout: 30)
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("2000000000000 bytes declared, 0 bytes stored"), info.stdout)
        let json = try CLIRunner.run(["info", "--json", input], timeout: 30)
        XCTAssertTrue(json.stdout.contains("\"stored_bytes\""), json.stdout)

        // Uncompressed, the output cannot fit: exit 74 with both numbers.
        var t0 = Date()
        let none = try CLIRunner.run(["convert", input, "-o", tmp + "/none.nxs", "--compression", "none"], timeout: 60)
        XCTAssertEqual(none.status, 74, none.stderr)
        XCTAssertEqual(none.stderr.split(separator: "\n").count, 1, none.stderr)
        XCTAssertTrue(none.stderr.contains("2000000000000") && none.stderr.contains("free"), none.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)

        // Compressed (the default): refused as implausible for what the file stores (or, on a
        // small disk, for free space), in seconds.
        t0 = Date()
        let gz = try CLIRunner.run(["convert", input, "-o", tmp + "/gz.nxs"], timeout: 60)
        XCTAssertTrue([65, 74].contains(gz.status), gz.stderr)
        XCTAssertTrue(gz.stderr.contains("stores only 0 bytes") || gz.stderr.contains("free"), gz.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), ["empty.nxs"])
    }

    /// One byte of a Velox image's dataspace (found by a 64-byte flip campaign): the HAADF image
    /// claims 268435584 x 128 pixels over 32 KB of storage. Before: 2 GB allocated, 3 minutes
    /// (or an abort, exit 134, with other bytes). Now: `info` shows it, `convert` refuses at once.
    func testVeloxImageDeclaringAHugeFrameIsRefused() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/emd_velox/STEM HAADF Diffraction Micro.emd"))
        XCTAssertEqual(bytes[3931], 0)
        bytes[3931] = 16
        let bad = tmp + "/haadf.emd"
        try bytes.write(to: URL(fileURLWithPath: bad))
        let info = try CLIRunner.run(["info", bad], timeout: 30)
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssertTrue(info.stdout.contains("268435584 x 128 uint16") && info.stdout.contains("68719509504 bytes declared, 32768 bytes stored"), info.stdout)
        let t0 = Date()
        let r = try CLIRunner.run(["convert", bad, "-o", tmp + "/out.nxs"], timeout: 30)
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("haadf.emd") && r.stderr.contains("memory budget"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), ["haadf.emd"])
    }

    /// A chunk declared as 1 MiB whose gzip stream inflates to 512 MiB: HDF5's own deflate filter
    /// grows its buffer until the stream ends; emconv's stops at the declared chunk size.
    func testChunkInflatingBeyondItsDeclaredSizeIsRefused() throws {
        let input = tmp + "/inflate.nxs"
        try HostileHDF5.zeroChunkBomb(at: input, shape: [4, 1 << 18], chunk: [4, 1 << 18], inflatedBytes: 512 << 20)
        let t0 = Date()
        let r = try CLIRunner.run(["convert", input, "-o", tmp + "/out.nxs"], timeout: 60)
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("inflate.nxs") && r.stderr.contains("more than its declared 1048576 bytes"), r.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/out.nxs"))
    }

    func testEnsureRoomNamesBothNumbers() throws {
        XCTAssertNoThrow(try OutputSpace.ensureRoom(estimatedBytes: 1 << 20, forOutput: tmp + "/x.nxs"))
        XCTAssertThrowsError(try OutputSpace.ensureRoom(estimatedBytes: 1 << 60, forOutput: tmp + "/x.nxs")) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .writeError)
            XCTAssertTrue(err?.message.contains("\(1 << 60)") == true, "\(e)")
            XCTAssertTrue(err?.message.contains("bytes free") == true, "\(e)")
        }
    }

    func testMemoryBudgetRefusesOverflowAndImplausibleSizes() {
        XCTAssertThrowsError(try MemoryBudget.check(MemoryBudget.product([1 << 40, 1 << 40]), what: "x", file: "f", at: nil))
        XCTAssertThrowsError(try MemoryBudget.check(MemoryBudget.maxAllocation + 1, what: "x", file: "f", at: nil))
        XCTAssertThrowsError(try MemoryBudget.check(100 << 20, what: "x", file: "f", at: nil, stored: 10))
        XCTAssertNoThrow(try MemoryBudget.check(100 << 20, what: "x", file: "f", at: nil, stored: 1 << 20))
        XCTAssertEqual(MemoryBudget.parseBytes("300M"), 300 << 20)
    }

    /// The generated zlib stream is what zlib itself would accept (checked by HDF5 reading it).
    func testZlibZerosRoundTripsThroughHDF5() throws {
        let input = tmp + "/small.nxs"
        try HostileHDF5.zeroChunkBomb(at: input, shape: [4, 1000], chunk: [4, 1000])
        let f = try Catalog.open(input)
        let d = try XCTUnwrap(f.datasets.first)
        var buf = [UInt8](repeating: 7, count: d.frameBytes)
        try buf.withUnsafeMutableBytes { try d.source.readFrame(0, into: $0) }
        XCTAssertEqual(buf, [UInt8](repeating: 0, count: 4000))
    }
}
