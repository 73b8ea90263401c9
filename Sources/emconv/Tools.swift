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

    static func printJSON(_ v: MetaValue) {
        print(v.json(pretty: true))
    }

    static func warn(_ s: String) {
        FileHandle.standardError.write(Data("emconv: warning: \(s)\n".utf8))
    }
}

/// Progress on stderr when it is a terminal: percentage, bytes, rate, ETA (10 updates/s).
final class TerminalProgress: ProgressSink {
    let start = Date()
    var last = Date.distantPast
    let enabled: Bool
    init(enabled: Bool) { self.enabled = enabled && isatty(2) != 0 }

    func progress(done: Int64, total: Int64, stage: String) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) > 0.1 || done >= total else { return }
        last = now
        let el = now.timeIntervalSince(start)
        let rate = el > 0 ? Double(done) / el : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 100
        let line = String(format: "\r%5.1f%%  %@ / %@  %@/s  ETA %@  %@", pct, humanBytes(done), humanBytes(total), humanBytes(Int64(rate)),
                          eta.isFinite ? String(format: "%.0fs", eta) : "?", stage)
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }

    func finish() {
        if enabled && last != .distantPast { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

func humanBytes(_ b: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(b)
    var i = 0
    while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}
