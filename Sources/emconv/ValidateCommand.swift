import ArgumentParser
import EMConvKit
import Foundation

struct Validate: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(
        abstract: "Check NeXus files (generic NeXus, NXem, electron-microscopy sanity), or what a vendor file lacks for NXem.",
        discussion: """
        One line per finding: RULE SEVERITY /path message. Exit status: 0 valid
        (warnings allowed unless --strict), 3 invalid, 65 unreadable, 66 missing (the
        file, a companion it needs, or --source).
        Profiles: nexus (base classes), nxem (the NXem application definition;
        default when /entry1/definition is NXem), em (domain sanity; with --source
        IN also re-reads the input and compares checksums and every frame bit for
        bit). Given a vendor file, lists what the reader found and which
        NXem-required metadata the sidecar must supply.
        Corrected data (--dark, --gain, --flat-field, --pixel-mask): the stored
        maps are checked against their recorded SHA-256; with --profile em or
        --source every corrected frame is re-derived from the raw data (or the
        source) and the maps and compared bit for bit (exit 3 naming the first
        differing frame and pixel).

        EXAMPLES
          emconv validate scan.nxs
          emconv validate scan.nxs --profile em --source scan.mib
          emconv validate corrected.nxs --profile em      (re-derive the corrections)
          emconv validate scan.mib --metadata meta.yaml   (what NXem still lacks)
          emconv validate --template NXem > meta.yaml     (a sidecar to fill in)

        \(FormatArguments.helpSection(writers: false))
        """) }

    @Argument(help: "NeXus files (.nxs) or vendor input files.")
    var files: [String] = []

    @Option(name: .long, help: ArgumentHelp("nexus | nxem | em (comma-separated or repeated; nxem and em include nexus).", valueName: "profile"))
    var profile: [String] = []

    @Flag(name: .long, help: "One JSON document per file: {file, valid, findings:[{rule, severity, path, message}]}.")
    var json = false

    @Flag(name: .long, help: "Warnings make a file invalid.")
    var strict = false

    @Option(name: .long, help: ArgumentHelp("The input the file was converted from: re-read, checksum and frame-by-frame comparison.", valueName: "IN"))
    var source: String?

    @Option(name: .long, help: ArgumentHelp("Vendor inputs: count this sidecar's values as present.", valueName: "meta.yaml"))
    var metadata: String?

    @Option(name: .long, help: ArgumentHelp("Print a ready-to-fill metadata sidecar for this application definition (NXem) and exit.", valueName: "NXem"))
    var template: String?

    @OptionGroup var log: OutputOptions

    func validate() throws {
        if let t = template {
            guard t.lowercased() == "nxem" else { throw ValidationError("--template knows NXem only") }
            return
        }
        guard !files.isEmpty else { throw ValidationError("give at least one file (or --template NXem)") }
        for p in profileList where ValidationProfile(rawValue: p) == nil {
            throw ValidationError("--profile takes nexus, nxem or em (not '\(p)')")
        }
        if source != nil && files.count != 1 { throw ValidationError("--source compares one converted file with its input: give exactly one file") }
    }

    var profileList: [String] { profile.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } } }

    func run() throws {
        if template != nil {
            print(Sidecar.template, terminator: "")
            return
        }
        var o = ValidateOptions()
        let list = profileList.compactMap(ValidationProfile.init(rawValue:))
        if !list.isEmpty { o.profiles = Set(list) }
        o.strict = strict
        o.readOptions = try formatArguments().read
        o.source = source
        if let metadata { o.sidecar = try Sidecar.load(metadata) }
        var reports: [ValidationReport] = []
        for f in files {
            let r = Validator.validate(f, options: o)
            reports.append(r)
            if json {
                print(r.json.json(pretty: files.count == 1))
            } else {
                for x in r.findings { print(x.line) }
                print("\(f): \(r.unreadable ? "UNREADABLE" : (r.valid ? "VALID" : "INVALID")) (\(r.kind == "source" ? "vendor input, NXem readiness" : "profiles " + r.profiles.joined(separator: "+")); \(r.findings.filter { $0.severity == .error }.count) errors, \(r.findings.filter { $0.severity == .warning }.count) warnings)")
            }
        }
        // A missing input (the file, a companion, --source) is 66 as in every command; the
        // first failing file decides when several fail.
        if let bad = reports.first(where: { $0.unreadable || $0.missingInput }) {
            throw ExitCode(bad.missingInput ? EMError.Code.missingInput.exitCode : EMError.Code.badInput.exitCode)
        }
        if reports.contains(where: { !$0.valid }) { throw ExitCode(3) }
    }
}
