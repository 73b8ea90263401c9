import CHDF5
import EMCore
import Foundation

// libhdf5 1.10 converts a variable-length string by allocating (and clearing) the length its
// on-disk descriptor declares before it looks at the global heap object holding the bytes; a
// damaged length thus allocates gigabytes, and a damaged heap makes it read past its buffers
// or loop. No property list bounds this for attributes (H5Aread takes no transfer list, and the
// conversion buffer is not allocated through the vlen memory manager), so emconv reads the
// descriptors itself first (object header -> attribute message -> data; dataset storage) and
// checks each against the global heap collection it names. Layouts: HDF5 file format
// specification 3.0, sections III.A (object headers), IV.A.2.m (attribute message), III.E
// (global heap), and the disk form of variable-length data (length, heap address, index).
// The same raw view checks each group's local heap before libhdf5 looks a link name up in it
// (``HDF5RawFile/checkLocalHeap(group:)``).

/// A read-only raw view of the file an HDF5 object lives in.
final class HDF5RawFile {
    let fd: Int32
    let base: UInt64
    let fileSize: UInt64
    let sizeofAddr: Int
    let sizeofSize: Int

    /// Opens the file holding `object` (nil when its name, sizes or descriptor are unavailable).
    init?(object: hid_t) {
        let fid = H5Iget_file_id(object)
        guard fid >= 0 else { return nil }
        defer { H5Fclose(fid) }
        let fcpl = H5ID(H5Fget_create_plist(fid), .plist)
        var sa = 0, ss = 0
        var userblock: hsize_t = 0, size: hsize_t = 0
        H5Pget_sizes(fcpl.id, &sa, &ss)
        H5Pget_userblock(fcpl.id, &userblock)
        H5Fget_filesize(fid, &size)
        guard [2, 4, 8].contains(sa), [2, 4, 8].contains(ss), let name = HDF5Guard.fileName(object) else { return nil }
        let fd = open(name, O_RDONLY)
        guard fd >= 0 else { return nil }
        var st = stat()
        fstat(fd, &st)
        self.fd = fd
        base = UInt64(userblock)
        fileSize = max(UInt64(size), UInt64(max(st.st_size, 0)))
        sizeofAddr = sa
        sizeofSize = ss
    }

    deinit { close(fd) }

