import CBlosc
import Foundation

/// Chunks of HDF5 filter 32001 (Blosc 1, as hdf5plugin, PyTables and HyperSpy/ePSIC conversions
/// write them): one Blosc frame per chunk, decoded with libblosc's context API (no global state,
/// one thread: emconv decodes chunks in parallel itself). The layout is in
/// Sources/Formats/Dectris/FORMAT.md.
public enum BloscChunk {
    /// HDF5 filter id (registered with The HDF Group).
    public static let filterID = 32001
    /// Blosc never stores more than this beyond the uncompressed bytes (a copied frame).
    public static let maxOverhead = Int(BLOSC_MAX_OVERHEAD)

    public static var version: String { BLOSC_VERSION_STRING }

    /// The uncompressed size a frame declares, when libblosc finds the frame consistent with its
    /// `count` stored bytes (header fields and block table), else nil.
    public static func declaredSize(_ src: UnsafeRawBufferPointer) -> Int? {
        guard src.count >= Int(BLOSC_MIN_HEADER_LENGTH), let p = src.baseAddress else { return nil }
        var n = 0
        guard blosc_cbuffer_validate(p, src.count, &n) == 0 else { return nil }
        return n
    }

    /// Encodes `src` as one Blosc frame (codec number as in `cd_values[6]`: 0 blosclz, 1 lz4,
    /// 2 lz4hc, 4 zlib, 5 zstd); returns its size, or 0 when it does not fit or the codec is unknown.
    public static func encode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawPointer, capacity: Int,
                              elementSize: Int, level: Int, shuffle: Int, codec: Int) -> Int {
        guard let name = compname(Int32(codec)), let base = src.baseAddress else { return 0 }
        let m = blosc_compress_ctx(Int32(max(0, min(9, level))), Int32(max(0, min(2, shuffle))), max(1, elementSize), src.count,
                                   base, dst, capacity, name, 0, 1)
        return m > 0 ? Int(m) : 0
    }

    /// libblosc's name of codec number `code`, or nil when it has none.
    static func compname(_ code: Int32) -> UnsafePointer<CChar>? {
        var name: UnsafePointer<CChar>?
        return blosc_compcode_to_compname(code, &name) >= 0 ? name : nil
    }

    /// Decodes `src` into `dst`, which must be exactly the declared size (check
    /// ``declaredSize(_:)`` before allocating). Throws a one-line ``EMError`` (no file).
    public static func decode(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        guard let n = declaredSize(src) else { throw EMError(.badInput, "Blosc chunk: damaged header (\(src.count) bytes)") }
        guard n == dst.count else { throw EMError(.badInput, "Blosc chunk: declares \(n) bytes, expected \(dst.count)") }
        if n == 0 { return }
        let r = blosc_decompress_ctx(src.baseAddress!, dst.baseAddress!, dst.count, 1)
        guard r == Int32(n) else { throw EMError(.badInput, "Blosc chunk: does not decode to its \(n) bytes") }
    }
}
