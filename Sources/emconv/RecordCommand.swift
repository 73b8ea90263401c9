import ArgumentParser
import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM during reception; read by the receive loop.
private final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// The signal sources of the reception phase (cancelled once, from either thread).
private final class SignalSources: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [DispatchSourceSignal]
    init(_ list: [DispatchSourceSignal]) { self.list = list }
    func cancel() { lock.lock(); list.forEach { $0.cancel() }; list = []; lock.unlock() }
}

struct Record: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            abstract: "Record one acquisition from a Merlin detector's data port (TCP) into NeXus (or any output format).",
            discussion: """
            Connects to merlin://HOST[:PORT] (data port, default 6342), reads the stream
            ('MPX,' + length, then the acquisition header or one frame), and stops at
            the end of one acquisition: --stop-after N, else the product of
            --scan-shape, else the header's 'Frames in Acquisition'. Frames are written
            as they arrive: a receiver thread hands them through a bounded queue
            (--queue-frames; default 128 MiB of frames, at most 1024) to the NeXus
            writer's pipeline, so the output equals 'emconv convert' of that
            acquisition's .mib (same reader code, NXem layout and scan-shape rules,
            except the flyback timing: give --scan-shape). A full queue holds the sender
            back (TCP) and is said live; gaps in the frame sequence numbers are counted
            as frames the detector dropped. Without any frame count the stream is
            spooled to '.OUT.live.mib' and converted at the end (--keep-spool keeps it).

            If the stream closes, stalls longer than --timeout, turns corrupt, or Ctrl-C
            is pressed before the acquisition is complete, the output still holds every
            complete frame (as a stack of N frames, with a warning) and the exit status is
            75. The acquisition header and the frame headers are kept in the original
            metadata (live_stream).

            EXAMPLES
              emconv record merlin://127.0.0.1 -o scan.nxs
              emconv record merlin://merlin-pc:6342 -o scan.nxs --scan-shape 256,256 \\
                     --timeout 30
              emconv record merlin://127.0.0.1:6342 -o dark.nxs --stop-after 100 \\
                     --progress json
              emconv record merlin://merlin-pc -o scan.nxs --scan-shape 256,256 \\
                     --control merlin-pc:6341

            EXIT STATUS
              0 complete; 75 stream ended early (output holds the frames received; none
              received: no output); 64 usage; 65 the first message is corrupt; 66 cannot
              connect, or the Merlin refused a --control command; 73 output exists; 74
              cannot write.
            """)
    }

    @Argument(help: ArgumentHelp("Data port address.", valueName: "merlin://HOST[:PORT]"))
    var url: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output file (.nxs, .h5, .zspy, .zspy.zip, .tif).", valueName: "file"))
    var output: String

    @Option(name: .customLong("stop-after"), help: "Stop after N frames (default: --scan-shape, else the acquisition header's frame count).")
    var frames: Int?

    @Option(name: .long, help: "Seconds without data before giving up (the output keeps what arrived).")
    var timeout: Double = 10

    @Flag(name: .long, help: "Keep the spooled .mib/.hdr of the stream beside the output (only when no frame count is known).")
    var keepSpool = false

    @Option(name: .long, help: ArgumentHelp("Merlin command port: send NUMFRAMESTOACQUIRE (with --stop-after or --scan-shape) and STARTACQUISITION after connecting, STOPACQUISITION when reception ends early.", valueName: "HOST[:6341]"))
    var control: String?

    @Option(name: .long, help: ArgumentHelp("Frames the queue between socket and writer holds (default: 128 MiB of frames, at most 1024).", valueName: "n"))
    var queueFrames: Int?

    @OptionGroup var conversion: ConversionOptionGroup
    @OptionGroup var log: OutputOptions

    @Flag(name: .long, help: "Print a JSON result object.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Progress display: auto (a live line on a terminal), json (NDJSON on stderr), none.", valueName: "mode"))
    var progress: String = "auto"

    func validate() throws {
        guard ["auto", "json", "none"].contains(progress) else { throw ValidationError("--progress takes auto, json or none") }
        if let f = frames, f < 1 { throw ValidationError("--stop-after must be at least 1") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let q = queueFrames, q < 2 { throw ValidationError("--queue-frames must be at least 2") }
    }

    func run() throws {
        let fa = try formatArguments()
        var c = ConversionOptions(commandLine: Tools.commandLine)
        if let t = conversion.threads { c.threads = t }
        c.format = conversion.format
        c.overwrite = conversion.overwrite
        c.read = fa.read
        c.write = fa.write
        c.sidecar = try conversion.sidecar()
        c.preferSidecar = conversion.preferSidecar
        let terminal = TerminalProgress(enabled: progress == "auto" && !log.quiet && !json)
        c.progress = progress == "json" ? JSONProgress() : terminal

        // Ctrl-C / SIGTERM end reception; what arrived is still written.
        let stop = StopFlag()
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = SignalSources([SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { stop.set() }
            s.resume()
            return s
        })
        defer { sources.cancel() }

        var o = MerlinRecorder.Options(url: url, output: output, conversion: c)
        o.frames = frames
        o.timeout = timeout
        o.keepSpool = keepSpool
        o.queueFrames = queueFrames
        o.control = control
        o.shouldStop = { stop.isSet }
        // During the conversion a signal removes the partial output, as for convert.
        o.receptionEnded = {
            sources.cancel()
            ActiveWork.installSignalHandlers()
        }
        let mode = log.quiet ? "none" : progress
        let tty = isatty(2) != 0
        let saidSlow = StopFlag()
        o.progress = { p in
            if mode == "json" {
                let line = "{\"event\":\"receive\",\"frames_received\":\(p.framesReceived),\"frames_written\":\(p.framesWritten)," +
                    "\"frames_target\":\(p.framesTarget.map(String.init) ?? "null"),\"bytes_received\":\(p.bytesReceived)," +
                    "\"frames_per_second\":\(String(format: "%.1f", p.framesPerSecond)),\"mb_per_second\":\(String(format: "%.2f", p.megabytesPerSecond))," +
                    "\"queue_depth\":\(p.queueDepth),\"queue_capacity\":\(p.queueCapacity),\"held_back\":\(p.heldBack)," +
                    "\"held_back_seconds\":\(String(format: "%.2f", p.heldBackSeconds)),\"frames_dropped\":\(p.framesDropped)," +
                    "\"seconds\":\(String(format: "%.3f", p.seconds))}\n"
                FileHandle.standardError.write(Data(line.utf8))
            } else if mode == "auto" && tty {
                let of = p.framesTarget.map { "/\($0)" } ?? ""
                let queue = p.queueCapacity > 0 ? ", written \(p.framesWritten), queue \(p.queueDepth)/\(p.queueCapacity)" : ""
                let slow = p.heldBack ? ", OUTPUT SLOWER THAN THE STREAM" : ""
                FileHandle.standardError.write(Data(String(format: "\r  receiving: %d%@ frames, %.0f frames/s, %.1f MB/s%@%@%@   ",
                                                           p.framesReceived, of, p.framesPerSecond, p.megabytesPerSecond, queue,
                                                           p.framesDropped > 0 ? ", \(p.framesDropped) dropped by the detector" : "", slow).utf8))
            }
            // Said once, live, in every mode but --quiet: the disk cannot keep up with the detector.
            if p.heldBack && !saidSlow.isSet && mode != "none" {
                saidSlow.set()
                if mode != "json" {
                    let text = ((mode == "auto" && tty) ? "\n" : "") + "emconv: warning: the output is slower than the stream: the queue of \(p.queueCapacity) frames is full and the detector is being held back\n"
                    FileHandle.standardError.write(Data(text.utf8))
                }
            }
        }
        let r = try MerlinRecorder.record(o)
        if mode == "auto" && tty { FileHandle.standardError.write(Data("\n".utf8)) }
        terminal.finish()
        let cr = r.conversion
        if json {
            Tools.printJSON(.object([
                ("input", .string(r.url)), ("output", .string(cr.output)), ("format", .string(cr.format)),
                ("frames_received", .int(Int64(r.framesReceived))), ("bytes_received", .int(r.bytesReceived)),
                ("receive_seconds", .double((r.receiveSeconds * 1000).rounded() / 1000)),
                ("complete", .bool(r.endedEarly == nil)), ("ended_early", r.endedEarly.map { .string($0) } ?? .null),
                ("written_as_received", .bool(r.streamed)), ("frames_dropped", .int(Int64(r.framesDropped))),
                ("held_back_seconds", .double((r.heldBackSeconds * 1000).rounded() / 1000)),
                ("queue_capacity", .int(Int64(r.queueCapacity))),
                ("output_bytes", .int(cr.outputBytes)), ("seconds", .double((cr.seconds * 1000).rounded() / 1000)),
                ("warnings", .array(cr.warnings.map { .string($0) })),
            ]))
        } else {
            for w in cr.warnings { log.warn(w) }
            log.info("wrote \(cr.output): \(r.framesReceived) frames (\(human(r.bytesReceived)) received in \(String(format: "%.2f", r.receiveSeconds)) s)")
        }
        if let why = r.endedEarly {
            throw EMError(.streamEndedEarly, file: url, "stream ended early (\(why)); \(output) holds the \(r.framesReceived) complete frames received")
        }
    }
}
