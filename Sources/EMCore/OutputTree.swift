import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// glibc's syncfs (declared only under _GNU_SOURCE, so not imported).
@_silgen_name("syncfs") private func c_syncfs(_ fd: Int32) -> Int32

/// Helpers for outputs that may be a single file or a directory tree (zarr directory stores).
public enum OutputTree {
    /// Flushes the file system holding `fd` (one call for a whole directory tree).
    public static func syncFilesystem(_ fd: Int32) { _ = c_syncfs(fd) }

    /// Removes a file or a directory tree; missing paths are fine.
    public static func remove(_ path: String) {
        if unlink(path) == 0 { return }
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Removal from a signal handler (best effort: only system calls, no Foundation).
    public static func removeTreeUnsafe(_ path: UnsafePointer<CChar>) {
        removeTreeAt(AT_FDCWD, path, depth: 0)
    }

    private static func removeTreeAt(_ dirfd: Int32, _ name: UnsafePointer<CChar>, depth: Int) {
        if unlinkat(dirfd, name, 0) == 0 || depth > 64 { return }
        let fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        guard fd >= 0, let d = fdopendir(fd) else { return }
        while let e = readdir(d) {
            withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { n in
                    if strcmp(n, ".") != 0 && strcmp(n, "..") != 0 { removeTreeAt(fd, n, depth: depth + 1) }
                }
            }
        }
        closedir(d)
        unlinkat(dirfd, name, AT_REMOVEDIR)
    }

    /// Regular files under `path` (or `path` itself), relative paths sorted bytewise.
    static func files(_ path: String) -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return [] }
        var out: [String] = []
        if let e = FileManager.default.enumerator(atPath: path) {
            while let rel = e.nextObject() as? String {
                var st = stat()
                if lstat(path + "/" + rel, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG { out.append(rel) }
            }
        }
        return out.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Bytes of a file, or the sum over a directory tree's files.
    public static func size(_ path: String) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) != S_IFDIR { return Int64(st.st_size) }
        var total: Int64 = 0
        for rel in files(path) where stat(path + "/" + rel, &st) == 0 { total += Int64(st.st_size) }
        return total
    }

    /// SHA-256 of a file; for a directory tree, SHA-256 of the manifest
    /// "relative-path NUL sha256-hex LF" over its files in bytewise path order.
    public static func sha256(_ path: String) throws -> String {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            let manifest = SHA256Digest()
            for rel in files(path) {
                let h = try RandomAccessFile(path: path + "/" + rel).finishDigest()
                manifest.update(Array(rel.utf8) + [0] + Array(h.utf8) + [10])
            }
            return manifest.finalizeHex()
        }
        return try RandomAccessFile(path: path).finishDigest()
    }
}
