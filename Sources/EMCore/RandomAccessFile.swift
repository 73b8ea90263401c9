import Foundation
import CCrypto
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 through OpenSSL (hardware-accelerated where the CPU has SHA extensions).
public final class SHA256Digest {
    private let ctx: OpaquePointer

    public init() {
        ctx = EVP_MD_CTX_new()
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ buf: UnsafeRawBufferPointer) {
        if buf.count > 0 { EVP_DigestUpdate(ctx, buf.baseAddress, buf.count) }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Finishes and returns the lowercase hex digest.
    public func finalizeHex() -> String {
        var md = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &md, &len)
        return md.prefix(Int(len)).map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ buf: UnsafeRawBufferPointer) -> String {
        let d = SHA256Digest()
        d.update(buf)
        return d.finalizeHex()
    }

    public static func hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { hex($0) } }
}

/// A read-only file read with `pread` at 64-bit offsets. Short reads are errors that name the
/// file and the offset. `enableDigest` checksums the whole file (SHA-256) on a background thread
/// that follows the reads: it stays within a window of the furthest byte read, so the file is
/// read from disk once (the second read hits the page cache) and hashing runs in parallel.
public final class RandomAccessFile: @unchecked Sendable {
    public let path: String
    public let size: Int64
    private let fd: Int32
    private let cond = NSCondition()
    private var hashing = false
    private var hashPosition: Int64 = 0
    private var readPosition: Int64 = 0
    private var released = false
    private var digestResult: String?
    private var digestError: Error?
    /// How far the reader and the hasher may drift apart.
    static let window: Int64 = 256 << 20

    public init(path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw EMError(.missingInput, file: path, errno == ENOENT ? "no such file" : "cannot access: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw EMError(.badInput, file: path, "not a regular file")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw EMError(.missingInput, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.path = path
        self.size = Int64(st.st_size)
        #if os(Linux)
        posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        #endif
    }

    deinit {
        cond.lock()
        released = true
        cond.broadcast()
        while hashing { cond.wait() }
        cond.unlock()
        close(fd)
    }

    /// Starts checksumming the whole file in the background (once).
    public func enableDigest() {
        cond.lock()
        defer { cond.unlock() }
        guard !hashing, digestResult == nil else { return }
        hashing = true
        let t = Thread { [self] in self.hashLoop() }
        t.stackSize = 1 << 20
        t.start()
    }

    private func hashLoop() {
        let digest = SHA256Digest()
        let block = 4 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: block, alignment: 64)
        defer { buf.deallocate() }
        var failure: Error?
        while true {
            cond.lock()
            while hashPosition < size && !released && hashPosition >= readPosition + Self.window { cond.wait() }
            let pos = hashPosition
            cond.unlock()
            if pos >= size { break }
            let n = Int(min(Int64(block), size - pos))
            let sub = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
            do { try rawRead(at: pos, into: sub) } catch { failure = error; break }
            digest.update(UnsafeRawBufferPointer(sub))
            cond.lock()
            hashPosition = pos + Int64(n)
            cond.broadcast()
            cond.unlock()
        }
        cond.lock()
        if let failure { digestError = failure } else { digestResult = digest.finalizeHex() }
        hashPosition = size
        hashing = false
        cond.broadcast()
        cond.unlock()
    }

    /// Reads exactly `buffer.count` bytes at `offset`, or throws naming the offset.
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer, what: String = "data") throws {
        guard offset >= 0, offset + Int64(buffer.count) <= size else {
            throw EMError.bad(path, offset: offset,
                              "file is truncated: \(what) needs \(buffer.count) bytes at offset \(offset) but the file has \(size) bytes")
        }
        try rawRead(at: offset, into: buffer)
        Watchdog.beat()
        cond.lock()
        if hashing {
            readPosition = max(readPosition, offset + Int64(buffer.count))
            cond.broadcast()
            // Do not run further ahead of the hasher than the window (bounded page-cache use).
            while hashing && readPosition > hashPosition + Self.window { cond.wait() }
        }
        cond.unlock()
    }

    /// Reads `count` bytes at `offset` into a new array.
    public func read(at offset: Int64, count: Int, what: String = "data") throws -> [UInt8] {
        guard count >= 0, count <= 1 << 30 else {
            throw EMError.bad(path, offset: offset, "refusing to read \(count) bytes for \(what)")
        }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(at: offset, into: $0, what: what) }
        return out
    }

    /// Reads up to `count` bytes at `offset` (fewer at end of file).
    public func readUpTo(at offset: Int64, count: Int) throws -> [UInt8] {
        let n = max(0, min(Int64(count), size - offset))
        var out = [UInt8](repeating: 0, count: Int(n))
        if n > 0 { try out.withUnsafeMutableBytes { try rawRead(at: offset, into: $0) } }
        return out
    }

    private func rawRead(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw EMError(.badInput, file: path, at: "offset \(offset + Int64(done))", "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                throw EMError.bad(path, offset: offset + Int64(done), "file ended early (it may have changed while being read)")
            }
            done += n
        }
    }

    /// The file's SHA-256: waits for the background checksum, or computes it now.
    public func finishDigest() throws -> String {
        enableDigest()
        cond.lock()
        defer { cond.unlock() }
        readPosition = size
        cond.broadcast()
        while hashing { cond.wait() }
        if let digestError { throw digestError }
        return digestResult ?? ""
    }
}
