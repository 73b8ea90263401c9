@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatMIB
@testable import FormatEMPAD
@testable import FormatDM
@testable import FormatRaw
@testable import FormatEMD
@testable import FormatNeXus
@testable import WriterZspy
@testable import WriterTIFF
import EMConvTestSupport
import Foundation
import XCTest

/// `emconv validate` rules (mutation table), the metadata sidecar, and the NXem mapping.
final class ValidateTests: TempDirectoryTestCase {
    static let fullSidecar = """
    sample:
      name: SrTiO3 lamella
      atom_types: [Sr, Ti, O]
      preparation_date: 2024-05-01T10:00:00+02:00
      is_simulation: false
      physical_form: thin_film
      identifier: S-17
    users:
      - name: Ada Lovelace
        orcid: 0000-0002-1825-0097
    instrument:
      name: lab TEM
      vendor: JEOL
      model: ARM200F
      serial_number: "123"
      location: Room 1
      emitter_type: cold_cathode_field_emitter
    start_time: 2024-05-02T09:00:00+02:00
    end_time: 2024-05-02T09:05:00+02:00
    extra:
      operator_mood: good
    """

    /// A raw 4D input (3x4 scan of 16x16 uint16 frames) with known values.
    func makeRaw() throws -> String {
        var bytes: [UInt8] = []
        for i in 0..<(3 * 4 * 16 * 16) { bytes += [UInt8(i & 0xFF), UInt8((i >> 8) & 0xFF)] }
        let p = tmp + "/scan.raw"
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    var rawOptions: OptionValues { OptionValues(["raw-dtype": "<u2", "raw-shape": "3,4,16,16", "raw-signal-rank": "2"]) }

    /// Converts the raw input (with the full sidecar unless `sidecar` is nil) to `name`.
    func convert(_ name: String, sidecar: String? = fullSidecar) throws -> (String, String) {
        let raw = FileManager.default.fileExists(atPath: tmp + "/scan.raw") ? tmp + "/scan.raw" : try makeRaw()
        let out = tmp + "/" + name
        var o = ConversionOptions(threads: 1)
        o.read = rawOptions
        if let sidecar { o.sidecar = try Sidecar.parse(sidecar, file: tmp + "/meta.yaml") }
        _ = try Converter.convert(input: raw, output: out, options: o)
        return (out, raw)
    }

    func validate(_ path: String, _ profiles: Set<ValidationProfile>? = nil, source: String? = nil, strict: Bool = false) -> ValidationReport {
        var o = ValidateOptions()
        o.profiles = profiles
        o.source = source
        o.strict = strict
        o.readOptions = rawOptions
        return Validator.validate(path, options: o)
    }

    func errors(_ r: ValidationReport) -> [Finding] { r.findings.filter { $0.severity == .error } }

    // MARK: Mutation table

    func testValidFilePassesAllProfiles() throws {
        let (out, raw) = try convert("ok.nxs")
        let r = validate(out, [.nexus, .nxem, .em], source: raw)
        XCTAssertTrue(r.valid, r.findings.map(\.line).joined(separator: "\n"))
        XCTAssertEqual(errors(r), [])
        XCTAssertEqual(r.profiles, ["nexus", "nxem", "em"])
        // Default profiles follow the definition: NXem → nexus + nxem.
        XCTAssertEqual(validate(out).profiles, ["nexus", "nxem"])
    }

    /// (name, mutation, profile, expected rule, path fragment)
    func testMutationTable() throws {
        let img = "entry1/measurement/event1/image1/image_4d"
        let cases: [(String, (HDF5Group) throws -> Void, ValidationProfile, String, String)] = [
            ("broken default chain", { try $0.openGroup("entry1")!.setAttribute("default", "nowhere") }, .nexus, "NX-DEFAULT", "/entry1/@default"),
            ("wrong @axes length", { try $0.openGroup(img)!.setAttribute("axes", ["axis_k", "axis_j", "axis_i"]) }, .nexus, "NX-AXES", "/image_4d/@axes"),
            ("string _indices", { try $0.openGroup(img)!.setAttribute("axis_i_indices", "3") }, .nexus, "NX-INDICES", "/@axis_i_indices"),
            ("axis length mismatch", { g in
                let d = g.openGroup(img)!
                d.deleteLink("axis_i")
                try d.writeDoubles("axis_i", (0..<15).map(Double.init), units: "")
            }, .nexus, "NX-AXIS-LEN", "/image_4d/axis_i"),
            ("missing units", { $0.openGroup(img)!.openDataset("axis_j")!.deleteAttribute("units") }, .nexus, "NX-UNITS", "/image_4d/axis_j"),
            ("date without offset", { g in
                let e = g.openGroup("entry1")!
                e.deleteLink("start_time")
                try e.writeString("start_time", "2024-05-02T09:00:00")
            }, .nexus, "NX-DATE", "/entry1/start_time"),
            ("fixed-length date string", { g in
                let e = g.openGroup("entry1")!
                e.deleteLink("start_time")
                try e.writeFixedString("start_time", "2024-05-02T09:00:00+02:00")
            }, .nexus, "NX-STRTYPE", "/entry1/start_time"),
            ("wrong NX_class", { try $0.openGroup("entry1/measurement")!.setAttribute("NX_class", "NXem_measurment") }, .nexus, "NX-CLASS", "/entry1/measurement"),
            ("frame-splitting chunks", { g in
                let d = g.openGroup(img)!
                d.deleteLink("real")
                let ds = try d.createChunkedDataset("real", type: .uint16, shape: [3, 4, 16, 16], chunk: [1, 1, 8, 8], compression: .none, shuffle: false)
                let zeros = [UInt8](repeating: 0, count: 8 * 8 * 2)
                for y in 0..<3 { for x in 0..<4 { for cy in 0..<2 { for cx in 0..<2 {
                    try zeros.withUnsafeBytes { try ds.writeChunk(offset: [y, x, cy * 8, cx * 8], data: $0) }
                } } } }
                try ds.setAttribute("long_name", "counts")
            }, .em, "EM-CHUNK", "/image_4d/real"),
            ("signed NXem indices", { try $0.openGroup(img)!.setAttribute("axis_i_indices", signed: [3]) }, .nxem, "NXEM-INDICES", "/@axis_i_indices"),
            ("missing sample", { $0.openGroup("entry1")!.deleteLink("sample") }, .nxem, "NXEM-REQ", "/entry1/sample"),
            ("implausible voltage", { g in
                let ev = g.openGroup("entry1/measurement/event1")!
                let src = try ev.createGroup("instrument/ebeam_column/electron_source", nxClass: "NXsource")
                try src.writeDoubles("voltage", [5e7], shape: [], units: "V")
            }, .em, "EM-RANGE", "/voltage"),
        ]
        for (i, (name, mutate, profile, rule, path)) in cases.enumerated() {
            let (out, _) = try convert("m\(i).nxs")
            // Before the mutation: no finding of this rule.
            XCTAssertFalse(validate(out, [profile]).findings.contains { $0.rule == rule }, name)
            try HDF5Edit.update(out, mutate)
            let r = validate(out, [profile])
            let hits = r.findings.filter { $0.rule == rule && $0.path.contains(path) }
            XCTAssertFalse(hits.isEmpty, "\(name): expected \(rule) at …\(path); got:\n" + r.findings.map(\.line).joined(separator: "\n"))
            if rule == "NX-STRTYPE" {
                // A warning: valid unless --strict.
                XCTAssertTrue(r.valid, name)
                XCTAssertFalse(validate(out, [profile], strict: true).valid, name)
            } else {
                XCTAssertFalse(r.valid, name)
                XCTAssertTrue(hits.allSatisfy { $0.severity == .error }, name)
            }
            // Generic rules do not flag profile-specific problems and vice versa.
            if profile == .em { XCTAssertFalse(validate(out, [.nexus]).findings.contains { $0.rule == rule }, name) }
        }
    }

    func testChecksumAndFrameMismatchAgainstSource() throws {
        let (out, raw) = try convert("src.nxs")
        XCTAssertTrue(validate(out, [.em], source: raw).valid)
        // Change one pixel of frame 5 in the source.
        let fh = try XCTUnwrap(FileHandle(forUpdatingAtPath: raw))
        try fh.seek(toOffset: UInt64(5 * 16 * 16 * 2 + 7))
        fh.write(Data([0xAB]))
        try fh.close()
        let r = validate(out, [.em], source: raw)
        XCTAssertFalse(r.valid)
        XCTAssertTrue(r.findings.contains { $0.rule == "EM-SOURCE" && $0.path.hasSuffix("/checksum") }, r.findings.map(\.line).joined(separator: "\n"))
        XCTAssertTrue(r.findings.contains { $0.rule == "EM-SOURCE" && $0.message.contains("frame 5 ") }, r.findings.map(\.line).joined(separator: "\n"))
    }

    func testWithoutSidecarNXemReportsSampleWithSidecarKeys() throws {
        let (out, _) = try convert("bare.nxs", sidecar: nil)
        let r = validate(out)
        XCTAssertFalse(r.valid)
        let req = r.findings.filter { $0.rule == "NXEM-REQ" }
        XCTAssertTrue(req.contains { $0.path == "/entry1/sample" && $0.message.contains("sample.atom_types") })
        XCTAssertTrue(req.contains { $0.path == "/entry1/start_time" && $0.message.contains("sidecar: start_time") })
        XCTAssertTrue(req.contains { $0.path.hasSuffix("instrument/fabrication") && $0.message.contains("instrument.vendor") })
        // Generic NeXus rules are satisfied all the same.
        XCTAssertTrue(validate(out, [.nexus]).valid, validate(out, [.nexus]).findings.map(\.line).joined(separator: "\n"))
    }

    func testVendorInputReportsMissingNXemMetadata() throws {
        let raw = try makeRaw()
        let r = validate(raw)
        XCTAssertEqual(r.kind, "source")
        XCTAssertTrue(r.findings.contains { $0.rule == "READ" && $0.severity == .info && $0.message.contains("3x4x16x16") })
        XCTAssertTrue(r.findings.contains { $0.path == "/entry1/sample/atom_types" && $0.message.contains("sample.atom_types") })
        XCTAssertFalse(r.valid)
        var o = ValidateOptions()
        o.readOptions = rawOptions
        o.sidecar = try Sidecar.parse(Self.fullSidecar, file: "meta.yaml")
        let r2 = Validator.validate(raw, options: o)
        XCTAssertTrue(r2.valid, r2.findings.map(\.line).joined(separator: "\n"))
        // Unreadable input: flagged as such (exit 65 in the CLI).
        let junk = tmp + "/junk.bin"
        FileManager.default.createFile(atPath: junk, contents: Data([1, 2, 3]))
        XCTAssertTrue(Validator.validate(junk).unreadable)
    }

    func testCLIExitCodesAndJSON() throws {
        let (out, _) = try convert("cli.nxs")
        var r = try CLIRunner.run(["validate", out, "--json"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let j = try MetaValue.parseJSON(r.stdout)
        XCTAssertEqual(j["file"]?.stringValue, out)
        XCTAssertEqual(j["valid"], .bool(true))
        guard case .array? = j["findings"] else { return XCTFail("findings not a list") }
        try HDF5Edit.update(out) { try $0.openGroup("entry1")!.setAttribute("default", "nowhere") }
        r = try CLIRunner.run(["validate", out])
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stdout.contains("NX-DEFAULT ERROR /entry1/@default "), r.stdout)
        let junk = tmp + "/junk.bin"
        FileManager.default.createFile(atPath: junk, contents: Data([1, 2, 3]))
        XCTAssertEqual(try CLIRunner.run(["validate", junk]).status, 65)
        r = try CLIRunner.run(["validate", "--template", "NXem"])
        XCTAssertEqual(r.status, 0)
        // The template parses as a sidecar.
        XCTAssertNoThrow(try Sidecar.parse(r.stdout, file: "template.yaml"))
        XCTAssertTrue(r.stdout.contains("atom_types:"))
    }

    // MARK: Sidecar

    func testUnknownKeyIsAUsageErrorNamingTheKey() throws {
        XCTAssertThrowsError(try Sidecar.parse("sample:\n  nmae: x\n", file: "m.yaml")) { e in
            let e = e as! EMError
            XCTAssertEqual(e.code, .usage)
            XCTAssertTrue(e.description.contains("sample.nmae"), e.description)
            XCTAssertTrue(e.description.contains("did you mean 'sample.name'"), e.description)
        }
        XCTAssertThrowsError(try Sidecar.parse("{\"instrument\": {\"vendr\": \"FEI\"}}", file: "m.json")) { e in
            XCTAssertTrue((e as! EMError).description.contains("instrument.vendr"))
        }
        // Anything goes under extra:, kept verbatim.
        let s = try Sidecar.parse("extra:\n  whatever:\n    deep: [1, 2]\n", file: "m.yaml")
        XCTAssertEqual(s.extra?["whatever"]?["deep"], .array([.int(1), .int(2)]))
        // Strictness of the YAML subset.
        XCTAssertThrowsError(try Sidecar.parse("sample:\n  name: a\n  name: b\n", file: "m.yaml"))
        XCTAssertThrowsError(try Sidecar.parse("sample: &a\n  name: a\n", file: "m.yaml"))
        XCTAssertThrowsError(try Sidecar.parse("sample:\n  preparation_date: 2024-05-01\n", file: "m.yaml"))
        // NXem's physical_form enumeration is open: another value parses, with a note.
        XCTAssertEqual(try Sidecar.parse("sample:\n  physical_form: liquid\n", file: "m.yaml").warnings.count, 1)
    }

    func testAtomTypesListOrCommaString() throws {
        let a = try Sidecar.parse("sample:\n  atom_types: [Sr, Ti, O]\n", file: "m.yaml")
        let b = try Sidecar.parse("sample:\n  atom_types: Sr, Ti,O\n", file: "m.yaml")
        let c = try Sidecar.parse("{\"sample\": {\"atom_types\": \"Sr, Ti, O\"}}", file: "m.json")
        let d = try Sidecar.parse("sample:\n  atom_types:\n    - Sr\n    - Ti\n    - O\n", file: "m.yaml")
        XCTAssertEqual(a.atomTypes, ["Sr", "Ti", "O"])
        XCTAssertEqual(b.atomTypes, a.atomTypes)
        XCTAssertEqual(c.atomTypes, a.atomTypes)
        XCTAssertEqual(d.atomTypes, a.atomTypes)
        XCTAssertThrowsError(try Sidecar.parse("sample:\n  atom_types: [Sr, Xx]\n", file: "m.yaml")) { e in
            XCTAssertTrue((e as! EMError).description.contains("'Xx' is not an element symbol"))
        }
    }

    func testFileWinsWithWarningUnlessPreferSidecar() throws {
        let raw = try makeRaw()
        let sc = try Sidecar.parse("instrument:\n  vendor: JEOL\n  model: ARM200F\ncamera_length: 120 mm\n", file: "m.yaml")
        for prefer in [false, true] {
            let f = try Catalog.open(raw, options: rawOptions)
            f.datasets[0].metadata.instrumentVendor = "FEI Company"
            f.datasets[0].metadata.cameraLength = Quantity(0.12, "m")  // same as 120 mm: no warning
            let w = SidecarMerge.apply(sc, to: f, preferSidecar: prefer)
            XCTAssertEqual(w.count, 1, "\(w)")
            XCTAssertTrue(w[0].contains("'JEOL'") && w[0].contains("'FEI Company'"), w[0])
            XCTAssertEqual(f.datasets[0].metadata.instrumentVendor, prefer ? "JEOL" : "FEI Company")
            XCTAssertEqual(f.datasets[0].metadata.instrumentModel, "ARM200F")  // a gap: filled either way
            XCTAssertEqual(f.datasets[0].metadata.cameraLength, Quantity(0.12, "m"))
        }
    }

    func testSidecarLandsInNeXusWithExtraNote() throws {
        let (out, _) = try convert("side.nxs")
        let h5 = try HDF5File(reading: out)
        let e = try XCTUnwrap(h5.root.openGroup("entry1"))
        XCTAssertEqual(e.openDataset("sample/atom_types")?.readStringValues(), ["Sr, Ti, O"])
        XCTAssertEqual(e.openDataset("sample/preparation_date")?.readStringValues(), ["2024-05-01T10:00:00+02:00"])
        XCTAssertEqual(e.openDataset("sample/is_simulation")?.enumMemberNames.map(Set.init), ["FALSE", "TRUE"])
        XCTAssertEqual(e.openDataset("user1/identifier_orcid")?.stringAttribute("type"), "ORCID")
        XCTAssertEqual(e.openDataset("measurement/instrument/fabrication/vendor")?.readStringValues(), ["JEOL"])
        XCTAssertEqual(e.openDataset("start_time")?.readStringValues(), ["2024-05-02T09:00:00+02:00"])
        let extra = try XCTUnwrap(e.openGroup("note_extra"))
        XCTAssertEqual(extra.stringAttribute("NX_class"), "NXnote")
        XCTAssertEqual(try MetaValue.parseJSON(extra.openDataset("data")!.readStringValues()![0]), .object([("operator_mood", .string("good"))]))
        XCTAssertEqual(e.openDataset("note_sidecar/file_name")?.readStringValues(), ["meta.yaml"])
    }

    // MARK: info --json and NeXus carry the same metadata

    func testInfoAndNeXusCarryTheSameNormalizedMetadata() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let inputs = ["mib/001_4x2_6bit.mib", "empad/map4x4.xml", "emd_velox/Camera Ceta Diffraction Micro.emd"]
        var compared = 0
        for rel in inputs {
            let p = root + "/" + rel
            guard FileManager.default.fileExists(atPath: p) else { continue }
            let info = InfoReport.json([.success(try Catalog.open(p, options: ReadOptions()))], paths: [p], includeOriginal: false)
            guard case let .array(files)? = info["files"], case let .array(dss)? = files[0]["datasets"],
                  case let .object(meta)? = dss[0]["metadata"] else { return XCTFail("info shape") }
            let out = tmp + "/" + ((rel as NSString).lastPathComponent as NSString).deletingPathExtension + ".nxs"
            _ = try Converter.convert(input: p, output: out, options: ConversionOptions(threads: 1))
            let e = try XCTUnwrap(HDF5File(reading: out).root.openGroup("entry1"))
            for (key, value) in meta {
                guard let path = NeXusMetadata.fieldPaths[key], let v = value.stringValue else { continue }
                let d = try XCTUnwrap(e.openDataset(path), "\(rel): \(key) = \(v) not at \(path)")
                let stored: String
                if let s = d.readStringValues()?.first { stored = s } else {
                    let x = try d.readAllDoubles()[0]
                    let u = d.stringAttribute("units") ?? ""
                    stored = key == "magnification" ? fmt(x) : "\(fmt(x)) \(u)"
                }
                XCTAssertEqual(stored, v, "\(rel): \(key)")
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 10)
    }
}

/// Derived values are marked, and a stated value replaces a derived one.
final class DerivedMetadataTests: XCTestCase {
    func testVendorDerivedFromInstrumentName() {
        var m = NormalizedMetadata()
        m.instrumentName = "FEI Tecnai Remote"
        m.deriveVendorFromInstrumentName()
        XCTAssertEqual(m.instrumentVendor, "FEI")
        XCTAssertTrue(m.derived.contains("instrument_vendor"))
        var n = NormalizedMetadata()
        n.instrumentName = "Feidelity 3000"   // not "FEI" followed by a separator
        n.deriveVendorFromInstrumentName()
        XCTAssertNil(n.instrumentVendor)
        var o = NormalizedMetadata()
        o.instrumentName = "JEOL ARM200F"
        o.instrumentVendor = "JEOL Ltd."
        o.deriveVendorFromInstrumentName()
        XCTAssertEqual(o.instrumentVendor, "JEOL Ltd.")
        XCTAssertTrue(o.derived.isEmpty)
    }

    func testDMVendorIsMarkedDerivedInNeXus() throws {
        guard let root = SharedTestData.root else { print(SharedTestData.skipMessage); return }
        let out = NSTemporaryDirectory() + "emconv-derived-\(UUID().uuidString).nxs"
        defer { try? FileManager.default.removeItem(atPath: out) }
        _ = try Converter.convert(input: root + "/dm/real/multi_signal.dm3", output: out, options: ConversionOptions(threads: 1))
        let f = try HDF5File(reading: out)
        let v = try XCTUnwrap(f.root.openDataset("entry1/measurement/instrument/fabrication/vendor"))
        XCTAssertEqual(v.readStrings(), ["FEI"])
        // Marked in the group's NXcollection (NXem documents no @derived).
        XCTAssertNil(v.stringAttribute("derived"))
        let own = try XCTUnwrap(f.root.openGroup("entry1/measurement/instrument/fabrication/emconv"))
        XCTAssertEqual(own.stringAttribute("NX_class"), "NXcollection")
        XCTAssertNotNil(own.openDataset("vendor_derived"))
    }
}
