import ArgumentParser
import EMConvKit
import Foundation

/// The readers' and writers' declared options on the command line. They are not declared to
/// swift-argument-parser one by one (that would be a second, hand-kept list): before parsing, the
/// arguments of `convert`, `record`, `batch`, `info` and `validate` are scanned for the catalog's options
/// (`--scan-shape 4,4`, `--scan-shape=4,4`, `--mib-flip-rows`) and for the generic forms
/// `--oo KEY=VALUE` (reader) and `--co KEY=VALUE` (writer); what remains goes to the parser.
struct FormatArguments: Sendable {
    var read = OptionValues()
    var write = OptionValues()
    /// Processing options (``Processing/options``: --dataset, --crop, --bin …), convert and batch.
    var process = OptionValues()
    /// The arguments left for swift-argument-parser.
    var remaining: [String] = []

    /// Subcommands that take reader options, and those that also take writer options.
    static let readerCommands: Set<String> = ["convert", "record", "batch", "info", "validate"]
    static let writerCommands: Set<String> = ["convert", "record", "batch"]

    /// The arguments of this process, scanned once.
    static let current: Result<FormatArguments, EMError> = {
        do { return .success(try scan(Array(CommandLine.arguments.dropFirst()))) } catch let e as EMError { return .failure(e) } catch {
            return .failure(EMError(.usage, "\(error)"))
        }
    }()

    static func spec(_ key: String, in list: [Catalog.DeclaredOption]) -> OptionSpec? {
        list.first { $0.spec.key == key }?.spec
    }

    static func scan(_ args: [String]) throws -> FormatArguments {
        var out = FormatArguments()
        // The subcommand: the first argument that is not an option (help and --version pass through).
        guard let cmdIndex = args.firstIndex(where: { !$0.hasPrefix("-") }), readerCommands.contains(args[cmdIndex]) else {
            out.remaining = args
            return out
        }
        let command = args[cmdIndex]
        let readers = Catalog.readerOptions, writers = writerCommands.contains(command) ? Catalog.writerOptions : []
        let processing = writerCommands.contains(command) ? Catalog.processingOptions : []
        out.remaining = Array(args[...cmdIndex])
        var i = cmdIndex + 1
        while i < args.count {
            let a = args[i]
            if a == "--" {
                out.remaining += args[i...]
                break
            }
            if a == "--oo" || a == "--co" || a.hasPrefix("--oo=") || a.hasPrefix("--co=") {
                let isReader = a.hasPrefix("--oo")
                var pair: String
                if let eq = a.firstIndex(of: "=") {
                    pair = String(a[a.index(after: eq)...])
                } else {
                    guard i + 1 < args.count else { throw EMError(.usage, at: a, "needs KEY=VALUE") }
                    pair = args[i + 1]
                    i += 1
                }
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                let key = parts[0].lowercased().replacingOccurrences(of: "_", with: "-")
                let value = parts.count > 1 ? parts[1] : ""
                guard let spec = spec(key, in: isReader ? readers : writers) else {
                    let known = (isReader ? readers : writers).map(\.spec.key).joined(separator: ", ")
                    throw EMError(.usage, at: a, "unknown \(isReader ? "reader" : "writer") option '\(key)' (known: \(known.isEmpty ? "none" : known))")
                }
                if isReader { try out.read.set(key, value, spec: spec) } else { try out.write.set(key, value, spec: spec) }
                i += 1
                continue
            }
            if a.hasPrefix("--") {
                let body = a.dropFirst(2)
                let key = String(body.split(separator: "=", maxSplits: 1).first ?? "")
                let inline: String? = body.contains("=") ? String(body.split(separator: "=", maxSplits: 1).last ?? "") : nil
                if let spec = spec(key, in: processing) {
                    var value = inline ?? ""
                    if spec.takesValue && inline == nil {
                        guard i + 1 < args.count else { throw EMError(.usage, at: a, "needs a value (\(spec.valueName))") }
                        value = args[i + 1]
                        i += 1
                    }
                    try out.process.set(key, value, spec: spec)
                    i += 1
                    continue
                }
                let found: (OptionSpec, Bool)? = spec(key, in: readers).map { ($0, true) } ?? spec(key, in: writers).map { ($0, false) }
                if let (spec, isReader) = found {
                    var value = inline ?? ""
                    if spec.takesValue && inline == nil {
                        guard i + 1 < args.count else { throw EMError(.usage, at: a, "needs a value (\(spec.valueName))") }
                        value = args[i + 1]
                        i += 1
                    }
                    if isReader { try out.read.set(key, value, spec: spec) } else { try out.write.set(key, value, spec: spec) }
                    i += 1
                    continue
                }
            }
            out.remaining.append(a)
            i += 1
        }
        return out
    }

    /// "Format options" help section, generated from the catalog (lines under 80 columns: the
    /// help printer wraps longer ones without indentation).
    static func helpSection(writers: Bool) -> String {
        func wrap(_ text: String, indent: String) -> String {
            var lines: [String] = [], line = indent
            for word in text.split(separator: " ") {
                if line.count + word.count + 1 > 70 && line.count > indent.count {
                    lines.append(line)
                    line = indent
                }
                line += (line.count > indent.count ? " " : "") + word
            }
            lines.append(line)
            return lines.joined(separator: "\n")
        }
        func block(_ title: String, _ list: [Catalog.DeclaredOption]) -> String {
            var s = title + "\n"
            for o in list {
                s += "  \(o.spec.flag)\(o.spec.valueName.isEmpty ? "" : " " + o.spec.valueName)   [\(o.formats.joined(separator: ", "))]\n"
                let d = o.defaultText
                s += wrap(o.spec.help + (d.isEmpty ? "" : "; default: " + d), indent: "      ") + "\n"
            }
            return s
        }
        var s = block("READER OPTIONS (declared by the formats; also --oo KEY=VALUE)", Catalog.readerOptions)
        if writers {
            s += "\n" + block("WRITER OPTIONS (declared by the formats; also --co KEY=VALUE)", Catalog.writerOptions)
            s += "\n" + block("PROCESSING OPTIONS (recorded in the output; without them it is a faithful copy)", Catalog.processingOptions)
        }
        return s
    }
}

/// `-q/--quiet` and `-v/--verbose`, on every command.
struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print only errors (no progress, no warnings, no summary).")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Print more: the reader chosen, the options in effect, timings.")
    var verbose = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
    }

    func warn(_ s: String) { if !quiet { Tools.warn(s) } }
    func info(_ s: String) { if !quiet { Tools.note(s) } }
    func detail(_ s: String) { if verbose { Tools.note(s) } }
}
