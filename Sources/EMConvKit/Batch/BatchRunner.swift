import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Outcome of one batch item, as written to the JSON-lines report.
public struct BatchEntry: Sendable {
    public enum Status: String, Sendable { case ok, skipped, failed }
    public var index: Int
    public var input: String
    public var output: String
    public var status: Status
    public var error: String?
    public var seconds: Double
    public var bytes: Int64
    public var outputSHA256: String?
    /// Every file written when the writer holds one dataset per file (TIFF: `{stem}_{dataset}.tif`),
    /// each with its SHA-256; empty when the output is the one file `output`.
    public var outputs: [String] = []
    public var outputsSHA256: [String] = []
    public var warnings: [String]
    public var shard: String?

    public var json: MetaValue {
        .object([("index", .int(Int64(index))), ("input", .string(input)), ("output", .string(output)),
                 ("status", .string(status.rawValue)), ("error", error.map { .string($0) } ?? .null),
                 ("seconds", .double((seconds * 1000).rounded() / 1000)), ("bytes", .int(bytes)),
                 ("output_sha256", outputSHA256.map { .string($0) } ?? .null),
                 ("outputs", .array(outputs.map { .string($0) })), ("outputs_sha256", .array(outputsSHA256.map { .string($0) })),
                 ("warnings", .array(warnings.map { .string($0) })), ("shard", shard.map { .string($0) } ?? .null)])
    }

    public init(index: Int, input: String, output: String, status: Status, error: String? = nil, seconds: Double = 0,
                bytes: Int64 = 0, outputSHA256: String? = nil, warnings: [String] = [], shard: String? = nil) {
        self.index = index
        self.input = input
        self.output = output
        self.status = status
        self.error = error
        self.seconds = seconds
        self.bytes = bytes
        self.outputSHA256 = outputSHA256
        self.warnings = warnings
        self.shard = shard
    }

    public init?(json v: MetaValue) {
        guard let i = v["index"]?.intValue, let input = v["input"]?.stringValue, let s = v["status"]?.stringValue,
              let st = Status(rawValue: s) else { return nil }
        var ws: [String] = []
        if case let .array(w)? = v["warnings"] { ws = w.compactMap(\.stringValue) }
        self.init(index: i, input: input, output: v["output"]?.stringValue ?? "", status: st, error: v["error"]?.stringValue,
                  seconds: v["seconds"]?.doubleValue ?? 0, bytes: Int64(v["bytes"]?.intValue ?? 0),
                  outputSHA256: v["output_sha256"]?.stringValue, warnings: ws, shard: v["shard"]?.stringValue)
        if case let .array(o)? = v["outputs"] { outputs = o.compactMap(\.stringValue) }
        if case let .array(o)? = v["outputs_sha256"] { outputsSHA256 = o.compactMap(\.stringValue) }
    }
}

/// Appends one JSON line per item and flushes it to disk at once (a crash loses nothing).
public final class ReportWriter: @unchecked Sendable {
    let fd: Int32
    let lock = NSLock()
    public let path: String

    public init(path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EMError(.writeError, file: path, "cannot open the report: \(String(cString: strerror(errno)))") }
        self.path = path
    }

    deinit { close(fd) }

    public func append(_ e: BatchEntry) {
        let line = e.json.json() + "\n"
        lock.lock(); defer { lock.unlock() }
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
        fsync(fd)
    }

    /// Latest entry per input over every `*.jsonl` of a folder (or one file), in file order.
    public static func merge(_ path: String) throws -> [BatchEntry] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw EMError(.missingInput, file: path, "no such report") }
        let files = isDir.boolValue
            ? (try FileManager.default.contentsOfDirectory(atPath: path)).filter { $0.hasSuffix(".jsonl") }.sorted(by: BatchPlanner.naturalLess).map { (path as NSString).appendingPathComponent($0) }
            : [path]
        var latest: [String: BatchEntry] = [:]
        var order: [String] = []
        for f in files {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let v = try? MetaValue.parseJSON(String(line)), let e = BatchEntry(json: v) else { continue }
                if latest[e.input] == nil { order.append(e.input) }
                // A later success overrides an earlier failure; a later failure does not undo a success of the same output.
                if let old = latest[e.input], old.status == .ok, e.status != .ok, FileManager.default.fileExists(atPath: old.output) { continue }
                latest[e.input] = e
            }
        }
        return order.compactMap { latest[$0] }.sorted { $0.index < $1.index }
    }
}

