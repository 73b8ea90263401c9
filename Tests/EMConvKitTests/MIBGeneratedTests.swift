import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Generated Merlin acquisitions of every variant (the real samples lack most of them), read
/// through the registry and compared bit for bit with the generator's values (on-disk row order).
final class MIBGeneratedTests: TempDirectoryTestCase {
    /// Writes `spec` as `tmp/<name>.mib` (+ .hdr), opens it with the registry and checks type,
    /// frame shape, frame count and every frame's bytes (read back to front, then one forward).
    @discardableResult
    func roundTrip(_ spec: MIBSpec, _ name: String, options: OptionValues = OptionValues(), open openName: String? = nil,
                   expectFrames: Int? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> (OpenedFile, MIBGenerated) {
        let g = try MIBWriter.write(spec, to: tmp + "/" + name + ".mib")
        let path = openName.map { tmp + "/" + $0 } ?? g.primary
        let f = try Catalog.open(path, options: options)
        XCTAssertEqual(f.format, "mib", name, file: file, line: line)
        XCTAssertEqual(f.datasets.count, 1, name, file: file, line: line)
        let ds = f.datasets[0]
        XCTAssertEqual(ds.elementType, spec.elementType, "\(name): element type", file: file, line: line)
        XCTAssertEqual(ds.frameShape, [spec.rows, spec.cols], "\(name): frame shape", file: file, line: line)
        XCTAssertEqual(Array(ds.axes.suffix(2).map(\.name)), ["det_y", "det_x"], name, file: file, line: line)
        XCTAssertEqual(ds.frameCount, expectFrames ?? spec.frames, "\(name): frames", file: file, line: line)
        try assertFrames(ds, spec, name, file: file, line: line)
        return (f, g)
    }

    func assertFrames(_ ds: Dataset, _ spec: MIBSpec, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var buf = [UInt8](repeating: 0xEE, count: ds.frameBytes)
        let order = Array((0..<ds.frameCount).reversed()) + (ds.frameCount > 1 ? [0] : [])
        for i in order {
            try buf.withUnsafeMutableBytes { try ds.source.readFrame(i, into: $0) }
            let e = spec.expectedFrame(i)
            if buf != e {
                let at = (0..<min(buf.count, e.count)).first { buf[$0] != e[$0] } ?? min(buf.count, e.count)
                let px = at / spec.elementType.size
                XCTFail("\(name): frame \(i) differs first at pixel (\(px / spec.cols), \(px % spec.cols))", file: file, line: line)
                return
            }
        }
    }

    // MARK: processed frames

    func testProcessedVariantsSingleAndQuad() throws {
        let combos: [(MIBSpec.PixelFormat, Int)] = [(.u08, 1), (.u08, 6), (.u16, 12), (.u32, 24), (.u16, 6), (.u32, 12), (.u16, 1)]
        for quad in [false, true] {
            for (fmt, depth) in combos {
                var s = MIBSpec(quad: quad, format: fmt, depth: depth, rows: quad ? 64 : 256, frames: 3)
                s.seed = UInt64(depth * 10 + (quad ? 1 : 0))
                let name = "\(quad ? "quad" : "single")_\(fmt.rawValue)_\(depth)"
                let (f, _) = try roundTrip(s, name)
                let ds = f.datasets[0]
                XCTAssertEqual(ds.metadata.counterDepthBits, depth, name)
                XCTAssertEqual(ds.axes.map(\.name), ["frame", "det_y", "det_x"], name)
                XCTAssertTrue(f.warnings.isEmpty, "\(name): \(f.warnings)")
            }
        }
    }

    func testROIRowsAndSingleFrame() throws {
        for rows in [1, 64, 100] {
            try roundTrip(MIBSpec(quad: false, format: .u16, depth: 12, rows: rows, frames: 2), "roi_\(rows)")
        }
        let (f, _) = try roundTrip(MIBSpec(quad: true, format: .u08, depth: 6, rows: 32, frames: 1), "quad_roi_1frame")
        XCTAssertEqual(f.datasets[0].shape, [32, 512])
    }

    func testHeaderSizeIsTakenFromField3() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 16, frames: 3)
        s.headerBytes = 512
        try roundTrip(s, "hdr512")
        var q = MIBSpec(quad: true, format: .r64, depth: 12, rows: 16, frames: 2)
        q.headerBytes = 1024
        try roundTrip(q, "quad_raw_hdr1024")
    }

    func testMetadataFromHeaders() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 4)
        s.exposureNanoseconds = 2_500_000
        s.frameIntervalNanoseconds = 3_000_000
        let (f, _) = try roundTrip(s, "meta")
        let md = f.datasets[0].metadata
        XCTAssertEqual(md.exposureTime?.value ?? 0, 0.0025, accuracy: 1e-12)
        let start = try XCTUnwrap(md.startTime)
        XCTAssertEqual(start.date.timeIntervalSince1970, Double(s.startNanoseconds) * 1e-9, accuracy: 1e-6)
        let end = try XCTUnwrap(md.endTime)
        XCTAssertEqual(end.date.timeIntervalSince1970, Double(s.frameTime(3)) * 1e-9, accuracy: 1e-6)
    }

    // MARK: raw frames

    func testRawAllDepthsSingleAndQuad() throws {
        for quad in [false, true] {
            for depth in [1, 6, 12, 24] {
                var s = MIBSpec(quad: quad, format: .r64, depth: depth, rows: quad ? 128 : 64, frames: 3)
                s.seed = UInt64(100 + depth)
                let name = "raw_\(quad ? "quad" : "single")_\(depth)"
                let (f, _) = try roundTrip(s, name)
                XCTAssertEqual(f.datasets[0].metadata.counterDepthBits, depth, name)
                XCTAssertTrue(f.variant.contains("R64"), f.variant)
            }
        }
    }

    func testRawFullSizeQuadLikeMerlin() throws {
        // 512x512 quad, header 1024x256 as Merlin writes it (the real sample is 1-bit).
        var s = MIBSpec(quad: true, format: .r64, depth: 1, rows: 512, frames: 2)
        XCTAssertEqual(s.headerWidthHeight.0, 1024)
        XCTAssertEqual(s.headerWidthHeight.1, 256)
        try roundTrip(s, "raw_quad_full_1")
        s.depth = 12
        try roundTrip(s, "raw_quad_full_12")
    }

    /// The raw encoding against the layout spelled out pixel by pixel (independent of the
    /// generator's word packing): single-chip 12-bit, pixel x of a row sits in 16-bit
    /// big-endian slot (x/4)*4 + 3 - x%4; 1-bit pixel x is bit x%8 of byte (x/64)*8 + 7 - (x%64)/8.
    func testRawCodecAgainstSpelledOutLayout() {
        let row = (0..<64).map { UInt32($0 * 37 % 4096) }
        var out12: [UInt8] = []
        MIBRawCodec.appendRow(row[...], depth: 12, to: &out12)
        for x in 0..<64 {
            let slot = (x / 4) * 4 + 3 - x % 4
            XCTAssertEqual(UInt32(out12[2 * slot]) << 8 | UInt32(out12[2 * slot + 1]), row[x])
        }
        let bits = (0..<128).map { UInt32(($0 * 7 + $0 / 5) % 3 == 0 ? 1 : 0) }
        var out1: [UInt8] = []
        MIBRawCodec.appendRow(bits[...], depth: 1, to: &out1)
        XCTAssertEqual(out1.count, 16)
        for x in 0..<128 {
            let byte = (x / 64) * 8 + 7 - (x % 64) / 8
            XCTAssertEqual(UInt32(out1[byte] >> UInt8(x % 8) & 1), bits[x], "pixel \(x)")
        }
        let six = (0..<16).map { UInt32($0 * 5 % 64) }
        var out6: [UInt8] = []
        MIBRawCodec.appendRow(six[...], depth: 6, to: &out6)
        for x in 0..<16 { XCTAssertEqual(UInt32(out6[(x / 8) * 8 + 7 - x % 8]), six[x]) }
    }

    /// Without MQ1A and .hdr the depth follows from where the second header is. (24-bit is
    /// not tested here: its frame size equals a 12-bit frame of the doubled header width.)
    func testRawDepthInferredWithoutMQ1AOrHdr() throws {
        for depth in [1, 6, 12] {
            var s = MIBSpec(format: .r64, depth: depth, rows: 64, frames: 3)
            s.mq1a = false
            s.writeHdr = false
            let (f, _) = try roundTrip(s, "raw_nodepth_\(depth)")
            XCTAssertEqual(f.datasets[0].metadata.counterDepthBits, depth)
        }
    }

    func testRawDepthFromHdrWithoutMQ1A() throws {
        for (quad, depth) in [(true, 6), (false, 24), (true, 24)] {
            var s = MIBSpec(quad: quad, format: .r64, depth: depth, rows: 64, frames: 2)
            s.mq1a = false
            let (f, _) = try roundTrip(s, "raw_hdrdepth_\(quad)_\(depth)")
            XCTAssertEqual(f.datasets[0].metadata.counterDepthBits, depth)
        }
    }

    // MARK: navigation shape

    func testFramesPerTriggerGivesScan() throws {
        var s = MIBSpec(format: .u08, depth: 6, rows: 8, frames: 12)
        s.framesPerTrigger = 4
        let (f, _) = try roundTrip(s, "fpt")
        XCTAssertEqual(f.datasets[0].shape, [3, 4, 8, 256])
        XCTAssertEqual(f.datasets[0].axes.map(\.name), ["scan_y", "scan_x", "det_y", "det_x"])
        XCTAssertEqual(f.datasets[0].axes.prefix(2).map(\.role), [.navigation, .navigation])
        XCTAssertEqual(f.datasets[0].signalKind, "4d-stem")
    }

    /// Frames in acquisition = frames per trigger: one line, kept as a 1-D stack (RosettaSciIO's reading).
    func testSingleLineStaysAStack() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 6)
        s.framesPerTrigger = 6
        let (f, _) = try roundTrip(s, "oneline")
        XCTAssertEqual(f.datasets[0].shape, [6, 8, 256])
    }

    func testScanXYKeysWin() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 6)
        s.scanX = 3
        s.scanY = 2
        s.framesPerTrigger = 6
        let (f, _) = try roundTrip(s, "scanxy")
        XCTAssertEqual(f.datasets[0].shape, [2, 3, 8, 256])
        XCTAssertEqual(f.datasets[0].metadata.scanShape, [2, 3])
    }

    func testScanShapeOverride() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 12)
        s.framesPerTrigger = 4
        let (f, _) = try roundTrip(s, "override", options: OptionValues(["scan-shape": "2,6"]))
        XCTAssertEqual(f.datasets[0].shape, [2, 6, 8, 256])
        // A smaller override converts the first frames, with a warning.
        let small = try Catalog.open(tmp + "/override.mib", options: OptionValues(["scan-shape": "2,5"]))
        XCTAssertEqual(small.datasets[0].shape, [2, 5, 8, 256])
        XCTAssertFalse(small.warnings.isEmpty)
        // Too large: a usage error, not a crash.
        XCTAssertThrowsError(try Catalog.open(tmp + "/override.mib", options: OptionValues(["scan-shape": "4,4"]))) { e in
            XCTAssertEqual((e as? EMError)?.code, .usage)
        }
    }

    func testInterruptedScanKeepsCompleteLines() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 10)
        s.scanX = 4
        s.scanY = 4
        s.framesInAcquisition = 16
        let (f, _) = try roundTrip(s, "interrupted", expectFrames: 8)
        XCTAssertEqual(f.datasets[0].shape, [2, 4, 8, 256])
        XCTAssertTrue(f.warnings.contains { $0.contains("interrupted") && $0.contains("2 complete lines") }, "\(f.warnings)")
    }

    func testTruncatedLastFrameKeepsCompleteFrames() throws {
        for cut in [1, 100, 383, 384, 385, 2000] {
            var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 5)
            s.partialFrameBytes = cut
            let (f, _) = try roundTrip(s, "partial_\(cut)")
            XCTAssertEqual(f.warnings.count, 1, "cut \(cut): \(f.warnings)")
            XCTAssertTrue(f.warnings.first?.contains("kept 5 complete frames") ?? false, "\(f.warnings)")
        }
        // Raw quad too.
        var q = MIBSpec(quad: true, format: .r64, depth: 1, rows: 64, frames: 3)
        q.partialFrameBytes = 900
        try roundTrip(q, "partial_rawquad")
    }

    func testFlybackInference() throws {
        var s = MIBSpec(format: .u08, depth: 6, rows: 4, frames: 15)
        s.flybackLineLength = 5
        s.writeHdr = false
        let (f, _) = try roundTrip(s, "flyback")
        XCTAssertEqual(f.datasets[0].shape, [3, 5, 4, 256])
        XCTAssertTrue(f.datasets[0].metadata.scanShapeSource?.contains("flyback") ?? false)
        // With the .hdr (frames per trigger 1), the same inference.
        s.writeHdr = true
        let (g, _) = try roundTrip(s, "flyback_hdr")
        XCTAssertEqual(g.datasets[0].shape, [3, 5, 4, 256])
        // Evenly spaced frames: no scan shape can be inferred, a 1-D stack.
        s.flybackLineLength = nil
        let (h, _) = try roundTrip(s, "noflyback")
        XCTAssertEqual(h.datasets[0].shape, [15, 4, 256])
    }

    /// Jitter alone must not look like a scan: here the gap after frame 4 is the largest by
    /// chance (by 2 µs), while the other gaps spread over 4 µs. One trigger for all frames.
    func testJitterIsNotMistakenForFlyback() throws {
        var s = MIBSpec(format: .u08, depth: 6, rows: 4, frames: 8)
        s.flybackLineLength = nil
        s.framesPerTrigger = 8
        s.frameTimeOffsetsNanoseconds = [0, 1_000, 0, 4_000, 10_000, 10_500, 12_000, 11_000]
        let (f, _) = try roundTrip(s, "jitter")
        XCTAssertEqual(f.datasets[0].shape, [8, 4, 256], "no scan shape from noise")
        // A real flyback (7 ms) with the same jitter and one trigger for all frames is found.
        s.flybackLineLength = 4
        let (g, _) = try roundTrip(s, "jitter_flyback")
        XCTAssertEqual(g.datasets[0].shape, [2, 4, 4, 256])
    }

    func testFlybackWithIncompleteLastLine() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 4, frames: 14)
        s.flybackLineLength = 4
        s.writeHdr = false
        let (f, _) = try roundTrip(s, "flyback_partial", expectFrames: 12)
        XCTAssertEqual(f.datasets[0].shape, [3, 4, 4, 256])
        XCTAssertFalse(f.warnings.isEmpty)
    }

    func testSeries() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 10)
        s.seriesFrames = [4, 4, 2]
        s.scanX = 5
        s.scanY = 2
        let (f, g) = try roundTrip(s, "acq", open: "acq_0001.mib")
        XCTAssertEqual(g.mibPaths.map { ($0 as NSString).lastPathComponent }, ["acq_0001.mib", "acq_0002.mib", "acq_0003.mib"])
        XCTAssertEqual(f.datasets[0].shape, [2, 5, 8, 256])
        XCTAssertEqual(f.files.filter { $0.hasSuffix(".mib") }.count, 3)
        XCTAssertTrue(f.files.contains { $0.hasSuffix("acq.hdr") }, "\(f.files)")
        // Opening a later file of the series gives the same acquisition.
        let mid = try Catalog.open(tmp + "/acq_0002.mib")
        XCTAssertEqual(mid.datasets[0].shape, [2, 5, 8, 256])
        try assertFrames(mid.datasets[0], s, "series via file 2")
    }

    func testSeriesOfRawQuadWithTruncatedLastFile() throws {
        var s = MIBSpec(quad: true, format: .r64, depth: 12, rows: 32, frames: 6)
        s.seriesFrames = [3, 3]
        s.partialFrameBytes = 700
        s.framesPerTrigger = 3
        let (f, _) = try roundTrip(s, "rawseries", open: "rawseries_0001.mib")
        XCTAssertEqual(f.datasets[0].shape, [2, 3, 32, 512])
        XCTAssertEqual(f.warnings.count, 1, "\(f.warnings)")
    }

    func testUnrelatedSiblingIsNotPartOfSeries() throws {
        var s = MIBSpec(format: .u16, depth: 12, rows: 8, frames: 4)
        s.seriesFrames = [2, 2]
        _ = try MIBWriter.write(s, to: tmp + "/run.mib")
        // A file with the same prefix but a different geometry and a sequence that does not continue.
        var other = MIBSpec(format: .u08, depth: 6, rows: 8, frames: 2)
        other.firstSequence = 100
        _ = try MIBWriter.write(other, to: tmp + "/run_0007.mib")
        let f = try Catalog.open(tmp + "/run_0001.mib")
        XCTAssertEqual(f.datasets[0].frameCount, 4)
        try assertFrames(f.datasets[0], s, "series with stranger")
    }

    // MARK: converted end to end

    func testConvertedNeXusEqualsGroundTruth() throws {
        var s = MIBSpec(quad: true, format: .r64, depth: 6, rows: 64, frames: 6)
        s.framesPerTrigger = 3
        let g = try MIBWriter.write(s, to: tmp + "/conv.mib")
        let out = tmp + "/conv.nxs"
        _ = try Converter.convert(input: g.primary, output: out, options: ConversionOptions(threads: 2, commandLine: "test", overwrite: true, compression: nil))
        let (hash, shape, type) = try DataHash.sha256(hdf5: out, dataset: "entry1/measurement/event1/image1/image_4d/real")
        XCTAssertEqual(shape, [2, 3, 64, 512])
        XCTAssertEqual(type, .uint8)
        let d = SHA256Digest()
        for i in 0..<6 { s.expectedFrame(i).withUnsafeBytes { d.update($0) } }
        XCTAssertEqual(hash, d.finalizeHex())
    }
}
