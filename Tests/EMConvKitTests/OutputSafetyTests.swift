import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// End-to-end (the built binary): what `convert` and `batch` may write, replace and walk.
/// Paths stay inside `-o`, symbolic links do not lead out of the input tree, inputs and
/// foreign folders are never replaced, concurrent conversions never replace each other, and
/// write failures are one line with exit 74 (issue 11, defects 2, 3, 4, 10, 11, 12, 16).
final class OutputSafetyTests: TempDirectoryTestCase {
    let fm = FileManager.default

    /// A raw file of `frames` pseudo-random 16x16 (or `side`) uint16 frames with its JSON descriptor (a companion).
    @discardableResult
    func makeRaw(_ path: String, frames: Int = 2, side: Int = 16, seed: UInt64 = 1) throws -> String {
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var s = seed &* 0x9E3779B97F4A7C15 | 1
        var words = [UInt64](repeating: 0, count: frames * side * side / 4)
        for i in words.indices { s ^= s << 13; s ^= s >> 7; s ^= s << 17; words[i] = s }
        fm.createFile(atPath: path, contents: words.withUnsafeBytes { Data($0) })
        fm.createFile(atPath: path + ".json", contents: Data("{\"dtype\": \"<u2\", \"shape\": [\(frames), \(side), \(side)]}".utf8))
        return path
    }

    func names(_ dir: String) -> [String] { ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func errorLines(_ r: CLIRunner.Result) -> [Substring] { r.stderr.split(separator: "\n") }

    // MARK: 2: outputs stay inside -o

    func testBatchNameTemplateCannotLeaveOutputFolder() throws {
        try makeRaw(tmp + "/in/a.raw")
        try fm.createDirectory(atPath: tmp + "/deep/er", withIntermediateDirectories: true)
        let r = try CLIRunner.run(["batch", "in", "-o", "deep/er/out", "--name", "../../{stem}.{ext}", "--progress", "none"], cwd: tmp)
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertEqual(errorLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("in/a.raw") && r.stderr.contains("outside"), r.stderr)
        XCTAssertEqual(names(tmp + "/deep"), ["er"], "nothing written beside the output folder")
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/deep/er/out"))
        // The same for --dry-run and --manifest: the plan itself is refused.
        XCTAssertEqual(try CLIRunner.run(["batch", "in", "-o", "deep/er/out", "--name", "/{stem}.{ext}/../../../x.nxs", "--dry-run"], cwd: tmp).status, 64)
        XCTAssertEqual(try CLIRunner.run(["batch", "in", "-o", "deep/er/out", "--name", "../{stem}.{ext}", "--manifest", "p.jsonl"], cwd: tmp).status, 64)
        XCTAssertFalse(fm.fileExists(atPath: tmp + "/p.jsonl"))
    }

    /// A folder inside -o that is a symbolic link out of it does not carry outputs out.
    func testBatchOutputThroughSymlinkOutOfOutputFolderIsRefused() throws {
        try makeRaw(tmp + "/in/sub/a.raw")
        try fm.createDirectory(atPath: tmp + "/out", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tmp + "/elsewhere", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: tmp + "/out/sub", withDestinationPath: tmp + "/elsewhere")
        let r = try CLIRunner.run(["batch", "in", "-r", "-o", "out", "--progress", "none"], cwd: tmp)
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("elsewhere"), r.stderr)
        XCTAssertEqual(names(tmp + "/elsewhere"), [])
    }

