import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fake Merlin command port (127.0.0.1, a free port) for tests of `record --control`: it
/// records every command (`TYPE,NAME[,VALUE]`) and answers `MPX,` + length + `,TYPE,NAME,STATUS`,
/// with status 0 unless `statuses` names another for that command name.
public final class MerlinControlTestServer: @unchecked Sendable {
    public let port: UInt16
    private let listener: Int32
    private let statuses: [String: Int]
    private let lock = NSLock()
    private var received: [String] = []

    public init(statuses: [String: Int] = [:]) throws {
        self.statuses = statuses
        let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard l >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(l, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(l, 1) == 0 else { close(l); throw POSIXError(.EADDRINUSE) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(l, $0, &len) } }
        port = UInt16(bigEndian: bound.sin_port)
        listener = l
        Thread { [self] in serve() }.start()
    }

    public var address: String { "127.0.0.1:\(port)" }

    /// The commands received so far.
    public var commands: [String] { lock.lock(); defer { lock.unlock() }; return received }

    private func serve() {
        defer { close(listener) }
        let c = accept(listener, nil, nil)
        guard c >= 0 else { return }
        defer { close(c) }
        func read(_ n: Int) -> [UInt8]? {
            var out = [UInt8](repeating: 0, count: n)
            var got = 0
            while got < n {
                let k = out.withUnsafeMutableBytes { recv(c, $0.baseAddress! + got, n - got, 0) }
                if k <= 0 { return nil }
                got += k
            }
            return out
        }
        while let prefix = read(15), let n = Int(String(decoding: prefix[4..<14], as: UTF8.self)), n > 1, let body = read(n - 1) {
            let text = String(decoding: body, as: UTF8.self)
            lock.lock(); received.append(text); lock.unlock()
            let parts = text.split(separator: ",").map(String.init)
            let answer = "\(parts[0]),\(parts.count > 1 ? parts[1] : ""),\(statuses[parts.count > 1 ? parts[1] : ""] ?? 0)"
            let message = Array(String(format: "MPX,%010d,", answer.utf8.count + 1).utf8) + Array(answer.utf8)
            _ = message.withUnsafeBytes { send(c, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }
}
