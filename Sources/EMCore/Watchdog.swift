import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ends the process with the one-line error when reading stops making progress: HDF5 1.10 can
/// loop forever on damaged metadata, and emconv must never hang. Armed while a reader parses
/// headers (60 s without a completed read) and while the pipeline reads data (10 min without a
/// completed chunk); every completed read restarts the countdown, so only a stuck call fires it.
///
/// Each thread arms its own countdown (two conversions in one process are watched separately).
/// Firing ends the whole process, so only the CLI turns the watchdog on (``enable()``).
public final class Watchdog: @unchecked Sendable {
    private struct Entry {
        var deadline: Double
        var seconds: Double
        var activity: String
    }

    private let lock = NSLock()
    private var entries: [UInt: Entry] = [:]
    private var enabled = false
    private var started = false

    /// The process-wide watchdog.
    public static let shared = Watchdog()

    /// `EMCONV_WATCHDOG_SECONDS` shortens both limits (tests).
    static let override: Double? = ProcessInfo.processInfo.environment["EMCONV_WATCHDOG_SECONDS"].flatMap(Double.init)
    public static var headerSeconds: Double { override ?? 60 }
    public static var chunkSeconds: Double { override ?? 600 }

    private static var thread: UInt { UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Turns the watchdog on for this process (the CLI does; a program embedding EMConvKit decides
    /// for itself, since firing ends the process).
    public static func enable() { shared.setEnabled() }

    /// Arms (or re-arms) this thread's countdown: `seconds` from now, for `activity`.
    public static func arm(_ seconds: Double, _ activity: String) { shared.arm(thread, seconds, activity) }

    /// Progress on this thread: a read completed. Restarts its countdown when armed, so the limit is
    /// the time without any progress (a long but sound pass over a big file is never stopped).
    public static func beat() { shared.beat(thread) }

    public static func disarm() { shared.disarm(thread) }

    private func setEnabled() {
        lock.lock()
        enabled = true
        lock.unlock()
    }

    private func arm(_ t: UInt, _ seconds: Double, _ activity: String) {
        lock.lock()
        defer { lock.unlock() }
        guard enabled else { return }
        entries[t] = Entry(deadline: Date().timeIntervalSince1970 + seconds, seconds: seconds, activity: activity)
        if !started {
            started = true
            let th = Thread { [self] in self.loop() }
            th.stackSize = 1 << 18
            th.start()
        }
    }

    private func beat(_ t: UInt) {
        lock.lock()
        if var e = entries[t] {
            e.deadline = Date().timeIntervalSince1970 + e.seconds
            entries[t] = e
        }
        lock.unlock()
    }

    private func disarm(_ t: UInt) {
        lock.lock()
        entries[t] = nil
        lock.unlock()
    }

    private func loop() {
        while true {
            sleep(1)
            lock.lock()
            let now = Date().timeIntervalSince1970
            let expired = entries.values.first { $0.deadline < now }
            lock.unlock()
            if let expired { fire(expired.activity) }
        }
    }

    private func fire(_ activity: String) -> Never {
        ActiveWork.shared.removeOutputs()
        let inputs = ActiveWork.shared.inputNames
        var msg = "emconv: error: "
        if !inputs.isEmpty { msg += inputs.joined(separator: ", ") + ": " }
        msg += activity + " made no progress for too long: the file is damaged (it may loop a library)\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
        _exit(65)
    }
}
