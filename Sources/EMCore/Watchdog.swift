import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ends the process with the one-line error when reading stops making progress: HDF5 1.10 can
/// loop forever on damaged metadata, and emconv must never hang. Armed while a reader parses
/// headers (60 s without a completed read) and while the pipeline reads data (10 min without a
/// completed chunk); every completed read restarts the countdown, so only a stuck call fires it.
/// A spinning call fires it sooner, told from slow storage by the CPU time of the armed thread
/// since its last completed read: while reading the structure, 3 s of CPU, or 0.5 s of CPU within
/// 4 s (a thread waiting for storage uses none; a metadata call of a sound file takes
/// milliseconds); while reading data, 30 s of CPU (one chunk never needs that much).
///
/// It also bounds the process's memory: a damaged HDF5 structure can make libhdf5 allocate
/// gigabytes within the time limits (6.7 GB in 4 s, fuzz findings); once anything is armed, the
/// resident size is read every 100 ms and above ``memoryCeiling`` the process ends the same way.
/// Reading a structure may also be armed with a growth limit (``structureGrowth``): while no
/// pipeline declares buffers, the resident size may then grow by at most that much since arming,
/// read every 20 ms, so such a file ends far below the ceiling.
///
/// Each thread arms its own countdown (two conversions in one process are watched separately).
/// Firing ends the whole process, so only the CLI turns the watchdog on (``enable()``).
public final class Watchdog: @unchecked Sendable {
    private struct Entry {
        var deadline: Double
        var seconds: Double
        var activity: String
        /// CPU-time clock of the armed thread, and completed reads since arming.
        var clock: clockid_t?
        var beats = 0
        /// Resident bytes the process may reach while this is armed (its growth limit), if any.
        var memoryLimit: Int?
    }

    private let lock = NSLock()
    private var entries: [UInt: Entry] = [:]
    private var enabled = false
    private var started = false
    /// Bytes ``allow(_:)`` added to the memory ceiling.
    private var allowance = 0

    /// The process-wide watchdog.
    public static let shared = Watchdog()

    /// `EMCONV_WATCHDOG_SECONDS` shortens both limits (tests).
    static let override: Double? = ProcessInfo.processInfo.environment["EMCONV_WATCHDOG_SECONDS"].flatMap(Double.init)
    public static var headerSeconds: Double { override ?? 60 }
    public static var chunkSeconds: Double { override ?? 600 }
    /// CPU seconds the armed thread may spin without completing a read of the structure.
    public static var spinSeconds: Double { min(override ?? 3, 3) }

    /// Resident bytes the process may reach besides the buffers running pipelines declare
    /// (``allow(_:)``): `EMCONV_MAX_RSS` (bytes, or with K/M/G), else 1 GiB plus 16 MiB per core
    /// (emconv reads a file's structure in far less; its conversions stay below 256 MiB on two
    /// cores with 256 x 256 frames).
    public static let memoryCeiling: Int = {
        if let s = ProcessInfo.processInfo.environment["EMCONV_MAX_RSS"], let v = MemoryBudget.parseBytes(s), v > 0 { return v }
        return (1 << 30) + ProcessInfo.processInfo.activeProcessorCount * (16 << 20)
    }()

    /// Growth of the resident size allowed while a file's structure is read: the memory budget
    /// (the largest buffer sized from a file) plus 128 MiB. Sound files' structures take a few MB
    /// (at most 10 MB over the 35 MB a run starts with, over the shared instrument files).
    public static var structureGrowth: Int { min(MemoryBudget.maxAllocation, 1 << 50) + (128 << 20) }

    /// Raises the memory ceiling by `bytes` (a pipeline's chunk buffers, which grow with the frame
    /// size and the threads) until the returned closure is called.
    public static func allow(_ bytes: Int) -> () -> Void {
        let bytes = min(max(0, bytes), 1 << 50)
        shared.lock.lock()
        shared.allowance += bytes
        shared.lock.unlock()
        return {
            shared.lock.lock()
            shared.allowance -= bytes
            shared.lock.unlock()
        }
    }

