import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `emconv batch --watch`: converts each acquisition of a folder once it is complete, as the
/// files land. An item is complete when its files (the primary and every companion: `.hdr`,
/// further files of a MIB series) have kept the same sizes and modification times for `settle`
/// seconds; a MIB acquisition also needs its `.hdr`. Each item converts once: what the report
/// already lists as ok or skipped and existing outputs are never converted again, so a
/// restart, also after `kill -9`, resumes where the report ends (an output renamed into place just
/// before the kill is found and counted as done; a partial one was never renamed and converts again).
public final class BatchWatcher: @unchecked Sendable {
    public struct Config: Sendable {
        /// Seconds an item's files must stay unchanged.
        public var settle = 5.0
        /// Seconds between scans of the folder.
        public var poll = 2.0
        /// Exit once every acquisition found is converted and nothing is settling.
        public var once = false
        public init() {}
    }

    let config: Config
    /// Inputs done (from the report and this run).
    private var done: Set<String>
    /// Per input: the files' signature and since when it has been unchanged.
    private var seen: [String: (signature: String, since: Date)] = [:]

    /// `report` entries of earlier runs mark their inputs as done.
    public init(config: Config, previous: [BatchEntry]) {
        self.config = config
        // Failed items (also those an interruption stopped) are tried again once per run.
        done = Set(previous.filter { $0.index >= 0 && $0.status != .failed }.map { ($0.input as NSString).standardizingPath })
    }

    /// Sizes and modification times of the item's files; nil while one is missing.
    static func signature(_ item: BatchItem) -> String? {
        var parts: [String] = []
        for p in [item.input] + item.companions {
            var st = stat()
            guard stat(p, &st) == 0 else { return nil }
            parts.append("\(p):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)")
            // A store folder (.zspy) changes below its top level: its files' total size and newest time.
            if (st.st_mode & S_IFMT) == S_IFDIR, BatchPlanner.isStoreDirectory(p) {
                let (bytes, newest) = BatchPlanner.treeState(p)
                parts.append("tree:\(bytes):\(newest)")
            }
        }
        return parts.joined(separator: "|")
    }

    /// Why the item is not ready yet (nil: ready to convert).
    func waiting(_ item: BatchItem, now: Date) -> String? {
        if item.format == "mib" && !item.companions.contains(where: { $0.lowercased().hasSuffix(".hdr") }) {
            return "waiting for its .hdr"
        }
        guard let sig = Self.signature(item) else { return "a file disappeared" }
        let key = (item.input as NSString).standardizingPath
        if let old = seen[key], old.signature == sig {
            return now.timeIntervalSince(old.since) >= config.settle ? nil : "settling"
        }
        seen[key] = (sig, now)
        return "changing"
    }

    /// Items ready now, in plan order; `pending` counts the items still settling.
    public func ready(_ items: [BatchItem], now: Date = Date()) -> (ready: [BatchItem], pending: Int) {
        var out: [BatchItem] = []
        var pending = 0
        for item in items {
            let key = (item.input as NSString).standardizingPath
            if done.contains(key) { continue }
            if waiting(item, now: now) == nil { out.append(item) } else { pending += 1 }
        }
        return (out, pending)
    }

    public func markDone(_ inputs: [String]) {
        for i in inputs { done.insert((i as NSString).standardizingPath) }
    }

    /// Runs until SIGINT/SIGTERM (returns the signal) or, with `once`, until idle (returns nil).
    /// `plan` scans the folder; `convert` converts a list of ready items (the batch runner) and
    /// returns its entries and the signal that interrupted it, if any.
    public func run(plan: () throws -> [BatchItem], convert: ([BatchItem]) -> ([BatchEntry], Int32?)) throws -> Int32? {
        // A plain handler, set again after every conversion round: the batch runner sets these
        // signals to SIG_IGN for its own dispatch sources, which would silence a source of ours.
        func listen() {
            for sig in [SIGINT, SIGTERM] { signal(sig, { watchStopSignal = $0 }) }
        }
        defer { signal(SIGINT, SIG_DFL); signal(SIGTERM, SIG_DFL) }
        watchStopSignal = 0
        listen()
        var scans = 0
        while true {
            if watchStopSignal != 0 { return watchStopSignal }
            let items = try plan()
            let (ready, pending) = self.ready(items)
            scans += 1
            if !ready.isEmpty {
                let (entries, sig) = convert(ready)
                listen()
                markDone(entries.map(\.input))
                if let sig { return sig }
                continue
            }
            if config.once && pending == 0 && scans > 1 { return nil }
            // Sleep in short slices so a signal ends the wait at once.
            let until = Date().addingTimeInterval(config.poll)
            while Date() < until {
                if watchStopSignal != 0 { return watchStopSignal }
                usleep(50_000)
            }
        }
    }
}

/// The signal that asked `batch --watch` to stop (0: none); set by its signal handler.
nonisolated(unsafe) var watchStopSignal: Int32 = 0
