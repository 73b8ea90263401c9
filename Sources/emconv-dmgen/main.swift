import EMConvKit
import EMConvTestSupport
import Foundation

// emconv-dmgen: writes synthetic DM4 files for benchmarks (see benchmarks/dm4_bench.sh).
//   emconv-dmgen OUT.dm4 4d --layout contiguous|transposed --scan Y,X --det Y,X [--big-endian]
//   emconv-dmgen OUT.dm4 tags --groups N   (small image, N groups of 10 tags each)
let args = Array(CommandLine.arguments.dropFirst())
func opt(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func pair(_ s: String?) -> (Int, Int)? {
    guard let p = s?.split(separator: ",").compactMap({ Int($0) }), p.count == 2 else { return nil }
    return (p[0], p[1])
}
guard args.count >= 2 else {
    FileHandle.standardError.write("usage: emconv-dmgen OUT.dm4 4d --layout contiguous|transposed --scan Y,X --det Y,X | OUT.dm4 tags --groups N\n".data(using: .utf8)!)
    exit(64)
}
let out = args[0]
let order: ByteOrder = args.contains("--big-endian") ? .big : .little
do {
    switch args[1] {
    case "4d":
        guard let (sy, sx) = pair(opt("--scan")), let (dy, dx) = pair(opt("--det")) else { throw EMError(.usage, "need --scan Y,X and --det Y,X") }
        let contiguous = (opt("--layout") ?? "contiguous") == "contiguous"
        let n = sy * sx * dy * dx
        // uint16 values: a function of the logical (scan_y, scan_x, det_y, det_x) index.
        let fill: (Int64, UnsafeMutableRawBufferPointer) -> Void = { off, buf in
            let p = buf.bindMemory(to: UInt16.self)
            let first = Int(off) / 2
            let P = sy * sx, D = dy * dx
            for k in 0..<p.count {
                let disk = first + k
                let logical = contiguous ? disk : (disk % P) * D + disk / P
                p[k] = UInt16(truncatingIfNeeded: (logical &* 2654435761) >> 16)
            }
        }
        var img = DMWriter.fourD(scan: (sy, sx), det: (dy, dx), dataType: 10, contiguous: contiguous) { _ in [0, 0] }
        img.pixels = .stream(count: Int64(n * 2), fill: fill)
        try DMWriter.write(out, version: 4, byteOrder: order, images: [img])
    case "tags":
        let groups = Int(opt("--groups") ?? "10000") ?? 10000
        var tags: [(String, DMWriter.Tag)] = []
        for g in 0..<groups {
            tags.append(("Group \(g)", .group([
                ("Voltage", .float64(300000)), ("Name", .text("detector \(g)")), ("Count", .uint32(UInt32(g))),
                ("Flag", .bool(g % 2 == 0)), ("Scale", .float32(0.5)), ("Values", .array(type: 7, [1, 2, 3, 4])),
                ("Pair", .structure([(3, 1), (6, 2)])), ("Mode", .text("STEM")), ("Offset", .int32(-4)), ("Id", .uint64(UInt64(g))),
            ])))
        }
        try DMWriter.write(out, version: 4, byteOrder: order, images: [DMWriter.Image(dataType: 10, dims: [64, 64],
                                                                                           pixels: .bytes([UInt8](repeating: 1, count: 64 * 64 * 2)),
                                                                                           imageTags: tags)])
    default:
        throw EMError(.usage, "unknown kind '\(args[1])' (4d | tags)")
    }
} catch {
    FileHandle.standardError.write("emconv-dmgen: \(error)\n".data(using: .utf8)!)
    exit(1)
}
