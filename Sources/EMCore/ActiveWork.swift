import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The inputs being read and the temporary outputs being written by every conversion running in
/// this process. Signal and fault handlers read it without locks (async-signal-safe: fixed slots
/// of C strings), so an interrupted or crashing process removes every partial output and names
/// the inputs.
public final class ActiveWork: @unchecked Sendable {
    public static let shared = ActiveWork()

    static let slotCount = 64
    private let outputs: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let inputs: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let lock = NSLock()

    private init() {
        outputs = .allocate(capacity: Self.slotCount)
        outputs.initialize(repeating: nil, count: Self.slotCount)
        inputs = .allocate(capacity: Self.slotCount)
        inputs.initialize(repeating: nil, count: Self.slotCount)
    }

    /// A registration; ``end()`` frees its slot.
    public struct Token: Sendable {
        fileprivate let slot: Int
        fileprivate let isOutput: Bool
        public func end() { ActiveWork.shared.clear(self) }
    }

    /// Registers a temporary output (removed on interruption or a library fault).
    public func beginOutput(_ path: String) -> Token { register(path, in: outputs, isOutput: true) }

    /// Registers an input being read (named by the fault and watchdog messages).
    public func beginInput(_ path: String) -> Token { register(path, in: inputs, isOutput: false) }

    private func register(_ path: String, in table: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, isOutput: Bool) -> Token {
        lock.lock(); defer { lock.unlock() }
        for i in 0..<Self.slotCount where table[i] == nil {
            table[i] = strdup(path)
            return Token(slot: i, isOutput: isOutput)
        }
        return Token(slot: -1, isOutput: isOutput)   // more than 64 at once: not tracked
    }

    private func clear(_ t: Token) {
        guard t.slot >= 0 else { return }
        lock.lock(); defer { lock.unlock() }
        let table = t.isOutput ? outputs : inputs
        let old = table[t.slot]
        table[t.slot] = nil
        free(old)
    }

    /// The inputs being read now.
    public var inputNames: [String] {
        lock.lock(); defer { lock.unlock() }
        return (0..<Self.slotCount).compactMap { inputs[$0].map { String(cString: $0) } }
    }

    /// Removes every registered temporary output (from a signal handler: system calls only).
    public func removeOutputs() {
        for i in 0..<Self.slotCount {
            if let p = outputs[i], unlink(p) != 0 { OutputTree.removeTreeUnsafe(p) }
        }
    }

    private func writeInputs() {
        var first = true
        for i in 0..<Self.slotCount {
            guard let p = inputs[i] else { continue }
            if !first { _ = ", ".withCString { write(2, $0, 2) } }
            write(2, p, strlen(p))
            first = false
        }
        if !first { _ = ": ".withCString { write(2, $0, 2) } }
    }

    /// Installs handlers for SIGSEGV/SIGBUS/SIGFPE/SIGILL/SIGABRT on an alternate stack: a library fault
    /// while reading a corrupt file (HDF5 1.10 can crash on damaged metadata) becomes the usual
    /// one-line error naming the file, the partial output is removed, and the exit status is 65.
    public static func installFaultHandlers() {
        let size = 256 << 10
        var ss = stack_t()
        ss.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        ss.ss_size = size
        ss.ss_flags = 0
        sigaltstack(&ss, nil)
        // SIGABRT too: glibc aborts when libhdf5 corrupts the heap on a damaged file ("malloc():
        // unaligned tcache chunk detected"; fuzz finding, fixtures/regressions/hdf5-library).
        for s in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT] {
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = { _ in
                ActiveWork.shared.removeOutputs()
                _ = "emconv: error: ".withCString { write(2, $0, strlen($0)) }
                ActiveWork.shared.writeInputs()
                let msg = "reading failed inside a library: the file is damaged (please report it if it opens elsewhere)\n"
                _ = msg.withCString { write(2, $0, strlen($0)) }
                _exit(65)
            }
            sa.sa_flags = Int32(SA_ONSTACK) | Int32(bitPattern: UInt32(SA_RESETHAND))
            sigemptyset(&sa.sa_mask)
            sigaction(s, &sa, nil)
        }
    }

    /// Installs SIGINT/SIGTERM/SIGHUP handlers that remove the temporary outputs and exit with
    /// 128+signal (130 for Ctrl-C).
    public static func installSignalHandlers() {
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { sig in
                ActiveWork.shared.removeOutputs()
                let msg = "emconv: interrupted, partial output removed\n"
                _ = msg.withCString { write(2, $0, strlen($0)) }
                _exit(128 + sig)
            }
        }
    }

    /// For child conversions of `batch`: when the parent dies (even by SIGKILL), terminate like
    /// on SIGTERM, removing the partial output.
    public static func exitWhenParentDies() {
        let parent = getppid()
        let t = Thread {
            while true {
                usleep(200_000)
                if getppid() != parent { kill(getpid(), SIGTERM); return }
            }
        }
        t.start()
    }
}
