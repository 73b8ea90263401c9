import Foundation

/// A small named array that belongs with a dataset but is not its signal: a detector's flat
/// field, pixel mask or count-rate correction table. Readers fill ``Dataset/auxiliary`` (keyed by
/// the NXdetector field name, `flatfield`, `pixel_mask`, …); writers that can hold them do (the
/// NeXus writer as fields of the NXdetector), nothing is applied to the data.
public struct AuxiliaryArray: Sendable, Equatable {
    public var elementType: ElementType
    /// C order; empty for a scalar.
    public var shape: [Int]
    /// Values in native byte order.
    public var bytes: [UInt8]
    public var units: String?
    /// What it is, in words ("flat-field correction factors, per pixel").
    public var description: String?

    public init(elementType: ElementType, shape: [Int], bytes: [UInt8], units: String? = nil, description: String? = nil) {
        precondition(bytes.count == shape.reduce(1, *) * elementType.size, "auxiliary array size does not match its shape")
        self.elementType = elementType
        self.shape = shape
        self.bytes = bytes
        self.units = units
        self.description = description
    }
}
