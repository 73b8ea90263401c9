import ArgumentParser
import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prints one line for an error and exits with its code (README documents the codes).
func fail(_ e: Error) -> Never {
    if let e = e as? EMError {
        FileHandle.standardError.write(Data("emconv: error: \(e.description)\n".utf8))
        exit(e.code.exitCode)
    }
    if let e = e as? ExitCode { exit(e.rawValue) }
    if let e = e as? ValidationError {
        FileHandle.standardError.write(Data("emconv: error: \(e.message)\n".utf8))
        exit(EMError.Code.usage.exitCode)
    }
    FileHandle.standardError.write(Data("emconv: error: \(e)\n".utf8))
    exit(1)
}

struct EMConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emconv",
        abstract: "Convert electron-microscopy data into open, documented, verifiable formats.",
        version: Tools.versionLine,
        subcommands: [Convert.self, Batch.self, Info.self, Formats.self, Validate.self]
    )
}

Converter.installFaultHandlers()
Watchdog.enable()
do {
    var command = try EMConv.parseAsRoot()
    do {
        try command.run()
    } catch {
        fail(error)
    }
} catch {
    // Parsing and validation errors: swift-argument-parser prints them and exits 64 (EX_USAGE).
    if let e = error as? EMError { fail(e) }
    EMConv.exit(withError: error)
}
