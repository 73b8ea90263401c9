@testable import EMConvKit
@testable import EMCore
@testable import EMHDF5
@testable import FormatNeXus
import EMConvTestSupport
import Foundation
import XCTest

/// Conformance slips of issue 11: NeXus outputs hold only concepts NXem documents (emconv's own
/// facts in NXcollection groups, read back exactly), unit categories agree with pynxtools, the
/// sidecar's open enumeration and all-problems-at-once errors, and exit 66 for a missing input.
final class ConformanceTests: TempDirectoryTestCase {
    /// One dataset of `t` with uniform axes and reader conventions.
    func makeFile(_ t: ElementType, shape: [Int] = [2, 3, 4, 5]) -> OpenedFile {
        let n = shape.reduce(1, *) * t.size
        var bytes = [UInt8](repeating: 0, count: n)
        var x: UInt32 = 0x9E37_79B9
        for i in 0..<n { x = x &* 1_664_525 &+ 1_013_904_223; bytes[i] = UInt8(truncatingIfNeeded: x >> 24) }
        if t == .bool { for i in 0..<n { bytes[i] &= 1 } }
        if t.componentSize >= 4, t != .int32, t != .uint32, t != .int64, t != .uint64 {
            for i in stride(from: t.componentSize - 1, to: n, by: t.componentSize) { bytes[i] &= 0x3F }  // finite floats
        }
        let frameRank = 2
        let names = ["scan_y", "scan_x", "det_y", "det_x"].suffix(shape.count)
        let axes = zip(names, shape).enumerated().map { i, p in
            Axis(name: p.0, size: p.1, role: i < shape.count - frameRank ? .navigation : .signal, units: i < 2 ? "nm" : "1/nm",
                 calibration: .uniform(offset: 0.1 * Double(i) - 0.7, scale: 0.3 + Double(i) / 7))
        }
        let frame = shape.suffix(frameRank).reduce(1, *) * t.size
        let ds = Dataset(name: "scan", title: "generated \(t.rawValue)", axes: Array(axes), elementType: t, frameRank: frameRank,
                         quantity: "counts", quantityUnits: "e", signalKind: "4d-stem",
                         conventions: ["emconv_orientation": "on-disk row order", "axis_order": "as stored"],
                         source: MemorySource(bytes: bytes, frameBytes: frame))
        return OpenedFile(path: tmp + "/in.bin", format: "raw", variant: "test", datasets: [ds], files: [],
                          original: .object([("k", .string("v"))]), readerName: "test", readerVersion: "0")
    }

    /// Every attribute name in the file, as /path/@name.
    func allAttributes(_ g: HDF5Group) -> [String] {
        var out = NeXusReader.attributeNames(g).map { g.path + "/@" + $0 }
        for (n, isGroup) in g.children {
            if isGroup, let s = g.openGroup(n) { out += allAttributes(s) }
            if !isGroup, let d = g.openDataset(n) { out += NeXusReader.attributeNames(d).map { d.path + "/@" + $0 } }
        }
        return out
    }

    // MARK: defect 18: emconv's own details in NXcollection groups, round trips exact

