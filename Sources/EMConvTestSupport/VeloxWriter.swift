import EMConvKit
import Foundation

/// A synthetic Velox EMD (version 11 layout) with an EELS spectrum image and an EDS spectrum
/// stream, each on its own scan raster (the layout of benchmarks/make_velox_eels_eds.py).
///
/// - `/Data/Image/<id>`: the HAADF acquired with the EELS SI, (eelsH, eelsW, 1) uint16.
/// - `/Data/EelsSpectrumImage/<id>/Data`: float32 stored (x, energy, y) as Velox writes it, one
///   chunk per cube; `Metadata` gives its raster (Scan.ScanSize x Scan.ScanArea) and pixel size,
///   `AcquisitionMetadata` its energy calibration (Data.offset / Data.dispersion, eV).
/// - `/Data/SpectrumStream/<id>`: uint16 event stream on an edsH x edsW raster (full scan area),
///   its own `Metadata` saying so.
public struct VeloxEELSEDSSpec: Sendable {
    public var eelsH = 16, eelsW = 20, channels = 2048
    /// (offset, dispersion) in eV of each EELS cube (Velox writes one per energy range).
    public var eelsRanges: [(Double, Double)] = [(-20, 0.25), (400, 0.5)]
    public var edsH = 128, edsW = 128, bincount = 4096
    /// Counts per EDS pixel: one in channel (y + x) % bincount, the others in channel 0.
    public var countsPerPixel = 3
    /// Write the EELS raster into the cube's own Metadata (else only the SpectrumImage's raster is there).
    public var eelsOwnMetadata = true

    public init() {}

    /// EELS value of cube `k` at (y, x, energy channel e).
    public static func eelsValue(cube k: Int, y: Int, x: Int, e: Int) -> Float {
        Float(1000 * k + 100 * y + x) + Float(e) / 10000
    }
}

public enum VeloxWriter {
    static func scan(h: Int, w: Int, full: Int) -> String {
        let r = 0.25 + Double(w) / Double(full), b = 0.25 + Double(h) / Double(full)
        return #"{"ScanSize": {"width": "\#(full)", "height": "\#(full)"}, "FrameTime": "2.5", "DwellTime": "0.01", "ScanArea": {"left": "0.25", "top": "0.25", "right": "\#(r)", "bottom": "\#(b)"}}"#
    }

    static func column(_ json: String) -> [UInt8] {
        var b = Array(json.utf8)
        b += [UInt8](repeating: 0, count: 60000 - b.count)
        return b
    }

    static func array(_ g: HDF5Group, _ name: String, _ type: ElementType, _ shape: [Int], _ bytes: [UInt8]) throws {
        let d = try g.createChunkedDataset(name, type: type, shape: shape, chunk: shape, compression: .none, shuffle: false)
        try bytes.withUnsafeBytes { try d.writeChunk(offset: Array(repeating: 0, count: shape.count), data: $0) }
    }

