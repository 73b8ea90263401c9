import Foundation

/// A virtual detector: the detector pixels whose distance `d` from the centre satisfies
/// `inner < d <= outer` (bright field: no inner bound).
public struct VirtualDetector: Sendable {
    public var name: String
    public var inner: Double?
    public var outer: Double
    public init(name: String, inner: Double?, outer: Double) {
        self.name = name
        self.inner = inner
        self.outer = outer
    }
}

/// Computes derived views of a dataset (virtual detector images, the sum and the maximum over
/// all frames) while the writer streams it: it passes every frame through and accumulates, so
/// the views cost no second pass. Frames the writer did not read (or read out of the pass) are
/// read by ``complete()`` before a view is delivered; each frame counts once.
///
/// Values are taken as float64. A virtual image's value for a frame is the sum of its pixels;
/// the sum pattern adds the frames in the order they were read; NaN values are left out of
/// sums and maxima (NumPy's nansum and nanmax; a pixel NaN in every frame has maximum NaN). For
/// integer data every result is exact. Memory: one float64 frame, one value per frame per
/// virtual detector, two float64 frames.
public final class DerivedViewTap: FrameSource, @unchecked Sendable {
    public let input: Dataset
    public let detectors: [VirtualDetector]
    /// Pixel indices of each virtual detector.
    public let pixels: [[Int]]
    public let wantSum: Bool
    public let wantMax: Bool
    private let lock = NSLock()
    private var images: [[Double]]
    private var sum: [Double]
    private var maxima: [Double]
    private var seen: [Bool]
    private var seenCount = 0
    private var values: [Double]

    /// `distance(pixel)` is the distance of a frame pixel (flat C index) from the centre, in the
    /// radii's units.
    public init(_ input: Dataset, detectors: [VirtualDetector], distance: (Int) -> Double, sum: Bool, max: Bool) {
        self.input = input
        self.detectors = detectors
        let n = input.frameElements
        pixels = detectors.map { det in
            (0..<n).filter { p in
                let d = distance(p)
                return d <= det.outer && (det.inner.map { d > $0 } ?? true)
            }
        }
        wantSum = sum
        wantMax = max
        images = detectors.map { _ in [Double](repeating: 0, count: input.frameCount) }
        self.sum = sum ? [Double](repeating: 0, count: n) : []
        maxima = max ? [Double](repeating: .nan, count: n) : []
        seen = [Bool](repeating: false, count: input.frameCount)
        values = [Double](repeating: 0, count: n)
    }

    public func prepareReadingThread() { input.source.prepareReadingThread() }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        try input.source.readFrame(index, into: buffer)
        accumulate(index, UnsafeRawBufferPointer(buffer))
    }

    private func accumulate(_ index: Int, _ frame: UnsafeRawBufferPointer) {
        lock.lock(); defer { lock.unlock() }
        guard !seen[index] else { return }
        seen[index] = true
        seenCount += 1
        let n = input.frameElements
        // Raw pointers throughout: the loops run once per frame on the writer's reading thread.
        values.withUnsafeMutableBufferPointer { vb in
            let v = vb.baseAddress!
            frameDoubles(frame, input.elementType, count: n, into: v)
            for k in pixels.indices {
                var s = 0.0
                pixels[k].withUnsafeBufferPointer { px in
                    for p in px { let x = v[p]; if !x.isNaN { s += x } }
                }
                images[k].withUnsafeMutableBufferPointer { $0[index] = s }
            }
            if wantSum {
                sum.withUnsafeMutableBufferPointer { sb in
                    for p in 0..<n { let x = v[p]; if !x.isNaN { sb[p] += x } }
                }
            }
            if wantMax {
                maxima.withUnsafeMutableBufferPointer { mb in
                    for p in 0..<n { let x = v[p]; if !x.isNaN && !(x <= mb[p]) { mb[p] = x } }
                }
            }
        }
    }

    /// Reads the frames the writer has not read yet.
    public func complete() throws {
        lock.lock()
        let missing = seen.indices.filter { !seen[$0] }
        lock.unlock()
        guard !missing.isEmpty else { return }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, input.frameBytes), alignment: 16)
        defer { buf.deallocate() }
        input.source.prepareReadingThread()
        for f in missing {
            try input.source.readFrame(f, into: buf)
            accumulate(f, UnsafeRawBufferPointer(buf))
        }
    }

    public enum View: Sendable { case virtual(Int), sum, max }

    /// One finished view, as float64 values in C order.
    public func values(of view: View) throws -> [Double] {
        try complete()
        lock.lock(); defer { lock.unlock() }
        switch view {
        case let .virtual(k): return images[k]
        case .sum: return sum
        case .max: return maxima
        }
    }
}

/// One derived view as a one-frame float64 dataset source.
public final class DerivedViewSource: FrameSource, @unchecked Sendable {
    let tap: DerivedViewTap
    let view: DerivedViewTap.View

    public init(_ tap: DerivedViewTap, _ view: DerivedViewTap.View) {
        self.tap = tap
        self.view = view
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let v = try tap.values(of: view)
        guard index == 0, buffer.count >= v.count * 8 else {
            throw EMError(.failure, at: "frame \(index)", "a derived view has one frame of \(v.count) values")
        }
        let p = buffer.baseAddress!.assumingMemoryBound(to: Double.self)
        for i in v.indices { p[i] = v[i] }
    }
}