    func testManifestOutputsOutsideOutputFolderAreRefused() throws {
        try makeRaw(tmp + "/in/a.raw")
        let plan = try CLIRunner.run(["batch", "in", "-o", "out", "--manifest", "plan.jsonl"], cwd: tmp)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        let text = try String(contentsOfFile: tmp + "/plan.jsonl", encoding: .utf8)
        XCTAssertTrue(text.contains("\"output_root\":\"\(tmp!)/out\""), text)
        for (name, evil) in [("abs", tmp + "/victim.nxs"), ("dotdot", tmp + "/out/../victim.nxs")] {
            let edited = text.replacingOccurrences(of: "\"output\":\"\(tmp!)/out/a.nxs\"", with: "\"output\":\"\(evil)\"")
            XCTAssertNotEqual(edited, text)
            try edited.write(toFile: tmp + "/\(name).jsonl", atomically: true, encoding: .utf8)
            for extra in [["-o", "out"], []] {
                let r = try CLIRunner.run(["batch", "--from-manifest", "\(name).jsonl", "--progress", "none"] + extra, cwd: tmp)
                XCTAssertEqual(r.status, 65, "\(name) \(extra): \(r.stderr)")
                XCTAssertEqual(errorLines(r).count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains("\(name).jsonl: at item 0:"), r.stderr)
                XCTAssertFalse(fm.fileExists(atPath: tmp + "/victim.nxs"))
            }
        }
        // A manifest of an older emconv (no output_root) needs -o.
        let old = text.replacingOccurrences(of: ",\"output_root\":\"\(tmp!)/out\"", with: "")
        try old.write(toFile: tmp + "/old.jsonl", atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["batch", "--from-manifest", "old.jsonl", "--dry-run"], cwd: tmp)
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("-o"), r.stderr)
        XCTAssertEqual(try CLIRunner.run(["batch", "--from-manifest", "old.jsonl", "-o", "out", "--dry-run"], cwd: tmp).status, 0)
    }

    // MARK: 16: --from-manifest needs no -o

    func testShardsOfManifestRunWithoutOutputFolder() throws {
        for i in 0..<3 { try makeRaw(tmp + "/in/f\(i).raw", seed: UInt64(i + 1)) }
        XCTAssertEqual(try CLIRunner.run(["batch", "in", "-o", "out", "--manifest", "plans/plan.jsonl"], cwd: tmp).status, 0)
        // From another directory, as an array task would run.
        try fm.createDirectory(atPath: tmp + "/elsewhere", withIntermediateDirectories: true)
        for i in 0..<2 {
            let r = try CLIRunner.run(["batch", "--from-manifest", tmp + "/plans/plan.jsonl", "--shard", "\(i)/2", "-j", "1", "--threads", "1",
                                       "--progress", "none"], cwd: tmp + "/elsewhere")
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertEqual(names(tmp + "/out"), ["f0.nxs", "f1.nxs", "f2.nxs", "reports"])
        XCTAssertEqual(names(tmp + "/out/reports"), ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"], "reports where -o would put them")
        XCTAssertEqual(names(tmp + "/elsewhere"), [])
        let script = try CLIRunner.run(["batch", "--from-manifest", "plans/plan.jsonl", "--emit-slurm", "--shards", "2"], cwd: tmp)
        XCTAssertEqual(script.status, 0, script.stderr)
        XCTAssertTrue(script.stdout.contains("-o '\(tmp!)/out'"), script.stdout)
    }

    // MARK: 3: the walk stays in the tree and ends

    func testRecursiveWalkEndsAndStaysInsideTree() throws {
        try makeRaw(tmp + "/tree/d/b.raw")
        try makeRaw(tmp + "/outside/secret.raw", seed: 7)
        try fm.createSymbolicLink(atPath: tmp + "/tree/d/l1", withDestinationPath: ".")
        try fm.createSymbolicLink(atPath: tmp + "/tree/d/l2", withDestinationPath: ".")
        try fm.createSymbolicLink(atPath: tmp + "/tree/ext", withDestinationPath: "../outside")
        try fm.createSymbolicLink(atPath: tmp + "/tree/x.raw", withDestinationPath: tmp + "/outside/secret.raw")
        try fm.createSymbolicLink(atPath: tmp + "/tree/x.raw.json", withDestinationPath: tmp + "/outside/secret.raw.json")
        try fm.createSymbolicLink(atPath: tmp + "/tree/b-alias.raw", withDestinationPath: "d/b.raw")
        try fm.createSymbolicLink(atPath: tmp + "/outside/back", withDestinationPath: "../tree")
        func plan(_ extra: [String]) throws -> (items: [String], skipped: [String: String]) {
            let r = try CLIRunner.run(["batch", "tree", "-r", "-o", "out", "--dry-run", "--json"] + extra, cwd: tmp, timeout: 30)
            XCTAssertEqual(r.status, 0, r.stderr)
            let j = try MetaValue.parseJSON(r.stdout)
            guard case let .array(items)? = j["items"], case let .array(skipped)? = j["skipped"] else { XCTFail(r.stdout); return ([], [:]) }
            return (items.compactMap { $0["input"]?.stringValue }.sorted(),
                    Dictionary(skipped.compactMap { s in s["path"]?.stringValue.map { ($0, s["reason"]?.stringValue ?? "") } }, uniquingKeysWith: { a, _ in a }))
        }
        let inside = try plan([])
        XCTAssertEqual(inside.items, ["tree/d/b.raw"], "nothing from outside, one item per file")
        XCTAssertTrue(inside.skipped["tree/ext"]?.contains("outside the input") ?? false, "\(inside.skipped)")
        XCTAssertTrue(inside.skipped["tree/x.raw"]?.contains("--follow-symlinks") ?? false, "\(inside.skipped)")
        XCTAssertTrue(inside.skipped["tree/d/l1"]?.contains("not followed") ?? false, "\(inside.skipped)")
        XCTAssertEqual(inside.skipped["tree/b-alias.raw"], "same file as tree/d/b.raw")
        // Asked to follow: the outside files come in, each once, and the circles still end.
        let followed = try plan(["--follow-symlinks"])
        XCTAssertEqual(followed.items, ["tree/d/b.raw", "tree/ext/secret.raw"])
        XCTAssertTrue(followed.skipped["tree/d/l1"]?.contains("already walked") ?? false, "\(followed.skipped)")
        XCTAssertTrue(followed.skipped["tree/ext/back"]?.contains("already walked") ?? false, "\(followed.skipped)")
        XCTAssertEqual(followed.skipped["tree/x.raw"], "same file as tree/ext/secret.raw")
        // A real run converts only the file inside.
        let r = try CLIRunner.run(["batch", "tree", "-r", "-o", "out", "--progress", "none"], cwd: tmp, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(names(tmp + "/out"), ["d"])
        XCTAssertEqual(names(tmp + "/out/d"), ["b.nxs"])
    }

    // MARK: 4: only what emconv wrote is replaced

    func testOverwriteNeverReplacesInputOrCompanion() throws {
        let raw = try makeRaw(tmp + "/a.raw")
        let before = try XCTUnwrap(fm.contents(atPath: raw)), json = try XCTUnwrap(fm.contents(atPath: raw + ".json"))
        try fm.createSymbolicLink(atPath: tmp + "/alias.nxs", withDestinationPath: "a.raw")
        try fm.linkItem(atPath: raw + ".json", toPath: tmp + "/hard.nxs")
        for target in [raw + ".json", raw, tmp + "/alias.nxs", tmp + "/hard.nxs"] {
            let r = try CLIRunner.run(["convert", raw, "-o", target, "--format", "nexus", "--overwrite"])
            XCTAssertEqual(r.status, 64, "\(target): \(r.stderr)")
            XCTAssertEqual(errorLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("is the input file"), r.stderr)
        }
        XCTAssertEqual(fm.contents(atPath: raw), before)
        XCTAssertEqual(fm.contents(atPath: raw + ".json"), json)
        XCTAssertEqual(try fm.destinationOfSymbolicLink(atPath: tmp + "/alias.nxs"), "a.raw")
        XCTAssertEqual(names(tmp), ["a.raw", "a.raw.json", "alias.nxs", "hard.nxs"], "no temporary left")
    }

    func testOverwriteReplacesOnlyFoldersThatAreZarrStores() throws {
        let raw = try makeRaw(tmp + "/a.raw")
        let store = tmp + "/x.zspy"
        // A folder that merely looks like a store at its root keeps the user's files.
        try fm.createDirectory(atPath: store + "/Experiments", withIntermediateDirectories: true)
        fm.createFile(atPath: store + "/.zgroup", contents: Data("{\"zarr_format\":2}".utf8))
        fm.createFile(atPath: store + "/Experiments/.zgroup", contents: Data("{\"zarr_format\":2}".utf8))
        fm.createFile(atPath: store + "/Experiments/thesis.tex", contents: Data("precious".utf8))
        var r = try CLIRunner.run(["convert", raw, "-o", store, "--overwrite"])
        XCTAssertEqual(r.status, 73, r.stderr)
        XCTAssertEqual(errorLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("thesis.tex"), r.stderr)
        XCTAssertEqual(fm.contents(atPath: store + "/Experiments/thesis.tex"), Data("precious".utf8))
        // A folder without .zgroup is not a store.
        try fm.createDirectory(atPath: tmp + "/photos.zspy", withIntermediateDirectories: true)
        fm.createFile(atPath: tmp + "/photos.zspy/1.jpg", contents: Data("jpg".utf8))
        XCTAssertEqual(try CLIRunner.run(["convert", raw, "-o", tmp + "/photos.zspy", "--overwrite"]).status, 73)
        XCTAssertEqual(names(tmp + "/photos.zspy"), ["1.jpg"])
        // A store emconv wrote is replaced, again and again.
        try fm.removeItem(atPath: store)
        for _ in 0..<2 {
            r = try CLIRunner.run(["convert", raw, "-o", store, "--overwrite"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertNil(OutputSafety.replaceRefusal(ofFolder: store))
        XCTAssertEqual(names(tmp).filter { $0.hasPrefix(".") }, [], "no temporary or moved-aside tree left")
    }

    // MARK: 11: concurrent conversions to one target

    func testConcurrentConvertsToOneTargetNeverReplaceEachOther() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        let raw = try makeRaw(tmp + "/big.raw", frames: 64, side: 256)
        let procs = try (0..<3).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: bin)
            p.arguments = ["convert", raw, "-o", tmp + "/t.nxs", "--compression", "gzip:6", "--threads", "1", "--quiet"]
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        procs.forEach { $0.waitUntilExit() }
        XCTAssertEqual(procs.map(\.terminationStatus).sorted(), [0, 73, 73], "exactly one conversion wins")
        XCTAssertEqual(names(tmp), ["big.raw", "big.raw.json", "t.nxs"], "the losers removed their temporaries")
        XCTAssertNotNil(try HDF5File(reading: tmp + "/t.nxs").root.openGroup("entry1"))
    }

    func testMoveIntoPlaceDoesNotReplaceWithoutOverwrite() throws {
        let t = tmp + "/.x.tmp", o = tmp + "/x.nxs"
        fm.createFile(atPath: t, contents: Data("new".utf8))
        fm.createFile(atPath: o, contents: Data("old".utf8))
        XCTAssertThrowsError(try OutputSafety.moveIntoPlace(t, o, replace: false)) { XCTAssertEqual(($0 as? EMError)?.code, .outputExists) }
        XCTAssertEqual(fm.contents(atPath: o), Data("old".utf8))
        XCTAssertEqual(fm.contents(atPath: t), Data("new".utf8), "the caller removes the temporary")
        try OutputSafety.moveIntoPlace(t, o, replace: true)
        XCTAssertEqual(fm.contents(atPath: o), Data("new".utf8))
        // Folders (zspy stores) too.
        try fm.createDirectory(atPath: tmp + "/.s.tmp", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: tmp + "/s.zspy", withIntermediateDirectories: true)
        XCTAssertThrowsError(try OutputSafety.moveIntoPlace(tmp + "/.s.tmp", tmp + "/s.zspy", replace: false))
        try OutputSafety.moveIntoPlace(tmp + "/.s.tmp", tmp + "/n.zspy", replace: false)
        XCTAssertTrue(fm.fileExists(atPath: tmp + "/n.zspy"))
    }

    // MARK: 12: temporaries of killed conversions

    func testConvertRemovesTemporaryOfKilledConvert() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        let raw = try makeRaw(tmp + "/big.raw", frames: 256, side: 256)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = ["convert", raw, "-o", tmp + "/t.nxs", "--compression", "gzip:9", "--threads", "1", "--quiet"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, p.isRunning, !names(tmp).contains(where: { $0.contains("tmp-emconv") }) { usleep(10_000) }
        XCTAssertTrue(p.isRunning, "conversion finished before it could be killed")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let stale = ".t.nxs.tmp-emconv-\(p.processIdentifier)"
        XCTAssertTrue(names(tmp).contains(stale), "kill -9 leaves the temporary: \(names(tmp))")
        let r = try CLIRunner.run(["convert", raw, "-o", tmp + "/t.nxs", "--json", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(names(tmp), ["big.raw", "big.raw.json", "t.nxs"])
        XCTAssertTrue(r.stdout.contains("removed stale partial output"), r.stdout)
    }

    // MARK: 10: full, read-only or size-limited output

    /// Checks a failed write: exit 74, one line naming the output (not the temporary), nothing left.
    func assertWriteFailure(status: Int32, stderr: String, output: String, dir: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, 74, "\(what): \(stderr)", file: file, line: line)
        XCTAssertEqual(stderr.split(separator: "\n").count, 1, "\(what): \(stderr)", file: file, line: line)
        XCTAssertTrue(stderr.hasPrefix("emconv: error: \(output):"), "\(what): \(stderr)", file: file, line: line)
        XCTAssertFalse(stderr.contains("tmp-emconv") || stderr.contains("damaged"), "\(what): \(stderr)", file: file, line: line)
        XCTAssertEqual(names(dir).filter { $0.contains("emconv") || $0.hasPrefix("o.") }, [], "\(what): leftovers", file: file, line: line)
    }

    /// A file size limit (`ulimit -f`, with SIGXFSZ ignored by emconv) makes every write fail
    /// with EFBIG: works without privileges, so it runs everywhere.
    func testFileSizeLimitIsOneLineWriteError() throws {
        guard let bin = CLIRunner.binary else { return XCTFail("emconv not built") }
        let raw = try makeRaw(tmp + "/d.raw", frames: 8, side: 256)
        for ext in ["nxs", "zspy", "tif"] {
            let out = tmp + "/o." + ext
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "ulimit -f 64; exec \"$0\" convert \"$1\" -o \"$2\" --compression none --threads 1", bin, raw, out]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit, "\(ext): killed by signal \(p.terminationStatus)")
            assertWriteFailure(status: p.terminationStatus, stderr: text, output: out, dir: tmp, "\(ext) over ulimit -f")
        }
    }

    /// A full and a read-only file system (small tmpfs mounts; needs root, as in CI; skipped otherwise).
    func testFullAndReadOnlyFileSystemAreOneLineWriteErrors() throws {
        let raw = try makeRaw(tmp + "/d.raw", frames: 8, side: 256)
        func mount(_ dir: String, _ options: String) -> Bool {
            try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/mount")
            p.arguments = ["-t", "tmpfs", "-o", options, "tmpfs", dir]
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { return false }
            p.waitUntilExit()
            return p.terminationStatus == 0
        }
        func unmount(_ dir: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/umount")
            p.arguments = [dir]
            try? p.run()
            p.waitUntilExit()
        }
        guard mount(tmp + "/full", "size=256k") else { print("skipped: cannot mount a tmpfs (needs root)"); return }
        defer { unmount(tmp + "/full") }
        guard mount(tmp + "/ro", "ro,size=64k") else { return XCTFail("tmpfs mounts but not read-only") }
        defer { unmount(tmp + "/ro") }
        for ext in ["nxs", "zspy", "tif"] {
            for dir in [tmp + "/full", tmp + "/ro"] {
                let out = dir + "/o." + ext
                let r = try CLIRunner.run(["convert", raw, "-o", out, "--compression", "none", "--threads", "1"])
                assertWriteFailure(status: r.status, stderr: r.stderr, output: out, dir: dir, "\(ext) in \((dir as NSString).lastPathComponent)")
            }
        }
    }
}
