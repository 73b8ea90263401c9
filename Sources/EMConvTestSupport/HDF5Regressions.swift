import CHDF5
import EMConvKit
import Foundation

/// The damaged HDF5 files of fixtures/regressions, made from a generated Berkeley EMD (never from
/// ../shared/testdata): each applies to that file the damage a fuzzing or hostile-input finding
/// had, so the regression keeps its defect class. `emconv-fixtures regressions DIR` rewrites them.
public enum HDF5Regressions {
    /// A Berkeley EMD v0.2 (4 x 16 uint8 signal) with a `/user` group holding variable-length
    /// string attributes `name`, `email` and `note0`…`note5` (enough for an object header
    /// continuation block), as HyperSpy writes its user metadata.
    public static func base(at path: String) throws -> [UInt8] {
        try HostileHDF5.input(at: path, layout: .berkeley, storage: .plain)
        let f = H5Fopen(path, emc_F_ACC_RDWR(), hid_t(H5P_DEFAULT))
        guard f >= 0 else { throw EMError(.writeError, file: path, "cannot reopen") }
        let g = H5Gcreate2(f, "user", hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        let t = H5Tcopy(emc_T_C_S1())
        H5Tset_size(t, emc_T_VARIABLE())
        H5Tset_cset(t, H5T_CSET_UTF8)
        let s = H5Screate(H5S_SCALAR)
        let values = [("name", "A. Tester"), ("email", "tester@example.org")] + (0..<6).map { ("note\($0)", "note number \($0)") }
        for (k, v) in values {
            let a = H5Acreate2(g, k, t, s, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
            let c = strdup(v)
            var p: UnsafePointer<CChar>? = UnsafePointer(c)
            H5Awrite(a, t, &p)
            free(c)
            H5Aclose(a)
        }
        H5Sclose(s); H5Tclose(t); H5Gclose(g); H5Fclose(f)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// `v` as `n` little-endian bytes.
    public static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    /// Offset of the first `needle` in `b` at or after `from`.
    public static func find(_ needle: [UInt8], in b: [UInt8], from: Int = 0) -> Int? {
        guard needle.count <= b.count else { return nil }
        var i = from
        while i + needle.count <= b.count {
            if b[i] == needle[0], Array(b[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    static func fail(_ path: String, _ what: String) -> EMError { EMError(.failure, file: path, "generated file lacks \(what)") }

    /// The descriptor of `/user@email` declares 0x6590_0000 bytes (1.7 GB) instead of 18: libhdf5
    /// 1.10 allocates and clears that much before it reads the 18-byte heap object.
    public static func vlenAttributeLength(at path: String) throws {
        var b = try base(at: path)
        guard let gcol = find(Array("GCOL".utf8), in: b),
              let d = find(le(18, 4) + le(UInt64(gcol), 8), in: b) else { throw fail(path, "the email descriptor") }
        b.replaceSubrange(d..<(d + 4), with: le(0x6590_0000, 4))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// Object 3 of the first global heap collection declares -512 bytes: libhdf5 1.10 walks the
    /// collection backwards for ever (H5HG__protect / H5C_protect) on the first string it reads.
    public static func globalHeapLoop(at path: String) throws {
        var b = try base(at: path)
        guard let gcol = find(Array("GCOL".utf8), in: b) else { throw fail(path, "a global heap") }
        var p = gcol + 16
        for _ in 0..<2 {
            let size = Int(b[p + 8]) | Int(b[p + 9]) << 8
            p += 16 + (size + 7) / 8 * 8
        }
        guard b[p] == 3 else { throw fail(path, "heap object 3") }
        b.replaceSubrange((p + 8)..<(p + 16), with: le(UInt64(bitPattern: -512), 8))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// The free-space object that ends the first global heap collection declares 0 bytes:
    /// libhdf5 1.10 parses it without advancing, for ever (found by the nexus fuzz target).
    public static func globalHeapFreeSpaceLoop(at path: String) throws {
        var b = try base(at: path)
        guard let gcol = find(Array("GCOL".utf8), in: b) else { throw fail(path, "a global heap") }
        var p = gcol + 16
        while b[p] != 0 || b[p + 1] != 0 {
            let size = Int(b[p + 8]) | Int(b[p + 9]) << 8
            p += 16 + (size + 7) / 8 * 8
        }
        b.replaceSubrange((p + 8)..<(p + 16), with: le(0, 8))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// The root group's local heap (link names) declares a data segment of 2^64 - 1 bytes:
    /// libhdf5 1.10 copies with size -1 while it looks a link up, corrupting the malloc heap
    /// (glibc aborts, or a later free faults).
    public static func localHeapSize(at path: String) throws {
        var b = try base(at: path)
        guard let heap = find(Array("HEAP".utf8), in: b) else { throw fail(path, "a local heap") }
        b.replaceSubrange((heap + 8)..<(heap + 16), with: [UInt8](repeating: 0xFF, count: 8))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// The root group's local heap has a free list whose block points at itself: libhdf5 1.10
    /// allocates a free-list entry per step for ever (1 GB in 5 s; found by the dectris target).
    public static func localHeapFreeListCycle(at path: String) throws {
        var b = try base(at: path)
        guard let heap = find(Array("HEAP".utf8), in: b) else { throw fail(path, "a local heap") }
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: b[at..<(at + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
        let size = u64(heap + 8), segment = u64(heap + 24)
        var head = u64(heap + 16)
        if head <= 1 || head + 16 > size { head = 8 }
        guard size >= head + 16 else { throw fail(path, "room for a free block") }
        b.replaceSubrange((heap + 16)..<(heap + 24), with: le(UInt64(head), 8))
        b.replaceSubrange((segment + head)..<(segment + head + 16), with: le(UInt64(head), 8) + le(16, 8))
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    /// The first object header continuation message declares a block of 0xFA00_0000_0000_0000 +
    /// its length: libhdf5's metadata cache asks for that allocation (an ASan abort; with plain
    /// malloc the allocation fails and HDF5 reports an error).
    public static func continuationLength(at path: String) throws {
        var b = try base(at: path)
        // Version 1 message header: type 0x0010, size 16, flags 0, 3 reserved; then address, length.
        var from = 0
        while let m = find([0x10, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00], in: b, from: from) {
            let address = Int(truncatingIfNeeded: b[(m + 8)..<(m + 16)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            if address > 0, address + 8 <= b.count {
                b[m + 23] = 0xFA
                return try Data(b).write(to: URL(fileURLWithPath: path))
            }
            from = m + 1
        }
        throw fail(path, "an object header continuation")
    }

    /// Writes every regression file of this kind under `root` (fixtures/regressions).
    public static func writeAll(under root: String) throws {
        let lib = root + "/hdf5-library", emd = root + "/emd"
        for d in [lib, emd] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try vlenAttributeLength(at: lib + "/vlen-attribute-length-1.7GB.emd")
        try globalHeapLoop(at: lib + "/vlen-attribute-global-heap-loop.emd")
        try globalHeapFreeSpaceLoop(at: lib + "/vlen-attribute-heap-free-space-size-0.emd")
        try localHeapSize(at: lib + "/local-heap-size-corrupts-malloc.h5")
        try localHeapFreeListCycle(at: lib + "/local-heap-free-list-cycle.h5")
        try continuationLength(at: emd + "/metadata-cache-entry-size-huge.emd")
    }
}
