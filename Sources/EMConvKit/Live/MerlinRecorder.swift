import EMCore
import FormatMIB
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Live progress of a recording (`--progress`).
public struct RecordProgress: Sendable {
    public var framesReceived: Int
    public var framesTarget: Int?
    public var bytesReceived: Int64
    public var seconds: Double
    public var framesPerSecond: Double { seconds > 0 ? Double(framesReceived) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytesReceived) / seconds / 1e6 : 0 }
}

/// What `emconv record` did.
public struct RecordResult: Sendable {
    public var url: String
    public var framesReceived: Int
    public var bytesReceived: Int64
    public var receiveSeconds: Double
    /// Why reception stopped before the acquisition was complete; nil when it was complete.
    public var endedEarly: String?
    public var conversion: ConversionResult
}

/// Records one acquisition from a Merlin data port into any output format.
///
/// Design: one blocking TCP socket read on the calling thread (plain POSIX: one connection needs no
/// event loop, and no new package dependency). Each complete message is appended at once to a spool
/// file beside the output: the stream's frames are byte for byte a `.mib` file and its `HDR,`
/// message the `.hdr`. Memory is one frame; a slow disk slows the reads and TCP's window throttles
/// the sender (back-pressure; nothing is dropped). When the acquisition is complete, or the stream
/// ends early, the spool is converted by the MIB reader and the chunk pipeline, so the output equals
/// `emconv convert` of the same acquisition's `.mib`; the spool is then removed (`keepSpool` keeps it).
public enum MerlinRecorder {
    public struct Options: Sendable {
        public var url: String
        public var output: String
        /// Stop after this many frames.
        public var frames: Int?
        /// Seconds without data before giving up (the output keeps what arrived).
        public var timeout: Double = 10
        public var keepSpool = false
        public var conversion: ConversionOptions
        /// Asked every poll slice (0.2 s): true stops reception (Ctrl-C).
        public var shouldStop: @Sendable () -> Bool = { false }
        public var progress: (@Sendable (RecordProgress) -> Void)?
        /// Called once reception is over, before the conversion starts (the CLI hands Ctrl-C back
        /// to the handlers that remove a partial output).
        public var receptionEnded: (@Sendable () -> Void)?

        public init(url: String, output: String, conversion: ConversionOptions) {
            self.url = url
            self.output = output
            self.conversion = conversion
        }
    }

