import EMCore
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// The parts of a TIA .emi file emconv uses. The .emi is a binary object store whose layout is
/// not published; emconv takes only what is recognizable in it: the `<ObjectInfo>` XML block of
/// each data object, the .ser file name each object refers to, the object's display name and
/// its space ("Real Space", "Reciprocal Space"), and the TIA version string.
struct EMIFile {
    struct Object {
        /// Base name of the .ser file the object refers to ("x_1.ser"), when found.
        var serName: String?
        /// TIA's name of the data object ("Acquire BF", "Preview CCD Pattern").
        var name: String?
        var space: String?
        /// The parsed `<ObjectInfo>` tree (nil when the block is not well-formed XML).
        var info: MetaValue?
        var rawInfo: String
    }

    let path: String
    let objects: [Object]
    let tiaVersion: String?
    let warnings: [String]

    static let signature: [UInt8] = [0x4A, 0x4B, 0x00, 0x02]   // "JK\0\2"

    init(path: String) throws {
        self.path = path
        let f = try RandomAccessFile(path: path)
        guard f.size <= 256 << 20 else { throw EMError.bad(path, offset: 0, "an .emi larger than 256 MiB is not a TIA metadata file") }
        let b = try f.read(at: 0, count: Int(f.size), what: "emi")
        guard b.count >= 4, Array(b[0..<4]) == EMIFile.signature else {
            throw EMError.bad(path, offset: 0, "not a TIA .emi file (expected 'JK' 0x00 0x02 at the start)")
        }
        // Length-prefixed strings: 0x60, a 3-byte field code, UInt32 length, printable bytes.
        var strings: [(pos: Int, text: String, named: Bool)] = []
        var i = 0
        while i + 8 < b.count {
            if b[i] == 0x60 {
                let n = Int(b[i + 4]) | Int(b[i + 5]) << 8 | Int(b[i + 6]) << 16 | Int(b[i + 7]) << 24
                if n > 0, n < 1024, i + 8 + n <= b.count, b[(i + 8)..<(i + 8 + n)].allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
                    // Object names carry a field tag just before the string
                    // (seen: B0 49 10 06 on image objects, 00 47 10 06 on spectrum objects).
                    let named = i >= 4 && b[i - 2] == 0x10 && b[i - 1] == 0x06
                        && ((b[i - 4] == 0xB0 && b[i - 3] == 0x49) || (b[i - 4] == 0x00 && b[i - 3] == 0x47))
                    strings.append((i, String(decoding: b[(i + 8)..<(i + 8 + n)], as: UTF8.self), named))
                    i += 8 + n
                    continue
                }
            }
            i += 1
        }
        tiaVersion = strings.first { s in s.text.split(separator: ".").count == 4 && s.text.allSatisfy { $0.isNumber || $0 == "." } }?.text
        // .ser names: printable runs ending in ".ser" (the stored path is the acquisition PC's).
        var sers: [(pos: Int, name: String)] = []
        let dotSer = Array(".ser".utf8)
        var k = 0
        while k + 4 <= b.count {
            if b[k] == dotSer[0], Array(b[k..<(k + 4)]).map({ $0 | 0x20 }) == [0x2E, 0x73, 0x65, 0x72] {
                var s = k
                while s > 0, b[s - 1] >= 0x20, b[s - 1] < 0x7F, b[s - 1] != UInt8(ascii: "\\"), b[s - 1] != UInt8(ascii: "/") { s -= 1 }
                if s < k { sers.append((k, String(decoding: b[s..<(k + 4)], as: UTF8.self))) }
                k += 4
                continue
            }
            k += 1
        }
        // ObjectInfo blocks, each paired with the .ser named last before it.
        let open = Array("<ObjectInfo>".utf8), close = Array("</ObjectInfo>".utf8)
        var objs: [Object] = []
        var warns: [String] = []
        var from = 0
        var previousEnd = 0
        while let s = EMIFile.find(open, in: b, from: from) {
            guard let e = EMIFile.find(close, in: b, from: s) else {
                warns.append("\((path as NSString).lastPathComponent): an <ObjectInfo> block at offset \(s) has no end (truncated?)")
                break
            }
            let raw = String(bytes: b[s..<(e + close.count)], encoding: .isoLatin1) ?? ""
            let ser = sers.last { $0.pos < s && $0.pos >= previousEnd }?.name
            let name = strings.last { $0.named && $0.pos < s && $0.pos >= previousEnd }?.text
            let space = strings.last { ($0.text.hasSuffix(" Space")) && $0.pos < s && $0.pos >= previousEnd }?.text
            let info = EMIFile.parseXML(raw)
            if info == nil { warns.append("\((path as NSString).lastPathComponent): the <ObjectInfo> block at offset \(s) is not well-formed XML; kept as text") }
            objs.append(Object(serName: ser, name: name, space: space, info: info, rawInfo: raw))
            previousEnd = e + close.count
            from = previousEnd
        }
        // .ser names after the last block (an object whose info is missing).
        for s in sers where s.pos >= previousEnd && !objs.contains(where: { $0.serName == s.name }) {
            objs.append(Object(serName: s.name, name: nil, space: nil, info: nil, rawInfo: ""))
        }
        objects = objs
        warnings = warns
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = from
        while i + needle.count <= hay.count {
            if hay[i] == needle[0], Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// The object describing `serName` (by name, else by the `_N` number, else the only one).
    func object(forSER serName: String) -> Object? {
        let base = (serName as NSString).lastPathComponent.lowercased()
        if let o = objects.first(where: { $0.serName?.lowercased() == base }) { return o }
        if let n = TIAReader.serNumber(base), n >= 1, n <= objects.count, objects.allSatisfy({ $0.serName == nil }) { return objects[n - 1] }
        return objects.count == 1 ? objects[0] : nil
    }

    /// XML → ordered tree; `ExperimentalDescription/Root/Data` lists become `label: "value unit"`.
    static func parseXML(_ text: String) -> MetaValue? {
        guard let data = text.data(using: .utf8) else { return nil }
        let parser = XMLParser(data: data)
        let builder = TIAXMLBuilder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }
}

/// Builds a ``MetaValue`` tree from XML events (attributes are not used by TIA).
final class TIAXMLBuilder: NSObject, XMLParserDelegate {
    private var stack: [(name: String, pairs: [(String, MetaValue)], text: String)] = []
    var root: MetaValue?

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        guard stack.count < 64 else { parser.abortParsing(); return }
        stack.append((elementName, [], ""))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard let e = stack.popLast() else { return }
        var value: MetaValue
        if e.pairs.isEmpty {
            value = .string(e.text.trimmingCharacters(in: .whitespacesAndNewlines))
        } else if e.name == "Root", e.pairs.allSatisfy({ $0.0 == "Data" }) {
            // <Data><Label>High tension</Label><Value>200</Value><Unit>kV</Unit></Data> → "High tension": "200 kV"
            value = .object(e.pairs.compactMap { _, d in
                guard let label = d["Label"]?.stringValue else { return nil }
                let v = d["Value"]?.stringValue?.trimmingCharacters(in: .whitespaces) ?? ""
                let u = d["Unit"]?.stringValue ?? ""
                return (label, .string(u.isEmpty ? v : "\(v) \(u)"))
            })
        } else {
            value = .object(e.pairs)
        }
        if e.name == "ExperimentalDescription", case let .object(p) = value, p.count == 1, p[0].0 == "Root" { value = p[0].1 }
        if stack.isEmpty {
            root = value
        } else {
            stack[stack.count - 1].pairs.append((e.name, value))
        }
    }
}
