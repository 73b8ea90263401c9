import Foundation

/// Role of an axis: navigation (scan positions, frame index, time) or signal (detector pixels,
/// energy channels).
public enum AxisRole: String, Sendable, Codable {
    case navigation
    case signal
}

/// Calibration of an axis: uniform (value = offset + index × scale) or explicit coordinates.
public enum AxisCalibration: Sendable, Equatable {
    case uniform(offset: Double, scale: Double)
    case coordinates([Double])
}

/// One axis of a dataset, in C order (slowest first).
public struct Axis: Sendable, Equatable {
    /// Short machine name: `scan_y`, `scan_x`, `det_y`, `det_x`, `frame`, `energy`, …
    public var name: String
    public var size: Int
    public var role: AxisRole
    /// ASCII units as NeXus expects them (`nm`, `1/nm`, `eV`, `um`, `s`); empty when uncalibrated.
    public var units: String
    public var calibration: AxisCalibration
    /// Human description (optional): "scan position y", "detector row", …
    public var longName: String?

    public init(name: String, size: Int, role: AxisRole, units: String = "",
                calibration: AxisCalibration = .uniform(offset: 0, scale: 1), longName: String? = nil) {
        self.name = name
        self.size = size
        self.role = role
        self.units = units
        self.calibration = calibration
        self.longName = longName
    }

    /// Coordinate of every index.
    public var coordinates: [Double] {
        switch calibration {
        case let .uniform(offset, scale): return (0..<size).map { offset + Double($0) * scale }
        case let .coordinates(c): return c
        }
    }

    public var offset: Double {
        switch calibration {
        case let .uniform(o, _): return o
        case let .coordinates(c): return c.first ?? 0
        }
    }

    public var scale: Double {
        switch calibration {
        case let .uniform(_, s): return s
        case let .coordinates(c): return c.count > 1 ? c[1] - c[0] : 1
        }
    }
}

/// Delivers a dataset's values lazily, one frame at a time. A frame is the block of the
/// `frameRank` trailing (fastest) dimensions; frames are numbered in C order over the leading
/// dimensions. Values are written in native byte order, C order.
///
/// Calls come from one thread at a time, in any order (converters read in increasing order,
/// which lets file readers checksum the source on the way).
public protocol FrameSource: AnyObject {
    func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Called once on a thread before it reads frames (a library with per-thread state, such as
    /// HDF5's error printing, sets it up here).
    func prepareReadingThread()
}

public extension FrameSource {
    func prepareReadingThread() {}
}

/// A dataset of the common model. It knows no vendor: readers fill it, writers consume it.
public final class Dataset {
    /// Name unique within the opened file (`image`, `haadf`, `spectrum_image`, …).
    public var name: String
    /// Free-text title (vendor's image name, detector name).
    public var title: String
    public var axes: [Axis]
    public var elementType: ElementType
    /// Byte order of the values in the source file (the model itself is always native).
    public var sourceByteOrder: ByteOrder
    /// Number of trailing axes forming one frame (the read and chunk unit).
    public var frameRank: Int
    /// What the values measure (`counts`, `intensity`, `electron counts`) and their units.
    public var quantity: String
    public var quantityUnits: String
    /// What kind of signal this is, using emconv's small vocabulary: `image`, `diffraction`,
    /// `4d-stem`, `spectrum`, `eels`, `eds`, `cl`, `stack`.
    public var signalKind: String
    public var metadata: NormalizedMetadata
    /// Vendor metadata for this dataset (the file-level tree lives in ``OpenedFile/original``).
    public var original: MetaValue
    /// Notes on conventions the reader applied (orientation, axis order), recorded in outputs.
    public var conventions: [String: String]
    /// Detector tables kept beside the data (flat field, pixel mask), by NXdetector field name.
    public var auxiliary: [String: AuxiliaryArray] = [:]
    public let source: FrameSource
    /// What emconv did to the values on the way (crop, bin, cast …), in order; empty for a
    /// faithful copy. Writers record every step (NeXus: one NXprocess each).
    public var processing: [ProcessingStep] = []
    /// Set on views emconv computed from another dataset (virtual images, sum pattern): what they
    /// are, in words. Writers mark them derived (NeXus: `emconv/derived`, skipped when read back).
    public var derived: String?
    /// A chunk shape that suits these values better than whole frames, used by writers that
    /// chunk when the user did not choose (`--chunks`): corrected frames of sparse detectors repeat
    /// the previous frame at most pixels, which deflate reaches only in frame bands of at most
    /// 32 KiB. nil: the writer's default.
    public var preferredChunkShape: [Int]?

    public init(name: String, title: String = "", axes: [Axis], elementType: ElementType,
                sourceByteOrder: ByteOrder = .little, frameRank: Int, quantity: String = "intensity",
                quantityUnits: String = "", signalKind: String, metadata: NormalizedMetadata = NormalizedMetadata(),
                original: MetaValue = .object([]), conventions: [String: String] = [:], source: FrameSource) {
        precondition(frameRank >= 0 && frameRank <= axes.count)
        self.name = name
        self.title = title
        self.axes = axes
        self.elementType = elementType
        self.sourceByteOrder = sourceByteOrder
        self.frameRank = frameRank
        self.quantity = quantity
        self.quantityUnits = quantityUnits
        self.signalKind = signalKind
        self.metadata = metadata
        self.original = original
        self.conventions = conventions
        self.source = source
    }

    public var shape: [Int] { axes.map(\.size) }
    public var rank: Int { axes.count }
    public var frameShape: [Int] { Array(shape.suffix(frameRank)) }
    public var frameElements: Int { frameShape.reduce(1, *) }
    public var frameBytes: Int { frameElements * elementType.size }
    public var frameCount: Int { shape.dropLast(frameRank).reduce(1, *) }
    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int64 { Int64(elementCount) * Int64(elementType.size) }
}

/// The result of opening an input: one or more datasets plus file-level facts.
public final class OpenedFile {
    public let path: String
    /// Format name from the reader's descriptor (`mib`, `empad`, `raw`, …).
    public let format: String
    /// Variant within the format ("quad 2x2, R64 raw, 12-bit", "DM4 big-endian", …).
    public let variant: String
    public var datasets: [Dataset]
    /// Every file the reader used (primary first, then companions).
    public var files: [String]
    /// File-level vendor metadata (the complete tree).
    public var original: MetaValue
    public var warnings: [String]
    /// Reader identification for provenance.
    public let readerName: String
    public let readerVersion: String
    /// Open file handles owned by this file (closed when it is released).
    public var handles: [RandomAccessFile]
    /// What the user supplied beside the input (sample, users, the sidecar): set by the converter.
    public var supplement = Supplement()

    public init(path: String, format: String, variant: String, datasets: [Dataset], files: [String],
                original: MetaValue, warnings: [String] = [], readerName: String, readerVersion: String,
                handles: [RandomAccessFile] = []) {
        self.path = path
        self.format = format
        self.variant = variant
        self.datasets = datasets
        self.files = files
        self.original = original
        self.warnings = warnings
        self.readerName = readerName
        self.readerVersion = readerVersion
        self.handles = handles
    }
}
