import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum Tools {
    static var versionLine: String {
        "emconv \(EMConvVersion.string) (hdf5 \(HDF5.libraryVersion); zstd \(Codecs.zstdVersion); libdeflate \(Codecs.deflateVersion))"
    }

    static var commandLine: String {
        CommandLine.arguments.map { a in
            a.contains(where: { " \t\"'$".contains($0) }) ? "'\(a.replacingOccurrences(of: "'", with: "'\\''"))'" : a
        }.joined(separator: " ")
    }

    /// Writes to stderr with the system call: a reader that went away (a batch parent killed with
    /// kill -9) gives EPIPE, ignored, instead of a trap or SIGPIPE ending the process before it
    /// removed its partial output.
    static func stderr(_ s: String) {
        var bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }

    static func printJSON(_ v: MetaValue) {
        print(v.json(pretty: true))
    }

    /// Control characters (a file name with a newline) shown as '?': every message stays one line.
    static func oneLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map {
            $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) ? "?" : $0
        }))
    }

    static func warn(_ s: String) {
        Tools.stderr("emconv: warning: \(oneLine(s))\n")
    }

    static func note(_ s: String) {
        Tools.stderr("emconv: \(oneLine(s))\n")
    }
}

/// Progress on stderr when it is a terminal: percentage, bytes, rate, ETA (10 updates/s).
final class TerminalProgress: ProgressSink, @unchecked Sendable {
    let start = Date()
    var last = Date.distantPast
    let enabled: Bool
    let lock = NSLock()
    init(enabled: Bool) { self.enabled = enabled && isatty(2) != 0 }

    func progress(done: Int64, total: Int64, stage: String) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) > 0.1 || done >= total else { return }
        last = now
        let el = now.timeIntervalSince(start)
        let rate = el > 0 ? Double(done) / el : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 100
        let line = String(format: "\r%5.1f%%  %@ / %@  %@/s  ETA %@  %@", pct, human(done), human(total), human(Int64(rate)),
                          eta.isFinite ? String(format: "%.0fs", eta) : "?", stage)
        Tools.stderr((line + "\u{1B}[K"))
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if enabled && last != .distantPast { Tools.stderr("\r\u{1B}[K") }
    }
}

/// Progress as NDJSON events on stderr (`--progress json`): what batch children send their parent,
/// and what GUIs and workflow engines read. At most 4 events a second, plus the last.
final class JSONProgress: ProgressSink, @unchecked Sendable {
    var last = Date.distantPast
    let lock = NSLock()

    func progress(done: Int64, total: Int64, stage: String) {
        lock.lock(); defer { lock.unlock() }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 || done >= total else { return }
        last = now
        let v: MetaValue = .object([("event", .string("progress")), ("done", .int(done)), ("total", .int(total)), ("stage", .string(stage))])
        Tools.stderr((v.json() + "\n"))
    }
}