    /// Writes the file; returns its path.
    @discardableResult
    public static func writeEELSWithEDSStream(_ s: VeloxEELSEDSSpec, to path: String) throws -> String {
        let f = try HDF5File(creating: path, truncate: true)
        try f.root.writeString("Version", #"{"version": "11", "format": "Velox"}"#)
        _ = try f.root.createGroup("Displays").createGroup("ImageDisplay")
        let data = try f.root.createGroup("Data")
        let base = #""Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}}, "Optics": {"AccelerationVoltage": "300000"}"#
        let eelsScan = scan(h: s.eelsH, w: s.eelsW, full: 512)
        let eelsBR = #"{"Detector": "EELS", "PixelSize": {"width": "2e-10", "height": "3e-10"}, "PixelUnitX": "m", "PixelUnitY": "m", "Offset": {"x": "-1e-9", "y": "-2e-9"}}"#
        let detectors = #"{"Detector-0": {"DetectorName": "HAADF"}, "Detector-1": {"DetectorName": "SuperXG21", "Dispersion": "5", "OffsetEnergy": "-480"}}"#

        let img = try data.createGroup("Image").createGroup("00000000000000000000000000000001")
        var px: [UInt8] = []
        for i in 0..<(s.eelsH * s.eelsW) { px += [UInt8(i & 0xFF), UInt8(i >> 8)] }
        try array(img, "Data", .uint16, [s.eelsH, s.eelsW, 1], px)
        try array(img, "Metadata", .uint8, [60000, 1], column(#"{\#(base), "Scan": \#(eelsScan), "Detectors": \#(detectors), "BinaryResult": {"Detector": "HAADF", "DetectorIndex": "0", "PixelSize": {"width": "2e-10", "height": "3e-10"}, "PixelUnitX": "m", "PixelUnitY": "m"}}"#))

        let eels = try data.createGroup("EelsSpectrumImage")
        for (k, (off, disp)) in s.eelsRanges.enumerated() {
            let g = try eels.createGroup(String(format: "%032x", k + 2))
            var bytes = [UInt8](repeating: 0, count: s.eelsW * s.channels * s.eelsH * 4)
            bytes.withUnsafeMutableBytes { raw in
                let v = raw.bindMemory(to: Float.self)
                var i = 0
                for x in 0..<s.eelsW { for e in 0..<s.channels { for y in 0..<s.eelsH {   // stored (x, energy, y)
                    v[i] = VeloxEELSEDSSpec.eelsValue(cube: k, y: y, x: x, e: e).littleEndianBits
                    i += 1
                } } }
            }
            try array(g, "Data", .float32, [s.eelsW, s.channels, s.eelsH], bytes)
            let own = s.eelsOwnMetadata ? #"{\#(base), "Scan": \#(eelsScan), "BinaryResult": \#(eelsBR)}"# : #"{\#(base)}"#
            try array(g, "Metadata", .uint8, [60000, 1], column(own))
            try array(g, "AcquisitionMetadata", .uint8, [60000, 1], column(#"{"Data": {"offset": "\#(off)", "dispersion": "\#(disp)"}}"#))
        }

        let edsScan = #"{"ScanSize": {"width": "\#(s.edsW)", "height": "\#(s.edsH)"}, "FrameTime": "16", "DwellTime": "0.001", "ScanArea": {"left": "0", "top": "0", "right": "1", "bottom": "1"}}"#
        let edsMeta = #"{\#(base), "Scan": \#(edsScan), "Detectors": \#(detectors), "BinaryResult": {"Detector": "SuperXG21", "DetectorIndex": "1", "PixelSize": {"width": "5e-9", "height": "5e-9"}, "PixelUnitX": "m", "PixelUnitY": "m", "Offset": {"x": "0", "y": "0"}}}"#
        let si = try data.createGroup("SpectrumImage").createGroup("00000000000000000000000000000009")
        try si.writeString("SpectrumImageSettings", #"{"startFramePosition": "1", "endFramePosition": "1"}"#)
        // Without its own EELS metadata, the EELS raster is found in the SpectrumImage's (RosettaSciIO's source).
        try array(si, "Metadata", .uint8, [60000, 1], column(s.eelsOwnMetadata ? edsMeta : #"{\#(base), "Scan": \#(eelsScan), "BinaryResult": \#(eelsBR)}"#))
        let st = try data.createGroup("SpectrumStream").createGroup("0000000000000000000000000000000a")
        try st.writeString("AcquisitionSettings", #"{"encoding": "uint16", "bincount": "\#(s.bincount)", "StreamEncoding": "uint16", "RasterScanDefinition": {"Width": "\#(s.edsW)", "Height": "\#(s.edsH)"}}"#)
        try array(st, "Metadata", .uint8, [60000, 1], column(edsMeta))
        var stream: [UInt8] = []
        func put(_ v: UInt16) { stream += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        for y in 0..<s.edsH {
            for x in 0..<s.edsW {
                put(UInt16((y + x) % s.bincount))
                for _ in 1..<max(1, s.countsPerPixel) { put(0) }
                put(0xFFFF)
            }
        }
        try array(st, "Data", .uint16, [stream.count / 2, 1], stream)
        try f.flush()
        return path
    }
}

extension Float {
    /// The value whose in-memory bytes are this value's little-endian encoding.
    var littleEndianBits: Float { Float(bitPattern: bitPattern.littleEndian) }
}
