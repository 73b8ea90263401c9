import EMCore
import EMHDF5
import Foundation

/// One validation finding: `RULE SEVERITY /path message`.
public struct Finding: Sendable, Equatable {
    public enum Severity: String, Sendable { case error, warning, info }
    public var rule: String
    public var severity: Severity
    public var path: String
    public var message: String

    public init(_ rule: String, _ severity: Severity, _ path: String, _ message: String) {
        self.rule = rule
        self.severity = severity
        self.path = path
        self.message = message
    }

    public var line: String { "\(rule) \(severity.rawValue.uppercased()) \(path) \(message)" }
    public var json: MetaValue {
        .object([("rule", .string(rule)), ("severity", .string(severity.rawValue)), ("path", .string(path)), ("message", .string(message))])
    }
}

/// Validation profiles (`--profile`): `nexus` generic base-class rules, `nxem` the NXem
/// application definition, `em` electron-microscopy domain sanity. `nxem` and `em` include
/// `nexus`.
public enum ValidationProfile: String, Sendable, CaseIterable {
    case nexus, nxem, em
}

/// The result for one file.
public struct ValidationReport {
    public var file: String
    public var findings: [Finding] = []
    /// The file could not be read at all (exit 65, or 66 when `missingInput`).
    public var unreadable = false
    /// The file, a companion it needs, or the `--source` input does not exist (exit 66, as
    /// everywhere else in emconv).
    public var missingInput = false
    public var strict = false
    /// "nexus" for NeXus files, "source" for vendor inputs checked before conversion.
    public var kind = "nexus"
    public var profiles: [String] = []

    public init(file: String) { self.file = file }

    public var valid: Bool {
        !unreadable && !findings.contains { $0.severity == .error || (strict && $0.severity == .warning) }
    }

    public var json: MetaValue {
        .object([("file", .string(file)), ("valid", .bool(valid)), ("kind", .string(kind)),
                 ("profiles", .array(profiles.map { .string($0) })),
                 ("findings", .array(findings.map(\.json)))])
    }

    public mutating func add(_ rule: String, _ sev: Finding.Severity, _ path: String, _ msg: String) {
        let f = Finding(rule, sev, path, msg)
        if !findings.contains(f) { findings.append(f) }
    }
}
