import EMConvKit
import Foundation

/// Decoding throughput of Velox spectrum streams (used by benchmarks/emd_stream_bench.sh).
public enum EMDStreamBench {
    /// Opens `path` (index pass included) and decodes every spectrum of its EDS cube with
    /// `threads` decoding threads. Returns stream values (events incl. pixel markers), seconds,
    /// and a checksum of the decoded cube.
    public static func run(path: String, threads: Int) throws -> (events: Int, seconds: Double, sha256: String, shape: [Int]) {
        var events = 0
        let f = try HDF5File(reading: path)
        if let g = f.root.openGroup("Data")?.openGroup("SpectrumStream") {
            for n in g.childNames { events += g.openGroup(n)?.openDataset("Data")?.shape.first ?? 0 }
        }
        let start = Date()
        var o = EMDOptions()
        o.threads = threads
        let file = try EMDReader.open(path, emd: o)
        guard let eds = file.datasets.first(where: { $0.signalKind == "eds" && $0.rank == 3 }) else {
            throw EMError(.badInput, file: path, "no EDS spectrum image decoded")
        }
        let sha = try DataHash.sha256(eds)
        return (events, Date().timeIntervalSince(start), sha, eds.shape)
    }
}
