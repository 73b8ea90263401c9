import EMConvTestSupport

/// libFuzzer entry point of the 'emd' target (input layout: `FuzzTarget.emd`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.emd, data, size)
}
