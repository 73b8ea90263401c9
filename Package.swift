// swift-tools-version:6.0
import PackageDescription

// System libraries (Debian: libhdf5-dev libzstd-dev libdeflate-dev libssl-dev libtiff-dev liblz4-dev libblosc-dev pkg-config):
// - libdeflate: zlib-format streams 2-3x faster than zlib, for HDF5's deflate filter on our own threads;
// - libcrypto (OpenSSL): hardware-accelerated SHA-256 for provenance checksums of 100 GB inputs;
// - libblosc: Blosc 1 chunks, HDF5 filter 32001 and HyperSpy's default zarr compressor (.zspy);
// - libtiff: the TIFF writer (and TIFF read-back in tests); strips are compressed by emconv on
//   worker threads and handed to libtiff raw.
//
// Modules (the compiler keeps the layering; see README "Layout of the code"):
//   EMCore      the common model, errors, options, frame sources, chunk pipeline, codecs: no HDF5, no format
//   EMHDF5      the thin HDF5 layer (EMCore)
//   Format*     one module per vendor family (EMCore, EMHDF5 where HDF5-based)
//   FormatNeXus the NeXus family: reader, writer, NXem layout and rules
//   Writer*     the other writers
//   EMConvKit   the ordered catalog, the converter, batch, validate, the metadata sidecar
//   emconv      the command-line tool
let core: Target.Dependency = "EMCore"
let hdf5: Target.Dependency = "EMHDF5"

let package = Package(
    name: "emconv",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "EMConvKit", targets: ["EMConvKit"]),
        .executable(name: "emconv", targets: ["emconv"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // libblosc: Blosc 1 chunks (HDF5 filter 32001) as input; its six codecs and shuffles are one frame format.
        .systemLibrary(name: "CBlosc", pkgConfig: "blosc", providers: [.apt(["libblosc-dev"])]),

        // The bit transposition of bitshuffle in C: SSE2/AVX2 intrinsics chosen at run time (Swift has
        // no movemask or byte-unpack operations, which the vector transposition is built on).
        .target(name: "CBitshuffle", path: "Sources/CBitshuffle"),
        // The `gzip:1` deflate encoder in C: per byte plane stored blocks, run-length matches with
        // dynamic Huffman codes, or libdeflate level 1 (no system or mirror package codes shuffled
        // planes this way; zlib's Z_RLE is a byte loop 2-3x slower and libdeflate has no RLE mode).
        .target(name: "CEMDeflate", dependencies: ["CDeflate"], path: "Sources/CEMDeflate"),

        .target(name: "EMCore", dependencies: ["CZstd", "CDeflate", "CCrypto", "CLZ4", "CBitshuffle", "CBlosc", "CEMDeflate"]),
        .target(name: "EMHDF5", dependencies: [core, "CHDF5", "CZstd", "CDeflate"], exclude: ["FORMAT.md"]),

        .target(name: "FormatMIB", dependencies: [core], path: "Sources/Formats/MIB", exclude: ["FORMAT.md"]),
        .target(name: "FormatEMPAD", dependencies: [core], path: "Sources/Formats/EMPAD", exclude: ["FORMAT.md"]),
        .target(name: "FormatDM", dependencies: [core], path: "Sources/Formats/DM", exclude: ["FORMAT.md"]),
        .target(name: "FormatRaw", dependencies: [core], path: "Sources/Formats/Raw", exclude: ["FORMAT.md"]),
        .target(name: "FormatMRC", dependencies: [core], path: "Sources/Formats/MRC", exclude: ["FORMAT.md"]),
        .target(name: "FormatEMD", dependencies: [core, hdf5, "CHDF5"], path: "Sources/Formats/EMD", exclude: ["FORMAT.md"]),
        .target(name: "FormatTIA", dependencies: [core], path: "Sources/Formats/TIA", exclude: ["FORMAT.md"]),
        .target(name: "FormatTIFFRead", dependencies: [core, "CTIFF"], path: "Sources/Formats/TIFF", exclude: ["FORMAT.md"]),
        .target(name: "FormatDectris", dependencies: [core, hdf5, "CHDF5"], path: "Sources/Formats/Dectris", exclude: ["FORMAT.md"]),
        .target(name: "FormatNeXus", dependencies: [core, hdf5, "CHDF5"], path: "Sources/Formats/NeXus", exclude: ["FORMAT.md"]),
        .target(name: "FormatHyperSpy", dependencies: [core, hdf5, "CHDF5", "CZstd", "CDeflate"], path: "Sources/Formats/HyperSpy", exclude: ["FORMAT.md"]),

        .target(name: "WriterZspy", dependencies: [core], path: "Sources/Writers/Zspy", exclude: ["FORMAT.md"]),
        .target(name: "WriterHSpy", dependencies: [core, hdf5, "CHDF5"], path: "Sources/Writers/HSpy", exclude: ["FORMAT.md"]),
        .target(name: "WriterTIFF", dependencies: [core, "CTIFF"], path: "Sources/Writers/TIFF", exclude: ["FORMAT.md"]),
        .target(name: "WriterEMD1", dependencies: [core, hdf5], path: "Sources/Writers/EMD1", exclude: ["FORMAT.md"]),

        .target(name: "EMConvKit", dependencies: [
            core, hdf5, "FormatMIB", "FormatEMPAD", "FormatDM", "FormatRaw", "FormatEMD", "FormatDectris", "FormatNeXus",
            "FormatTIA", "FormatMRC", "FormatTIFFRead", "FormatHyperSpy", "WriterZspy", "WriterHSpy", "WriterTIFF", "WriterEMD1",
        ], exclude: ["Validate/FORMAT.md"]),
        .executableTarget(name: "emconv", dependencies: [
            "EMConvKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "EMConvTestSupport", dependencies: ["EMConvKit", "CTIFF", "CHDF5", "CDeflate"]),
        .executableTarget(name: "emconv-fixtures", dependencies: ["EMConvTestSupport"]),
        .executableTarget(name: "emconv-dmgen", dependencies: ["EMConvTestSupport"]),
        .testTarget(name: "EMConvKitTests", dependencies: [
            "EMConvKit", "EMConvTestSupport", "CTIFF", "CZstd", "CDeflate", "CHDF5", "CBlosc",
        ]),
    ],
    swiftLanguageModes: [.v6]
)
