import Foundation

/// The one error type of emconv: a code (mapped to the exit status in one place), the file,
/// where in it (byte offset or field), and a sentence a microscopist understands.
public struct EMError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Sendable, CaseIterable {
        /// The command line is wrong.
        case usage
        /// The input is corrupt, truncated or not what its name claims.
        case badInput
        /// The input is valid but uses a variant emconv cannot read, or the output cannot hold it.
        case unsupported
        /// An input file (or a companion file it needs) does not exist.
        case missingInput
        /// The output exists and `--overwrite` was not given.
        case outputExists
        /// Writing the output failed (disk full, permissions, HDF5 error).
        case writeError
        /// Interrupted by a signal.
        case interrupted
        /// A live stream ended (closed, stalled past --timeout, corrupt, Ctrl-C) before the
        /// acquisition was complete; the output holds every complete frame received.
        case streamEndedEarly
        /// Anything else.
        case failure

        /// The process exit status for this code (sysexits.h values; documented in README).
        public var exitCode: Int32 {
            switch self {
            case .usage: return 64
            case .badInput, .unsupported: return 65
            case .missingInput: return 66
            case .outputExists: return 73
            case .writeError: return 74
            case .interrupted: return 130
            case .streamEndedEarly: return 75
            case .failure: return 1
            }
        }
    }

    public var code: Code
    public var file: String?
    /// "offset 1234", "frame 17", "field Frames in Acquisition", …
    public var location: String?
    public var message: String

    public init(_ code: Code, file: String? = nil, at location: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.location = location
        self.message = message
    }

    public static func bad(_ file: String?, offset: Int64? = nil, _ message: String) -> EMError {
        EMError(.badInput, file: file, at: offset.map { "offset \($0)" }, message)
    }

    public static func bad(_ file: String?, field: String, _ message: String) -> EMError {
        EMError(.badInput, file: file, at: "field '\(field)'", message)
    }

    /// One line: `FILE: at offset N: message`. Control characters (a damaged file's bytes quoted
    /// in a message) are shown as '?', and very long messages are shortened, so it stays one line.
    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let location { parts.append("at \(location)") }
        parts.append(message)
        var line = String(String.UnicodeScalarView(parts.joined(separator: ": ").unicodeScalars.map {
            $0.value < 0x20 || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) ? "?" : $0
        }))
        if line.count > 600 { line = String(line.prefix(597)) + "..." }
        return line
    }

    /// The same error about another file (used when a companion fails on behalf of its primary).
    public func withFile(_ f: String) -> EMError {
        var e = self
        if e.file == nil { e.file = f }
        return e
    }
}
