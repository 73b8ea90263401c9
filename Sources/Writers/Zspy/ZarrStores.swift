import CDeflate
import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where zarr keys (`Experiments/x/data/0/0`, `.zattrs`, …) go: a directory tree or a ZIP archive.
/// Called from one thread.
protocol ZarrSink: AnyObject {
    func put(_ key: String, _ bytes: UnsafeRawBufferPointer) throws
    func finish() throws
}

extension ZarrSink {
    func put(_ key: String, _ text: String) throws {
        var t = text
        try t.withUTF8 { try put(key, UnsafeRawBufferPointer($0)) }
    }
}

/// Writes every bytes fully or throws.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            throw EMError(.writeError, file: path, "cannot write: \(String(cString: strerror(errno)))")
        }
        done += n
    }
}

/// A zarr DirectoryStore / NestedDirectoryStore tree: key `a/b/c` is file `root/a/b/c`.
final class DirectorySink: ZarrSink {
    let root: String
    private var made: Set<String> = []

    init(root: String) throws {
        self.root = root
        if mkdir(root, 0o755) != 0 {
            throw EMError(.writeError, file: root, "cannot create the output directory: \(String(cString: strerror(errno)))")
        }
        made.insert("")
    }

    private func makeParents(_ key: String) throws {
        guard let slash = key.lastIndex(of: "/") else { return }
        let dir = String(key[..<slash])
        if made.contains(dir) { return }
        try makeParents(dir)
        let p = root + "/" + dir
        if mkdir(p, 0o755) != 0 && errno != EEXIST {
            throw EMError(.writeError, file: p, "cannot create directory: \(String(cString: strerror(errno)))")
        }
        made.insert(dir)
    }

    func put(_ key: String, _ bytes: UnsafeRawBufferPointer) throws {
        try makeParents(key)
        let p = root + "/" + key
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EMError(.writeError, file: p, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try writeAll(fd, bytes, path: p)
    }

    func finish() throws {}
}

/// A ZIP archive of stored (uncompressed) members, as zarr's ZipStore reads it. Members are
/// written as they come (local header with the CRC-32 and sizes, then the bytes); the central
/// directory follows at `finish`. ZIP64 records are added when an offset or size passes
/// 0xFFFFFFFF or there are more than 65535 members (APPNOTE.TXT 6.3, sections 4.3.7-4.3.16, 4.5.3).
final class ZipSink: ZarrSink {
    private struct Entry {
        var name: [UInt8]
        var crc: UInt32
        var size: UInt64
        var offset: UInt64
    }
    let path: String
    private let fd: Int32
    private var offset: UInt64 = 0
    private var entries: [Entry] = []
    private let dosTime: UInt16
    private let dosDate: UInt16
    private var buffer: [UInt8] = []

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EMError(.writeError, file: path, "cannot create: \(String(cString: strerror(errno)))") }
        var t = time(nil)
        var tmv = tm()
        localtime_r(&t, &tmv)
        dosTime = UInt16((Int(tmv.tm_hour) << 11) | (Int(tmv.tm_min) << 5) | (Int(tmv.tm_sec) / 2))
        dosDate = UInt16((max(0, Int(tmv.tm_year) - 80) << 9) | ((Int(tmv.tm_mon) + 1) << 5) | Int(tmv.tm_mday))
    }

    deinit { close(fd) }

    private func u16(_ v: UInt16) { buffer.append(UInt8(v & 0xff)); buffer.append(UInt8(v >> 8)) }
    private func u32(_ v: UInt32) { for i in 0..<4 { buffer.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
    private func u64(_ v: UInt64) { for i in 0..<8 { buffer.append(UInt8((v >> (8 * UInt64(i))) & 0xff)) } }

    private func flushBuffer() throws {
        try buffer.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        offset += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    func put(_ key: String, _ bytes: UnsafeRawBufferPointer) throws {
        let name = Array(key.utf8)
        let size = UInt64(bytes.count)
        let crc = UInt32(truncatingIfNeeded: libdeflate_crc32(0, bytes.baseAddress, bytes.count))
        let big = size >= 0xFFFF_FFFF
        let entry = Entry(name: name, crc: crc, size: size, offset: offset)
        u32(0x0403_4b50)
        u16(big ? 45 : 20)          // version needed to extract
        u16(0x0800)                  // names are UTF-8
        u16(0)                       // stored
        u16(dosTime); u16(dosDate)
        u32(crc)
        u32(big ? 0xFFFF_FFFF : UInt32(size))
        u32(big ? 0xFFFF_FFFF : UInt32(size))
        u16(UInt16(name.count))
        u16(big ? 20 : 0)
        buffer += name
        if big { u16(1); u16(16); u64(size); u64(size) }
        try flushBuffer()
        try writeAll(fd, bytes, path: path)
        offset += size
        entries.append(entry)
    }

    func finish() throws {
        let cdStart = offset
        for e in entries {
            let bigSize = e.size >= 0xFFFF_FFFF
            let bigOffset = e.offset >= 0xFFFF_FFFF
            var extra: [UInt64] = []
            if bigSize { extra += [e.size, e.size] }
            if bigOffset { extra.append(e.offset) }
            u32(0x0201_4b50)
            u16(0x0300 | 45)          // made by: Unix, spec 4.5
            u16(extra.isEmpty ? 20 : 45)
            u16(0x0800)
            u16(0)
            u16(dosTime); u16(dosDate)
            u32(e.crc)
            u32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))
            u32(bigSize ? 0xFFFF_FFFF : UInt32(e.size))
            u16(UInt16(e.name.count))
            u16(extra.isEmpty ? 0 : UInt16(4 + 8 * extra.count))
            u16(0)                    // comment
            u16(0)                    // disk
            u16(0)                    // internal attributes
            u32(UInt32(0o100644) << 16)
            u32(bigOffset ? 0xFFFF_FFFF : UInt32(e.offset))
            buffer += e.name
            if !extra.isEmpty {
                u16(1); u16(UInt16(8 * extra.count))
                for v in extra { u64(v) }
            }
            if buffer.count > 1 << 20 { try flushBuffer() }
        }
        try flushBuffer()
        let cdSize = offset - cdStart
        let count = UInt64(entries.count)
        let zip64 = count > 0xFFFF || cdStart >= 0xFFFF_FFFF || cdSize >= 0xFFFF_FFFF
        if zip64 {
            let eocd64 = offset
            u32(0x0606_4b50); u64(44)
            u16(0x0300 | 45); u16(45)
            u32(0); u32(0)
            u64(count); u64(count); u64(cdSize); u64(cdStart)
            u32(0x0706_4b50); u32(0); u64(eocd64); u32(1)
        }
        u32(0x0605_4b50)
        u16(0); u16(0)
        u16(count > 0xFFFF ? 0xFFFF : UInt16(count))
        u16(count > 0xFFFF ? 0xFFFF : UInt16(count))
        u32(cdSize >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdSize))
        u32(cdStart >= 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(cdStart))
        u16(0)
        try flushBuffer()
    }
}