/// How progress is shown.
public enum ProgressMode: String, Sendable {
    /// A live line on a terminal, plain lines otherwise.
    case auto
    case plain
    /// NDJSON events on stderr, for GUIs and workflow engines.
    case json
    case none
}

/// Runs batch items as child `emconv convert` processes, `jobs` at a time. A child that fails or
/// crashes fails only its item. SIGINT/SIGTERM stop launching, are passed to the running
/// children (which remove their partial outputs), and end the run.
public final class BatchRunner: @unchecked Sendable {
    public struct Config {
        public var executable: String
        public var jobs: Int
        public var threadsPerJob: Int
        /// The child's arguments for one item: the CLI composes them (the library never spells
        /// command-line strings). The child prints its result as JSON on stdout and, when asked
        /// by these arguments, its progress as NDJSON on stderr.
        public var childArguments: @Sendable (BatchItem) -> [String]
        public var overwrite = false
        public var skipExisting = false
        public var failFast = false
        public var progress: ProgressMode = .auto
        public var shard: Shard?
        public var checksumOutputs = true

        public init(executable: String, jobs: Int, threadsPerJob: Int, childArguments: @escaping @Sendable (BatchItem) -> [String]) {
            self.executable = executable
            self.jobs = max(1, jobs)
            self.threadsPerJob = max(1, threadsPerJob)
            self.childArguments = childArguments
        }
    }

    let config: Config
    let report: ReportWriter?
    private let lock = NSLock()
    private var running: [Int: Process] = [:]
    private var pending: [BatchItem] = []
    private var entries: [BatchEntry] = []
    private var stop = false
    public private(set) var interruptedBy: Int32?
    fileprivate var done = 0, total = 0
    fileprivate var bytesDone: Int64 = 0, bytesTotal: Int64 = 0
    /// Bytes done inside the items still converting, from their children's progress events.
    private var partial: [Int: Int64] = [:]
    fileprivate let start = Date()
    private var lastDraw = Date.distantPast
    private let isTTY = isatty(2) != 0

    public init(config: Config, report: ReportWriter?) {
        self.config = config
        self.report = report
    }

