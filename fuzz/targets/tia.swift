import EMConvTestSupport

/// libFuzzer entry point of the 'tia' target (input layout: `FuzzTarget.tia`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.tia, data, size)
}
