import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One conversion of a batch: a primary input (with its companions) and its output.
public struct BatchItem: Equatable, Sendable {
    public var index: Int
    public var input: String
    public var companions: [String]
    public var size: Int64
    public var mtime: Double
    public var format: String
    public var output: String
    public var estimatedBytes: Int64
    /// The output folder (`-o`) the plan was made for; every output lies inside it. Recorded in
    /// manifests so that `--from-manifest` runs without `-o` stay confined to it.
    public var outputRoot: String?

    public var json: MetaValue {
        var fields: [(String, MetaValue)] = [
            ("index", .int(Int64(index))), ("input", .string(input)), ("size", .int(size)), ("mtime", .double(mtime)),
            ("format", .string(format)), ("output", .string(output)), ("estimated_bytes", .int(estimatedBytes)),
            ("companions", .array(companions.map { .string($0) }))]
        if let outputRoot { fields.append(("output_root", .string(outputRoot))) }
        return .object(fields)
    }

    public init(json v: MetaValue, file: String, line: Int) throws {
        func need<T>(_ x: T?, _ k: String) throws -> T {
            guard let x else { throw EMError(.badInput, file: file, at: "line \(line)", "manifest entry lacks '\(k)'") }
            return x
        }
        index = try need(v["index"]?.intValue, "index")
        input = try need(v["input"]?.stringValue, "input")
        output = try need(v["output"]?.stringValue, "output")
        format = v["format"]?.stringValue ?? ""
        size = Int64(v["size"]?.intValue ?? 0)
        mtime = v["mtime"]?.doubleValue ?? 0
        estimatedBytes = Int64(v["estimated_bytes"]?.intValue ?? 0)
        if case let .array(c)? = v["companions"] { companions = c.compactMap(\.stringValue) } else { companions = [] }
        outputRoot = v["output_root"]?.stringValue
    }

    public init(index: Int, input: String, companions: [String], size: Int64, mtime: Double, format: String, output: String, estimatedBytes: Int64,
                outputRoot: String? = nil) {
        self.outputRoot = outputRoot
        self.index = index
        self.input = input
        self.companions = companions
        self.size = size
        self.mtime = mtime
        self.format = format
        self.output = output
        self.estimatedBytes = estimatedBytes
    }
}

/// A file of the input tree that is not converted, and why.
public struct SkippedFile: Equatable, Sendable {
    public var path: String
    public var reason: String
}

/// How outputs are named.
public enum OutputLayout: String, Sendable {
    /// The input tree is mirrored under the output directory.
    case mirror
    /// Every output directly in the output directory.
    case flat
}

/// Walks inputs, identifies files by content, groups companions with their primary and names
/// the outputs. Touches nothing.
public struct BatchPlanner {
    public var recursive = false
    public var include: [String] = []
    public var exclude: [String] = []
    public var outputDirectory: String
    public var layout: OutputLayout = .mirror
    /// `{relpath}`, `{stem}`, `{name}`, `{ext}` (output extension), `{format}`, `{index}`.
    public var nameTemplate: String?
    public var outputExtension: String
    /// Follow symbolic links that lead out of an input folder (never in circles).
    public var followSymlinks = false
    public var readOptions = ReadOptions()

    public init(outputDirectory: String, outputExtension: String) {
        self.outputDirectory = outputDirectory
        self.outputExtension = outputExtension
    }

    /// Natural order: digit runs compare by value (`scan_2` before `scan_10`).
    public static func naturalLess(_ a: String, _ b: String) -> Bool {
        var ia = a.unicodeScalars.makeIterator(), ib = b.unicodeScalars.makeIterator()
        var ca = ia.next(), cb = ib.next()
        while let x = ca, let y = cb {
            let dx = CharacterSet.decimalDigits.contains(x), dy = CharacterSet.decimalDigits.contains(y)
            if dx && dy {
                var na = "", nb = ""
                while let c = ca, CharacterSet.decimalDigits.contains(c) { na.unicodeScalars.append(c); ca = ia.next() }
                while let c = cb, CharacterSet.decimalDigits.contains(c) { nb.unicodeScalars.append(c); cb = ib.next() }
                let ta = na.drop { $0 == "0" }, tb = nb.drop { $0 == "0" }
                if ta.count != tb.count { return ta.count < tb.count }
                if ta != tb { return ta < tb }
                if na.count != nb.count { return na.count < nb.count }
                continue
            }
            if x != y { return x.value < y.value }
            ca = ia.next(); cb = ib.next()
        }
        return ca == nil && cb != nil
    }

