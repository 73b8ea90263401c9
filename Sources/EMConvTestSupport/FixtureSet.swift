import EMConvKit
import Foundation

/// The small committed fixture set (`fixtures/`), generated deterministically by
/// `swift run emconv-fixtures fixtures`. Every entry says what it is; `fixtures/README.md` is
/// written from these descriptions.
public enum FixtureSet {
    public struct Entry: Sendable {
        /// Primary file, relative to the fixtures folder.
        public let path: String
        public let description: String
        public let kind: Kind
    }

    public enum Kind: Sendable {
        case mib(MIBSpec)
        case empad(EMPADSpec)
        case raw(RawSpec)
    }

    static func mib(_ quad: Bool, _ fmt: MIBSpec.PixelFormat, _ depth: Int, rows: Int, frames: Int,
                    _ edit: (inout MIBSpec) -> Void = { _ in }) -> MIBSpec {
        var s = MIBSpec(quad: quad, format: fmt, depth: depth, rows: rows, frames: frames)
        s.pattern = .diffraction
        s.seed = UInt64(depth * 100 + rows + (quad ? 7 : 0) + (fmt == .r64 ? 1000 : 0))
        edit(&s)
        return s
    }

    public static let entries: [Entry] = [
        Entry(path: "mib/single_u08_1bit.mib", description: "single chip, 1-bit counter, U08, 64 ROI rows, 2x2 scan (frames per trigger 2)",
              kind: .mib(mib(false, .u08, 1, rows: 64, frames: 4) { $0.framesPerTrigger = 2 })),
        Entry(path: "mib/single_u08_6bit.mib", description: "single chip, 6-bit, U08, 64 ROI rows, 4 frames (1-D stack)",
              kind: .mib(mib(false, .u08, 6, rows: 64, frames: 4))),
        Entry(path: "mib/single_u16_12bit_4x4.mib", description: "single chip, 12-bit, U16, 32 ROI rows, 4x4 scan (.hdr ScanX/ScanY)",
              kind: .mib(mib(false, .u16, 12, rows: 32, frames: 16) { $0.scanX = 4; $0.scanY = 4; $0.framesPerTrigger = 4 })),
        Entry(path: "mib/single_u32_24bit.mib", description: "single chip, 24-bit, U32, 32 ROI rows, 2 frames",
              kind: .mib(mib(false, .u32, 24, rows: 32, frames: 2))),
        Entry(path: "mib/quad_u16_4x4.mib", description: "quad 2x2 (512 wide, header 768 bytes), 12-bit, U16, 16 ROI rows, 4x4 scan (frames per trigger 4)",
              kind: .mib(mib(true, .u16, 12, rows: 16, frames: 16) { $0.framesPerTrigger = 4 })),
        Entry(path: "mib/quad_u08_6bit.mib", description: "quad 2x2, 6-bit, U08, 32 ROI rows, 2 frames",
              kind: .mib(mib(true, .u08, 6, rows: 32, frames: 2))),
        Entry(path: "mib/single_r64_1bit.mib", description: "single chip RAW (R64) 1-bit, full 256x256, 4 frames",
              kind: .mib(mib(false, .r64, 1, rows: 256, frames: 4))),
        Entry(path: "mib/single_r64_6bit.mib", description: "single chip RAW 6-bit, 64 rows, 2 frames",
              kind: .mib(mib(false, .r64, 6, rows: 64, frames: 2))),
        Entry(path: "mib/single_r64_12bit.mib", description: "single chip RAW 12-bit, 64 rows, 2x2 scan (frames per trigger 2)",
              kind: .mib(mib(false, .r64, 12, rows: 64, frames: 4) { $0.framesPerTrigger = 2 })),
        Entry(path: "mib/single_r64_24bit.mib", description: "single chip RAW 24-bit (two 12-bit readouts, header width 512), 32 rows, 2 frames",
              kind: .mib(mib(false, .r64, 24, rows: 32, frames: 2))),
        Entry(path: "mib/quad_r64_1bit.mib", description: "quad RAW 1-bit, full 512x512 (header 1024x256), 2 frames",
              kind: .mib(mib(true, .r64, 1, rows: 512, frames: 2))),
        Entry(path: "mib/quad_r64_6bit.mib", description: "quad RAW 6-bit, 64 rows (32 per chip), 2 frames",
              kind: .mib(mib(true, .r64, 6, rows: 64, frames: 2))),
        Entry(path: "mib/quad_r64_12bit.mib", description: "quad RAW 12-bit, 64 rows (32 per chip), 2 frames",
              kind: .mib(mib(true, .r64, 12, rows: 64, frames: 2))),
        Entry(path: "mib/quad_r64_24bit.mib", description: "quad RAW 24-bit, 32 rows (16 per chip), 1 frame",
              kind: .mib(mib(true, .r64, 24, rows: 32, frames: 1))),
        Entry(path: "mib/series_0001.mib", description: "series of 3 files (series_0001..0003.mib, sequence numbers continue) + series.hdr with ScanX 3, ScanY 2; U08 6-bit, 16 rows",
              kind: .mib(mib(false, .u08, 6, rows: 16, frames: 6) { $0.seriesFrames = [2, 2, 2]; $0.scanX = 3; $0.scanY = 2 })),
        Entry(path: "mib/interrupted_3x3.mib", description: "interrupted 3x3 scan: 7 complete frames and a cut 8th (header + 100 bytes); reader keeps 2 lines and warns",
              kind: .mib(mib(false, .u16, 12, rows: 16, frames: 7) { $0.scanX = 3; $0.scanY = 3; $0.framesInAcquisition = 9; $0.partialFrameBytes = 484 })),
        Entry(path: "mib/flyback_3x4.mib", description: "no .hdr, 12 frames whose time stamps have a flyback gap every 4 frames: scan 3x4 inferred",
              kind: .mib(mib(false, .u08, 6, rows: 16, frames: 12) { $0.flybackLineLength = 4; $0.writeHdr = false })),
        Entry(path: "empad/acquisition_3x2.xml", description: "EMPAD xml (software 1.2 style, scan in scan_parameters mode=acquire) + scan_x3_y2.raw (6 frames 130x128 float32)",
              kind: .empad(EMPADSpec(scanX: 3, scanY: 2, style: .v122))),
        Entry(path: "empad/map_2x2.xml", description: "EMPAD xml (software 0.51 style, pix_x/pix_y) + scan_x2_y2.raw",
              kind: .empad({ var s = EMPADSpec(scanX: 2, scanY: 2, style: .v051); s.seed = 11; return s }())),
        Entry(path: "raw/stack_u16.raw", description: "raw little-endian uint16, shape 2x3x32x32 (4D), descriptor stack_u16.raw.json with calibrated axes",
              kind: .raw({
                  var s = RawSpec(dtype: "<u2", shape: [2, 3, 32, 32])
                  s.axes = [("scan_y", "nm", 2.5, 0), ("scan_x", "nm", 2.5, 0), ("det_y", "1/nm", 0.05, -0.8), ("det_x", "1/nm", 0.05, -0.8)]
                  return s
              }())),
        Entry(path: "raw/frames_f4be.raw", description: "raw big-endian float32, 4 frames of 16x24 after a 64-byte file header, 8-byte frame headers",
              kind: .raw({
                  var s = RawSpec(dtype: ">f4", shape: [4, 16, 24])
                  s.offset = 64
                  s.frameHeader = 8
                  return s
              }())),
    ]

