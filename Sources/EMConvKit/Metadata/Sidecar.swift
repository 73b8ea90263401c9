import EMCore
import Foundation

/// One person of the sidecar's `users:` list (NXem `userID`, NXuser).
public struct SidecarUser: Sendable, Equatable {
    public var name: String?
    public var affiliation: String?
    public var email: String?
    public var orcid: String?
    public var role: String?
}

/// A metadata sidecar (`--metadata meta.yaml|json`): what vendor files lack (sample, users,
/// instrument identity) and values the user knows better. Sidecar values fill gaps; where they
/// contradict the file the file wins with a warning, unless `--prefer-sidecar`.
public struct Sidecar: Sendable {
    public var path: String = ""
    /// The sidecar text as read (recorded in the output for provenance).
    public var text: String = ""
    public var sha256: String = ""
    public var isJSON = false

    // sample.*
    public var sampleName: String?
    public var atomTypes: [String]?
    public var preparationDate: Timestamp?
    public var physicalForm: String?
    public var sampleIdentifier: String?
    public var sampleIdentifierType: String?
    public var isSimulation: Bool?
    public var sampleDescription: String?
    public var sampleThickness: Quantity?
    // users[]
    public var users: [SidecarUser] = []
    // instrument.*
    public var instrumentName: String?
    public var instrumentVendor: String?
    public var instrumentModel: String?
    public var instrumentSerialNumber: String?
    public var instrumentLocation: String?
    public var emitterType: String?
    // detector.*
    public var detectorOperationMode: String?
    // scan.*
    public var scanShape: [Int]?
    public var scanStep: [Double]?
    public var scanStepUnits: String?
    public var scanSchema: String?
    // top level
    public var cameraLength: Quantity?
    public var startTime: Timestamp?
    public var endTime: Timestamp?
    public var notes: String?
    /// Free-form `extra:` section, kept verbatim as an NXnote.
    public var extra: MetaValue?
    /// Notes about accepted values (e.g. a `sample.physical_form` outside NXem's open
    /// enumeration); `SidecarMerge.apply` passes them on as warnings.
    public var warnings: [String] = []

    public init() {}

    /// Every key a sidecar may hold (dotted; `users[]` entries use `users[].key`).
    public static let keys: [String] = [
        "sample.name", "sample.atom_types", "sample.preparation_date", "sample.physical_form", "sample.identifier",
        "sample.identifier_type", "sample.is_simulation", "sample.description", "sample.thickness",
        "users[].name", "users[].affiliation", "users[].email", "users[].orcid", "users[].role",
        "instrument.name", "instrument.vendor", "instrument.model", "instrument.serial_number", "instrument.location",
        "instrument.emitter_type", "detector.operation_mode",
        "scan.shape", "scan.step", "scan.step_units", "scan.schema",
        "camera_length", "start_time", "end_time", "notes", "extra",
    ]

    /// NXem `sample/physical_form` enumeration. It is open (`<enumeration open="true">` in
    /// NXem.nxdl.xml): other values are accepted with a note, as pynxtools does.
    public static let physicalForms = NXemVocabulary.physicalForms