    /// CPU time used by the thread of `clock`, in seconds.
    private static func cpuSeconds(_ clock: clockid_t) -> Double {
        var ts = timespec()
        guard clock_gettime(clock, &ts) == 0 else { return 0 }
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private static var thread: UInt { UInt(bitPattern: Int(bitPattern: pthread_self())) }

    /// Turns the watchdog on for this process (the CLI does; a program embedding EMConvKit decides
    /// for itself, since firing ends the process).
    public static func enable() { shared.setEnabled() }

    /// Arms (or re-arms) this thread's countdown: `seconds` from now, for `activity`; with
    /// `growth`, the resident size may also grow by at most that many bytes from now while no
    /// pipeline declares buffers (``allow(_:)``).
    public static func arm(_ seconds: Double, _ activity: String, growth: Int? = nil) {
        shared.arm(thread, seconds, activity, growth: growth)
    }

    /// Progress on this thread: a read completed. Restarts its countdown when armed, so the limit is
    /// the time without any progress (a long but sound pass over a big file is never stopped).
    public static func beat() { shared.beat(thread) }

    public static func disarm() { shared.disarm(thread) }

    private func setEnabled() {
        lock.lock()
        enabled = true
        lock.unlock()
    }

    private func arm(_ t: UInt, _ seconds: Double, _ activity: String, growth: Int?) {
        lock.lock()
        defer { lock.unlock() }
        guard enabled else { return }
        var clock = clockid_t()
        let haveClock = pthread_getcpuclockid(pthread_self(), &clock) == 0
        let limit = growth.flatMap { g in ProcessMemory.bytes("VmRSS").map { $0 + g } }
        entries[t] = Entry(deadline: Date().timeIntervalSince1970 + seconds, seconds: seconds, activity: activity,
                           clock: haveClock ? clock : nil, beats: (entries[t]?.beats ?? 0) &+ 1, memoryLimit: limit)
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
            e.beats &+= 1
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
        // Per thread: beats seen, and the thread's CPU time and the wall time when they changed.
        var seen: [UInt: (beats: Int, cpu: Double, wall: Double)] = [:]
        var tick = 0
        while true {
            // Every 100 ms; every 20 ms while a structure's growth limit counts, which it does
            // while no pipeline declares buffers (another thread's conversion would grow the
            // process for its own good reasons).
            usleep(20_000)
            tick &+= 1
            lock.lock()
            let limited = allowance == 0 ? entries.values.compactMap { e in e.memoryLimit.map { (limit: $0, activity: e.activity) } } : []
            guard !limited.isEmpty || tick % 5 == 0 else { lock.unlock(); continue }
            let now = Date().timeIntervalSince1970
            let current = entries
            var ceiling = Watchdog.memoryCeiling + allowance
            lock.unlock()
            var activity = current.values.first?.activity ?? "converting", setting = "EMCONV_MAX_RSS"
            if let tight = limited.min(by: { $0.limit < $1.limit }), tight.limit < ceiling {
                (ceiling, activity, setting) = (tight.limit, tight.activity, "EMCONV_MAX_ALLOCATION")
            }
            if let rss = ProcessMemory.bytes("VmRSS"), rss > ceiling {
                fire(activity, "used more than \(ceiling >> 20) MiB of memory: the file is damaged (it may make a library allocate without bound; \(setting) allows more)")
            }
            if let expired = current.values.first(where: { $0.deadline < now }) { fire(expired.activity) }
            seen = seen.filter { current[$0.key] != nil }
            for (t, e) in current {
                guard let clock = e.clock else { continue }
                let cpu = Watchdog.cpuSeconds(clock)
                guard let s = seen[t], s.beats == e.beats else { seen[t] = (e.beats, cpu, now); continue }
                let spent = cpu - s.cpu
                let spinning = e.seconds < Watchdog.chunkSeconds
                    ? spent >= Watchdog.spinSeconds || (now - s.wall >= 4 && spent >= 0.5)
                    : spent >= 30
                if spinning { fire(e.activity) }
            }
        }
    }

    private func fire(_ activity: String, _ what: String = "made no progress for too long: the file is damaged (it may loop a library)") -> Never {
        ActiveWork.shared.removeOutputs()
        let inputs = ActiveWork.shared.inputNames
        var msg = "emconv: error: "
        if !inputs.isEmpty { msg += inputs.joined(separator: ", ") + ": " }
        msg += activity + " " + what + "\n"
        _ = msg.withCString { write(2, $0, strlen($0)) }
        _exit(65)
    }
}
