import CDeflate
import CZstd
import Foundation

/// Versions of the compression libraries, for `--version` and provenance.
public enum Codecs {
    public static var zstdVersion: String { String(cString: ZSTD_versionString()) }
    public static var deflateVersion: String { LIBDEFLATE_VERSION_STRING }
}

/// The supported-formats table, generated from the descriptors (README and formats.md embed it).
public enum FormatTable {
    public static func markdown() -> String {
        var s = "| format | name | extensions | read | write | companions | options |\n|---|---|---|---|---|---|---|\n"
        for d in Registry.descriptors {
            let opts = d.options.map { "`\($0.name)`" }.joined(separator: ", ")
            s += "| \(d.longName) | `\(d.name)` | \(d.extensions.map { "`.\($0)`" }.joined(separator: " ")) | \(d.reads ? "yes" : "") | \(d.writes ? "yes" : "") | \(d.companions ?? "") | \(opts) |\n"
        }
        return s
    }
}
