import Foundation
import CDeflate
import CZstd

/// A reusable byte buffer owned by one pipeline slot.
public final class ChunkBuffer {
    public private(set) var raw: UnsafeMutableRawBufferPointer
    /// Valid bytes.
    public var count: Int = 0

    public init(capacity: Int) {
        raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 64)
    }

    deinit { raw.deallocate() }

    public var capacity: Int { raw.count }

    /// The valid bytes.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[0..<count]) }

    /// Grows (without keeping contents) to at least `n` bytes.
    public func reserve(_ n: Int) {
        if n > raw.count {
            raw.deallocate()
            raw = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
        }
    }
}

/// Per-slot state handed to the transform step: the input and two scratch buffers, plus
/// codec contexts reused across chunks.
public final class PipelineSlot {
    public let input: ChunkBuffer
    public let scratch: ChunkBuffer
    public let temp: ChunkBuffer
    var codecs = ChunkCodecs()
    init(capacity: Int) {
        input = ChunkBuffer(capacity: capacity)
        scratch = ChunkBuffer(capacity: capacity)
        temp = ChunkBuffer(capacity: capacity)
    }
}

/// Runs `count` items through three stages with bounded memory:
/// `produce` (one thread, in order: reads the source), `transform` (a pool of workers:
/// compression) and `consume` (the calling thread, in order: writes the output).
/// At most `depth` items are in flight. The first error stops everything and is rethrown.
public enum ChunkPipeline {
    /// Shared state of one run, guarded by `cond`.
    private final class State: @unchecked Sendable {
        let cond = NSCondition()
        var free: [Int]
        var work: [(Int, Int)] = []
        var done: [Int: (Int, ChunkBuffer)] = [:]
        var failure: Error?
        var producedAll = false
        init(depth: Int) { free = Array((0..<depth).reversed()) }

        func fail(_ e: Error) {
            cond.lock()
            if failure == nil { failure = e }
            cond.broadcast()
            cond.unlock()
        }
    }

    public static func run(count: Int, chunkBytes: Int, workers: Int, depth: Int? = nil,
                           produce: @escaping (Int, ChunkBuffer) throws -> Void,
                           transform: @escaping (Int, PipelineSlot) throws -> ChunkBuffer,
                           consume: (Int, ChunkBuffer) throws -> Void) throws {
        guard count > 0 else { return }
        let workers = max(1, workers)
        let depth = max(2, min(depth ?? (2 * workers + 2), count))
        let slots = (0..<depth).map { _ in PipelineSlot(capacity: chunkBytes) }
        defer { for s in slots { s.codecs.release() } }
        let st = State(depth: depth)
        let finished = DispatchGroup()

        finished.enter()
        let producer = Thread {
            defer { finished.leave() }
            for i in 0..<count {
                st.cond.lock()
                while st.free.isEmpty && st.failure == nil { st.cond.wait() }
                if st.failure != nil { st.cond.unlock(); return }
                let s = st.free.removeLast()
                st.cond.unlock()
                do {
                    try produce(i, slots[s].input)
                } catch {
                    st.fail(error)
                    return
                }
                st.cond.lock()
                st.work.append((i, s))
                st.cond.broadcast()
                st.cond.unlock()
            }
            st.cond.lock()
            st.producedAll = true
            st.cond.broadcast()
            st.cond.unlock()
        }
        producer.stackSize = 1 << 20
        producer.start()

        for _ in 0..<workers {
            finished.enter()
            let t = Thread {
                defer { finished.leave() }
                while true {
                    st.cond.lock()
                    while st.work.isEmpty && st.failure == nil && !st.producedAll { st.cond.wait() }
                    if st.failure != nil || st.work.isEmpty { st.cond.unlock(); return }
                    let (i, s) = st.work.removeFirst()
                    st.cond.unlock()
                    do {
                        let out = try transform(i, slots[s])
                        st.cond.lock()
                        st.done[i] = (s, out)
                        st.cond.broadcast()
                        st.cond.unlock()
                    } catch {
                        st.fail(error)
                        return
                    }
                }
            }
            t.stackSize = 1 << 20
            t.start()
        }

        var firstError: Error?
        for i in 0..<count {
            st.cond.lock()
            while st.done[i] == nil && st.failure == nil { st.cond.wait() }
            if let f = st.failure { st.cond.unlock(); firstError = f; break }
            let (s, out) = st.done.removeValue(forKey: i)!
            st.cond.unlock()
            do {
                try consume(i, out)
            } catch {
                st.fail(error)
                firstError = error
                break
            }
            st.cond.lock()
            st.free.append(s)
            st.cond.broadcast()
            st.cond.unlock()
        }
        if firstError == nil {
            // All consumed: let idle workers see the end.
            st.cond.lock()
            st.producedAll = true
            st.cond.broadcast()
            st.cond.unlock()
        }
        finished.wait()
        if let firstError { throw firstError }
    }
}

