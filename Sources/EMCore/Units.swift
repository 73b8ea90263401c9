import Foundation

/// A small parser of the unit strings NeXus fields carry (`@units`). NeXus asks for units that
/// UDUNITS / pint understand (NeXus manual, "Design: Units"; NXDL unit categories in
/// nxdlTypes.xsd: NX_LENGTH, NX_ANGLE, NX_VOLTAGE, NX_TIME, NX_ENERGY, NX_CURRENT …). This parser
/// accepts SI prefixes on the units electron microscopy uses, products (`*`, `.`, space),
/// quotients (`/`), powers (`^n`, `**n`) and `1/…`, and reduces them to SI scale and dimension.
public enum Units {
    /// Dimension exponents over (m, kg, s, A, K, mol, cd, rad) plus a count flag (counts, pixel).
    public struct Dimension: Equatable, Hashable, CustomStringConvertible, Sendable {
        public var e: [Int]
        public init(_ e: [Int]) { self.e = e }
        static let none = Dimension([0, 0, 0, 0, 0, 0, 0, 0])
        static func unit(_ i: Int) -> Dimension { var d = none; d.e[i] = 1; return d }
        static func * (a: Dimension, b: Dimension) -> Dimension { Dimension(zip(a.e, b.e).map { $0 + $1 }) }
        func pow(_ n: Int) -> Dimension { Dimension(e.map { $0 * n }) }
        public var description: String { e.map(String.init).joined(separator: ",") }
    }

    public static let length = Dimension.unit(0)
    public static let time = Dimension.unit(2)
    public static let angle = Dimension.unit(7)
    public static let dimensionless = Dimension.none
    public static let current = Dimension.unit(3)
    /// kg m^2 s^-3 A^-1
    public static let voltage = Dimension([2, 1, -3, -1, 0, 0, 0, 0])
    /// kg m^2 s^-2
    public static let energy = Dimension([2, 1, -2, 0, 0, 0, 0, 0])
    public static let inverseLength = Dimension([-1, 0, 0, 0, 0, 0, 0, 0])

    /// NXDL unit category → dimension (nxdlTypes.xsd).
    public static let categories: [String: Dimension] = [
        "NX_LENGTH": length, "NX_WAVELENGTH": length, "NX_ANGLE": angle, "NX_TIME": time, "NX_PERIOD": time,
        "NX_VOLTAGE": voltage, "NX_ENERGY": energy, "NX_CURRENT": current, "NX_DIMENSIONLESS": dimensionless,
        "NX_WAVENUMBER": inverseLength, "NX_FREQUENCY": time.pow(-1),
    ]

    static let base: [String: (Double, Dimension)] = {
        var b: [String: (Double, Dimension)] = [
            "m": (1, length), "meter": (1, length), "metre": (1, length), "Å": (1e-10, length), "angstrom": (1e-10, length),
            "A": (1, current), "ampere": (1, current),
            "s": (1, time), "second": (1, time), "min": (60, time), "h": (3600, time),
            "g": (1e-3, Dimension.unit(1)), "K": (1, Dimension.unit(4)), "mol": (1, Dimension.unit(5)),
            "rad": (1, angle), "radian": (1, angle), "deg": (Double.pi / 180, angle), "degree": (Double.pi / 180, angle),
            "°": (Double.pi / 180, angle), "sr": (1, angle.pow(2)),
            "V": (1, voltage), "volt": (1, voltage), "eV": (1.602176634e-19, energy), "J": (1, energy),
            "W": (1, Dimension([2, 1, -3, 0, 0, 0, 0, 0])), "Hz": (1, time.pow(-1)), "Pa": (1, Dimension([-1, 1, -2, 0, 0, 0, 0, 0])),
            "C": (1, Dimension([0, 0, 1, 1, 0, 0, 0, 0])), "T": (1, Dimension([0, 1, -2, -1, 0, 0, 0, 0])),
            "B": (1, dimensionless), "byte": (1, dimensionless), "bit": (1, dimensionless),
            "counts": (1, dimensionless), "count": (1, dimensionless), "cts": (1, dimensionless),
            "pixel": (1, dimensionless), "px": (1, dimensionless), "1": (1, dimensionless), "%": (0.01, dimensionless),
            "electron": (1, dimensionless), "e": (1, dimensionless),
        ]
        b["um"] = (1e-6, length)
        b["µm"] = (1e-6, length)
        b["μm"] = (1e-6, length)
        b["us"] = (1e-6, time)
        b["µs"] = (1e-6, time)
        b["μs"] = (1e-6, time)
        b["mrad"] = (1e-3, angle)
        return b
    }()

