// swift-tools-version:6.0
import PackageDescription

// System libraries (Debian: libhdf5-dev libzstd-dev libdeflate-dev libssl-dev libtiff-dev pkg-config):
// - libdeflate: zlib-format streams 2-3x faster than zlib, for HDF5's deflate filter on our own threads;
// - libcrypto (OpenSSL): hardware-accelerated SHA-256 for provenance checksums of 100 GB inputs;
// - libtiff: the TIFF writer (and TIFF read-back in tests); strips are compressed by emconv on
//   worker threads and handed to libtiff raw.
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
        .target(name: "EMConvKit", dependencies: ["CHDF5", "CZstd", "CDeflate", "CCrypto", "CTIFF"]),
        .executableTarget(name: "emconv", dependencies: [
            "EMConvKit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "EMConvTestSupport", dependencies: ["EMConvKit"]),
        .executableTarget(name: "emconv-fixtures", dependencies: ["EMConvTestSupport"]),
        .executableTarget(name: "emconv-dmgen", dependencies: ["EMConvTestSupport"]),
        .testTarget(name: "EMConvKitTests", dependencies: ["EMConvKit", "EMConvTestSupport", "CTIFF", "CZstd", "CDeflate"]),
    ],
    swiftLanguageModes: [.v5]
)
