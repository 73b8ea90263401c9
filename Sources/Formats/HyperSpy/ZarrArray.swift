import CDeflate
import CZstd
import EMCore
import Foundation

/// A zarr v2 array (`.zarray`): shape, chunk grid, dtype, compressor and filters, read chunk by
/// chunk. Codecs: Blosc (HyperSpy's default), zstd, zlib, gzip, none; filter: shuffle.
/// Every size is checked against the declaration: a chunk that does not decode to exactly its
/// declared size is an error naming its key.
final class ZarrArray {
    enum Codec { case none, blosc, zstd, zlib, gzip }

    let store: ZarrReadStore
    let key: String
    let shape: [Int]
    let chunks: [Int]
    let elementType: ElementType
    let bigEndian: Bool
    let codec: Codec
    /// Shuffle filter element size (0: none).
    let shuffle: Int
    let separator: String
    let fillValue: MetaValue
    /// Bytes of one whole chunk.
    let chunkBytes: Int

    init(store: ZarrReadStore, key: String) throws {
        self.store = store
        self.key = key
        let at = key + "/.zarray"
        func bad(_ what: String) -> EMError { EMError(.badInput, file: store.path, at: at, what) }
        guard let z = try store.json(at) else { throw bad("missing") }
        guard z["zarr_format"]?.intValue == 2 else { throw EMError(.unsupported, file: store.path, at: at, "zarr_format \(z["zarr_format"]?.json() ?? "absent"), only 2 is read") }
        guard case let .array(s)? = z["shape"], case let .array(c)? = z["chunks"], s.count == c.count, s.count <= 32 else {
            throw bad("shape and chunks must be lists of the same length")
        }
        shape = try s.map { guard let v = $0.intValue, v >= 0 else { throw bad("a negative or non-integer size in shape") }; return v }
        chunks = try c.map { guard let v = $0.intValue, v >= 1 else { throw bad("a chunk size below 1") }; return v }
        if let order = z["order"]?.stringValue, order != "C" { throw EMError(.unsupported, file: store.path, at: at, "order \(order): only C order is read") }
        (elementType, bigEndian) = try Self.dtype(z["dtype"], bad: bad)
        separator = z["dimension_separator"]?.stringValue ?? "."
        guard separator == "." || separator == "/" else { throw bad("dimension_separator must be '.' or '/'") }
        fillValue = z["fill_value"] ?? .null
        guard let n = MemoryBudget.product(chunks + [elementType.size]) else { throw bad("the chunk size overflows") }
        try MemoryBudget.check(n, what: "one chunk (\(chunks.map(String.init).joined(separator: " x ")) \(elementType.rawValue))", file: store.path, at: at)
        chunkBytes = n
        switch z["compressor"] {
        case nil, .null?: codec = .none
        case let cmp?:
            switch cmp["id"]?.stringValue {
            case "blosc": codec = .blosc
            case "zstd": codec = .zstd
            case "zlib": codec = .zlib
            case "gzip": codec = .gzip
            case let id: throw EMError(.unsupported, file: store.path, at: at, "compressor '\(id ?? "?")' (emconv reads blosc, zstd, zlib, gzip)")
            }
        }
        var sh = 0
        if case let .array(fs)? = z["filters"] {
            for f in fs {
                guard f["id"]?.stringValue == "shuffle", let e = f["elementsize"]?.intValue, e >= 1, e <= 64 else {
                    throw EMError(.unsupported, file: store.path, at: at, "filter '\(f["id"]?.stringValue ?? f.json())' (emconv reads shuffle)")
                }
                guard sh == 0 else { throw EMError(.unsupported, file: store.path, at: at, "more than one filter") }
                sh = e
            }
        }
        shuffle = sh
    }

    /// NumPy dtype strings of the element types emconv models; HyperSpy's structured RGB(A).
    static func dtype(_ v: MetaValue?, bad: (String) -> EMError) throws -> (ElementType, Bool) {
        if case let .array(fields)? = v {
            let names = fields.compactMap { f -> String? in
                guard case let .array(p) = f, p.count == 2, p[1].stringValue == "|u1" else { return nil }
                return p[0].stringValue
            }
            if names == ["R", "G", "B"] { return (.rgb8, false) }
            if names == ["R", "G", "B", "A"] { return (.rgba8, false) }
            throw bad("structured dtype \(v!.json()) (only HyperSpy's RGB and RGBA are read)")
        }
        guard let s = v?.stringValue, s.count >= 3 else { throw bad("no dtype") }
        let order = s.first!
        let body = String(s.dropFirst())
        let types: [String: ElementType] = [
            "i1": .int8, "u1": .uint8, "b1": .bool, "i2": .int16, "u2": .uint16, "i4": .int32, "u4": .uint32,
            "i8": .int64, "u8": .uint64, "f4": .float32, "f8": .float64, "c8": .complex64, "c16": .complex128,
        ]
        guard "<>|=".contains(order), let t = types[body] else { throw bad("dtype '\(s)' is not one emconv reads") }
        return (t, order == ">")
    }

