import EMConvTestSupport

/// libFuzzer entry point of the 'mrc' target (input layout: `FuzzTarget.mrc`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.mrc, data, size)
}
