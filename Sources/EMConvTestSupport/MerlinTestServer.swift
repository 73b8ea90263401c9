import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fault-injecting Merlin data-port server on loopback (127.0.0.1, a free port) for tests of
/// `emconv record`: it serves one connection the acquisition header and frames as `MPX,` messages,
/// then does what `ending` says, and can cut, stall or corrupt the stream at a byte offset.
public final class MerlinTestServer: @unchecked Sendable {
    public enum Fault: Sendable {
        /// Close the connection after this many bytes of the stream.
        case closeAfter(Int)
        /// Stop sending (connection open) after this many bytes, until the client hangs up.
        case stallAfter(Int)
        /// Replace the message prefix of frame `k` (0-based) by one with a non-numeric length.
        case garbageLengthAtFrame(Int)
    }

    public let port: UInt16
    private let listener: Int32
    private let stream: [UInt8]
    private let repeatForever: Bool
    private let fault: Fault?
    private let done = DispatchSemaphore(value: 0)
    /// Bytes the server managed to send.
    public private(set) var bytesSent = 0

    /// One `MPX,` message (the length counts the comma after it, as a Merlin sends it).
    public static func message(_ payload: [UInt8]) -> [UInt8] {
        Array(String(format: "MPX,%010d,", payload.count + 1).utf8) + payload
    }

    /// The stream of one acquisition: its header, then every frame, as written by MIBWriter.
    public static func acquisition(_ spec: MIBSpec) -> [UInt8] {
        var s = message(spec.hdrText())
        for i in 0..<spec.frames { s += message(spec.frameBytes(i)) }
        return s
    }

    /// Byte offset where frame `k`'s message starts in ``acquisition(_:)``.
    public static func frameOffset(_ spec: MIBSpec, _ k: Int) -> Int {
        15 + spec.hdrText().count + k * (15 + spec.frameStride)
    }

    /// Starts listening; serves `stream` (repeated back to back like a Merlin in continuous mode
    /// when `repeatForever`) to the first client.
    public init(stream: [UInt8], repeatForever: Bool = false, fault: Fault? = nil) throws {
        var s = stream
        self.fault = fault
        self.repeatForever = repeatForever
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(listener, 1) == 0 else { close(listener); throw POSIXError(.EADDRINUSE) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        port = UInt16(bigEndian: bound.sin_port)
        self.listener = listener
        if case let .garbageLengthAtFrame(k)? = fault {
            // Find frame k's prefix by walking the messages.
            var off = 0, frame = -1
            while off + 15 <= s.count {
                let n = (Int(String(decoding: s[(off + 4)..<(off + 14)], as: UTF8.self)) ?? 1) - 1
                if s[(off + 15)..<(off + 19)].elementsEqual("MQ1,".utf8) { frame += 1 }
                if frame == k { s.replaceSubrange((off + 4)..<(off + 14), with: Array("12x4567890".utf8)); break }
                off += 15 + n
            }
        }
        self.stream = s
        let t = Thread { [self] in serve() }
        t.start()
    }

    public var url: String { "merlin://127.0.0.1:\(port)" }

    /// Waits until the connection has been served (the client hung up or the script ended).
    public func wait(timeout: Double = 30) -> Bool { done.wait(timeout: .now() + timeout) == .success }

    private func serve() {
        defer { close(listener); done.signal() }
        let c = accept(listener, nil, nil)
        guard c >= 0 else { return }
        defer { close(c) }
        var limit = Int.max
        var stall = false
        switch fault {
        case let .closeAfter(n)?: limit = n
        case let .stallAfter(n)?: limit = n; stall = true
        default: break
        }
        var sentTotal = 0
        repeat {
            let ok = stream.withUnsafeBytes { b -> Bool in
                var off = 0
                while off < b.count {
                    let chunk = min(b.count - off, 65536, limit - sentTotal)
                    if chunk <= 0 { return false }
                    let k = send(c, b.baseAddress! + off, chunk, Int32(MSG_NOSIGNAL))
                    if k <= 0 { return false }
                    off += k
                    sentTotal += k
                    bytesSent = sentTotal
                }
                return true
            }
            if !ok { break }
        } while repeatForever
        if stall {
            // Hold the connection open and silent until the client hangs up.
            var byte: UInt8 = 0
            while recv(c, &byte, 1, 0) > 0 {}
        }
    }
}