    static func matches(_ pattern: String, _ path: String) -> Bool {
        fnmatch(pattern, path, 0) == 0 || fnmatch(pattern, (path as NSString).lastPathComponent, 0) == 0
    }

    /// Expands inputs (directories, files, `@list.txt`) to (file, root it was found under), and
    /// the files not taken with why. A folder is walked without leaving it: a symbolic link out
    /// of the input folder is followed only with ``followSymlinks``; a link to a folder inside
    /// it is not followed (its files are found under their own path); folders are recognized by
    /// device and inode, so no link or mount makes the walk go round in circles. Two names of
    /// one file (a link beside its target) give one item.
    func expand(_ inputs: [String]) throws -> (files: [(String, String)], skipped: [SkippedFile]) {
        var out: [(path: String, root: String, id: OutputSafety.FileID?, link: Bool)] = []
        var skipped: [SkippedFile] = []
        let fm = FileManager.default
        for raw in inputs {
            if raw.hasPrefix("@") {
                let listPath = String(raw.dropFirst())
                guard let text = try? String(contentsOfFile: listPath, encoding: .utf8) else {
                    throw EMError(.missingInput, file: listPath, "cannot read the input list")
                }
                let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                let (f, s) = try expand(lines.filter { !$0.isEmpty && !$0.hasPrefix("#") })
                out += f.map { ($0.0, $0.1, OutputSafety.fileID($0.0), false) }
                skipped += s
                continue
            }
            var st = stat()
            guard stat(raw, &st) == 0 else { throw EMError(.missingInput, file: raw, "no such file or directory") }
            let isDir = (st.st_mode & S_IFMT) == S_IFDIR
            let root = isDir ? (raw.hasSuffix("/") && raw.count > 1 ? String(raw.dropLast()) : raw) : (raw as NSString).deletingLastPathComponent
            if !isDir || Self.isStoreDirectory(raw) { out.append((raw, root, OutputSafety.fileID(raw), false)); continue }
            let realRoot = OutputSafety.realPath(root) ?? root
            let inside = { (p: String) -> Bool in p == realRoot || p.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") }
            var walked: Set<OutputSafety.FileID> = [OutputSafety.FileID(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))]
            var stack = [root]
            while let dir = stack.popLast() {
                guard let names = try? fm.contentsOfDirectory(atPath: dir) else { continue }
                for n in names.sorted(by: BatchPlanner.naturalLess) {
                    let p = (dir as NSString).appendingPathComponent(n)
                    var ls = stat()
                    guard lstat(p, &ls) == 0 else { continue }
                    let isLink = (ls.st_mode & S_IFMT) == S_IFLNK
                    var ts = ls
                    if isLink && stat(p, &ts) != 0 { skipped.append(SkippedFile(path: p, reason: "broken symbolic link")); continue }
                    let id = OutputSafety.FileID(device: UInt64(ts.st_dev), inode: UInt64(ts.st_ino))
                    let target = isLink ? (OutputSafety.realPath(p) ?? p) : p
                    switch ts.st_mode & S_IFMT {
                    case S_IFDIR where Self.isStoreDirectory(p):
                        // A zarr store (.zspy) is one input, like a file: its chunks are not walked.
                        if isLink && !followSymlinks && !inside(target) {
                            skipped.append(SkippedFile(path: p, reason: "symbolic link to a folder outside the input (\(target)): not followed (use --follow-symlinks)"))
                        } else {
                            out.append((p, root, id, isLink))
                        }
                    case S_IFDIR:
                        guard recursive && !n.hasPrefix(".") else { continue }
                        if isLink && !followSymlinks {
                            skipped.append(SkippedFile(path: p, reason: inside(target)
                                ? "symbolic link to a folder inside the input (\(target)): not followed, its files are taken under their own path"
                                : "symbolic link to a folder outside the input (\(target)): not followed (use --follow-symlinks)"))
                        } else if walked.insert(id).inserted {
                            stack.append(p)
                        } else {
                            skipped.append(SkippedFile(path: p, reason: "folder already walked (\(target)): not walked again (a link or mount in a circle)"))
                        }
                    case S_IFREG:
                        if isLink && !followSymlinks && !inside(target) {
                            skipped.append(SkippedFile(path: p, reason: "symbolic link to a file outside the input (\(target)): not followed (use --follow-symlinks)"))
                        } else {
                            out.append((p, root, id, isLink))
                        }
                    default:
                        skipped.append(SkippedFile(path: p, reason: "not a regular file"))
                    }
                }
            }
        }
        var seen = Set<String>()
        out = out.filter { seen.insert(($0.path as NSString).standardizingPath).inserted }
            .sorted { BatchPlanner.naturalLess($0.path, $1.path) }
        // One item per file: a real name wins over a link to it, else the first name.
        var first: [OutputSafety.FileID: Int] = [:]
        for (i, f) in out.enumerated() {
            guard let id = f.id else { continue }
            if let j = first[id] { if out[j].link && !f.link { first[id] = i } } else { first[id] = i }
        }
        var files: [(String, String)] = []
        for (i, f) in out.enumerated() {
            if let id = f.id, let j = first[id], j != i {
                skipped.append(SkippedFile(path: f.path, reason: "same file as \(out[j].path)"))
            } else {
                files.append((f.path, f.root))
            }
        }
        return (files, skipped)
    }