    func testOwnDetailsLiveInNXcollectionsAndRoundTripExactly() throws {
        for t in [ElementType.uint16, .bool, .rgb8, .complex64, .float64] {
            let f = makeFile(t, shape: t == .rgb8 ? [3, 4, 5] : [2, 3, 4, 5])  // RGB gains a channel axis
            let out = tmp + "/\(t.rawValue).nxs"
            let commandLine = "emconv convert in.bin -o \(t.rawValue).nxs"
            _ = try NeXusWriter.write(f, to: out, context: .standalone(f, commandLine: commandLine))
            let h5 = try HDF5File(reading: out)
            // No undocumented emconv_* attribute anywhere, no undocumented NXnote fields.
            let emconvAttrs = allAttributes(h5.root).filter { $0.contains("/@emconv_") || $0.hasSuffix("/@derived") }
            XCTAssertEqual(emconvAttrs, [], "\(t)")
            let entry = try XCTUnwrap(h5.root.openGroup("entry1"))
            XCTAssertEqual(entry.openDataset("profiling/command_line_call")?.readStrings(), [commandLine])
            XCTAssertEqual(entry.openGroup("profiling")?.stringAttribute("NX_class"), "NXcs_profiling")
            let data = try XCTUnwrap(entry.openGroup("measurement/event1/image1/image_4d"))
            let own = try XCTUnwrap(data.openGroup("emconv"))
            XCTAssertEqual(own.stringAttribute("NX_class"), "NXcollection")
            XCTAssertEqual(own.openDataset("convention_emconv_orientation")?.readStrings(), ["on-disk row order"])
            if t == .complex64 { XCTAssertEqual(own.openDataset("complex")?.readStrings(), ["real+imag"]) }
            if t == .bool || t == .rgb8 { XCTAssertEqual(own.openDataset("element_type")?.readStrings(), [t.rawValue]) }
            // No field with a NeXus-reserved suffix (_offset, _errors, …) inside the collection.
            for n in own.childNames { XCTAssertFalse(n.hasSuffix("_offset") || n.hasSuffix("_set") || n.hasSuffix("_end"), n) }

            let back = try Catalog.open(out)
            XCTAssertEqual(back.datasets.count, 1, "the derived preview is skipped (\(t))")
            let ds = back.datasets[0], orig = f.datasets[0]
            XCTAssertEqual(ds.elementType, t)
            XCTAssertEqual(ds.axes, orig.axes, "\(t)")
            XCTAssertEqual(ds.name, orig.name)
            if t != .rgb8 { XCTAssertEqual(ds.signalKind, orig.signalKind) }  // RGB is stored as an image (storageForm)
            XCTAssertEqual(ds.frameRank, orig.frameRank)
            XCTAssertEqual(ds.quantityUnits, "e")
            XCTAssertEqual(ds.conventions, orig.conventions, "\(t)")
            XCTAssertTrue(try DataHash.bytes(ds) == (try DataHash.bytes(orig)), "\(t)")
        }
    }

    /// Files written before the move keep reading: @emconv_* attributes on the NXdata and axes.
    func testReaderStillReadsAttributeStyleFiles() throws {
        let f = makeFile(.bool)
        let out = tmp + "/old.nxs"
        _ = try NeXusWriter.write(f, to: out, context: .standalone(f, threads: 1))
        try HDF5Edit.update(out) { root in
            let d = root.openGroup("entry1/measurement/event1/image1/image_4d")!
            try d.setAttribute("emconv_element_type", "bool")
            try d.setAttribute("emconv_dataset_name", "scan")
            try d.setAttribute("emconv_frame_rank", Int64(2))
            try d.setAttribute("emconv_signal_kind", "4d-stem")
            for (i, a) in f.datasets[0].axes.enumerated() {
                let ad = d.openDataset(["axis_m", "axis_k", "axis_j", "axis_i"][i])!
                try ad.setAttribute("emconv_axis_name", a.name)
                try ad.setAttribute("emconv_offset", a.offset)
                try ad.setAttribute("emconv_scale", a.scale)
            }
            d.deleteLink("emconv")
        }
        let ds = try Catalog.open(out).datasets[0]
        XCTAssertEqual(ds.elementType, .bool)
        XCTAssertEqual(ds.axes, f.datasets[0].axes)
        XCTAssertTrue(try DataHash.bytes(ds) == (try DataHash.bytes(f.datasets[0])))
    }

    // MARK: defect 18: unit categories agree with pynxtools

    /// A DigitalMicrograph spectrum stored as a 1 x 2048 image ("Spectrum" format, EELS).
    func makeDMSpectrum1x2048() throws -> String {
        let p = tmp + "/line.dm4"
        var values = [Float](repeating: 0, count: 2048)
        for i in 0..<2048 { values[i] = Float(i % 97) }
        let bytes = values.withUnsafeBytes { Array($0) }
        try DMWriter.write(p, images: [DMWriter.Image(
            name: "EELS", dataType: 2, dims: [2048, 1], pixels: .bytes(bytes),
            calibrations: [(100, 0.5, "eV"), (0, 1, "")],
            imageTags: [("Meta Data", .group([("Format", .string("Spectrum")), ("Signal", .string("EELS"))]))])])
        return p
    }