    /// `count` bytes at file address `address` (relative to the base), nil past the end.
    func read(_ address: UInt64, _ count: Int) -> [UInt8]? {
        guard count >= 0, address < fileSize, UInt64(count) <= fileSize - address else { return nil }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(clamping: base &+ address)) }
        return n == count ? buf : nil
    }

    static func uint(_ b: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<width { v |= UInt64(b[at + i]) << (8 * UInt64(i)) }
        return v
    }

    /// Bytes of one variable-length descriptor: length (4), heap collection address, index (4).
    var descriptorBytes: Int { 8 + sizeofAddr }

    /// Checks the descriptors in `raw` (`count` of them): each names an object of its global
    /// heap collection that lies inside the collection, inside the file, and holds at least the
    /// declared length; the lengths together fit the memory budget. Returns the first problem.
    func checkDescriptors(_ raw: ArraySlice<UInt8>, count: Int) -> String? {
        let raw = Array(raw)
        guard raw.count >= count * descriptorBytes else { return "its values are cut short" }
        var total = 0
        var collections: [UInt64: [UInt8]] = [:]
        for i in 0..<count {
            let o = i * descriptorBytes
            let length = Int(HDF5RawFile.uint(raw, o, 4))
            let address = HDF5RawFile.uint(raw, o + 4, sizeofAddr)
            let index = HDF5RawFile.uint(raw, o + 4 + sizeofAddr, 4)
            total += length
            guard total <= MemoryBudget.maxAllocation else {
                return "value \(i) declares \(length) bytes, beyond the memory budget of \(MemoryBudget.maxAllocation) bytes"
            }
            if address == 0 { continue }              // the null (empty) value: no heap object
            guard UInt64(length) <= fileSize else { return "value \(i) declares \(length) bytes; the file holds only \(fileSize)" }
            if collections[address] == nil {
                guard let head = read(address, 8 + sizeofSize), head.starts(with: Array("GCOL".utf8)) else {
                    return "value \(i) points at \(address), where there is no global heap collection"
                }
                let size = HDF5RawFile.uint(head, 8, sizeofSize)
                guard size >= UInt64(8 + sizeofSize), size <= UInt64(MemoryBudget.maxAllocation), let all = read(address, Int(size)) else {
                    return "the global heap collection at \(address) declares \(size) bytes, beyond the file or the memory budget"
                }
                collections[address] = all
            }
            guard let objectSize = heapObjectSize(collections[address]!, index: index) else {
                return "value \(i) names object \(index) of the global heap collection at \(address), which lacks it or is damaged (an object size that runs past the collection or does not advance)"
            }
            guard length <= objectSize else {
                return "value \(i) declares \(length) bytes; its global heap object holds \(objectSize)"
            }
        }
        return nil
    }

    /// Size of object `index` of the global heap collection `c` (its bytes, header excluded);
    /// nil when it is absent or when the collection would not parse as libhdf5 parses it on
    /// first use: object after object to the end, each taking its header plus its size rounded
    /// up to 8, the free-space object (index 0) exactly its size. A damaged size makes libhdf5
    /// walk backwards or stand still for ever (-512, or a free-space object of size 0) or copy
    /// past the collection, so each step must advance and stay inside.
    func heapObjectSize(_ c: [UInt8], index: UInt64) -> Int? {
        let header = 8 + sizeofSize
        var p = 8 + sizeofSize
        var found: Int?
        while p + header <= c.count {
            let id = HDF5RawFile.uint(c, p, 2)
            let size = HDF5RawFile.uint(c, p + 8, sizeofSize)
            let left = UInt64(c.count - p)
            // The free-space object's size counts its own header (it ends the collection).
            guard size <= left else { return nil }
            let step = id == 0 ? size : UInt64(header) + (size + 7) / 8 * 8
            guard step > 0, step <= left else { return nil }
            if id == index, id != 0 { found = Int(size) }
            p += Int(step)
        }
        return found
    }

    enum Lookup {
        /// The attribute's raw value bytes (its message, after name, type and space).
        case found(ArraySlice<UInt8>)
        /// Not among the messages of the object header; `shared`: the header holds shared
        /// attribute messages (stored elsewhere), so it may be one of those.
        case notFound(shared: Bool)
        /// The header or the message cannot be parsed.
        case damaged(String)
    }

    /// Visits the messages of the object header at `address` (versions 1 and 2, following
    /// continuation blocks): `visit(type, flags, body)` returns true to stop. Returns why the
    /// header cannot be walked, or nil.
    func walkMessages(header address: UInt64, _ visit: (Int, UInt8, ArraySlice<UInt8>) -> Bool) -> String? {
        guard let sig = read(address, 4) else { return "its object header lies past the end of the file" }
        let v2 = sig == Array("OHDR".utf8)
        var blocks: [(address: UInt64, length: Int, first: Bool)] = []
        var messageHeader = 8
        if v2 {
            guard let h = read(address, 6), h[4] == 2 else { return "unknown object header version" }
            let flags = h[5]
            var p = 6 + (flags & 0x20 != 0 ? 16 : 0) + (flags & 0x10 != 0 ? 4 : 0)
            let width = 1 << Int(flags & 3)
            guard let s = read(address + UInt64(p), width) else { return "its object header is cut short" }
            p += width
            blocks.append((address + UInt64(p), Int(clamping: HDF5RawFile.uint(s, 0, width)), true))
            messageHeader = 4 + (flags & 0x04 != 0 ? 2 : 0)
        } else {
            guard let h = read(address, 16), h[0] == 1 else { return "unknown object header version" }
            blocks.append((address + 16, Int(HDF5RawFile.uint(h, 8, 4)), true))
        }
        var seen = 0, bytes = 0
        while !blocks.isEmpty {
            let b = blocks.removeFirst()
            seen += 1
            bytes += b.length
            guard seen <= 1024, bytes <= 16 << 20, let raw = read(b.address, b.length) else {
                return "its object header is cut short or loops"
            }
            var region = raw[...]
            if v2 && !b.first {
                guard raw.count >= 8, raw.starts(with: Array("OCHK".utf8)) else { return "an object header continuation block lacks its signature" }
                region = raw[4..<(raw.count - 4)]
            }
            var q = region.startIndex
            while q + messageHeader <= region.endIndex {
                let type = v2 ? Int(raw[q]) : Int(HDF5RawFile.uint(raw, q, 2))
                let size = Int(HDF5RawFile.uint(raw, v2 ? q + 1 : q + 2, 2))
                let flags = raw[v2 ? q + 3 : q + 4]
                let body = q + messageHeader
                guard body + size <= region.endIndex else { return "an object header message runs past its block" }
                if type == 0x10 {
                    guard size >= sizeofAddr + sizeofSize else { return "a continuation message is cut short" }
                    let m = Array(raw[body..<(body + size)])
                    blocks.append((HDF5RawFile.uint(m, 0, sizeofAddr), Int(clamping: HDF5RawFile.uint(m, sizeofAddr, sizeofSize)), false))
                } else if visit(type, flags, raw[body..<(body + size)]) {
                    return nil
                }
                q = body + size
            }
        }
        return nil
    }

    /// Finds the message of attribute `name` in the object header at `address`.
    func attributeData(header address: UInt64, name: String) -> Lookup {
        let want = Array(name.utf8)
        var shared = false
        var result: Lookup?
        let problem = walkMessages(header: address) { type, flags, body in
            guard type == 0x0C else { return false }
            if flags & 0x02 != 0 { shared = true; return false }
            result = attributeValue(body, named: want)
            return result != nil
        }
        if let result { return result }
        if let problem { return .damaged(problem) }
        return .notFound(shared: shared)
    }

    /// Checks the local heap (link names) of the group whose object header is at `address`,
    /// when it has one (a symbol table message; newer groups keep links elsewhere): its data
    /// segment inside the file and the budget, its free list inside the segment, advancing and
    /// without a cycle. libhdf5 1.10 trusts both: a damaged size made it copy 2^64 - 1 bytes
    /// (a corrupted malloc heap), a cyclic free list made it allocate 32 bytes per step for ever.
    /// Layout: HDF5 File Format Specification 3.0, III.D (local heap) and IV.A.2.r (symbol table).
    func checkLocalHeap(group address: UInt64) -> String? {
        var heapAddress: UInt64?
        if let problem = walkMessages(header: address, { type, _, body in
            guard type == 0x11, body.count >= 2 * sizeofAddr else { return false }
            heapAddress = HDF5RawFile.uint(Array(body), sizeofAddr, sizeofAddr)
            return true
        }) { return problem }
        guard let heap = heapAddress else { return nil }
        let l = sizeofSize
        guard let h = read(heap, 8 + 2 * l + sizeofAddr), h.starts(with: Array("HEAP".utf8)), h[4] == 0 else {
            return "its local heap at \(heap) lacks the HEAP signature"
        }
        let size = HDF5RawFile.uint(h, 8, l)
        var free = HDF5RawFile.uint(h, 8 + l, l)
        let segment = HDF5RawFile.uint(h, 8 + 2 * l, sizeofAddr)
        guard size <= UInt64(MemoryBudget.maxAllocation), segment <= fileSize, size <= fileSize - segment else {
            return "its local heap at \(heap) declares a data segment of \(size) bytes at \(segment), beyond the file of \(fileSize) bytes"
        }
        var visited = Set<UInt64>()
        let noFree = UInt64(1)                          // libhdf5's H5HL_FREE_NULL
        let undefined = UInt64.max >> (64 - 8 * UInt64(l))
        while free != noFree && free != undefined {
            guard free < size, size - free >= UInt64(2 * l), visited.insert(free).inserted, visited.count <= 1 << 20,
                  let entry = read(segment + free, 2 * l) else {
                return "the free list of its local heap at \(heap) leaves the data segment or loops"
            }
            let next = HDF5RawFile.uint(entry, 0, l), blockSize = HDF5RawFile.uint(entry, l, l)
            guard blockSize > 0, blockSize <= size - free else {
                return "a free block of its local heap at \(heap) declares \(blockSize) bytes, beyond the data segment"
            }
            free = next
        }
        return nil
    }

    /// The value bytes of an attribute message when it is the attribute `name`; nil otherwise.
    private func attributeValue(_ m: ArraySlice<UInt8>, named name: [UInt8]) -> Lookup? {
        let m = Array(m)
        guard m.count >= 8 else { return nil }
        let version = m[0]
        let nameSize = Int(HDF5RawFile.uint(m, 2, 2)), typeSize = Int(HDF5RawFile.uint(m, 4, 2)), spaceSize = Int(HDF5RawFile.uint(m, 6, 2))
        func pad(_ n: Int) -> Int { version == 1 ? (n + 7) / 8 * 8 : n }
        let start = version == 3 ? 9 : 8
        guard (1...3).contains(version), nameSize >= 1, start + pad(nameSize) <= m.count else { return nil }
        guard Array(m[start..<(start + nameSize - 1)]) == name else { return nil }
        let data = start + pad(nameSize) + pad(typeSize) + pad(spaceSize)
        guard data <= m.count else { return .damaged("its attribute message is cut short") }
        return .found(m[data...])
    }
}

