import CDeflate
import CZstd
import Foundation

/// Versions of the compression libraries, for `--version` and provenance.
public enum Codecs {
    public static var zstdVersion: String { String(cString: ZSTD_versionString()) }
    public static var deflateVersion: String { LIBDEFLATE_VERSION_STRING }
    public static var lz4Version: String { BitshuffleLZ4.lz4Version }
}

/// Compression of a chunked dataset, applied by emconv itself on worker threads (codec-neutral: HDF5, zarr and TIFF writers map it to their filters).
public enum Compression: Equatable, Sendable, CustomStringConvertible {
    case none
    case gzip(level: Int)
    case zstd(level: Int)
    /// Bit transposition + LZ4 in blocks of 8 KiB (HDF5 filter 32008, as Dectris detectors write):
    /// fast and small on sparse counting data. HDF5 outputs only.
    case bitshuffleLZ4
    /// Bit transposition + one zstd frame per 8 KiB block (filter 32008 with `cd_values[4]` = 3, as
    /// hdf5plugin's `Bitshuffle(cname='zstd')` writes): smaller than zstd:1 on Poisson-like counts.
    /// HDF5 outputs only.
    case bitshuffleZstd(level: Int)

    /// Level of `bitshuffle-zstd` without one: 1 (level 3 is no smaller on counting data, and slower;
    /// benchmarks/README.md).
    public static let bitshuffleZstdDefaultLevel = 1

    /// The block codec when this is a bitshuffle compression (HDF5 filter 32008), else nil.
    public var bitshuffleCodec: BitshuffleLZ4.BlockCodec? {
        switch self {
        case .bitshuffleLZ4: return .lz4
        case let .bitshuffleZstd(level): return .zstd(level: level)
        default: return nil
        }
    }

    /// Default: deflate (+ shuffle), readable by every HDF5 installation.
    public static let defaultValue = Compression.gzip(level: 1)

    /// Parses `none`, `gzip`, `gzip:6`, `deflate:4`, `zstd`, `zstd:9`, `bitshuffle-lz4` (`bslz4`),
    /// `bitshuffle-zstd`, `bitshuffle-zstd:3` (`bszstd`).
    public static func parse(_ s: String) throws -> Compression {
        let parts = s.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        let level = parts.count > 1 ? Int(parts[1]) : nil
        if parts.count > 1 && level == nil {
            throw EMError(.usage, "--compression: level '\(parts[1])' is not a number")
        }
        switch parts.first ?? "" {
        case "none", "off": return .none
        case "gzip", "deflate", "zlib":
            let l = level ?? 1
            guard (1...9).contains(l) else { throw EMError(.usage, "--compression gzip level must be 1-9") }
            return .gzip(level: l)
        case "zstd":
            let l = level ?? 3
            guard (1...22).contains(l) else { throw EMError(.usage, "--compression zstd level must be 1-22") }
            return .zstd(level: l)
        case "bitshuffle-lz4", "bslz4", "bitshuffle":
            guard level == nil else { throw EMError(.usage, "--compression bitshuffle-lz4 takes no level") }
            return .bitshuffleLZ4
        case "bitshuffle-zstd", "bszstd":
            let l = level ?? bitshuffleZstdDefaultLevel
            guard (1...22).contains(l) else { throw EMError(.usage, "--compression bitshuffle-zstd level must be 1-22") }
            return .bitshuffleZstd(level: l)
        default:
            throw EMError(.usage, "--compression must be none, gzip[:1-9], zstd[:1-22], bitshuffle-lz4 or bitshuffle-zstd[:1-22], not '\(s)'")
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case let .gzip(l): return "gzip:\(l)"
        case let .zstd(l): return "zstd:\(l)"
        case .bitshuffleLZ4: return "bitshuffle-lz4"
        case let .bitshuffleZstd(l): return "bitshuffle-zstd:\(l)"
        }
    }
}