    func testLengthOneUncalibratedSpectrumAxisIsAPixelIndexBothValidatorsAgree() throws {
        let src = try makeDMSpectrum1x2048()
        let out = tmp + "/line.nxs"
        _ = try Converter.convert(input: src, output: out, options: ConversionOptions(threads: 1))
        let h5 = try HDF5File(reading: out)
        // The source-file note holds NXnote's fields; size, path and reader are in its NXcollection.
        let note = try XCTUnwrap(h5.root.openGroup("entry1/note1"))
        for field in ["command_line", "file_size", "reader", "source_path"] {
            XCTAssertFalse(note.exists(field), "note1/\(field) is not an NXnote field")
        }
        XCTAssertEqual(note.openGroup("emconv")?.stringAttribute("NX_class"), "NXcollection")
        XCTAssertEqual(try note.openDataset("emconv/file_size")?.readAllDoubles(), [Double(try RandomAccessFile(path: src).size)])
        XCTAssertEqual(note.openDataset("emconv/source_path")?.readStrings(), [src])
        let data = try XCTUnwrap(h5.root.openGroup("entry1/measurement/event1/spectrum1/spectrum_1d"))
        // NXspectrum/spectrum_1d/axis_i is NX_LENGTH: '' is no length; a pixel index is accepted.
        XCTAssertEqual(data.openDataset("axis_i")?.stringAttribute("units"), "pixel")
        XCTAssertEqual(data.openDataset("axis_energy")?.stringAttribute("units"), "eV")
        var o = ValidateOptions()
        o.profiles = [.nxem]
        XCTAssertEqual(Validator.validate(out, options: o).findings.filter { $0.rule == "NXEM-UNITS" }, [])
        // The reader restores the uncalibrated axis ('' units) from emconv's collection.
        let back = try Catalog.open(out).datasets[0]
        let orig = try Catalog.open(src).datasets[0]
        XCTAssertEqual(back.axes, orig.axes)
        XCTAssertEqual(back.axes[0].units, "")
        // What pynxtools flags, `emconv validate` flags: '' (the old output), a time, no @units.
        for (units, remove) in [("", false), ("s", false), ("", true)] {
            let bad = tmp + "/bad.nxs"
            try? FileManager.default.removeItem(atPath: bad)
            try FileManager.default.copyItem(atPath: out, toPath: bad)
            try HDF5Edit.update(bad) { root in
                let a = root.openDataset("entry1/measurement/event1/spectrum1/spectrum_1d/axis_i")!
                if remove { a.deleteAttribute("units") } else { try a.setAttribute("units", units) }
            }
            let r = Validator.validate(bad, options: o)
            XCTAssertTrue(r.findings.contains { $0.rule == "NXEM-UNITS" && $0.severity == .error && $0.path.contains("spectrum_1d/axis_i") },
                          "units '\(units)' removed=\(remove): \(r.findings.map(\.line))")
            XCTAssertFalse(r.valid)
        }
    }

    func testSpectrumOverTimeIsAnImageNotAnNXspectrum() {
        let axes = [Axis(name: "time", size: 3, role: .navigation, units: "s"), Axis(name: "energy", size: 8, role: .signal, units: "eV")]
        let ds = Dataset(name: "s", axes: axes, elementType: .float32, frameRank: 1, signalKind: "eels",
                         source: MemorySource(bytes: [UInt8](repeating: 0, count: 96), frameBytes: 32))
        let layout = NXLayout(ds)
        XCTAssertFalse(layout.isSpectrum, "NXspectrum's axis_i is NX_LENGTH: seconds do not fit")
        XCTAssertEqual(layout.axisUnits, ["s", "eV"])
        XCTAssertTrue(Units.matchesNXDL("pixel", category: "NX_LENGTH"))
        XCTAssertFalse(Units.matchesNXDL("", category: "NX_LENGTH"))
        XCTAssertTrue(Units.matchesNXDL("", category: "NX_ANY"))
    }

    // MARK: defect 14: sidecar