extension HDF5Node {
    /// Whether the variable-length string attribute `name` (`count` values) may be read: its
    /// descriptors, read from the object header, must each name a global heap object that
    /// holds the declared length (see the note at the top of this file). A damaged attribute
    /// is recorded as the input's refusal (one-line error) and gives false. Attributes kept
    /// in dense storage (a fractal heap) are read under an allocation ceiling instead.
    func variableLengthAttributeFits(_ name: String, count: Int, read: () -> Bool) -> Bool {
        func refuse(_ why: String) -> Bool {
            inputGuard?.refuse(EMError(.badInput, file: inputGuard?.input ?? filePath, at: "\(path) attribute \(name)",
                                       "variable-length string: \(why) (damaged file)"))
            return false
        }
        // After a refusal the input is not read further (it fails anyway): a damaged heap already
        // seen could otherwise be reached through a value not checked yet.
        guard inputGuard?.refusal == nil else { return false }
        var info = H5O_info_t()
        guard H5Oget_info2(id, &info, UInt32(H5O_INFO_BASIC | H5O_INFO_META_SIZE)) >= 0, let file = HDF5RawFile(object: id) else {
            return refuse("its object header cannot be located")
        }
        let lk = file.attributeData(header: UInt64(info.addr), name: name)
        switch lk {
        case let .found(raw):
            if let problem = file.checkDescriptors(raw, count: count) { return refuse(problem) }
            return read()
        case let .damaged(why):
            return refuse(why)
        case let .notFound(shared):
            // Dense storage (a fractal heap) or a shared message: read under the ceiling. Neither:
            // libhdf5 decoded an attribute that is not where the file format puts it.
            guard shared || info.meta_size.attr.heap_size > 0 else { return refuse("its attribute message is not in the object header") }
            return AllocationCeiling.run(MemoryBudget.maxAllocation, read)
        }
    }
}

