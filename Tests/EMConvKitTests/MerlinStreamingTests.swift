import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// `emconv record` writes frames as they arrive (bounded queue into the NeXus pipeline), counts
/// frames the detector dropped, and says live when the output is slower than the stream.
final class MerlinStreamingTests: TempDirectoryTestCase {
    func spec(rows: Int, frames: Int, scan: (Int, Int)? = nil) -> MIBSpec {
        var s = MIBSpec(quad: false, format: .u16, depth: 12, rows: rows, frames: frames)
        if let scan { s.scanY = scan.0; s.scanX = scan.1 }
        return s
    }

    func launch(_ args: [String], stderr: FileHandle? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try XCTUnwrap(CLIRunner.binary))
        p.arguments = args
        p.standardError = stderr ?? FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func converted(_ s: MIBSpec, _ extra: [String] = []) throws -> String {
        let d = try dir("ref-\(UUID().uuidString)")
        let g = try MIBWriter.write(s, to: d + "/acq.mib")
        let out = d + "/ref.nxs"
        let r = try CLIRunner.run(["convert", g.primary, "-o", out, "-q"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try DataHash.sha256(nexus: out, name: "merlin").0
    }

    /// Bytes of the files in `tmp` whose names contain `part`.
    func bytes(containing part: String) -> Int64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []
        return names.filter { $0.contains(part) }.compactMap {
            (try? FileManager.default.attributesOfItem(atPath: tmp + "/" + $0)[.size] as? NSNumber)?.int64Value
        }.reduce(0, +)
    }

    func testFramesReachTheNeXusOutputWhileTheStreamIsStillOpen() throws {
        // 4x4 scan of 256x256 U16 frames (128 KiB): chunks of one scan line (4 frames). The
        // server stalls after 9 frames: two full lines must already be in the output file.
        let s = spec(rows: 256, frames: 16, scan: (4, 4))
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(s), fault: .stallAfter(MerlinTestServer.frameOffset(s, 9)))
        let out = tmp + "/live.nxs"
        let p = try launch(["record", server.url, "-o", out, "--timeout", "60", "--compression", "none", "--progress", "none"])
        let deadline = Date().addingTimeInterval(20)
        while bytes(containing: ".live.nxs") < 8 * 131_072 && Date() < deadline && p.isRunning { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertGreaterThanOrEqual(bytes(containing: ".live.nxs"), 8 * 131_072, "8 frames must be written while the stream is still open")
        XCTAssertEqual(bytes(containing: ".live.mib"), 0, "no spool: frames go straight into the NeXus file")
        XCTAssertTrue(p.isRunning, "record is still receiving")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 75)
        let (h, shape, _) = try DataHash.sha256(nexus: out, name: "merlin")
        XCTAssertEqual(shape, [9, 256, 256])
        var nine = s
        nine.frames = 9
        nine.scanX = nil; nine.scanY = nil
        XCTAssertEqual(h, try converted(nine, ["--scan-shape", "9"]), "the 9 frames received, bit for bit")
        XCTAssertEqual(bytes(containing: ".live."), 0, "the recording's intermediate file is removed")
    }

    func testFramesTheDetectorDroppedAreCountedFromSequenceNumbers() throws {
        var s = spec(rows: 32, frames: 12)
        s.framesInAcquisition = 11
        var stream = MerlinTestServer.message(s.hdrText())
        for i in 0..<12 where i != 5 { stream += MerlinTestServer.message(s.frameBytes(i)) }
        let server = try MerlinTestServer(stream: stream)
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/d.nxs", "--json", "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let v = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(v["frames_dropped"]?.intValue, 1, r.stdout)
        XCTAssertEqual(v["written_as_received"], .bool(true))
        XCTAssertTrue(r.stdout.contains("the detector dropped 1 frames"), r.stdout)
        // Provenance of a complete streamed recording: the header, the frame headers, the count.
        let info = try CLIRunner.run(["info", "--json", "--tags", "all", tmp + "/d.nxs"])
        for key in ["live_stream", "acquisition_header", "frame_headers", "\"frames_dropped_by_sender\":1", "\"written_as_received\":true"] {
            XCTAssertTrue(info.stdout.replacingOccurrences(of: " ", with: "").contains(key), key)
        }
    }

