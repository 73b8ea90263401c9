@testable import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// Issue 16: detector corrections (--dark, --gain, --flat-field, --pixel-mask), their records,
/// `validate` re-deriving them, and the derived views (--vbf, --vadf, --sum-pattern, --max-pattern).
final class CorrectionTests: TempDirectoryTestCase {
    /// The 4-D input: 3x4 scan of 6x8 uint16 frames, value = a fixed function of the index.
    let shape = [3, 4, 6, 8]
    func value(_ i: Int) -> UInt16 { UInt16(truncatingIfNeeded: (i &* 2_654_435_761) >> 9) % 4000 }
    var input: [UInt16] { (0..<shape.reduce(1, *)).map(value) }

    func writeRaw<T>(_ values: [T], dtype: String, shape: [Int], name: String, signalRank: Int = 2) throws -> String {
        let p = tmp + "/" + name
        try Data(values.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: p))
        try #"{"dtype": "\#(dtype)", "shape": [\#(shape.map(String.init).joined(separator: ","))], "signal_rank": \#(signalRank)}"#
            .write(toFile: p + ".json", atomically: true, encoding: .utf8)
        return p
    }

    func scanRaw() throws -> String { try writeRaw(input, dtype: "<u2", shape: shape, name: "scan.raw") }
    let dark: [Float] = (0..<48).map { Float($0 % 7) * 0.5 }
    let gain: [Float] = (0..<48).map { 1 + Float($0 % 5) * 0.125 }
    /// Masked: (0,0) corner, (2,3) and its right neighbour (2,4), (5,7) corner.
    let mask: [UInt8] = (0..<48).map { [0, 19, 20, 47].contains($0) ? 1 : 0 }

    /// The documented arithmetic, written out per pixel.
    func expected(frame f: Int, dark: [Float]?, gain: [Float]?, mask: [UInt8]?, fill: MaskFill) -> [Float] {
        var v = (0..<48).map { p -> Float in
            var x = Float(value(f * 48 + p))
            if let dark { x = x - dark[p] }
            if let gain { x = x * gain[p] }
            return x
        }
        guard let mask else { return v }
        let pre = v
        for p in 0..<48 where mask[p] != 0 {
            switch fill {
            case .zero: v[p] = 0
            case .nan: v[p] = .nan
            case .interpolate:
                let y = p / 8, x = p % 8
                var s: Float = 0, n = 0
                for (yy, xx) in [(y - 1, x), (y, x - 1), (y, x + 1), (y + 1, x)] where (0..<6).contains(yy) && (0..<8).contains(xx) && mask[yy * 8 + xx] == 0 {
                    s = s + pre[yy * 8 + xx]
                    n += 1
                }
                v[p] = n == 0 ? 0 : s / Float(n)
            }
        }
        return v
    }

    func readFloats(_ d: HDF5Dataset) throws -> [Float] {
        let n = d.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { try d.read(start: d.shape.map { _ in 0 }, count: d.shape, as: .float32, into: $0) }
        return out
    }

    func readDoubles(_ d: HDF5Dataset) throws -> [Double] { try d.readAllDoubles() }

    /// The NXdata signal of a dataset (derived ones too), by emconv's dataset name.
    func signal(_ h5: HDF5File, _ name: String) throws -> HDF5Dataset {
        let event = try XCTUnwrap(h5.root.openGroup("entry1/measurement/event1"))
        for n in event.childNames {
            guard let g = event.openGroup(n) else { continue }
            for dn in g.childNames {
                guard let d = g.openGroup(dn), d.openGroup("emconv")?.openDataset("dataset_name")?.readStrings()?.first == name,
                      let s = d.stringAttribute("signal") else { continue }
                return try XCTUnwrap(d.openDataset(s))
            }
        }
        throw EMError(.failure, "no dataset \(name)")
    }

    func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    // MARK: Arithmetic

    func testCorrectionArithmeticFollowsTheDocumentedOrderAndFills() {
        // One 2x3 frame: ((raw - dark) * gain) * flat, then the masked pixel filled.
        let raw: [UInt16] = [10, 20, 30, 40, 50, 60]
        let dark: [Float] = [2.5, 0, 1, 0, 0, 0], gain: [Float] = [2, 1, 1, 0.5, 1, 1], flat: [Float] = [0.5, 1, 2, 1, 1, 1]
        func run(_ fill: MaskFill, mask: [UInt8]) -> [Float] {
            let m = CorrectionMaps(frameShape: [2, 3], dark: dark, gain: gain, flat: flat, mask: mask, fill: fill)
            var out = [Float](repeating: -1, count: 6)
            raw.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { m.apply(b, .uint16, into: $0.baseAddress!) } }
            return out
        }
        // Pixel 1 (row 0, column 1) masked; its unmasked neighbours are 0 (7.5), 2 (58) and 4 (50).
        let m: [UInt8] = [0, 1, 0, 0, 0, 0]
        XCTAssertEqual(run(.zero, mask: m), [7.5, 0, 58, 20, 50, 60])
        XCTAssertEqual(run(.interpolate, mask: m), [7.5, (7.5 + 58 + 50) / 3, 58, 20, 50, 60])
        XCTAssertTrue(run(.nan, mask: m)[1].isNaN)
        // No unmasked neighbour: 0.
        XCTAssertEqual(run(.interpolate, mask: [1, 1, 0, 1, 0, 0])[0], 0)
    }

    // MARK: Through the CLI: records, maps, validate

    func testDarkGainMaskKeepRawStoreMapsWithChecksumsAndValidateProvesThem() throws {
        let raw = try scanRaw()
        let d = try writeRaw(dark, dtype: "<f4", shape: [6, 8], name: "dark.raw")
        let g = try writeRaw(gain, dtype: "<f4", shape: [6, 8], name: "gain.raw")
        let m = try writeRaw(mask, dtype: "|u1", shape: [6, 8], name: "mask.raw")
        let out = tmp + "/c.nxs"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--dark", d, "--gain", g, "--pixel-mask", m, "--mask-fill", "interpolate",
                                   "--compression", "none"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let h5 = try HDF5File(reading: out)
        let corrected = try readFloats(try signal(h5, "data"))
        let want = (0..<12).flatMap { expected(frame: $0, dark: dark, gain: gain, mask: mask, fill: .interpolate) }
        XCTAssertEqual(bits(corrected), bits(want))
        // The raw data beside, unchanged.
        let rawDS = try signal(h5, "data_raw")
        XCTAssertEqual(rawDS.elementType, .uint16)
        XCTAssertEqual(try rawDS.readAllDoubles(), input.map(Double.init))
        // The maps as NXdetector fields with their SHA-256, the record naming them.
        let det = try XCTUnwrap(h5.root.openGroup("entry1/measurement/instrument/detector1"))
        XCTAssertEqual(try readFloats(try XCTUnwrap(det.openDataset("correction_dark"))), dark)
        XCTAssertEqual(try readFloats(try XCTUnwrap(det.openDataset("correction_gain"))), gain)
        let gainSHA = SHA256Digest.hex(float32Bytes(gain))
        XCTAssertEqual(det.openDataset("correction_gain")?.stringAttribute("sha256"), gainSHA)
        XCTAssertEqual(try det.openDataset("correction_pixel_mask")?.readAllDoubles(), mask.map(Double.init))
        let image1 = try XCTUnwrap(h5.root.openGroup("entry1/measurement/event1/image1"))
        let json = try MetaValue.parseJSON(try XCTUnwrap(image1.openGroup("processing1/parameters")?.openDataset("data")?.readStringValues()?.first))
        XCTAssertEqual(json["step"], .string("correct"))
        let p = try XCTUnwrap(json["parameters"])
        XCTAssertEqual(p["maps"]?["correction_gain"]?["sha256"], .string(gainSHA))
        XCTAssertEqual(p["maps"]?["correction_gain"]?["origin"]?["file_sha256"], .string(try EMRules.fileSHA256(g)))
        XCTAssertEqual(p["raw_dataset"], .string("data_raw"))
        XCTAssertEqual(p["masked_pixels"], .int(4))
        XCTAssertEqual(image1.openGroup("processing1")?.openDataset("program")?.readStrings(), ["emconv"])
        XCTAssertEqual(image1.openGroup("processing1")?.openDataset("version")?.readStrings(), [EMConvVersion.string])

        // validate: the em profile re-derives from the stored raw data; --source also compares the raw data with the input.
        let v = try CLIRunner.run(["validate", out, "--profile", "em"])
        XCTAssertEqual(v.status, 0, v.stdout)
        XCTAssertTrue(v.stdout.contains("12 frame(s) re-derived bit for bit from the raw data"), v.stdout)
        let vs = try CLIRunner.run(["validate", out, "--profile", "em", "--source", raw])
        XCTAssertEqual(vs.status, 0, vs.stdout)
        XCTAssertTrue(vs.stdout.contains("the raw data equal the source"), vs.stdout)

        // Tampering: one value of the corrected data (frame 5, row 1, column 2), then one value of the gain map.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        func tampered(_ values: [Float], at index: Int, name: String) throws -> String {
            let pattern = Data(float32Bytes(values))
            let range = try XCTUnwrap(bytes.range(of: pattern), "values not found in the file")
            XCTAssertNil(bytes.range(of: pattern, in: range.upperBound..<bytes.count), "values not unique in the file")
            var copy = bytes
            let at = range.lowerBound + 4 * index
            copy.replaceSubrange(at..<(at + 4), with: float32Bytes([values[index] + 1]))
            let path = tmp + "/" + name
            try copy.write(to: URL(fileURLWithPath: path))
            return path
        }
        let frame5 = Array(want[(5 * 48)..<(6 * 48)])
        let badData = try tampered(frame5, at: 1 * 8 + 2, name: "bad-data.nxs")
        let t1 = try CLIRunner.run(["validate", badData, "--profile", "em"])
        XCTAssertEqual(t1.status, 3, t1.stdout)
        XCTAssertTrue(t1.stdout.contains("EM-CORRECTION ERROR") && t1.stdout.contains("frame 5 (index 1,1) pixel (row 1, column 2)"), t1.stdout)
        let badMap = try tampered(gain, at: 30, name: "bad-gain.nxs")
        let t2 = try CLIRunner.run(["validate", badMap, "--profile", "em", "--source", raw])
        XCTAssertEqual(t2.status, 3, t2.stdout)
        XCTAssertTrue(t2.stdout.contains("correction_gain map changed"), t2.stdout)
        // Without --source or the em profile, the maps' checksums are still checked (cheap).
        let quick = try CLIRunner.run(["validate", badMap])
        XCTAssertTrue(quick.stdout.contains("correction_gain map changed") && !quick.stdout.contains("re-derived"), quick.stdout)
    }

    /// Corrected frames of a sparse detector (most counts 0, so most corrected values repeat the
    /// previous frame's) are chunked in frame bands of 128 rows by default, which the gzip encoder
    /// codes against the previous frame: the same values, validated, in a much smaller file than
    /// whole-frame chunks (`--chunks frame`, still available).
    func testCorrectedSparseFramesAreChunkedInFrameBandsAndCodedAgainstThePreviousFrame() throws {
        let scan = [2, 8], side = 256, n = side * side
        var rng = SweepRNG(seed: 5)
        let counts = (0..<(16 * n)).map { _ -> UInt16 in Int.random(in: 0..<30, using: &rng) == 0 ? UInt16.random(in: 1...9, using: &rng) : 0 }
        let raw = try writeRaw(counts, dtype: "<u2", shape: scan + [side, side], name: "sparse.raw")
        let d = try writeRaw((0..<n).map { _ in Float.random(in: 0...20, using: &rng) }, dtype: "<f4", shape: [side, side], name: "d.raw")
        let g = try writeRaw((0..<n).map { _ in Float.random(in: 0.9...1.1, using: &rng) }, dtype: "<f4", shape: [side, side], name: "g.raw")
        var sizes: [String: Int] = [:], values: [String: [UInt32]] = [:]
        // (--vbf taps the corrected frames on their way: the bands must survive it.)
        for (name, extra) in [("bands", ["--vbf", "30"]), ("frames", ["--chunks", "frame"])] {
            let out = tmp + "/\(name).nxs"
            let r = try CLIRunner.run(["convert", raw, "-o", out, "--dark", d, "--gain", g, "--drop-raw"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let h5 = try HDF5File(reading: out)
            let data = try signal(h5, "data")
            XCTAssertEqual(data.chunkShape, name == "bands" ? [1, 8, 128, 256] : [1, 8, 256, 256], name)
            values[name] = bits(try readFloats(data))
            sizes[name] = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
            let v = try CLIRunner.run(["validate", out, "--profile", "em", "--source", raw])
            XCTAssertEqual(v.status, 0, v.stdout)
        }
        XCTAssertEqual(values["bands"], values["frames"])
        XCTAssertLessThan(Double(sizes["bands"]!), 0.5 * Double(sizes["frames"]!), "\(sizes)")
        // Converted again, the banded file keeps its bands (the default would be whole frames);
        // the whole-frame file keeps whole frames.
        for name in ["bands", "frames"] {
            let again = tmp + "/\(name)-again.nxs"
            let r = try CLIRunner.run(["convert", tmp + "/\(name).nxs", "-o", again])
            XCTAssertEqual(r.status, 0, r.stderr)
            let data = try signal(try HDF5File(reading: again), "data")
            XCTAssertEqual(data.chunkShape?.suffix(2), name == "bands" ? [128, 256] : [256, 256], name)
            XCTAssertEqual(bits(try readFloats(data)), values["frames"], name)
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: again)[.size] as? Int)
            if name == "bands" { XCTAssertLessThan(Double(size), 0.5 * Double(sizes["frames"]!), "\(size) vs \(sizes)") }
        }
    }

    /// A damaged Velox file whose image declares a 2.9e17-byte frame (fuzz finding): `--dark
    /// first:1` averaged it before the declared sizes were checked (Swift's allocation failure,
    /// a fatal error); now the frame is refused first, in one line.
    func testDarkFromFirstFramesOfAFileDeclaringAHugeFrameIsOneLineError() throws {
        let input = SharedTestData.packageRoot + "/fixtures/regressions/emd/velox-image-frame-2.9e17-bytes.emd"
        let r = try CLIRunner.run(["convert", input, "-o", tmp + "/x.nxs", "--dark", "first:1"])
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("one frame of dataset 'image'") && r.stderr.contains("memory budget"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/x.nxs"))
    }

    func testDarkFromTheFirstFramesIsTheirMeanAndDropRawNeedsTheSourceToProve() throws {
        let raw = try scanRaw()
        let out = tmp + "/d.nxs"
        let r = try CLIRunner.run(["convert", raw, "-o", out, "--dark", "first:3", "--drop-raw"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let h5 = try HDF5File(reading: out)
        let mean = (0..<48).map { p in Float((0..<3).map { Double(value($0 * 48 + p)) }.reduce(0, +) / 3) }
        let det = try XCTUnwrap(h5.root.openGroup("entry1/measurement/instrument/detector1"))
        XCTAssertEqual(bits(try readFloats(try XCTUnwrap(det.openDataset("correction_dark")))), bits(mean))
        XCTAssertThrowsError(try signal(h5, "data_raw"))
        XCTAssertEqual(bits(try readFloats(try signal(h5, "data"))), bits((0..<12).flatMap { expected(frame: $0, dark: mean, gain: nil, mask: nil, fill: .zero) }))
        let noSource = try CLIRunner.run(["validate", out, "--profile", "em"])
        XCTAssertTrue(noSource.stdout.contains("give --source IN to re-derive"), noSource.stdout)
        let v = try CLIRunner.run(["validate", out, "--profile", "em", "--source", raw])
        XCTAssertEqual(v.status, 0, v.stdout)
        XCTAssertTrue(v.stdout.contains("re-derived bit for bit from the source"), v.stdout)
    }

    func testBadMapsAndCombinationsAreOneLineErrors() throws {
        let raw = try scanRaw()
        func run(_ args: [String]) throws -> CLIRunner.Result { try CLIRunner.run(["convert", raw, "-o", tmp + "/x.nxs"] + args) }
        let small = try writeRaw([Float](repeating: 1, count: 40), dtype: "<f4", shape: [5, 8], name: "small.raw")
        let r1 = try run(["--gain", small])
        XCTAssertEqual(r1.status, 65, r1.stderr)
        XCTAssertTrue(r1.stderr.contains(small) && r1.stderr.contains("detector's shape 6x8"), r1.stderr)
        var nanGain = gain
        nanGain[13] = .nan
        let nan = try writeRaw(nanGain, dtype: "<f4", shape: [6, 8], name: "nan.raw")
        let r2 = try run(["--gain", nan])
        XCTAssertEqual(r2.status, 65, r2.stderr)
        XCTAssertTrue(r2.stderr.contains(nan) && r2.stderr.contains("(row 1, column 5) is not a finite"), r2.stderr)
        let stack = try writeRaw(input, dtype: "<u2", shape: shape, name: "stack.raw")
        let r3 = try run(["--gain", stack])
        XCTAssertEqual(r3.status, 65, r3.stderr)
        XCTAssertTrue(r3.stderr.contains("holds 12 frames; a gain map is one frame"), r3.stderr)
        let r4 = try run(["--pixel-mask", "from-file"])
        XCTAssertEqual(r4.status, 65, r4.stderr)
        XCTAssertTrue(r4.stderr.contains("holds no pixel mask"), r4.stderr)
        XCTAssertEqual(try run(["--mask-fill", "nan", "--gain", small]).status, 64)
        XCTAssertEqual(try run(["--dark", "first:1", "--bin", "det_y=2"]).status, 64)
        XCTAssertEqual(try run(["--dark", "first:13"]).status, 64)
        XCTAssertEqual(try run(["--dark", tmp + "/none.raw"]).status, 66)
        for r in [r1, r2, r3, r4] { XCTAssertEqual(r.stderr.split(separator: "\n").filter { $0.contains("error") }.count, 1, r.stderr) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/x.nxs"))
    }

    // MARK: Derived views

    func testVirtualImagesAndPatternsEqualTheirDefinitionWithFrameAndBalancedChunks() throws {
        let raw = try scanRaw()
        // Centre (3, 2.5): column 3, row 2.5.
        func dist(_ p: Int) -> Double { let y = Double(p / 8) - 2.5, x = Double(p % 8) - 3; return (x * x + y * y).squareRoot() }
        let frames = (0..<12).map { f in (0..<48).map { Double(value(f * 48 + $0)) } }
        let vbf = frames.map { fr in (0..<48).filter { dist($0) <= 2 }.map { fr[$0] }.reduce(0, +) }
        let vadf = frames.map { fr in (0..<48).filter { dist($0) > 2 && dist($0) <= 3.5 }.map { fr[$0] }.reduce(0, +) }
        let sum = (0..<48).map { p in frames.map { $0[p] }.reduce(0, +) }
        let max = (0..<48).map { p in frames.map { $0[p] }.max()! }
        for chunks in ["frame", "balanced"] {
            let out = tmp + "/v-\(chunks).nxs"
            let r = try CLIRunner.run(["convert", raw, "-o", out, "--vbf", "2", "--vadf", "2:3.5", "--centre", "3,2.5",
                                       "--sum-pattern", "--max-pattern", "--chunks", chunks])
            XCTAssertEqual(r.status, 0, r.stderr)
            let h5 = try HDF5File(reading: out)
            XCTAssertEqual(try signal(h5, "data_vbf").readAllDoubles(), vbf)
            XCTAssertEqual(try signal(h5, "data_vbf").shape, [3, 4])
            XCTAssertEqual(try signal(h5, "data_vadf").readAllDoubles(), vadf)
            XCTAssertEqual(try signal(h5, "data_sum_pattern").readAllDoubles(), sum)
            XCTAssertEqual(try signal(h5, "data_max_pattern").shape, [6, 8])
            XCTAssertEqual(try signal(h5, "data_max_pattern").readAllDoubles(), max)
            // Marked derived, with the step recorded; emconv's reader leaves the views out.
            let nxdata = try XCTUnwrap(try signal(h5, "data_vbf").path.split(separator: "/").dropLast().joined(separator: "/"))
            let g = try XCTUnwrap(h5.root.openGroup(String(nxdata)))
            XCTAssertTrue(g.openGroup("emconv")?.exists("derived") == true)
            let parent = try XCTUnwrap(h5.root.openGroup(String(nxdata.split(separator: "/").dropLast().joined(separator: "/"))))
            let json = try MetaValue.parseJSON(try XCTUnwrap(parent.openGroup("processing1/parameters")?.openDataset("data")?.readStringValues()?.first))
            XCTAssertEqual(json["step"], .string("virtual_bright_field"))
            XCTAssertEqual(json["parameters"]?["pixels"], .int(Int64((0..<48).filter { dist($0) <= 2 }.count)))
            XCTAssertEqual(try Catalog.open(out).datasets.map(\.name), ["data"])
        }
        // mrad radii need angle-calibrated detector axes.
        let bad = try CLIRunner.run(["convert", raw, "-o", tmp + "/m.nxs", "--vbf", "3mrad"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("need detector axes calibrated in angles"), bad.stderr)
    }

    func testCorrectedOutputReadBackKeepsItsRecordsAndMapsSoItStillValidates() throws {
        let raw = try scanRaw()
        let g = try writeRaw(gain, dtype: "<f4", shape: [6, 8], name: "gain.raw")
        let first = tmp + "/1.nxs", second = tmp + "/2.nxs"
        XCTAssertEqual(try CLIRunner.run(["convert", raw, "-o", first, "--gain", g, "--vbf", "2"]).status, 0)
        let read = try Catalog.open(first)
        XCTAssertEqual(read.datasets.map(\.name), ["data", "data_raw"])
        XCTAssertEqual(read.datasets[0].processing.map(\.name), ["correct"])
        XCTAssertNotNil(read.datasets[0].auxiliary["correction_gain"])
        let r = try CLIRunner.run(["convert", first, "-o", second])
        XCTAssertEqual(r.status, 0, r.stderr)
        let v = try CLIRunner.run(["validate", second, "--profile", "em"])
        XCTAssertEqual(v.status, 0, v.stdout)
        XCTAssertTrue(v.stdout.contains("re-derived bit for bit"), v.stdout)
        // TIFF: one file per dataset, each saying what was done (the maps need NeXus: said).
        let t = try CLIRunner.run(["convert", raw, "-o", tmp + "/c.tif", "--gain", g, "--stack"])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stderr.contains("records the correction") && t.stderr.contains("not the maps themselves"), t.stderr)
        let tif = try String(decoding: Data(contentsOf: URL(fileURLWithPath: tmp + "/c_data.tif")), as: UTF8.self)
        XCTAssertTrue(tif.contains("emconv_processing=") && tif.contains("\"correct\""))
    }

    // MARK: Issue 16 leftovers

    func testBatchReportNamesEachFileWhenTIFFWritesOneFilePerDataset() throws {
        let inDir = try dir("in")
        func image(_ name: String, _ seed: Int) -> Dataset {
            Dataset(name: name, axes: [Axis(name: "y", size: 3, role: .signal), Axis(name: "x", size: 4, role: .signal)],
                    elementType: .uint16, frameRank: 2, signalKind: "image",
                    source: ArrayFrameSource((0..<12).map { UInt16($0 * seed) }, frameElements: 12))
        }
        let f = OpenedFile(path: "mem", format: "raw", variant: "", datasets: [image("haadf", 1), image("bf", 3)], files: [],
                           original: .object([]), readerName: "test", readerVersion: "0")
        _ = try NeXusWriter.write(f, to: inDir + "/two.nxs", context: .standalone(f))
        let r = try CLIRunner.run(["batch", inDir, "-o", tmp + "/out", "--format", "tiff", "--report", tmp + "/r.jsonl", "--progress", "plain"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let e = try XCTUnwrap(try ReportWriter.merge(tmp + "/r.jsonl").first { $0.status == .ok })
        XCTAssertEqual(e.outputs.map { ($0 as NSString).lastPathComponent }, ["two_haadf.tif", "two_bf.tif"])
        XCTAssertEqual(e.outputsSHA256, try e.outputs.map { try OutputTree.sha256($0) })
        let said = r.stdout + r.stderr
        XCTAssertTrue(said.contains("two_haadf.tif, ") && said.contains("two_bf.tif"), said)
    }

    // MARK: Shared instrument files

    func testSharedARINAFlatFieldAndMaskFromTheFileValidateAgainstTheSource() throws {
        guard let root = SharedTestData.root else { throw XCTSkip(SharedTestData.skipMessage) }
        let master = root + "/arina/test_00_master.h5"
        let out = tmp + "/arina.nxs"
        let r = try CLIRunner.run(["convert", master, "-o", out, "--flat-field", "from-file", "--pixel-mask", "from-file",
                                   "--mask-fill", "interpolate", "--vbf", "20", "--sum-pattern"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let h5 = try HDF5File(reading: out)
        let det = try XCTUnwrap(h5.root.openGroup("entry1/measurement/instrument/detector1"))
        XCTAssertNotNil(det.openDataset("correction_flatfield"))
        XCTAssertNotNil(det.openDataset("correction_pixel_mask"))
        let v = try CLIRunner.run(["validate", out, "--profile", "em", "--source", master])
        XCTAssertEqual(v.status, 0, v.stdout)
        XCTAssertTrue(v.stdout.contains("re-derived bit for bit from the raw data") && v.stdout.contains("the raw data equal the source"), v.stdout)
    }

    func testSharedMIBDarkFromFirstFramesAndVirtualImage() throws {
        guard let root = SharedTestData.root else { throw XCTSkip(SharedTestData.skipMessage) }
        let mib = root + "/mib/Single_9_Frames_CounterDepth_12_Rows_256.mib"
        let out = tmp + "/mib.nxs"
        let r = try CLIRunner.run(["convert", mib, "-o", out, "--scan-shape", "3,3", "--dark", "first:2", "--vbf", "40"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let v = try CLIRunner.run(["validate", out, "--profile", "em", "--source", mib, "--scan-shape", "3,3"])
        XCTAssertEqual(v.status, 0, v.stdout)
        XCTAssertTrue(v.stdout.contains("9 frame(s) re-derived bit for bit"), v.stdout)
    }
}
