import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ends the process with the one-line error when reading stops making progress: HDF5 1.10 can
/// loop forever on damaged metadata, and emconv must never hang. Armed while a reader parses
/// headers (60 s without a completed read) and while the pipeline reads data (10 min without a
/// completed chunk); every completed read restarts the countdown, so only a stuck call fires it.
public enum Watchdog {
    nonisolated(unsafe) private static var deadline: Double = 0      // seconds since 1970, 0 = disarmed
    nonisolated(unsafe) private static var what: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var armedSeconds: Double = 0
    private static let lock = NSLock()
    private static let start: Void = {
        let t = Thread {
            while true {
                sleep(1)
                lock.lock()
                let d = deadline
                lock.unlock()
                if d > 0 && Date().timeIntervalSince1970 > d { fire() }
            }
        }
        t.stackSize = 1 << 18
        t.start()
    }()

    /// `EMCONV_WATCHDOG_SECONDS` shortens both limits (tests).
    static let override: Double? = ProcessInfo.processInfo.environment["EMCONV_WATCHDOG_SECONDS"].flatMap(Double.init)
    public static var headerSeconds: Double { override ?? 60 }
    public static var chunkSeconds: Double { override ?? 600 }

    nonisolated(unsafe) private static var enabled = false

    /// Turns the watchdog on for this process (the CLI does; a program embedding EMConvKit decides
    /// for itself, since firing ends the process).
    public static func enable() {
        lock.lock()
        enabled = true
        lock.unlock()
    }

    /// Arms (or re-arms) the watchdog: `seconds` from now, for `activity` ("reading the file's structure").
    public static func arm(_ seconds: Double, _ activity: String) {
        lock.lock()
        let on = enabled
        lock.unlock()
        guard on else { return }
        _ = start
        lock.lock()
        deadline = Date().timeIntervalSince1970 + seconds
        armedSeconds = seconds
        let old = what
        what = strdup(activity)
        lock.unlock()
        if let old { free(old) }
    }

    /// Progress: a read completed. Restarts the countdown when armed, so the limit is the time
    /// without any progress (a long but sound pass over a big file is never stopped).
    public static func beat() {
        lock.lock()
        if deadline > 0 { deadline = Date().timeIntervalSince1970 + armedSeconds }
        lock.unlock()
    }

    public static func disarm() {
        lock.lock()
        deadline = 0
        lock.unlock()
    }

    private static func fire() {
        if let p = TempFiles.current { unlink(p) }
        var msg = "emconv: error: "
        if let i = TempFiles.input { msg += String(cString: i) + ": " }
        msg += (what.map { String(cString: $0) } ?? "reading") + " made no progress for too long: the file is damaged (it may loop a library)\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
        _exit(65)
    }
}
