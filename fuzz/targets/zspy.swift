import EMConvTestSupport

/// libFuzzer entry point of the 'zspy' target (input layout: `FuzzTarget.zspy`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.zspy, data, size)
}