    /// `merlin://HOST[:PORT]` → (host, port); the data port defaults to 6342.
    public static func parseURL(_ url: String) throws -> (String, UInt16) {
        guard url.lowercased().hasPrefix("merlin://") else {
            throw EMError(.usage, file: url, "not a Merlin stream address (expected merlin://HOST[:PORT])")
        }
        let rest = String(url.dropFirst("merlin://".count)).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard !rest.isEmpty else { throw EMError(.usage, file: url, "no host in the address") }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = UInt16(rest[rest.index(after: colon)...]), p > 0 else {
                throw EMError(.usage, file: url, "port '\(rest[rest.index(after: colon)...])' is not a number in 1...65535")
            }
            return (String(rest[..<colon]), p)
        }
        return (rest, 6342)
    }

    public static func record(_ o: Options) throws -> RecordResult {
        let fm = FileManager.default
        if fm.fileExists(atPath: o.output) && !o.conversion.overwrite {
            throw EMError(.outputExists, file: o.output, "output exists (use --overwrite to replace it)")
        }
        _ = try Converter.outputFormat(for: o.output, explicit: o.conversion.format)
        let scan = try o.conversion.read.ints("scan-shape")
        let (host, port) = try parseURL(o.url)
        let dir = (o.output as NSString).deletingLastPathComponent
        let spoolMIB = (dir.isEmpty ? "" : dir + "/") + "." + (o.output as NSString).lastPathComponent + ".live.mib"
        let spoolHDR = (spoolMIB as NSString).deletingPathExtension + ".hdr"
        let spool = open(spoolMIB, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard spool >= 0 else {
            throw EMError(.writeError, file: spoolMIB, "cannot create the spool file: \(String(cString: strerror(errno)))")
        }
        var spoolOpen = true
        defer {
            if spoolOpen { close(spool) }
            if !o.keepSpool { unlink(spoolMIB); unlink(spoolHDR) }
        }
        let conn = try MerlinConnection(host: host, port: port, url: o.url, timeout: o.timeout, shouldStop: o.shouldStop)
        defer { conn.close() }

        let start = Date()
        var frames = 0
        var header: [UInt8]?
        var firstHeaders: [MetaValue] = []
        var lastHeader: MetaValue?
        var target = o.frames ?? scan.map { $0.reduce(1, *) }
        var endedEarly: String?
        var lastReport = Date.distantPast
        func report(force: Bool = false) {
            guard let p = o.progress, force || Date().timeIntervalSince(lastReport) >= 0.5 else { return }
            lastReport = Date()
            p(RecordProgress(framesReceived: frames, framesTarget: target, bytesReceived: conn.bytesReceived,
                             seconds: Date().timeIntervalSince(start)))
        }
        receive: while target.map({ frames < $0 }) ?? true {
            let offset = conn.bytesReceived
            let payload: [UInt8]
            let kind: MIBStream.Kind
            do {
                guard let prefix = try conn.read(MIBStream.prefixBytes, what: "message header") else {
                    endedEarly = "the stream closed"
                    break receive
                }
                let n = try MIBStream.messageLength(prefix, source: o.url, offset: offset)
                guard let p = try conn.read(n, what: "message of \(n) bytes") else {
                    endedEarly = "the stream closed inside a message"
                    break receive
                }
                payload = p
                kind = try MIBStream.kind(of: payload, source: o.url, offset: offset + Int64(MIBStream.prefixBytes))
            } catch let e as EMError where e.code == .streamEndedEarly || e.code == .badInput || e.code == .unsupported {
                endedEarly = e.message + (e.code == .streamEndedEarly ? "" : " (at byte \(offset) of the stream)")
                break receive
            }
            switch kind {
            case .acquisitionHeader:
                // A second header starts the next acquisition: this one is over.
                if frames > 0 || header != nil {
                    if frames == 0 { header = payload; continue receive }
                    if target == nil { break receive }
                    endedEarly = "a new acquisition started after \(frames) frames"
                    break receive
                }
                header = payload
                if target == nil { target = MIBStream.framesAnnounced(header: payload) }
                let hfd = open(spoolHDR, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                guard hfd >= 0 else { throw EMError(.writeError, file: spoolHDR, "cannot create: \(String(cString: strerror(errno)))") }
                defer { close(hfd) }
                try writeAll(hfd, payload, file: spoolHDR)
            case .frame:
                try writeAll(spool, payload, file: spoolMIB)
                frames += 1
                if let m = MIBStream.frameHeaderMeta(payload) {
                    if firstHeaders.count < 1024 { firstHeaders.append(m) } else { lastHeader = m }
                }
            }
            report()
        }
        let receiveSeconds = Date().timeIntervalSince(start)
        report(force: true)
        conn.close()
        o.receptionEnded?()
        close(spool)
        spoolOpen = false
        guard frames > 0 else {
            throw EMError(.streamEndedEarly, file: o.url, "no complete frame received: \(endedEarly ?? "nothing arrived"); no output written")
        }

        // Convert the spool. An incomplete scan becomes a stack of every complete frame.
        var conv = o.conversion
        var warnings: [String] = []
        if let t = target, frames < t {
            let why = endedEarly ?? "the stream ended"
            endedEarly = why
            warnings.append("stream ended early (\(why)): \(frames) of \(t) frames received; the output holds these \(frames) frames as a stack")
            conv.read.set("scan-shape", "\(frames)")
        } else if endedEarly != nil, scan == nil, o.frames == nil {
            // No frame count was known: what arrived is the acquisition.
            warnings.append("the stream ended (\(endedEarly!)) after \(frames) frames; no frame count was announced, so all are kept")
            endedEarly = nil
        } else {
            endedEarly = nil
        }
        let file = try Catalog.open(spoolMIB, options: conv.read)
        var stream: [(String, MetaValue)] = [
            ("url", .string(o.url)), ("frames_received", .int(Int64(frames))),
            ("bytes_received", .int(conn.bytesReceived)), ("receive_seconds", .double(receiveSeconds)),
            ("complete", .bool(endedEarly == nil)),
        ]
        if let endedEarly { stream.append(("ended_early", .string(endedEarly))) }
        if let header { stream.append(("acquisition_header", .string(String(decoding: header.prefix { $0 != 0 }, as: UTF8.self)))) }
        stream.append(("frame_headers", .array(firstHeaders)))
        if let lastHeader { stream.append(("last_frame_header", lastHeader)) }
        if firstHeaders.count < frames { stream.append(("frame_headers_note", .string("the first \(firstHeaders.count) of \(frames) frame headers are listed")))}
        if case .object(var tree) = file.original {
            tree.append(("live_stream", .object(stream)))
            file.original = .object(tree)
        }
        file.warnings = warnings + file.warnings
        var result = try Converter.convert(opened: file, input: spoolMIB, output: o.output, options: conv)
        result.input = o.url
        return RecordResult(url: o.url, framesReceived: frames, bytesReceived: conn.bytesReceived,
                            receiveSeconds: receiveSeconds, endedEarly: endedEarly, conversion: result)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], file: String) throws {
        try bytes.withUnsafeBytes { b in
            var done = 0
            while done < b.count {
                let n = write(fd, b.baseAddress! + done, b.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw EMError(.writeError, file: file, "write failed: \(String(cString: strerror(errno)))") }
                done += n
            }
        }
    }
}

