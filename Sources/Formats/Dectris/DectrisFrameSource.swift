import EMCore
import EMHDF5
import Foundation

/// One data file of a Dectris acquisition: its dataset, how its chunks are stored and where.
struct DectrisPart {
    enum Codec: Equatable {
        /// Chunks hold whole frames and are decoded by emconv: stored as they are …
        case raw
        /// … bitshuffle + LZ4 or zstd blocks (filter 32008, `cd_values[4]` = 2 or 3) …
        case bitshuffleBlocks(BitshuffleLZ4.BlockCodec)
        /// … bitshuffle alone with this block size (0: default) …
        case bitshuffle(block: Int)
        /// … or Blosc (filter 32001, any of its codecs and shuffles).
        case blosc
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
    /// Chunks holding the kept frames.
    var chunkCount: Int { (frames + chunkFrames - 1) / chunkFrames }
    let codec: Codec

    func chunkOrigin(_ c: Int) -> [Int] { [c * chunkFrames] + dataset.shape.dropFirst().map { _ in 0 } }
}

/// Frames of the data files in order, in their stored type. Chunks of whole frames are read raw
/// (`H5Dread_chunk`, under ``HDF5/lock``) and decoded by emconv (bitshuffle-LZ4/zstd, Blosc, or stored) on
/// all cores: a frame that is not yet decoded starts a batch of the chunks that follow, read in
/// order, decoded in parallel and kept until the reader moves past them. Other layouts are read
/// through HDF5 hyperslabs.
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
        let count = max(1, min(2 * threads, Self.batchBytes / max(1, chunkBytes), part.chunkCount - first))
        while slots.count < count {
            slots.append(UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, chunkBytes), alignment: 64))
            inputs.append(UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 64))
        }
        for i in 0..<slots.count where slots[i].count < chunkBytes {
            slots[i].deallocate()
            slots[i] = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64)
        }
        // The stored chunks, in file order, on this thread; each size checked before allocating.
        let limit: Int
        switch part.codec {
        case let .bitshuffleBlocks(codec): limit = BitshuffleLZ4.compressBound(bytes: chunkBytes, elementSize: type.size, codec: codec)
        case .blosc: limit = chunkBytes + BloscChunk.maxOverhead
        default: limit = chunkBytes
        }
        var sizes: [Int] = []
        var masks: [UInt32] = []
        try HDF5.lock.withLock {
            for k in 0..<count {
                let c = first + k
                let at = "chunk \(c) (frames \(c * part.chunkFrames)…)"
                guard let size = part.dataset.chunkStorageSize(at: part.chunkOrigin(c)) else {
                    throw EMError(.badInput, file: part.path, at: at, "the chunk was never written")
                }
                guard size <= limit else {
                    throw EMError(.badInput, file: part.path, at: at, "stored chunk has \(size) bytes, more than \(chunkFrames(part)) of \(frameBytes) bytes can take")
                }
                if inputs[k].count < size {
                    inputs[k].deallocate()
                    inputs[k] = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
                }
                masks.append(try part.dataset.readRawChunk(at: part.chunkOrigin(c), into: inputs[k]))
                sizes.append(size)
                Watchdog.beat()
            }
        }
        batch = [:]
        batchPart = -1
        let job = BatchJob(source: self, part: part, first: first, chunkBytes: chunkBytes,
                           outs: Array(slots.prefix(count)), ins: (0..<count).map { UnsafeMutableRawBufferPointer(rebasing: inputs[$0][0..<sizes[$0]]) },
                           masks: masks)
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
        let masks: [UInt32]
        private let lock = NSLock()
        private(set) var failure: Error?

        init(source: DectrisFrameSource, part: DectrisPart, first: Int, chunkBytes: Int,
             outs: [UnsafeMutableRawBufferPointer], ins: [UnsafeMutableRawBufferPointer], masks: [UInt32]) {
            self.source = source
            self.part = part
            self.first = first
            self.chunkBytes = chunkBytes
            self.outs = outs
            self.ins = ins
            self.masks = masks
        }

        func run(_ k: Int) {
            do {
                try source.decode(part: part, chunk: first + k, into: UnsafeMutableRawBufferPointer(rebasing: outs[k][0..<chunkBytes]),
                                  stored: ins[k], filterMask: masks[k])
            } catch {
                lock.withLock { if failure == nil { failure = error } }
            }
        }
    }

    private func chunkFrames(_ part: DectrisPart) -> String { part.chunkFrames == 1 ? "a frame" : "\(part.chunkFrames) frames" }

    /// Decodes one stored chunk (on a worker thread: no HDF5 call).
    private func decode(part: DectrisPart, chunk c: Int, into out: UnsafeMutableRawBufferPointer,
                        stored raw: UnsafeMutableRawBufferPointer, filterMask: UInt32) throws {
        let what = "chunk \(c) (frames \(c * part.chunkFrames)…)"
        // Filter 0 skipped for this chunk: stored as it is.
        if part.codec == .raw || filterMask & 1 != 0 {
            guard raw.count == out.count else {
                throw EMError(.badInput, file: part.path, at: what, "stored chunk has \(raw.count) bytes, expected \(out.count)")
            }
            out.copyMemory(from: UnsafeRawBufferPointer(raw))
            return
        }
        do {
            switch part.codec {
            case let .bitshuffleBlocks(codec):
                try BitshuffleLZ4.decode(UnsafeRawBufferPointer(raw), elementSize: type.size, codec: codec, into: out)
            case let .bitshuffle(block):
                try BitshuffleLZ4.unshuffleOnly(UnsafeRawBufferPointer(raw), elementSize: type.size, blockElements: block, into: out)
            case .blosc:
                try BloscChunk.decode(UnsafeRawBufferPointer(raw), into: out)
            case .raw, .hdf5:
                break
            }
        } catch let e as EMError {
            throw EMError(.badInput, file: part.path, at: what, e.message)
        }
        Watchdog.beat()
    }
}

/// The data files' allocated storage (nil when one is unknown): `info` shows it beside the declared
/// size, and ``MemoryBudget/checkDeclared(_:framesOnly:)`` checks these frames and their
/// plausibility as it does every HDF5 source's (fuzz finding: a data file declaring 17 TB frames
/// was never checked, so nothing refused it before a frame was allocated).
extension DectrisFrameSource: StoredSizeReporting {
    var storedBytes: Int64? {
        HDF5.lock.withLock {
            var total: Int64 = 0
            for part in parts {
                guard let s = part.dataset.knownStoredBytes else { return nil }
                total = total.addingReportingOverflow(s).overflow ? .max : total + s
            }
            return total
        }
    }
}
