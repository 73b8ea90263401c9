import Foundation

/// An option a reader or writer accepts, declared as data in its ``FormatDescriptor``: the CLI
/// (`convert`, `batch`, `info`, `validate`), batch's child conversions, `emconv formats`, the help
/// texts and the generated docs all come from these declarations.
public struct OptionSpec: Sendable, Equatable {
    /// What the value is; checked once, when the value is given.
    public enum Kind: Sendable, Equatable {
        /// Present or absent (`--mib-flip-rows`).
        case flag
        /// One integer (`--raw-offset 512`), at least `min`.
        case int(min: Int)
        /// Positive integers separated by commas (`--scan-shape 256,256`).
        case intList
        /// `A:B` with 0 <= A < B (`--frames 0:10`).
        case range
        /// One of a fixed set of words.
        case choice([String])
        /// `none | gzip[:1-9] | zstd[:1-22]`.
        case compression
        /// Free text (a NumPy dtype, a path).
        case text
        /// One of a fixed set of words, or positive integers separated by commas (`--chunks balanced`, `--chunks 8,8,32,32`).
        case wordOrInts([String])
        /// `AXIS=A:B` pairs separated by commas; AXIS is an axis name or index (`scan_x=0:255`).
        case axisRanges
        /// `AXIS=N` pairs separated by commas, N >= 1 (`det_y=2,det_x=2`).
        case axisFactors
    }

    /// The option's name without dashes: `scan-shape`. The CLI spells it `--scan-shape`.
    public var key: String
    public var kind: Kind
    /// Placeholder in help and docs (`Y,X`, `A:B`); empty for flags.
    public var valueName: String
    public var help: String
    /// What happens when the option is not given, in words ("from the .hdr").
    public var defaultText: String?
    /// May be given several times; the values accumulate (`--dataset a --dataset b`).
    public var repeatable: Bool

    public init(_ key: String, _ kind: Kind, valueName: String = "", help: String, default defaultText: String? = nil,
                repeatable: Bool = false) {
        self.key = key
        self.repeatable = repeatable
        self.kind = kind
        self.valueName = valueName
        self.help = help
        self.defaultText = defaultText
    }

    /// The command-line spelling: `--scan-shape`.
    public var flag: String { "--" + key }
    public var takesValue: Bool { kind != .flag }

    /// Checks a value given on the command line (or through `--oo`/`--co`) before anything opens.
    public func check(_ value: String) throws {
        func bad(_ what: String) -> EMError { EMError(.usage, at: flag, "\(what) (got '\(value)')") }
        switch kind {
        case .flag:
            guard ["", "true", "yes", "1", "on"].contains(value.lowercased()) else { throw bad("is a switch and takes no value") }
        case let .int(min):
            guard let v = Int(value), v >= min else { throw bad("takes an integer >= \(min)") }
        case .intList:
            _ = try OptionValues.parseInts(value, flag)
        case .range:
            _ = try OptionValues.parseRange(value, flag)
        case let .choice(words):
            guard words.contains(value.lowercased()) else { throw bad("takes one of \(words.joined(separator: ", "))") }
        case .compression:
            _ = try Compression.parse(value)
        case .text:
            guard !value.isEmpty else { throw bad("needs a value") }
        case let .wordOrInts(words):
            if !words.contains(value.lowercased()) {
                guard (try? OptionValues.parseInts(value, flag)) != nil, !value.contains("x"), !value.contains(" ") else {
                    throw bad("takes \(words.joined(separator: ", ")) or positive integers N,N,…")
                }
            }
        case .axisRanges:
            _ = try OptionValues.parseAxisPairs(value, flag) { try OptionValues.parseRange($0, flag) }
        case .axisFactors:
            _ = try OptionValues.parseAxisPairs(value, flag) { v -> Int in
                guard let n = Int(v), n >= 1 else { throw bad("takes AXIS=N with N >= 1") }
                return n
            }
        }
    }

    /// One line for help texts: `--scan-shape Y,X  navigation shape … (default: …)`.
    public var helpLine: String {
        var s = flag + (valueName.isEmpty ? "" : " " + valueName)
        s = s.padding(toLength: max(s.count, 28), withPad: " ", startingAt: 0) + " " + help
        if let d = defaultText { s += " (default: \(d))" }
        return s
    }
}

/// Values of declared options, keyed by ``OptionSpec/key``. Readers and writers take what they
/// declared and ignore the rest; values set through ``set(_:_:spec:)`` were checked against their
/// declaration, and the typed accessors check again for values set directly by library callers.
public struct OptionValues: Sendable, Equatable {
    public private(set) var values: [String: String] = [:]

    public init(_ values: [String: String] = [:]) { self.values = values }

    /// Options holding only a compression (writers), for library callers.
    public init(compression: Compression) { values = ["compression": compression.description] }

