import EMConvKit
import Foundation

/// Micro benchmark of the bitshuffle-LZ4 codec on one core (`emconv-fixtures bench-bitshuffle`):
/// the bit transposition of 8 KiB blocks alone and whole-frame chunk encode/decode, in GB/s of
/// uncompressed data, on generated frames (sparse Poisson counts, an ARINA-like disc, dense noise).
public enum BitshuffleBench {
    public struct Case: Sendable {
        public var name: String
        public var elementSize: Int
        public var frameElements: Int
        /// `count` frames back to back, little-endian.
        public var data: [UInt8]
    }

    /// Poisson counts by inversion (small means only).
    static func poisson(_ lambda: Double, _ rng: inout SplitMix64) -> UInt64 {
        let l = exp(-lambda)
        var k: UInt64 = 0
        let p = Double(rng.next() >> 11) / Double(1 << 53)
        var cdf = l, term = l
        while p > cdf, k < 1000 {
            k += 1
            term *= lambda / Double(k)
            cdf += term
        }
        return k
    }

    /// The generated cases: `frames` frames each.
    public static func cases(frames: Int = 32) -> [Case] {
        func make(_ name: String, _ e: Int, _ det: Int, _ value: (Int, Int, inout SplitMix64) -> UInt64) -> Case {
            var rng = SplitMix64(seed: 2024)
            var data = [UInt8](repeating: 0, count: frames * det * det * e)
            var o = 0
            for f in 0..<frames {
                for y in 0..<det {
                    for x in 0..<det {
                        let v = value(f, y * det + x, &rng)
                        for b in 0..<e { data[o + b] = UInt8(truncatingIfNeeded: v >> (8 * b)) }
                        o += e
                    }
                }
            }
            return Case(name: name, elementSize: e, frameElements: det * det, data: data)
        }
        let arinaDisc: (Int, Int, inout SplitMix64) -> UInt64 = { f, i, rng in
            let y = Double(i / 192), x = Double(i % 192)
            let cy = 96 + 6 * sin(Double(f) / 40), cx = 96 + 6 * cos(Double(f) / 57)
            return poisson((y - cy) * (y - cy) + (x - cx) * (x - cx) < 900 ? 10 : 0.3, &rng)
        }
        return [
            make("u16 256x256 Poisson mean 0.1", 2, 256) { _, _, rng in poisson(0.1, &rng) },
            make("u32 192x192 ARINA-like (disc 10, bg 0.3)", 4, 192, arinaDisc),
            make("u16 256x256 dense 12-bit noise", 2, 256) { _, _, rng in rng.next() & 0xFFF },
        ]
    }

    /// Runs `body` over the case's frames until at least `seconds` passed; returns GB/s.
    static func rate(_ c: Case, seconds: Double, _ body: (UnsafeRawPointer, Int) throws -> Void) rethrows -> Double {
        let frameBytes = c.frameElements * c.elementSize
        let count = c.data.count / frameBytes
        var bytes = 0
        let start = Date()
        try c.data.withUnsafeBytes { d in
            repeat {
                for f in 0..<count { try body(d.baseAddress! + f * frameBytes, f) }
                bytes += c.data.count
            } while Date().timeIntervalSince(start) < seconds
        }
        return Double(bytes) / Date().timeIntervalSince(start) / 1e9
    }

    /// One line per case: transposition and chunk codec rates, and the compression ratio.
    public static func run(seconds: Double = 1) throws -> [String] {
        var lines: [String] = []
        for c in cases() {
            let e = c.elementSize, n = c.frameElements, frameBytes = n * e
            let block = BitshuffleLZ4.defaultBlockElements(elementSize: e)
            let tmp = UnsafeMutableRawPointer.allocate(byteCount: frameBytes, alignment: 64)
            defer { tmp.deallocate() }
            // The transposition alone, per implementation this CPU runs (the best one first).
            var transposition: [String] = []
            for t in BitshuffleLZ4.Transposition.allCases where t.isAvailable {
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: block * e, alignment: 64)
                defer { scratch.deallocate() }
                let shuffle = rate(c, seconds: seconds / 4) { p, _ in
                    var i = 0
                    while i + block <= n {
                        BitshuffleLZ4.bitshuffle(p + i * e, into: tmp + i * e, elements: block, elementSize: e, scratch: scratch, using: t)
                        i += block
                    }
                }
                let unshuffle = rate(c, seconds: seconds / 4) { p, _ in
                    var i = 0
                    while i + block <= n {
                        BitshuffleLZ4.bitunshuffle(p + i * e, into: tmp + i * e, elements: block, elementSize: e, scratch: scratch, using: t)
                        i += block
                    }
                }
                let label = t == .best ? "best (\(BitshuffleLZ4.Transposition.selected))" : "\(t)"
                transposition.append(String(format: "%@ %.2f/%.2f", label, shuffle, unshuffle))
            }
            // Encoded frames, kept for the decoding pass.
            let cap = BitshuffleLZ4.compressBound(bytes: frameBytes, elementSize: e)
            let count = c.data.count / frameBytes
            var encoded = [[UInt8]](repeating: [], count: count)
            let enc = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64)
            defer { enc.deallocate() }
            let encode = try rate(c, seconds: seconds) { p, f in
                let m = try BitshuffleLZ4.encode(UnsafeRawBufferPointer(start: p, count: frameBytes), elementSize: e, into: enc, capacity: cap)
                if encoded[f].isEmpty { encoded[f] = [UInt8](UnsafeRawBufferPointer(start: enc, count: m)) }
            }
            let out = UnsafeMutableRawBufferPointer(start: tmp, count: frameBytes)
            let decode = try rate(c, seconds: seconds) { _, f in
                try encoded[f].withUnsafeBytes { try BitshuffleLZ4.decode($0, elementSize: e, into: out) }
            }
            try encoded[count - 1].withUnsafeBytes { try BitshuffleLZ4.decode($0, elementSize: e, into: out) }
            guard memcmp(out.baseAddress!, c.data.withUnsafeBytes { $0.baseAddress! + (count - 1) * frameBytes }, frameBytes) == 0 else {
                throw EMError(.failure, "bench-bitshuffle: \(c.name) does not round-trip")
            }
            let ratio = Double(c.data.count) / Double(encoded.map(\.count).reduce(0, +))
            lines.append(c.name.padding(toLength: 42, withPad: " ", startingAt: 0)
                + String(format: " encode %5.2f  decode %5.2f  ratio %5.1fx  transposition (shuffle/unshuffle): ", encode, decode, ratio)
                + transposition.joined(separator: ", "))
        }
        return lines
    }
}
