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
    case "interop":
        // OUT is a folder: one file per DataType × DM3/DM4 × byte order (2-D), a spectrum image,
        // a stack and 4D in both layouts, plus expect.json: shape and sha256 that an independent
        // reader returning the on-disk (reversed Dimensions) order must produce.
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var expect: [(String, MetaValue)] = []
        var seed: UInt64 = 1
        func rnd(_ n: Int, bool: Bool) -> [UInt8] {
            (0..<n).map { _ in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                let b = UInt8(truncatingIfNeeded: seed >> 33)
                return bool ? b & 1 : b
            }
        }
        func record(_ name: String, _ img: DMWriter.Image, version: Int, order: ByteOrder, diskLE: [UInt8]?) throws {
            let path = out + "/" + name
            try DMWriter.write(path, version: version, byteOrder: order, images: [img])
            var hash: String
            if let diskLE {
                var b = diskLE
                let dataType = img.dataType
                if dataType == 8 || dataType == 23 { for i in stride(from: 0, to: b.count, by: 4) { b.swapAt(i, i + 2) } }
                hash = SHA256Digest.hex(b)
            } else {
                hash = try DataHash.sha256(Catalog.open(path).datasets[0])
            }
            expect.append((name, .object([("shape", .array(img.dims.reversed().map { .int(Int64($0)) })), ("sha256", .string(hash)),
                                          ("byte_order", .string(order.rawValue)), ("data_type", .int(Int64(img.dataType)))])))
        }
        for dt in [1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 23, 27] {
            let es = DMWriter.pixelLayout(dt).bytes
            for version in [3, 4] {
                for order in [ByteOrder.little, .big] {
                    let dims = [4, 3]
                    let count = dt == 27 ? 3 * 3 : 12
                    var pix = rnd(count * es, bool: dt == 14)
                    if [2, 3, 12, 13, 27].contains(dt) {  // finite floats: small integers
                        let n = pix.count / (dt == 12 || dt == 13 ? 8 : 4)
                        pix = dt == 12 || dt == 13 ? (0..<n).flatMap { withUnsafeBytes(of: Double($0 * 3 - 7)) { Array($0) } }
                                                  : (0..<n).flatMap { withUnsafeBytes(of: Float($0 * 3 - 7)) { Array($0) } }
                    }
                    let img = DMWriter.Image(dataType: dt, dims: dims, pixels: .bytes(pix), calibrations: [(1, 0.5, "nm"), (-2, 0.25, "nm")])
                    try record("t\(dt)-\(order.rawValue).dm\(version)", img, version: version, order: order, diskLE: dt == 27 ? nil : pix)
                }
            }
        }
        let si = (0..<(3 * 2 * 5)).flatMap { withUnsafeBytes(of: Float($0)) { Array($0) } }
        try record("si.dm4", DMWriter.Image(dataType: 2, dims: [3, 2, 5], pixels: .bytes(si), calibrations: [(0, 2, "nm"), (0, 2, "nm"), (-100, 0.5, "eV")],
                                            imageTags: [("Meta Data", .group([("Format", .text("Spectrum image")), ("Signal", .text("EELS"))]))]),
                   version: 4, order: .little, diskLE: si)
        let stack = (0..<24).flatMap { withUnsafeBytes(of: UInt16($0)) { Array($0) } }
        try record("stack.dm3", DMWriter.Image(dataType: 10, dims: [4, 3, 2], pixels: .bytes(stack)), version: 3, order: .little, diskLE: stack)
        for contiguous in [true, false] {
            var img = DMWriter.fourD(scan: (3, 4), det: (5, 6), dataType: 10, contiguous: contiguous) { i in withUnsafeBytes(of: UInt16(i)) { Array($0) } }
            var disk = [UInt8](repeating: 0, count: 3 * 4 * 5 * 6 * 2)
            if case let .stream(_, fill) = img.pixels { disk.withUnsafeMutableBytes { fill(0, $0) } }
            img.pixels = .bytes(disk)
            try record("4d-\(contiguous ? "contiguous" : "transposed").dm4", img, version: 4, order: .little, diskLE: disk)
        }
        try MetaValue.object(expect).json(pretty: true).write(toFile: out + "/expect.json", atomically: true, encoding: .utf8)
    case "read":
        // Reader-only throughput: open OUT (an existing DM file) and read every frame.
        let t0 = Date()
        let f = try Catalog.open(out)
        let tOpen = Date().timeIntervalSince(t0)
        var total: Int64 = 0
        for ds in f.datasets {
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, ds.frameBytes), alignment: 64)
            defer { buf.deallocate() }
            for i in 0..<ds.frameCount { try ds.source.readFrame(i, into: buf) }
            total += ds.byteCount
        }
        let t = Date().timeIntervalSince(t0)
        print(String(format: "open %.3f s, read %lld bytes in %.2f s (%.0f MB/s)", tOpen, total, t, Double(total) / t / 1e6))
    default:
        throw EMError(.usage, "unknown kind '\(args[1])' (4d | tags | interop | read)")
    }
} catch {
    FileHandle.standardError.write("emconv-dmgen: \(error)\n".data(using: .utf8)!)
    exit(1)
}
