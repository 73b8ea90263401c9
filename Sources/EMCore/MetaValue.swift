import Foundation

/// A lossless, ordered tree of vendor metadata (what a file says, in the order it says it).
/// Serialized as JSON into the NeXus output and `info --json`.
public indirect enum MetaValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([MetaValue])
    /// Keys keep the source's order; duplicates are kept (DM tag groups may repeat names).
    case object([(String, MetaValue)])

    public static func == (a: MetaValue, b: MetaValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.uint(x), .uint(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Looks up a child by key (first match) in an object.
    public subscript(key: String) -> MetaValue? {
        if case let .object(pairs) = self { return pairs.first { $0.0 == key }?.1 }
        return nil
    }

    /// Follows a dotted path of keys.
    public func value(at path: [String]) -> MetaValue? {
        var cur: MetaValue? = self
        for k in path { cur = cur?[k] }
        return cur
    }

    public var stringValue: String? {
        switch self {
        case let .string(s): return s
        case let .int(i): return String(i)
        case let .uint(u): return String(u)
        case let .double(d): return String(d)
        case let .bool(b): return b ? "true" : "false"
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case let .int(i): return Double(i)
        case let .uint(u): return Double(u)
        case let .double(d): return d
        case let .string(s): return Double(s.trimmingCharacters(in: .whitespaces))
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    public var intValue: Int? {
        switch self {
        case let .int(i): return Int(exactly: i)
        case let .uint(u): return Int(exactly: u)
        case let .double(d): return d.rounded() == d && abs(d) < 9e15 ? Int(d) : nil
        case let .string(s): return Int(s.trimmingCharacters(in: .whitespaces))
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    // MARK: JSON

    /// Compact or pretty JSON. Non-finite doubles become strings ("NaN", "Infinity").
    public func json(pretty: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(256)
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .uint(u): out += String(u)
        case let .double(d):
            if d.isFinite {
                if d == d.rounded(), abs(d) < 1e15 { out += String(format: "%.1f", d) } else { out += "\(d)" }
            } else {
                out += d.isNaN ? "\"NaN\"" : (d > 0 ? "\"Infinity\"" : "\"-Infinity\"")
            }
        case let .string(s): MetaValue.quote(s, into: &out)
        case let .array(a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                v.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "]"
        case let .object(o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { out += "," }
                if pretty { out += "\n" + String(repeating: "  ", count: indent + 1) }
                MetaValue.quote(k, into: &out)
                out += pretty ? ": " : ":"
                v.write(into: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { out += "\n" + String(repeating: "  ", count: indent) }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    /// Parses JSON text, keeping object key order.
    public static func parseJSON(_ text: String) throws -> MetaValue {
        var p = JSONScanner(Array(text.utf8))
        let v = try p.value(depth: 0)
        p.skipWS()
        guard p.i == p.b.count else { throw JSONScanner.Failure(offset: p.i, reason: "trailing characters") }
        return v
    }
}

/// A small, strict JSON parser that keeps key order and bounds nesting depth.
public struct JSONScanner {
    public struct Failure: Error { public var offset: Int; public var reason: String }
    public let b: [UInt8]
    public var i = 0
    public init(_ b: [UInt8]) { self.b = b }

    public mutating func skipWS() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    public mutating func value(depth: Int) throws -> MetaValue {
        guard depth < 256 else { throw Failure(offset: i, reason: "nesting deeper than 256 levels") }
        skipWS()
        guard i < b.count else { throw Failure(offset: i, reason: "unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var pairs: [(String, MetaValue)] = []
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw Failure(offset: i, reason: "expected a key") }
                let k = try string()
                skipWS()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw Failure(offset: i, reason: "expected ':'") }
                i += 1
                pairs.append((k, try value(depth: depth + 1)))
                skipWS()
                guard i < b.count else { throw Failure(offset: i, reason: "unexpected end") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(pairs) }
                throw Failure(offset: i, reason: "expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [MetaValue] = []
            skipWS()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipWS()
                guard i < b.count else { throw Failure(offset: i, reason: "unexpected end") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw Failure(offset: i, reason: "expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            let start = i
            while i < b.count, "+-0123456789.eE".utf8.contains(b[i]) { i += 1 }
            let s = String(decoding: b[start..<i], as: UTF8.self)
            if let v = Int64(s) { return .int(v) }
            if let v = UInt64(s) { return .uint(v) }
            if let v = Double(s), !s.isEmpty { return .double(v) }
            throw Failure(offset: start, reason: "invalid value")
        }
    }

    public mutating func literal(_ s: String) throws {
        let u = Array(s.utf8)
        guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { throw Failure(offset: i, reason: "invalid literal") }
        i += u.count
    }

    public mutating func string() throws -> String {
        i += 1
        var out = [UInt8]()
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard i < b.count else { break }
                let e = b[i]
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 < b.count, var code = UInt32(String(decoding: b[i + 1...i + 4], as: UTF8.self), radix: 16) else {
                        throw Failure(offset: i, reason: "bad \\u escape")
                    }
                    i += 4
                    if (0xD800..<0xDC00).contains(code), i + 6 < b.count, b[i + 1] == UInt8(ascii: "\\"), b[i + 2] == UInt8(ascii: "u"),
                       let lo = UInt32(String(decoding: b[i + 3...i + 6], as: UTF8.self), radix: 16), (0xDC00..<0xE000).contains(lo) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (lo - 0xDC00)
                        i += 6
                    }
                    out.append(contentsOf: Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8))
                default: out.append(e)
                }
                i += 1
                continue
            }
            out.append(c)
            i += 1
        }
        throw Failure(offset: i, reason: "unterminated string")
    }
}
