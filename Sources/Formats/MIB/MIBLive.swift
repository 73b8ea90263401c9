import EMCore
import Foundation

/// Frames of a live Merlin stream, handed from the socket receiver to the writer through a
/// bounded queue. The receiver `push`es each frame message (MQ1 header + pixels) and blocks while
/// the queue is full, so a slow disk holds the socket back (TCP flow control) instead of growing
/// memory; the writer's reading thread pops frames in order and decodes them like the MIB reader.
public final class MIBLiveSource: ArrivingFrameSource, @unchecked Sendable {
    /// Memory the queue may hold; the frame capacity follows from the frame size (at least 2,
    /// at most 1024 frames: 256x256 U16 frames give 1024, 512x512 raw quad frames 127).
    public static let queueBytes = 128 << 20

    let header: MIBHeader
    let decoder: MIBDecoder
    let depth: Int?
    let flipRows: Bool
    /// Frames the queue holds at most.
    public let capacity: Int
    /// Bytes of one frame message (header + pixels).
    public let messageBytes: Int

    private let cond = NSCondition()
    private var queue: [[UInt8]] = []
    private var head = 0
    private var nextIndex = 0
    private var pushed = 0
    private var ended = false
    private var endHook: (() -> Void)?
    /// Frames the dataset declares; reading the last one waits for the receiver's end.
    public var declaredFrames = Int.max
    /// Seconds the receiver waited for room (the writer was slower than the stream).
    public private(set) var blockedSeconds = 0.0
    /// Frames that had to wait for room in the queue.
    public private(set) var framesHeldBack = 0

    /// `firstFrame` is the first frame message; `hdr` the acquisition header message (`HDR,…`).
    /// `queueFrames` overrides the capacity (at least 2).
    public init(firstFrame: [UInt8], hdr: [UInt8]?, options: OptionValues, source: String, queueFrames: Int? = nil) throws {
        let h0 = try MIBHeader.parse(Array(firstFrame.prefix(4096)), file: source, offset: 0)
        let hdrFile = try hdr.map { try MIBHdrFile.parse($0, path: source) }
        depth = h0.counterDepth ?? hdrFile?.int("Counter Depth") ?? (h0.format == .r64 ? MIBLiveSource.rawDepth(h0, messageBytes: firstFrame.count) : nil)
        decoder = try MIBDecoder(header: h0, depth: depth, file: source)
        header = h0
        firstHeader = Array(firstFrame.prefix(h0.headerBytes))
        messageBytes = h0.headerBytes + decoder.payloadBytes
        guard firstFrame.count >= messageBytes else {
            throw EMError.bad(source, offset: 0, "the first frame message has \(firstFrame.count) bytes; its header announces \(messageBytes)")
        }
        flipRows = options.flag("mib-flip-rows")
        capacity = max(2, queueFrames ?? min(1024, MIBLiveSource.queueBytes / max(1, messageBytes)))
    }

    /// Raw frames without MQ1A or acquisition header: the depth whose payload fills the message.
    static func rawDepth(_ h: MIBHeader, messageBytes: Int) -> Int? {
        [12, 6, 1, 24].first { d in
            (try? MIBDecoder(header: h, depth: d, file: "stream")).map { h.headerBytes + $0.payloadBytes == messageBytes } ?? false
        }
    }

    /// The first frame header's bytes from its header-size field to its layout field (geometry).
    private lazy var geometryBytes: ArraySlice<UInt8>? = MIBLiveSource.geometryField(firstHeader)
    private let firstHeader: [UInt8]

    /// Bytes between the second and the eighth comma of a header (header size … layout), and the
    /// sequence number field; nil when the first 256 bytes hold fewer commas.
    static func fields(_ m: [UInt8]) -> (geometry: Range<Int>, sequence: Range<Int>)? {
        var commas = (0, 0, 0)
        var k = 0
        var i = 0
        let end = min(m.count, 256)
        while i < end {
            if m[i] == 0x2C {
                k += 1
                if k == 1 { commas.0 = i } else if k == 2 { commas.1 = i } else if k == 8 { commas.2 = i; break }
            }
            i += 1
        }
        guard k == 8 else { return nil }
        return (commas.1..<commas.2, (commas.0 + 1)..<commas.1)
    }

