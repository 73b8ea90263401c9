import EMConvTestSupport
import Foundation
import CHDF5

/// Shared plumbing of the libFuzzer targets: each input is written into a private temporary folder
/// (as ``FuzzTarget`` describes) and run by ``FuzzInputs/run(_:_:in:)``. Errors thrown by the
/// library are expected; crashes, hangs, oversized allocations and ``FuzzInputs/Finding`` are findings.
enum Fuzz {
    /// One folder per fuzzing process (`$TMPDIR`, or /dev/shm when present: no disk traffic).
    static let dir: String = {
        let base = ProcessInfo.processInfo.environment["TMPDIR"]
            ?? (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : "/tmp")
        var template = Array("\(base)/emconv-fuzz.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            fatalError("fuzz: cannot create a temporary folder in \(base)")
        }
        atexit { try? FileManager.default.removeItem(atPath: Fuzz.dir) }
        return String(cString: made)
    }()

    /// libhdf5 keeps freed blocks up to 64 MiB per free list instead of its 64 KiB default: every
    /// file open callocs a metadata cache of more than 512 KiB, which under ASan is a fresh mmap
    /// (page faults, zeroing) each time. Halves the CPU time per execution of the HDF5 targets;
    /// parsing is the same.
    static let freeLists: Void = {
        let limit: Int32 = 64 << 20
        H5set_free_list_limits(limit, limit, limit, limit, limit, limit)
    }()

    static func run(_ target: FuzzTarget, _ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
        _ = freeLists
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] { unlink(dir + "/" + f) }
        if let finding = FuzzInputs.run(target, UnsafeRawBufferPointer(start: data, count: size), in: dir) as? FuzzInputs.Finding {
            fatalError("fuzz finding: \(finding)")
        }
        return 0
    }
}