    public func plan(_ inputs: [String]) throws -> (items: [BatchItem], skipped: [SkippedFile]) {
        var (files, skipped) = try expand(inputs)
        // A file whose companion is a link this walk did not follow is not converted either.
        let unfollowed = Set(skipped.filter { $0.reason.hasPrefix("symbolic link") }.map { ($0.path as NSString).standardizingPath })
        var candidates: [(path: String, root: String, reader: FormatReader.Type, companions: [String])] = []
        // Filters apply after naming: output names (and {index}) depend only on the input tree,
        // so a resume with other --include/--exclude patterns finds the same outputs.
        var filteredOut: [String: String] = [:]
        for (path, root) in files {
            let name = (path as NSString).lastPathComponent
            let rel = relative(path, to: root)
            if name.hasPrefix(".") { skipped.append(SkippedFile(path: path, reason: name.contains(".tmp-emconv-") ? "temporary file of an interrupted conversion" : "hidden file")); continue }
            if !include.isEmpty && !include.contains(where: { Self.matches($0, rel) }) { filteredOut[path] = "not matched by --include" }
            if exclude.contains(where: { Self.matches($0, rel) }) { filteredOut[path] = "excluded by --exclude" }
            do {
                guard let r = try Catalog.candidates(for: path, options: readOptions).first else {
                    throw try Catalog.unclaimed(path, declined: [])
                }
                let comps = r.companions(of: path).map { ($0 as NSString).standardizingPath }.filter { $0 != (path as NSString).standardizingPath }
                if let c = comps.first(where: unfollowed.contains) {
                    skipped.append(SkippedFile(path: path, reason: "its companion \(c) is a symbolic link that is not followed"))
                    continue
                }
                candidates.append((path, root, r, comps))
            } catch let e as EMError {
                skipped.append(SkippedFile(path: path, reason: filteredOut[path] ?? e.message))
            }
        }
        // A file that another candidate names as its companion is not converted on its own.
        var companionOf: [String: String] = [:]
        for c in candidates { for x in c.companions where companionOf[x] == nil { companionOf[x] = c.path } }
        var items: [BatchItem] = []
        let fm = FileManager.default
        var claimed = Set<String>()
        var primaries: [(path: String, root: String, reader: FormatReader.Type, companions: [String])] = []
        for c in candidates {
            let key = (c.path as NSString).standardizingPath
            if let owner = companionOf[key], owner != c.path {
                claimed.insert(key)
                continue
            }
            primaries.append(c)
        }
        // Outputs: with the default naming, inputs that share a stem in one folder (x.dm3, x.dm4)
        // keep their extension in the output name (x.dm3.nxs); an explicit --name must be unique.
        var outs = try primaries.map { try outputPath(for: $0.path, root: $0.root, format: $0.reader.descriptor.name, index: 0, keepExtension: false) }
        if nameTemplate == nil {
            let counts = Dictionary(outs.map { ($0, 1) }, uniquingKeysWith: +)
            for i in outs.indices where counts[outs[i]]! > 1 {
                outs[i] = try outputPath(for: primaries[i].path, root: primaries[i].root, format: primaries[i].reader.descriptor.name, index: i, keepExtension: true)
            }
        }
        var outputs: [String: String] = [:]
        for (i, c) in primaries.enumerated() {
            var out = outs[i]
            if nameTemplate != nil { out = try outputPath(for: c.path, root: c.root, format: c.reader.descriptor.name, index: i, keepExtension: false) }
            if let other = outputs[out] {
                throw EMError(.usage, file: c.path, "maps to the same output as \(other): \(out) (use --layout mirror or --name with {relpath} or {name})")
            }
            outputs[out] = c.path
            if let why = filteredOut[c.path] {
                skipped.append(SkippedFile(path: c.path, reason: why))
                continue
            }
            let attrs = try? fm.attributesOfItem(atPath: c.path)
            let size = Self.isStoreDirectory(c.path) && (attrs?[.type] as? FileAttributeType) == .typeDirectory
                ? Self.treeSize(c.path) : (attrs?[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let compSizes = c.companions.compactMap { (try? fm.attributesOfItem(atPath: $0)[.size] as? NSNumber)?.int64Value }.reduce(0, +)
            items.append(BatchItem(index: items.count, input: c.path, companions: c.companions.filter { fm.fileExists(atPath: $0) },
                                   size: size, mtime: mtime, format: c.reader.descriptor.name, output: out, estimatedBytes: size + compSizes,
                                   outputRoot: outputDirectory))
        }
        // Companions that are not readable formats themselves (.hdr, EMPAD .raw) were skipped
        // above as unrecognized: report them as companions instead.
        let allCompanions = Set(companionOf.keys)
        skipped = skipped.compactMap { s in
            let k = (s.path as NSString).standardizingPath
            if let owner = companionOf[k] { return SkippedFile(path: s.path, reason: "companion of \(owner)") }
            return allCompanions.contains(k) ? nil : s
        }
        for k in claimed.sorted() { skipped.append(SkippedFile(path: k, reason: "companion of \(companionOf[k]!)")) }
        skipped.sort { BatchPlanner.naturalLess($0.path, $1.path) }
        return (items, skipped)
    }

    /// A folder that is one input, not a folder of inputs: a HyperSpy zarr store (`*.zspy`).
    static func isStoreDirectory(_ path: String) -> Bool {
        (path as NSString).pathExtension.lowercased() == "zspy"
    }

    /// Bytes of the regular files under a store folder.
    static func treeSize(_ path: String) -> Int64 { treeState(path).bytes }

    /// Total bytes and newest modification time (ns) of the regular files under a store folder
    /// (links not followed; at most 10^6 entries).
    static func treeState(_ path: String) -> (bytes: Int64, newest: Int64) {
        guard let e = FileManager.default.enumerator(atPath: path) else { return (0, 0) }
        var total: Int64 = 0, newest: Int64 = 0, n = 0
        while let rel = e.nextObject() as? String, n < 1_000_000 {
            n += 1
            var st = stat()
            guard lstat((path as NSString).appendingPathComponent(rel), &st) == 0 else { continue }
            newest = max(newest, Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
            if (st.st_mode & S_IFMT) == S_IFREG { total += Int64(st.st_size) }
        }
        return (total, newest)
    }

    func relative(_ path: String, to root: String) -> String {
        let p = (path as NSString).standardizingPath, r = (root as NSString).standardizingPath
        if r.isEmpty || r == "." { return path }
        if p.hasPrefix(r + "/") { return String(p.dropFirst(r.count + 1)) }
        return (path as NSString).lastPathComponent
    }

    /// The output of `path`: inside ``outputDirectory`` or a usage error naming the input.
    func outputPath(for path: String, root: String, format: String, index: Int, keepExtension: Bool) throws -> String {
        let rel = relative(path, to: root)
        let relDir = (rel as NSString).deletingLastPathComponent
        let name = (rel as NSString).lastPathComponent
        let stem = keepExtension ? name : (name as NSString).deletingPathExtension
        let template = nameTemplate ?? (layout == .mirror ? "{relpath}/{stem}.{ext}" : "{stem}.{ext}")
        var s = template.replacingOccurrences(of: "{relpath}", with: relDir.isEmpty ? "." : relDir)
        s = s.replacingOccurrences(of: "{stem}", with: stem).replacingOccurrences(of: "{name}", with: name)
        s = s.replacingOccurrences(of: "{ext}", with: outputExtension).replacingOccurrences(of: "{format}", with: format)
        s = s.replacingOccurrences(of: "{index}", with: String(index))
        let joined = (outputDirectory as NSString).appendingPathComponent(s)
        if let why = OutputSafety.escape(of: joined, from: outputDirectory) {
            throw EMError(.usage, file: path, "its output \(joined) \(why) (check --name)")
        }
        return (joined as NSString).standardizingPath
    }
}

/// Which part of a manifest this process runs: items with index % count == index.
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1, index >= 0, index < count else { throw EMError(.usage, "--shard i/N needs 0 <= i < N (got \(index)/\(count))") }
        self.index = index
        self.count = count
    }

    /// `i/N`, or `auto` from SLURM job-array or SGE task variables.
    public static func parse(_ s: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
        if s == "auto" {
            if let id = env["SLURM_ARRAY_TASK_ID"].flatMap(Int.init) {
                let minID = env["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
                guard let count = env["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init) ?? env["SLURM_ARRAY_TASK_MAX"].flatMap({ Int($0).map { $0 - minID + 1 } }) else {
                    throw EMError(.usage, "--shard auto: SLURM_ARRAY_TASK_COUNT is not set")
                }
                return try Shard(index: id - minID, count: count)
            }
            if let id = env["SGE_TASK_ID"].flatMap(Int.init), let last = env["SGE_TASK_LAST"].flatMap(Int.init) {
                let first = env["SGE_TASK_FIRST"].flatMap(Int.init) ?? 1
                let step = max(1, env["SGE_TASK_STEPSIZE"].flatMap(Int.init) ?? 1)
                return try Shard(index: (id - first) / step, count: (last - first) / step + 1)
            }
            throw EMError(.usage, "--shard auto: no SLURM_ARRAY_TASK_ID or SGE_TASK_ID in the environment")
        }
        let p = s.split(separator: "/")
        guard p.count == 2, let i = Int(p[0]), let n = Int(p[1]) else { throw EMError(.usage, "--shard takes i/N or auto (got '\(s)')") }
        return try Shard(index: i, count: n)
    }

    public func contains(_ item: BatchItem) -> Bool { item.index % count == index }
    public var description: String { "\(index)/\(count)" }
    public var reportName: String { "shard-\(index)-of-\(count).jsonl" }
}

/// Plan files (JSON lines, one item per line).
public enum Manifest {
    /// The output folder a manifest's items are confined to: `-o` when given, else the folder
    /// the manifest records (`output_root`, written by `--manifest`). Every item's output must
    /// lie inside it, or the manifest is refused naming the item.
    public static func confine(_ items: [BatchItem], to output: String?, manifest: String) throws -> String {
        let root: String
        if let output {
            root = output
        } else if items.isEmpty {
            root = (manifest as NSString).deletingLastPathComponent
        } else {
            let roots = Set(items.map(\.outputRoot))
            guard roots.count == 1, let r = roots.first!, !r.isEmpty else {
                throw EMError(.usage, file: manifest, roots.contains(nil)
                    ? "the plan does not record its output folder (output_root); give -o OUTDIR"
                    : "the plan's items name different output folders (output_root); give -o OUTDIR")
            }
            root = r
        }
        for it in items {
            if let why = OutputSafety.escape(of: it.output, from: root) {
                throw EMError(.badInput, file: manifest, at: "item \(it.index)", "the output \(it.output) \(why)")
            }
        }
        return root
    }

    public static func write(_ items: [BatchItem], to path: String) throws {
        let text = items.map { $0.json.json() }.joined(separator: "\n") + (items.isEmpty ? "" : "\n")
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw EMError(.writeError, file: path, "cannot write the manifest")
        }
    }

    public static func read(_ path: String) throws -> [BatchItem] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw EMError(.missingInput, file: path, "cannot read the manifest") }
        var items: [BatchItem] = []
        for (n, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let v: MetaValue
            do { v = try MetaValue.parseJSON(String(line)) } catch { throw EMError(.badInput, file: path, at: "line \(n + 1)", "not a JSON object") }
            items.append(try BatchItem(json: v, file: path, line: n + 1))
        }
        return items
    }
}
