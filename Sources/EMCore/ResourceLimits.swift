import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This process's memory as the kernel counts it (/proc/self/status).
public enum ProcessMemory {
    /// The field `name` (`VmRSS`, `VmData`, …) in bytes, nil when unknown.
    public static func bytes(_ name: String) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return nil }
        return kb * 1024
    }
}

/// The memory budget for what an input file declares: no single buffer sized from a file
/// (a frame, a chunk, an attribute, a whole small dataset, a decoding block) may exceed it.
/// `EMCONV_MAX_ALLOCATION` (bytes, or with a K/M/G suffix) changes it for unusual inputs.
public enum MemoryBudget {
    /// Default 256 MiB: far above any detector frame (a 4096 x 4096 float32 image is 64 MiB).
    public static let maxAllocation: Int = {
        guard let s = ProcessInfo.processInfo.environment["EMCONV_MAX_ALLOCATION"], let v = parseBytes(s), v > 0 else {
            return 256 << 20
        }
        return v
    }()

    /// `1048576`, `512K`, `300M`, `2G` → bytes.
    public static func parseBytes(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces).uppercased()
        let shifts: [Character: Int] = ["K": 10, "M": 20, "G": 30]
        if let last = t.last, let sh = shifts[last], let n = Int(t.dropLast()), n >= 0, n < (1 << (62 - sh)) { return n << sh }
        return Int(t)
    }

    /// Throws a one-line `.badInput` error unless `bytes` (nil: the declared size overflows)
    /// fits the budget; when `stored` is given (bytes the file really holds for it), the
    /// declared size must also be plausible for it (at most `maxRatio` times larger, plus
    /// `slack`: compression and unwritten fill values are allowed, a 10^12-element claim
    /// backed by a few bytes is not).
    /// `budget: false` checks only the plausibility (data read piece by piece).
    public static func check(_ bytes: Int?, what: String, file: String?, at location: String?,
                             stored: Int64? = nil, maxRatio: Int64 = 1024, slack: Int64 = 1 << 20, budget: Bool = true) throws {
        guard let bytes, bytes >= 0 else {
            throw EMError(.badInput, file: file, at: location, "\(what): the declared size overflows (damaged file)")
        }
        if budget, bytes > maxAllocation {
            throw EMError(.badInput, file: file, at: location,
                          "\(what): declares \(bytes) bytes, more than the memory budget of \(maxAllocation) bytes (damaged file, or set EMCONV_MAX_ALLOCATION)")
        }
        if let stored, stored >= 0 {
            let (limit, o) = stored.multipliedReportingOverflow(by: maxRatio)
            if !o, Int64(bytes) > limit + slack {
                throw EMError(.badInput, file: file, at: location,
                              "\(what): declares \(bytes) bytes but the file stores only \(stored) bytes for it (damaged file)")
            }
        }
    }

    /// Product of `factors`, nil on overflow (a declared shape times an element size).
    public static func product(_ factors: [Int]) -> Int? {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (r, o) = p.multipliedReportingOverflow(by: f)
            if o { return nil }
            p = r
        }
        return p
    }

    /// Before a conversion, for datasets whose sizes are declared apart from their storage
    /// (sources that report their stored size: HDF5): every frame the writers will allocate fits
    /// the budget, and the declared size is plausible for what the input stores (up to 65536:1,
    /// beyond any real compression: a 10^12-element claim over an empty file is refused, not
    /// streamed). Other readers check their sizes against the file size themselves. For every
    /// dataset: frames with a dimension of length 0 are refused unless there are no frames
    /// either (a count of empty frames is not bounded by any stored size).
    /// `framesOnly`: only the frames against the budget (before anything reads one; the whole
    /// dataset's plausibility comes after the output's free space is checked).
    public static func checkDeclared(_ file: OpenedFile, framesOnly: Bool = false) throws {
        for d in file.datasets {
            // Frames of no values but (many) frames: reading them one by one would never end (a
            // damaged NeXus file declared 7.2e16 frames of 0 x 128 values).
            if d.frameShape.contains(0), MemoryBudget.product(Array(d.shape.dropLast(d.frameRank))) != 0 {
                throw EMError(.badInput, file: file.path, "dataset '\(d.name)' (\(d.shape.map(String.init).joined(separator: " x "))) holds no values: its frames have a dimension of length 0 (empty or damaged file)")
            }
            guard let reporting = d.source as? StoredSizeReporting else { continue }
            try check(product(d.frameShape + [d.elementType.size]), what: "one frame of dataset '\(d.name)' (\(d.frameShape.map(String.init).joined(separator: " x ")) \(d.elementType.rawValue))",
                      file: file.path, at: nil)
            if !framesOnly, let stored = reporting.storedBytes {
                try check(product(d.shape + [d.elementType.size]), what: "dataset '\(d.name)' (\(d.shape.map(String.init).joined(separator: " x ")) \(d.elementType.rawValue))",
                          file: file.path, at: nil, stored: stored, maxRatio: 1 << 16, slack: 16 << 20, budget: false)
            }
        }
    }
}

/// Sources that know how many bytes the input really stores for their dataset (HDF5: the
/// allocated, possibly compressed storage), shown by `info` beside the declared size.
public protocol StoredSizeReporting {
    var storedBytes: Int64? { get }
}

/// Free space of the output's filesystem against the size a conversion will write.
public enum OutputSpace {
    /// Compression assumed at best when estimating a compressed output (64:1).
    public static let assumedBestRatio: Int64 = 64

    /// Estimated bytes of the output: the declared sizes of all datasets uncompressed; with
    /// compression, the larger of 1/64 of that and the input's stored size (never more than
    /// declared). An estimate meant to refuse the impossible, not to predict exactly.
    public static func estimate(_ file: OpenedFile, compressed: Bool) -> Int64 {
        var total: Int64 = 0
        for d in file.datasets {
            let declared = d.byteCount < 0 ? Int64.max / 4 : d.byteCount
            var e = declared
            if compressed {
                let stored = (d.source as? StoredSizeReporting)?.storedBytes ?? 0
                e = min(declared, max(declared / assumedBestRatio, stored))
            }
            total = total.addingReportingOverflow(e).overflow ? Int64.max / 2 : total + e
        }
        return total
    }

    /// Free bytes available to this user on the filesystem holding `path` (nil if unknown).
    public static func freeBytes(near path: String) -> Int64? {
        var dir = (path as NSString).deletingLastPathComponent
        if dir.isEmpty { dir = "." }
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else { return nil }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    /// Throws `.writeError` (exit 74) naming both numbers when the output's filesystem has
    /// less free space than `estimatedBytes`.
    public static func ensureRoom(estimatedBytes: Int64, forOutput output: String) throws {
        guard let free = freeBytes(near: output), estimatedBytes > free else { return }
        throw EMError(.writeError, file: output,
                      "the output needs about \(estimatedBytes) bytes but its filesystem has only \(free) bytes free")
    }
}
