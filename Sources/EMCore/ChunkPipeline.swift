import CBitshuffle
import Foundation
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

    /// Grows to at least `total` bytes, keeping the first `keep` bytes.
    public func reserveKeeping(_ keep: Int, total: Int) {
        guard total > raw.count else { return }
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 64)
        if keep > 0 { bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<keep])) }
        raw.deallocate()
        raw = bigger
    }

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
    /// A further buffer, allocated on first use (complex de-interleaving).
    public private(set) lazy var extra = ChunkBuffer(capacity: input.capacity)
    var codecs = ChunkCodecs()
    /// A slot with buffers of `capacity` bytes (the pipeline makes its own; tests make one directly).
    public init(capacity: Int) {
        input = ChunkBuffer(capacity: capacity)
        scratch = ChunkBuffer(capacity: capacity)
        temp = ChunkBuffer(capacity: capacity)
    }

    deinit { codecs.release() }
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

    /// The stages and slots, handed to the threads. The contract makes this safe: `produce` runs on
    /// one thread, `transform` on the workers with a slot no other thread holds, `consume` on the
    /// caller; slots pass between them under `State.cond`.
    private final class Stages: @unchecked Sendable {
        let setup: () -> Void
        let produce: (Int, ChunkBuffer) throws -> Void
        let transform: (Int, PipelineSlot) throws -> ChunkBuffer
        let slots: [PipelineSlot]
        init(setup: @escaping () -> Void, produce: @escaping (Int, ChunkBuffer) throws -> Void,
             transform: @escaping (Int, PipelineSlot) throws -> ChunkBuffer, slots: [PipelineSlot]) {
            self.setup = setup
            self.produce = produce
            self.transform = transform
            self.slots = slots
        }
    }

    /// `producerSetup` runs first on the reading thread (``FrameSource/prepareReadingThread()``).
    public static func run(count: Int, chunkBytes: Int, workers: Int, depth: Int? = nil,
                           producerSetup: @escaping () -> Void = {},
                           produce: @escaping (Int, ChunkBuffer) throws -> Void,
                           transform: @escaping (Int, PipelineSlot) throws -> ChunkBuffer,
                           consume: (Int, ChunkBuffer) throws -> Void) throws {
        guard count > 0 else { return }
        let workers = max(1, workers)
        let depth = max(2, min(depth ?? (2 * workers + 2), count))
        // Each slot's input, scratch and temporary buffers (and a fourth for complex values).
        let allowed = Watchdog.allow(MemoryBudget.product([depth, 4, chunkBytes]) ?? (1 << 50))
        defer { allowed() }
        let slots = (0..<depth).map { _ in PipelineSlot(capacity: chunkBytes) }
        defer { for s in slots { s.codecs.release() } }
        let st = State(depth: depth)
        let stages = Stages(setup: producerSetup, produce: produce, transform: transform, slots: slots)
        let finished = DispatchGroup()

        finished.enter()
        let producer = Thread {
            defer { finished.leave() }
            // The reading thread's watchdog countdown ends with the thread.
            defer { Watchdog.disarm() }
            stages.setup()
            let slots = stages.slots
            for i in 0..<count {
                st.cond.lock()
                while st.free.isEmpty && st.failure == nil { st.cond.wait() }
                if st.failure != nil { st.cond.unlock(); return }
                let s = st.free.removeLast()
                st.cond.unlock()
                do {
                    Watchdog.arm(Watchdog.chunkSeconds, "reading the data")
                    try stages.produce(i, slots[s].input)
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
                        let out = try stages.transform(i, stages.slots[s])
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
        Watchdog.disarm()
        if let firstError { throw firstError }
    }
}

/// Codec contexts kept per pipeline slot (allocated once, reused for every chunk).
public struct ChunkCodecs {
    public var zstd: OpaquePointer?
    /// The deflate encoder (`gzip:L`).
    public var planeDeflate: PlaneDeflate?

    public mutating func release() {
        if let z = zstd { ZSTD_freeCCtx(z) }
        zstd = nil
        planeDeflate = nil
    }
}

extension PipelineSlot {
    /// Applies shuffle (when `elementSize` > 1) and the compression to `input`; returns the
    /// buffer holding the filtered chunk (the input itself when there is nothing to do).
    /// `period`: ``PlaneDeflate/chunkPeriod(chunkShape:frameRank:)`` of the chunk (gzip only).
    public func encode(compression: Compression, shuffleElementSize: Int, period: Int = 0) throws -> ChunkBuffer {
        if case .none = compression { return input }
        scratch.count = try compress(input.bytes, compression: compression, shuffleElementSize: shuffleElementSize, period: period, into: scratch, at: 0)
        return scratch
    }

    /// Shuffles (when `shuffleElementSize` > 1) and compresses `src` into `out` at `offset`
    /// (growing it, keeping what is before `offset`); returns the end offset.
    public func compress(_ src: UnsafeRawBufferPointer, compression: Compression, shuffleElementSize: Int, period: Int = 0,
                         into out: ChunkBuffer, at offset: Int) throws -> Int {
        var data = src
        if let codec = compression.bitshuffleCodec {
            // Its own bit transposition replaces the byte shuffle.
            let e = max(1, shuffleElementSize), block = codec.writtenBlockElements(elementSize: e)
            let bound = BitshuffleLZ4.compressBound(bytes: src.count, elementSize: e, blockElements: block, codec: codec)
            out.reserveKeeping(offset, total: offset + bound)
            return offset + (try BitshuffleLZ4.encode(src, elementSize: e, blockElements: block, codec: codec, zstdContext: zstdContext(for: codec),
                                                      into: out.raw.baseAddress! + offset, capacity: bound))
        }
        if shuffleElementSize > 1, compression != .none {
            temp.reserve(src.count)
            shuffle(src, into: temp.raw, elementSize: shuffleElementSize)
            data = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(temp.raw)[0..<src.count])
        }
        func grow(_ n: Int) { out.reserveKeeping(offset, total: offset + n) }
        let bound: Int
        switch compression {
        case .none: bound = data.count
        case let .gzip(level):
            let planes = max(1, shuffleElementSize)
            let enc = try planeDeflater()
            bound = enc.bound(data.count, planes: planes)
            grow(bound)
            return offset + (try enc.compress(data, planes: planes, level: level, period: period, into: out.raw.baseAddress! + offset, capacity: bound))
        case .zstd: bound = ZSTD_compressBound(data.count)
        case .bitshuffleLZ4, .bitshuffleZstd:
            let codec = compression.bitshuffleCodec!
            bound = BitshuffleLZ4.compressBound(bytes: data.count, elementSize: 1, blockElements: codec.writtenBlockElements(elementSize: 1), codec: codec)
        }
        grow(bound)
        return offset + (try compress(data, into: out.raw.baseAddress! + offset, capacity: bound, compression: compression))
    }

    private func planeDeflater() throws -> PlaneDeflate {
        if let d = codecs.planeDeflate { return d }
        let d = try PlaneDeflate()
        codecs.planeDeflate = d
        return d
    }

    /// Compresses `src` into `dst` (a zlib stream for deflate, one zstd frame with its content
    /// size) with this slot's codec contexts; returns the compressed size. No shuffle.
    public func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawPointer, capacity: Int,
                         compression: Compression) throws -> Int {
        switch compression {
        case .none:
            guard src.count <= capacity else { throw EMError(.failure, "chunk buffer too small") }
            if src.count > 0 { dst.copyMemory(from: src.baseAddress!, byteCount: src.count) }
            return src.count
        case let .gzip(level):
            return try planeDeflater().compress(src, planes: 1, level: level, into: dst, capacity: capacity)
        case let .zstd(level):
            if codecs.zstd == nil { codecs.zstd = ZSTD_createCCtx() }
            let n = ZSTD_compressCCtx(codecs.zstd, dst, capacity, src.baseAddress, src.count, Int32(level))
            guard ZSTD_isError(n) == 0 else { throw EMError(.failure, "zstd compression failed") }
            return n
        case .bitshuffleLZ4, .bitshuffleZstd:
            // Without an element size: bytes (callers with typed data use the shuffling entry point).
            let codec = compression.bitshuffleCodec!
            return try BitshuffleLZ4.encode(src, elementSize: 1, blockElements: codec.writtenBlockElements(elementSize: 1), codec: codec,
                                            zstdContext: zstdContext(for: codec), into: dst, capacity: capacity)
        }
    }

    /// This slot's zstd compression context when `codec` is zstd (made on first use), else nil.
    private func zstdContext(for codec: BitshuffleLZ4.BlockCodec) -> OpaquePointer? {
        guard case .zstd = codec else { return nil }
        if codecs.zstd == nil { codecs.zstd = ZSTD_createCCtx() }
        return codecs.zstd
    }

    /// Complex data as two chunks: the real parts, then the imaginary parts, each shuffled and
    /// compressed on its own (NXem stores complex images as `real` and `imag` fields). Returns the
    /// buffer holding both and the length of the first.
    public func encodeComplexSplit(componentSize: Int, compression: Compression) throws -> (ChunkBuffer, Int) {
        let n = input.count / (2 * componentSize)
        extra.reserve(input.count)
        let src = input.raw.baseAddress!, dst = extra.raw.baseAddress!
        if componentSize == 4 {
            let s = src.assumingMemoryBound(to: UInt32.self), d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { d[i] = s[2 * i]; d[n + i] = s[2 * i + 1] }
        } else {
            let s = src.assumingMemoryBound(to: UInt64.self), d = dst.assumingMemoryBound(to: UInt64.self)
            for i in 0..<n { d[i] = s[2 * i]; d[n + i] = s[2 * i + 1] }
        }
        let half = n * componentSize
        let re = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(extra.raw)[0..<half])
        let im = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(extra.raw)[half..<(2 * half)])
        let split = try compress(re, compression: compression, shuffleElementSize: componentSize, into: scratch, at: 0)
        scratch.count = try compress(im, compression: compression, shuffleElementSize: componentSize, into: scratch, at: split)
        return (scratch, split)
    }
}

/// HDF5's shuffle filter: byte k of every element goes to plane k (the byte transposition of
/// CBitshuffle: SSE2 for 2- and 4-byte elements). Trailing bytes that do not form a whole element
/// are copied as they are, as HDF5 does.
public func shuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize: Int) {
    transposeBytes(src, into: dst, elementSize: elementSize, emc_byte_shuffle)
}

/// The inverse of ``shuffle(_:into:elementSize:)`` (HDF5's shuffle filter and numcodecs Shuffle on read).
public func unshuffle(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize: Int) {
    transposeBytes(src, into: dst, elementSize: elementSize, emc_byte_unshuffle)
}

private func transposeBytes(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, elementSize e: Int,
                            _ transpose: (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int, Int) -> Void) {
    guard src.count > 0 else { return }
    let n = src.count / e
    transpose(src.baseAddress, dst.baseAddress, n, e)
    if src.count > n * e {
        (dst.baseAddress! + n * e).copyMemory(from: src.baseAddress! + n * e, byteCount: src.count - n * e)
    }
}
