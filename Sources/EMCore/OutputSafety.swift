import Foundation
#if canImport(Glibc)
import Glibc
#endif

#if os(Linux)
/// glibc's renameat2 (declared only under _GNU_SOURCE, so not imported).
@_silgen_name("renameat2") private func c_renameat2(_ olddirfd: Int32, _ oldpath: UnsafePointer<CChar>, _ newdirfd: Int32,
                                                     _ newpath: UnsafePointer<CChar>, _ flags: UInt32) -> Int32
#endif

/// What a conversion may write and replace: outputs stay inside their output folder, an input
/// (or a companion the reader used) is never replaced, a folder is replaced only when it holds
/// nothing but a zarr store, the finished output never silently replaces a concurrent one, and
/// temporaries of conversions that died are cleaned up.
public enum OutputSafety {
    /// Device and inode: the identity of a file whatever path names it.
    public struct FileID: Hashable, Sendable {
        public var device: UInt64
        public var inode: UInt64

        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }
    }

    /// The identity of the file `path` names (through symbolic links), or nil if there is none.
    public static func fileID(_ path: String) -> FileID? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }

    // MARK: Confinement

    /// `path` made absolute against `cwd`, with `.`, `..` and repeated slashes resolved by name.
    public static func lexicallyAbsolute(_ path: String, cwd: String = FileManager.default.currentDirectoryPath) -> String {
        let full = path.hasPrefix("/") ? path : cwd + "/" + path
        var parts: [Substring] = []
        for c in full.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// nil when `path` lies strictly inside the folder `root`: by name, and for the part of it that
    /// exists, also after following symbolic links; otherwise the reason.
    public static func escape(of path: String, from root: String) -> String? {
        let r = lexicallyAbsolute(root), p = lexicallyAbsolute(path)
        let prefix = r == "/" ? "/" : r + "/"
        guard p.hasPrefix(prefix), p.count > prefix.count else { return "lies outside the output folder \(root)" }
        // An existing folder on the way may be a symbolic link out of the output folder.
        guard let realRoot = realPath(r) else { return nil }
        var a = (p as NSString).deletingLastPathComponent
        while a.count > r.count, realPath(a) == nil { a = (a as NSString).deletingLastPathComponent }
        guard let ra = realPath(a) else { return nil }
        if ra != realRoot && !ra.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") {
            return "lies outside the output folder \(root) (\(a) leads to \(ra))"
        }
        return nil
    }

    /// The path with every symbolic link resolved (realpath), or nil if it does not exist.
    public static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    // MARK: What may be replaced

    /// Refuses an output that is one of the files the reader used (the input or a companion), or
    /// a folder holding one of them, compared by device and inode (any path, link or hard link).
    public static func refuseReplacingInputs(output: String, inputs: [String]) throws {
        guard let target = fileID(output) else { return }
        let ids = Dictionary(inputs.compactMap { p in fileID(p).map { ($0, p) } }, uniquingKeysWith: { a, _ in a })
        if let hit = ids[target] {
            throw EMError(.usage, file: output, "the output is the input file \(hit); choose another output name")
        }
        var st = stat()
        guard stat(output, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
        for rel in OutputTree.files(output) {
            if let id = fileID(output + "/" + rel), let hit = ids[id] {
                throw EMError(.usage, file: output, "the output folder holds the input file \(hit); choose another output name")
            }
        }
    }

    /// Why the existing folder `dir` must not be replaced by `--overwrite`, or nil if it may.
    ///
    /// Rule: a folder is replaced only if it is empty or a zarr (v2) store of the kind emconv
    /// writes: `.zgroup` at its root; every folder is a group (`.zgroup`, optionally `.zattrs`,
    /// `.zmetadata`) or an array (`.zarray`, optionally `.zattrs`); arrays hold only chunk keys
    /// (digits joined by `.`, or folders of digits for nested keys); no other files, no symbolic
    /// links, no special files anywhere.
    public static func replaceRefusal(ofFolder dir: String) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return "cannot list it" }
        if names.isEmpty { return nil }
        guard names.contains(".zgroup") else { return "it is not a zarr store (no .zgroup)" }
        return zarrRefusal(dir, names: names, kind: .group, depth: 0)
    }

    private enum ZarrNode { case group, array, chunks }

    private static func isChunkKey(_ s: String) -> Bool {
        !s.isEmpty && s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }

    private static func zarrRefusal(_ dir: String, names: [String], kind: ZarrNode, depth: Int) -> String? {
        if depth > 64 { return "\(dir) is nested too deeply for a zarr store" }
        for n in names {
            let p = dir + "/" + n
            var st = stat()
            guard lstat(p, &st) == 0 else { return "cannot inspect \(p)" }
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                let ok: Bool
                switch kind {
                case .group: ok = [".zgroup", ".zattrs", ".zmetadata"].contains(n)
                case .array: ok = [".zarray", ".zattrs"].contains(n) || isChunkKey(n)
                case .chunks: ok = isChunkKey(n)
                }
                if !ok { return "\(p) was not written by emconv" }
            case S_IFDIR:
                guard let sub = try? FileManager.default.contentsOfDirectory(atPath: p) else { return "cannot list \(p)" }
                let child: ZarrNode
                if kind == .group && sub.contains(".zgroup") { child = .group }
                else if kind == .group && sub.contains(".zarray") { child = .array }
                else if kind != .group && isChunkKey(n) { child = .chunks }
                else { return "\(p) is not part of a zarr store" }
                if let why = zarrRefusal(p, names: sub, kind: child, depth: depth + 1) { return why }
            default:
                return "\(p) is a symbolic link or special file"
            }
        }
        return nil
    }

    // MARK: Moving into place

    /// Renames the finished temporary `tmp` to `output`. Unless `replace`, an `output` that
    /// appeared meanwhile (a concurrent conversion) is never replaced: that is an
    /// ``EMError/Code/outputExists`` error and `tmp` stays for the caller to remove.
    /// Uses renameat2(RENAME_NOREPLACE); where the file system lacks it, link+unlink for files.
    public static func moveIntoPlace(_ tmp: String, _ output: String, replace: Bool) throws {
        func exists() -> EMError {
            EMError(.outputExists, file: output, "output appeared while converting (another conversion wrote it); this conversion's result was discarded")
        }
        func failed(_ e: Int32) -> EMError {
            EMError(.writeError, file: output, "cannot move the finished output into place: \(String(cString: strerror(e)))")
        }
        if replace {
            if rename(tmp, output) != 0 { throw failed(errno) }
            return
        }
        #if os(Linux)
        if c_renameat2(AT_FDCWD, tmp, AT_FDCWD, output, 1 /* RENAME_NOREPLACE */) == 0 { return }
        let e = errno
        if e == EEXIST { throw exists() }
        guard e == EINVAL || e == ENOSYS || e == ENOTSUP else { throw failed(e) }
        #endif
        var st = stat()
        if lstat(tmp, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
            if link(tmp, output) == 0 { unlink(tmp); return }
            if errno == EEXIST { throw exists() }
        }
        // A folder on a file system without renameat2 (or one without hard links): check, then rename.
        if lstat(output, &st) == 0 { throw exists() }
        if rename(tmp, output) != 0 { throw failed(errno) }
    }

    // MARK: Temporaries

    /// The temporary name beside `output` that process `pid` writes to.
    public static func temporaryName(for output: String, pid: Int32 = getpid()) -> String {
        let dir = (output as NSString).deletingLastPathComponent
        return (dir.isEmpty ? "" : dir + "/") + ".\((output as NSString).lastPathComponent).tmp-emconv-\(pid)"
    }

    /// Removes temporary outputs (`.NAME.tmp-emconv-PID`) of the given outputs whose process no
    /// longer runs on this machine (e.g. after kill -9). Returns the paths removed.
    public static func removeStaleTemporaries(for outputs: [String]) -> [String] {
        var removed: [String] = []
        var dirs: [String: Set<String>] = [:]
        for o in outputs { dirs[(o as NSString).deletingLastPathComponent, default: []].insert((o as NSString).lastPathComponent) }
        for (dir, names) in dirs {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir) else { continue }
            for e in entries where e.hasPrefix(".") && e.contains(".tmp-emconv-") {
                let parts = e.components(separatedBy: ".tmp-emconv-")
                guard parts.count == 2, names.contains(String(parts[0].dropFirst())), let pid = Int32(parts[1]), pid > 0 else { continue }
                if kill(pid, 0) != 0 && errno == ESRCH {
                    let p = (dir.isEmpty ? "" : dir + "/") + e
                    OutputTree.remove(p)
                    var st = stat()
                    if lstat(p, &st) != 0 { removed.append(p) }
                }
            }
        }
        return removed.sorted()
    }

    // MARK: Write failures

    /// A write error about the temporary `tmp` (or a file inside it), restated about `output`
    /// with the likely cause (full or read-only file system, file size limit). Call before
    /// removing `tmp`: its size tells whether a file size limit was reached.
    public static func restate(_ error: Error, tmp: String, output: String) -> Error {
        guard var e = error as? EMError else { return error }
        if let f = e.file, f == tmp || f.hasPrefix(tmp + "/") {
            e.file = output
            if e.code == .badInput || e.code == .failure { e.code = .writeError }
        }
        // The writers' own messages may already name the system error (e.g. "No space left on device").
        guard e.code == .writeError, e.file == output, let (cause, code) = writeFailureCause(tmp: tmp, output: output),
              !e.message.contains(String(cString: strerror(code))) else { return e }
        e.message += " (\(cause))"
        return e
    }

    /// The likely cause of a failed write and its errno, from the state of the output folder.
    static func writeFailureCause(tmp: String, output: String) -> (String, Int32)? {
        let d = (output as NSString).deletingLastPathComponent
        let dir = d.isEmpty ? "." : d
        var vfs = statvfs()
        if statvfs(dir, &vfs) == 0 {
            if vfs.f_flag & UInt(ST_RDONLY) != 0 { return ("the output folder is on a read-only file system", EROFS) }
            if UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize) < 1 << 20 { return ("no space left on the device", ENOSPC) }
        }
        if access(dir, W_OK) != 0 { return ("no permission to write in the output folder", EACCES) }
        var lim = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &lim) == 0, lim.rlim_cur != rlim_t.max {
            var st = stat()
            if stat(tmp, &st) == 0, UInt64(st.st_size) + (1 << 20) >= UInt64(lim.rlim_cur) {
                return ("the file size limit (ulimit -f) of \(lim.rlim_cur) bytes was reached", EFBIG)
            }
        }
        return nil
    }
}
