import Foundation
import CDeflate
import CHDF5
import EMCore

/// What an HDF5 input may make emconv read, decided in one place for every HDF5-based reader.
///
/// - External raw storage (a dataset whose values live in other files) is always refused.
/// - External links and virtual-dataset (VDS) sources may lead only to regular HDF5 files in
///   the input's own folder tree (Dectris masters need their data files); anything else is
///   refused, naming the link or dataset and its target.
/// - Every dataset's declared shape must be representable (no overflowing sizes).
///
/// The guard sets HDF5's external-link callback, external-link, external-file and VDS prefixes
/// and read-only access on the property lists every open uses, so a link emconv did not inspect
/// itself cannot escape either. A refusal makes the open fail (the object reads as missing) and
/// is recorded; ``HDF5File/guarded(_:)`` then throws it as the one-line error.
/// Used under ``HDF5/lock``.
public final class HDF5Guard: @unchecked Sendable {
    /// The input file as given.
    let input: String
    /// Real paths of the folders whose trees may hold linked files (the input's folder as
    /// given and the folder of its real path, when a symlink leads elsewhere).
    let roots: [String]
    /// The input's folder, set as HDF5's external-link, external-file and VDS prefix.
    let prefixDir: String
    /// Nesting of VDS source checks (a source may itself be virtual); refused beyond 4.
    let depth: Int
    /// Where refusals are recorded (the guard of the input file itself).
    private weak var sink: HDF5Guard?
    private var firstRefusal: EMError?
    private(set) var lapl: H5ID!
    private(set) var dapl: H5ID!

    init(input: String, parent: HDF5Guard? = nil) {
        self.input = parent?.input ?? input
        if let parent {
            roots = parent.roots
            prefixDir = parent.prefixDir
            depth = parent.depth + 1
        } else {
            let abs = HDF5Guard.absolute(input)
            let dir = (abs as NSString).deletingLastPathComponent
            var r: [String] = []
            if let d = HDF5Guard.realPath(dir) { r.append(d) }
            if let f = HDF5Guard.realPath(abs) {
                let d = (f as NSString).deletingLastPathComponent
                if !r.contains(d) { r.append(d) }
            }
            roots = r
            prefixDir = dir
            depth = 0
        }
        sink = parent?.sink ?? parent
        let me = Unmanaged.passUnretained(self).toOpaque()
        let l = H5ID(H5Pcreate(emc_P_LINK_ACCESS()), .plist)
        let d = H5ID(H5Pcreate(emc_P_DATASET_ACCESS()), .plist)
        // A dataset access list is also a link access list (it is used to reach the dataset).
        for p in [l.id, d.id] {
            H5Pset_elink_prefix(p, prefixDir)
            H5Pset_elink_acc_flags(p, emc_F_ACC_RDONLY())
            H5Pset_elink_cb(p, elinkTraverse, me)
        }
        H5Pset_efile_prefix(d.id, prefixDir)
        H5Pset_virtual_prefix(d.id, prefixDir)
        lapl = l
        dapl = d
    }

    /// Groups whose local heap was checked (file number and header address): passed or not.
    private var heapsChecked: [String: Bool] = [:]

    /// Whether the local heap of the group at `address` passed ``HDF5RawFile/checkLocalHeap(group:)``
    /// (checked once per group; a failure is recorded as the refusal).
    func localHeapFits(file: UInt, address: UInt64, object: hid_t, path: String) -> Bool {
        let key = "\(file):\(address)"
        if let ok = sink?.heapsChecked[key] ?? heapsChecked[key] { return ok }
        var ok = true
        if let raw = HDF5RawFile(object: object), let problem = raw.checkLocalHeap(group: address) {
            refuse(EMError(.badInput, file: input, at: path, "group: \(problem) (damaged file)"))
            ok = false
        }
        if let sink { sink.heapsChecked[key] = ok } else { heapsChecked[key] = ok }
        return ok
    }

    /// The first refusal recorded while reading this input (nil: nothing was refused).
    public var refusal: EMError? { sink?.firstRefusal ?? firstRefusal }

    func refuse(_ e: EMError) {
        let target = sink ?? self
        if target.firstRefusal == nil { target.firstRefusal = e }
    }

    // MARK: Paths

