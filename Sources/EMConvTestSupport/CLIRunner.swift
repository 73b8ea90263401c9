import Foundation

/// Runs the built `emconv` binary, for end-to-end tests of output and exit codes.
public enum CLIRunner {
    public struct Result {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The binary beside the test bundle (`swift test` builds it there), `$EMCONV_BIN` when set.
    public static var binary: String? {
        if let b = ProcessInfo.processInfo.environment["EMCONV_BIN"], FileManager.default.isExecutableFile(atPath: b) { return b }
        var candidates: [String] = []
        let bundleDir = Bundle.main.bundleURL.deletingLastPathComponent().path
        candidates.append(bundleDir + "/emconv")
        candidates.append(Bundle.main.bundleURL.path + "/../emconv")
        for arg0 in [CommandLine.arguments.first ?? ""] where !arg0.isEmpty {
            candidates.append(URL(fileURLWithPath: arg0).deletingLastPathComponent().path + "/emconv")
        }
        candidates.append(SharedTestData.packageRoot + "/.build/debug/emconv")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public static func run(_ args: [String], cwd: String? = nil) throws -> Result {
        guard let bin = binary else { throw NSError(domain: "emconv-tests", code: 1, userInfo: [NSLocalizedDescriptionKey: "emconv binary not built (run swift build)"]) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently to avoid a full-pipe deadlock.
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box()
        let g = DispatchGroup()
        g.enter()
        DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        g.wait()
        let outData = outBox.data
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}
