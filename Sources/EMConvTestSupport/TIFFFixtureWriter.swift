import CTIFF
import Foundation

/// TIFF fixtures for tests: `build` lays out classic or BigTIFF files byte by byte (either byte
/// order, uncompressed strips, any extra tags such as vendor metadata); `writeTiled` writes
/// tiled, deflate-compressed pages through libtiff.
public enum TIFFFixtureWriter {
    /// An extra directory entry: ASCII text, raw bytes (UNDEFINED), doubles, or a LONG offset to
    /// a blob written elsewhere in the file (TVIPS, Olympus SIS).
    public enum Value {
        case ascii(String)
        case bytes([UInt8])
        case doubles([Double])
        case rational(UInt32, UInt32)
        case short(UInt16)
        case pointer([UInt8])
    }

    public struct Page {
        public var width: Int, height: Int
        public var bitsPerSample: Int, sampleFormat: Int, samplesPerPixel: Int
        public var rowsPerStrip: Int
        /// Pixel bytes in native (little-endian) order, C order.
        public var pixels: [UInt8]
        public var tags: [(UInt16, Value)]
        public init(width: Int, height: Int, bitsPerSample: Int, sampleFormat: Int = 1, samplesPerPixel: Int = 1,
                    rowsPerStrip: Int = 0, pixels: [UInt8], tags: [(UInt16, Value)] = []) {
            self.width = width; self.height = height; self.bitsPerSample = bitsPerSample; self.sampleFormat = sampleFormat
            self.samplesPerPixel = samplesPerPixel; self.rowsPerStrip = rowsPerStrip > 0 ? rowsPerStrip : height
            self.pixels = pixels; self.tags = tags
        }
    }

