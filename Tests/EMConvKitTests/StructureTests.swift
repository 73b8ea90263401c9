import CHDF5
@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
import EMConvTestSupport
import Foundation
import XCTest

/// Pins the structure: help on every path, options declared once and carried everywhere (convert,
/// batch children, docs), readers chosen by content, one converter for every writer, and
/// conversions that run side by side in one process.
final class StructureTests: TempDirectoryTestCase {
    let fm = FileManager.default

    // MARK: Help

    func testEveryHelpPathExitsZeroWithExamples() throws {
        let paths: [[String]] = [[], ["--help"], ["-h"], ["help"], ["help", "convert"], ["convert", "--help"], ["convert", "-h"],
                                 ["help", "batch"], ["batch", "--help"], ["info", "--help"], ["validate", "--help"],
                                 ["formats", "--help"], ["help", "info"]]
        for args in paths {
            let r = try CLIRunner.run(args)
            XCTAssertEqual(r.status, 0, "emconv \(args.joined(separator: " ")): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE:"), "emconv \(args.joined(separator: " ")) prints no usage: \(r.stdout.prefix(200))")
            XCTAssertTrue(r.stdout.contains("EXAMPLES"), "emconv \(args.joined(separator: " ")) has no examples")
            XCTAssertFalse(r.stdout.contains("CommandError") || r.stderr.contains("CommandError"))
        }
        let overview = try CLIRunner.run([])
        for sub in ["convert", "batch", "info", "validate", "formats"] { XCTAssertTrue(overview.stdout.contains(sub), sub) }
        // Convert's help lists every declared option, generated from the descriptors.
        let help = try CLIRunner.run(["convert", "--help"]).stdout
        for o in Catalog.readerOptions + Catalog.writerOptions { XCTAssertTrue(help.contains(o.spec.flag), o.spec.flag) }
        // No help line is wider than the terminal the parser formats for.
        XCTAssertTrue(help.split(separator: "\n").allSatisfy { $0.count <= 80 || $0.hasPrefix("USAGE:") })
    }

    func testUsageErrorsAreOneLineInEmconvStyle() throws {
        for (args, code) in [(["convert", "--bogus"], Int32(64)), (["convert"], 64), (["convert", "a.mib", "-o", "x.nxs", "--scan-shape", "0,4"], 64),
                             (["convert", "a.mib", "-o", "x.nxs", "--oo", "nope=1"], 64), (["batch"], 64)] {
            let r = try CLIRunner.run(args, cwd: tmp)
            XCTAssertEqual(r.status, code, "\(args): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("emconv: error: "), "\(args): \(r.stderr)")
        }
    }

    func testMessagesSayWhatToDo() throws {
        let raw = tmp + "/dump.raw"
        try Data(count: 4096).write(to: URL(fileURLWithPath: raw))
        var r = try CLIRunner.run(["convert", raw, "-o", tmp + "/d.nxs"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--raw-dtype") && r.stderr.contains("--raw-shape") && r.stderr.contains(".json"), r.stderr)
        let mib = SharedTestData.packageRoot + "/fixtures/mib/single_u08_1bit.mib"
        r = try CLIRunner.run(["convert", mib, "-o", tmp + "/"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("names a directory"), r.stderr)
        // `--` ends the options: a file whose name starts with a dash.
        let dash = tmp + "/-dash.mib"
        try fm.copyItem(atPath: mib, toPath: dash)
        try fm.copyItem(atPath: (mib as NSString).deletingPathExtension + ".hdr", toPath: tmp + "/-dash.hdr")
        r = try CLIRunner.run(["convert", "-o", "out.nxs", "--", "-dash.mib"], cwd: tmp)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/out.nxs"))
    }

    /// File names are data: a newline in a name never breaks emconv's one-line messages.
    func testControlCharactersInNamesStayOnOneLine() throws {
        let mib = SharedTestData.packageRoot + "/fixtures/mib/single_u08_1bit.mib"
        let ok = try CLIRunner.run(["convert", mib, "-o", tmp + "/two\nlines.nxs"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.stderr.split(separator: "\n").count, 1, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("two?lines.nxs"), ok.stderr)
        let bad = try CLIRunner.run(["convert", tmp + "/no\nsuch\u{1B}[2J.mib", "-o", tmp + "/x.nxs"])
        XCTAssertEqual(bad.status, 66)
        XCTAssertEqual(bad.stderr.split(separator: "\n").count, 1, bad.stderr)
        XCTAssertFalse(bad.stderr.contains("\u{1B}"))
    }

    func testQuietAndVerbose() throws {
        let mib = SharedTestData.packageRoot + "/fixtures/mib/single_u08_1bit.mib"
        let q = try CLIRunner.run(["convert", mib, "-o", tmp + "/q.nxs", "-q"])
        XCTAssertEqual(q.status, 0)
        XCTAssertEqual(q.stderr, "")
        let v = try CLIRunner.run(["convert", mib, "-o", tmp + "/v.nxs", "--verbose"])
        XCTAssertEqual(v.status, 0)
        XCTAssertTrue(v.stderr.contains("readers that identify") && v.stderr.contains("mib"), v.stderr)
        for sub in [["info", mib], ["formats"]] {
            XCTAssertEqual(try CLIRunner.run(sub + ["-q"]).status, 0, "\(sub) -q")
        }
        // validate: -q is accepted (the file lacks NXem's sample and user: invalid, exit 3).
        XCTAssertEqual(try CLIRunner.run(["validate", tmp + "/q.nxs", "-q"]).status, 3)
        XCTAssertEqual(try CLIRunner.run(["convert", mib, "-o", tmp + "/x.nxs", "-q", "-v"]).status, 64)
    }

    // MARK: Options as data

    /// A valid value for an option on the generated raw input (`shape 2,3,8,8 <u2`).
    func sample(_ spec: OptionSpec) -> [String] {
        var raw: [String: String] = [:]
        raw["raw-dtype"] = "<u2"
        raw["raw-shape"] = "2,3,8,8"
        for k in ["raw-offset", "raw-frame-header", "raw-frame-footer"] { raw[k] = "0" }
        raw["raw-signal-rank"] = "2"
        if let v = raw[spec.key] { return [spec.flag, v] }
        switch spec.kind {
        case .flag: return [spec.flag]
        case let .int(min): return [spec.flag, String(Swift.max(min, 1) * 1024)]
        case .intList: return [spec.flag, "2,3"]
        case .range: return [spec.flag, "0:1"]
        case let .choice(words): return [spec.flag, words[0]]
        case .compression: return [spec.flag, "zstd:1"]
        case .text: return [spec.flag, "x"]
        case let .wordOrInts(words): return [spec.flag, words[0]]
        case .axisRanges: return [spec.flag, "det_x=0:4"]
        case .axisFactors: return [spec.flag, "det_x=2"]
        }
    }

    func makeRaw(_ dir: String, name: String = "scan.raw") throws -> String {
        let p = dir + "/" + name
        let count = 2 * 3 * 8 * 8
        let values: [UInt16] = (0..<count).map { (i: Int) -> UInt16 in UInt16(truncatingIfNeeded: i * 7) }
        try Data(values.withUnsafeBytes { Array($0) }).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// The command line an output records (wherever the writer keeps it: NeXus has it as NXem's
    /// `profiling/command_line_call`).
    func recordedCommandLine(_ nxs: String) throws -> String {
        let f = try HDF5File(reading: nxs)
        var found: String?
        func walk(_ g: HDF5Group) {
            for n in g.childNames where found == nil {
                if n == "command_line" || n == "command_line_call", let v = g.openDataset(n)?.readStrings()?.first { found = v; return }
                if let c = g.openGroup(n) { walk(c) }
            }
        }
        walk(f.root)
        return try XCTUnwrap(found, "no command_line in \(nxs)")
    }

    func testEveryDeclaredOptionThroughConvertBatchAndDocs() throws {
        let all = Catalog.readerOptions + Catalog.writerOptions
        XCTAssertFalse(all.isEmpty)
        // One key, one meaning: a reader option and a writer option never share a key.
        XCTAssertTrue(Set(Catalog.readerOptions.map(\.spec.key)).isDisjoint(with: Catalog.writerOptions.map(\.spec.key)))
        let args = all.flatMap { sample($0.spec) }
        let inDir = try dir("in")
        let raw = try makeRaw(inDir)

        // convert: every option is taken; the ones that do not apply are said, never dropped silently.
        let c = try CLIRunner.run(["convert", raw, "-o", tmp + "/c.nxs"] + args)
        XCTAssertEqual(c.status, 0, c.stderr)
        for o in all where !(o.formats.contains("raw") || o.formats.contains("nexus")) {
            XCTAssertTrue(c.stderr.contains("\(o.spec.flag) does not apply"), "\(o.spec.flag): \(c.stderr)")
        }
        // The generic forms reach the same options.
        let g = try CLIRunner.run(["convert", raw, "-o", tmp + "/g.nxs", "--oo", "raw-dtype=<u2", "--oo", "raw_shape=2,3,8,8", "--co", "compression=none"])
        XCTAssertEqual(g.status, 0, g.stderr)

        // batch: every option reaches the child conversion, spelled from the declarations.
        let b = try CLIRunner.run(["batch", inDir, "-o", tmp + "/out", "--progress", "none"] + args)
        XCTAssertEqual(b.status, 0, b.stderr)
        let child = try recordedCommandLine(tmp + "/out/scan.nxs")
        for o in all { XCTAssertTrue(child.contains(o.spec.flag), "\(o.spec.flag) did not reach the child: \(child)") }

        // docs: README and formats.md list every option (generated by `make docs`).
        for doc in ["README.md", "formats.md"] {
            let text = try String(contentsOfFile: SharedTestData.packageRoot + "/" + doc, encoding: .utf8)
            for o in all { XCTAssertTrue(text.contains("`\(o.spec.flag)`"), "\(doc) lacks \(o.spec.flag); run 'make docs'") }
            XCTAssertTrue(text.contains(Catalog.markdownOptions().trimmingCharacters(in: .whitespacesAndNewlines)), "\(doc): options table is stale; run 'make docs'")
        }
        let formats = try CLIRunner.run(["formats"]).stdout
        for o in all { XCTAssertTrue(formats.contains(o.spec.flag), "emconv formats lacks \(o.spec.flag)") }
    }

    func testEveryFormatFolderDocumentsItselfInFormatsMd() throws {
        let root = SharedTestData.packageRoot
        let formats = try String(contentsOfFile: root + "/formats.md", encoding: .utf8)
        let names = Set(Catalog.descriptors.map(\.name))
        for parent in ["Sources/Formats", "Sources/Writers"] {
            for family in try fm.contentsOfDirectory(atPath: root + "/" + parent) {
                let doc = "\(root)/\(parent)/\(family)/FORMAT.md"
                XCTAssertTrue(fm.fileExists(atPath: doc), "\(parent)/\(family) has no FORMAT.md")
                let text = try String(contentsOfFile: doc, encoding: .utf8)
                let name = text.split(separator: " ").dropFirst(2).first.map(String.init) ?? ""
                XCTAssertTrue(names.contains(name), "\(doc) names '\(name)', not a catalog format")
                let body = text.split(separator: "\n", maxSplits: 1).last.map(String.init) ?? ""
                XCTAssertTrue(formats.contains(body.trimmingCharacters(in: .whitespacesAndNewlines)), "\(doc) is not in formats.md; run 'make docs'")
            }
        }
    }

    // MARK: Readers chosen by content

    func testNeXusOutputOpensUnderEveryExtensionItCanCarry() throws {
        let mib = SharedTestData.packageRoot + "/fixtures/mib/quad_u16_4x4.mib"
        let ref = try Catalog.open(mib).datasets[0]
        for ext in NeXusWriter.descriptor.extensions {
            let out = tmp + "/scan.\(ext)"
            _ = try Converter.convert(input: mib, output: out, options: ConversionOptions(threads: 1))
            XCTAssertEqual(try Catalog.candidates(for: out).first.map { $0.descriptor.name }, "nexus", ext)
            let back = try Catalog.open(out)
            XCTAssertEqual(back.format, "nexus")
            XCTAssertEqual(try DataHash.sha256(back.datasets[0]), try DataHash.sha256(ref), ext)
            let info = try CLIRunner.run(["info", out])
            XCTAssertEqual(info.status, 0, "\(ext): \(info.stderr)")
            let again = try CLIRunner.run(["convert", out, "-o", tmp + "/again-\(ext).nxs"])
            XCTAssertEqual(again.status, 0, "\(ext): \(again.stderr)")
        }
    }

    // MARK: One converter for every writer

    let sidecarText = """
    scan:
      step: [2.5, 2.5]
      step_units: nm
    sample:
      name: gold on carbon
    """

    func testSidecarCalibrationReachesEveryWriter() throws {
        let raw = try makeRaw(try dir("in"))
        let meta = tmp + "/meta.yaml"
        try sidecarText.write(toFile: meta, atomically: true, encoding: .utf8)
        let rawArgs = ["--raw-dtype", "<u2", "--raw-shape", "2,3,8,8", "--metadata", meta]

        // zspy: the navigation axes carry the sidecar's step and units; the sample is said to be left out.
        var r = try CLIRunner.run(["convert", raw, "-o", tmp + "/s.zspy"] + rawArgs)
        XCTAssertEqual(r.status, 0, r.stderr)
        let exp = try fm.contentsOfDirectory(atPath: tmp + "/s.zspy/Experiments").first { !$0.hasPrefix(".") }!
        for i in 0..<2 {
            let attrs = try MetaValue.parseJSON(String(contentsOfFile: "\(tmp!)/s.zspy/Experiments/\(exp)/axis-\(i)/.zattrs", encoding: .utf8))
            XCTAssertEqual(attrs["scale"]?.doubleValue, 2.5, "zspy axis \(i)")
            XCTAssertEqual(attrs["units"]?.stringValue, "nm", "zspy axis \(i)")
        }
        XCTAssertTrue(r.stderr.contains("leaves out") && r.stderr.contains("sample"), r.stderr)

        // TIFF: a stack whose slice axis is the scan axis gets the spacing and its unit.
        r = try CLIRunner.run(["convert", raw, "-o", tmp + "/s.tif", "--raw-dtype", "<u2", "--raw-shape", "6,8,8", "--metadata", meta])
        XCTAssertEqual(r.status, 0, r.stderr)
        let tif = try String(decoding: Data(contentsOf: URL(fileURLWithPath: tmp + "/s.tif")), as: UTF8.self)
        XCTAssertTrue(tif.contains("spacing=2.5"), "TIFF description lacks the sidecar's step")
        XCTAssertTrue(r.stderr.contains("leaves out") && r.stderr.contains("sample"), r.stderr)

        // NeXus holds everything: no such warning.
        r = try CLIRunner.run(["convert", raw, "-o", tmp + "/s.nxs"] + rawArgs)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("leaves out"), r.stderr)
        let back = try Catalog.open(tmp + "/s.nxs").datasets[0]
        XCTAssertEqual(back.axes[0].scale, 2.5)
        XCTAssertEqual(back.axes[1].units, "nm")
    }

    func testWriterLearnsTheFinalNameFromTheConverter() throws {
        let mib = SharedTestData.packageRoot + "/fixtures/mib/single_u08_1bit.mib"
        _ = try Converter.convert(input: mib, output: tmp + "/final name.nxs", options: ConversionOptions(threads: 1))
        let f = try HDF5File(reading: tmp + "/final name.nxs")
        XCTAssertEqual(f.root.stringAttribute("file_name"), "final name.nxs")
    }

    // MARK: Concurrency

    /// Two different conversions (MIB to NeXus, EMPAD to zspy) at once in one process give the
    /// same data as each alone.
    func testTwoConversionsConcurrentlyInOneProcess() throws {
        let root = SharedTestData.packageRoot + "/fixtures"
        let jobs = [(root + "/mib/quad_u16_4x4.mib", "nxs"), (root + "/empad/acquisition_3x2.xml", "zspy")]
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var list: [String] = []
            func add(_ e: Error) { lock.withLock { list.append("\(e)") } }
        }
        let dir: String = tmp
        func run(_ tag: String) throws {
            let failures = Failures()
            DispatchQueue.concurrentPerform(iterations: jobs.count) { i in
                do {
                    _ = try Converter.convert(input: jobs[i].0, output: "\(dir)/\(tag)-\(i).\(jobs[i].1)", options: ConversionOptions(threads: 2))
                } catch {
                    failures.add(error)
                }
            }
            XCTAssertTrue(failures.list.isEmpty, "\(failures.list)")
        }
        for i in jobs.indices {   // each alone
            _ = try Converter.convert(input: jobs[i].0, output: "\(tmp!)/alone-\(i).\(jobs[i].1)", options: ConversionOptions(threads: 2))
        }
        for round in 0..<3 { try run("together\(round)") }
        let nx = "entry1/measurement/event1/image1/image_4d/real"
        let alone = try DataHash.sha256(hdf5: tmp + "/alone-0.nxs", dataset: nx).0
        for round in 0..<3 {
            XCTAssertEqual(try DataHash.sha256(hdf5: "\(tmp!)/together\(round)-0.nxs", dataset: nx).0, alone)
            XCTAssertEqual(try zarrDataFiles(tmp + "/alone-1.zspy"), try zarrDataFiles("\(tmp!)/together\(round)-1.zspy"))
        }
    }

    /// Every chunk file of every `data` array of a zspy tree, by relative path.
    func zarrDataFiles(_ root: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let e = try XCTUnwrap(fm.enumerator(atPath: root))
        while let rel = e.nextObject() as? String {
            guard rel.contains("/data/"), !rel.hasSuffix(".zarray"), !rel.hasSuffix(".zattrs") else { continue }
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel))
            }
        }
        XCTAssertFalse(out.isEmpty)
        return out
    }

    // MARK: Batch

    func testBatchOutputNamesDoNotDependOnFilters() throws {
        let inDir = try dir("tree")
        for ext in ["dm3", "dm4"] {
            try DMWriter.write(inDir + "/x.\(ext)", version: ext == "dm3" ? 3 : 4, images: [DMWriter.Image(
                dataType: 2, dims: [4, 3], pixels: .bytes([UInt8](repeating: 1, count: 24)), calibrations: [(0, 1, "nm"), (0, 1, "nm")])])
        }
        _ = try makeRaw(inDir, name: "y.raw")
        try #"{"dtype": "<u2", "shape": [2, 3, 8, 8]}"#.write(toFile: inDir + "/y.raw.json", atomically: true, encoding: .utf8)
        func plan(_ extra: [String]) throws -> [String: String] {
            let r = try CLIRunner.run(["batch", inDir, "-o", tmp + "/out", "--dry-run", "--json", "--name", "{stem}-{index}.{ext}"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let v = try MetaValue.parseJSON(r.stdout)
            guard case let .array(items)? = v["items"] else { return [:] }
            return Dictionary(uniqueKeysWithValues: items.compactMap { i in i["input"]?.stringValue.map { ($0, i["output"]?.stringValue ?? "") } })
        }
        let all = try plan([])
        XCTAssertEqual(all.count, 3)
        for filter in [["--include", "*.dm3"], ["--exclude", "*.dm4"], ["--include", "*.raw"]] {
            let some = try plan(filter)
            XCTAssertFalse(some.isEmpty)
            for (input, output) in some { XCTAssertEqual(output, all[input], "\(filter): \(input)") }
        }
    }

    /// A batch child whose parent is gone (its stderr reader closed) keeps going and never dies on
    /// SIGPIPE with its temporary left behind.
    func testConvertSurvivesAClosedProgressReader() throws {
        let inDir = try dir("pipe")
        let p = inDir + "/big.raw"
        try Data(count: 24 * 512 * 512 * 2).write(to: URL(fileURLWithPath: p))
        try #"{"dtype": "<u2", "shape": [24, 512, 512]}"#.write(toFile: p + ".json", atomically: true, encoding: .utf8)
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: try XCTUnwrap(CLIRunner.binary))
        proc.arguments = ["convert", p, "-o", inDir + "/out.nxs", "--progress", "json", "--threads", "1", "--compression", "gzip:9"]
        let err = Pipe()
        proc.standardError = err
        proc.standardOutput = FileHandle.nullDevice
        try proc.run()
        err.fileHandleForReading.closeFile()
        proc.waitUntilExit()
        XCTAssertEqual(proc.terminationReason, .exit, "ended by signal \(proc.terminationStatus)")
        XCTAssertEqual(proc.terminationStatus, 0)
        XCTAssertTrue(fm.fileExists(atPath: inDir + "/out.nxs"))
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: inDir).contains { $0.contains("tmp-emconv") })
    }

    func testBatchProgressCarriesChildProgress() throws {
        // A file big enough for the child to report progress before it finishes.
        let inDir = try dir("big")
        let n = 40, side = 512
        let p = inDir + "/big.raw"
        var bytes = [UInt8](repeating: 0, count: n * side * side * 2)
        for i in stride(from: 0, to: bytes.count, by: 97) { bytes[i] = UInt8(i & 0xFF) }
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        try #"{"dtype": "<u2", "shape": [\#(n), \#(side), \#(side)]}"#.write(toFile: p + ".json", atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["batch", inDir, "-o", tmp + "/out", "--progress", "json", "--compression", "gzip:9", "-j", "1", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let events = r.stderr.split(separator: "\n").compactMap { try? MetaValue.parseJSON(String($0)) }
        let progress = events.filter { $0["event"]?.stringValue == "item_progress" }
        XCTAssertFalse(progress.isEmpty, "no item_progress event: \(r.stderr.prefix(400))")
        XCTAssertTrue(progress.contains { ($0["fraction"]?.doubleValue ?? 0) < 1 }, "progress only at the end")
        XCTAssertEqual(events.last?["event"]?.stringValue, "end")
    }
}
