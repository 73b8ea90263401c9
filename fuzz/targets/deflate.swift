import EMConvTestSupport

/// libFuzzer entry point of the 'deflate' target (input layout: `FuzzTarget.deflate`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.deflate, data, size)
}