/// One TCP connection read with poll(2) slices, so a stall (`timeout`) and a stop request are noticed.
final class MerlinConnection {
    let fd: Int32
    let url: String
    let timeout: Double
    let shouldStop: @Sendable () -> Bool
    private(set) var bytesReceived: Int64 = 0
    private var closed = false

    init(host: String, port: UInt16, url: String, timeout: Double, shouldStop: @escaping @Sendable () -> Bool) throws {
        self.url = url
        self.timeout = timeout
        self.shouldStop = shouldStop
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw EMError(.missingInput, file: url, "cannot resolve host '\(host)': \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        var lastError: Int32 = 0
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let s = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if s >= 0 {
                if connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
                    fd = s
                    return
                }
                lastError = errno
                Glibc.close(s)
            }
            ai = a.pointee.ai_next
        }
        throw EMError(.missingInput, file: url, "cannot connect: \(String(cString: strerror(lastError)))")
    }

    deinit { close() }

    func close() {
        if !closed { closed = true; Glibc.close(fd) }
    }

    /// Exactly `n` bytes; nil when the peer closed before the first byte of a message header,
    /// an error (`streamEndedEarly`) when it closed inside, stalled past the timeout, or was stopped.
    func read(_ n: Int, what: String) throws -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        var got = 0
        var idle = 0.0
        try out.withUnsafeMutableBytes { b in
            while got < n {
                if shouldStop() { throw EMError(.streamEndedEarly, file: url, "stopped by a signal") }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, 200)
                if r < 0 && errno == EINTR { continue }
                if r == 0 {
                    idle += 0.2
                    if idle >= timeout { throw EMError(.streamEndedEarly, file: url, "no data for \(Int(timeout.rounded())) s (--timeout)") }
                    continue
                }
                idle = 0
                let k = recv(fd, b.baseAddress! + got, n - got, 0)
                if k < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if k < 0 { throw EMError(.streamEndedEarly, file: url, "connection failed: \(String(cString: strerror(errno)))") }
                if k == 0 {
                    if got == 0 && what == "message header" { return }
                    throw EMError(.streamEndedEarly, file: url, "the stream closed \(got) bytes into a \(what)")
                }
                got += k
                bytesReceived += Int64(k)
            }
        }
        return got == n ? out : nil
    }
}
