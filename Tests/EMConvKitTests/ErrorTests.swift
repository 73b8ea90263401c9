import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

final class ErrorTests: XCTestCase {
    /// Bytes of a damaged file quoted in a message never break the one-line error.
    func testDescriptionIsAlwaysOneLine() {
        let e = EMError.bad("x.dm3", offset: 12, "tag 'a\nb\r\u{7}c' is odd")
        XCTAssertEqual(e.description, "x.dm3: at offset 12: tag 'a?b??c' is odd")
        let long = EMError(.badInput, file: "f", String(repeating: "x", count: 2000))
        XCTAssertLessThanOrEqual(long.description.count, 600)
        XCTAssertFalse(long.description.contains("\n"))
    }

    func testExitCodes() {
        XCTAssertEqual(EMError.Code.usage.exitCode, 64)
        XCTAssertEqual(EMError.Code.badInput.exitCode, 65)
        XCTAssertEqual(EMError.Code.unsupported.exitCode, 65)
        XCTAssertEqual(EMError.Code.missingInput.exitCode, 66)
        XCTAssertEqual(EMError.Code.outputExists.exitCode, 73)
        XCTAssertEqual(EMError.Code.writeError.exitCode, 74)
    }
}

/// HDF5 1.10 can crash on damaged metadata (here a global-heap reference of a string attribute):
/// emconv ends with its one-line error, exit 65, and leaves no output.
final class LibraryFaultTests: XCTestCase {
    func testDamagedHDF5AttributeHeapEndsWithOneLineError() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let dir = NSTemporaryDirectory() + "emconv-fault-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/emd_berkeley/example_signal.emd"))
        bytes[2269] = 166   // one byte found by fuzzing: a vlen string's heap address
        let bad = dir + "/damaged.emd"
        try bytes.write(to: URL(fileURLWithPath: bad))
        for args in [["info", bad], ["convert", bad, "-o", dir + "/out.nxs"]] {
            let r = try CLIRunner.run(args)
            XCTAssertEqual(r.status, 65, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("damaged.emd"), r.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["damaged.emd"])
    }
}

/// HDF5 1.10 loops forever on some damaged metadata (one byte found by fuzzing): the watchdog
/// ends the run with the one-line error and exit 65 (limit shortened for the test).
final class WatchdogTests: XCTestCase {
    func testLoopingLibraryIsStopped() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        let dir = NSTemporaryDirectory() + "emconv-hang-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/emd_berkeley/py4DSTEM_size2x3x4x5.h5"))
        bytes[2569] = 2
        let bad = dir + "/looping.h5"
        try bytes.write(to: URL(fileURLWithPath: bad))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = ["convert", bad, "-o", dir + "/out.nxs"]
        p.environment = ProcessInfo.processInfo.environment.merging(["EMCONV_WATCHDOG_SECONDS": "2"]) { $1 }
        let err = Pipe()
        p.standardError = err
        let t0 = Date()
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 65, text)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30)
        XCTAssertEqual(text.split(separator: "\n").count, 1, text)
        XCTAssertTrue(text.contains("looping.h5"), text)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["looping.h5"])
    }
}