    /// Writes every fixture (and README.md) into `dir`; returns the written files (relative).
    @discardableResult
    public static func generate(into dir: String) throws -> [String] {
        let fm = FileManager.default
        var written: [String] = []
        for e in entries {
            let full = dir + "/" + e.path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            switch e.kind {
            case let .mib(s):
                let g = try MIBWriter.write(s, to: s.seriesFrames == nil ? full : full.replacingOccurrences(of: "_0001.mib", with: ".mib"))
                written += g.mibPaths + (g.hdrPath.map { [$0] } ?? [])
            case let .empad(s):
                let g = try EMPADWriter.write(s, xml: full)
                written += [g.xmlPath, g.rawPath]
            case let .raw(s):
                let g = try RawFixtureWriter.write(s, to: full)
                written += [g.dataPath] + (g.descriptorPath.map { [$0] } ?? [])
            }
        }
        try Data(readme().utf8).write(to: URL(fileURLWithPath: dir + "/README.md"))
        written.append(dir + "/README.md")
        return written.map { String($0.dropFirst(dir.count + 1)) }
    }

    public static func readme() -> String {
        var s = """
        # fixtures

        Small files emconv generates itself (no instrument data): every Merlin MIB variant the
        readers support, EMPAD xml + raw, and generic raw with JSON descriptors. They are
        deterministic: regenerate them (this README included) from the package root with

            swift run emconv-fixtures fixtures

        The generators are in `Sources/EMConvTestSupport/` (`MIBWriter.swift`, `EMPADWriter.swift`,
        the list below in `FixtureSet.swift`); `Tests/EMConvKitTests/FixturesTests.swift` checks that
        these files equal a fresh generation and that emconv reads each one back to the generator's values.

        MIB pixel content: a bright disc (radius 1/5 of the frame) that moves by a few pixels
        from frame to frame, sparse 1-3 counts elsewhere. Frame headers follow Merlin 0.77
        (`MQ1,…` with per-chip DAC blocks and the `MQ1A,<UTC ns>Z,<exposure>ns,<depth>` extension;
        384 bytes single chip, 768 quad); `.hdr` files use CRLF lines padded to 2048 bytes.
        RAW (R64) frames follow the layout LiberTEM documents (64-bit words stored big-endian,
        pixel 0 in the lowest bits; quad readout rows hold chips [bottom-right mirrored |
        bottom-left mirrored | top-right | top-left]).

        | file | what |
        |---|---|

        """
        for e in entries { s += "| `\(e.path)` | \(e.description) |\n" }
        s += """

        A large benchmark acquisition (not committed) is streamed with

            swift run -c release emconv-fixtures bench-mib /path/bench.mib --scan 128x128 --det 256 --depth 12

        (128x128 scan of 256x256 U16 frames, 2.15 GB, with a matching .hdr, frames per trigger 128).

        """
        return s
    }
}
