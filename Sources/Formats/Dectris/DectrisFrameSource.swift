import EMCore
import EMHDF5
import Foundation

/// One data file of a Dectris acquisition: its dataset, how its chunks are stored and where.
struct DectrisPart {
    enum Codec: Equatable {
        /// Chunks hold whole frames and are decoded by emconv: stored as they are …
        case raw
        /// … bitshuffle + LZ4 (filter 32008, `cd_values[4]` = 2) …
        case bitshuffleLZ4
        /// … or bitshuffle alone with this block size (0: default).
        case bitshuffle(block: Int)
        /// Anything else (gzip, chunks that split frames): HDF5 reads hyperslabs.
        case hdf5
    }

    let path: String
    let file: HDF5File
    let dataset: HDF5Dataset
    let handle: RandomAccessFile
    /// Complete frames kept.
    let frames: Int
    /// Frames per chunk (the chunk's first dimension) when chunks hold whole frames.
    let chunkFrames: Int
    /// Location of every chunk holding a kept frame (empty for `.hdf5`).
    let chunks: [HDF5ChunkLocation]
    let codec: Codec
}

/// Frames of the data files in order, in their stored type. Chunks of whole frames are read
/// with `pread` and decoded by emconv (bitshuffle-LZ4, or stored) on all cores: a frame that is
/// not yet decoded starts a batch of the chunks that follow, decoded in parallel and kept until
/// the reader moves past them. Other layouts are read through HDF5 under ``HDF5/lock``.
final class DectrisFrameSource: FrameSource, @unchecked Sendable {
    let parts: [DectrisPart]
    let frameShape: [Int]
    let type: ElementType
    let frameBytes: Int
    private let firstFrame: [Int]
    private let threads: Int

    // The decoded batch: chunk ids (part, chunk) → buffer slot.
    private var batch: [Int: Int] = [:]
    private var batchPart = -1
    private var slots: [UnsafeMutableRawBufferPointer] = []
    private var inputs: [UnsafeMutableRawBufferPointer] = []

    /// Decoded bytes kept at most (at least one chunk).
    static let batchBytes = 32 << 20

    init(parts: [DectrisPart], frameShape: [Int], type: ElementType, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.parts = parts
        self.frameShape = frameShape
        self.type = type
        self.frameBytes = frameShape.reduce(1, *) * type.size
        var starts: [Int] = []
        var n = 0
        for p in parts { starts.append(n); n += p.frames }
        firstFrame = starts
        self.threads = max(1, threads)
    }

    deinit {
        for s in slots { s.deallocate() }
        for s in inputs { s.deallocate() }
    }

    var frameCount: Int { parts.map(\.frames).reduce(0, +) }

    func prepareReadingThread() { HDF5.silenceErrorsOnThisThread() }

    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard index >= 0, index < frameCount, buffer.count >= frameBytes else {
            throw EMError(.failure, "Dectris frame \(index) out of range or buffer too small")
        }
        var p = parts.count - 1
        while firstFrame[p] > index { p -= 1 }
        let part = parts[p]
        let local = index - firstFrame[p]
        if part.codec == .hdf5 {
            try HDF5.lock.withLock {
                try part.dataset.read(start: [local] + frameShape.map { _ in 0 }, count: [1] + frameShape, as: type, into: buffer)
            }
            return
        }
        let c = local / part.chunkFrames
        if batchPart != p || batch[c] == nil { try decodeBatch(part: p, from: c) }
        let slot = slots[batch[c]!]
        let within = local % part.chunkFrames
        buffer.baseAddress!.copyMemory(from: slot.baseAddress! + within * frameBytes, byteCount: frameBytes)
    }

    /// Decodes chunks `first`, `first + 1`, … of part `p` in parallel into the batch slots.
    private func decodeBatch(part p: Int, from first: Int) throws {
        let part = parts[p]
        let chunkBytes = part.chunkFrames * frameBytes
        let count = max(1, min(2 * threads, Self.batchBytes / max(1, chunkBytes), part.chunks.count - first))
        while slots.count < count {
            slots.append(UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, chunkBytes), alignment: 64))
            inputs.append(UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 64))
        }
        for i in 0..<slots.count where slots[i].count < chunkBytes {
            slots[i].deallocate()
            slots[i] = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64)
        }
        // Input buffers sized on this thread (compressed chunks may exceed the decoded size a little).
        for k in 0..<count {
            let need = part.chunks[first + k].size
            if inputs[k].count < need {
                inputs[k].deallocate()
                inputs[k] = UnsafeMutableRawBufferPointer.allocate(byteCount: need, alignment: 64)
            }
        }
        batch = [:]
        batchPart = -1
        let job = BatchJob(source: self, part: part, first: first, chunkBytes: chunkBytes,
                           outs: Array(slots.prefix(count)), ins: Array(inputs.prefix(count)))
        if count == 1 || threads == 1 {
            for k in 0..<count { job.run(k) }
        } else {
            DispatchQueue.concurrentPerform(iterations: count) { job.run($0) }
        }
        let firstError = job.failure
        if let firstError { throw firstError }
        for k in 0..<count { batch[first + k] = k }
        batchPart = p
    }

    /// One parallel batch: chunk `first + k` into `outs[k]`, reading through `ins[k]`.
    private final class BatchJob: @unchecked Sendable {
        let source: DectrisFrameSource
        let part: DectrisPart
        let first: Int
        let chunkBytes: Int
        let outs: [UnsafeMutableRawBufferPointer]
        let ins: [UnsafeMutableRawBufferPointer]
        private let lock = NSLock()
        private(set) var failure: Error?

        init(source: DectrisFrameSource, part: DectrisPart, first: Int, chunkBytes: Int,
             outs: [UnsafeMutableRawBufferPointer], ins: [UnsafeMutableRawBufferPointer]) {
            self.source = source
            self.part = part
            self.first = first
            self.chunkBytes = chunkBytes
            self.outs = outs
            self.ins = ins
        }

        func run(_ k: Int) {
            do {
                try source.decode(part: part, chunk: first + k, into: UnsafeMutableRawBufferPointer(rebasing: outs[k][0..<chunkBytes]), input: ins[k])
            } catch {
                lock.withLock { if failure == nil { failure = error } }
            }
        }
    }

    private func decode(part: DectrisPart, chunk c: Int, into out: UnsafeMutableRawBufferPointer, input: UnsafeMutableRawBufferPointer) throws {
        let loc = part.chunks[c]
        let what = "chunk \(c) (frames \(c * part.chunkFrames)…)"
        let raw = UnsafeMutableRawBufferPointer(rebasing: input[0..<loc.size])
        // Filter 0 skipped for this chunk: stored as it is.
        let filtered = part.codec != .raw && loc.filterMask & 1 == 0
        if !filtered {
            guard loc.size == out.count else {
                throw EMError(.badInput, file: part.path, at: what, "stored chunk has \(loc.size) bytes, expected \(out.count)")
            }
            try part.handle.read(at: Int64(loc.address), into: out, what: what)
            return
        }
        try part.handle.read(at: Int64(loc.address), into: raw, what: what)
        do {
            switch part.codec {
            case .bitshuffleLZ4:
                try BitshuffleLZ4.decode(UnsafeRawBufferPointer(raw), elementSize: type.size, into: out)
            case let .bitshuffle(block):
                try BitshuffleLZ4.unshuffleOnly(UnsafeRawBufferPointer(raw), elementSize: type.size, blockElements: block, into: out)
            case .raw, .hdf5:
                break
            }
        } catch let e as EMError {
            throw EMError(.badInput, file: part.path, at: what, e.message)
        }
        Watchdog.beat()
    }
}
