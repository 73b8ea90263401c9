import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts the kernel's write-back of an output while it is being written, so the final fsync
/// waits for little, and drops the written pages from the page cache (a 500 GB output does not
/// evict everything else). `POSIX_FADV_DONTNEED` starts write-back of dirty pages and drops
/// clean ones.
public final class WritebackKicker {
    private let fd: Int32
    private var pending: Int64 = 0
    private let every: Int64

    public init(path: String, every: Int64 = 64 << 20) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        self.every = every
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Call after writing `bytes` more.
    public func wrote(_ bytes: Int64) {
        guard fd >= 0 else { return }
        pending += bytes
        if pending >= every {
            pending = 0
            posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
        }
    }
}
