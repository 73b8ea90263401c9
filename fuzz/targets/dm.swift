import EMConvTestSupport

/// libFuzzer entry point of the 'dm' target (input layout: `FuzzTarget.dm`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.dm, data, size)
}