    static func absolute(_ p: String) -> String {
        if p.hasPrefix("/") { return p }
        return FileManager.default.currentDirectoryPath + "/" + p
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    func isInside(_ real: String) -> Bool {
        roots.contains { $0 == "/" || real.hasPrefix($0 + "/") }
    }

    /// Whether `path` holds the HDF5 signature where HDF5 looks for it (0, 512, 1024, …).
    static func hasHDF5Signature(_ path: String) -> Bool {
        guard let fh = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? fh.close() }
        let size = (try? fh.seekToEnd()) ?? 0
        var off: UInt64 = 0
        while off + 8 <= size {
            try? fh.seek(toOffset: off)
            if let b = try? fh.read(upToCount: 8), Array(b) == [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A] { return true }
            off = off == 0 ? 512 : off * 2
        }
        return false
    }

    enum Target: Equatable {
        case inside(String)
        case outside(String)
        case missing
    }

    /// The file HDF5 would open for an external link or VDS source named `name` in the file
    /// `parentFile`, trying the places HDF5 1.10 tries, in its order: an absolute name as is;
    /// the prefixes of `envVar`; emconv's prefix (the input's folder); the parent's folder; the
    /// working directory; the parent's real folder. The first existing candidate outside the
    /// input's tree (or not a regular file) is refused; the first inside that is HDF5 is it.
    func locate(_ name: String, from parentFile: String, envVar: String) -> Target {
        var candidates: [String] = []
        var base = name
        if name.hasPrefix("/") {
            candidates.append(name)
            base = (name as NSString).lastPathComponent
        }
        func join(_ dir: String, _ n: String) -> String { dir.hasSuffix("/") ? dir + n : dir + "/" + n }
        if let env = getenv(envVar) {
            for p in String(cString: env).split(separator: ":") where !p.isEmpty { candidates.append(join(String(p), base)) }
        }
        candidates.append(join(prefixDir, base))
        let parentAbs = HDF5Guard.absolute(parentFile)
        candidates.append(join((parentAbs as NSString).deletingLastPathComponent, base))
        candidates.append(base)
        if let r = HDF5Guard.realPath(parentAbs) { candidates.append(join((r as NSString).deletingLastPathComponent, base)) }
        for c in candidates {
            var st = stat()
            guard stat(c, &st) == 0 else { continue }
            guard let real = HDF5Guard.realPath(c), isInside(real), (st.st_mode & S_IFMT) == S_IFREG else {
                return .outside(HDF5Guard.realPath(c) ?? c)
            }
            if HDF5Guard.hasHDF5Signature(c) { return .inside(real) }
        }
        return .missing
    }

    // MARK: External links

    /// Decides an external link HDF5 is about to follow (from the link-access callback).
    func admitExternalLink(parentFile: String, group: String, file: String, object: String) -> Bool {
        let place = "external link in \(group) to \(file):\(object)"
        switch locate(file, from: parentFile, envVar: "HDF5_EXT_PREFIX") {
        case .inside:
            return true
        case let .outside(t):
            refuse(EMError(.badInput, file: input, at: place,
                           "leads to '\(t)', outside the input's folder; emconv follows links only to HDF5 files inside the input's folder"))
        case .missing:
            refuse(EMError(.missingInput, file: input, at: place, "the linked file was not found in the input's folder"))
        }
        return false
    }

    // MARK: Datasets

    /// Opens `name` in `group` with the guarded access list and admits it (see ``admit(_:)``);
    /// nil when missing or refused. A chunked dataset gets a chunk cache holding one chunk,
    /// so reading it frame by frame decompresses each chunk once.
    func openDataset(in group: HDF5Group, _ name: String) -> HDF5Dataset? {
        let path = group.childPath(name)
        var id = H5Dopen2(group.id, name, dapl.id)
        guard id >= 0 else { return nil }
        var ds = HDF5Dataset(H5ID(id, .dataset), path: path, filePath: group.filePath)
        ds.inputGuard = self
        guard admit(ds) else { return nil }
        if let c = ds.declaredChunkBytes, c > 1 << 20, c <= MemoryBudget.maxAllocation {
            let p = H5ID(H5Pcopy(dapl.id), .plist)
            H5Pset_chunk_cache(p.id, 521, c + (1 << 20), 0.75)
            id = H5Dopen2(group.id, name, p.id)
            if id >= 0 {
                ds = HDF5Dataset(H5ID(id, .dataset), path: path, filePath: group.filePath)
                ds.inputGuard = self
            }
        }
        return ds
    }

