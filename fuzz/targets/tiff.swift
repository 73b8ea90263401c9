import EMConvTestSupport

/// libFuzzer entry point of the 'tiff' target (input layout: `FuzzTarget.tiff`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.tiff, data, size)
}
