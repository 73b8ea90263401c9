import Foundation

/// What a reader does to pixel bytes after reading them, to reach the common model's native order.
public enum PixelFix: Equatable, Sendable {
    case none
    /// Byte-swap components of this size (big-endian data on a little-endian machine).
    case swap(Int)
    /// Pixels stored B, G, R(, A) (DigitalMicrograph RGB): exchange bytes 0 and 2 of every 4-byte pixel.
    case bgraToRgba

    public func apply(_ p: UnsafeMutableRawBufferPointer) {
        switch self {
        case .none: break
        case let .swap(n): if n > 1 { byteSwapInPlace(p, componentSize: n) }
        case .bgraToRgba:
            let b = p.bindMemory(to: UInt8.self)
            var i = 0
            while i + 3 < b.count { let t = b[i]; b[i] = b[i + 2]; b[i + 2] = t; i += 4 }
        }
    }
}

/// Frames at a constant stride in one file (generic raw, EMPAD, DM images and C-order stacks).
public final class StridedFrameSource: FrameSource {
    public let file: RandomAccessFile
    public let firstFrame: Int64
    public let stride: Int64
    public let frameBytes: Int
    public let fix: PixelFix

    public init(file: RandomAccessFile, firstFrame: Int64, stride: Int64, frameBytes: Int, fix: PixelFix = .none) {
        self.file = file
        self.firstFrame = firstFrame
        self.stride = stride
        self.frameBytes = frameBytes
        self.fix = fix
    }

    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let p = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<frameBytes])
        try file.read(at: firstFrame + Int64(index) * stride, into: p, what: "frame \(index + 1)")
        fix.apply(p)
    }
}
