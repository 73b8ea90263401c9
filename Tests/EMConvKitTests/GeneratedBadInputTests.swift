import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Damaged and hostile inputs made from generated files: every one gives an EMError with the
/// right code (never a crash), and the CLI exits 65/66 with one line naming the file and leaves
/// nothing in the output directory.
final class GeneratedBadInputTests: TempDirectoryTestCase {

    static let base: MIBSpec = {
        var s = MIBSpec(format: .u16, depth: 12, rows: 16, frames: 4)
        s.framesPerTrigger = 2
        return s
    }()

    func writeBase(_ name: String, spec: MIBSpec = base) throws -> (String, [UInt8]) {
        let g = try MIBWriter.write(spec, to: try dir(name) + "/acq.mib")
        return (g.primary, [UInt8](try Data(contentsOf: URL(fileURLWithPath: g.primary))))
    }

    func save(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Opening throws an EMError with `code`, on one line, naming `names` (any of them).
    func assertOpenFails(_ path: String, _ code: EMError.Code, names: [String]? = nil, _ what: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        do {
            let f = try Catalog.open(path)
            // Some damage only shows when frames are read: then reading must fail cleanly.
            var failed = false
            for ds in f.datasets {
                var buf = [UInt8](repeating: 0, count: ds.frameBytes)
                for i in 0..<ds.frameCount {
                    do { try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) } } catch let e as EMError {
                        XCTAssertEqual(e.code, code, "\(what): \(e)", file: file, line: line)
                        failed = true
                        break
                    }
                }
            }
            XCTAssertTrue(failed, "\(what): opened and read without error", file: file, line: line)
        } catch let e as EMError {
            XCTAssertEqual(e.code, code, "\(what): \(e)", file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), "\(what): multi-line error", file: file, line: line)
            let ns = names ?? [(path as NSString).lastPathComponent]
            XCTAssertTrue(ns.contains { e.description.contains($0) }, "\(what): error does not name the file: \(e)", file: file, line: line)
        } catch {
            XCTFail("\(what): not an EMError: \(error)", file: file, line: line)
        }
    }

    /// `emconv convert` exits `status`, prints one stderr line naming the file, leaves no output.
    func assertCLIFails(_ path: String, status: Int32, names: [String]? = nil, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let outDir = try dir("out-\(UUID().uuidString)")
        let r = try CLIRunner.run(["convert", path, "-o", outDir + "/result.nxs"])
        XCTAssertEqual(r.status, status, "\(what): exit status; stderr: \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "\(what): stderr is not one line: \(r.stderr)", file: file, line: line)
        let ns = names ?? [(path as NSString).lastPathComponent]
        XCTAssertTrue(ns.contains { r.stderr.contains($0) }, "\(what): stderr does not name the file: \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), what, file: file, line: line)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []
        XCTAssertEqual(left, [], "\(what): files left in the output directory", file: file, line: line)
    }

    // MARK: truncation

    /// Cuts that leave no complete frame: every one is bad input.
    func testTruncatedWithoutCompleteFrame() throws {
        let (path, bytes) = try writeBase("cut")
        let stride = Self.base.frameStride
        let cuts = [0, 1, 3, 4, 5, 30, 50, 200, 383, 384, 385, 1000, stride - 1]
        for c in cuts {
            try save(Array(bytes.prefix(c)), path)
            assertOpenFails(path, .badInput, "cut at \(c)")
        }
        try save(Array(bytes.prefix(200)), path)
        try assertCLIFails(path, status: 65, "CLI cut mid-header")
        try save(Array(bytes.prefix(stride - 1)), path)
        try assertCLIFails(path, status: 65, "CLI cut one byte short of a frame")
        try save([], path)
        try assertCLIFails(path, status: 65, "CLI empty file")
    }

    /// Cuts at every later frame boundary and inside every later header or payload: the
    /// complete frames are kept (bit-exact), with a warning whenever something is dropped.
    func testTruncatedAfterCompleteFramesKeepsThem() throws {
        let (path, bytes) = try writeBase("cut2")
        let stride = Self.base.frameStride
        for k in 1...4 {
            for extra in [0, 4, 100, 383, 384, 4000] where k * stride + extra <= bytes.count {
                if k == 4 && extra > 0 { continue }
                try save(Array(bytes.prefix(k * stride + extra)), path)
                let f = try Catalog.open(path)
                let ds = f.datasets[0]
                // Frames per trigger 2: a scan of 2x2; an incomplete last line is dropped too.
                let kept = k >= 2 ? k / 2 * 2 : k
                XCTAssertEqual(ds.frameCount, kept, "cut \(k) frames + \(extra)")
                if k < 4 || extra > 0 { XCTAssertFalse(f.warnings.isEmpty, "cut \(k) frames + \(extra): no warning") }
                var buf = [UInt8](repeating: 0, count: ds.frameBytes)
                for i in 0..<kept {
                    try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
                    XCTAssertEqual(buf, Self.base.expectedFrame(i), "cut \(k)+\(extra): frame \(i)")
                }
            }
        }
        // End to end: a cut inside frame 4 keeps 3 frames, converts the complete scan line (2), warns, exits 0.
        try save(Array(bytes.prefix(3 * stride + 100)), path)
        let outDir = try dir("out-cut2")
        let r = try CLIRunner.run(["convert", path, "-o", outDir + "/r.nxs"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("kept 3 complete frames") && r.stderr.contains("interrupted"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outDir), ["r.nxs"])
    }

    // MARK: corrupt headers

    func headerReplacing(_ bytes: [UInt8], field: Int, with value: String, frames: [Int]? = nil) -> [UInt8] {
        var out = bytes
        let stride = Self.base.frameStride
        for k in frames ?? Array(0..<(bytes.count / stride)) {
            let off = k * stride
            let hb = Self.base.resolvedHeaderBytes
            let text = Array(out[off..<(off + hb)].prefix { $0 != 0 })
            var parts = String(decoding: text, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            parts[field] = value
            var nb = Array(parts.joined(separator: ",").utf8)
            nb = Array(nb.prefix(hb)) + [UInt8](repeating: 0, count: max(0, hb - nb.count))
            out.replaceSubrange(off..<(off + hb), with: nb)
        }
        return out
    }

    func testGarbageHeaders() throws {
        let (path, bytes) = try writeBase("garbage")
        let cases: [(String, [UInt8], EMError.Code)] = [
            ("sequence not a number", headerReplacing(bytes, field: 1, with: "xyz"), .badInput),
            ("header size 0", headerReplacing(bytes, field: 2, with: "00000"), .badInput),
            ("header size huge", headerReplacing(bytes, field: 2, with: "999999999"), .badInput),
            ("chips 0", headerReplacing(bytes, field: 3, with: "00"), .badInput),
            ("width 0", headerReplacing(bytes, field: 4, with: "0000"), .badInput),
            ("height negative", headerReplacing(bytes, field: 5, with: "-016"), .badInput),
            ("unknown pixel format", headerReplacing(bytes, field: 6, with: "X99"), .unsupported),
            ("width 65536 x height 65536 U16 (16 GiB frames)",
             headerReplacing(headerReplacing(bytes, field: 4, with: "65536"), field: 5, with: "65536"), .badInput),
            ("only MQ1, and binary", Array("MQ1,".utf8) + (0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ 13) }, .badInput),
            ("too few fields", Array("MQ1,1,384,1,".utf8) + [UInt8](repeating: 0, count: 9000), .badInput),
        ]
        for (what, b, code) in cases {
            try save(b, path)
            assertOpenFails(path, code, what)
        }
        try save(cases[0].1, path)
        try assertCLIFails(path, status: 65, "CLI garbage sequence field")
        try save(cases[6].1, path)
        try assertCLIFails(path, status: 65, "CLI unknown pixel format")
    }

    /// Headers whose sizes disagree with the file: the frame stride no longer lands on headers.
    func testHeaderSizesDisagreeWithFile() throws {
        let (path, bytes) = try writeBase("sizes")
        let cases: [(String, [UInt8])] = [
            ("height says 32, frames hold 16 rows", headerReplacing(bytes, field: 5, with: "0032")),
            ("height says 8, frames hold 16 rows", headerReplacing(bytes, field: 5, with: "0008")),
            ("width says 512", headerReplacing(bytes, field: 4, with: "0512")),
            ("header size says 400", headerReplacing(bytes, field: 2, with: "00400")),
            ("U32 instead of U16", headerReplacing(bytes, field: 6, with: "U32")),
            ("U08 instead of U16", headerReplacing(bytes, field: 6, with: "U08")),
        ]
        for (what, b) in cases {
            try save(b, path)
            assertOpenFails(path, .badInput, what)
        }
        try save(cases[0].1, path)
        try assertCLIFails(path, status: 65, "CLI height disagrees")
        try save(cases[3].1, path)
        try assertCLIFails(path, status: 65, "CLI header size disagrees")
    }

    /// Frame 3's header overwritten: found while converting; the output is not left behind.
    func testCorruptMiddleFrameFailsDuringConversion() throws {
        var spec = Self.base
        spec.frames = 6
        spec.framesPerTrigger = 3
        let (path, bytes) = try writeBase("middle", spec: spec)
        var b = bytes
        let off = 2 * spec.frameStride
        for i in 0..<16 { b[off + i] = 0x7A }
        try save(b, path)
        assertOpenFails(path, .badInput, "corrupt frame 3 header")
        try assertCLIFails(path, status: 65, "CLI corrupt frame 3 header")
    }

    func testRawWithoutAnyDepthInformation() throws {
        var s = MIBSpec(format: .r64, depth: 12, rows: 16, frames: 1)
        s.mq1a = false
        s.writeHdr = false
        let g = try MIBWriter.write(s, to: try dir("nodepth") + "/acq.mib")
        assertOpenFails(g.primary, .unsupported, "one raw frame, no MQ1A, no .hdr")
        try assertCLIFails(g.primary, status: 65, "CLI raw without depth")
    }

    func testNonMIBFilesNamedMib() throws {
        let d = try dir("notmib")
        // A NeXus file produced from a good MIB, renamed.
        let (good, _) = try writeBase("goodsrc")
        let h5 = d + "/from.nxs"
        _ = try Converter.convert(input: good, output: h5, options: ConversionOptions(threads: 1, commandLine: "test"))
        let cases: [(String, [UInt8])] = [
            ("text", Array("This is not a Merlin file, just some text.\n".utf8)),
            ("png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 0, count: 500)),
            ("zeros", [UInt8](repeating: 0, count: 10000)),
            ("hdr text", Array("HDR,\t\r\nFrames in Acquisition (Number):\t4\r\nEnd\t".utf8)),
            ("lowercase mq1", Array("mq1,000001,00384,01,0256,0016,U16,   1x1,01,".utf8) + [UInt8](repeating: 0, count: 9000)),
        ]
        for (what, b) in cases {
            let p = d + "/\(what.replacingOccurrences(of: " ", with: "_")).mib"
            try save(b, p)
            assertOpenFails(p, .badInput, what)
            try assertCLIFails(p, status: 65, "CLI \(what)")
        }
        // Readers are chosen by content: emconv's NeXus output opens as NeXus under any name.
        let renamed = d + "/hdf5.mib"
        try save([UInt8](try Data(contentsOf: URL(fileURLWithPath: h5))), renamed)
        XCTAssertEqual(try Catalog.open(renamed).format, "nexus")
    }

    func testGarbageHdrCompanion() throws {
        let (path, _) = try writeBase("badhdr")
        let hdr = (path as NSString).deletingPathExtension + ".hdr"
        try save((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, hdr)
        do {
            let f = try Catalog.open(path)
            XCTAssertEqual(f.datasets[0].frameCount, 4)
        } catch let e as EMError {
            XCTAssertEqual(e.code, .badInput, "\(e)")
            XCTAssertTrue(e.description.contains("acq.hdr"), "\(e)")
        }
    }

    func testMissingInputFile() throws {
        let p = try dir("missing") + "/nothere.mib"
        XCTAssertThrowsError(try Catalog.open(p)) { e in
            XCTAssertTrue([.missingInput, .badInput].contains((e as? EMError)?.code), "\(e)")
        }
        try assertCLIFails(p, status: 66, "CLI missing input")
    }

    // MARK: EMPAD

    func testEMPADBadRaw() throws {
        let spec = EMPADSpec(scanX: 4, scanY: 4)
        // Missing raw.
        var s = spec
        s.writeRaw = false
        let missing = try EMPADWriter.write(s, xml: try dir("empad-missing") + "/acq.xml")
        assertOpenFails(missing.xmlPath, .missingInput, names: ["acq.xml"], "EMPAD raw missing")
        try assertCLIFails(missing.xmlPath, status: 66, names: ["acq.xml", spec.resolvedRawName], "CLI EMPAD raw missing")
        // Raw of the wrong sizes.
        let wrong: [(String, Int?, Int)] = [("one frame short", 15, 0), ("one frame extra", 17, 0), ("100 bytes extra", nil, 100),
                                            ("empty", 0, 0), ("half a frame", 0, 33280)]
        for (what, frames, extra) in wrong {
            var w = spec
            w.rawFrames = frames
            w.rawExtraBytes = extra
            let g = try EMPADWriter.write(w, xml: try dir("empad-\(what.replacingOccurrences(of: " ", with: "_"))") + "/acq.xml")
            assertOpenFails(g.xmlPath, .badInput, names: ["acq.xml", spec.resolvedRawName], "EMPAD raw \(what)")
            try assertCLIFails(g.xmlPath, status: 65, names: ["acq.xml", spec.resolvedRawName], "CLI EMPAD raw \(what)")
        }
    }

    func testEMPADBadXML() throws {
        let d = try dir("empad-xml")
        let g = try EMPADWriter.write(EMPADSpec(scanX: 2, scanY: 2), xml: d + "/acq.xml")
        let xml = try String(contentsOfFile: g.xmlPath, encoding: .utf8)
        let cases: [(String, String)] = [
            ("truncated", String(xml.prefix(xml.count / 2))),
            ("no raw_file", xml.replacingOccurrences(of: "<raw_file filename=\"scan_x2_y2.raw\"/>", with: "")),
            ("unclosed tag", xml.replacingOccurrences(of: "</root>", with: "")),
        ]
        for (what, text) in cases {
            try Data(text.utf8).write(to: URL(fileURLWithPath: g.xmlPath))
            assertOpenFails(g.xmlPath, .badInput, what)
            try assertCLIFails(g.xmlPath, status: 65, "CLI EMPAD xml \(what)")
        }
    }
}
