import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// `emconv record` against emconv's own fault-injecting Merlin server on loopback.
final class MerlinRecordTests: TempDirectoryTestCase {
    /// A 3x4 scan of 32x256 U16 frames, written as a .mib/.hdr for `emconv convert` to compare with.
    func acquisition(_ spec: MIBSpec? = nil) throws -> (MIBSpec, String) {
        var s = spec ?? MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        if spec == nil { s.scanX = 4; s.scanY = 3 }
        let d = try dir("mib")
        let g = try MIBWriter.write(s, to: d + "/acq.mib")
        return (s, g.primary)
    }

    func converted(_ mib: String, _ extra: [String] = []) throws -> (String, [Int], [String]) {
        let out = tmp + "/ref-\(UUID().uuidString).nxs"
        let r = try CLIRunner.run(["convert", mib, "-o", out, "-q"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try summary(out)
    }

    func summary(_ nxs: String) throws -> (String, [Int], [String]) {
        let (h, shape, _) = try DataHash.sha256(nexus: nxs, name: "merlin")
        let axes = try Catalog.open(nxs).datasets.first { $0.name == "merlin" }!.axes.map(\.name)
        return (h, shape, axes)
    }

    func testRecordStopsAfterOneAcquisitionOfARepeatingStreamAndEqualsConvert() throws {
        let (spec, mib) = try acquisition()
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(spec), repeatForever: true)
        let out = tmp + "/rec.nxs"
        let t0 = Date()
        let r = try CLIRunner.run(["record", server.url, "-o", out, "--timeout", "5", "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        // The stream repeats for ever: a record that did not stop would run into the 60 s limit.
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30, "record must stop at the end of the acquisition, not wait for the stream")
        let got = try summary(out)
        let want = try converted(mib)
        XCTAssertEqual(got.0, want.0, "data must equal emconv convert of the .mib")
        XCTAssertEqual(got.1, [3, 4, 32, 256])
        XCTAssertEqual(got.2, want.2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/.rec.nxs.live.mib"), "the spool is removed")
    }

    func testRecordRawQuadStreamEqualsConvert() throws {
        var s = MIBSpec(quad: true, format: .r64, depth: 12, rows: 256, frames: 4)
        s.scanX = 2; s.scanY = 2
        let (spec, mib) = try acquisition(s)
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(spec), repeatForever: true)
        let out = tmp + "/quad.nxs"
        let r = try CLIRunner.run(["record", server.url, "-o", out, "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try summary(out), want = try converted(mib)
        XCTAssertEqual(got.0, want.0)
        XCTAssertEqual(got.1, want.1)
        XCTAssertEqual(got.1.prefix(2), [2, 2])
        XCTAssertEqual(got.2, want.2)
    }

    /// Runs record against a faulty server; returns the result and the output path.
    func recordFaulty(_ fault: MerlinTestServer.Fault, timeout: String = "5") throws -> (CLIRunner.Result, String, MIBSpec, String, Double) {
        let (spec, mib) = try acquisition()
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(spec), fault: fault)
        let out = tmp + "/partial.nxs"
        let t0 = Date()
        let r = try CLIRunner.run(["record", server.url, "-o", out, "--timeout", timeout, "--progress", "none"], timeout: 60)
        return (r, out, spec, mib, Date().timeIntervalSince(t0))
    }

    func testCloseMidFrameKeepsEveryCompleteFrameAndExits75() throws {
        let (r, out, spec, mib, _) = try recordFaulty(.closeAfter(MerlinTestServer.frameOffset(MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12), 5) + 15 + 100))
        _ = spec
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertTrue(r.stderr.contains("stream ended early"), r.stderr)
        XCTAssertTrue(r.stderr.contains("5 of 12 frames"), r.stderr)
        let got = try summary(out), want = try converted(mib, ["--scan-shape", "5"])
        XCTAssertEqual(got.1, [5, 32, 256])
        XCTAssertEqual(got.0, want.0, "the 5 complete frames, bit for bit")
        // Provenance: the acquisition header and the frame headers.
        let info = try CLIRunner.run(["info", "--json", "--tags", "all", out])
        XCTAssertTrue(info.stdout.contains("live_stream"), info.stdout.prefix(2000).description)
        XCTAssertTrue(info.stdout.contains("acquisition_header"))
        XCTAssertTrue(info.stdout.contains("frame_headers"))
    }

    func testCloseMidMessageHeaderKeepsTheFramesBefore() throws {
        let spec = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        let (r, out, _, _, _) = try recordFaulty(.closeAfter(MerlinTestServer.frameOffset(spec, 3) + 7))
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertEqual(try summary(out).1, [3, 32, 256])
    }

    func testGarbageLengthEndsTheStreamWithTheFramesBefore() throws {
        let (r, out, _, _, _) = try recordFaulty(.garbageLengthAtFrame(4))
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertTrue(r.stderr.contains("message length"), r.stderr)
        XCTAssertEqual(try summary(out).1, [4, 32, 256])
    }

    func testStallEndsAfterTimeoutNotLater() throws {
        let spec = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        let (r, out, _, _, seconds) = try recordFaulty(.stallAfter(MerlinTestServer.frameOffset(spec, 2)), timeout: "1")
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertTrue(r.stderr.contains("no data for 1 s"), r.stderr)
        XCTAssertLessThan(seconds, 15)
        XCTAssertEqual(try summary(out).1, [2, 32, 256])
    }

    func testNoCompleteFrameWritesNoOutput() throws {
        let (r, out, _, _, _) = try recordFaulty(.closeAfter(40))
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertTrue(r.stderr.contains("no complete frame"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testInterruptKeepsTheFramesReceived() throws {
        let (spec, _) = try acquisition()
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(spec), fault: .stallAfter(MerlinTestServer.frameOffset(spec, 3)))
        let out = tmp + "/int.nxs"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try XCTUnwrap(CLIRunner.binary))
        p.arguments = ["record", server.url, "-o", out, "--timeout", "60", "--progress", "none"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 2)
        kill(p.processIdentifier, SIGINT)
        let t0 = Date()
        p.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10)
        XCTAssertEqual(p.terminationStatus, 75)
        XCTAssertEqual(try summary(out).1, [3, 32, 256])
    }

    func testProgressJSONReportsFramesAndRates() throws {
        let (spec, _) = try acquisition()
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(spec), repeatForever: true)
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/p.nxs", "--progress", "json"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(r.stderr.split(separator: "\n").first { $0.contains("\"event\":\"receive\"") && $0.contains("\"frames_received\":12") })
        for key in ["frames_per_second", "mb_per_second", "frames_written", "queue_depth", "bytes_received"] {
            XCTAssertTrue(line.contains(key), String(line))
        }
    }

    /// A stream larger than the memory bound, sent as fast as loopback goes: record spools it
    /// frame by frame (TCP back-pressure), so its peak RSS stays far below the stream's size.
    func testFastStreamLargerThanTheMemoryBoundIsRecordedCompletelyInBoundedMemory() throws {
        var s = MIBSpec(quad: false, format: .u16, depth: 12, rows: 256, frames: 1)
        s.scanX = 60; s.scanY = 40; s.framesInAcquisition = 2400
        var stream = MerlinTestServer.message(s.hdrText())
        let frame = MerlinTestServer.message(s.frameBytes(0))
        stream.reserveCapacity(stream.count + 2400 * frame.count)
        for _ in 0..<2400 { stream += frame }
        XCTAssertGreaterThan(stream.count, 300_000_000)
        let server = try MerlinTestServer(stream: stream)
        let out = tmp + "/big.nxs"
        // Peak RSS from /usr/bin/time (a child forked from this process would inherit its 315 MB).
        let rss = tmp + "/rss.txt"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        p.arguments = ["-f", "%M", "-o", rss, try XCTUnwrap(CLIRunner.binary), "record", server.url, "-o", out,
                       "--compression", "none", "--progress", "none", "-q"]
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertEqual(try DataHash.sha256(nexus: out, name: "merlin").1, [40, 60, 256, 256])
        let kib = Int(try String(contentsOfFile: rss, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? .max
        XCTAssertLessThan(kib, 256 * 1024, "peak RSS of record (KiB) must stay under 256 MiB for a 315 MB stream")
    }
}
