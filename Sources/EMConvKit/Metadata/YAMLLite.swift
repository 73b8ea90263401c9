import EMCore
import Foundation

/// A strict parser for the small YAML subset a metadata sidecar needs: block mappings, block
/// sequences (of scalars or mappings), flow sequences of scalars (`[Si, O]`), plain / single- /
/// double-quoted scalars, `|` and `>` block scalars, comments. Anchors, aliases, tags, flow
/// mappings, multi-document streams and tabs in indentation are refused with the line number,
/// as are duplicate keys: a sidecar is hand-written, and a silent misreading is worse than an
/// error. (Chosen over a full YAML library: no new dependency, and every construct it accepts
/// maps one-to-one onto JSON, which the sidecar also accepts.)
enum YAMLLite {
    struct Line {
        let number: Int
        let indent: Int
        let text: String  // without indentation and trailing comment
    }

    static func parse(_ source: String, file: String) throws -> MetaValue {
        var lines: [Line] = []
        var raw: [String] = source.components(separatedBy: "\n")
        if raw.last == "" { raw.removeLast() }
        var i = 0
        var docStarted = false
        while i < raw.count {
            let l = raw[i].hasSuffix("\r") ? String(raw[i].dropLast()) : raw[i]
            let n = i + 1
            i += 1
            let lead = l.prefix { $0 == " " || $0 == "\t" }
            if lead.contains("\t") && !l.trimmingCharacters(in: .whitespaces).isEmpty {
                throw err(file, n, "tab in indentation (YAML allows spaces only)")
            }
            let content = stripComment(String(l.dropFirst(lead.count)))
            if content.isEmpty { continue }
            if content == "---" {
                if docStarted || !lines.isEmpty { throw err(file, n, "more than one YAML document") }
                docStarted = true
                continue
            }
            if content == "..." { break }
            lines.append(Line(number: n, indent: lead.count, text: content))
        }
        // Block scalars need the raw following lines: re-scan by line number.
        var p = Parser(lines: lines, raw: raw, file: file)
        if lines.isEmpty { return .object([]) }
        let v = try p.block(indent: lines[0].indent)
        if p.pos < lines.count { throw err(file, lines[p.pos].number, "unexpected indentation") }
        return v
    }

    static func err(_ file: String, _ line: Int, _ msg: String) -> EMError {
        EMError(.usage, file: file, at: "line \(line)", msg)
    }

