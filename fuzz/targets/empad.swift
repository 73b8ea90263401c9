import EMConvTestSupport

/// libFuzzer entry point of the 'empad' target (input layout: `FuzzTarget.empad`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.empad, data, size)
}