    /// Whether a just-opened dataset may be read: a representable shape, no external raw
    /// storage, and virtual sources only in HDF5 files inside the input's tree (checked down
    /// the chain). Refusals are recorded.
    func admit(_ d: HDF5Dataset) -> Bool {
        let place = d.filePath == input ? d.path : "\(d.path) in \(d.filePath)"
        let sp = H5ID(H5Dget_space(d.id), .dataspace)
        let rank = Int(H5Sget_simple_extent_ndims(sp.id))
        guard rank >= 0, rank <= 32 else {
            refuse(EMError(.badInput, file: input, at: place, "dataset has an invalid dataspace (damaged file)"))
            return false
        }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        if rank > 0 { H5Sget_simple_extent_dims(sp.id, &dims, nil) }
        let t = H5ID(H5Dget_type(d.id), .datatype)
        let size = H5Tget_size(t.id)
        let sizes = dims.prefix(rank).map { $0 > hsize_t(1) << 56 ? Int.max : Int($0) } + [size]
        guard let total = MemoryBudget.product(sizes), total < Int.max / 4 else {
            refuse(EMError(.badInput, file: input, at: place,
                           "dataset declares shape \(dims.prefix(rank).map(String.init).joined(separator: " x ")) of \(size)-byte values: the size overflows (damaged file)"))
            return false
        }
        let dcpl = H5ID(H5Dget_create_plist(d.id), .plist)
        if H5Pget_external_count(dcpl.id) > 0 {
            var name = [CChar](repeating: 0, count: 1024)
            var off: off_t = 0
            var n: hsize_t = 0
            H5Pget_external(dcpl.id, 0, name.count, &name, &off, &n)
            refuse(EMError(.badInput, file: input, at: place,
                           "dataset keeps its values in the external file '\(String(cString: name))'; emconv never reads raw data outside the input"))
            return false
        }
        let layout = H5Pget_layout(dcpl.id)
        if layout == H5D_CHUNKED {
            // Chunks have the dataspace's rank, at least 1 (libhdf5 1.12+ refuses a scalar chunked
            // dataset when opening it; 1.10 opens it and its reads then allocate without bound).
            let chunk = d.declaredChunkShape
            guard rank >= 1, let chunk, chunk.count == rank, !chunk.contains(0) else {
                refuse(EMError(.badInput, file: input, at: place,
                               "dataset of \(rank) dimension(s) declares chunks of \(chunk.map { $0.map(String.init).joined(separator: " x ") } ?? "unreadable") values (damaged file)"))
                return false
            }
        }
        if layout == H5D_VIRTUAL { return admitVirtual(d, dcpl: dcpl) }
        return true
    }

    private func admitVirtual(_ d: HDF5Dataset, dcpl: H5ID) -> Bool {
        var count = 0
        guard H5Pget_virtual_count(dcpl.id, &count) >= 0, count <= 1 << 16 else {
            refuse(EMError(.badInput, file: input, at: d.path, "virtual dataset with an unreadable mapping list (damaged file)"))
            return false
        }
        guard depth < 4 else {
            refuse(EMError(.badInput, file: input, at: d.path, "virtual dataset whose sources are virtual more than 4 levels deep"))
            return false
        }
        let own = HDF5Guard.fileName(d.id) ?? d.filePath
        var checked = Set<String>()
        for i in 0..<count {
            func text(_ f: (hid_t, Int, UnsafeMutablePointer<CChar>?, Int) -> Int) -> String {
                let n = f(dcpl.id, i, nil, 0)
                guard n >= 0, n < 1 << 16 else { return "" }
                var buf = [CChar](repeating: 0, count: n + 1)
                _ = f(dcpl.id, i, &buf, buf.count)
                return String(cString: buf)
            }
            let file = text { H5Pget_virtual_filename($0, $1, $2, $3) }
            let dset = text { H5Pget_virtual_dsetname($0, $1, $2, $3) }
            let place = "\(d.path) (virtual source \(file):\(dset))"
            if file.isEmpty || dset.isEmpty || file.contains("%") || dset.contains("%") {
                refuse(EMError(.unsupported, file: input, at: place, "printf-style or empty virtual source names are not supported"))
                return false
            }
            var sourceFile = own
            if file != "." {
                switch locate(file, from: own, envVar: "HDF5_VDS_PREFIX") {
                case let .inside(p): sourceFile = p
                case let .outside(t):
                    refuse(EMError(.badInput, file: input, at: place,
                                   "maps '\(t)', outside the input's folder; emconv reads virtual sources only from HDF5 files inside the input's folder"))
                    return false
                case .missing:
                    refuse(EMError(.missingInput, file: input, at: place, "the source file was not found in the input's folder"))
                    return false
                }
            }
            guard checked.insert(sourceFile + "\u{0}" + dset).inserted else { continue }
            // The source dataset itself must pass the same checks (external storage, VDS chains).
            let nested = HDF5Guard(input: input, parent: self)
            guard let f = try? HDF5File(reading: sourceFile, guard: nested) else {
                refuse(EMError(.badInput, file: input, at: place, "the source file cannot be opened as HDF5"))
                return false
            }
            let rel = String(dset.drop { $0 == "/" })
            if rel.isEmpty || f.root.openDataset(rel) == nil {
                if refusal == nil {
                    refuse(EMError(.missingInput, file: input, at: place, "the source dataset does not exist"))
                }
                return false
            }
        }
        return true
    }

