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
    /// Frames handed to the writer (compressed and written by the pipeline right after).
    public var framesWritten = 0
    /// Frames waiting in the queue between receiver and writer, and its capacity.
    public var queueDepth = 0
    public var queueCapacity = 0
    /// The queue is full now: the output is slower than the stream and the detector is held back.
    public var heldBack = false
    /// Seconds the receiver has waited for room in the queue so far.
    public var heldBackSeconds = 0.0
    /// Frames missing in the stream (gaps in the frame sequence numbers: the detector dropped them).
    public var framesDropped = 0
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
    /// Frames written as they arrived (false: spooled and converted at the end).
    public var streamed = false
    public var framesDropped = 0
    public var heldBackSeconds = 0.0
    public var queueCapacity = 0
}

/// Records one acquisition from a Merlin data port into any output format.
///
/// Design: plain POSIX sockets (one connection needs no event loop and no new package), read with
/// poll(2) slices on a receiver thread. When the frame count is known as the first frame arrives
/// (`--stop-after`, `--scan-shape` or the header's `Frames in Acquisition`), each frame goes
/// through a bounded queue (``MIBLiveSource``, at most 128 MiB / 1024 frames) into the normal
/// NeXus writer pipeline (compression on the workers), so frames are written as they arrive into
/// the layout `emconv convert` gives the acquisition's `.mib`. A full queue blocks the receiver,
/// so TCP flow control holds the sender back: memory stays bounded and nothing is dropped here.
/// The NeXus file is written to `.OUT.live.nxs` beside the output and renamed into place when
/// complete. If the stream ends early, the received frames are re-written from it as a stack of
/// N frames (and other output formats are converted from it), then it is removed.
/// Without a known frame count the stream is spooled to `.OUT.live.mib` and converted at the end.
public enum MerlinRecorder {
    public struct Options: Sendable {
        public var url: String
        public var output: String
        /// Stop after this many frames.
        public var frames: Int?
        /// Seconds without data before giving up (the output keeps what arrived).
        public var timeout: Double = 10
        public var keepSpool = false
        /// Frames the queue between receiver and writer holds (default: 128 MiB of frames, 2...1024).
        public var queueFrames: Int?
        /// `HOST[:PORT]` of the Merlin command port (6341): send NUMFRAMESTOACQUIRE (when the
        /// frame count is given) and STARTACQUISITION once the data port is connected, and
        /// STOPACQUISITION when reception ends early.
        public var control: String?
        public var conversion: ConversionOptions
        /// Asked every poll slice (0.2 s): true stops reception (Ctrl-C).
        public var shouldStop: @Sendable () -> Bool = { false }
        public var progress: (@Sendable (RecordProgress) -> Void)?
        /// Called once reception is over, before any conversion after it (the CLI hands Ctrl-C back
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

    /// Frames one recording may declare (2^25: a 5792x5792 scan; the preview holds 8 bytes per frame).
    public static let maxFrames = 1 << 25

    /// One message of the stream, or why the stream ended.
    enum Message { case header([UInt8]), frame([UInt8]), ended(String) }

    static func nextMessage(_ conn: MerlinConnection, url: String, parseFrames: Bool = true) throws -> Message {
        let offset = conn.bytesReceived
        do {
            guard let prefix = try conn.read(MIBStream.prefixBytes, what: "message header") else { return .ended("the stream closed") }
            let n = try MIBStream.messageLength(prefix, source: url, offset: offset)
            guard let p = try conn.read(n, what: "message of \(n) bytes") else { return .ended("the stream closed inside a message") }
            switch try MIBStream.kind(of: p, source: url, offset: offset + Int64(MIBStream.prefixBytes), parseFrames: parseFrames) {
            case .acquisitionHeader: return .header(p)
            case .frame: return .frame(p)
            }
        } catch let e as EMError where e.code == .streamEndedEarly || e.code == .badInput || e.code == .unsupported {
            return .ended(e.message + (e.code == .streamEndedEarly ? "" : " (at byte \(offset) of the stream)"))
        }
    }