    /// Removes a `#` comment that is outside quotes and starts the line or follows a space.
    static func stripComment(_ s: String) -> String {
        var inS = false, inD = false
        var prev: Character = " "
        var out = ""
        var escaped = false
        for c in s {
            if inD {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inD = false }
            } else if inS {
                if c == "'" { inS = false }
            } else {
                if c == "#" && (prev == " " || prev == "\t") { break }
                if c == "\"" && (prev == " " || prev == ":" || prev == "[" || prev == "," || out.allSatisfy { $0 == " " || $0 == "-" }) { inD = true }
                if c == "'" && (prev == " " || prev == ":" || prev == "[" || prev == "," || out.allSatisfy { $0 == " " || $0 == "-" }) { inS = true }
            }
            out.append(c)
            prev = c
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    struct Parser {
        let lines: [Line]
        let raw: [String]
        let file: String
        var pos = 0

        mutating func block(indent: Int) throws -> MetaValue {
            guard pos < lines.count else { return .null }
            let first = lines[pos]
            if first.text == "-" || first.text.hasPrefix("- ") { return try sequence(indent: first.indent) }
            return try mapping(indent: first.indent)
        }

        mutating func sequence(indent: Int) throws -> MetaValue {
            var items: [MetaValue] = []
            while pos < lines.count, lines[pos].indent == indent, lines[pos].text == "-" || lines[pos].text.hasPrefix("- ") {
                let line = lines[pos]
                let rest = line.text == "-" ? "" : String(line.text.dropFirst(2)).trimmingCharacters(in: .whitespaces)
                if rest.isEmpty {
                    pos += 1
                    guard pos < lines.count, lines[pos].indent > indent else { items.append(.null); continue }
                    items.append(try block(indent: lines[pos].indent))
                } else if splitKey(rest) != nil {
                    // "- key: value" starts a mapping whose keys sit at indent + 2 (+ extra spaces).
                    let keyIndent = indent + (line.text.count - line.text.dropFirst(1).drop { $0 == " " }.count)
                    var sub = lines
                    sub[pos] = Line(number: line.number, indent: keyIndent, text: rest)
                    var p = Parser(lines: sub, raw: raw, file: file, pos: pos)
                    items.append(try p.mapping(indent: keyIndent))
                    pos = p.pos
                } else {
                    pos += 1
                    items.append(try scalar(rest, line: line))
                }
            }
            if pos < lines.count, lines[pos].indent > indent {
                throw YAMLLite.err(file, lines[pos].number, "unexpected indentation inside a list")
            }
            return .array(items)
        }

        mutating func mapping(indent: Int) throws -> MetaValue {
            var pairs: [(String, MetaValue)] = []
            while pos < lines.count, lines[pos].indent == indent {
                let line = lines[pos]
                if line.text.hasPrefix("- ") || line.text == "-" {
                    throw YAMLLite.err(file, line.number, "a list item where a 'key: value' line was expected")
                }
                guard let (key, rest) = splitKey(line.text) else {
                    throw YAMLLite.err(file, line.number, "expected 'key: value', found '\(line.text)'")
                }
                if pairs.contains(where: { $0.0 == key }) {
                    throw YAMLLite.err(file, line.number, "duplicate key '\(key)'")
                }
                pos += 1
                if rest.isEmpty {
                    if pos < lines.count, lines[pos].indent > indent {
                        pairs.append((key, try block(indent: lines[pos].indent)))
                    } else if pos < lines.count, lines[pos].indent == indent, lines[pos].text.hasPrefix("- ") || lines[pos].text == "-" {
                        pairs.append((key, try sequence(indent: indent)))
                    } else {
                        pairs.append((key, .null))
                    }
                } else if rest == "|" || rest == ">" || rest == "|-" || rest == ">-" {
                    pairs.append((key, .string(blockScalar(after: line, indent: indent, folded: rest.hasPrefix(">"), strip: rest.hasSuffix("-")))))
                } else {
                    pairs.append((key, try scalar(rest, line: line)))
                }
            }
            if pos < lines.count, lines[pos].indent > indent {
                throw YAMLLite.err(file, lines[pos].number, "unexpected indentation")
            }
            return .object(pairs)
        }

        /// Collects the raw lines after `line` indented deeper than `indent`.
        mutating func blockScalar(after line: Line, indent: Int, folded: Bool, strip: Bool) -> String {
            var body: [String] = []
            var r = line.number  // raw index of the next line
            var minIndent = Int.max
            while r < raw.count {
                let l = raw[r]
                let lead = l.prefix { $0 == " " }.count
                if !l.trimmingCharacters(in: .whitespaces).isEmpty && lead <= indent { break }
                body.append(l)
                if !l.trimmingCharacters(in: .whitespaces).isEmpty { minIndent = min(minIndent, lead) }
                r += 1
            }
            while pos < lines.count, lines[pos].number <= r { pos += 1 }
            let text = body.map { $0.count >= minIndent && minIndent != Int.max ? String($0.dropFirst(minIndent)) : "" }
            var s = folded ? text.joined(separator: " ") : text.joined(separator: "\n")
            while s.hasSuffix("\n") || s.hasSuffix(" ") { s.removeLast() }
            return strip ? s : s + "\n"
        }

        func splitKey(_ s: String) -> (String, String)? {
            var key: String
            var rest: Substring
            if let q = s.first, q == "\"" || q == "'" {
                guard let end = s.dropFirst().firstIndex(of: q) else { return nil }
                key = String(s[s.index(after: s.startIndex)..<end])
                rest = s[s.index(after: end)...]
                guard rest.hasPrefix(":") else { return nil }
                rest = rest.dropFirst()
            } else {
                guard let r = s.range(of: ": ") ?? (s.hasSuffix(":") ? s.range(of: ":", options: .backwards) : nil) else { return nil }
                key = String(s[..<r.lowerBound])
                rest = s[r.upperBound...]
                if key.contains("[") || key.contains("{") || key.contains("\"") { return nil }
            }
            key = key.trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { return nil }
            return (key, rest.trimmingCharacters(in: .whitespaces))
        }

        func scalar(_ s: String, line: Line) throws -> MetaValue {
            guard let c = s.first else { return .null }
            switch c {
            case "&", "*", "!":
                throw YAMLLite.err(file, line.number, "anchors, aliases and tags are not supported in a sidecar")
            case "{":
                throw YAMLLite.err(file, line.number, "flow mappings ({…}) are not supported; use indented 'key: value' lines")
            case "[":
                guard s.hasSuffix("]") else { throw YAMLLite.err(file, line.number, "unterminated '['") }
                let inner = s.dropFirst().dropLast()
                var items: [MetaValue] = []
                var cur = ""
                var q: Character?
                for ch in inner {
                    if let qq = q { cur.append(ch); if ch == qq { q = nil }; continue }
                    if ch == "\"" || ch == "'" { q = ch; cur.append(ch); continue }
                    if ch == "[" || ch == "{" { throw YAMLLite.err(file, line.number, "nested flow collections are not supported") }
                    if ch == "," { items.append(try scalar(cur.trimmingCharacters(in: .whitespaces), line: line)); cur = ""; continue }
                    cur.append(ch)
                }
                let last = cur.trimmingCharacters(in: .whitespaces)
                if !last.isEmpty { items.append(try scalar(last, line: line)) }
                return .array(items)
            case "\"":
                guard s.count >= 2, s.hasSuffix("\"") else { throw YAMLLite.err(file, line.number, "unterminated double-quoted string") }
                // JSON escapes are a subset of YAML's double-quoted escapes.
                do { return try MetaValue.parseJSON(s) } catch {
                    throw YAMLLite.err(file, line.number, "bad escape in double-quoted string")
                }
            case "'":
                guard s.count >= 2, s.hasSuffix("'") else { throw YAMLLite.err(file, line.number, "unterminated single-quoted string") }
                return .string(String(s.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'"))
            default:
                switch s {
                case "~", "null", "Null", "NULL": return .null
                case "true", "True", "TRUE": return .bool(true)
                case "false", "False", "FALSE": return .bool(false)
                default: break
                }
                if let i = Int64(s) { return .int(i) }
                if s.range(of: #"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"#, options: .regularExpression) != nil, let d = Double(s) {
                    return .double(d)
                }
                return .string(s)
            }
        }
    }
}