    static let prefixes: [(String, Double)] = [
        ("Y", 1e24), ("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3),
        ("h", 1e2), ("da", 10), ("d", 0.1), ("c", 1e-2), ("m", 1e-3), ("u", 1e-6), ("µ", 1e-6), ("μ", 1e-6),
        ("n", 1e-9), ("p", 1e-12), ("f", 1e-15), ("a", 1e-18),
    ]

    static func symbol(_ s: String) -> (Double, Dimension)? {
        if let b = base[s] { return b }
        for (p, f) in prefixes where s.hasPrefix(p) && s.count > p.count {
            let rest = String(s.dropFirst(p.count))
            // Prefixes apply to symbols, not to words or counts.
            if let b = base[rest], !["min", "h", "counts", "count", "cts", "pixel", "px", "1", "%", "deg", "°", "byte", "bit", "electron", "e"].contains(rest), rest.count <= 3 {
                return (f * b.0, b.1)
            }
        }
        return nil
    }

    /// Scale to SI and dimension of a unit string; nil when it cannot be parsed. An empty
    /// string is dimensionless.
    public static func parse(_ s: String) -> (scale: Double, dim: Dimension)? {
        let str = s.trimmingCharacters(in: .whitespaces)
        if str.isEmpty { return (1, .none) }
        // Tokenize: symbols, numbers, operators * / . ^ ( ) and spaces as products.
        var tokens: [String] = []
        var cur = ""
        func flush() { if !cur.isEmpty { tokens.append(cur); cur = "" } }
        var chars = Array(str.replacingOccurrences(of: "**", with: "^"))
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "*" || c == "/" || c == "^" || c == "(" || c == ")" {
                flush(); tokens.append(String(c))
            } else if c == " " || (c == "." && !(cur.last?.isNumber ?? false)) {
                flush(); tokens.append("*")
            } else if c == "-" && !(tokens.last == "^" && cur.isEmpty) {
                return nil
            } else {
                cur.append(c)
            }
            i += 1
        }
        chars = []
        flush()
        var p = 0
        func factor() -> (Double, Dimension)? {
            guard p < tokens.count else { return nil }
            var v: (Double, Dimension)
            if tokens[p] == "(" {
                p += 1
                guard let inner = expr(), p < tokens.count, tokens[p] == ")" else { return nil }
                p += 1
                v = inner
            } else if let n = Double(tokens[p]) {
                p += 1
                v = (n, .none)
            } else {
                // Unicode superscripts like m² are not accepted: NeXus asks for ASCII.
                guard let u = symbol(tokens[p]) else { return nil }
                p += 1
                v = u
            }
            if p < tokens.count, tokens[p] == "^" {
                p += 1
                guard p < tokens.count, let n = Int(tokens[p]) else { return nil }
                p += 1
                v = (Foundation.pow(v.0, Double(n)), v.1.pow(n))
            }
            return v
        }
        func expr() -> (Double, Dimension)? {
            guard var v = factor() else { return nil }
            while p < tokens.count, tokens[p] == "*" || tokens[p] == "/" {
                let op = tokens[p]
                p += 1
                guard let f = factor() else { return nil }
                v = op == "*" ? (v.0 * f.0, v.1 * f.1) : (v.0 / f.0, v.1 * f.1.pow(-1))
            }
            return v
        }
        guard let r = expr(), p == tokens.count else { return nil }
        return r
    }

    /// Whether `units` is a unit emconv (and UDUNITS-style parsers) understand; empty is not.
    public static func isParsable(_ units: String) -> Bool {
        !units.trimmingCharacters(in: .whitespaces).isEmpty && parse(units) != nil
    }

    /// Whether `units` belongs to an NXDL unit category (unknown categories pass).
    public static func matches(_ units: String, category: String) -> Bool {
        guard let want = categories[category] else { return true }
        guard let got = parse(units) else { return false }
        return got.dim == want
    }

    /// Whether an axis' `@units` satisfies an NXDL unit category as pynxtools 0.16 judges it
    /// (pynxtools/units): NX_ANY takes '' or any unit; the other categories need a unit of their
    /// dimension ('' is not one), and NX_LENGTH also takes a pixel index (`pixel`, `px`).
    public static func matchesNXDL(_ units: String, category: String) -> Bool {
        let u = units.trimmingCharacters(in: .whitespaces)
        if category == "NX_ANY" { return parse(u) != nil }
        if u.isEmpty { return categories[category] == nil }
        if category == "NX_LENGTH", u == "pixel" || u == "px" { return true }
        return matches(u, category: category)
    }

    /// A quantity in SI (for comparing a sidecar value with a file value).
    public static func si(_ q: Quantity) -> (Double, Dimension)? {
        guard let u = parse(q.units) else { return nil }
        return (q.value * u.scale, u.dim)
    }

    /// Parses "0.5 m", "120mm", "300 kV" into a quantity.
    public static func quantity(_ s: String) -> Quantity? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard let r = t.range(of: #"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"#, options: .regularExpression),
              let v = Double(t[r]) else { return nil }
        let u = t[r.upperBound...].trimmingCharacters(in: .whitespaces)
        guard parse(u) != nil else { return nil }
        return Quantity(v, u)
    }
}
