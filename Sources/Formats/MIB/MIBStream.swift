import EMCore
import Foundation

/// The Merlin data-port stream (TCP 6342): messages `MPX,` + 10-digit decimal length, then that
/// many bytes counted from the `,` after the digits: the comma, then the acquisition header
/// (`HDR,…`, the text of the `.hdr` file) or one frame (its `MQ1` header and pixels, exactly as in
/// a `.mib` file). So the payload after the 15-byte prefix is length − 1 bytes. See FORMAT.md.
public enum MIBStream {
    /// Bytes of a message prefix (`MPX,0000123456,`).
    public static let prefixBytes = 15
    /// Largest message accepted: a 24-bit raw quad frame of 512x512 is 1 MiB; anything beyond
    /// 256 MiB is a corrupt length, not a frame.
    public static let maxMessageBytes = 256 << 20

    public enum Kind: Sendable, Equatable { case acquisitionHeader, frame }

    /// The payload bytes after a message prefix (the announced length minus its comma); `source`
    /// and `offset` name the place in errors.
    public static func messageLength(_ prefix: [UInt8], source: String, offset: Int64) throws -> Int {
        guard prefix.count == prefixBytes, prefix[0] == 0x4D, prefix[1] == 0x50, prefix[2] == 0x58, prefix[3] == 0x2C,
              prefix[14] == 0x2C else {
            throw EMError.bad(source, offset: offset, "not a Merlin stream message (expected 'MPX,' + 10 digits + ',', got '\(String(decoding: prefix.prefix(15), as: UTF8.self))')")
        }
        guard let n = Int(String(decoding: prefix[4..<14], as: UTF8.self)), n > 1, n <= maxMessageBytes else {
            throw EMError.bad(source, offset: offset, "message length '\(String(decoding: prefix[4..<14], as: UTF8.self))' is not a number in 2...\(maxMessageBytes)")
        }
        return n - 1
    }

    /// What a message payload holds; a frame's header must parse as a Merlin frame header.
    /// `parseFrames` false: a payload starting with `MQ1,` is a frame without parsing its header
    /// (the live receiver checks frames itself, see ``MIBLiveSource/inspect(_:)``).
    public static func kind(of payload: [UInt8], source: String, offset: Int64, parseFrames: Bool = true) throws -> Kind {
        if payload.starts(with: Array("HDR,".utf8)) { return .acquisitionHeader }
        if !parseFrames && payload.count > 4 && payload[0] == 0x4D && payload[1] == 0x51 && payload[2] == 0x31 && payload[3] == 0x2C {
            return .frame
        }
        let h = try MIBHeader.parse(Array(payload.prefix(4096)), file: source, offset: offset)
        guard h.headerBytes < payload.count else {
            throw EMError.bad(source, offset: offset, "frame message of \(payload.count) bytes is shorter than its header (\(h.headerBytes) bytes)")
        }
        return .frame
    }

    /// Frames the acquisition header announces (`Frames in Acquisition`), if it says.
    public static func framesAnnounced(header: [UInt8]) -> Int? {
        guard let h = try? MIBHdrFile.parse(header, path: "stream"), let n = h.int("Frames in Acquisition"), n > 0 else { return nil }
        return n
    }

    /// A frame header as named fields (provenance of a recorded stream).
    public static func frameHeaderMeta(_ payload: [UInt8]) -> MetaValue? {
        guard let h = try? MIBHeader.parse(Array(payload.prefix(4096)), file: "stream", offset: 0) else { return nil }
        return .string(h.fields.joined(separator: ","))
    }
}
