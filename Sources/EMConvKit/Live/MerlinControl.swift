import EMCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The Merlin software's command port (TCP, default 6341): `record --control` starts the
/// acquisition there once the data port is connected, and stops it when reception ends early.
///
/// Each command is `MPX,` + a 10-digit decimal length + `,` + `TYPE,NAME[,VALUE]`, the length
/// counting the bytes from that comma on (as on the data port). The answer repeats type and name,
/// then a status: 0 command OK, 1 system busy, 2 unrecognised command, 3 parameter out of range
/// (a `GET` answer has the value before the status). See FORMAT.md (Merlin live stream).
public final class MerlinControl {
    let fd: Int32
    let address: String
    let timeout: Double
    /// Every command sent, in order (`SET,NUMFRAMESTOACQUIRE,100`, `CMD,STARTACQUISITION`).
    public private(set) var sent: [String] = []

    static let statusText = ["command OK", "system busy", "unrecognised command", "parameter out of range"]

    /// `HOST[:PORT]` (port 6341 when left out).
    public static func parseAddress(_ s: String) throws -> (String, UInt16) {
        if let colon = s.lastIndex(of: ":") {
            guard let p = UInt16(s[s.index(after: colon)...]), p > 0, colon != s.startIndex else {
                throw EMError(.usage, file: s, "--control takes HOST[:PORT] (port 1...65535, default 6341)")
            }
            return (String(s[..<colon]), p)
        }
        guard !s.isEmpty else { throw EMError(.usage, "--control takes HOST[:PORT]") }
        return (s, 6341)
    }

    public init(address: String, timeout: Double) throws {
        let (host, port) = try Self.parseAddress(address)
        self.address = address
        self.timeout = timeout
        let conn = try MerlinConnection(host: host, port: port, url: "merlin control \(address)", timeout: timeout, shouldStop: { false })
        fd = dup(conn.fd)
        conn.close()
        guard fd >= 0 else { throw EMError(.missingInput, file: address, "cannot use the control connection") }
    }

    deinit { close(fd) }

    /// Sends `TYPE,NAME[,VALUE]` and checks the answer's status; throws with the status text.
    public func command(_ type: String, _ name: String, _ value: String? = nil) throws {
        let body = [type, name] + (value.map { [$0] } ?? [])
        let text = body.joined(separator: ",")
        let message = Array(String(format: "MPX,%010d,", text.utf8.count + 1).utf8) + Array(text.utf8)
        sent.append(text)
        try message.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let k = send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if k < 0 && errno == EINTR { continue }
                guard k > 0 else { throw EMError(.missingInput, file: address, "control port: cannot send \(text): \(String(cString: strerror(errno)))") }
                off += k
            }
        }
        let answer = try readAnswer(for: text)
        let parts = answer.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        // MPX, length, TYPE, NAME, [value,] status
        guard parts.count >= 5, parts[0] == "MPX", parts[2].uppercased() == type.uppercased(), parts[3].uppercased() == name.uppercased(),
              let status = Int(parts[parts.count - 1]) else {
            throw EMError(.badInput, file: address, "control port: unexpected answer to \(text): '\(answer.prefix(80))'")
        }
        guard status == 0 else {
            let why = status < Self.statusText.count ? Self.statusText[status] : "status \(status)"
            throw EMError(.missingInput, file: address, "the Merlin refused \(text): \(why)")
        }
    }

    /// One answer: `MPX,` + 10 digits + `,` and that many bytes, within the timeout.
    func readAnswer(for text: String) throws -> String {
        func read(_ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            var got = 0
            let deadline = Date().addingTimeInterval(timeout)
            while got < n {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, 200)
                if r < 0 && errno == EINTR { continue }
                if r == 0 {
                    if Date() > deadline { throw EMError(.missingInput, file: address, "control port: no answer to \(text) within \(Int(timeout.rounded())) s") }
                    continue
                }
                let k = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, n - got, 0) }
                if k < 0 && errno == EINTR { continue }
                guard k > 0 else { throw EMError(.missingInput, file: address, "control port closed before answering \(text)") }
                got += k
            }
            return out
        }
        let prefix = try read(15)
        guard prefix.starts(with: Array("MPX,".utf8)), prefix[14] == 0x2C,
              let n = Int(String(decoding: prefix[4..<14], as: UTF8.self)), n >= 1, n <= 65536 else {
            throw EMError(.badInput, file: address, "control port: not a Merlin answer to \(text): '\(String(decoding: prefix, as: UTF8.self))'")
        }
        var body = n > 1 ? try read(n - 1) : []
        // The length counts the comma after the digits (as on the data port); a peer that does
        // not count it sends one byte more, which is part of this answer (the next comes only
        // after the next command).
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        if poll(&p, 1, 100) > 0 {
            var extra: UInt8 = 0
            if recv(fd, &extra, 1, Int32(MSG_DONTWAIT)) == 1 { body.append(extra) }
        }
        return String(decoding: prefix + body, as: UTF8.self)
    }
}
