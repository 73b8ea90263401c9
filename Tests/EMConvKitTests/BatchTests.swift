import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

final class BatchTests: TempDirectoryTestCase {
    let fm = FileManager.default

    /// A raw file with a JSON descriptor beside it (the descriptor is its companion).
    func makeRaw(_ path: String, frames: Int = 4, side: Int = 16, seed: UInt64 = 1) throws {
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var s = seed &* 0x9E3779B97F4A7C15 | 1
        var words = [UInt16](repeating: 0, count: frames * side * side)
        for i in words.indices { s ^= s << 13; s ^= s >> 7; s ^= s << 17; words[i] = UInt16(truncatingIfNeeded: s) }
        fm.createFile(atPath: path, contents: words.withUnsafeBytes { Data($0) })
        let desc = "{\"dtype\": \"<u2\", \"shape\": [\(frames), \(side), \(side)]}"
        fm.createFile(atPath: path + ".json", contents: Data(desc.utf8))
    }

    func files(under dir: String) -> [String] {
        (fm.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter {
            var d: ObjCBool = false
            return fm.fileExists(atPath: dir + "/" + $0, isDirectory: &d) && !d.boolValue
        }.sorted()
    }

    func testNaturalSortAndPlanGroupsCompanions() throws {
        XCTAssertTrue(BatchPlanner.naturalLess("scan_2.raw", "scan_10.raw"))
        XCTAssertFalse(BatchPlanner.naturalLess("scan_10.raw", "scan_2.raw"))
        XCTAssertTrue(BatchPlanner.naturalLess("a/b1", "a/b01x"))
        let root = tmp + "/in"
        try makeRaw(root + "/scan_10.raw")
        try makeRaw(root + "/scan_2.raw")
        try makeRaw(root + "/deep/x.raw")
        fm.createFile(atPath: root + "/notes.txt", contents: Data("x".utf8))
        fm.createFile(atPath: root + "/.hidden", contents: Data("x".utf8))
        var p = BatchPlanner(outputDirectory: tmp + "/out", outputExtension: "nxs")
        var (items, skipped) = try p.plan([root])
        XCTAssertEqual(items.map { ($0.input as NSString).lastPathComponent }, ["scan_2.raw", "scan_10.raw"], "not recursive, natural order")
        p.recursive = true
        (items, skipped) = try p.plan([root])
        XCTAssertEqual(items.count, 3)
        XCTAssertEqual(items.map(\.index), [0, 1, 2])
        XCTAssertTrue(items.contains { $0.output.hasSuffix("/out/deep/x.nxs") }, "mirror layout")
        for it in items { XCTAssertEqual(it.companions, [it.input + ".json"]) }
        let reasons = Dictionary(uniqueKeysWithValues: skipped.map { (($0.path as NSString).lastPathComponent, $0.reason) })
        XCTAssertEqual(reasons["scan_2.raw.json"], "companion of \(root)/scan_2.raw")
        XCTAssertTrue(reasons["notes.txt"]?.contains("no reader") ?? false)
        XCTAssertEqual(reasons[".hidden"], "hidden file")
        p.layout = .flat
        p.exclude = ["deep/*"]
        (items, _) = try p.plan([root])
        XCTAssertEqual(items.count, 2)
        XCTAssertTrue(items.allSatisfy { ($0.output as NSString).deletingLastPathComponent == tmp + "/out" })
        p.exclude = []
        try makeRaw(root + "/deep/scan_2.raw")
        XCTAssertThrowsError(try p.plan([root]), "flat layout: two scan_2 in different folders") { XCTAssertEqual(($0 as? EMError)?.code, .usage) }
        // Same stem in one folder (x.dm3 and x.dm4): the default naming keeps the extensions apart.
        let twins = tmp + "/twins"
        try makeRaw(twins + "/t.raw")
        try makeRaw(twins + "/t.dat")
        var q = BatchPlanner(outputDirectory: tmp + "/out2", outputExtension: "nxs")
        (items, _) = try q.plan([twins])
        XCTAssertEqual(items.map { ($0.output as NSString).lastPathComponent }.sorted(), ["t.dat.nxs", "t.raw.nxs"])
        q.nameTemplate = "{stem}.{ext}"
        XCTAssertThrowsError(try q.plan([twins])) { XCTAssertEqual(($0 as? EMError)?.code, .usage) }
    }

    func testShardEnvironment() throws {
        XCTAssertEqual(try Shard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "3"]),
                       try Shard(index: 2, count: 4))
        XCTAssertEqual(try Shard.parse("auto", environment: ["SGE_TASK_ID": "3", "SGE_TASK_LAST": "4"]), try Shard(index: 2, count: 4))
        XCTAssertEqual(try Shard.parse("1/3"), try Shard(index: 1, count: 3))
        XCTAssertThrowsError(try Shard.parse("3/3"))
        XCTAssertThrowsError(try Shard.parse("auto", environment: [:]))
    }

    /// Three concurrent `--shard i/3` processes over one manifest give exactly the outputs of one
    /// unsharded run, each item done once.
    func testConcurrentShardsEqualUnshardedRun() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        for i in 0..<7 { try makeRaw(tmp + "/in/f\(i).raw", seed: UInt64(i + 1)) }
        let env = ["SOURCE_DATE_EPOCH": "1700000000"]
        func run(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
            p.currentDirectoryURL = URL(fileURLWithPath: tmp)
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return p
        }
        let plan = try run(["batch", "in", "-o", "out", "--manifest", "plan.jsonl"])
        plan.waitUntilExit()
        XCTAssertEqual(plan.terminationStatus, 0)
        let shards = try (0..<3).map { try run(["batch", "--from-manifest", "plan.jsonl", "-o", "out", "--shard", "\($0)/3", "-j", "1", "--threads", "1"]) }
        shards.forEach { $0.waitUntilExit() }
        XCTAssertEqual(shards.map(\.terminationStatus), [0, 0, 0])
        let plan2 = try run(["batch", "in", "-o", "ref", "--manifest", "plan2.jsonl"])
        plan2.waitUntilExit()
        let single = try run(["batch", "--from-manifest", "plan2.jsonl", "-o", "ref", "-j", "1", "--threads", "1"])
        single.waitUntilExit()
        XCTAssertEqual(single.terminationStatus, 0)
        XCTAssertEqual(files(under: tmp + "/out").filter { $0.hasSuffix(".nxs") }, files(under: tmp + "/ref").filter { $0.hasSuffix(".nxs") })
        let outs = files(under: tmp + "/out").filter { $0.hasSuffix(".nxs") }
        XCTAssertEqual(outs.count, 7)
        let entries = try ReportWriter.merge(tmp + "/out/reports").filter { $0.index >= 0 }
        XCTAssertEqual(entries.map(\.index).sorted(), Array(0..<7))
        XCTAssertTrue(entries.allSatisfy { $0.status == .ok })
        var perShard: [String: Int] = [:]
        for f in files(under: tmp + "/out/reports") {
            let text = try String(contentsOfFile: tmp + "/out/reports/" + f, encoding: .utf8)
            perShard[f] = text.split(separator: "\n").count
        }
        XCTAssertEqual(perShard.values.reduce(0, +), 7, "no item done twice or missed: \(perShard)")
        // The same data as the unsharded run, item by item.
        for it in try Manifest.read(tmp + "/plan.jsonl") {
            let refOut = it.output.replacingOccurrences(of: tmp + "/out/", with: tmp + "/ref/")
            XCTAssertEqual(try DataHash.sha256(hdf5: it.output, dataset: "entry1/measurement/event1/image1/image_3d/real").0,
                           try DataHash.sha256(hdf5: refOut, dataset: "entry1/measurement/event1/image1/image_3d/real").0)
        }
    }

    /// kill -9 of a running batch, then a re-run with --skip-existing: every output is
    /// byte-identical to an uninterrupted run and no partial file is left anywhere.
    func testKill9ThenResumeIsByteIdentical() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        for i in 0..<10 { try makeRaw(tmp + "/in/f\(i).raw", frames: 96, side: 256, seed: UInt64(i + 1)) }
        func start(_ extra: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["batch", "in", "-o", "out", "-j", "1", "--threads", "1", "--compression", "gzip:6", "--progress", "none"] + extra
            p.environment = ProcessInfo.processInfo.environment.merging(["SOURCE_DATE_EPOCH": "1700000000"]) { $1 }
            p.currentDirectoryURL = URL(fileURLWithPath: tmp)
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let full = try start([])
        full.waitUntilExit()
        XCTAssertEqual(full.terminationStatus, 0)
        try fm.moveItem(atPath: tmp + "/out", toPath: tmp + "/ref")
        let victim = try start([])
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, files(under: tmp + "/out").filter({ $0.hasSuffix(".nxs") && !$0.hasPrefix(".") }).count < 3 { usleep(20_000) }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let doneBefore = files(under: tmp + "/out").filter { !$0.contains(".tmp-emconv-") }.count
        XCTAssertLessThan(doneBefore, 10, "batch finished before it was killed")
        usleep(800_000) // the orphaned child notices its parent died and removes its partial output
        let resume = try start(["--skip-existing"])
        resume.waitUntilExit()
        XCTAssertEqual(resume.terminationStatus, 0)
        let out = files(under: tmp + "/out"), ref = files(under: tmp + "/ref")
        XCTAssertEqual(out, ref)
        XCTAssertFalse(out.contains { $0.contains("tmp-emconv") })
        for f in ref {
            XCTAssertEqual(fm.contents(atPath: tmp + "/out/" + f), fm.contents(atPath: tmp + "/ref/" + f), "\(f) differs after resume")
        }
    }

    /// A copy of ../shared/testdata as the input tree: every readable file converts, companions are
    /// grouped, the rest is skipped with reasons, the report covers every file exactly once.
    func testSharedTestdataTree() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let copy = tmp + "/testdata"
        try fm.copyItem(atPath: root, toPath: copy)
        try? fm.removeItem(atPath: copy + "/reference")
        let r = try CLIRunner.run(["batch", copy, "-r", "-o", tmp + "/out", "--report", tmp + "/report.jsonl", "--progress", "plain"], cwd: tmp)
        XCTAssertTrue([0, 2].contains(r.status), r.stderr)
        let entries = try ReportWriter.merge(tmp + "/report.jsonl")
        let all = files(under: copy).map { copy + "/" + $0 }
        XCTAssertEqual(Set(entries.map(\.input)), Set(all), "report names every file once")
        XCTAssertEqual(entries.count, all.count)
        for e in entries where e.index >= 0 {
            if e.status == .failed {
                // Only the EMPAD descriptions whose raw file is not shipped may fail.
                XCTAssertTrue(e.input.hasSuffix(".xml") && (e.error ?? "").contains("missing"), "\(e.input): \(e.error ?? "")")
            } else {
                XCTAssertEqual(e.status, .ok, e.input)
                XCTAssertTrue(fm.fileExists(atPath: e.output))
            }
        }
        let byName = Dictionary(entries.map { (($0.input as NSString).lastPathComponent, $0) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(byName["001_4x2_6bit.hdr"]?.error, "companion of \(copy)/mib/001_4x2_6bit.mib")
        XCTAssertEqual(byName["scan_x4_y4.raw"]?.error, "companion of \(copy)/empad/map4x4.xml")
        XCTAssertEqual(byName["MANIFEST.md"]?.status, .skipped)
        // A Dectris acquisition converts from its master; its data file and scan side file are companions.
        XCTAssertEqual(byName["test_00_master.h5"]?.status, .ok)
        XCTAssertEqual(byName["test_00_data_000001.h5"]?.error, "companion of \(copy)/arina/test_00_master.h5")
        XCTAssertEqual(byName["test_00.h5"]?.error, "companion of \(copy)/arina/test_00_master.h5")
        // Outputs equal single-file conversions.
        let mib = try XCTUnwrap(byName["Quad_1_Frame_CounterDepth_12_Rows_256.mib"])
        _ = try Converter.convert(input: mib.input, output: tmp + "/single.nxs", options: ConversionOptions(threads: 1))
        XCTAssertEqual(try DataHash.sha256(hdf5: mib.output, dataset: "entry1/measurement/event1/image1/image_2d/real").0,
                       try DataHash.sha256(hdf5: tmp + "/single.nxs", dataset: "entry1/measurement/event1/image1/image_2d/real").0)
    }
}
