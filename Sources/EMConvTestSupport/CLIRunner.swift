import Foundation
import EMConvKit

/// Runs the built `emconv` binary, for end-to-end tests of output and exit codes.
public enum CLIRunner {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The `emconv` binary built beside the test runner (same configuration), else in the
    /// package's `.build`; `EMCONV_BIN` overrides. The newest candidate wins.
    static var path: String? {
        let fm = FileManager.default
        if let e = ProcessInfo.processInfo.environment["EMCONV_BIN"], fm.isExecutableFile(atPath: e) { return e }
        var dirs: [String] = []
        // The xctest runner (Linux: .build/<triple>/<config>/emconvPackageTests.xctest) or the bundle.
        if let arg0 = ProcessInfo.processInfo.arguments.first {
            dirs.append((arg0 as NSString).deletingLastPathComponent)
        }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            dirs.append((b.bundlePath as NSString).deletingLastPathComponent)
        }
        let build = SharedTestData.packageRoot + "/.build"
        dirs += [build + "/debug", build + "/release"]
        if let triples = try? fm.contentsOfDirectory(atPath: build) {
            for t in triples.sorted() { dirs += [build + "/" + t + "/debug", build + "/" + t + "/release"] }
        }
        let found = dirs.map { $0 + "/emconv" }.filter { fm.isExecutableFile(atPath: $0) }
        func mtime(_ p: String) -> Date { ((try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date) ?? .distantPast }
        // Prefer the runner's own directory (same build); otherwise the newest.
        if let first = found.first, dirs.first.map({ first.hasPrefix($0 + "/") }) == true { return first }
        return found.max { mtime($0) < mtime($1) }
    }

    /// The newest object file the executable links (EMConvKit and the CLI), beside the binary.
    /// Builds are content-hashed (an unchanged file is not recompiled), so object times, not
    /// source times, tell whether the binary is older than the code the tests compiled.
    static func newestObject(besides exe: String) -> Date {
        let fm = FileManager.default
        let dir = (exe as NSString).deletingLastPathComponent
        var newest = Date.distantPast
        for sub in ["EMConvKit.build", "emconv.build"] {
            for f in (try? fm.contentsOfDirectory(atPath: dir + "/" + sub)) ?? [] where f.hasSuffix(".o") {
                if let d = (try? fm.attributesOfItem(atPath: dir + "/" + sub + "/" + f))?[.modificationDate] as? Date, d > newest { newest = d }
            }
        }
        return newest
    }

    /// The binary, checked to be no older than the library the tests were built with (a test
    /// cannot build it itself: SwiftPM holds the .build lock while tests run).
    static let checked: Swift.Result<String, EMError> = {
        guard let p = path else {
            return .failure(EMError(.missingInput, "the emconv executable was not found beside the tests or in .build: run 'swift build' before 'swift test' (or set EMCONV_BIN)"))
        }
        if ProcessInfo.processInfo.environment["EMCONV_BIN"] != nil { return .success(p) }
        let d = ((try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date) ?? .distantPast
        guard d >= newestObject(besides: p) else {
            return .failure(EMError(.failure, file: p, "the emconv executable is older than the library the tests were built with: run 'swift build' before 'swift test'"))
        }
        return .success(p)
    }()

    /// The checked binary, or nil (tests then fail with the reason from ``run``).
    public static var binary: String? { try? checked.get() }

    /// Runs emconv with `args` (stdin empty), at most `timeout` seconds.
    public static func run(_ args: [String], cwd: String? = nil, timeout: TimeInterval = 120) throws -> Result {
        let exe = try checked.get()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Drain both pipes while the process runs (a full pipe would block it).
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(5000) }
        if p.isRunning {
            p.terminate()
            p.waitUntilExit()
            throw EMError(.failure, "emconv \(args.joined(separator: " ")) did not finish within \(Int(timeout)) s")
        }
        p.waitUntilExit()
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Runs emconv with `args` like ``run(_:cwd:timeout:)`` and also returns the peak resident
    /// size of that one process in bytes (its own `wait4` usage; the test process's children
    /// counted together would include every earlier conversion). Output goes through files in `dir`.
    public static func runMeasuringPeak(_ args: [String], in dir: String, timeout: TimeInterval = 120) throws -> (Result, peakBytes: Int) {
        let exe = try checked.get()
        let outPath = dir + "/.emconv-stdout", errPath = dir + "/.emconv-stderr"
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        guard rc == 0 else { throw EMError(.failure, file: exe, "cannot start: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var usage = rusage()
        let deadline = Date().addingTimeInterval(timeout)
        while wait4(pid, &status, WNOHANG, &usage) == 0 {
            if Date() >= deadline {
                kill(pid, SIGKILL)
                _ = wait4(pid, &status, 0, &usage)
                throw EMError(.failure, "emconv \(args.joined(separator: " ")) did not finish within \(Int(timeout)) s")
            }
            usleep(5000)
        }
        // Exit code, or 128 + the signal as a shell reports it.
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        func text(_ p: String) -> String { String(decoding: FileManager.default.contents(atPath: p) ?? Data(), as: UTF8.self) }
        return (Result(status: code, stdout: text(outPath), stderr: text(errPath)), usage.ru_maxrss * 1024)
    }
}
