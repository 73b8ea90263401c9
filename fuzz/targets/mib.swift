import EMConvTestSupport

/// libFuzzer entry point of the 'mib' target (input layout: `FuzzTarget.mib`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTarget(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzz.run(.mib, data, size)
}
