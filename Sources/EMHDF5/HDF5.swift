import EMCore
import Foundation
import CHDF5
import CZstd

/// A thin, safe layer over the HDF5 C library: files, groups, attributes, chunked datasets with
/// direct chunk writes, and the reads that tests and validation need. Every failure becomes an
/// ``EMError`` naming the file and the object.
public enum HDF5 {
    /// HDF5 filter id of zstd (registered with The HDF Group; hdf5plugin uses it).
    public static let zstdFilterID: H5Z_filter_t = 32015

    private static let setup: Void = {
        // No HDF5 teardown at exit: after a failed write (disk full) HDF5 1.10 crashes closing
        // the half-closed file's objects there. emconv closes every file it opens itself.
        H5dont_atexit()
        H5open()
        emc_silence_errors()
        registerZstdFilter()
        HDF5Guard.registerBoundedDeflate()
        registerBitshuffleFilter()
        registerBloscFilter()
    }()

    /// The HDF5 library on Debian is not thread-safe: any HDF5 call made while another thread may
    /// also call HDF5 (an HDF5-based reader feeding the writer's pipeline) holds this lock.
    public static let lock = NSRecursiveLock()

    /// Initializes the library once: silences HDF5's error printing, registers zstd.
    public static func initialize() { _ = setup }

    /// HDF5's automatic error printing may be per thread: readers called from pipeline threads
    /// turn it off there too (errors are reported by emconv, in one line).
    public static func silenceErrorsOnThisThread() {
        initialize()
        emc_silence_errors()
    }

    public static var libraryVersion: String {
        initialize()
        var maj: UInt32 = 0, min: UInt32 = 0, rel: UInt32 = 0
        H5get_libversion(&maj, &min, &rel)
        return "\(maj).\(min).\(rel)"
    }

    private static func registerZstdFilter() {
        let name = strdup("zstd")
        var cls = H5Z_class2_t()
        cls.version = Int32(emc_Z_CLASS_T_VERS())
        cls.id = zstdFilterID
        cls.encoder_present = 1
        cls.decoder_present = 1
        cls.name = UnsafePointer(name)
        cls.can_apply = nil
        cls.set_local = nil
        cls.filter = zstdFilterCallback
        _ = H5Zregister(&cls)
    }
}

/// HDF5 filter callback for zstd (both directions). Buffers are malloc'ed as HDF5 expects.
private let zstdFilterCallback: H5Z_func_t = { flags, cdNelmts, cdValues, nbytes, bufSize, buf in
    guard let buf, let bufSize, let input = buf.pointee else { return 0 }
    if flags & emc_Z_FLAG_REVERSE() != 0 {
        let content = ZSTD_getFrameContentSize(input, nbytes)
        // ZSTD_CONTENTSIZE_UNKNOWN / ERROR are the two largest UInt64 values; a chunk never
        // decompresses to more than its declared size (the bound set before each read).
        guard content < UInt64.max - 1 else { return 0 }
        guard content <= UInt64(max(HDF5Guard.decodeLimit, 0)) else { HDF5Guard.limitExceeded = true; return 0 }
        let outSize = Int(content)
        guard let out = malloc(max(outSize, 1)) else { return 0 }
        let r = ZSTD_decompress(out, outSize, input, nbytes)
        if ZSTD_isError(r) != 0 || r != outSize { free(out); return 0 }
        free(input)
        buf.pointee = out
        bufSize.pointee = outSize
        return outSize
    } else {
        let level = cdNelmts > 0 ? Int32(bitPattern: cdValues![0]) : 3
        let cap = ZSTD_compressBound(nbytes)
        guard let out = malloc(cap) else { return 0 }
        let r = ZSTD_compress(out, cap, input, nbytes, level)
        if ZSTD_isError(r) != 0 { free(out); return 0 }
        free(input)
        buf.pointee = out
        bufSize.pointee = cap
        return r
    }
}

/// An owned HDF5 identifier closed with the right function.
public final class H5ID {
    public enum Kind { case file, group, dataset, dataspace, datatype, attribute, plist }
    public let id: hid_t
    public let kind: Kind
    public init(_ id: hid_t, _ kind: Kind) {
        self.id = id
        self.kind = kind
        // An HDF5 call just completed: progress for the watchdog (a looping call never gets here).
        Watchdog.beat()
    }
    deinit {
        guard id >= 0 else { return }
        switch kind {
        case .file: H5Fclose(id)
        case .group: H5Gclose(id)
        case .dataset: H5Dclose(id)
        case .dataspace: H5Sclose(id)
        case .datatype: H5Tclose(id)
        case .attribute: H5Aclose(id)
        case .plist: H5Pclose(id)
        }
    }
}

/// Creates a variable-length UTF-8 string type.
public func vlenStringType() -> H5ID {
    let t = H5Tcopy(emc_T_C_S1())
    H5Tset_size(t, emc_T_VARIABLE())
    H5Tset_cset(t, H5T_CSET_UTF8)
    return H5ID(t, .datatype)
}

/// HDF5 enum type FALSE=0/TRUE=1 over int8: how h5py and NeXus store booleans.
public func boolEnumType() -> H5ID {
    let t = H5Tenum_create(emc_T_NATIVE_INT8())
    var f: Int8 = 0, tr: Int8 = 1
    H5Tenum_insert(t, "FALSE", &f)
    H5Tenum_insert(t, "TRUE", &tr)
    return H5ID(t, .datatype)
}

/// The HDF5 file (on-disk, little-endian) type for an element type; complex types are the
/// compound {r, i} that h5py reads as complex; RGB(A) a compound of uint8 fields.
public func h5Type(_ t: ElementType) -> H5ID {
    switch t {
    case .int8: return H5ID(H5Tcopy(emc_T_STD_I8LE()), .datatype)
    case .uint8: return H5ID(H5Tcopy(emc_T_STD_U8LE()), .datatype)
    case .int16: return H5ID(H5Tcopy(emc_T_STD_I16LE()), .datatype)
    case .uint16: return H5ID(H5Tcopy(emc_T_STD_U16LE()), .datatype)
    case .int32: return H5ID(H5Tcopy(emc_T_STD_I32LE()), .datatype)
    case .uint32: return H5ID(H5Tcopy(emc_T_STD_U32LE()), .datatype)
    case .int64: return H5ID(H5Tcopy(emc_T_STD_I64LE()), .datatype)
    case .uint64: return H5ID(H5Tcopy(emc_T_STD_U64LE()), .datatype)
    case .float32: return H5ID(H5Tcopy(emc_T_IEEE_F32LE()), .datatype)
    case .float64: return H5ID(H5Tcopy(emc_T_IEEE_F64LE()), .datatype)
    case .bool: return boolEnumType()
    case .complex64, .complex128:
        let c = t.componentSize
        let id = H5Tcreate(H5T_COMPOUND, 2 * c)
        let f = c == 4 ? emc_T_IEEE_F32LE() : emc_T_IEEE_F64LE()
        H5Tinsert(id, "r", 0, f)
        H5Tinsert(id, "i", c, f)
        return H5ID(id, .datatype)
    case .rgb8, .rgba8:
        let names = t == .rgb8 ? ["R", "G", "B"] : ["R", "G", "B", "A"]
        let id = H5Tcreate(H5T_COMPOUND, names.count)
        for (i, n) in names.enumerated() { H5Tinsert(id, n, i, emc_T_STD_U8LE()) }
        return H5ID(id, .datatype)
    }
}

