import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// `emconv batch --watch`: each acquisition converts exactly once, only after it is complete,
/// and a restart after `kill -9` converts nothing twice and loses nothing.
final class BatchWatchTests: TempDirectoryTestCase {
    func spec(frames: Int, seed: Int) -> MIBSpec {
        var s = MIBSpec(quad: false, format: .u16, depth: 12, rows: 32, frames: frames)
        s.scanY = frames / 4
        s.scanX = 4
        s.startNanoseconds += Int64(seed) * 1_000_000_000
        return s
    }

    func launch(_ args: [String], stderr: String) throws -> Process {
        FileManager.default.createFile(atPath: stderr, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try XCTUnwrap(CLIRunner.binary))
        p.arguments = args
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Report lines with status ok, per input file name.
    func okCounts(_ report: String) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for line in try String(contentsOfFile: report, encoding: .utf8).split(separator: "\n") {
            let v = try MetaValue.parseJSON(String(line))
            if v["status"]?.stringValue == "ok", let i = v["input"]?.stringValue { out[(i as NSString).lastPathComponent, default: 0] += 1 }
        }
        return out
    }

    func wait(until cond: () -> Bool, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if cond() { return true }; Thread.sleep(forTimeInterval: 0.05) }
        return cond()
    }

    func testWatchConvertsEachAcquisitionOnceAndOnlyWhenComplete() throws {
        let input = try dir("in"), out = tmp + "/out"
        let err = tmp + "/watch.err"
        let p = try launch(["batch", input, "-o", out, "--watch", "--settle", "1.5", "--poll", "0.2", "--progress", "plain"], stderr: err)
        defer { if p.isRunning { p.terminate() } }
        let fm = FileManager.default
        var finished: [String: Date] = [:]
        for (k, name) in ["a", "b"].enumerated() {
            let s = spec(frames: 12, seed: k)
            // The .hdr first, then the frames in pieces, 0.4 s apart (less than --settle).
            try Data(s.hdrText()).write(to: URL(fileURLWithPath: input + "/\(name).hdr"))
            fm.createFile(atPath: input + "/\(name).mib", contents: nil)
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: input + "/\(name).mib"))
            for i in 0..<12 {
                try h.write(contentsOf: s.frameBytes(i))
                if i % 3 == 2 {
                    Thread.sleep(forTimeInterval: 0.4)
                    XCTAssertFalse(fm.fileExists(atPath: out + "/\(name).nxs"), "\(name) converted before it was complete (frame \(i + 1) of 12)")
                }
            }
            try h.close()
            finished[name] = Date()
        }
        XCTAssertTrue(wait(until: { fm.fileExists(atPath: out + "/a.nxs") && fm.fileExists(atPath: out + "/b.nxs") }, seconds: 30))
        // Stays idle: nothing converts again.
        Thread.sleep(forTimeInterval: 2.5)
        p.terminate()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 143)
        XCTAssertEqual(try okCounts(out + "/reports/watch.jsonl"), ["a.mib": 1, "b.mib": 1])
        for name in ["a", "b"] {
            // The whole acquisition: 3x4 scan, every frame.
            XCTAssertEqual(try DataHash.sha256(nexus: out + "/\(name).nxs", name: "merlin").1, [3, 4, 32, 256])
            let made = try XCTUnwrap(fm.attributesOfItem(atPath: out + "/\(name).nxs")[.modificationDate] as? Date)
            XCTAssertGreaterThan(made, finished[name]!, "\(name) converted only after its last frame was written")
        }
    }

    func testKillNineAndRestartConvertsNothingTwiceAndLosesNothing() throws {
        let input = try dir("in"), out = tmp + "/out"
        let names = ["a", "b", "c", "d"]
        for (k, n) in names.enumerated() {
            var s = spec(frames: 256, seed: k)
            s.rows = 256
            s.scanY = 16; s.scanX = 16
            _ = try MIBWriter.write(s, to: input + "/\(n).mib")
        }
        let fm = FileManager.default
        let p = try launch(["batch", input, "-o", out, "--watch", "--settle", "0", "--poll", "0.1", "-j", "1",
                            "--compression", "gzip:9", "--threads", "1", "--progress", "none"], stderr: tmp + "/1.err")
        XCTAssertTrue(wait(until: { fm.fileExists(atPath: out + "/a.nxs") }, seconds: 60), "the first output appears")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let before = names.filter { fm.fileExists(atPath: out + "/\($0).nxs") }
        XCTAssertLessThan(before.count, names.count, "killed before the end (otherwise the restart proves nothing)")
        var inodes: [String: UInt64] = [:]
        for n in before { inodes[n] = (try fm.attributesOfItem(atPath: out + "/\(n).nxs")[.systemFileNumber] as? NSNumber)?.uint64Value }

        let r = try CLIRunner.run(["batch", input, "-o", out, "--watch", "--once", "--settle", "0", "--poll", "0.1",
                                   "--progress", "none"], timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        for n in names { XCTAssertTrue(fm.fileExists(atPath: out + "/\(n).nxs"), "\(n) converted after the restart") }
        for n in before {
            XCTAssertEqual((try fm.attributesOfItem(atPath: out + "/\(n).nxs")[.systemFileNumber] as? NSNumber)?.uint64Value, inodes[n],
                           "\(n) was done before the kill and is not converted again")
        }
        let ok = try okCounts(out + "/reports/watch.jsonl")
        XCTAssertTrue(ok.values.allSatisfy { $0 == 1 }, "no input converted twice: \(ok)")
        let leftovers = try fm.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp-emconv-") }
        XCTAssertEqual(leftovers, [], "no partial output is left")
    }

    func testWatchOptionsNeedWatch() throws {
        let r = try CLIRunner.run(["batch", tmp, "-o", tmp + "/o", "--once"])
        XCTAssertEqual(r.status, 64, r.stderr)
    }
}