    static func geometryField(_ m: [UInt8]) -> ArraySlice<UInt8>? { fields(m).map { m[$0.geometry] } }

    /// One look at a frame message on the receiver's hot path: why it cannot be the next frame of
    /// this acquisition (nil when it can) and its sequence number. Byte comparisons when the
    /// geometry fields equal the first frame's (Merlin writes fixed-width fields), else a full parse.
    public func inspect(_ m: [UInt8]) -> (problem: String?, sequence: Int?) {
        if m.count >= messageBytes, m.count > 4, m[0] == 0x4D, m[1] == 0x51, m[2] == 0x31, m[3] == 0x2C,
           let f = Self.fields(m), let g = geometryBytes, m[f.geometry].elementsEqual(g) {
            var seq = 0
            for b in m[f.sequence] {
                guard b >= 0x30 && b <= 0x39, seq < Int(Int32.max) else { return (nil, nil) }
                seq = seq * 10 + Int(b - 0x30)
            }
            return (nil, seq)
        }
        if let bad = mismatch(m) { return (bad, nil) }
        return (nil, Self.sequence(of: m))
    }

    /// Why `message` cannot be the next frame of this acquisition (nil when it can).
    public func mismatch(_ message: [UInt8]) -> String? {
        guard let h = try? MIBHeader.parse(Array(message.prefix(4096)), file: "stream", offset: 0) else {
            return "a frame header does not parse"
        }
        if h.geometryKey != header.geometryKey { return "frame geometry changed (\(h.geometryKey) vs \(header.geometryKey))" }
        if message.count < messageBytes { return "a frame message has \(message.count) bytes, \(messageBytes) expected" }
        return nil
    }

    /// The sequence number in a frame message's header.
    public static func sequence(of message: [UInt8]) -> Int? {
        (try? MIBHeader.parse(Array(message.prefix(64)), file: "stream", offset: 0))?.sequence
    }

    /// Frames waiting in the queue.
    public var depthNow: Int { cond.lock(); defer { cond.unlock() }; return queue.count - head }

    /// Frames handed to the writer.
    public var framesTaken: Int { cond.lock(); defer { cond.unlock() }; return nextIndex }

    /// Appends a frame; blocks while the queue is full. Returns the seconds it waited.
    @discardableResult
    public func push(_ message: [UInt8]) -> Double {
        cond.lock()
        defer { cond.unlock() }
        var waited = 0.0
        if queue.count - head >= capacity {
            framesHeldBack += 1
            let t0 = Date()
            while queue.count - head >= capacity && !ended { cond.wait() }
            waited = Date().timeIntervalSince(t0)
            blockedSeconds += waited
        }
        if ended { return waited }
        if head > 64 && head * 2 > queue.count { queue.removeFirst(head); head = 0 }
        queue.append(message)
        pushed += 1
        cond.broadcast()
        return waited
    }

    /// No more frames will come; `hook` runs once on the writer's reading thread when it has
    /// taken every frame (the recorder completes the provenance there, before the writer's notes).
    public func finish(then hook: (() -> Void)? = nil) {
        cond.lock()
        ended = true
        endHook = hook
        cond.broadcast()
        cond.unlock()
    }

