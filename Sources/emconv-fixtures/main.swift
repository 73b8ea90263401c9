import EMConvKit
import EMConvTestSupport
import Foundation

/// emconv-fixtures: regenerates the committed fixture set, or streams a large benchmark MIB.
///
///     swift run emconv-fixtures [DIR]              (default DIR: fixtures)
///     swift run -c release emconv-fixtures bench-mib OUT.mib [--scan 128x128] [--det 256] [--depth 12]
///     emconv-fixtures bench-emd-stream FILE THREADS    (spectrum-stream decoding throughput)
///     swift run -c release emconv-fixtures bench-bitshuffle [SECONDS]   (bitshuffle-LZ4 codec, GB/s on one core)
///     swift run -c release emconv-fixtures bench-mrc OUT.mrc [--scan 128x128] [--det 256]   (4D-STEM MRC, FEI2 scan size)
///     emconv-fixtures fuzz-seeds TARGET DIR        (generated seeds of the mrc, tia, tiff and dectris fuzz targets)
///     emconv-fixtures regressions DIR              (the damaged HDF5 files of fixtures/regressions, from a generated EMD)

func usage() -> Never {
    FileHandle.standardError.write(Data("""
    usage: emconv-fixtures [DIR]
           emconv-fixtures bench-mib OUT.mib [--scan YxX] [--det 256|512] [--depth 1|6|12|24] [--radius N] [--seed N]
           emconv-fixtures bench-emd-stream FILE THREADS
           emconv-fixtures bench-mrc OUT.mrc [--scan YxX] [--det N]
           emconv-fixtures bench-bitshuffle [SECONDS]
           emconv-fixtures fuzz-seeds mrc|tia|tiff|dectris DIR
           emconv-fixtures regressions DIR

    """.utf8))
    exit(64)
}

func fail(_ e: Error) -> Never {
    FileHandle.standardError.write(Data("emconv-fixtures: error: \(e)\n".utf8))
    exit(e is EMError ? (e as! EMError).code.exitCode : 1)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "-h" || args.first == "--help" { usage() }

if args.count == 3, args[0] == "bench-emd-stream", let t = Int(args[2]) {
    do {
        let r = try EMDStreamBench.run(path: args[1], threads: t)
        print(String(format: "threads=%d events=%d seconds=%.3f events_per_s=%.3e shape=%@ sha256=%@",
                     t, r.events, r.seconds, Double(r.events) / r.seconds, "\(r.shape)", r.sha256))
    } catch {
        fail(error)
    }
    exit(0)
}

if args.first == "bench-bitshuffle" {
    do {
        for line in try BitshuffleBench.run(seconds: args.count > 1 ? Double(args[1]) ?? 1 : 1) { print(line) }
    } catch {
        fail(error)
    }
    exit(0)
}

if args.count == 3, args[0] == "fuzz-seeds" {
    guard let target = FuzzTarget(rawValue: args[1]) else { usage() }
    do {
        try FileManager.default.createDirectory(atPath: args[2], withIntermediateDirectories: true)
        try FuzzSeeds.write(target, into: args[2])
    } catch {
        fail(error)
    }
    exit(0)
}

if args.count == 2, args[0] == "regressions" {
    do { try HDF5Regressions.writeAll(under: args[1]) } catch { fail(error) }
    exit(0)
}

if args.first == "bench-mib" {
    args.removeFirst()
    guard let out = args.first, !out.hasPrefix("-") else { usage() }
    args.removeFirst()
    var scan = (128, 128), det = 256, depth = 12, radius = 25
    var seed: UInt64 = 2024
    while !args.isEmpty {
        let k = args.removeFirst()
        guard let v = args.first else { usage() }
        args.removeFirst()
        switch k {
        case "--scan":
            let p = v.lowercased().split(whereSeparator: { $0 == "x" || $0 == "," }).compactMap { Int($0) }
            guard p.count == 2 else { usage() }
            scan = (p[0], p[1])
        case "--det": guard let d = Int(v) else { usage() }; det = d
        case "--depth": guard let d = Int(v) else { usage() }; depth = d
        case "--radius": guard let d = Int(v) else { usage() }; radius = d
        case "--seed": guard let d = UInt64(v) else { usage() }; seed = d
        default: usage()
        }
    }
    let tty = isatty(2) != 0
    do {
        let r = try MIBBenchWriter.write(path: out, scanY: scan.0, scanX: scan.1, det: det, depth: depth, discRadius: radius, seed: seed) { done, total in
            if tty, done % 256 == 0 || done == total {
                FileHandle.standardError.write(Data("\r\(done)/\(total) frames".utf8))
            }
        }
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
        let mb = Double(r.bytes) / 1e6
        print(String(format: "wrote %@ (%d frames, %.1f MB) and %@ in %.2f s (%.0f MB/s)",
                     r.path, r.frames, mb, r.hdrPath, r.seconds, mb / max(r.seconds, 1e-9)))
    } catch {
        fail(error)
    }
    exit(0)
}

if args.first == "bench-mrc" {
    args.removeFirst()
    guard let out = args.first, !out.hasPrefix("-") else { usage() }
    args.removeFirst()
    var scan = (128, 128), det = 256
    while !args.isEmpty {
        let k = args.removeFirst()
        guard let v = args.first else { usage() }
        args.removeFirst()
        switch k {
        case "--scan":
            let p = v.lowercased().split(whereSeparator: { $0 == "x" || $0 == "," }).compactMap { Int($0) }
            guard p.count == 2 else { usage() }
            scan = (p[0], p[1])
        case "--det": guard let d = Int(v) else { usage() }; det = d
        default: usage()
        }
    }
    do {
        let r = try MRCBenchWriter.write(path: out, scanY: scan.0, scanX: scan.1, det: det)
        let mb = Double(r.bytes) / 1e6
        print(String(format: "wrote %@ (%d frames, %.1f MB) in %.2f s", r.path, r.frames, mb, r.seconds))
    } catch {
        fail(error)
    }
    exit(0)
}

guard args.count <= 1, args.first.map({ !$0.hasPrefix("-") }) ?? true else { usage() }
let dir = args.first ?? "fixtures"
do {
    let files = try FixtureSet.generate(into: dir)
    var total = 0
    for f in files {
        let size = ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + f))?[.size] as? Int) ?? 0
        total += size
        print(String(format: "%9d  %@", size, f))
    }
    print(String(format: "%9d  total in %@ (%d files)", total, dir, files.count))
} catch {
    fail(error)
}