    public var isEmpty: Bool { values.isEmpty }
    public var keys: [String] { values.keys.sorted() }

    /// Sets `key` after checking `value` against its declaration.
    public mutating func set(_ key: String, _ value: String, spec: OptionSpec) throws {
        try spec.check(value)
        if spec.repeatable, let old = values[key] {
            values[key] = old + Self.separator + value
        } else {
            values[key] = spec.kind == .flag ? "true" : value
        }
    }

    /// Joins the values of a repeated option.
    public static let separator = "\n"

    /// Every value of a repeatable option, in the order given.
    public func strings(_ key: String) -> [String] {
        values[key].map { $0.components(separatedBy: Self.separator) } ?? []
    }

    /// `AXIS=A:B,…` values (all repetitions), in the order given.
    public func axisRanges(_ key: String) throws -> [(axis: String, range: Range<Int>)] {
        try strings(key).flatMap { v in try Self.parseAxisPairs(v, "--" + key) { try Self.parseRange($0, "--" + key) } }
            .map { (axis: $0.0, range: $0.1) }
    }

    /// `AXIS=N,…` values (all repetitions), in the order given.
    public func axisFactors(_ key: String) throws -> [(axis: String, factor: Int)] {
        try strings(key).flatMap { v in
            try Self.parseAxisPairs(v, "--" + key) { s -> Int in
                guard let n = Int(s), n >= 1 else { throw EMError(.usage, at: "--" + key, "takes AXIS=N with N >= 1 (got '\(v)')") }
                return n
            }
        }.map { (axis: $0.0, factor: $0.1) }
    }

    /// Splits `name=value,name=value` (also one pair per line), parsing each value.
    public static func parseAxisPairs<T>(_ s: String, _ option: String, _ parse: (String) throws -> T) throws -> [(String, T)] {
        var out: [(String, T)] = []
        for part in s.split(whereSeparator: { $0 == "," || $0 == "\n" }) {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty, !kv[1].isEmpty else {
                throw EMError(.usage, at: option, "takes AXIS=VALUE pairs separated by commas, AXIS a name (scan_x) or an index (got '\(s)')")
            }
            out.append((kv[0], try parse(kv[1])))
        }
        guard !out.isEmpty else { throw EMError(.usage, at: option, "needs AXIS=VALUE (got '\(s)')") }
        return out
    }

    /// Sets without checking (library callers that build options in code).
    public mutating func set(_ key: String, _ value: String?) { values[key] = value }

    public subscript(key: String) -> String? { values[key] }

    public func flag(_ key: String) -> Bool {
        guard let v = values[key] else { return false }
        return ["", "true", "yes", "1", "on"].contains(v.lowercased())
    }

    public func string(_ key: String) -> String? { values[key] }

    public func int(_ key: String) throws -> Int? {
        guard let v = values[key] else { return nil }
        guard let i = Int(v) else { throw EMError(.usage, at: "--" + key, "takes an integer (got '\(v)')") }
        return i
    }

    public func ints(_ key: String) throws -> [Int]? {
        try values[key].map { try Self.parseInts($0, "--" + key) }
    }

    public func range(_ key: String) throws -> Range<Int>? {
        try values[key].map { try Self.parseRange($0, "--" + key) }
    }

    public func compression(_ key: String = "compression") throws -> Compression? {
        try values[key].map(Compression.parse)
    }

    /// These values as command-line arguments (`--scan-shape 4,4 --mib-flip-rows`), in key order,
    /// spelled from the declarations: how batch hands options to its children.
    public func arguments(specs: [OptionSpec]) -> [String] {
        var out: [String] = []
        for k in keys {
            guard let spec = specs.first(where: { $0.key == k }) else { continue }
            if spec.kind == .flag {
                if flag(k) { out.append(spec.flag) }
            } else if spec.repeatable {
                for v in strings(k) { out += [spec.flag, v] }
            } else if let v = values[k] {
                out += [spec.flag, v]
            }
        }
        return out
    }

    public static func parseInts(_ s: String, _ option: String) throws -> [Int] {
        let parts = s.split(whereSeparator: { $0 == "," || $0 == "x" || $0 == " " })
        let v = parts.compactMap { Int($0) }
        guard !v.isEmpty, v.count == parts.count, v.allSatisfy({ $0 > 0 }) else {
            throw EMError(.usage, at: option, "takes positive integers separated by commas, e.g. 256,256 (got '\(s)')")
        }
        return v
    }

    public static func parseRange(_ s: String, _ option: String) throws -> Range<Int> {
        let p = s.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard p.count == 2, let a = p[0], let b = p[1], a >= 0, b > a else {
            throw EMError(.usage, at: option, "takes A:B with 0 <= A < B (got '\(s)')")
        }
        return a..<b
    }
}
