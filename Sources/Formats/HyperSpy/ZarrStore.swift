import CDeflate
import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Read access to a zarr v2 store by key (`Experiments/scan/data/0/0/0/0`): a directory tree
/// (zarr's DirectoryStore / NestedDirectoryStore) or a ZIP archive (zarr's ZipStore).
protocol ZarrReadStore: AnyObject {
    /// Where the store lives (for messages).
    var path: String { get }
    /// The value of `key`, nil when absent. Values are at most `limit` bytes.
    func get(_ key: String, limit: Int) throws -> [UInt8]?
    /// Names of the direct children of the group at `prefix` ("" for the root), sorted.
    func children(_ prefix: String) throws -> [String]
    /// Files whose checksums the provenance records.
    var handles: [RandomAccessFile] { get }
}

extension ZarrReadStore {
    /// A JSON document (`.zgroup`, `.zattrs`, `.zarray`), at most 64 MiB.
    func json(_ key: String) throws -> MetaValue? {
        guard let bytes = try get(key, limit: 64 << 20) else { return nil }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw EMError(.badInput, file: path, at: key, "not UTF-8 text")
        }
        do {
            return try MetaValue.parseJSON(text)
        } catch {
            throw EMError(.badInput, file: path, at: key, "not valid JSON (\(error))")
        }
    }
}

/// Keys are built from names the store itself lists; a component that could leave the store
/// (`..`, empty, or holding a separator of the host) is refused.
func checkKey(_ key: String, store: String) throws {
    for part in key.split(separator: "/", omittingEmptySubsequences: false) where part.isEmpty || part == ".." || part == "." {
        throw EMError(.badInput, file: store, at: key, "a zarr key with an empty, '.' or '..' component")
    }
}

/// A zarr store in a directory. Only regular files inside it are read: symbolic links are
/// refused, so a store never reads a file outside its folder.
final class DirectoryZarrStore: ZarrReadStore {
    let path: String
    var handles: [RandomAccessFile] { [] }

    init(path: String) { self.path = path }

    func get(_ key: String, limit: Int) throws -> [UInt8]? {
        try checkKey(key, store: path)
        let p = path + "/" + key
        var st = stat()
        guard lstat(p, &st) == 0 else { return nil }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            if (st.st_mode & S_IFMT) == S_IFLNK { throw EMError(.badInput, file: path, at: key, "a symbolic link inside the store (not followed)") }
            return nil
        }
        guard st.st_size <= limit else {
            throw EMError(.badInput, file: path, at: key, "\(st.st_size) bytes, more than the \(limit) bytes it may hold")
        }
        let f = try RandomAccessFile(path: p)
        return try f.read(at: 0, count: Int(f.size), what: key)
    }

    func children(_ prefix: String) throws -> [String] {
        if !prefix.isEmpty { try checkKey(prefix, store: path) }
        let dir = prefix.isEmpty ? path : path + "/" + prefix
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { n in
            var st = stat()
            return lstat(dir + "/" + n, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        }.sorted()
    }
}

/// A zarr store in a ZIP archive (zarr's ZipStore; HyperSpy's `store_type="zip"`, emconv's
/// zspy-zip): the central directory (ZIP64 too) maps member names to their data; members are
/// stored (method 0) or deflated (method 8). PKWARE APPNOTE.TXT 6.3, sections 4.3.7-4.3.16.
final class ZipZarrStore: ZarrReadStore {
    struct Member {
        var method: UInt16
        var compressedSize: Int64
        var size: Int64
        var localHeader: Int64
    }

    let path: String
    let file: RandomAccessFile
    var handles: [RandomAccessFile] { [file] }
    private(set) var members: [String: Member] = [:]
    /// Group prefixes ("" and "Experiments/scan/…") → child group names.
    private var groups: [String: Set<String>] = [:]
    static let maxMembers = 10_000_000

    init(path: String) throws {
        self.path = path
        file = try RandomAccessFile(path: path)
        try readCentralDirectory()
    }

    private func bad(_ offset: Int64, _ what: String) -> EMError { EMError.bad(path, offset: offset, "ZIP archive: \(what)") }

