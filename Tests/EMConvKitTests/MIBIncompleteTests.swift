import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Merlin files cut at a frame boundary (issue 11, defect 8): no partial frame tells the cut, only
/// what the `.hdr` announces does. The reader must compare and warn, and say when the scan shape
/// fell back to a stack.
final class MIBIncompleteTests: TempDirectoryTestCase {
    /// Copies the first `frames` of the `total` frames of `testdata/mib/<stem>.mib` and its `.hdr` into `dir`.
    func cutCopy(_ stem: String, total: Int, frames: Int, into dir: String) throws -> String? {
        guard let root = SharedTestData.root else { return nil }
        let src = root + "/mib/" + stem
        let data = try Data(contentsOf: URL(fileURLWithPath: src + ".mib"))
        XCTAssertEqual(data.count % total, 0)
        let stride = data.count / total
        let out = dir + "/" + stem + ".mib"
        try data.prefix(frames * stride).write(to: URL(fileURLWithPath: out))
        try FileManager.default.copyItem(atPath: src + ".hdr", toPath: dir + "/" + stem + ".hdr")
        return out
    }

    func testSharedFileCutAtFrameBoundaryWarnsAgainstHdrFrameCount() throws {
        guard let path = try cutCopy("Single_9_Frames_CounterDepth_12_Rows_256", total: 9, frames: 3, into: try dir("cut9")) else {
            throw XCTSkip(SharedTestData.skipMessage)
        }
        let f = try Catalog.open(path)
        XCTAssertEqual(f.datasets[0].frameCount, 3)
        XCTAssertTrue(f.warnings.contains { $0.contains("Single_9_Frames_CounterDepth_12_Rows_256.hdr announces 9 frames, the file holds 3") },
                      "\(f.warnings)")
        // The uncut file: no warning.
        let whole = try Catalog.open(SharedTestData.root! + "/mib/Single_9_Frames_CounterDepth_12_Rows_256.mib")
        XCTAssertEqual(whole.datasets[0].frameCount, 9)
        XCTAssertTrue(whole.warnings.isEmpty, "\(whole.warnings)")
    }

    func testSharedFileCutConvertsWithWarningOnStderr() throws {
        guard let path = try cutCopy("Single_9_Frames_CounterDepth_12_Rows_256", total: 9, frames: 3, into: try dir("cli")) else {
            throw XCTSkip(SharedTestData.skipMessage)
        }
        let r = try CLIRunner.run(["convert", path, "-o", tmp + "/cli/out.nxs"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("announces 9 frames, the file holds 3"), r.stderr)
    }

    /// A 4x2 scan (one trigger per frame: the shape comes from flyback timing) cut to one frame.
    func testScanCutToOneFrameSaysTheScanShapeFellBack() throws {
        if let path = try cutCopy("001_4x2_6bit", total: 8, frames: 1, into: try dir("scan1")) {
            let f = try Catalog.open(path)
            XCTAssertEqual(f.datasets[0].frameCount, 1)
            XCTAssertTrue(f.warnings.contains { $0.contains("001_4x2_6bit.hdr announces 8 frames, the file holds 1") && $0.contains("fell back") },
                          "\(f.warnings)")
        }
        // Generated: frames per trigger give a 2x4 scan; one frame is left.
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 1)
        s.framesInAcquisition = 8
        s.framesPerTrigger = 4
        let g = try MIBWriter.write(s, to: try dir("gen") + "/scan.mib")
        let f = try Catalog.open(g.primary)
        XCTAssertEqual(f.datasets[0].shape, [8, 256])
        XCTAssertTrue(f.warnings.contains { $0.contains("scan.hdr announces 8 frames (scan 2x4") && $0.contains("the file holds 1")
                && $0.contains("fell back to a stack of 1 frames") }, "\(f.warnings)")
        XCTAssertTrue(f.datasets[0].metadata.scanShapeSource == nil, "a stack has no scan shape")
    }

    /// One trigger per frame, no ScanX/ScanY: a cut file whose remaining frames are too few for
    /// the flyback inference becomes a stack, said so.
    func testGeneratedTriggerPerFrameScanCutBecomesStackWithWarning() throws {
        var s = MIBSpec(format: .u08, depth: 6, rows: 4, frames: 3)
        s.framesInAcquisition = 15
        s.flybackLineLength = 5
        let g = try MIBWriter.write(s, to: try dir("fly") + "/fly.mib")
        let f = try Catalog.open(g.primary)
        XCTAssertEqual(f.datasets[0].shape, [3, 4, 256])
        XCTAssertTrue(f.warnings.contains { $0.contains("fly.hdr announces 15 frames, the file holds 3") && $0.contains("scan shape") && $0.contains("fell back") },
                      "\(f.warnings)")
    }

    /// A series with its last file missing: compared over all files.
    func testSeriesMissingFramesIsComparedOverAllFiles() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 4)
        s.seriesFrames = [2, 2]
        s.framesInAcquisition = 6
        s.framesPerTrigger = 6
        let g = try MIBWriter.write(s, to: try dir("series") + "/acq.mib")
        let f = try Catalog.open(g.primary)
        XCTAssertEqual(f.datasets[0].frameCount, 4)
        XCTAssertTrue(f.warnings.contains { $0.contains("acq.hdr announces 6 frames, the files hold 4") }, "\(f.warnings)")
    }

    /// Interrupted scan with whole lines kept still names the announced total.
    func testInterruptedScanNamesAnnouncedFrames() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 10)
        s.scanX = 4
        s.scanY = 4
        s.framesInAcquisition = 16
        let g = try MIBWriter.write(s, to: try dir("int") + "/int.mib")
        let f = try Catalog.open(g.primary)
        XCTAssertEqual(f.datasets[0].shape, [2, 4, 8, 256])
        XCTAssertTrue(f.warnings.contains { $0.contains("int.hdr announces 16 frames (scan 4x4") && $0.contains("the file holds 10")
                && $0.contains("kept 2 complete lines") }, "\(f.warnings)")
    }
}
