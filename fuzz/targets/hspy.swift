import EMConvTestSupport

/// libFuzzer entry point of the 'hspy' target (input layout: `FuzzTarget.hspy`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.hspy, data, size)
}
