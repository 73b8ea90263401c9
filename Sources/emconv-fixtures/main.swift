import EMConvTestSupport
import Foundation

// emconv-fixtures bench-emd-stream FILE THREADS: spectrum-stream decoding throughput.
let args = CommandLine.arguments
if args.count == 4, args[1] == "bench-emd-stream", let t = Int(args[3]) {
    do {
        let r = try EMDStreamBench.run(path: args[2], threads: t)
        print(String(format: "threads=%d events=%d seconds=%.3f events_per_s=%.3e shape=%@ sha256=%@",
                     t, r.events, r.seconds, Double(r.events) / r.seconds, "\(r.shape)", r.sha256))
    } catch {
        FileHandle.standardError.write("emconv-fixtures: \(error)\n".data(using: .utf8)!)
        exit(1)
    }
} else {
    print("usage: emconv-fixtures bench-emd-stream FILE THREADS")
}