    func testPhysicalFormOutsideTheOpenEnumerationIsAcceptedWithANote() throws {
        let s = try Sidecar.parse("sample:\n  physical_form: solid\n", file: "m.yaml")
        XCTAssertEqual(s.physicalForm, "solid")
        XCTAssertEqual(s.warnings.count, 1)
        XCTAssertTrue(s.warnings[0].contains("sample.physical_form 'solid'") && s.warnings[0].contains("open"), s.warnings[0])
        // The note reaches convert's warnings, the value the output, and `emconv validate` does not
        // call it an error.
        let raw = tmp + "/in.raw"
        FileManager.default.createFile(atPath: raw, contents: Data([UInt8](repeating: 7, count: 2 * 8 * 8 * 2)))
        let out = tmp + "/solid.nxs"
        var o = ConversionOptions(threads: 1)
        o.read = OptionValues(["raw-dtype": "<u2", "raw-shape": "2,8,8"])
        o.sidecar = s
        let result = try Converter.convert(input: raw, output: out, options: o)
        XCTAssertTrue(result.warnings.contains(s.warnings[0]), "\(result.warnings)")
        XCTAssertEqual(try HDF5File(reading: out).root.openDataset("entry1/sample/physical_form")?.readStrings(), ["solid"])
        let r = Validator.validate(out)
        let enumFindings = r.findings.filter { $0.rule == "NXEM-ENUM" }
        XCTAssertEqual(enumFindings.map(\.severity), [.info], "\(enumFindings)")
    }

    func testEverySidecarProblemIsReportedInOneError() throws {
        let text = """
        sample:
          atom_types: [Si, Xx, Qq]
          preparation_date: yesterday
          colour: blue
        users:
          - name: A
            orcid: 1234
        scan:
          step: [1, 2]
        start_time: 2024-05-01
        """
        XCTAssertThrowsError(try Sidecar.parse(text, file: "meta.yaml")) { e in
            let e = e as! EMError
            XCTAssertEqual(e.code, .usage)
            let d = e.description
            XCTAssertTrue(d.contains("6 problems"), d)
            for part in ["sample.atom_types: 'Xx', 'Qq' are not element symbols", "sample.preparation_date: ", "sample.colour: unknown sidecar key",
                         "users[].orcid: ", "scan.step_units: ", "start_time: "] {
                XCTAssertTrue(d.contains(part), "missing '\(part)' in: \(d)")
            }
            XCTAssertFalse(d.contains("\n"))
        }
        // One problem: the error as before.
        XCTAssertThrowsError(try Sidecar.parse("sample:\n  nmae: x\n", file: "m.yaml")) { e in
            XCTAssertTrue((e as! EMError).description.contains("at key 'sample.nmae'"))
        }
    }

    func testEverySidecarProblemThroughTheCLI() throws {
        let meta = tmp + "/meta.yaml"
        try "sample:\n  is_simulation: maybe\ninstrument:\n  vendr: X\n".write(toFile: meta, atomically: true, encoding: .utf8)
        let r = try CLIRunner.run(["validate", "--metadata", meta, tmp + "/nothing.mib"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("sample.is_simulation: ") && r.stderr.contains("instrument.vendr: "), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    // MARK: defect 15: a missing input is 66

    func testValidateMissingInputExits66() throws {
        let missing = tmp + "/missing.nxs"
        XCTAssertTrue(Validator.validate(missing).missingInput)
        XCTAssertEqual(try CLIRunner.run(["validate", missing]).status, 66)
        XCTAssertEqual(try CLIRunner.run(["validate", missing, "--json"]).status, 66)
        // A missing --source as well.
        let f = makeFile(.uint16)
        let out = tmp + "/ok.nxs"
        _ = try NeXusWriter.write(f, to: out, context: .standalone(f, threads: 1))
        let r = try CLIRunner.run(["validate", out, "--source", tmp + "/gone.mib"])
        XCTAssertEqual(r.status, 66, r.stdout + r.stderr)
        // Unreadable (present but not a known format) stays 65.
        let junk = tmp + "/junk.bin"
        FileManager.default.createFile(atPath: junk, contents: Data([1, 2, 3]))
        XCTAssertEqual(try CLIRunner.run(["validate", junk]).status, 65)
    }
}