    public func run(_ items: [BatchItem]) -> [BatchEntry] {
        pending = items.reversed()
        total = items.count
        bytesTotal = items.map(\.estimatedBytes).reduce(0, +)
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [weak self] in self?.interrupt(sig) }
            s.resume()
            return s
        }
        defer { sources.forEach { $0.cancel() } }
        event(["event": .string("start"), "items": .int(Int64(items.count)), "bytes": .int(bytesTotal)])
        let group = DispatchGroup()
        for _ in 0..<min(config.jobs, max(1, items.count)) {
            group.enter()
            let t = Thread { [self] in
                defer { group.leave() }
                while let item = next() { finish(item, convert(item)) }
            }
            t.start()
        }
        group.wait()
        if isTTY && config.progress == .auto { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let count = { (st: BatchEntry.Status) in MetaValue.int(Int64(self.entries.filter { $0.status == st }.count)) }
        event(["event": .string("end"), "done": .int(Int64(done)), "ok": count(.ok), "skipped": count(.skipped),
               "failed": count(.failed), "interrupted": .bool(interruptedBy != nil)])
        return entries.sorted { $0.index < $1.index }
    }

    private func next() -> BatchItem? {
        lock.lock(); defer { lock.unlock() }
        if stop { return nil }
        return pending.popLast()
    }

    private func interrupt(_ sig: Int32) {
        lock.lock()
        stop = true
        if interruptedBy == nil { interruptedBy = sig }
        let procs = Array(running.values)
        lock.unlock()
        for p in procs where p.isRunning { kill(p.processIdentifier, sig) }
    }

    private func convert(_ item: BatchItem) -> BatchEntry {
        let t0 = Date()
        var entry = BatchEntry(index: item.index, input: item.input, output: item.output, status: .failed, shard: config.shard?.description)
        let fm = FileManager.default
        if fm.fileExists(atPath: item.output) {
            if config.skipExisting {
                entry.status = .skipped
                entry.error = "output exists (--skip-existing)"
                return entry
            }
            if !config.overwrite {
                entry.error = "output exists (use --skip-existing or --overwrite)"
                return entry
            }
        }
        let dir = (item.output as NSString).deletingLastPathComponent
        do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            entry.error = "cannot create \(dir)"
            return entry
        }
        event(["event": .string("item_start"), "index": .int(Int64(item.index)), "input": .string(item.input)])
        let args = config.childArguments(item)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: config.executable)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        lock.lock()
        if stop { lock.unlock(); entry.error = "not started: batch interrupted"; return entry }
        do { try p.run() } catch {
            lock.unlock()
            entry.error = "cannot start \(config.executable): \(error)"
            return entry
        }
        running[item.index] = p
        lock.unlock()
        final class Box: @unchecked Sendable { var data = Data() }
        let ob = Box()
        let g = DispatchGroup()
        g.enter()
        DispatchQueue.global().async { ob.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let errText = readChildStderr(err.fileHandleForReading, item: item)
        g.wait()
        p.waitUntilExit()
        lock.lock(); running[item.index] = nil; lock.unlock()
        entry.seconds = Date().timeIntervalSince(t0)
        if p.terminationStatus == 0, let v = try? MetaValue.parseJSON(String(decoding: ob.data, as: UTF8.self)) {
            entry.status = .ok
            entry.bytes = Int64(v["output_bytes"]?.intValue ?? 0)
            entry.outputSHA256 = v["output_sha256"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            if case let .array(w)? = v["warnings"] { entry.warnings = w.compactMap(\.stringValue) }
            // A writer that holds one dataset per file wrote several: the report names each.
            if case let .array(o)? = v["outputs"], o.count > 1 {
                entry.outputs = o.compactMap(\.stringValue)
                if case let .array(h)? = v["outputs_sha256"] { entry.outputsSHA256 = h.compactMap(\.stringValue) }
            }
        } else {
            let lines = errText.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
            let last = lines.last(where: { $0.hasPrefix("emconv: error: ") }) ?? lines.last
            var msg = last.map { $0.replacingOccurrences(of: "emconv: error: ", with: "") } ?? ""
            if p.terminationReason == .uncaughtSignal { msg = "converter killed by signal \(p.terminationStatus)" + (msg.isEmpty ? "" : ": " + msg) }
            if msg.isEmpty { msg = "converter exited with status \(p.terminationStatus)" }
            entry.error = msg
        }
        return entry
    }

    /// Reads a child's stderr to its end: NDJSON progress events (`{"event": "progress", "done",
    /// "total"}`) move the batch's progress while the file converts; everything else is kept (the
    /// error line).
    private func readChildStderr(_ h: FileHandle, item: BatchItem) -> String {
        var kept = "", pendingBytes = Data()
        func handle(_ line: String) {
            if line.hasPrefix("{"), let v = try? MetaValue.parseJSON(line), v["event"]?.stringValue == "progress",
               let d = v["done"]?.intValue, let t = v["total"]?.intValue, t > 0 {
                childProgress(item, fraction: min(1, Double(d) / Double(t)))
            } else {
                kept += line + "\n"
            }
        }
        while true {
            let chunk = h.availableData
            if chunk.isEmpty { break }
            pendingBytes.append(chunk)
            while let nl = pendingBytes.firstIndex(of: 10) {
                handle(String(decoding: pendingBytes[pendingBytes.startIndex..<nl], as: UTF8.self))
                pendingBytes.removeSubrange(pendingBytes.startIndex...nl)
            }
        }
        if !pendingBytes.isEmpty { handle(String(decoding: pendingBytes, as: UTF8.self)) }
        return kept
    }

    private func childProgress(_ item: BatchItem, fraction: Double) {
        lock.lock()
        partial[item.index] = Int64(fraction * Double(item.estimatedBytes))
        let now = Date()
        let due = now.timeIntervalSince(lastDraw) >= 0.25
        if due { lastDraw = now }
        let d = done, bd = bytesDone + partial.values.reduce(0, +)
        lock.unlock()
        guard due else { return }
        event(["event": .string("item_progress"), "index": .int(Int64(item.index)), "input": .string(item.input),
               "fraction": .double((fraction * 1000).rounded() / 1000), "done": .int(Int64(d)), "total": .int(Int64(total)),
               "bytes_done": .int(bd), "bytes_total": .int(bytesTotal)])
        if config.progress == .auto && isTTY { drawBar(done: d, bytesDone: bd, current: item.input) }
    }

    private func finish(_ item: BatchItem, _ entry: BatchEntry) {
        report?.append(entry)
        lock.lock()
        partial[item.index] = nil
        entries.append(entry)
        done += 1
        bytesDone += item.estimatedBytes
        if entry.status == .failed && config.failFast { stop = true }
        let d = done, bd = bytesDone
        lock.unlock()
        event(["event": .string("item_done"), "index": .int(Int64(entry.index)), "input": .string(entry.input),
               "output": .string(entry.output), "outputs": .array(entry.outputs.map { .string($0) }),
               "status": .string(entry.status.rawValue), "error": entry.error.map { .string($0) } ?? .null,
               "done": .int(Int64(d)), "total": .int(Int64(total)), "bytes_done": .int(bd), "bytes_total": .int(bytesTotal)])
        draw(entry, done: d, bytesDone: bd)
    }

    private func event(_ fields: [(String, MetaValue)]) {
        guard config.progress == .json else { return }
        let line = MetaValue.object([("time", .double(Date().timeIntervalSince1970))] + fields).json() + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private func event(_ dict: KeyValuePairs<String, MetaValue>) { event(dict.map { ($0.key, $0.value) }) }

    private func draw(_ e: BatchEntry, done: Int, bytesDone: Int64) {
        switch config.progress {
        case .none, .json: return
        case .plain, .auto:
            let tag = e.status == .ok ? "ok" : (e.status == .skipped ? "skipped" : "FAILED")
            if config.progress == .auto && isTTY {
                if e.status == .failed {
                    FileHandle.standardError.write(Data("\r\u{1B}[K[\(done)/\(total)] FAILED \(e.input): \(e.error ?? "")\n".utf8))
                }
                drawBar(done: done, bytesDone: bytesDone, current: e.input)
            } else {
                var line = "[\(done)/\(total)] \(tag) \(e.input)"
                if e.status == .ok { line += " -> \(e.outputs.isEmpty ? e.output : e.outputs.joined(separator: ", ")) (\(String(format: "%.2f", e.seconds)) s)" }
                if let err = e.error { line += ": \(err)" }
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        }
    }
}

extension BatchRunner {
    /// The live bar: files done, bytes (including the running files' progress), rate, ETA.
    fileprivate func drawBar(done: Int, bytesDone: Int64, current: String) {
        let el = Date().timeIntervalSince(start)
        let rate = el > 0 ? Double(bytesDone) / el : 0
        let eta = rate > 0 ? Double(max(0, bytesTotal - bytesDone)) / rate : 0
        let width = 24
        let filled = bytesTotal > 0 ? min(width, Int(Double(width) * Double(bytesDone) / Double(bytesTotal))) : (total > 0 ? width * done / total : width)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let line = String(format: "\r[%@] %d/%d files  %@/%@  %@/s  ETA %.0fs  %@", bar, done, total,
                          human(bytesDone), human(bytesTotal), human(Int64(rate)), eta, (current as NSString).lastPathComponent)
        FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
    }
}

/// Bytes for people (decimal units).
public func human(_ b: Int64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(b)
    var i = 0
    while v >= 1000 && i < units.count - 1 { v /= 1000; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}

