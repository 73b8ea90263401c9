import EMConvKit
import EMConvTestSupport
import Foundation
import XCTest

/// What HDF5 inputs may point at: external raw storage never; external links and virtual
/// datasets only to HDF5 files in the input's own folder tree (issue 11, defect 1).
final class HDF5GuardTests: TempDirectoryTestCase {
    /// Runs `info` and `convert` on `input`; both must fail with one line naming `mention`,
    /// exit `status`, and leave nothing but the inputs behind.
    func assertRefused(_ input: String, status: Int32 = 65, mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = (input as NSString).deletingLastPathComponent
        let before = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        for args in [["info", input], ["convert", input, "-o", dir + "/out.nxs"], ["convert", input, "-o", dir + "/out.zspy"]] {
            let r = try CLIRunner.run(args, timeout: 60)
            XCTAssertEqual(r.status, status, "\(args[0]): \(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
            for m in mentions { XCTAssertTrue(r.stderr.contains(m), "\(args[0]): '\(m)' not in: \(r.stderr)", file: file, line: line) }
            XCTAssertFalse(r.stdout.contains("FOREIGN-PAYLOAD"), file: file, line: line)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), before, file: file, line: line)
    }

    /// The signal values of a converted output, read back through emconv's NeXus reader.
    func outputValues(_ path: String) throws -> [UInt8] {
        let f = try Catalog.open(path)
        let d = try XCTUnwrap(f.datasets.first)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: d.frameBytes)
        for i in 0..<d.frameCount {
            try buf.withUnsafeMutableBytes { try d.source.readFrame(i, into: $0) }
            out += buf
        }
        return out
    }

    func testExternalRawStorageIsRefusedInBerkeleyEMD() throws {
        let input = try dir("in") + "/ext.emd"
        try HostileHDF5.input(at: input, layout: .berkeley, storage: .externalRaw(file: "/etc/passwd"))
        try assertRefused(input, mentions: ["ext.emd", "/data/signal/data", "/etc/passwd", "external file"])
    }

    func testExternalRawStorageIsRefusedInNeXus() throws {
        let input = try dir("in") + "/ext.nxs"
        try HostileHDF5.input(at: input, layout: .nexus, storage: .externalRaw(file: "/etc/passwd"))
        try assertRefused(input, mentions: ["ext.nxs", "/entry/data/data", "/etc/passwd"])
    }

    /// Even a raw file beside the input is refused: external raw storage is never read.
    func testExternalRawStorageBesideTheInputIsRefused() throws {
        let d = try dir("in")
        try Data(HostileHDF5.payload).write(to: URL(fileURLWithPath: d + "/values.bin"))
        try HostileHDF5.input(at: d + "/ext.nxs", layout: .nexus, storage: .externalRaw(file: "values.bin"))
        try assertRefused(d + "/ext.nxs", mentions: ["values.bin", "external file"])
    }

    func testExternalLinkOutsideTheFolderIsRefused() throws {
        let other = try dir("elsewhere") + "/other.h5"
        try HostileHDF5.payloadFile(at: other)
        let d = try dir("in")
        try HostileHDF5.input(at: d + "/rel.emd", layout: .berkeley, storage: .externalLink(file: "../elsewhere/other.h5"))
        try assertRefused(d + "/rel.emd", mentions: ["rel.emd", "external link", "elsewhere/other.h5", "outside"])
        try HostileHDF5.input(at: d + "/abs.nxs", layout: .nexus, storage: .externalLink(file: other))
        try assertRefused(d + "/abs.nxs", mentions: ["abs.nxs", "external link", "elsewhere/other.h5", "outside"])
    }

    /// A link to a non-HDF5 system file is refused before HDF5 opens anything.
    func testExternalLinkToASystemFileIsRefused() throws {
        let d = try dir("in")
        try HostileHDF5.input(at: d + "/passwd.nxs", layout: .nexus, storage: .externalLink(file: "/etc/passwd"))
        try assertRefused(d + "/passwd.nxs", mentions: ["passwd.nxs", "/etc/passwd"])
    }

    func testVirtualDatasetOutsideTheFolderIsRefused() throws {
        let other = try dir("elsewhere") + "/other.h5"
        try HostileHDF5.payloadFile(at: other)
        let d = try dir("in")
        try HostileHDF5.input(at: d + "/vds.emd", layout: .berkeley, storage: .virtual(file: other))
        try assertRefused(d + "/vds.emd", mentions: ["vds.emd", "virtual source", "elsewhere/other.h5", "outside"])
        try HostileHDF5.input(at: d + "/vds.nxs", layout: .nexus, storage: .virtual(file: "../elsewhere/other.h5"))
        try assertRefused(d + "/vds.nxs", mentions: ["vds.nxs", "virtual source", "outside"])
    }

    /// A virtual source beside the input that itself keeps its values in /etc/passwd.
    func testVirtualSourceWithExternalStorageIsRefused() throws {
        let d = try dir("in")
        try HostileHDF5.payloadFile(at: d + "/source.h5", storage: .externalRaw(file: "/etc/passwd"))
        try HostileHDF5.input(at: d + "/chain.nxs", layout: .nexus, storage: .virtual(file: "source.h5"))
        try assertRefused(d + "/chain.nxs", mentions: ["chain.nxs", "/etc/passwd"])
    }

    /// A symlink beside the input that leads out of the folder is outside too.
    func testSymlinkedLinkTargetOutsideTheFolderIsRefused() throws {
        let other = try dir("elsewhere") + "/other.h5"
        try HostileHDF5.payloadFile(at: other)
        let d = try dir("in")
        try FileManager.default.createSymbolicLink(atPath: d + "/other.h5", withDestinationPath: other)
        try HostileHDF5.input(at: d + "/sym.nxs", layout: .nexus, storage: .externalLink(file: "other.h5"))
        try assertRefused(d + "/sym.nxs", mentions: ["sym.nxs", "outside"])
    }

    func testMissingLinkTargetIsAMissingInput() throws {
        let d = try dir("in")
        try HostileHDF5.input(at: d + "/gone.nxs", layout: .nexus, storage: .externalLink(file: "data_000001.h5"))
        try assertRefused(d + "/gone.nxs", status: 66, mentions: ["gone.nxs", "data_000001.h5", "not found"])
    }

    /// Dectris-style masters: links and VDS sources beside the input (or below it) are read.
    func testLinksAndVirtualSourcesInsideTheFolderAreRead() throws {
        let d = try dir("in")
        try FileManager.default.createDirectory(atPath: d + "/sub", withIntermediateDirectories: true)
        try HostileHDF5.payloadFile(at: d + "/sub/data_000001.h5")
        let cases: [(String, HostileHDF5.Layout, HostileHDF5.Storage)] = [
            ("link.emd", .berkeley, .externalLink(file: "sub/data_000001.h5")),
            ("link.nxs", .nexus, .externalLink(file: d + "/sub/data_000001.h5")),
            ("vds.emd", .berkeley, .virtual(file: "sub/data_000001.h5")),
            ("vds.nxs", .nexus, .virtual(file: "sub/data_000001.h5")),
        ]
        let outDir = try dir("out")
        for (name, layout, storage) in cases {
            try HostileHDF5.input(at: d + "/" + name, layout: layout, storage: storage)
            let out = outDir + "/" + name + ".nxs"
            // From another working directory, so only the input's folder can resolve the name.
            let r = try CLIRunner.run(["convert", d + "/" + name, "-o", out], cwd: outDir)
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            XCTAssertEqual(try outputValues(out), HostileHDF5.payload, name)
        }
    }

    /// `validate` reads the file through the same guard and reports the refusal as an error.
    func testValidateReportsTheRefusal() throws {
        let input = try dir("in") + "/ext.nxs"
        try HostileHDF5.input(at: input, layout: .nexus, storage: .externalRaw(file: "/etc/passwd"))
        let r = try CLIRunner.run(["validate", input])
        XCTAssertEqual(r.status, 3, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("HDF5-REFUSED") && r.stdout.contains("/etc/passwd"), r.stdout)
        XCTAssertFalse(r.stdout.contains("root:"), r.stdout)
    }

    /// Library API: the refusal is an EMError of the reader's open, with the target named.
    func testLibraryOpenThrowsTheRefusal() throws {
        let input = try dir("in") + "/ext.emd"
        try HostileHDF5.input(at: input, layout: .berkeley, storage: .externalRaw(file: "/etc/passwd"))
        XCTAssertThrowsError(try Catalog.open(input)) { e in
            let err = e as? EMError
            XCTAssertEqual(err?.code, .badInput)
            XCTAssertTrue(err?.description.contains("/etc/passwd") == true, "\(e)")
        }
    }
}