    public func waitForFrame(_ index: Int) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        while pushed <= index && !ended { cond.wait() }
        let ok = pushed > index
        if !ok { runHookLocked() }
        return ok
    }

    private func runHookLocked() {
        if let h = endHook { endHook = nil; cond.unlock(); h(); cond.lock() }
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        cond.lock()
        var message: [UInt8]?
        while nextIndex <= index {
            while queue.count - head == 0 && !ended { cond.wait() }
            if queue.count - head == 0 { break }
            let m = queue[head]
            queue[head] = []
            head += 1
            nextIndex += 1
            cond.broadcast()
            if nextIndex - 1 == index { message = m }
        }
        if message == nil || index >= declaredFrames - 1 {
            while !ended { cond.wait() }
            runHookLocked()
        }
        cond.unlock()
        guard let message else {
            // Never arrived (the stream ended): zeros, as the unwritten chunks read.
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let hb = header.headerBytes
        let n = decoder.payloadBytes
        message.withUnsafeBytes { m in
            let pixels = UnsafeRawBufferPointer(rebasing: m[hb..<(hb + n)])
            if decoder.needsScratch {
                decoder.decode(payload: pixels, into: buffer)
            } else {
                let p = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
                p.copyMemory(from: pixels)
                decoder.decode(payload: UnsafeRawBufferPointer(p), into: p)
            }
        }
        if flipRows {
            let rowBytes = decoder.cols * decoder.outputType.size
            var tmp = [UInt8](repeating: 0, count: rowBytes)
            tmp.withUnsafeMutableBytes { t in
                for r in 0..<(decoder.rows / 2) {
                    let a = buffer.baseAddress! + r * rowBytes
                    let b = buffer.baseAddress! + (decoder.rows - 1 - r) * rowBytes
                    t.baseAddress!.copyMemory(from: a, byteCount: rowBytes)
                    a.copyMemory(from: b, byteCount: rowBytes)
                    b.copyMemory(from: t.baseAddress!, byteCount: rowBytes)
                }
            }
        }
    }
}

extension MIBReader {
    /// The opened acquisition of a live stream: the same dataset, metadata and conventions the
    /// MIB reader gives the `.mib` of that acquisition, with `frames` frames (the count known when
    /// recording starts) read from `source`. The navigation shape follows the reader's rules except
    /// the flyback timing (frame time stamps are not known up front): `--scan-shape`, the header's
    /// ScanX/ScanY or frames in acquisition / frames per trigger when they give `frames`, else a stack.
    public static func liveFile(source: MIBLiveSource, hdr: [UInt8]?, frames: Int, options: OptionValues,
                                url: String) throws -> OpenedFile {
        let hdrFile = try hdr.map { try MIBHdrFile.parse($0, path: url) }
        let (nav, navSource) = try liveScanShape(frames: frames, hdr: hdrFile, options: options, url: url)
        return makeOpenedFile(path: url, h0: source.header, hdr: hdrFile, depth: source.depth, decoder: source.decoder,
                              nav: nav, navSource: navSource, source: source, endTime: nil, files: [], available: frames,
                              options: options, warnings: [], companions: [], handles: [])
    }

    /// A recording read back from its first output (`source`) with the live file's metadata: the
    /// same layout, or the stack of the frames received when the stream ended early (`nav` [N]).
    public static func liveCopy(of live: OpenedFile, nav: [Int], navSource: String, source: FrameSource,
                                options: OptionValues, live liveSource: MIBLiveSource) -> OpenedFile {
        let f = makeOpenedFile(path: live.path, h0: liveSource.header, hdr: nil, depth: liveSource.depth, decoder: liveSource.decoder,
                               nav: nav, navSource: navSource, source: source, endTime: nil, files: [],
                               available: nav.reduce(1, *), options: options, warnings: live.warnings, companions: [], handles: [])
        let ds = f.datasets[0]
        ds.metadata = live.datasets[0].metadata
        if nav.count != 2 { ds.metadata.scanShape = nil; ds.metadata.scanShapeSource = nil }
        f.original = live.original
        return f
    }

    static func liveScanShape(frames: Int, hdr: MIBHdrFile?, options: OptionValues, url: String) throws -> ([Int], String) {
        if let s = try options.ints("scan-shape") {
            guard s.reduce(1, *) == frames else {
                throw EMError(.usage, file: url, "--scan-shape \(s.map(String.init).joined(separator: ",")) needs \(s.reduce(1, *)) frames, the recording takes \(frames)")
            }
            return (s, "--scan-shape")
        }
        if let hdr, let x = hdr.int("ScanX") ?? hdr.int("Scan X"), let y = hdr.int("ScanY") ?? hdr.int("Scan Y"), x > 0, y > 0, x * y == frames {
            return ([y, x], ".hdr ScanX/ScanY")
        }
        if let n = hdr?.int("Frames in Acquisition"), let fpt = hdr?.int("Frames per Trigger"), n == frames, fpt > 1, n % fpt == 0, n / fpt > 1 {
            return ([n / fpt, fpt], ".hdr frames in acquisition / frames per trigger")
        }
        return ([frames], "frame count (no scan shape stated)")
    }
}