    /// What the receiver saw, shared with the writer's thread and the progress reports.
    final class Reception: @unchecked Sendable {
        let lock = NSLock()
        var frames = 0
        var endedEarly: String?
        var firstHeaders: [MetaValue] = []
        /// The latest frame message after the first 1024 (its header is listed at the end).
        var lastMessage: [UInt8]?
        var lastSequence: Int?
        var dropped = 0
        var seconds = 0.0

        /// Counts a frame; `sequence` is its header's sequence number (parsed here when nil).
        func add(_ payload: [UInt8], sequence: Int? = nil) {
            lock.lock(); defer { lock.unlock() }
            frames += 1
            if firstHeaders.count < 1024 {
                if let m = MIBStream.frameHeaderMeta(payload) { firstHeaders.append(m) }
            } else {
                lastMessage = payload
            }
            if let seq = sequence ?? MIBLiveSource.sequence(of: payload) {
                if let last = lastSequence, seq > last + 1 { dropped += seq - last - 1 }
                lastSequence = seq
            }
        }

        /// The provenance kept under `live_stream` in the original metadata.
        func tree(url: String, bytes: Int64, header: [UInt8]?, complete: Bool, extra: [(String, MetaValue)]) -> MetaValue {
            lock.lock(); defer { lock.unlock() }
            var stream: [(String, MetaValue)] = [
                ("url", .string(url)), ("frames_received", .int(Int64(frames))),
                ("bytes_received", .int(bytes)), ("receive_seconds", .double(seconds)),
                ("complete", .bool(complete)), ("frames_dropped_by_sender", .int(Int64(dropped))),
            ] + extra
            if let endedEarly { stream.append(("ended_early", .string(endedEarly))) }
            if let header { stream.append(("acquisition_header", .string(String(decoding: header.prefix { $0 != 0 }, as: UTF8.self)))) }
            stream.append(("frame_headers", .array(firstHeaders)))
            if let lastMessage, let lastHeader = MIBStream.frameHeaderMeta(lastMessage) { stream.append(("last_frame_header", lastHeader)) }
            if firstHeaders.count < frames { stream.append(("frame_headers_note", .string("the first \(firstHeaders.count) of \(frames) frame headers are listed"))) }
            return .object(stream)
        }
    }

    public static func record(_ o: Options) throws -> RecordResult {
        if FileManager.default.fileExists(atPath: o.output) && !o.conversion.overwrite {
            throw EMError(.outputExists, file: o.output, "output exists (use --overwrite to replace it)")
        }
        _ = try Converter.outputFormat(for: o.output, explicit: o.conversion.format)
        let scan = try o.conversion.read.ints("scan-shape")
        if let f = o.frames, let s = scan, s.reduce(1, *) != f {
            throw EMError(.usage, file: o.url, "--stop-after \(f) and --scan-shape \(s.map(String.init).joined(separator: ",")) (\(s.reduce(1, *)) frames) disagree")
        }
        if let c = o.conversion.write.string("chunks"), c != "frame" {
            throw EMError(.usage, file: o.output, "record writes frames in arrival order: --chunks \(c) is not available (convert the recording afterwards)")
        }
        let (host, port) = try parseURL(o.url)
        let conn = try MerlinConnection(host: host, port: port, url: o.url, timeout: o.timeout, shouldStop: o.shouldStop)
        defer { conn.close() }
        let control = try o.control.map { try MerlinControl(address: $0, timeout: o.timeout) }
        if let control {
            if let n = o.frames ?? scan.map({ $0.reduce(1, *) }) { try control.command("SET", "NUMFRAMESTOACQUIRE", String(n)) }
            try control.command("CMD", "STARTACQUISITION")
        }
        let start = Date()

        // The acquisition header (a later one before any frame replaces it) and the first frame.
        var header: [UInt8]?
        let first: [UInt8]
        untilFirstFrame: while true {
            switch try nextMessage(conn, url: o.url) {
            case let .header(h): header = h
            case let .frame(f):
                first = f
                break untilFirstFrame
            case let .ended(why):
                try? control?.command("CMD", "STOPACQUISITION")
                o.receptionEnded?()
                throw EMError(.streamEndedEarly, file: o.url, "no complete frame received: \(why); no output written")
            }
        }
        let target = o.frames ?? scan.map { $0.reduce(1, *) } ?? header.flatMap { MIBStream.framesAnnounced(header: $0) }
        guard let target else {
            return try recordSpooled(o, conn: conn, header: header, first: first, start: start, control: control)
        }
        // The count sizes the dataset and the preview before any frame is written: a corrupt
        // header must not make emconv allocate for a billion frames.
        guard target <= maxFrames else {
            let given = o.frames != nil || scan != nil
            throw EMError(given ? .usage : .badInput, file: o.url,
                          "\(given ? "the options ask for" : "the acquisition header announces") \(target) frames; one recording holds at most \(maxFrames) (give --stop-after)")
        }
        return try recordStreamed(o, conn: conn, header: header, first: first, target: target, start: start, control: control)
    }