    /// Writes `pages` as one TIFF; `bigEndian` swaps the pixel samples too.
    public static func build(_ path: String, pages: [Page], big: Bool = false, bigEndian: Bool = false) throws {
        var out: [UInt8] = []
        func put(_ v: UInt64, _ n: Int) {
            for i in 0..<n { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(bigEndian ? n - 1 - i : i)))) }
        }
        func align() { if out.count % 2 == 1 { out.append(0) } }
        out += bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]
        put(big ? 43 : 42, 2)
        if big { put(8, 2); put(0, 2) }
        let firstPointerAt = out.count
        put(0, big ? 8 : 4)
        var previousPointer = firstPointerAt
        for page in pages {
            // Pixel strips first.
            let sampleBytes = page.bitsPerSample / 8
            var px = page.pixels
            if bigEndian && sampleBytes > 1 {
                for s in stride(from: 0, to: px.count, by: sampleBytes) { px[s..<(s + sampleBytes)].reverse() }
            }
            let rowBytes = page.width * page.samplesPerPixel * sampleBytes
            var stripOffsets: [UInt64] = [], stripCounts: [UInt64] = []
            for r in stride(from: 0, to: page.height, by: page.rowsPerStrip) {
                let n = min(page.rowsPerStrip, page.height - r) * rowBytes
                align()
                stripOffsets.append(UInt64(out.count)); stripCounts.append(UInt64(n))
                out += px[(r * rowBytes)..<(r * rowBytes + n)]
            }
            // Entries: (tag, type, count, value bytes in file order).
            var entries: [(UInt16, UInt16, UInt64, [UInt8])] = []
            func enc(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64(bigEndian ? n - 1 - $0 : $0))) } }
            func short(_ t: UInt16, _ v: [Int]) { entries.append((t, 3, UInt64(v.count), v.flatMap { enc(UInt64($0), 2) })) }
            func long(_ t: UInt16, _ v: [UInt64]) {
                if big { entries.append((t, 16, UInt64(v.count), v.flatMap { enc($0, 8) })) } else { entries.append((t, 4, UInt64(v.count), v.flatMap { enc($0, 4) })) }
            }
            long(256, [UInt64(page.width)]); long(257, [UInt64(page.height)])
            short(258, Array(repeating: page.bitsPerSample, count: page.samplesPerPixel))
            short(259, [1]); short(262, [page.samplesPerPixel >= 3 ? 2 : 1])
            long(273, stripOffsets); short(277, [page.samplesPerPixel]); long(278, [UInt64(page.rowsPerStrip)]); long(279, stripCounts)
            short(284, [1]); short(339, Array(repeating: page.sampleFormat, count: page.samplesPerPixel))
            for (t, v) in page.tags {
                switch v {
                case let .ascii(s): entries.append((t, 2, UInt64(s.utf8.count + 1), Array(s.utf8) + [0]))
                case let .bytes(b): entries.append((t, 7, UInt64(b.count), b))
                case let .doubles(d): entries.append((t, 12, UInt64(d.count), d.flatMap { enc($0.bitPattern, 8) }))
                case let .rational(n, d): entries.append((t, 5, 1, enc(UInt64(n), 4) + enc(UInt64(d), 4)))
                case let .short(s): short(t, [Int(s)])
                case let .pointer(blob):
                    align()
                    let at = UInt64(out.count)
                    out += blob
                    entries.append((t, 4, 1, enc(at, 4)))
                }
            }
            entries.sort { $0.0 < $1.0 }
            // Out-of-line values.
            let inline = big ? 8 : 4
            var valueFields: [[UInt8]] = []
            for e in entries {
                if e.3.count <= inline {
                    valueFields.append(e.3 + [UInt8](repeating: 0, count: inline - e.3.count))
                } else {
                    align()
                    let at = UInt64(out.count)
                    out += e.3
                    valueFields.append(enc(at, inline))
                }
            }
            align()
            let ifd = UInt64(out.count)
            let ptr = enc(ifd, big ? 8 : 4)
            out.replaceSubrange(previousPointer..<(previousPointer + ptr.count), with: ptr)
            put(UInt64(entries.count), big ? 8 : 2)
            for (e, v) in zip(entries, valueFields) {
                put(UInt64(e.0), 2); put(UInt64(e.1), 2); put(e.2, big ? 8 : 4)
                out += v
            }
            previousPointer = out.count
            put(0, big ? 8 : 4)
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    /// Tiled pages through libtiff (deflate), 16-bit unsigned; BigTIFF when `big`. The pixel of
    /// page p, row r, column c is `value(p, r, c)`.
    public static func writeTiled(_ path: String, big: Bool, width: Int, height: Int, pages: Int, tile: Int,
                                  value: (Int, Int, Int) -> UInt16) throws {
        emc_tiff_silence()
        guard let tif = TIFFOpen(path, big ? "w8" : "w") else { throw CocoaError(.fileWriteUnknown) }
        defer { TIFFClose(tif) }
        for p in 0..<pages {
            _ = emc_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGEWIDTH), UInt32(width))
            _ = emc_tiff_set_u32(tif, UInt32(TIFFTAG_IMAGELENGTH), UInt32(height))
            _ = emc_tiff_set_u16(tif, UInt32(TIFFTAG_BITSPERSAMPLE), 16)
            _ = emc_tiff_set_u16(tif, UInt32(TIFFTAG_SAMPLESPERPIXEL), 1)
            _ = emc_tiff_set_u16(tif, UInt32(TIFFTAG_PHOTOMETRIC), UInt16(PHOTOMETRIC_MINISBLACK))
            _ = emc_tiff_set_u16(tif, UInt32(TIFFTAG_PLANARCONFIG), UInt16(PLANARCONFIG_CONTIG))
            _ = emc_tiff_set_u16(tif, UInt32(TIFFTAG_COMPRESSION), UInt16(COMPRESSION_ADOBE_DEFLATE))
            _ = emc_tiff_set_u32(tif, UInt32(TIFFTAG_TILEWIDTH), UInt32(tile))
            _ = emc_tiff_set_u32(tif, UInt32(TIFFTAG_TILELENGTH), UInt32(tile))
            var buf = [UInt16](repeating: 0, count: tile * tile)
            for ty in stride(from: 0, to: height, by: tile) {
                for tx in stride(from: 0, to: width, by: tile) {
                    for r in 0..<tile {
                        for c in 0..<tile {
                            buf[r * tile + c] = ty + r < height && tx + c < width ? value(p, ty + r, tx + c) : 0
                        }
                    }
                    let t = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, 0)
                    guard buf.withUnsafeMutableBytes({ TIFFWriteEncodedTile(tif, t, $0.baseAddress, tmsize_t($0.count)) }) >= 0 else {
                        throw CocoaError(.fileWriteUnknown)
                    }
                }
            }
            guard TIFFWriteDirectory(tif) == 1 else { throw CocoaError(.fileWriteUnknown) }
        }
    }
}
