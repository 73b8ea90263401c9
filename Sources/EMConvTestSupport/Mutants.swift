/// Damaged copies of a file for corruption sweeps. Deterministic (Knuth's 64-bit LCG), so a
/// failing case is reproducible from its index.
public struct Mutants {
    /// The generator: `next()` steps it and returns the new state.
    public struct LCG {
        public var state: UInt64
        public init(seed: UInt64) { state = seed }
        public mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
    }

    /// `cuts` truncations at k/(cuts+1) of the length (marked `truncated`), then `flipped` copies
    /// with three bytes each XOR-ed with a non-zero value.
    public static func sweep(_ full: [UInt8], seed: UInt64, cuts: Int = 20, flipped: Int = 20) -> [(bytes: [UInt8], truncated: Bool)] {
        var out: [(bytes: [UInt8], truncated: Bool)] = (1...cuts).map { (Array(full.prefix(full.count * $0 / (cuts + 1))), true) }
        var g = LCG(seed: seed)
        for _ in 0..<flipped {
            var b = full
            for _ in 0..<3 {
                let s = g.next()
                b[Int(s >> 33) % b.count] ^= UInt8(truncatingIfNeeded: s >> 13) | 1
            }
            out.append((b, false))
        }
        return out
    }
}