/// Runs a libhdf5 read whose allocations emconv cannot check beforehand with the process's
/// data limit (RLIMIT_DATA) lowered to its current data size plus the memory budget (and
/// 64 MiB): an oversized allocation inside libhdf5 then fails and HDF5 reports an error
/// instead of taking gigabytes. Process-wide for the duration of the call (other threads keep
/// the same headroom); the previous limit is restored after.
enum AllocationCeiling {
    static func run<T>(_ bytes: Int, _ body: () -> T) -> T {
        var old = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_DATA.rawValue)
        guard getrlimit(resource, &old) == 0, let used = ProcessMemory.bytes("VmData").map(UInt64.init) else { return body() }
        let (want, overflow) = used.addingReportingOverflow(UInt64(bytes) + (64 << 20))
        guard !overflow, want < UInt64(old.rlim_cur) else { return body() }
        var lowered = old
        lowered.rlim_cur = rlim_t(want)
        guard setrlimit(resource, &lowered) == 0 else { return body() }
        defer { setrlimit(resource, &old) }
        return body()
    }
}

extension HDF5Dataset {
    /// Variable-length values stored contiguously or in unfiltered chunks: their on-disk
    /// descriptors are checked like an attribute's (``HDF5RawFile/checkDescriptors(_:count:)``)
    /// before HDF5 allocates what they declare; a damaged one is recorded as the input's
    /// refusal. Compact storage, filtered chunks (descriptors compressed) and more than 4096
    /// chunks or 16 MiB of descriptors are read under an allocation ceiling instead.
    func variableLengthsFit(count n: Int, read: () -> Bool) -> Bool {
        func refuse(_ why: String) -> Bool {
            inputGuard?.refuse(EMError(.badInput, file: inputGuard?.input ?? filePath, at: path,
                                       "variable-length strings: \(why) (damaged file)"))
            return false
        }
        guard inputGuard?.refusal == nil else { return false }
        guard let file = HDF5RawFile(object: id) else { return refuse("the file cannot be read") }
        let record = file.descriptorBytes
        var blocks: [(address: UInt64, bytes: Int)] = []
        let dcpl = H5ID(H5Dget_create_plist(id), .plist)
        switch H5Pget_layout(dcpl.id) {
        case H5D_CONTIGUOUS:
            let addr = H5Dget_offset(id)
            guard addr != UInt64.max else { return read() }     // nothing written: no heap objects
            guard let b = MemoryBudget.product([n, record]) else { return refuse("the declared count overflows") }
            blocks.append((UInt64(addr), b))
        case H5D_CHUNKED:
            guard H5Pget_nfilters(dcpl.id) == 0 else { return AllocationCeiling.run(MemoryBudget.maxAllocation, read) }
            var count: hsize_t = 0
            let space = H5ID(H5Dget_space(id), .dataspace)
            guard H5Dget_num_chunks(id, space.id, &count) >= 0 else { return refuse("its chunks cannot be counted") }
            guard count <= 4096 else { return AllocationCeiling.run(MemoryBudget.maxAllocation, read) }
            var offset = [hsize_t](repeating: 0, count: 32)
            for i in 0..<count {
                var mask: UInt32 = 0
                var addr: haddr_t = 0
                var size: hsize_t = 0
                guard H5Dget_chunk_info(id, space.id, i, &offset, &mask, &addr, &size) >= 0 else { return refuse("a chunk cannot be located") }
                blocks.append((UInt64(addr), Int(clamping: size)))
            }
        case H5D_COMPACT:
            return AllocationCeiling.run(MemoryBudget.maxAllocation, read)
        default:
            return refuse("unsupported storage layout")
        }
        guard blocks.reduce(0, { $0 + $1.bytes }) <= 1 << 24 else { return AllocationCeiling.run(MemoryBudget.maxAllocation, read) }
        for block in blocks {
            guard let raw = file.read(block.address, block.bytes) else { return refuse("the values lie past the end of the file") }
            if let problem = file.checkDescriptors(raw[...], count: block.bytes / record) { return refuse(problem) }
        }
        return read()
    }
}

extension HDF5Group {
    /// Whether HDF5 may look names up in this group (its local heap passed the check; always
    /// true for files emconv writes).
    func linksReadable() -> Bool {
        guard let g = inputGuard else { return true }
        var info = H5O_info_t()
        guard H5Oget_info2(id, &info, UInt32(H5O_INFO_BASIC)) >= 0 else { return false }
        return g.localHeapFits(file: UInt(info.fileno), address: UInt64(info.addr), object: id, path: path)
    }

    /// The same for the group at `relative` (a path below this group, already looked up).
    func linksReadable(at relative: String) -> Bool {
        guard let g = inputGuard else { return true }
        var info = H5O_info_t()
        guard H5Oget_info_by_name2(id, relative, &info, UInt32(H5O_INFO_BASIC), lapl) >= 0 else { return false }
        guard info.type == H5O_TYPE_GROUP else { return true }
        guard let o = Optional(H5Oopen(id, relative, lapl)), o >= 0 else { return false }
        defer { H5Oclose(o) }
        return g.localHeapFits(file: UInt(info.fileno), address: UInt64(info.addr), object: o, path: childPath(relative))
    }
}