    /// Frames written as they arrive (the frame count is known).
    static func recordStreamed(_ o: Options, conn: MerlinConnection, header: [UInt8]?, first: [UInt8], target: Int,
                               start: Date, control: MerlinControl?) throws -> RecordResult {
        let live = try MIBLiveSource(firstFrame: first, hdr: header, options: o.conversion.read, source: o.url, queueFrames: o.queueFrames)
        live.declaredFrames = target
        let file = try MIBReader.liveFile(source: live, hdr: header, frames: target, options: o.conversion.read, url: o.url)
        let dir = (o.output as NSString).deletingLastPathComponent
        let firstOutput = (dir.isEmpty ? "" : dir + "/") + "." + (o.output as NSString).lastPathComponent + ".live.nxs"
        let toNeXus = try Converter.outputFormat(for: o.output, explicit: o.conversion.format).descriptor.name == "nexus"
        let rx = Reception()
        rx.add(first)
        live.push(first)

        // The receiver thread: socket → queue, until the acquisition is complete or the stream ends.
        let stopped = StopSwitch()
        let receiverDone = DispatchSemaphore(value: 0)
        let report = o.progress
        let url = o.url
        let stopAsked = o.shouldStop
        conn.shouldStop = { stopAsked() || stopped.isOn }
        let boxes = UncheckedBox((conn, file))
        let receiver = Thread {
            defer { receiverDone.signal() }
            let (conn, file) = boxes.value
            var lastReport = Date.distantPast
            var saidHeldBack = false
            func progress(force: Bool) {
                guard let report, force || Date().timeIntervalSince(lastReport) >= 0.5 else { return }
                lastReport = Date()
                let depth = live.depthNow
                rx.lock.lock()
                var p = RecordProgress(framesReceived: rx.frames, framesTarget: target, bytesReceived: conn.bytesReceived,
                                       seconds: Date().timeIntervalSince(start))
                p.framesDropped = rx.dropped
                rx.lock.unlock()
                p.framesWritten = live.framesTaken
                p.queueDepth = depth
                p.queueCapacity = live.capacity
                p.heldBack = depth >= live.capacity
                p.heldBackSeconds = live.blockedSeconds
                report(p)
                if p.heldBack { saidHeldBack = true }
            }
            var why: String?
            receive: while rx.frames < target {
                switch (try? nextMessage(conn, url: url, parseFrames: false)) ?? .ended("the connection failed") {
                case let .ended(reason):
                    why = reason
                    break receive
                case .header:
                    why = "a new acquisition started after \(rx.frames) frames"
                    break receive
                case let .frame(p):
                    let (bad, sequence) = live.inspect(p)
                    if let bad {
                        why = bad + " at frame \(rx.frames + 1)"
                        break receive
                    }
                    rx.add(p, sequence: sequence)
                    if live.push(p) > 0.2 && !saidHeldBack { progress(force: true) }
                }
                progress(force: false)
            }
            rx.lock.lock()
            rx.endedEarly = why
            rx.seconds = Date().timeIntervalSince(start)
            rx.lock.unlock()
            progress(force: true)
            // The writer's reading thread completes the provenance once it has every frame.
            live.finish {
                let complete = rx.frames >= target
                let tree = rx.tree(url: url, bytes: conn.bytesReceived, header: header, complete: complete,
                                   extra: [("frames_expected", .int(Int64(target))), ("written_as_received", .bool(true)),
                                           ("queue_capacity_frames", .int(Int64(live.capacity))),
                                           ("held_back_seconds", .double(live.blockedSeconds))])
                if case .object(var t) = file.original {
                    t.append(("live_stream", tree))
                    file.original = .object(t)
                }
            }
        }
        receiver.stackSize = 1 << 20
        receiver.start()

        var conv = o.conversion
        conv.progress = nil
        conv.overwrite = true
        conv.outputChecksum = false
        if !toNeXus {
            conv.format = "nexus"
            conv.write = OptionValues()
        }
        let firstResult: ConversionResult
        do {
            firstResult = try Converter.convert(opened: file, input: o.url, output: firstOutput, options: conv, start: start)
        } catch {
            stopped.set()
            live.finish()
            receiverDone.wait()
            try? control?.command("CMD", "STOPACQUISITION")
            o.receptionEnded?()
            throw error
        }
        receiverDone.wait()
        conn.close()
        if rx.frames < target { try? control?.command("CMD", "STOPACQUISITION") }
        o.receptionEnded?()

        rx.lock.lock()
        let frames = rx.frames, why = rx.endedEarly, receiveSeconds = rx.seconds, dropped = rx.dropped
        rx.lock.unlock()
        var warnings: [String] = []
        if dropped > 0 { warnings.append("the stream skipped \(dropped) frame sequence numbers: the detector dropped \(dropped) frames") }
        if live.blockedSeconds > 0.5 {
            warnings.append(String(format: "the output was slower than the stream: the receiver waited %.1f s for room in its queue of %d frames (the detector was held back)", live.blockedSeconds, live.capacity))
        }
        let early = frames < target
        var endedEarly: String?
        var result: ConversionResult
        if !early && toNeXus {
            try OutputSafety.moveIntoPlace(firstOutput, o.output, replace: o.conversion.overwrite)
            result = firstResult
            result.output = o.output
            result.outputs = [o.output]
            if o.conversion.outputChecksum { result.outputSHA256 = try OutputTree.sha256(o.output) }
        } else {
            // Read the first output back: a stack of the frames received, or another output format.
            defer { unlink(firstOutput) }
            let back = try Catalog.open(firstOutput)
            guard let ds = back.datasets.first(where: { $0.name == "merlin" }) ?? back.datasets.first else {
                throw EMError(.failure, file: firstOutput, "the recording holds no dataset")
            }
            let nav = early ? [frames] : Array(file.datasets[0].shape.dropLast(2))
            if early {
                endedEarly = why ?? "the stream ended"
                warnings.append("stream ended early (\(endedEarly!)): \(frames) of \(target) frames received; the output holds these \(frames) frames as a stack")
            }
            let copy = MIBReader.liveCopy(of: file, nav: nav, navSource: early ? "frames received (the stream ended early)" : file.datasets[0].metadata.scanShapeSource ?? "frame count",
                                          source: ds.source, options: o.conversion.read, live: live)
            copy.warnings = warnings
            warnings = []
            var conv2 = o.conversion
            conv2.read = OptionValues()
            result = try Converter.convert(opened: copy, input: o.url, output: o.output, options: conv2)
            result.warnings = result.warnings.filter { !$0.hasPrefix("--scan-shape does not apply") }
        }
        result.input = o.url
        result.warnings = warnings + result.warnings
        return RecordResult(url: o.url, framesReceived: frames, bytesReceived: conn.bytesReceived, receiveSeconds: receiveSeconds,
                            endedEarly: endedEarly, conversion: result, streamed: true, framesDropped: dropped,
                            heldBackSeconds: live.blockedSeconds, queueCapacity: live.capacity)
    }