    /// The name of the file holding an object (as HDF5 opened it).
    static func fileName(_ id: hid_t) -> String? {
        let n = H5Fget_name(id, nil, 0)
        guard n > 0, n < 1 << 16 else { return nil }
        var buf = [CChar](repeating: 0, count: n + 1)
        H5Fget_name(id, &buf, buf.count)
        return String(cString: buf)
    }

    // MARK: Decompression bound

    /// The largest output one chunk may decompress to, set before every read to the chunk
    /// size of the dataset read (under ``HDF5/lock``); the zstd filter refuses more.
    nonisolated(unsafe) static var decodeLimit: Int = MemoryBudget.maxAllocation

    /// Set by a filter that stopped a chunk inflating beyond ``decodeLimit``.
    nonisolated(unsafe) static var limitExceeded = false

    /// After a read: back to the budget (reads that do not go through ``HDF5Dataset/checkRead``).
    static func endRead() {
        decodeLimit = MemoryBudget.maxAllocation
        limitExceeded = false
    }

    /// Why a read failed, for the one-line error.
    static func readFailure(_ fallback: String) -> String {
        limitExceeded ? "a chunk decompresses to more than its declared \(decodeLimit - (64 << 10)) bytes (damaged file)" : fallback
    }

    /// Replaces HDF5's deflate filter (id 1) by libdeflate with a bounded output: HDF5's own
    /// doubles its buffer until the stream ends, so a chunk declared as 1 MiB could inflate to
    /// gigabytes. Output beyond ``decodeLimit`` makes the read fail. The public `H5Zregister`
    /// refuses to replace predefined filters, so HDF5's internal registration function (exported
    /// by libhdf5 1.8-1.14) is used; without it, HDF5's own filter stays (and the bound with it).
    @discardableResult
    static func registerBoundedDeflate() -> Bool {
        typealias Register = @convention(c) (UnsafePointer<H5Z_class2_t>) -> herr_t
        guard let sym = dlsym(nil, "H5Z_register") else { return false }
        var cls = H5Z_class2_t()
        cls.version = Int32(emc_Z_CLASS_T_VERS())
        cls.id = 1
        cls.encoder_present = 1
        cls.decoder_present = 1
        cls.name = UnsafePointer(strdup("deflate"))
        cls.filter = boundedDeflate
        return unsafeBitCast(sym, to: Register.self)(&cls) >= 0
    }

    /// Decompressor and compressors reused under ``HDF5/lock`` (filters run inside HDF5 calls).
    nonisolated(unsafe) static var inflater: OpaquePointer?
    nonisolated(unsafe) static var deflaters: [Int32: OpaquePointer] = [:]
}

/// HDF5 filter callback for deflate (zlib format), both directions, bounded when decompressing.
private let boundedDeflate: H5Z_func_t = { flags, cdNelmts, cdValues, nbytes, bufSize, buf in
    guard let buf, let bufSize, let input = buf.pointee else { return 0 }
    if flags & emc_Z_FLAG_REVERSE() != 0 {
        if HDF5Guard.inflater == nil { HDF5Guard.inflater = libdeflate_alloc_decompressor() }
        guard let d = HDF5Guard.inflater else { return 0 }
        let limit = max(HDF5Guard.decodeLimit, 1)
        guard let out = malloc(limit) else { return 0 }
        var usedIn = 0, produced = 0
        let r = libdeflate_zlib_decompress_ex(d, input, nbytes, out, limit, &usedIn, &produced)
        guard r == LIBDEFLATE_SUCCESS else {
            if r == LIBDEFLATE_INSUFFICIENT_SPACE { HDF5Guard.limitExceeded = true }
            free(out)
            return 0
        }
        free(input)
        buf.pointee = out
        bufSize.pointee = limit
        return produced
    }
    let level = cdNelmts > 0 ? Int32(clamping: min(cdValues![0], 12)) : 6
    if HDF5Guard.deflaters[level] == nil { HDF5Guard.deflaters[level] = libdeflate_alloc_compressor(max(level, 1)) }
    guard let c = HDF5Guard.deflaters[level] else { return 0 }
    let cap = libdeflate_zlib_compress_bound(c, nbytes)
    guard let out = malloc(cap) else { return 0 }
    let n = libdeflate_zlib_compress(c, input, nbytes, out, cap)
    guard n > 0 else { free(out); return 0 }
    free(input)
    buf.pointee = out
    bufSize.pointee = cap
    return n
}

