import EMConvTestSupport

/// libFuzzer entry point of the 'raw' target (input layout: `FuzzTarget.raw`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.raw, data, size)
}