    private func u16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
    private func u32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }
    private func u64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }

    private func readCentralDirectory() throws {
        // End of central directory record: in the last 64 KiB + 22 bytes.
        let tailSize = Int(min(file.size, 65_557))
        let tailStart = file.size - Int64(tailSize)
        let tail = try file.read(at: tailStart, count: tailSize, what: "the end of the archive")
        guard tail.count >= 22, let eocd = stride(from: tail.count - 22, through: 0, by: -1).first(where: {
            tail[$0] == 0x50 && tail[$0 + 1] == 0x4B && tail[$0 + 2] == 5 && tail[$0 + 3] == 6
        }) else { throw bad(file.size, "no end of central directory record") }
        var count = Int64(u16(tail, eocd + 10))
        var cdSize = Int64(u32(tail, eocd + 12))
        var cdOffset = Int64(u32(tail, eocd + 16))
        // ZIP64 end of central directory locator just before it.
        if eocd >= 20, u32(tail, eocd - 20) == 0x0706_4b50 {
            let recOffset = Int64(bitPattern: u64(tail, eocd - 20 + 8))
            guard recOffset >= 0, recOffset + 56 <= file.size else { throw bad(tailStart + Int64(eocd) - 20, "ZIP64 locator points outside the file") }
            let rec = try file.read(at: recOffset, count: 56, what: "the ZIP64 end of central directory record")
            guard u32(rec, 0) == 0x0606_4b50 else { throw bad(recOffset, "no ZIP64 end of central directory record") }
            count = Int64(bitPattern: u64(rec, 32))
            cdSize = Int64(bitPattern: u64(rec, 40))
            cdOffset = Int64(bitPattern: u64(rec, 48))
        }
        guard count >= 0, count <= Int64(Self.maxMembers), cdSize >= 0, cdOffset >= 0, cdOffset + cdSize <= file.size,
              cdSize <= 1 << 30, count * 46 <= cdSize else {
            throw bad(cdOffset, "central directory (\(count) members, \(cdSize) bytes at \(cdOffset)) does not fit the file")
        }
        let cd = try file.read(at: cdOffset, count: Int(cdSize), what: "the central directory")
        var o = 0
        for _ in 0..<count {
            guard o + 46 <= cd.count, u32(cd, o) == 0x0201_4b50 else { throw bad(cdOffset + Int64(o), "damaged central directory entry") }
            let method = u16(cd, o + 10)
            var csize = Int64(u32(cd, o + 20)), size = Int64(u32(cd, o + 24))
            let nameLen = Int(u16(cd, o + 28)), extraLen = Int(u16(cd, o + 30)), commentLen = Int(u16(cd, o + 32))
            var local = Int64(u32(cd, o + 42))
            guard o + 46 + nameLen + extraLen + commentLen <= cd.count else { throw bad(cdOffset + Int64(o), "central directory entry runs past its end") }
            guard let name = String(bytes: cd[(o + 46)..<(o + 46 + nameLen)], encoding: .utf8) else {
                throw bad(cdOffset + Int64(o), "member name is not UTF-8")
            }
            // ZIP64 extended information: the 0xFFFFFFFF fields, in order size, compressed size, offset.
            var e = o + 46 + nameLen
            let end = e + extraLen
            while e + 4 <= end {
                let id = u16(cd, e), len = Int(u16(cd, e + 2))
                guard e + 4 + len <= end else { break }
                if id == 1 {
                    var f = e + 4
                    func next() -> Int64? { guard f + 8 <= e + 4 + len else { return nil }; defer { f += 8 }; return Int64(bitPattern: u64(cd, f)) }
                    if size == 0xFFFF_FFFF, let v = next() { size = v }
                    if csize == 0xFFFF_FFFF, let v = next() { csize = v }
                    if local == 0xFFFF_FFFF, let v = next() { local = v }
                }
                e += 4 + len
            }
            guard size >= 0, csize >= 0, local >= 0, local + 30 + csize <= file.size else {
                throw bad(cdOffset + Int64(o), "member \(name) points outside the archive")
            }
            members[name] = Member(method: method, compressedSize: csize, size: size, localHeader: local)
            var parts = name.split(separator: "/").map(String.init)
            if !name.hasSuffix("/"), !parts.isEmpty { parts.removeLast() }  // a name of only slashes has no parts
            for k in 0..<parts.count {
                groups[parts[0..<k].joined(separator: "/"), default: []].insert(parts[k])
            }
            o += 46 + nameLen + extraLen + commentLen
        }
    }

    func get(_ key: String, limit: Int) throws -> [UInt8]? {
        guard let m = members[key] else { return nil }
        guard m.size <= limit, m.compressedSize <= limit else {
            throw EMError(.badInput, file: path, at: key, "\(m.size) bytes, more than the \(limit) bytes it may hold")
        }
        let lh = try file.read(at: m.localHeader, count: 30, what: "the local header of \(key)")
        guard u32(lh, 0) == 0x0403_4b50 else { throw bad(m.localHeader, "no local header for \(key)") }
        let start = m.localHeader + 30 + Int64(u16(lh, 26)) + Int64(u16(lh, 28))
        let stored = try file.read(at: start, count: Int(m.compressedSize), what: key)
        switch m.method {
        case 0:
            guard m.compressedSize == m.size else { throw bad(start, "stored member \(key) has two sizes") }
            return stored
        case 8:
            var out = [UInt8](repeating: 0, count: Int(m.size))
            guard let d = libdeflate_alloc_decompressor() else { throw EMError(.failure, file: path, "out of memory") }
            defer { libdeflate_free_decompressor(d) }
            var got = 0
            let r = stored.withUnsafeBytes { src in out.withUnsafeMutableBytes { dst in
                libdeflate_deflate_decompress(d, src.baseAddress, src.count, dst.baseAddress, dst.count, &got)
            } }
            guard r == LIBDEFLATE_SUCCESS, got == out.count else { throw bad(start, "deflated member \(key) does not inflate to its \(m.size) bytes") }
            return out
        default:
            throw EMError(.unsupported, file: path, at: key, "ZIP compression method \(m.method) (only stored and deflate are read)")
        }
    }

    func children(_ prefix: String) throws -> [String] {
        (groups[prefix] ?? []).sorted()
    }
}