/// Codec contexts kept per pipeline slot (allocated once, reused for every chunk).
struct ChunkCodecs {
    var deflater: OpaquePointer?
    var deflateLevel: Int = -1
    var zstd: OpaquePointer?

    mutating func release() {
        if let d = deflater { libdeflate_free_compressor(d) }
        if let z = zstd { ZSTD_freeCCtx(z) }
        deflater = nil
        zstd = nil
    }
}

extension PipelineSlot {
    /// Applies shuffle (when `elementSize` > 1) and the compression to `input`; returns the
    /// buffer holding the filtered chunk (the input itself when there is nothing to do).
    public func encode(compression: Compression, shuffleElementSize: Int) throws -> ChunkBuffer {
        switch compression {
        case .none:
            return input
        case let .gzip(level), let .zstd(level):
            var src = input
            if shuffleElementSize > 1 {
                temp.reserve(input.count)
                shuffle(input.bytes, into: temp.raw, elementSize: shuffleElementSize)
                temp.count = input.count
                src = temp
            }
            if case .gzip = compression {
                if codecs.deflater == nil || codecs.deflateLevel != level {
                    if let d = codecs.deflater { libdeflate_free_compressor(d) }
                    codecs.deflater = libdeflate_alloc_compressor(Int32(level))
                    codecs.deflateLevel = level
                }
                let bound = libdeflate_zlib_compress_bound(codecs.deflater, src.count)
                scratch.reserve(bound)
                let n = libdeflate_zlib_compress(codecs.deflater, src.bytes.baseAddress, src.count, scratch.raw.baseAddress, bound)
                guard n > 0 else { throw EMError(.failure, "deflate compression failed") }
                scratch.count = n
            } else {
                if codecs.zstd == nil { codecs.zstd = ZSTD_createCCtx() }
                let bound = ZSTD_compressBound(src.count)
                scratch.reserve(bound)
                let n = ZSTD_compressCCtx(codecs.zstd, scratch.raw.baseAddress, bound, src.bytes.baseAddress, src.count, Int32(level))
                guard ZSTD_isError(n) == 0 else { throw EMError(.failure, "zstd compression failed") }
                scratch.count = n
            }
            return scratch
        }
    }
}

/// HDF5's shuffle filter: byte k of every element goes to plane k.
public func shuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize: Int) {
    let n = src.count / elementSize
    let s = src.baseAddress!.assumingMemoryBound(to: UInt8.self)
    let d = dst.baseAddress!.assumingMemoryBound(to: UInt8.self)
    if elementSize == 2 {
        for i in 0..<n {
            d[i] = s[2 * i]
            d[n + i] = s[2 * i + 1]
        }
    } else if elementSize == 4 {
        for i in 0..<n {
            d[i] = s[4 * i]
            d[n + i] = s[4 * i + 1]
            d[2 * n + i] = s[4 * i + 2]
            d[3 * n + i] = s[4 * i + 3]
        }
    } else {
        for i in 0..<n {
            for k in 0..<elementSize { d[k * n + i] = s[i * elementSize + k] }
        }
    }
    // HDF5 leaves trailing bytes that do not form a whole element unshuffled.
    let tail = src.count - n * elementSize
    if tail > 0 {
        for k in 0..<tail { d[n * elementSize + k] = s[n * elementSize + k] }
    }
}