    var rank: Int { shape.count }
    var grid: [Int] { zip(shape, chunks).map { ($0 + $1 - 1) / $1 } }

    func chunkKey(_ index: [Int]) -> String {
        key + "/" + (index.isEmpty ? "0" : index.map(String.init).joined(separator: separator))
    }

    /// The chunk at grid position `index`, decoded into `out` (chunkBytes, native byte order).
    /// A missing chunk is the fill value.
    func readChunk(_ index: [Int], into out: UnsafeMutableRawBufferPointer) throws {
        let k = chunkKey(index)
        // A compressed chunk may be a little larger than its data (incompressible input).
        guard let raw = try store.get(k, limit: chunkBytes + chunkBytes / 8 + (1 << 16)) else {
            try fill(out)
            return
        }
        func wrong(_ got: Int) -> EMError {
            EMError(.badInput, file: store.path, at: k, "the chunk decodes to \(got) bytes, not the \(chunkBytes) bytes its .zarray declares")
        }
        let dst = UnsafeMutableRawBufferPointer(rebasing: out[0..<chunkBytes])
        let target: UnsafeMutableRawBufferPointer
        let scratch: UnsafeMutableRawBufferPointer? = shuffle > 1 ? .allocate(byteCount: chunkBytes, alignment: 16) : nil
        defer { scratch?.deallocate() }
        target = scratch ?? dst
        try raw.withUnsafeBytes { src in
            switch codec {
            case .none:
                guard src.count == chunkBytes else { throw wrong(src.count) }
                target.copyMemory(from: src)
            case .blosc:
                // EMCore's BloscChunk (libblosc): the header and block table checked against the
                // stored bytes, and the declared size against the .zarray, before decoding.
                guard let n = BloscChunk.declaredSize(src) else {
                    throw EMError(.badInput, file: store.path, at: k, "a damaged Blosc frame (\(src.count) bytes)")
                }
                guard n == chunkBytes else { throw wrong(n) }
                do { try BloscChunk.decode(src, into: target) } catch let e as EMError {
                    throw EMError(.badInput, file: store.path, at: k, e.message)
                }
            case .zstd:
                let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
                if declared != ZSTD_CONTENTSIZE_UNKNOWN, declared != ZSTD_CONTENTSIZE_ERROR, declared != UInt64(chunkBytes) { throw wrong(Int(clamping: declared)) }
                let r = ZSTD_decompress(target.baseAddress, chunkBytes, src.baseAddress, src.count)
                if ZSTD_isError(r) != 0 {
                    throw EMError(.badInput, file: store.path, at: k, "zstd could not decode the chunk (\(String(cString: ZSTD_getErrorName(r))))")
                }
                guard r == chunkBytes else { throw wrong(r) }
            case .zlib, .gzip:
                guard let d = libdeflate_alloc_decompressor() else { throw EMError(.failure, file: store.path, "out of memory") }
                defer { libdeflate_free_decompressor(d) }
                var got = 0
                let r = codec == .zlib
                    ? libdeflate_zlib_decompress(d, src.baseAddress, src.count, target.baseAddress, chunkBytes, &got)
                    : libdeflate_gzip_decompress(d, src.baseAddress, src.count, target.baseAddress, chunkBytes, &got)
                if r == LIBDEFLATE_INSUFFICIENT_SPACE { throw EMError(.badInput, file: store.path, at: k, "the chunk decodes to more than the \(chunkBytes) bytes its .zarray declares") }
                guard r == LIBDEFLATE_SUCCESS else { throw EMError(.badInput, file: store.path, at: k, "the \(codec) stream is damaged") }
                guard got == chunkBytes else { throw wrong(got) }
            }
        }
        if let scratch { Self.unshuffle(scratch, into: dst, elementSize: shuffle) }
        if bigEndian { Self.swap(dst, elementType: elementType) }
    }

    /// numcodecs Shuffle: byte k of every element stored together; the tail that does not make a
    /// whole element is stored as is.
    static func unshuffle(_ src: UnsafeMutableRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize e: Int) {
        EMCore.unshuffle(UnsafeRawBufferPointer(src), into: dst, elementSize: e)
    }

    static func swap(_ buf: UnsafeMutableRawBufferPointer, elementType: ElementType) {
        let c = elementType.componentSize
        guard c > 1 else { return }
        let b = buf.bindMemory(to: UInt8.self)
        var i = 0
        while i + c <= b.count {
            var lo = i, hi = i + c - 1
            while lo < hi { b.swapAt(lo, hi); lo += 1; hi -= 1 }
            i += c
        }
    }