    func testAnOutputSlowerThanTheStreamIsSaidLiveAndLosesNothing() throws {
        // A queue of 2 frames and gzip:9 on one thread: the writer is slower than loopback, the
        // receiver waits (TCP holds the sender back), and every frame still arrives.
        var s = spec(rows: 256, frames: 1)
        s.frames = 1
        s.framesInAcquisition = 200
        var stream = MerlinTestServer.message(s.hdrText())
        let frame = MerlinTestServer.message(s.frameBytes(0))
        for _ in 0..<200 { stream += frame }
        let server = try MerlinTestServer(stream: stream)
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/slow.nxs", "--queue-frames", "2", "--compression", "gzip:9",
                                   "--threads", "1", "--json"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("the output is slower than the stream"), r.stderr)
        let v = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(v["frames_received"]?.intValue, 200)
        XCTAssertEqual(v["frames_dropped"]?.intValue, 0)
        XCTAssertEqual(v["queue_capacity"]?.intValue, 2)
        XCTAssertGreaterThan(v["held_back_seconds"]?.doubleValue ?? 0, 0)
        XCTAssertEqual(try DataHash.sha256(nexus: tmp + "/slow.nxs", name: "merlin").1, [200, 256, 256])
    }

    func testProgressJSONReportsQueueDepthAndFramesWritten() throws {
        var s = spec(rows: 256, frames: 1)
        s.framesInAcquisition = 400
        var stream = MerlinTestServer.message(s.hdrText())
        let frame = MerlinTestServer.message(s.frameBytes(0))
        for _ in 0..<400 { stream += frame }
        let server = try MerlinTestServer(stream: stream)
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/p.nxs", "--progress", "json", "--queue-frames", "4",
                                   "--compression", "gzip:6", "--threads", "1"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        let events = r.stderr.split(separator: "\n").filter { $0.contains("\"event\":\"receive\"") }.compactMap { try? MetaValue.parseJSON(String($0)) }
        let last = try XCTUnwrap(events.last)
        XCTAssertEqual(last["frames_received"]?.intValue, 400)
        XCTAssertEqual(last["queue_capacity"]?.intValue, 4)
        XCTAssertTrue(events.allSatisfy { ($0["queue_depth"]?.intValue ?? -1) >= 0 && ($0["queue_depth"]?.intValue ?? 99) <= 4 })
        XCTAssertTrue(events.contains { ($0["frames_written"]?.intValue ?? 0) < ($0["frames_received"]?.intValue ?? 0) },
                      "while receiving, the writer trails the receiver by the queue")
    }

    func testAFrameOfAnotherGeometryEndsTheStreamWithTheFramesBefore() throws {
        let a = spec(rows: 32, frames: 12), b = spec(rows: 64, frames: 12)
        var stream = MerlinTestServer.message(a.hdrText())
        for i in 0..<5 { stream += MerlinTestServer.message(a.frameBytes(i)) }
        for i in 5..<12 { stream += MerlinTestServer.message(b.frameBytes(i)) }
        let server = try MerlinTestServer(stream: stream)
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/g.nxs", "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertTrue(r.stderr.contains("frame geometry changed"), r.stderr)
        XCTAssertTrue(r.stderr.contains("at frame 6"), r.stderr)
        XCTAssertEqual(try DataHash.sha256(nexus: tmp + "/g.nxs", name: "merlin").1, [5, 32, 256])
    }

    func testAHeaderAnnouncingABillionFramesIsRefusedBeforeAnythingIsAllocated() throws {
        var s = spec(rows: 32, frames: 3)
        s.framesInAcquisition = 1_000_000_000
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(s))
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/huge.nxs", "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("announces 1000000000 frames"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/huge.nxs"))
    }

    func testRecordingToZspyConvertsFromTheRecordedNeXus() throws {
        var s = spec(rows: 32, frames: 12, scan: (3, 4))
        s.framesPerTrigger = 1
        let server = try MerlinTestServer(stream: MerlinTestServer.acquisition(s))
        let r = try CLIRunner.run(["record", server.url, "-o", tmp + "/z.zspy", "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp + "/z.zspy/.zgroup"))
        XCTAssertEqual(bytes(containing: ".live."), 0)
    }
}

/// `record --control`: the documented Merlin commands on the command port (a fake one here).
final class MerlinControlTests: TempDirectoryTestCase {
    func testControlStartsTheAcquisitionAndNothingElseWhenComplete() throws {
        var s = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        s.scanY = 3; s.scanX = 4
        let data = try MerlinTestServer(stream: MerlinTestServer.acquisition(s))
        let control = try MerlinControlTestServer()
        let r = try CLIRunner.run(["record", data.url, "-o", tmp + "/c.nxs", "--scan-shape", "3,4", "--control", control.address,
                                   "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(control.commands, ["SET,NUMFRAMESTOACQUIRE,12", "CMD,STARTACQUISITION"])
    }

    func testControlStopsTheAcquisitionWhenReceptionEndsEarly() throws {
        let s = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        let data = try MerlinTestServer(stream: MerlinTestServer.acquisition(s), fault: .stallAfter(MerlinTestServer.frameOffset(s, 3)))
        let control = try MerlinControlTestServer()
        let r = try CLIRunner.run(["record", data.url, "-o", tmp + "/c.nxs", "--timeout", "1", "--control", control.address,
                                   "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 75, r.stderr)
        XCTAssertEqual(control.commands, ["CMD,STARTACQUISITION", "CMD,STOPACQUISITION"])
    }

    func testABusyMerlinIsAOneLineErrorAndWritesNothing() throws {
        let s = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: 12)
        let data = try MerlinTestServer(stream: MerlinTestServer.acquisition(s))
        let control = try MerlinControlTestServer(statuses: ["STARTACQUISITION": 1])
        let r = try CLIRunner.run(["record", data.url, "-o", tmp + "/c.nxs", "--control", control.address, "--progress", "none"], timeout: 60)
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertTrue(r.stderr.contains("refused CMD,STARTACQUISITION: system busy"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/c.nxs"))
    }
}