/// HDF5's external-link callback: asks the guard in `opData`; read-only access always.
private let elinkTraverse: H5L_elink_traverse_t = { parentFile, parentGroup, childFile, childObject, accFlags, _, opData in
    guard let opData, let parentFile, let childFile else { return -1 }
    accFlags?.pointee = emc_F_ACC_RDONLY()
    let g = Unmanaged<HDF5Guard>.fromOpaque(opData).takeUnretainedValue()
    let ok = g.admitExternalLink(parentFile: String(cString: parentFile), group: parentGroup.map { String(cString: $0) } ?? "",
                                 file: String(cString: childFile), object: childObject.map { String(cString: $0) } ?? "")
    return ok ? 0 : -1
}

extension HDF5File {
    /// Runs a reader's work on this file and throws the guard's refusal, if any, in place of
    /// its result or error: a refused link reads as missing, so the reader may have failed on
    /// that, but the refusal is what the user must see.
    public func guarded<T>(_ body: () throws -> T) throws -> T {
        let r = Result { try body() }
        if let e = inputGuard?.refusal { throw e }
        return try r.get()
    }
}

extension HDF5Dataset {
    /// Bytes the file declares for the whole dataset (shape x element size), nil on overflow.
    public var declaredBytes: Int? {
        let t = H5ID(H5Dget_type(id), .datatype)
        return MemoryBudget.product(shape + [H5Tget_size(t.id)])
    }

    /// Bytes the file stores for the dataset (allocated, possibly compressed; 0 for unwritten).
    public var storedBytes: Int64 { Int64(clamping: H5Dget_storage_size(id)) }

    /// ``storedBytes``, or nil for a virtual dataset (its values are stored in its sources).
    public var knownStoredBytes: Int64? { isVirtual ? nil : storedBytes }

    var isVirtual: Bool {
        let p = H5ID(H5Dget_create_plist(id), .plist)
        return H5Pget_layout(p.id) == H5D_VIRTUAL
    }

    /// Bytes of one chunk as declared (chunk shape x element size), nil when not chunked.
    public var chunkBytes: Int? {
        guard let c = chunkShape else { return nil }
        let t = H5ID(H5Dget_type(id), .datatype)
        return MemoryBudget.product(c + [H5Tget_size(t.id)]) ?? Int.max
    }

    /// Checks a read before its buffer is allocated: the chunk HDF5 will decompress must fit
    /// the memory budget (and bounds the decompressor), the buffer too, and a read of the
    /// whole dataset must be plausible for what the file stores. One-line `.badInput` errors.
    public func checkRead(elements: Int, elementSize: Int, whole: Bool) throws {
        if let c = declaredChunkBytes {
            try MemoryBudget.check(c, what: "one chunk of \(declaredChunkShape!.map(String.init).joined(separator: " x ")) values",
                                   file: filePath, at: path)
            HDF5Guard.decodeLimit = c + (64 << 10)   // slack for checksums (fletcher32) in the pipeline
        } else {
            HDF5Guard.decodeLimit = MemoryBudget.maxAllocation
        }
        try MemoryBudget.check(MemoryBudget.product([elements, elementSize]), what: "reading \(elements) values",
                               file: filePath, at: path, stored: whole ? knownStoredBytes : nil)
    }
}

extension HDF5Node {
    /// Checks an attribute read before its buffer is allocated (an attribute's values are
    /// stored uncompressed, so the declared size must fit the file too).
    func checkAttributeRead(_ name: String, elements: Int, elementSize: Int) -> Bool {
        var fileSize: hsize_t = 0
        let fid = H5Iget_file_id(id)
        if fid >= 0 { H5Fget_filesize(fid, &fileSize); H5Fclose(fid) }
        return (try? MemoryBudget.check(MemoryBudget.product([elements, elementSize]), what: "attribute \(name)",
                                        file: filePath, at: path, stored: Int64(clamping: fileSize), maxRatio: 1, slack: 0)) != nil
    }
}

extension HDF5HyperslabSource: StoredSizeReporting {
    public var storedBytes: Int64? {
        HDF5.lock.withLock {
            guard let s = dataset.knownStoredBytes else { return nil }
            return imag.map { $0.knownStoredBytes.map { s + $0 } } ?? s
        }
    }
}