    /// No frame count known: spool the stream to `.OUT.live.mib` (+ `.hdr`) until it closes or
    /// a new acquisition starts, then convert the spool.
    static func recordSpooled(_ o: Options, conn: MerlinConnection, header firstHeader: [UInt8]?, first: [UInt8],
                              start: Date, control: MerlinControl?) throws -> RecordResult {
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
        let header = firstHeader
        if let header {
            let hfd = open(spoolHDR, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard hfd >= 0 else { throw EMError(.writeError, file: spoolHDR, "cannot create: \(String(cString: strerror(errno)))") }
            defer { close(hfd) }
            try writeAll(hfd, header, file: spoolHDR)
        }
        let rx = Reception()
        var endedEarly: String?
        var lastReport = Date.distantPast
        func report(force: Bool = false) {
            guard let p = o.progress, force || Date().timeIntervalSince(lastReport) >= 0.5 else { return }
            lastReport = Date()
            var r = RecordProgress(framesReceived: rx.frames, framesTarget: nil, bytesReceived: conn.bytesReceived,
                                   seconds: Date().timeIntervalSince(start))
            r.framesWritten = rx.frames
            r.framesDropped = rx.dropped
            p(r)
        }
        try writeAll(spool, first, file: spoolMIB)
        rx.add(first)
        receive: while true {
            switch try nextMessage(conn, url: o.url) {
            case let .ended(why):
                endedEarly = why
                break receive
            case .header:
                // A second header starts the next acquisition: this one is over.
                break receive
            case let .frame(p):
                try writeAll(spool, p, file: spoolMIB)
                rx.add(p)
            }
            report()
        }
        let receiveSeconds = Date().timeIntervalSince(start)
        rx.seconds = receiveSeconds
        report(force: true)
        conn.close()
        if endedEarly != nil { try? control?.command("CMD", "STOPACQUISITION") }
        o.receptionEnded?()
        close(spool)
        spoolOpen = false

        var warnings: [String] = []
        if let e = endedEarly {
            // No frame count was known: what arrived is the acquisition.
            warnings.append("the stream ended (\(e)) after \(rx.frames) frames; no frame count was announced, so all are kept")
        }
        rx.endedEarly = nil
        let file = try Catalog.open(spoolMIB, options: o.conversion.read)
        if case .object(var tree) = file.original {
            tree.append(("live_stream", rx.tree(url: o.url, bytes: conn.bytesReceived, header: header, complete: true,
                                                extra: [("written_as_received", .bool(false))])))
            file.original = .object(tree)
        }
        file.warnings = warnings + file.warnings
        var result = try Converter.convert(opened: file, input: spoolMIB, output: o.output, options: o.conversion)
        result.input = o.url
        return RecordResult(url: o.url, framesReceived: rx.frames, bytesReceived: conn.bytesReceived,
                            receiveSeconds: receiveSeconds, endedEarly: nil, conversion: result, framesDropped: rx.dropped)
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

/// A flag set once from any thread.
final class StopSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    func set() { lock.lock(); on = true; lock.unlock() }
    var isOn: Bool { lock.lock(); defer { lock.unlock() }; return on }
}

/// Hands a non-Sendable value to one other thread that alone uses it from then on.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// One TCP connection read with poll(2) slices, so a stall (`timeout`) and a stop request are noticed.
final class MerlinConnection {
    let fd: Int32
    let url: String
    let timeout: Double
    var shouldStop: @Sendable () -> Bool
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
        var got = 0
        var closedAtStart = false
        // Uninitialised storage: every byte handed out was received (count = bytes received).
        let out = try [UInt8](unsafeUninitializedCapacity: n) { b, count in
            defer { count = got }
            while got < n {
                if shouldStop() { throw EMError(.streamEndedEarly, file: url, "stopped by a signal") }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                var idle = 0.0
                var r = poll(&p, 1, 200)
                while r == 0 || (r < 0 && errno == EINTR) {
                    if r == 0 {
                        idle += 0.2
                        if idle >= timeout { throw EMError(.streamEndedEarly, file: url, "no data for \(Int(timeout.rounded())) s (--timeout)") }
                    }
                    if shouldStop() { throw EMError(.streamEndedEarly, file: url, "stopped by a signal") }
                    r = poll(&p, 1, 200)
                }
                if r < 0 { throw EMError(.streamEndedEarly, file: url, "connection failed: \(String(cString: strerror(errno)))") }
                let k = recv(fd, b.baseAddress! + got, n - got, 0)
                if k < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                if k < 0 { throw EMError(.streamEndedEarly, file: url, "connection failed: \(String(cString: strerror(errno)))") }
                if k == 0 {
                    if got == 0 && what == "message header" { closedAtStart = true; return }
                    throw EMError(.streamEndedEarly, file: url, "the stream closed \(got) bytes into a \(what)")
                }
                got += k
                bytesReceived += Int64(k)
            }
        }
        return closedAtStart ? nil : out
    }
}
