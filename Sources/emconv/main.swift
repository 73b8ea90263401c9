import ArgumentParser
import EMConvKit
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct EMConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emconv",
        abstract: "Convert electron-microscopy data into open, documented, verifiable formats.",
        discussion: """
        Reads Gatan DM3/DM4, Velox and Berkeley EMD, Merlin MIB, EMPAD, raw dumps
        and NeXus; writes NeXus/HDF5 (NXem, the default), HyperSpy zspy and ImageJ
        TIFF. Data round-trip bit-exactly; every output records its provenance.
        'emconv formats' lists the formats and their options.

        EXAMPLES
          emconv convert scan.mib -o scan.nxs
          emconv info scan.mib
          emconv batch /data/session1 -r -o /data/nexus
          emconv validate scan.nxs --source scan.mib

        EXIT STATUS
          0 success; 2 batch: some items failed; 3 validate: invalid; 64 usage
          error; 65 bad or unsupported input; 66 input missing; 73 output exists;
          74 cannot write the output; 75 record: stream ended early (output
          holds the frames received); 130/143 interrupted.
        """,
        version: Tools.versionLine,
        subcommands: [Convert.self, Record.self, Batch.self, Info.self, Validate.self, Formats.self]
    )
}

/// Ends the process without the C libraries' exit-time teardown: OpenSSL's and HDF5's cleanup
/// would run while background threads (the input checksum, a failed writer's objects) still use
/// them, and crash (a second, false "file is damaged" line from the fault handler).
func finish(_ code: Int32) -> Never {
    fflush(nil)
    _exit(code)
}

/// Errors of emconv itself print one line and exit with their code (README documents the codes);
/// everything the argument parser raises (help requests, usage errors) is its own to print.
func exitWith(_ error: Error, arguments: [String] = []) -> Never {
    if let e = error as? EMError {
        Tools.stderr("emconv: error: \(e.description)\n")
        finish(e.code.exitCode)
    }
    if let e = error as? ExitCode { finish(e.rawValue) }
    let code = EMConv.exitCode(for: error)
    // Help and version requests travel as errors: the parser prints them and exits 0.
    if code == .success || error is ExitCode { EMConv.exit(withError: error) }
    // Usage errors in emconv's one style, with where to look.
    let sub = arguments.first { !$0.hasPrefix("-") }.flatMap { a in EMConv.configuration.subcommands.first { $0._commandName == a }?._commandName }
    let message = Tools.oneLine(EMConv.message(for: error).trimmingCharacters(in: .whitespacesAndNewlines))
        .replacingOccurrences(of: "Error: ", with: "")
    Tools.stderr("emconv: error: \(message) (see 'emconv \(sub.map { $0 + " " } ?? "")--help')\n")
    exit(code.rawValue)
}

ActiveWork.installFaultHandlers()
// A file size limit (ulimit -f) makes writes fail with EFBIG, reported like a full disk,
// instead of killing the process with SIGXFSZ and leaving the partial output.
signal(SIGXFSZ, SIG_IGN)
// A batch child whose parent was killed must not die on its next progress line: writes fail instead.
signal(SIGPIPE, SIG_IGN)
Watchdog.enable()
let arguments: [String]
switch FormatArguments.current {
case let .success(f): arguments = f.remaining
case let .failure(e): exitWith(e)
}
do {
    var command = try EMConv.parseAsRoot(arguments)
    do {
        try command.run()
    } catch {
        exitWith(error, arguments: arguments)
    }
} catch {
    exitWith(error, arguments: arguments)
}
finish(0)