    public static func load(_ path: String) throws -> Sidecar {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EMError(.missingInput, file: path, "metadata sidecar not found")
        }
        let f = try RandomAccessFile(path: path)
        guard f.size <= 16 << 20 else { throw EMError(.usage, file: path, "metadata sidecar larger than 16 MiB") }
        let bytes = try f.read(at: 0, count: Int(f.size), what: "metadata sidecar")
        guard let text = String(bytes: bytes, encoding: .utf8) else {
            throw EMError(.usage, file: path, "metadata sidecar is not UTF-8 text")
        }
        var s = try parse(text, file: path)
        s.sha256 = SHA256Digest.hex(bytes)
        return s
    }

    public static func parse(_ text: String, file: String) throws -> Sidecar {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let tree: MetaValue
        let isJSON = trimmed.hasPrefix("{")
        if isJSON {
            do { tree = try MetaValue.parseJSON(trimmed) } catch let e as EMError {
                throw EMError(.usage, file: file, at: e.location, "metadata sidecar is not valid JSON: \(e.message)")
            }
        } else {
            tree = try YAMLLite.parse(text, file: file)
        }
        var s = try from(tree, file: file)
        s.path = file
        s.text = text
        s.isJSON = isJSON
        return s
    }

    static func usage(_ file: String, _ key: String, _ msg: String) -> EMError {
        EMError(.usage, file: file, at: "key '\(key)'", msg)
    }

    /// The closest known key, for "did you mean" hints.
    static func suggestion(_ key: String) -> String? {
        func dist(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var d = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var prev = d[0]
                d[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let t = d[j]
                    d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                    prev = t
                }
            }
            return d[b.count]
        }
        let best = keys.map { ($0, dist(key, $0)) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= 3 ? $0.0 : nil }
    }

    static func unknown(_ file: String, _ key: String) -> EMError {
        let hint = suggestion(key).map { " (did you mean '\($0)'?)" } ?? ""
        return usage(file, key, "unknown sidecar key '\(key)'\(hint); free-form values belong under 'extra:'")
    }

    static func from(_ tree: MetaValue, file: String) throws -> Sidecar {
        guard case let .object(top) = tree else {
            throw EMError(.usage, file: file, "metadata sidecar must be a mapping of keys (sample:, users:, instrument:, …)")
        }
        var s = Sidecar()
        // Every problem is collected, so one run lists them all (one error, "key: problem" each).
        var problems: [EMError] = []
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch let e as EMError { problems.append(e) } catch { problems.append(EMError(.usage, file: file, "\(error)")) }
        }
        func str(_ v: MetaValue, _ key: String) throws -> String? {
            switch v {
            case .null: return nil
            case let .string(x): return x.isEmpty ? nil : x
            case .int, .uint, .double, .bool: return v.stringValue
            default: throw usage(file, key, "'\(key)' must be a single value")
            }
        }
        func section(_ v: MetaValue, _ name: String) throws -> [(String, MetaValue)] {
            if v == .null { return [] }
            guard case let .object(pairs) = v else { throw usage(file, name, "'\(name)' must be a mapping of keys") }
            return pairs
        }
        func date(_ v: MetaValue, _ key: String) throws -> Timestamp? {
            guard let t = try str(v, key) else { return nil }
            guard let ts = Timestamp.parseISO(t), ts.utcOffsetSeconds != nil, t.count > 10, t.contains("T") else {
                throw usage(file, key, "'\(key)' must be an ISO 8601 date and time with a UTC offset, e.g. 2024-05-01T10:00:00+02:00 (got '\(t)')")
            }
            return ts
        }
        func quantity(_ v: MetaValue, _ key: String, defaultUnits: String, category: String) throws -> Quantity? {
            if v == .null { return nil }
            switch v {
            case .int, .uint, .double: return Quantity(v.doubleValue!, defaultUnits)
            default: break
            }
            guard let t = try str(v, key) else { return nil }
            guard let q = Units.quantity(t), Units.matches(q.units.isEmpty ? defaultUnits : q.units, category: category) else {
                throw usage(file, key, "'\(key)' must be a number (in \(defaultUnits)) or a number with a unit, e.g. '120 mm' (got '\(t)')")
            }
            return q.units.isEmpty ? Quantity(q.value, defaultUnits) : q
        }
        for (k, v) in top { attempt {
            switch k {
            case "sample":
                for (sk, sv) in try section(v, k) { attempt {
                    let key = "sample.\(sk)"
                    switch sk {
                    case "name": s.sampleName = try str(sv, key)
                    case "atom_types": s.atomTypes = try atomTypes(sv, file: file)
                    case "preparation_date": s.preparationDate = try date(sv, key)
                    case "physical_form":
                        s.physicalForm = try str(sv, key)
                        if let p = s.physicalForm, !physicalForms.contains(p) {
                            s.warnings.append("\(key) '\(p)' is not one of NXem's suggested values (\(physicalForms.joined(separator: ", "))); kept as given (the enumeration is open)")
                        }
                    case "identifier": s.sampleIdentifier = try str(sv, key)
                    case "identifier_type": s.sampleIdentifierType = try str(sv, key)
                    case "is_simulation":
                        switch sv {
                        case let .bool(b): s.isSimulation = b
                        case .null: break
                        default: throw usage(file, key, "'\(key)' must be true or false")
                        }
                    case "description": s.sampleDescription = try str(sv, key)
                    case "thickness": s.sampleThickness = try quantity(sv, key, defaultUnits: "m", category: "NX_LENGTH")
                    default: throw unknown(file, key)
                    }
                } }
            case "users":
                var list: [MetaValue] = []
                switch v {
                case .null: break
                case let .array(a): list = a
                case .object: list = [v]
                default: throw usage(file, k, "'users' must be a list of persons (- name: …)")
                }
                for u in list { attempt {
                    var user = SidecarUser()
                    for (uk, uv) in try section(u, "users[]") { attempt {
                        let key = "users[].\(uk)"
                        switch uk {
                        case "name": user.name = try str(uv, key)
                        case "affiliation": user.affiliation = try str(uv, key)
                        case "email": user.email = try str(uv, key)
                        case "role": user.role = try str(uv, key)
                        case "orcid":
                            user.orcid = try str(uv, key)
                            if let o = user.orcid {
                                let id = o.replacingOccurrences(of: "https://orcid.org/", with: "")
                                guard id.range(of: #"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$"#, options: .regularExpression) != nil else {
                                    throw usage(file, key, "'\(key)' must be an ORCID iD like 0000-0002-1825-0097 (got '\(o)')")
                                }
                                user.orcid = id
                            }
                        default: throw unknown(file, key)
                        }
                    } }
                    if user != SidecarUser() { s.users.append(user) }
                } }
            case "instrument":
                for (ik, iv) in try section(v, k) { attempt {
                    let key = "instrument.\(ik)"
                    switch ik {
                    case "name": s.instrumentName = try str(iv, key)
                    case "vendor": s.instrumentVendor = try str(iv, key)
                    case "model": s.instrumentModel = try str(iv, key)
                    case "serial_number": s.instrumentSerialNumber = try str(iv, key)
                    case "location": s.instrumentLocation = try str(iv, key)
                    case "emitter_type": s.emitterType = try str(iv, key)
                    default: throw unknown(file, key)
                    }
                } }
            case "detector":
                for (dk, dv) in try section(v, k) { attempt {
                    let key = "detector.\(dk)"
                    switch dk {
                    case "operation_mode": s.detectorOperationMode = try str(dv, key)
                    default: throw unknown(file, key)
                    }
                } }
            case "scan":
                var stepGiven = false, unitsGiven = false
                for (sk, sv) in try section(v, k) { attempt {
                    let key = "scan.\(sk)"
                    if sv == .null, ["shape", "step", "step_units", "schema"].contains(sk) { return }
                    switch sk {
                    case "shape":
                        let a: [MetaValue]
                        if case let .array(x) = sv { a = x } else if let t = try str(sv, key) {
                            a = t.split(whereSeparator: { $0 == "," || $0 == "x" || $0 == " " }).map { .string(String($0)) }
                        } else { a = [] }
                        let ints = a.compactMap(\.intValue)
                        guard !a.isEmpty, ints.count == a.count, ints.allSatisfy({ $0 > 0 }) else {
                            throw usage(file, key, "'\(key)' must be positive integers, slowest first, e.g. [256, 256]")
                        }
                        s.scanShape = ints
                    case "step":
                        stepGiven = true
                        let a: [MetaValue]
                        if case let .array(x) = sv { a = x } else { a = [sv] }
                        let d = a.compactMap(\.doubleValue)
                        guard !a.isEmpty, d.count == a.count, d.allSatisfy({ $0.isFinite && $0 != 0 }) else {
                            throw usage(file, key, "'\(key)' must be a non-zero number or a list [y, x]")
                        }
                        s.scanStep = d
                    case "step_units":
                        unitsGiven = true
                        s.scanStepUnits = try str(sv, key)
                        if let u = s.scanStepUnits, !Units.matches(u, category: "NX_LENGTH") {
                            throw usage(file, key, "'\(key)' must be a length unit (nm, um, m …), not '\(u)'")
                        }
                    case "schema": s.scanSchema = try str(sv, key)
                    default: throw unknown(file, key)
                    }
                } }
                if stepGiven && !unitsGiven {
                    throw usage(file, "scan.step_units", "'scan.step' needs 'scan.step_units' (e.g. nm)")
                }
            case "camera_length": s.cameraLength = try quantity(v, k, defaultUnits: "m", category: "NX_LENGTH")
            case "start_time": s.startTime = try date(v, k)
            case "end_time": s.endTime = try date(v, k)
            case "notes":
                if case let .array(a) = v { s.notes = a.compactMap(\.stringValue).joined(separator: "\n") } else { s.notes = try str(v, k) }
            case "extra": s.extra = v
            default: throw unknown(file, k)
            }
        } }
        if problems.count == 1 { throw problems[0] }
        if !problems.isEmpty { throw combined(problems, file: file) }
        return s
    }

    /// One error listing every problem as "key: problem" (one line; when it would be too long,
    /// the last problems are named by their key only).
    static func combined(_ problems: [EMError], file: String) -> EMError {
        func key(_ e: EMError) -> String {
            guard let l = e.location, l.hasPrefix("key '"), l.hasSuffix("'") else { return "sidecar" }
            return String(l.dropFirst(5).dropLast())
        }
        // The message without the key it starts with and without examples ("e.g. …", "(… like …)").
        func compact(_ e: EMError) -> String {
            var m = e.message
            let k = "'\(key(e))' "
            if m.hasPrefix(k) { m = String(m.dropFirst(k.count)) }
            m = m.replacingOccurrences(of: #",? e\.g\. [^(;]*"#, with: " ", options: .regularExpression)
            m = m.replacingOccurrences(of: #" \((?!got )[^)]*\)"#, with: "", options: .regularExpression)
            return m.replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespaces)
        }
        let head = "metadata sidecar has \(problems.count) problems: "
        var parts: [String] = []
        var used = head.count + file.count + 2
        for (i, p) in problems.enumerated() {
            let part = "\(key(p)): \(compact(p))"
            let rest = problems[(i + 1)...].map(key)
            if used + part.count + 2 > 560 {
                parts.append("also " + ([key(p)] + rest).joined(separator: ", ") + " (fix these and run again for details)")
                break
            }
            parts.append(part)
            used += part.count + 2
        }
        return EMError(.usage, file: file, head + parts.joined(separator: "; "))
    }

    /// Element symbols of the periodic table (IUPAC), for `sample.atom_types`.
    public static let elements = NXemVocabulary.elements

    /// `atom_types` as a list or a comma-separated string; every entry an element symbol.
    public static func atomTypes(_ v: MetaValue, file: String) throws -> [String]? {
        var items: [String]
        switch v {
        case .null: return nil
        case let .string(s): items = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        case let .array(a):
            items = try a.map {
                guard case let .string(x) = $0 else { throw usage(file, "sample.atom_types", "'sample.atom_types' entries must be element symbols") }
                return x.trimmingCharacters(in: .whitespaces)
            }
        default: throw usage(file, "sample.atom_types", "'sample.atom_types' must be a list [Si, O] or a string 'Si, O'")
        }
        items = items.filter { !$0.isEmpty }
        guard !items.isEmpty else { return nil }
        let bad = items.filter { !elements.contains($0) }
        if !bad.isEmpty {
            let list = bad.map { "'\($0)'" }.joined(separator: ", ")
            throw usage(file, "sample.atom_types", "\(list) \(bad.count == 1 ? "is not an element symbol" : "are not element symbols") (sample.atom_types takes symbols like Si, O, Sr, Ti)")
        }
        var seen = Set<String>()
        return items.filter { seen.insert($0).inserted }
    }

    /// `emconv validate --template NXem`: a ready-to-fill sidecar.
    public static let template = """
    # emconv metadata sidecar (YAML; JSON with the same keys works too).
    # Use: emconv convert IN -o OUT.nxs --metadata this.yaml
    # Values fill what the input file lacks; where they contradict the file, the file wins with a
    # warning (or --prefer-sidecar). Unknown keys are an error; put free-form values under 'extra:'.
    # Keys marked REQUIRED are required by NXem (NeXus application definition) and no vendor file
    # holds them. Delete the lines you do not know: never guess.

    sample:
      name:                    # recommended, e.g. SrTiO3 lamella 3
      atom_types:              # REQUIRED: element symbols, list [Sr, Ti, O] or "Sr, Ti, O"
      preparation_date:        # REQUIRED: ISO 8601 with offset, e.g. 2024-05-01T10:00:00+02:00
      is_simulation: false     # REQUIRED: true for simulated data
      physical_form:           # recommended: bulk | foil | thin_film | powder (open list: other forms are kept)
      identifier:              # recommended: a persistent sample identifier
      identifier_type:         # e.g. DOI, IGSN, local
      description:
      thickness:               # e.g. 50 nm

    users:
      - name:
        affiliation:
        email:
        orcid:                 # e.g. 0000-0002-1825-0097
        role:

    instrument:
      name:                    # recommended, e.g. the microscope's local name
      vendor:                  # REQUIRED when the file does not state it, e.g. Thermo Fisher Scientific
      model:                   # REQUIRED when the file does not state it, e.g. Spectra 300
      serial_number:
      location:
      emitter_type:            # recommended, e.g. schottky | cold_cathode_field_emitter | thermionic

    detector:
      operation_mode:          # REQUIRED when the file records detector settings but not the mode

    scan:
      shape:                   # e.g. [256, 256] (slowest first)
      step:                    # e.g. [1.5, 1.5]
      step_units:              # e.g. nm
      schema:                  # e.g. raster (required when the file records a dwell time)

    camera_length:             # e.g. 120 mm
    start_time:                # REQUIRED when the file has no time stamp (ISO 8601 with offset)
    end_time:
    notes:

    extra:                     # anything else, kept verbatim in the output as an NXnote

    """
}
