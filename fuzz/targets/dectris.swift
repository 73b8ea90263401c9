import EMConvTestSupport

/// libFuzzer entry point of the 'dectris' target (input layout: `FuzzTarget.dectris`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.dectris, data, size)
}