    func fill(_ out: UnsafeMutableRawBufferPointer) throws {
        let dst = UnsafeMutableRawBufferPointer(rebasing: out[0..<chunkBytes])
        guard let v = fillValue.doubleValue, v != 0, elementType.isNumericScalar else {
            dst.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        // A fill value beyond the type (or NaN for an integer type) is clamped, never trapped.
        let i = v.isNaN ? 0 : (v >= 0x1p63 ? Int.max : (v < -0x1p63 ? Int.min : Int(v)))
        switch elementType {
        case .int8: dst.bindMemory(to: Int8.self).initialize(repeating: Int8(clamping: i))
        case .uint8, .bool: dst.bindMemory(to: UInt8.self).initialize(repeating: UInt8(clamping: i))
        case .int16: dst.bindMemory(to: Int16.self).initialize(repeating: Int16(clamping: i))
        case .uint16: dst.bindMemory(to: UInt16.self).initialize(repeating: UInt16(clamping: i))
        case .int32: dst.bindMemory(to: Int32.self).initialize(repeating: Int32(clamping: i))
        case .uint32: dst.bindMemory(to: UInt32.self).initialize(repeating: UInt32(clamping: i))
        case .int64: dst.bindMemory(to: Int64.self).initialize(repeating: Int64(i))
        case .uint64: dst.bindMemory(to: UInt64.self).initialize(repeating: v.isNaN || v <= 0 ? 0 : (v >= 0x1p64 ? UInt64.max : UInt64(v)))
        case .float32: dst.bindMemory(to: Float.self).initialize(repeating: Float(v))
        case .float64: dst.bindMemory(to: Double.self).initialize(repeating: v)
        default: dst.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    /// The whole (small) array as metadata values: numbers, booleans; nil for other types or
    /// more than `maxElements`.
    func readSmall(maxElements: Int = 1 << 16) throws -> MetaValue? {
        guard let n = MemoryBudget.product(shape), n <= maxElements, elementType.isNumericScalar else { return nil }
        var values = [Double](repeating: 0, count: n)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
        defer { buf.deallocate() }
        let g = grid
        var index = [Int](repeating: 0, count: rank)
        let total = g.reduce(1, *)
        for _ in 0..<(rank == 0 ? 1 : total) {
            try readChunk(index, into: buf)
            // Copy the chunk's in-bounds elements.
            let count = chunks.reduce(1, *)
            for e in 0..<count {
                var rem = e, flat = 0, inside = true
                var coord = [Int](repeating: 0, count: rank)
                for d in stride(from: rank - 1, through: 0, by: -1) { coord[d] = rem % chunks[d]; rem /= chunks[d] }
                for d in 0..<rank {
                    let x = index[d] * chunks[d] + coord[d]
                    if x >= shape[d] { inside = false; break }
                    flat = flat * shape[d] + x
                }
                if inside { values[flat] = Self.double(buf.baseAddress! + e * elementType.size, elementType) }
            }
            for d in stride(from: rank - 1, through: 0, by: -1) {
                index[d] += 1
                if index[d] < g[d] { break }
                index[d] = 0
            }
        }
        let isInt = elementType.isInteger
        let items: [MetaValue] = values.map { elementType == .bool ? .bool($0 != 0) : isInt ? .int(Int64($0)) : .double($0) }
        return rank == 0 ? items.first : .array(items)
    }

    static func double(_ p: UnsafeRawPointer, _ t: ElementType) -> Double {
        switch t {
        case .int8: return Double(p.loadUnaligned(as: Int8.self))
        case .uint8, .bool: return Double(p.loadUnaligned(as: UInt8.self))
        case .int16: return Double(p.loadUnaligned(as: Int16.self))
        case .uint16: return Double(p.loadUnaligned(as: UInt16.self))
        case .int32: return Double(p.loadUnaligned(as: Int32.self))
        case .uint32: return Double(p.loadUnaligned(as: UInt32.self))
        case .int64: return Double(p.loadUnaligned(as: Int64.self))
        case .uint64: return Double(p.loadUnaligned(as: UInt64.self))
        case .float32: return Double(p.loadUnaligned(as: Float.self))
        case .float64: return p.loadUnaligned(as: Double.self)
        default: return 0
        }
    }
}

/// Frames of a zarr array: each frame (the `frameRank` trailing dimensions at one navigation
/// index) is cut from the chunks that hold it, decoded on all cores. The decoded chunks of the
/// current navigation chunk are kept, so consecutive frames in one chunk decode it once; memory
/// stays at the chunks one frame spans (checked against the budget).
final class ZarrFrameSource: FrameSource {
    let array: ZarrArray
    let frameRank: Int
    private var cache: [[Int]: UnsafeMutableRawBufferPointer] = [:]

    init(array: ZarrArray, frameRank: Int) throws {
        self.array = array
        self.frameRank = frameRank
        // The chunks one frame spans are cached together: they must fit the budget.
        let spanned = array.grid.suffix(frameRank).reduce(1, *)
        try MemoryBudget.check(MemoryBudget.product([spanned, array.chunkBytes]), what: "the chunks of one frame", file: array.store.path, at: array.key)
    }

    deinit { for b in cache.values { b.deallocate() } }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let shape = array.shape, chunks = array.chunks, rank = array.rank, size = array.elementType.size
        let navRank = rank - frameRank
        var nav = [Int](repeating: 0, count: navRank)
        var i = index
        for d in stride(from: navRank - 1, through: 0, by: -1) { nav[d] = i % shape[d]; i /= shape[d] }
        let navChunk = (0..<navRank).map { nav[$0] / chunks[$0] }
        // Drop cached chunks of another navigation chunk.
        for k in cache.keys where Array(k.prefix(navRank)) != navChunk {
            cache.removeValue(forKey: k)?.deallocate()
        }
        let frameShape = Array(shape.suffix(frameRank))
        let sigChunks = Array(chunks.suffix(frameRank))
        let sigGrid = Array(array.grid.suffix(frameRank))
        // Offset of this frame inside its chunks along the navigation dimensions (elements).
        var navOffset = 0
        for d in 0..<navRank { navOffset = navOffset * chunks[d] + nav[d] % chunks[d] }
        if frameShape.contains(0) { return }
        let frameElementsInChunk = sigChunks.reduce(1, *)
        let total = max(sigGrid.reduce(1, *), 1)
        func gridIndex(_ k: Int) -> [Int] {
            var g = [Int](repeating: 0, count: frameRank), r = k
            for d in stride(from: frameRank - 1, through: 0, by: -1) { g[d] = r % sigGrid[d]; r /= sigGrid[d] }
            return g
        }
        // Decode the chunks of this frame not yet cached, on all cores (independent chunks).
        let missing = (0..<total).map { navChunk + gridIndex($0) }.filter { cache[$0] == nil }
        if !missing.isEmpty {
            let job = ChunkDecodeJob(array: array, keys: missing)
            DispatchQueue.concurrentPerform(iterations: missing.count) { job.run($0) }
            if let e = job.firstError {
                for b in job.buffers { b.deallocate() }
                throw e
            }
            for (k, key) in missing.enumerated() { cache[key] = job.buffers[k] }
        }
        var within = [Int](repeating: 0, count: max(frameRank - 1, 0))
        for k in 0..<total {
            let g = gridIndex(k)
            guard let chunk = cache[navChunk + g] else { continue }
            // Copy rows of the last dimension from the chunk to the frame.
            let base = navOffset * frameElementsInChunk
            let rowLen = frameRank == 0 ? 1 : min(sigChunks[frameRank - 1], frameShape[frameRank - 1] - g[frameRank - 1] * sigChunks[frameRank - 1])
            let rows = frameRank <= 1 ? 1 : sigChunks.dropLast().reduce(1, *)
            for r in 0..<rows {
                // Coordinates of row r within the chunk.
                var rem = r, inside = true
                for d in stride(from: frameRank - 2, through: 0, by: -1) { within[d] = rem % sigChunks[d]; rem /= sigChunks[d] }
                var dstFlat = 0
                for d in 0..<frameRank {
                    let x = g[d] * sigChunks[d] + (d < frameRank - 1 ? within[d] : 0)
                    if x >= frameShape[d] { inside = false; break }
                    dstFlat = dstFlat * frameShape[d] + x
                }
                guard inside else { continue }
                let srcFlat = base + r * (frameRank == 0 ? 1 : sigChunks[frameRank - 1])
                (buffer.baseAddress! + dstFlat * size).copyMemory(from: chunk.baseAddress! + srcFlat * size, byteCount: rowLen * size)
            }
        }
    }
}

/// Chunks decoded in parallel: each iteration writes only its own buffer and error slot.
final class ChunkDecodeJob: @unchecked Sendable {
    let array: ZarrArray
    let keys: [[Int]]
    let buffers: [UnsafeMutableRawBufferPointer]
    private let errors: UnsafeMutablePointer<Error?>

    init(array: ZarrArray, keys: [[Int]]) {
        self.array = array
        self.keys = keys
        buffers = keys.map { _ in .allocate(byteCount: max(array.chunkBytes, 1), alignment: 16) }
        errors = .allocate(capacity: keys.count)
        errors.initialize(repeating: nil, count: keys.count)
    }

    deinit {
        errors.deinitialize(count: keys.count)
        errors.deallocate()
    }

    func run(_ k: Int) {
        do { try array.readChunk(keys[k], into: buffers[k]) } catch { errors[k] = error }
    }

    var firstError: Error? { (0..<keys.count).lazy.compactMap { self.errors[$0] }.first }
}
